"""Fault-injection helpers: training in forked children that are killed with SIGKILL.

Forking the test process (torch, the data and the tiny model already loaded) makes a
training process start in milliseconds instead of seconds, so twenty real ``kill -9``s
fit in a few seconds of CPU. The child never returns into pytest: it leaves with
``os._exit``.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from muselab.train import checkpoint as ck
from muselab.train.run import RunConfig
from tests.tiny import tiny_config

#: Tiny VAE on 32 digits, a checkpoint after every step (the most writes per second).
KILL_TRAIN = {"batch_size": 8, "metric_every": 0, "sample_every": 0, "checkpoint_every": 1,
              "keep_last": 3, "log_every": 1, "ema_decay": 0.0}


def kill_config(steps: int, **train: Any) -> RunConfig:
    return tiny_config("vae", steps=steps, extra={"data": {"limit": 32}},
                       **{**KILL_TRAIN, **train})


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runs folder; the data home is shared by the faults tests (digits decoded once)."""
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path.parent / "muselab-home"))
    return tmp_path / "runs"


def in_child(body: Callable[[], None], errors: Path) -> int:
    """Fork; the child runs ``body`` and exits 0 (1 with the traceback in ``errors``)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        body()
    except BaseException:
        code = 1
        with open(errors, "a") as fh:
            fh.write(traceback.format_exc())
    finally:
        os._exit(code)


def kill_after(pid: int, delay: float) -> bool:
    """SIGKILL ``pid`` after ``delay`` s; True if it was still running (a real kill)."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, "the training child failed"
            return False
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == -signal.SIGKILL


def wait_ok(pid: int, errors: Path) -> None:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, errors.read_text() if errors.exists() else f"exit {code}"


def suicide() -> None:
    """``kill -9`` of the calling process (the child), at exactly this line."""
    os.kill(os.getpid(), signal.SIGKILL)


def check_all_load(run: Path, modules: dict[str, torch.nn.Module]) -> tuple[int, int]:
    """Every finished safetensors file under ``run`` loads (weights into ``modules``);
    (files checked, torn temporary files seen). Temporary files (``.name.*.tmp...``) are
    writes a kill cut short: never read by muselab, only counted."""
    checked = torn = 0
    for path in sorted(run.rglob("*.safetensors")):
        if path.name.startswith("."):
            torn += 1
            continue
        if path.name == ck.MODEL_FILE:
            ck.load_model(path, modules)
        elif path.name == ck.STATE_FILE:
            assert int(ck.load_state(path)["step"]) >= 0
        else:
            load_file(str(path))
        checked += 1
    return checked, torn


def loss_curve(run: Path) -> list[dict[str, Any]]:
    """``log.jsonl`` without wall-clock fields."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in lines]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / ck.MODEL_FILE)), load_file(str(b / ck.MODEL_FILE))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
