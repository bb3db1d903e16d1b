"""Chinese prosody: verse forms, rhyme classes by pinyin finals, level/oblique tones.

Rhyme follows the 14 classes of the 中华新韵 (*Zhonghua Xinyun*, 2005), which group
modern Mandarin finals; tones follow modern Mandarin: tones 1-2 are level (平),
3-4 oblique (仄). Entering-tone (入声) characters that became level in Mandarin are
therefore counted as level; this is the usual simplification of "新韵" verse and
is stated in ``docs/poetry.md``.

The tone rule for regulated verse is the classical one, reduced to the positions
that matter (一三五不论，二四六分明): within a line the 2nd, 4th and 6th characters
alternate; the two lines of a couplet are opposite at the 2nd character (对) and the
first line of a couplet repeats the 2nd-character tone of the line before it (粘);
even lines end level (they rhyme), odd lines after the first end oblique.

pypinyin is imported lazily: only building a vocabulary needs it, generation reads
the per-token tables stored with the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from muselab.errors import ConfigError

LEVEL, OBLIQUE, UNKNOWN = 0, 1, -1

#: The 14 rhyme classes of the 中华新韵 and the (strict pypinyin) finals in each.
RHYME_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("麻", ("a", "ia", "ua")),
    ("波", ("o", "uo")),
    ("歌", ("e",)),
    ("皆", ("ie", "ve", "ue")),
    ("支", ()),  # -i after zh ch sh r z c s (special-cased below)
    ("齐", ("i", "er", "v")),
    ("微", ("ei", "uei", "ui")),
    ("开", ("ai", "uai")),
    ("姑", ("u",)),
    ("豪", ("ao", "iao")),
    ("尤", ("ou", "iou", "iu")),
    ("寒", ("an", "ian", "uan", "van")),
    ("文", ("en", "in", "uen", "un", "vn")),
    ("庚", ("eng", "ing", "ong", "iong", "ueng")),
    ("唐", ("ang", "iang", "uang")),
)
_FINAL_TO_CLASS = {f: i for i, (_, finals) in enumerate(RHYME_CLASSES) for f in finals}
_ZHI_CLASS = 4
_ZHI_INITIALS = {"zh", "ch", "sh", "r", "z", "c", "s"}

#: Line-end punctuation: odd lines (1st, 3rd, ...) end in a comma, even lines in a full stop.
COMMA, STOP = "，", "。"


@dataclass(frozen=True)
class Form:
    """A classical Chinese verse form: ``lines`` lines of ``chars`` characters."""

    name: str
    chars: int  # characters per line (5 or 7)
    lines: int  # 4 (jueju, quatrain) or 8 (lushi, regulated verse)
    title: str

    @property
    def length(self) -> int:
        """Tokens in the poem body: every line plus its punctuation mark."""
        return self.lines * (self.chars + 1)


FORMS: dict[str, Form] = {
    f.name: f
    for f in (
        Form("jueju5", 5, 4, "五言绝句"),
        Form("jueju7", 7, 4, "七言绝句"),
        Form("lushi5", 5, 8, "五言律诗"),
        Form("lushi7", 7, 8, "七言律诗"),
    )
}
#: Common pinyin names of the same forms.
FORM_ALIASES = {"wujue": "jueju5", "qijue": "jueju7", "wulu": "lushi5", "qilu": "lushi7"}


def get_form(name: str) -> Form:
    """The form called ``name`` (or an alias); a :class:`ConfigError` listing the choices."""
    key = FORM_ALIASES.get(name, name)
    if key not in FORMS:
        names = ", ".join([*FORMS, *FORM_ALIASES])
        raise ConfigError(f"--form: unknown Chinese verse form {name!r} (choices: {names})")
    return FORMS[key]


def form_of(chars: int, lines: int) -> Form | None:
    """The form with this shape, if any."""
    return next((f for f in FORMS.values() if f.chars == chars and f.lines == lines), None)


def is_hanzi(ch: str) -> bool:
    """A CJK unified ideograph (basic block or extension A)."""
    return len(ch) == 1 and ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")


@lru_cache(maxsize=65536)
def rhyme_and_tone(ch: str) -> tuple[int, int]:
    """(rhyme class index or -1, LEVEL / OBLIQUE / UNKNOWN) of a character's common reading."""
    if not is_hanzi(ch):
        return -1, UNKNOWN
    from pypinyin import Style, lazy_pinyin

    final = lazy_pinyin(ch, style=Style.FINALS_TONE3, strict=True, neutral_tone_with_five=True)[0]
    initial = lazy_pinyin(ch, style=Style.INITIALS, strict=True)[0]
    if not final or not final[-1].isdigit() or final == ch:
        return -1, UNKNOWN
    tone_digit, base = int(final[-1]), final[:-1]
    tone = LEVEL if tone_digit in (1, 2) else OBLIQUE if tone_digit in (3, 4) else UNKNOWN
    if base == "i" and initial in _ZHI_INITIALS:
        return _ZHI_CLASS, tone
    return _FINAL_TO_CLASS.get(base, -1), tone


def tone_position(chars: int, col: int) -> bool:
    """Whether column ``col`` (0-based) of a ``chars``-character line is tone-constrained.

    The 2nd, 4th and 6th characters (一三五不论，二四六分明) and the last one.
    """
    return col % 2 == 1 or col == chars - 1


def required_tone(line: int, col: int, chars: int, start: int) -> int | None:
    """The tone the rule asks for at (``line``, ``col``), given the 2nd-character tone
    ``start`` of the first line (LEVEL: 平起, OBLIQUE: 仄起); ``None`` when free."""
    if col == chars - 1:
        if line % 2 == 1:
            return LEVEL
        return None if line == 0 else OBLIQUE
    if col % 2 == 0:
        return None
    second = start if line % 4 in (0, 3) else 1 - start  # 对 and 粘
    return second if (col // 2) % 2 == 0 else 1 - second  # 2nd, 4th, 6th alternate


def regular_form(lines: list[str]) -> str | None:
    """The name of the regular form these lines make (all Chinese characters), or ``None``."""
    if not lines or len({len(s) for s in lines}) != 1:
        return None
    if not all(is_hanzi(ch) for s in lines for ch in s):
        return None
    form = form_of(len(lines[0]), len(lines))
    return form.name if form else None


def layout(lines: list[str]) -> str:
    """Lines with the fixed punctuation: a comma after odd lines, a full stop after even."""
    return "".join(s + (COMMA if i % 2 == 0 else STOP) for i, s in enumerate(lines))
