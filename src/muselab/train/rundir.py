"""Numbered run directories, as stylegan2-ada names them: ``runs/00012-wgan-gp-emoji32/``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from muselab.errors import MuselabError
from muselab.io import ensure_dir

RUNS_ENV = "MUSELAB_RUNS"
_RUN_RE = re.compile(r"^(\d{5})-")


def runs_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$MUSELAB_RUNS``, else ``./runs``."""
    return Path(root or os.environ.get(RUNS_ENV) or "runs")


def new_run_dir(root: Path, desc: str) -> Path:
    """Create the next numbered run directory under ``root``."""
    ensure_dir(root, "runs directory")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", desc).strip("-") or "run"
    while True:
        path = root / f"{_next_number(root):05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another process took this number; try the next
            continue


def find_run(spec: str | os.PathLike[str], root: Path) -> Path:
    """A run given as a directory, a number (``12``) or a directory name under ``root``."""
    path = Path(spec)
    if path.is_dir():
        return path
    text = str(spec)
    if root.is_dir():
        if text.isdigit():
            for child in root.iterdir():
                m = _RUN_RE.match(child.name)
                if m and int(m.group(1)) == int(text) and child.is_dir():
                    return child
        if (root / text).is_dir():
            return root / text
    raise MuselabError(f"no run {text!r} (looked for a directory, and a run number in {root})")


def list_runs(root: Path) -> list[Path]:
    """Run directories under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _RUN_RE.match(p.name))


def _next_number(root: Path) -> int:
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
    return max(numbers, default=-1) + 1
