"""The poetry-tang recipe trains through the ONE Trainer; export keeps what generation needs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from muselab.poetry.poet import VOCAB_META, ZhPoet, export_model
from muselab.train.lm import LMBatches, load_corpus_file
from muselab.train.run import build_task
from tests.poetry.conftest import tiny_run_config


def test_one_training_step_is_finite(tiny_corpus: Path) -> None:
    from muselab.models.registry import get_model
    from muselab.train.task import DataInfo

    corpus = load_corpus_file(tiny_corpus / "tang.tokens.npz")
    cfg = tiny_run_config(tiny_corpus / "tang.tokens.npz")
    info = DataInfo(resolution=0, channels=0, num_classes=corpus.vocab_size)
    task = build_task(get_model("poetry-tang"), cfg.model_config, info, 0,  # type: ignore
                      torch.device("cpu"))
    batches = LMBatches(corpus.train, 96, 4, seed=0, start_tokens=corpus.start_tokens)
    before = [p.detach().clone() for p in task.modules["lm"].parameters()]
    logs = task.train_step(batches.batch(0), 0, torch.Generator().manual_seed(0))
    loss = float(logs["loss"])
    assert torch.isfinite(logs["loss"]) and 6.0 < loss < 9.0  # ~ln(vocab) at initialisation
    after = list(task.modules["lm"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_export_is_fp16_with_vocab(tiny_run: Path, tmp_path: Path) -> None:
    path = export_model(tiny_run / "model.safetensors", tmp_path / "tang-poems")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        assert all(fh.get_tensor(k).dtype == torch.float16 for k in fh.keys())
    assert json.loads(meta["config"])["data"]["source"] == "tang"
    assert json.loads(meta[VOCAB_META])["tokens"][0] == "<bos>"
    shipped = ZhPoet.load(str(tmp_path / "tang-poems"), "cpu")
    run = ZhPoet.load(str(tiny_run), "cpu")
    assert shipped.vocab.tokens == run.vocab.tokens
    assert shipped.write("jueju5", seed=3)[0].text == run.write("jueju5", seed=3)[0].text
