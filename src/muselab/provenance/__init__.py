"""Provenance of every muselab output: explicit labels, an invisible image watermark
carrying a 64-bit work id, and signed manifests (C2PA where the format allows, an
Ed25519-signed sidecar JSON otherwise), checked by ``muselab verify``.

Modules: :mod:`~muselab.provenance.ecc` (BCH code), :mod:`~muselab.provenance.watermark`,
:mod:`~muselab.provenance.keys`, :mod:`~muselab.provenance.manifest` (records and
signing), :mod:`~muselab.provenance.label`, :mod:`~muselab.provenance.apply` (hooks
used by the writers) and :mod:`~muselab.provenance.verify`. Nothing runs at import time.
"""
