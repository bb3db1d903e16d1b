"""The signing identity of this muselab installation, made on first use.

Files in ``<data home>/provenance/`` (see :func:`muselab.io.data_home`):

* ``signing-key.pem``: an Ed25519 private key (PKCS#8 PEM, file mode 0600). It signs the
  sidecar manifests and is the key of the C2PA signing certificate.
* ``c2pa-chain.pem``: the C2PA signing certificate (Ed25519, 10 years) followed by the
  self-signed local root that issued it. The root's private key is discarded right after
  issuing, so nothing else can be issued under it.
* ``c2pa-root.pem``: the local root alone: the trust anchor with which ``muselab verify``
  marks this installation's own signatures as trusted.

These are self-signed, so they prove that a file is unchanged since *this installation*
signed it, not who the person behind it is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muselab.errors import MuselabError
from muselab.io import atomic_write, data_home, ensure_dir

KEY_FILE = "signing-key.pem"
CHAIN_FILE = "c2pa-chain.pem"
ROOT_FILE = "c2pa-root.pem"


@dataclass(frozen=True)
class Identity:
    """The loaded signing identity."""

    key_pem: bytes  # Ed25519 private key, PKCS#8 PEM
    chain_pem: bytes  # signing certificate + root, PEM
    root_pem: bytes  # root certificate, PEM
    public_key: bytes  # raw 32-byte Ed25519 public key

    def private_key(self) -> Any:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        return load_pem_private_key(self.key_pem, password=None)


def key_dir() -> Path:
    """``<data home>/provenance``."""
    return ensure_dir(data_home() / "provenance", "provenance key folder")


def identity() -> Identity:
    """This installation's identity, created (once, under a file lock) if missing."""
    folder = key_dir()
    paths = [folder / KEY_FILE, folder / CHAIN_FILE, folder / ROOT_FILE]
    if not all(p.is_file() for p in paths):
        with _locked(folder / ".lock"):
            if not all(p.is_file() for p in paths):
                _create(folder)
    try:
        key_pem, chain_pem, root_pem = (p.read_bytes() for p in paths)
    except OSError as exc:
        raise MuselabError(f"cannot read the signing identity in {folder}: {exc}") from exc
    return Identity(key_pem, chain_pem, root_pem, _raw_public(key_pem, folder / KEY_FILE))


def _raw_public(key_pem: bytes, path: Path) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    try:
        key = load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        raise MuselabError(f"{path} is not a PEM private key ({exc}); delete it to make "
                           "a new signing identity") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise MuselabError(f"{path} is not an Ed25519 key; delete it to make a new one")
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    with open(lock, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _create(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=3650)
    root_key = ec.generate_private_key(ec.SECP256R1())  # discarded after issuing
    key = ed25519.Ed25519PrivateKey.generate()
    host = os.uname().nodename[:40] or "localhost"

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "muselab (self-signed)")])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                             key_encipherment=False, data_encipherment=False,
                             key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                             encipher_only=False, decipher_only=False)

    root_name = name(f"muselab local root ({host})")
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(f"muselab signer ({host})"))
            .issuer_name(root_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    root_pem = root.public_bytes(pem)
    _write(folder / KEY_FILE, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), private=True)
    _write(folder / ROOT_FILE, root_pem)
    _write(folder / CHAIN_FILE, leaf.public_bytes(pem) + root_pem)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    def writer(tmp: str) -> None:
        os.chmod(tmp, 0o600 if private else 0o644)  # before any byte is written
        Path(tmp).write_bytes(data)

    atomic_write(path, writer)
