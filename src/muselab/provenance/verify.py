"""``muselab verify``: what provenance a file carries, and whether it still holds.

Each file gets one state (and the CLI exits with its code; for several files the
most severe state wins, in the order tampered, error, none, labelled, watermarked,
verified):

========== ==== =====================================================================
state      exit meaning
========== ==== =====================================================================
verified   0    a signature (C2PA or Ed25519) is valid and the content hash matches
tampered   1    a signature is present but fails, or the content no longer matches it
error      2    the file cannot be read (missing, not a supported format)
watermarked 3   no signature left, but the invisible watermark decodes (e.g. a JPEG copy)
labelled   4    only an explicit label (XMP, PNG text, RIFF INFO, MIDI text, footer)
none       5    no provenance found
========== ==== =====================================================================
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from muselab.errors import DataError
from muselab.provenance import label, manifest
from muselab.provenance.apply import PNG_MANIFEST_KEY, pixel_sha256, wav_chunks

EXIT_CODES = {"verified": 0, "tampered": 1, "error": 2, "watermarked": 3, "labelled": 4,
              "none": 5}
_SEVERITY = ("tampered", "error", "none", "labelled", "watermarked", "verified")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass
class Verdict:
    """What :func:`verify` found in one file."""

    file: str
    state: str = "none"
    label: bool = False
    watermark: str | None = None  # decoded work id (hex), None if none found
    signature: str = "none"  # none | c2pa | c2pa (this installation) | ed25519 ... | invalid
    work_id: str | None = None  # from the signed record
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(states: list[str]) -> str:
    """The most severe of ``states`` (see the module table)."""
    return min(states, key=_SEVERITY.index) if states else "none"


def verify(path: Path, *, watermark: bool = True, search: bool = True) -> Verdict:
    """Check one file; raises :class:`DataError` if it cannot be read at all.

    ``watermark``: look for the image watermark; ``search``: also in resized copies
    (a search over scales that takes seconds on an unmarked image).
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    v = Verdict(str(path))
    checks: list[bool] = []  # one per signature found: does it hold?
    if suffix in IMAGE_SUFFIXES:
        _image(path, v, checks, watermark, search)
    elif suffix == ".wav":
        _wav(path, v, checks)
    elif suffix in MIDI_SUFFIXES:
        _midi(path, v)
    else:
        _text(path, v)
    _sidecar(path, v, checks)
    if checks:
        v.state = "verified" if all(checks) else "tampered"
    elif v.watermark:
        v.state = "watermarked"
    elif v.label:
        v.state = "labelled"
    return v


def _c2pa(data: bytes, mime: str, v: Verdict, checks: list[bool],
          content_ok: Any = None) -> None:
    """Check an embedded C2PA manifest; ``content_ok(record)`` re-checks our own hash."""
    if not manifest.c2pa_available():
        return
    c = manifest.c2pa_read(data, mime)
    if not c.present:
        return
    v.label = True  # the c2pa.actions assertion declares the source type
    ok = c.valid and (content_ok is None or not c.manifest or content_ok(c.manifest))
    checks.append(ok)
    v.signature = ("c2pa (this installation)" if c.trusted else "c2pa") if ok else "invalid"
    v.work_id = v.work_id or c.manifest.get("work_id")
    hard = [f for f in c.failures if f != "signingCredential.untrusted"]
    if hard:
        v.notes.append("C2PA: " + ", ".join(hard))


def _ed25519(signed: Any, v: Verdict, checks: list[bool], content_sha: str,
             what: str) -> None:
    chk = manifest.check_signed(signed)
    same = chk.manifest.get("content", {}).get("sha256") == content_sha
    checks.append(chk.valid and same)
    if not chk.valid:
        v.notes.append(f"{what}: {chk.why}")
    elif not same:
        v.notes.append(f"{what}: content changed since signing")
    if chk.valid and same and v.signature in ("none", "invalid"):
        v.signature = "ed25519 (this installation)" if chk.own else "ed25519"
    elif not (chk.valid and same):
        v.signature = "invalid"
    v.work_id = v.work_id or chk.manifest.get("work_id")
    v.label = v.label or chk.valid


def _image(path: Path, v: Verdict, checks: list[bool], read_mark: bool, search: bool) -> None:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from muselab.provenance import watermark as wm

    data = path.read_bytes()
    try:
        with Image.open(path) as im:
            im.load()
            text = dict(getattr(im, "text", {}) or {})
            xmp = im.info.get("xmp") or text.get(label.XMP_KEY) or ""
            pil = im.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        mime = manifest.C2PA_TYPES.get(path.suffix.lower())
        if mime:  # a signed file whose image data no longer decodes: tampered
            _c2pa(data, mime, v, checks)
        if not checks:
            raise DataError(f"{path}: not a readable image ({exc})") from exc
        checks.append(False)
        v.signature = "invalid"
        v.notes.append(f"image data no longer decodes ({exc})")
        return
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    comment = pil.info.get("comment", b"")
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", "replace")
    v.label = label.has_xmp_label(xmp) or label.PNG_LABEL_KEY in text or label.LABEL in comment
    pixels = pixel_sha256(pil)
    mime = manifest.C2PA_TYPES.get(path.suffix.lower())
    if mime:  # our pixel hash must hold too (C2PA itself checks the file's bytes)
        _c2pa(data, mime, v, checks, lambda rec: rec.get("content", {}).get("of") != "pixels"
              or rec.get("content", {}).get("sha256") == pixels)
    if PNG_MANIFEST_KEY in text:
        try:
            signed = json.loads(text[PNG_MANIFEST_KEY])
        except ValueError:
            signed = None
        _ed25519(signed, v, checks, pixels, "PNG manifest chunk")
    if read_mark and min(pil.size) >= wm.MIN_SIDE * wm.SCALE_RANGE[0]:
        rgb = np.asarray(pil.convert("RGB"))
        reading = wm.extract(rgb, search=search and not checks)  # signed: pixels as made
        if reading.work_id is not None:
            v.watermark = f"{reading.work_id:016x}"
            if v.work_id and v.watermark != v.work_id:
                v.notes.append(f"watermark id {v.watermark} differs from the signed "
                               f"work id {v.work_id}")


def _wav(path: Path, v: Verdict, checks: list[bool]) -> None:
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError(f"{path}: not a RIFF/WAVE file")
    for payload in wav_chunks(data).get(b"LIST", []):
        if payload[:4] == b"INFO" and b"trainedAlgorithmicMedia" in payload:
            v.label = True
    _c2pa(data, "audio/wav", v, checks)


def _midi(path: Path, v: Verdict) -> None:
    import mido

    try:
        mid = mido.MidiFile(path)
    except Exception as exc:  # mido raises many types on corrupt files
        raise DataError(f"{path}: not a readable MIDI file ({type(exc).__name__})") from None
    v.label = any(msg.is_meta and msg.type == "text" and "trainedAlgorithmicMedia" in msg.text
                  for track in mid.tracks for msg in track)


def _text(path: Path, v: Verdict) -> None:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc})") from exc
    v.label = f'"{label.FOOTER_KEY}"' in text or label.LABEL in text


def _sidecar(path: Path, v: Verdict, checks: list[bool]) -> None:
    signed = manifest.read_sidecar(path)
    if signed is None:
        return
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    _ed25519(signed, v, checks, sha, f"sidecar {manifest.sidecar_path(path).name}")
