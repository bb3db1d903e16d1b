"""Fixtures: a tiny Tang corpus (400 real poems from chinese-poetry@2.0.1) and a tiny model.

The corpus goes through the real pipeline (tarball -> OpenCC -> forms -> tokens); the
model is a 1-layer Transformer trained for 2 steps through the ONE Trainer.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[1] / "fixtures" / "poetry" / "poet.tang.3000.json"
TINY_NET = {"block_size": 96, "n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0}


def make_tarball(path: Path) -> Path:
    """A tarball laid out like the npm package, holding the fixture poems."""
    data = FIXTURE.read_bytes()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("package/dist/quantangshi/poet.tang.3000.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder of the fixture corpus (poems.jsonl, lines.txt, tang.tokens.npz)."""
    from muselab.poetry.tang import TangCorpus, build_corpus

    root = tmp_path_factory.mktemp("tang")
    corpus = TangCorpus(root / "cache")
    build_corpus(make_tarball(root / "fixture.tgz"), corpus, progress=False)
    return corpus.root


def tiny_run_config(tokens: Path, steps: int = 2) -> object:
    import muselab.poetry.recipes  # noqa: F401
    from muselab.train.run import resolve_config

    return resolve_config("poetry-tang", overrides={
        "data": {"source": str(tokens)},
        "model_config": {"net": TINY_NET, "warmup_steps": 1, "decay_steps": 4},
        "train": {"steps": steps, "batch_size": 4, "checkpoint_every": steps, "metric_every": 0,
                  "log_every": 1, "progress": False, "tensorboard": False, "seed": 1}})


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of a tiny, barely trained Tang model."""
    from muselab.train.run import start_run

    trainer = start_run(tiny_run_config(tiny_corpus / "tang.tokens.npz"),  # type: ignore[arg-type]
                        tmp_path_factory.mktemp("runs"))
    trainer.fit()
    return trainer.run_dir
