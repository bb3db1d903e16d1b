"""``muselab poem`` and ``muselab eval poetry`` end to end, good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from muselab.cli import app
from muselab.poetry.metrics import zh_lines
from muselab.poetry.service import read_poems_file

runner = CliRunner()


def test_poem_acrostic_and_eval(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "poems.jsonl"
    res = runner.invoke(app, ["poem", "--model", str(tiny_run), "--acrostic", "春风明月",
                              "--form", "qijue", "--seed", "4", "--n", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    records = read_poems_file(out)  # the poems (a provenance label line may follow)
    assert [r["seed"] for r in records] == [4, 5, 6] and records[0]["model"] == str(tiny_run)
    assert all(r["text"] in res.output.replace("\n", "") for r in records)
    assert all("".join(s[0] for s in zh_lines(r["text"])) == "春风明月" for r in records)
    res = runner.invoke(app, ["eval", "poetry", str(out), "--no-copies", "--json",
                              str(tmp_path / "scores.json")])
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]
    assert scores["form_valid"] == 1.0 and scores["rhyming"] == 1.0 and scores["poems"] == 3


def test_poem_bad_input(tiny_run: Path, tmp_path: Path) -> None:
    cases = {
        ("--acrostic", "龘靐齉爩"): "vocabulary has no",
        ("--acrostic", "春風明月"): "vocabulary has no '風'",  # traditional: not in the vocab
        ("--acrostic", "春夏秋"): "has 4 lines",
        ("--form", "sonnet"): "unknown Chinese verse form 'sonnet'",
        ("--form", "jueju5", "--theme", "一二三四五", "--theme-as", "opening"): "at most 4",
        ("--lang", "fr"): "choose zh or en",
    }
    for args, message in cases.items():
        res = runner.invoke(app, ["poem", "--model", str(tiny_run), *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
    res = runner.invoke(app, ["poem", "--model", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no shipped model" in res.output


def test_eval_bad_files(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "poetry", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2 and "cannot read poems file" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nope": 1}\n')
    res = runner.invoke(app, ["eval", "poetry", str(bad)])
    assert res.exit_code == 2 and "needs a \"text\" string" in res.output


def test_eval_text_file(tmp_path: Path) -> None:
    poems = tmp_path / "poems.txt"
    poems.write_text("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n\n"
                     "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\n", "utf-8")
    res = runner.invoke(app, ["eval", "poetry", str(poems), "--no-copies"])
    assert res.exit_code == 0 and "form_valid" in res.output and "1.000" in res.output
