"""``kill -9`` during training: every checkpoint on disk loads, and resuming gives the loss
curve and weights of a run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from muselab.train import checkpoint as ck
from muselab.train.callbacks import Callback, Checkpoint
from muselab.train.run import resume_run, start_run
from muselab.train.trainer import Trainer
from tests.faults.conftest import (
    check_all_load,
    in_child,
    kill_after,
    kill_config,
    loss_curve,
    same_weights,
    suicide,
)

KILLS = 20


def _train_in_child(fresh: Trainer, steps: int | None = None,
                    arm: Callable[[Trainer], None] | None = None) -> None:
    """Resume ``fresh``'s run from its latest checkpoint (or start it if it has none)."""
    run = fresh.run_dir
    trainer = resume_run(run, steps=steps) if fresh.latest_checkpoint() else fresh
    if arm is not None:
        arm(trainer)
    trainer.fit()


def _finish_and_compare(fresh: Trainer, runs: Path, extra: int) -> int:
    """Resume to ``extra`` steps past the last checkpoint and compare with a straight run."""
    latest = fresh.latest_checkpoint()
    assert latest is not None
    final = int(ck.load_state(latest / ck.STATE_FILE)["step"]) + extra
    resume_run(fresh.run_dir, steps=final).fit()
    straight = start_run(kill_config(steps=final, checkpoint_every=0), runs / "straight")
    straight.fit()
    got, want = loss_curve(fresh.run_dir), loss_curve(straight.run_dir)
    assert [r["step"] for r in got] == list(range(1, final + 1))  # no hole, no duplicate
    assert got == want
    assert same_weights(fresh.run_dir, straight.run_dir)
    assert not list(fresh.run_dir.rglob(".*.tmp*")), "torn temporary files were left behind"
    return final


class _Ready(Callback):
    """Tells the parent (one byte on a pipe) that the loop is running: the random kill then
    lands among steps and checkpoint writes, however long start-up took on a busy machine."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def on_train_start(self, trainer: Trainer) -> None:
        os.write(self.fd, b"r")


def _ready_signal(fd: int) -> Callable[[Trainer], None]:
    return lambda trainer: trainer.callbacks.append(_Ready(fd))


def test_kill9_at_20_random_moments(runs: Path, tmp_path: Path) -> None:
    rng = random.Random(20261126)
    fresh = start_run(kill_config(steps=10**6), runs)
    probe = start_run(kill_config(steps=1), tmp_path / "probe").task.modules
    errors = tmp_path / "child-errors.txt"
    kills = checked = 0
    torn: set[str] = set()
    while kills < KILLS:
        ready, tell = os.pipe()
        pid = in_child(lambda fd=tell: _train_in_child(fresh, arm=_ready_signal(fd)), errors)
        os.close(tell)
        started = os.read(ready, 1)  # empty: the child died before its loop began
        os.close(ready)
        assert started == b"r", errors.read_text() if errors.exists() else "no child"
        assert kill_after(pid, rng.uniform(0.0, 0.5)), errors.read_text()
        kills += 1
        c, _ = check_all_load(fresh.run_dir, probe)
        checked += c
        torn |= {p.name for p in fresh.run_dir.rglob(".*.tmp*")}
    final = _finish_and_compare(fresh, runs, extra=3)
    assert final > KILLS // 2  # the kills fell among training steps, not only at start-up
    print(f"\n{kills} kills survived; {checked} checkpoint files loaded after them; "
          f"{len(torn)} torn temporary files seen (never read); resumed to step {final}")


class _DieAfterCommit(Callback):
    """Dies right after the Checkpoint callback committed step ``at`` (before later ones)."""

    order = Checkpoint.order + 1

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer: Trainer, logs: dict[str, torch.Tensor]) -> None:
        if trainer.step == self.at:
            suicide()


def _arm(point: str, at: int) -> Callable[[Trainer], None]:
    """Install a kill at ``point`` of the checkpoint of step ``at``."""

    def arm(trainer: Trainer) -> None:
        due = lambda: trainer.step >= at  # noqa: E731
        if point == "after-commit":
            cb = _DieAfterCommit(at)
            trainer.callbacks = sorted([*trainer.callbacks, cb], key=lambda c: c.order)
            return
        real_save, real_state, real_link = ck.save_file, ck.save_state, ck.link_or_copy

        def torn_save(tensors: dict[str, torch.Tensor], name: str, **kw: Any) -> None:
            real_save(tensors, name, **kw)
            if due() and "state" in name:
                os.truncate(name, os.path.getsize(name) // 2)  # half the bytes reached disk
                suicide()

        def save_state(path: Path, state: dict[str, Any]) -> None:
            if due():
                suicide()  # model.safetensors of this step written, state not
            real_state(path, state)

        def link(src: Path, dst: Path) -> None:
            if due() and dst.name == ck.STATE_FILE and dst.parent == trainer.run_dir:
                suicide()  # top-level model points at step N, state still at N-1
            real_link(src, dst)

        ck.save_file = torn_save  # type: ignore[assignment]
        ck.save_state = save_state  # type: ignore[assignment]
        ck.link_or_copy = link  # type: ignore[assignment]
        if point != "mid-write":
            ck.save_file = real_save  # type: ignore[assignment]
        if point != "between-files":
            ck.save_state = real_state  # type: ignore[assignment]
        if point != "between-links":
            ck.link_or_copy = real_link  # type: ignore[assignment]

    return arm


def test_kill9_at_the_worst_moments(runs: Path, tmp_path: Path) -> None:
    """Deterministic kills inside each window of a checkpoint save."""
    fresh = start_run(kill_config(steps=10**6), runs)
    probe = start_run(kill_config(steps=1), tmp_path / "probe").task.modules
    errors = tmp_path / "child-errors.txt"
    points = ["mid-write", "between-files", "between-links", "after-commit"]
    for i, point in enumerate(points):
        pid = in_child(lambda p=point, at=2 * i + 2: _train_in_child(fresh, arm=_arm(p, at)),
                       errors)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL, (point, errors)
        _, torn = check_all_load(fresh.run_dir, probe)
        if point == "mid-write":
            assert torn == 1  # the torn file is there, and ignored
    _finish_and_compare(fresh, runs, extra=2)
