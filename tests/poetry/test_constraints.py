"""Constrained decoding never breaks the form (property-style, many seeds, untrained model)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from muselab.errors import ConfigError
from muselab.poetry.constraints import ZhFormMask, ZhSpec, line_endings
from muselab.poetry.metrics import zh_form, zh_lines, zh_rhymes, zh_tone_match
from muselab.poetry.poet import ZhPoet
from muselab.poetry.prosody import FORMS, get_form, rhyme_and_tone


@pytest.fixture(scope="module")
def poet(tiny_run: Path) -> ZhPoet:
    return ZhPoet.load(str(tiny_run), "cpu")


def test_every_constrained_poem_has_its_form(poet: ZhPoet) -> None:
    rng = random.Random(0)
    hanzi = [t for t, h in zip(poet.vocab.tokens, poet.vocab.hanzi, strict=True) if h]
    for seed in range(48):
        form = rng.choice(list(FORMS.values()))
        acrostic = "".join(rng.sample(hanzi, form.lines)) if seed % 3 == 0 else ""
        theme = "".join(rng.sample(hanzi, rng.randint(1, form.chars - 1))) if seed % 4 == 1 else ""
        if acrostic and theme:  # both: the opening must start with the acrostic's character
            theme = acrostic[0] + theme[1:]
        tones = seed % 2 == 0
        (poem,) = poet.write(form.name, seed=seed, acrostic=acrostic, theme=theme,
                             theme_as="both" if theme else "title", tones=tones,
                             temperature=1.5, top_p=None)
        found = zh_form(poem.text)
        assert found is not None and found.name == form.name, poem.text
        lines = zh_lines(poem.text)
        assert zh_rhymes(lines), poem.text
        ends = [s[-1] for s in lines[1::2]]
        assert len(set(ends)) == len(ends)  # no rhyme character twice
        if acrostic:
            assert "".join(s[0] for s in lines) == acrostic
        if theme:
            assert lines[0].startswith(theme)
        if tones and not acrostic and not theme:
            assert zh_tone_match(lines) == 1.0, poem.text


def test_same_seed_same_poem(poet: ZhPoet) -> None:
    a = poet.write("jueju7", n=2, seed=5, temperature=1.2)
    b = poet.write("jueju7", n=1, seed=6, temperature=1.2)
    assert a[1].text == b[0].text and a[0].text != a[1].text


def test_unconstrained_output_is_free(poet: ZhPoet) -> None:
    poems = poet.write("lushi7", n=4, seed=0, constrained=False, temperature=1.5, top_p=None)
    assert sum(zh_form(p.text) is not None for p in poems) < 4  # untrained: form rarely right


def test_mask_rules(poet: ZhPoet) -> None:
    vocab, form = poet.vocab, get_form("jueju5")
    mask = ZhFormMask(vocab, ZhSpec(form), prompt_len=0)
    body = vocab.encode("床前明月光，疑是地上") if not vocab.missing("床前明月光疑是地上") else None
    if body is None:  # fall back to the first characters of the vocabulary
        chars = [t for t, h in zip(vocab.tokens, vocab.hanzi, strict=True) if h]
        body = vocab.encode("".join(chars[:5]) + "，" + "".join(chars[5:9]))
    allowed = mask(torch.tensor([body]))[0]  # the first rhyme: a class with enough characters
    assert bool(allowed.any()) and not bool(allowed[vocab.id("，")])
    done = mask(torch.tensor([body[:5]]))[0]
    assert done.nonzero().flatten().tolist() == [vocab.id("，")]
    assert all(rhyme_and_tone(vocab.tokens[i])[0] >= 0 for i in allowed.nonzero().flatten())


def test_novel_lines_are_never_completed(poet: ZhPoet, tiny_corpus: Path) -> None:
    lines = (tiny_corpus / "lines.txt").read_text("utf-8").split()
    avoid = line_endings(lines, poet.vocab, 5)
    prefix, ends = next(iter(avoid.items()))
    spec = ZhSpec(get_form("jueju5"))
    free = ZhFormMask(poet.vocab, spec, 0)(torch.tensor([list(prefix)]))[0]
    novel = ZhFormMask(poet.vocab, spec, 0, avoid)(torch.tensor([list(prefix)]))[0]
    assert all(bool(free[e]) and not bool(novel[e]) for e in ends)
    assert int(novel.sum()) == int(free.sum()) - len(set(ends))
    poet._line_endings[5] = avoid  # the fixture corpus stands in for the Tang corpus
    poems = poet.write("jueju5", n=8, seed=0, novel=True, temperature=0.7)
    known = set(lines)
    assert all(s not in known for p in poems for s in zh_lines(p.text))


def test_impossible_requests(poet: ZhPoet) -> None:
    with pytest.raises(ConfigError, match="has 4 lines"):
        poet.write("jueju5", acrostic="春夏秋冬春夏")
    with pytest.raises(ConfigError, match="at most 4"):
        poet.write("jueju5", theme="一二三四五", theme_as="opening")
    with pytest.raises(ConfigError, match="is not a Chinese character"):
        poet.write("jueju5", acrostic="ABCD")
    with pytest.raises(ConfigError, match="vocabulary has no"):
        poet.write("jueju5", acrostic="龘靐齉爩")
