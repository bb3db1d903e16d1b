"""Constrained generation: well-formed bars, exact bar counts, continuation, harmonisation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from muselab.errors import ConfigError
from muselab.models.transformer import Transformer, TransformerConfig
from muselab.music.compose import Composer, Sampling, parse_meter, soprano_line, write_piece
from muselab.music.grammar import closing_chord
from muselab.music.midi import read_midi
from muselab.music.tokens import VOCAB, Key, Piece, encode
from tests.music.fixtures import CHORALES, FOLK


@pytest.fixture(scope="module")
def composer() -> Composer:
    """An untrained model: the grammar alone must make every output well formed."""
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=len(VOCAB), block_size=128, n_layer=1, n_head=2,
                            n_embd=32, dropout=0.0)
    return Composer(Transformer(cfg), {"model": "test"}, "random-init")


def assert_well_formed(piece: Piece, bars: int, voices: set[int]) -> None:
    assert piece.bars() == bars and piece.notes
    bt = piece.bar_ticks
    assert max(n.start + n.duration for n in piece.notes) <= bars * bt
    at: dict[int, list[int]] = defaultdict(list)
    for n in piece.notes:
        at[n.start].append(n.voice)
    for vs in at.values():  # at most one onset per voice and position
        assert len(vs) == len(set(vs))
    assert {n.voice for n in piece.notes} <= voices


def test_compose_exact_bars_and_well_formed(composer: Composer) -> None:
    pieces = composer.compose(style="bach", bars=4, key=Key(2, True), n=3, seed=1)
    assert len(pieces) == 3
    for p in pieces:
        assert_well_formed(p, 4, {0, 1, 2, 3})
        assert p.key == Key(2, True) and p.time_signature == (4, 4)
        assert encode(p)[:3] == encode(pieces[0])[:3]  # same header
    folk = composer.compose(style="folk", bars=3, time_signature=(6, 8), n=2, seed=2)
    for p in folk:
        assert_well_formed(p, 3, {0})
        assert p.time_signature == (6, 8)


def test_same_seed_same_piece(composer: Composer) -> None:
    a = composer.compose(bars=2, seed=7)[0]
    b = composer.compose(bars=2, seed=7)[0]
    c = composer.compose(bars=2, seed=8)[0]
    assert a.notes == b.notes and a.notes != c.notes


def test_continue_keeps_the_given_music(composer: Composer) -> None:
    given = read_midi(FOLK, style="folk")
    piece = composer.continue_piece(given, bars=2, seed=0, sampling=Sampling(top_p=None))
    assert piece.bars() == given.bars() + 2
    bt = given.bar_ticks
    assert [n for n in piece.notes if n.start < given.bars() * bt] == sorted(
        given.notes, key=lambda n: (n.start, n.voice, -n.pitch))


def test_harmonize_keeps_the_soprano_and_adds_voices(composer: Composer) -> None:
    melody = read_midi(CHORALES[0], style="bach")
    line = soprano_line(melody)
    piece = composer.harmonize(melody, seed=0)
    soprano = sorted(n for n in piece.notes if n.voice == 0)
    assert [(n.start, n.pitch, n.duration) for n in soprano] == [
        (n.start, n.pitch, n.duration) for n in line]
    assert {n.voice for n in piece.notes} - {0}  # lower voices were written
    assert piece.bars() == melody.bars()


def test_harmonization_closes_under_the_last_melody_note(composer: Composer) -> None:
    melody = read_midi(FOLK, style="folk")
    line = soprano_line(melody)
    chord = closing_chord(melody.key)
    assert line[-1].pitch % 12 in chord  # the tune ends on a tonic-chord note
    for seed in range(3):
        piece = composer.harmonize(melody, seed=seed)
        end = max(n.start + n.duration for n in piece.notes)
        last = [n for n in piece.notes if n.start == line[-1].start]
        assert sorted(n.voice for n in last) == [0, 1, 2, 3]
        assert all(n.start + n.duration == end for n in last)
        assert {n.pitch % 12 for n in last} <= set(chord)
        assert max(last, key=lambda n: n.voice).pitch % 12 == chord[0]
        assert not [n for n in piece.notes if n.start > line[-1].start]
    # a tune that ends off the tonic chord keeps a free ending
    off = replace(melody, notes=[*melody.notes[:-1], replace(melody.notes[-1],
                                                             pitch=melody.notes[-1].pitch + 1)])
    assert soprano_line(off)[-1].pitch % 12 not in chord
    free = [composer.harmonize(off, seed=s) for s in range(3)]
    assert any(len({n.voice for n in p.notes if n.start == line[-1].start}) < 4
               or max(n.start for n in p.notes) > line[-1].start for p in free)


def test_write_piece_outputs(composer: Composer, tmp_path: Path) -> None:
    piece = composer.compose(bars=2, seed=3)[0]
    files = write_piece(piece, tmp_path / "p", {"seed": 3}, wav=False)
    assert Path(files["midi"]).is_file() and Path(files["png"]).is_file()
    back = read_midi(tmp_path / "p.mid")
    assert sorted((n.start, n.pitch, n.duration) for n in back.notes) == sorted(
        (n.start, n.pitch, n.duration) for n in piece.notes)


def test_bad_requests(composer: Composer) -> None:
    with pytest.raises(ConfigError, match="--style"):
        composer.compose(style="jazz")
    with pytest.raises(ConfigError, match="--meter"):
        parse_meter("7/8")
    with pytest.raises(ConfigError, match="--meter"):
        parse_meter("four")


@pytest.mark.parametrize(("style", "key"), [("bach", Key(2, True)), ("folk", Key(7))])
def test_cadence_ends_on_the_held_tonic_chord(composer: Composer, style: str, key: Key) -> None:
    """Even an untrained model must end on the tonic triad, root in the lowest voice, one
    onset at the start of the last bar held to the end; without it, the end is free."""
    meter = (3, 4) if style == "folk" else (4, 4)
    triad = {2, 5, 9} if key.minor else {7, 11, 2}
    for seed in range(3):
        piece = composer.compose(style=style, bars=3, key=key, time_signature=meter,
                                 seed=seed)[0]
        bt = piece.bar_ticks
        last = [n for n in piece.notes if n.start + n.duration > 2 * bt]
        voices = {0} if style == "folk" else {0, 1, 2, 3}
        assert {n.voice for n in last} == voices and len(last) == len(voices)
        assert all(n.start == 2 * bt and n.duration == bt for n in last)
        assert {n.pitch % 12 for n in last} <= triad
        assert max(last, key=lambda n: n.voice).pitch % 12 == key.tonic
        pitches = [n.pitch for n in sorted(last, key=lambda n: n.voice)]
        assert pitches == sorted(pitches, reverse=True) and len(set(pitches)) == len(pitches)
        if style == "bach":  # a full triad: the third is there
            assert (key.tonic + (3 if key.minor else 4)) % 12 in {p % 12 for p in pitches}
    free = [composer.compose(style=style, bars=3, key=key, time_signature=meter, seed=s,
                             cadence=False)[0] for s in range(3)]
    assert any(len({n.start for n in p.notes if n.start >= 2 * p.bar_ticks}) > 1 for p in free)


def test_continuation_ends_on_the_tonic_chord(composer: Composer) -> None:
    start = read_midi(CHORALES[0], style="bach")
    piece = composer.continue_piece(start, bars=2, seed=0)
    bt, total = piece.bar_ticks, start.bars() + 2
    last = [n for n in piece.notes if n.start >= (total - 1) * bt]
    assert len(last) == 4 and {n.start for n in last} == {(total - 1) * bt}
    root = closing_chord(start.key)[0]
    assert max(last, key=lambda n: n.voice).pitch % 12 == root


def test_shipped_folk_model_writes_tunes_in_key() -> None:
    """models/folk-tunes loads (sha256-checked) and writes one-voice tunes, mostly in key."""
    folk = Composer.load("folk-tunes")
    assert folk.model.cfg.n_layer == 3 and folk.block_size == 256
    pieces = folk.compose(style="folk", bars=4, key=Key(7), time_signature=(3, 4), n=2, seed=0)
    g_major = {7, 9, 11, 0, 2, 4, 6}
    for p in pieces:
        assert_well_formed(p, 4, {0})
        in_key = sum(n.pitch % 12 in g_major for n in p.notes) / len(p.notes)
        assert in_key >= 0.75, in_key  # random pitches: about 7/12
