"""Explicit, human- and machine-readable "made by AI" labels for every output format.

The vocabulary is IPTC's Digital Source Type (NewsCodes, 2023):
``trainedAlgorithmicMedia`` = "created by a model trained on sampled content".
"""

from __future__ import annotations

import struct
from xml.sax.saxutils import escape

#: IPTC Digital Source Type of everything muselab generates.
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: The one-line label written into every output.
LABEL = "AI-generated with muselab (IPTC digital source type: trainedAlgorithmicMedia)"
#: PNG iTXt keyword of the XMP packet (the Adobe XMP specification, part 3).
XMP_KEY = "XML:com.adobe.xmp"
#: PNG tEXt keyword of the plain label.
PNG_LABEL_KEY = "AI-label"
#: First word of the JSON footer line of text outputs (poems .jsonl).
FOOTER_KEY = "muselab_label"


def xmp_packet(work_id: str, software: str) -> str:
    """An XMP packet with ``Iptc4xmpExt:DigitalSourceType`` and the work id."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:muselab="https://github.com/muselab/ns/1.0/"\n'
        f'    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
        f'    xmp:CreatorTool="{escape(software)}"\n'
        f'    muselab:WorkId="{escape(work_id)}">\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(LABEL)}'
        '</rdf:li></rdf:Alt></dc:description>\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="r"?>'
    )


def has_xmp_label(xmp: str) -> bool:
    """Whether an XMP packet declares the trained-algorithmic-media source type."""
    return DIGITAL_SOURCE_TYPE in xmp


def wav_info_chunk(work_id: str, software: str) -> bytes:
    """A RIFF ``LIST``/``INFO`` chunk: ICMT (comment) = label and work id, ISFT = software,
    IGNR = the source type (RIFF INFO tags, Microsoft Multimedia Standards Update 1991)."""
    fields = [(b"ICMT", f"{LABEL}; work {work_id}"), (b"ISFT", software),
              (b"IGNR", "trainedAlgorithmicMedia")]
    body = b"INFO"
    for tag, text in fields:
        data = text.encode("utf-8") + b"\0"
        body += tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def midi_text(work_id: str) -> str:
    """The text of the MIDI text meta event (FF 01) that labels a MIDI file."""
    return f"{LABEL}; work {work_id}"
