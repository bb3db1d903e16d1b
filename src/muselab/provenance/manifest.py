"""Provenance records and their signatures: C2PA (embedded) and Ed25519 (sidecar/chunk).

A *record* is a JSON object: schema, work id, content hash, model, weights hash,
parameters, seed, parents and software version (:func:`record`). It is signed two ways:

* :func:`sign_record` / :func:`check_signed`: Ed25519 (RFC 8032) over the canonical
  JSON of the record, with the raw public key alongside. Used for sidecars
  (``<file>.provenance.json``: MIDI, text) and the PNG ``muselab:manifest`` chunk.
* :func:`c2pa_sign` / :func:`c2pa_read`: a C2PA 2.x manifest (``c2pa-python``) with a
  ``c2pa.actions`` "created" action of source type ``trainedAlgorithmicMedia`` and the
  record as the ``org.muselab.provenance`` assertion, embedded in PNG, JPEG and WAV.

When ``c2pa-python`` is not installed, files get the Ed25519 signatures only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muselab.errors import DataError
from muselab.provenance.keys import identity
from muselab.provenance.label import DIGITAL_SOURCE_TYPE, LABEL

SCHEMA = "muselab.provenance/1"
ASSERTION = "org.muselab.provenance"
SIDECAR_SUFFIX = ".provenance.json"
#: Metadata keys that name parent works (their ids, files or hashes).
PARENT_KEYS = ("parent", "parents", "source", "content", "style", "init", "midi")


def software() -> str:
    from muselab import __version__

    return f"muselab {__version__}"


def canonical(obj: Any) -> bytes:
    """The bytes that are signed: key-sorted, compact, UTF-8 JSON."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def work_id(content: bytes, metadata: Mapping[str, Any] | None) -> int:
    """A deterministic 64-bit id: sha256 of the unmarked content and its parameters."""
    digest = hashlib.sha256(b"muselab-work/1\0" + content + b"\0" + canonical(metadata or {}))
    return int.from_bytes(digest.digest()[:8], "big")


def record(kind: str, wid: int, content_sha256: str, hash_of: str,
           metadata: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """The provenance record of one work (see the module docstring)."""
    meta = dict(metadata or {})
    parents = [meta[k] for k in PARENT_KEYS if meta.get(k) not in (None, "")]
    from muselab import __version__

    return {
        "schema": SCHEMA, "work_id": f"{wid:016x}", "label": LABEL,
        "digital_source_type": DIGITAL_SOURCE_TYPE, "kind": kind,
        "content": {"sha256": content_sha256, "of": hash_of},
        "model": meta.get("model"), "run": meta.get("run"),
        "weights": meta.get("weights"), "weights_sha256": _weights_sha256(meta.get("weights")),
        "seed": meta.get("seed"), "parents": parents, "parameters": meta,
        "software": {"name": "muselab", "version": __version__}, **extra,
    }


def _weights_sha256(weights: Any) -> str | None:
    if not isinstance(weights, str | os.PathLike) or not str(weights):
        return None
    path = Path(weights)
    if path.is_dir():  # a run folder: hash its weights file if it has one
        found = sorted(path.glob("*.safetensors")) or sorted(path.glob("*/*.safetensors"))
        path = found[-1] if found else path
    if not path.is_file():
        return None
    st = path.stat()
    return _hash_file(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:  # size/mtime key the cache
    from muselab.io import sha256_file

    return sha256_file(path)


# --- Ed25519 ---------------------------------------------------------------------------

def sign_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """``{"manifest": rec, "alg": "Ed25519", "public_key", "signature"}`` (base64)."""
    ident = identity()
    sig = ident.private_key().sign(canonical(dict(rec)))
    return {"manifest": dict(rec), "alg": "Ed25519",
            "public_key": base64.b64encode(ident.public_key).decode(),
            "signature": base64.b64encode(sig).decode()}


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of checking one signature: ``valid`` (the signature matches its record),
    ``own`` (made by this installation's key) and the record."""

    valid: bool
    own: bool
    manifest: dict[str, Any]
    why: str = ""


def check_signed(signed: Any) -> SignatureCheck:
    """Check an object made by :func:`sign_record` (never raises on bad input)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(signed, dict) or not isinstance(signed.get("manifest"), dict):
        return SignatureCheck(False, False, {}, "no manifest object")
    try:
        pub = base64.b64decode(signed["public_key"], validate=True)
        sig = base64.b64decode(signed["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, canonical(signed["manifest"]))
    except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
        why = "signature does not match" if isinstance(exc, InvalidSignature) else \
            f"malformed signature ({type(exc).__name__})"
        return SignatureCheck(False, False, signed["manifest"], why)
    return SignatureCheck(True, pub == identity().public_key, signed["manifest"])


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, rec: Mapping[str, Any]) -> Path:
    """Write the signed ``rec`` next to ``path`` (atomically)."""
    from muselab.io import write_json

    side = sidecar_path(path)
    write_json(side, sign_record(rec))
    return side


def read_sidecar(path: Path) -> Any | None:
    """The parsed sidecar of ``path``; None if absent; DataError if unreadable."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"provenance sidecar {side} is unreadable: {exc}") from exc


# --- C2PA ------------------------------------------------------------------------------

#: MIME types muselab signs with embedded C2PA manifests.
C2PA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".wav": "audio/wav", ".gif": "image/gif"}


@functools.cache
def c2pa_available() -> bool:
    """Whether ``c2pa-python`` imports (it is optional: Ed25519 signatures remain)."""
    try:
        import c2pa  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def c2pa_sign(data: bytes, mime: str, rec: Mapping[str, Any], title: str) -> bytes:
    """``data`` (a whole PNG/JPEG/WAV file) with an embedded, signed C2PA manifest."""
    import c2pa

    ident = identity()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ED25519, ident.chain_pem, ident.key_pem, None))
    manifest = {
        "claim_generator_info": [{"name": "muselab", "version": rec["software"]["version"]}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": {"name": "muselab",
                                  "version": rec["software"]["version"]}}]}},
            {"label": ASSERTION, "data": json.loads(canonical(dict(rec)))},
        ],
    }
    ctx = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest), context=ctx) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    signer.close()
    return out.getvalue()


@dataclass(frozen=True)
class C2paCheck:
    """``present``: a manifest is embedded; ``valid``: its signature and hashes hold;
    ``trusted``: signed under this installation's root; ``failures``: C2PA codes."""

    present: bool
    valid: bool
    trusted: bool
    manifest: dict[str, Any]
    failures: tuple[str, ...] = ()


def c2pa_read(data: bytes, mime: str) -> C2paCheck:
    """Validate the C2PA manifest embedded in ``data`` (no network: OCSP is skipped)."""
    import c2pa

    ctx = c2pa.Context.from_dict({"verify": {"verify_trust": True},
                                  "trust": {"trust_anchors": identity().root_pem.decode()}})
    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), context=ctx)
    except c2pa.C2paError as exc:
        absent = "ManifestNotFound" in type(exc).__name__ or "not found" in str(exc).lower()
        if absent or b"c2pa" not in data:  # no JUMBF "c2pa" box: nothing was embedded
            return C2paCheck(False, False, False, {})
        return C2paCheck(True, False, False, {}, (f"unreadable manifest: {exc}",))
    with reader:
        state = reader.get_validation_state() or ""
        results = reader.get_validation_results() or {}
        active = reader.get_active_manifest() or {}
    failures = tuple(f.get("code", "?") for f in
                     (results.get("activeManifest") or {}).get("failure", []))
    assertion: dict[str, Any] = next((a.get("data", {}) for a in active.get("assertions", [])
                                      if a.get("label") == ASSERTION), {})
    hard = tuple(f for f in failures if f != "signingCredential.untrusted")
    return C2paCheck(True, state in ("Valid", "Trusted") or not hard, state == "Trusted",
                     assertion, failures)
