"""Language-model training through the ONE Trainer: batches, one step, resume, learning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from muselab.errors import DataError
from muselab.music.tokens import PITCH_HI, PITCH_LO, VOCAB, decode
from muselab.train.lm import LMBatches, get_transform, load_corpus, load_corpus_file
from muselab.train.run import resolve_config, resume_run, start_run
from tests.music.fixtures import fixture_corpus

TINY_NET = {"block_size": 64, "n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0}


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    return fixture_corpus(tmp_path / "fixture.tokens.npz")


def lm_config(corpus: Path, steps: int, **model: Any) -> Any:
    model = {"net": TINY_NET, "warmup_steps": 2, "decay_steps": 4, **model}
    return resolve_config("music-bach", overrides={
        "data": {"source": str(corpus)}, "model_config": model,
        "train": {"steps": steps, "batch_size": 4, "checkpoint_every": 2, "metric_every": 2,
                  "metric_n": 16, "log_every": 1, "progress": False, "tensorboard": False,
                  "seed": 3}})


def test_corpus_file_round_trip(corpus_file: Path) -> None:
    c = load_corpus_file(corpus_file)
    assert c.vocab == VOCAB.names and len(c.pieces("train")) == 3 and len(c.pieces("val")) == 1
    assert c is not None and load_corpus(str(corpus_file)).train.tolist() == c.train.tolist()
    with pytest.raises(DataError, match="does not exist"):
        load_corpus_file(corpus_file.with_name("missing.tokens.npz"))
    bad = corpus_file.with_name("bad.tokens.npz")
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a muselab token corpus"):
        load_corpus_file(bad)


def test_batches_are_a_function_of_the_step(corpus_file: Path) -> None:
    c = load_corpus_file(corpus_file)
    make = lambda: LMBatches(c.train, 32, 4, seed=1, start_tokens=c.start_tokens)  # noqa: E731
    a, b = make().batch(7), make().batch(7)
    assert torch.equal(a.images, b.images) and a.labels is not None
    assert torch.equal(a.images[:, 1:], a.labels[:, :-1])  # targets are the next tokens
    assert not torch.equal(make().batch(8).images, a.images)
    starts = set(c.start_tokens)
    assert all(int(row[0]) in starts for row in a.images)


def test_transposition_keeps_notes_in_range_and_moves_the_key(corpus_file: Path) -> None:
    c = load_corpus_file(corpus_file)
    piece = torch.from_numpy(c.pieces("train")[1][:200].astype(np.int64))[None].repeat(16, 1)
    transform = get_transform(c.transform)
    assert transform is not None
    moved = transform(piece, torch.Generator().manual_seed(0))
    shifts = set()
    original = decode(piece[0].tolist())
    for row in moved.tolist():
        p = decode(row)
        diffs = {b.pitch - a.pitch for a, b in zip(original.notes, p.notes, strict=True)}
        assert len(diffs) == 1  # one shift for the whole window
        shift = diffs.pop()
        assert (p.key.tonic - original.key.tonic) % 12 == shift % 12
        assert all(PITCH_LO <= n.pitch <= PITCH_HI for n in p.notes)
        shifts.add(shift)
    assert len(shifts) > 3


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_one_step_is_finite_and_resume_is_exact(corpus_file: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    straight = start_run(lm_config(corpus_file, 4), runs)
    straight.fit()
    log = [json.loads(x) for x in (straight.run_dir / "log.jsonl").read_text().splitlines()]
    assert np.isfinite(log[0]["loss"]) and log[0]["step"] == 1
    assert straight.run_dir.name.endswith("music-bach-fixture")
    first = start_run(lm_config(corpus_file, 2), runs)
    first.fit()
    resumed = resume_run(first.run_dir, steps=4)
    assert resumed.step == 2
    resumed.fit()
    a, b = weights(straight.run_dir), weights(resumed.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = [json.loads(x) for x in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {m["metric"] for m in metrics} == {"val_loss"}
    assert (straight.run_dir / "best" / "model.safetensors").is_file()


def test_loss_goes_down(corpus_file: Path, tmp_path: Path) -> None:
    trainer = start_run(lm_config(corpus_file, 40, lr=3e-3, min_lr=3e-3), tmp_path / "runs")
    trainer.fit()
    log = [json.loads(x) for x in (trainer.run_dir / "log.jsonl").read_text().splitlines()]
    first, last = np.mean([r["loss"] for r in log[:5]]), np.mean([r["loss"] for r in log[-5:]])
    assert last < 0.7 * first, (first, last)
    val = [json.loads(x) for x in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert val[-1]["value"] < val[0]["value"]
