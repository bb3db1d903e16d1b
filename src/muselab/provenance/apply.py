"""Provenance hooks called by the writers of images, MIDI, WAV and text.

On by default. Turn it off for one call with ``provenance=False`` on the writer, or for
a whole process with the environment variable ``MUSELAB_PROVENANCE=0`` (also ``off``,
``false``, ``no``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.provenance import label, manifest, watermark

ENV = "MUSELAB_PROVENANCE"
#: PNG iTXt keyword of the Ed25519-signed record.
PNG_MANIFEST_KEY = "muselab:manifest"
WATERMARK_SCHEME = "muselab-wm/1"


def enabled(flag: bool | None = None) -> bool:
    """``flag`` if given, else whether ``$MUSELAB_PROVENANCE`` leaves provenance on."""
    if flag is not None:
        return flag
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def pixel_sha256(pil: Any) -> str:
    """sha256 of a decoded image: mode, size and raw pixel bytes (container-independent)."""
    head = f"{pil.mode}:{pil.size[0]}x{pil.size[1]}:".encode()
    return hashlib.sha256(head + pil.tobytes()).hexdigest()


def png_bytes(image: np.ndarray, metadata: Mapping[str, Any] | None, info: Any,
              title: str) -> bytes:
    """A complete PNG of uint8 [H, W, C] ``image`` with watermark, labels and signatures.

    The work id hashes the unmarked pixels and ``metadata``, so the same generation
    gives the same marked pixels. ``info`` (a ``PngInfo``) gets the plain label, an XMP
    packet and the Ed25519-signed record; a C2PA manifest is then embedded.
    """
    from PIL import Image

    wid = manifest.work_id(f"{image.shape}".encode() + image.tobytes(), metadata)
    marked = watermark.embed(image, wid) if watermark.can_embed(image) else image
    pil = Image.fromarray(marked[..., 0] if marked.shape[2] == 1 else marked)
    rec = manifest.record("image", wid, pixel_sha256(pil), "pixels", metadata,
                          watermark={"embedded": marked is not image,
                                     "scheme": WATERMARK_SCHEME,
                                     "min_side": watermark.MIN_SIDE})
    info.add_text(label.PNG_LABEL_KEY, label.LABEL)
    info.add_itxt(label.XMP_KEY, label.xmp_packet(rec["work_id"], manifest.software()))
    info.add_itxt(PNG_MANIFEST_KEY, json.dumps(manifest.sign_record(rec), sort_keys=True))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", pnginfo=info)
    data = buf.getvalue()
    if manifest.c2pa_available():
        data = manifest.c2pa_sign(data, "image/png", rec, title)
    return data


def gif_bytes(frames: Sequence[np.ndarray], comment: str,
              encode: Callable[[Any, str], None]) -> tuple[bytes, int]:
    """(a complete GIF, its work id): ``encode(buffer, comment)`` writes it with the label
    and work id added to ``comment``. The caller signs the file with :func:`sign_file`:
    a sidecar rather than embedded C2PA, because GIF bytes must stay deterministic."""
    content = b"".join(f"{f.shape}".encode() + f.tobytes() for f in frames)
    wid = manifest.work_id(content, {"comment": comment})
    buf = io.BytesIO()
    encode(buf, _labelled_comment(comment, f"{wid:016x}"))
    return buf.getvalue(), wid


def _labelled_comment(comment: str, wid: str) -> str:
    """``comment`` plus the label: as keys if it is a JSON object, else a last line."""
    try:
        obj = json.loads(comment)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return json.dumps({**obj, label.FOOTER_KEY: label.LABEL, "work_id": wid,
                           "digital_source_type": label.DIGITAL_SOURCE_TYPE}, default=str)
    return f"{comment}\n{label.LABEL}; work {wid}".lstrip("\n")


def midi_labelled(path: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Add the label as a MIDI text meta event (FF 01) at the start of track 0 of the
    file ``path`` (in place), and return its provenance record (hash of the final file)."""
    import mido

    raw = Path(path).read_bytes()
    wid = manifest.work_id(raw, metadata)
    mid = mido.MidiFile(path)
    if not mid.tracks:
        mid.tracks.append(mido.MidiTrack())
    mid.tracks[0].insert(0, mido.MetaMessage("text", text=label.midi_text(f"{wid:016x}"), time=0))
    mid.save(path)
    return manifest.record("midi", wid, _sha256(Path(path).read_bytes()), "file", metadata)


def wav_labelled(path: str, metadata: Mapping[str, Any] | None, title: str) -> dict[str, Any]:
    """Add a RIFF INFO label to the WAV file ``path`` and sign it (C2PA embedded), in
    place; return the record (hash of the sample data)."""
    raw = Path(path).read_bytes()
    samples = _wav_data(raw, path)
    wid = manifest.work_id(samples, metadata)
    info = label.wav_info_chunk(f"{wid:016x}", manifest.software())
    body = raw[12:] + (b"\0" if len(raw) % 2 else b"") + info  # chunks are word-aligned
    labelled = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    rec = manifest.record("audio", wid, _sha256(samples), "wav data chunk", metadata)
    if manifest.c2pa_available():
        labelled = manifest.c2pa_sign(labelled, "audio/wav", rec, title)
    Path(path).write_bytes(labelled)
    return rec


def _wav_data(raw: bytes, name: str) -> bytes:
    """The payload of the ``data`` chunk of a RIFF/WAVE file."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise DataError(f"{name} is not a RIFF/WAVE file")
    pos = 12
    while pos + 8 <= len(raw):
        tag, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if tag == b"data":
            return raw[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise DataError(f"{name} has no data chunk")


def wav_chunks(raw: bytes) -> dict[bytes, list[bytes]]:
    """All top-level chunks of a RIFF/WAVE file by tag (payloads)."""
    out: dict[bytes, list[bytes]] = {}
    pos = 12
    while pos + 8 <= len(raw):
        tag, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        out.setdefault(tag, []).append(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    return out


def text_footer(wid: int) -> str:
    """The footer line of a ``.jsonl`` text output (a JSON object readers skip)."""
    return json.dumps({label.FOOTER_KEY: label.LABEL,
                       "digital_source_type": label.DIGITAL_SOURCE_TYPE,
                       "work_id": f"{wid:016x}"}, ensure_ascii=False)


def text_record(body: str, metadata: Mapping[str, Any] | None) -> tuple[int, str]:
    """(work id, footer line) of a text output whose lines are ``body``."""
    wid = manifest.work_id(body.encode("utf-8"), metadata)
    return wid, text_footer(wid)


def sign_file(path: Path, kind: str, wid: int, metadata: Mapping[str, Any] | None) -> Path:
    """Write the Ed25519-signed sidecar of ``path`` (record hashes the whole file)."""
    rec = manifest.record(kind, wid, _sha256(path.read_bytes()), "file", metadata)
    return manifest.write_sidecar(path, rec)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
