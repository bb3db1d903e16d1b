"""A write error in the middle of a checkpoint (full disk, file-size limit): one clear
message naming the file, the previous checkpoint intact, and the run resumable."""

from __future__ import annotations

import errno
import os
import resource
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from muselab.cli import app
from muselab.errors import MuselabError
from muselab.io import sha256_file
from muselab.train import checkpoint as ck
from muselab.train.run import resume_run, start_run
from tests.faults.conftest import in_child, kill_config, wait_ok


def _snapshot(run: Path) -> dict[str, str]:
    """sha256 of every finished checkpoint file (the run's top level and step folders)."""
    files = [*run.glob("*.safetensors"), *run.glob("checkpoints/*/*.safetensors")]
    return {str(p.relative_to(run)): sha256_file(p) for p in files if not p.name.startswith(".")}


def _four_steps(runs: Path) -> Path:
    trainer = start_run(kill_config(steps=4, checkpoint_every=2), runs)
    trainer.fit()
    return trainer.run_dir


def _assert_intact(run: Path, before: dict[str, str]) -> None:
    after = _snapshot(run)
    assert {k: after.get(k) for k in before} == before  # nothing finished was touched
    resumed = resume_run(run, steps=6)
    assert resumed.step == 4  # the previous checkpoint is the one that resumes
    resumed.fit()
    assert resumed.step == 6


def test_disk_full_halfway_through_a_checkpoint(runs: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    run = _four_steps(runs)
    before = _snapshot(run)
    real = ck.save_file

    def half_then_enospc(tensors: dict[str, torch.Tensor], name: str, **kw: Any) -> None:
        real(tensors, name, **kw)
        os.truncate(name, os.path.getsize(name) // 2)  # half of it reached the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)

    monkeypatch.setattr(ck, "save_file", half_then_enospc)
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--steps", "6",
                                      "--no-progress"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "error: could not write" in message and "No space left on device" in message
    assert "--resume" in message and "Traceback" not in result.output
    monkeypatch.setattr(ck, "save_file", real)
    assert not list(run.rglob(".*.tmp*"))  # the half-written file was removed
    _assert_intact(run, before)


def test_real_write_error_from_the_kernel(runs: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), inside safetensors'
    own writer: the error still arrives as one clear message."""
    run = _four_steps(runs)
    before = _snapshot(run)
    limit = os.path.getsize(run / ck.MODEL_FILE) // 2
    errors, message = tmp_path / "errors.txt", tmp_path / "message.txt"

    def body() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        trainer = resume_run(run, steps=6)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            trainer.fit()
        except MuselabError as exc:
            message.write_text(str(exc))  # shorter than the limit

    wait_ok(in_child(body, errors), errors)
    text = message.read_text()
    assert text.startswith("could not write") and "File too large" in text
    _assert_intact(run, before)
