"""Forms, rhyme classes and the tone rule."""

from __future__ import annotations

import pytest

from muselab.errors import ConfigError
from muselab.poetry.metrics import zh_form, zh_rhymes, zh_tone_match
from muselab.poetry.prosody import (
    LEVEL,
    OBLIQUE,
    get_form,
    layout,
    regular_form,
    rhyme_and_tone,
)
from muselab.poetry.tang import split_lines

JINGYESI = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
# 王维《山居秋暝》 (rhymes 秋流舟留 in modern Mandarin too) and 杜甫《春望》, whose last
# rhyme 簪 (Middle Chinese 侵 rhyme) reads zān today: the modern rhyme table misses it.
SHANJU = ("空山新雨后，天气晚来秋。明月松间照，清泉石上流。"
          "竹喧归浣女，莲动下渔舟。随意春芳歇，王孙自可留。")
CHUNWANG = ("国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。"
            "烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。")


def test_rhyme_classes_and_tones() -> None:
    assert rhyme_and_tone("霜")[0] == rhyme_and_tone("乡")[0] == rhyme_and_tone("光")[0]
    assert rhyme_and_tone("花")[0] == rhyme_and_tone("家")[0]
    assert rhyme_and_tone("诗")[0] != rhyme_and_tone("衣")[0]  # 支 vs 齐 (zh- initials)
    assert rhyme_and_tone("天")[1] == LEVEL and rhyme_and_tone("地")[1] == OBLIQUE
    assert rhyme_and_tone("，") == (-1, -1)


def test_forms_and_layout() -> None:
    lines = split_lines("床前明月光，疑是地上霜。\n舉頭望明月（一作山月），低頭思故鄉。")
    assert lines == ["床前明月光", "疑是地上霜", "舉頭望明月", "低頭思故鄉"]
    assert regular_form(lines) == "jueju5" and regular_form(lines[:3]) is None
    assert layout(["床前明月光", "疑是地上霜"]) == "床前明月光，疑是地上霜。"
    assert get_form("qijue").name == "jueju7"
    with pytest.raises(ConfigError, match="unknown Chinese verse form 'sonnet'"):
        get_form("sonnet")


def test_metrics_on_real_poems() -> None:
    assert zh_form(JINGYESI) is not None and zh_form(JINGYESI).name == "jueju5"  # type: ignore
    assert zh_form(JINGYESI.replace("。", "，")) is None  # punctuation out of place
    assert zh_form(SHANJU).name == "lushi5"  # type: ignore[union-attr]
    assert zh_rhymes(split_lines(JINGYESI)) and zh_rhymes(split_lines(SHANJU))
    assert not zh_rhymes(split_lines(CHUNWANG))  # the documented modern-rhyme limitation
    assert not zh_rhymes(["床前明月光", "疑是地上霜", "举头望明月", "低头思故人"])
    assert zh_tone_match(split_lines(SHANJU)) > 0.95  # one miss: 竹 (entering tone) reads level
    assert zh_tone_match(split_lines(CHUNWANG)) > 0.9
