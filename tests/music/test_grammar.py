"""The music token grammar: its memoised masks, and its draft for speculative decoding."""

from __future__ import annotations

import torch

from muselab.music.compose import soprano_line
from muselab.music.grammar import GrammarMask, closing_chord
from muselab.music.midi import read_midi
from muselab.music.tokens import BAR, VOCAB, encode
from tests.music.fixtures import CHORALES, FOLK


def test_fast_grammar_mask_equals_reference() -> None:
    """The looked-up masks equal the masks computed afresh, token by token, on real music
    (two chorales, a folk song) and under harmonisation constraints."""
    cases = []
    for path, style in ((CHORALES[0], "bach"), (CHORALES[1], "bach"), (FOLK, "folk")):
        piece = read_midi(path, style=style)
        cases.append((GrammarMask(piece.bars(), piece.bar_ticks), encode(piece)))
    melody = read_midi(CHORALES[0], style="bach")
    bt = melody.bar_ticks
    forced = {(n.start // bt, n.start % bt): (n.pitch, n.duration)
              for n in soprano_line(melody)}
    cases.append((GrammarMask(melody.bars(), bt, melody=forced), encode(melody)))
    closing = read_midi(CHORALES[1], style="bach")  # its last bar has several onsets: the
    tokens = encode(closing)  # comparison stops where the closing chord's constraints bite
    bars_before = [i for i, t in enumerate(tokens) if t == BAR][-1]
    cases.append((GrammarMask(closing.bars(), closing.bar_ticks,
                              final_chord=closing_chord(closing.key)), tokens[: bars_before + 2]))
    for mask, tokens in cases:
        ref = mask.reference(tokens)
        t = torch.tensor([tokens])
        fast = [mask(t[:, : i + 1])[0] for i in range(len(tokens))]
        assert len(mask._table) < len(tokens)  # states repeat: the table is reused
        for i, (a, b) in enumerate(zip(fast, ref, strict=True)):
            assert torch.equal(a, b), f"token {i}"


def test_grammar_draft_guesses_forced_tokens_and_durations() -> None:
    """On a real chorale: the draft is always an allowed token; where the grammar allows one
    token it is that token; after a note it is a duration, and it is right often enough
    to pay (the voices of a chorale often share a duration)."""
    piece = read_midi(CHORALES[0], style="bach")
    tokens = encode(piece)
    mask, ref = GrammarMask(piece.bars(), piece.bar_ticks), GrammarMask(piece.bars(),
                                                                        piece.bar_ticks)
    allowed = ref.reference(tokens)
    t = torch.tensor([tokens])
    durs = hits = 0
    for i in range(1, len(tokens) - 1):
        guess = mask.draft(t[:, : i + 1])
        ok = allowed[i]  # the allowed set after tokens[: i + 1]
        if int(ok.sum()) == 1:
            assert guess == int(ok.nonzero()), f"token {i}"
        if guess is not None:
            assert bool(ok[guess]), f"token {i}: draft {guess} is not allowed"
        if VOCAB.KINDS[VOCAB.kind[tokens[i + 1]]] == "dur":  # None only before the first
            durs, hits = durs + 1, hits + (guess == tokens[i + 1])
    assert durs > 50 and hits / durs > 0.5, (hits, durs)
