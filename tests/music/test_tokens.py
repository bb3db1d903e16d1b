"""The REMI-like tokenizer: MIDI -> tokens -> MIDI keeps every note; keys parse clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from muselab.errors import ConfigError, DataError
from muselab.music.midi import read_midi, write_midi
from muselab.music.tokens import (
    BAR,
    BOS,
    EOS,
    VOCAB,
    Key,
    Note,
    Piece,
    decode,
    encode,
    parse_key,
    transpose_table,
)
from tests.music.fixtures import CHORALES, FOLK


@pytest.mark.parametrize("path", [*CHORALES, FOLK], ids=lambda p: p.name)
def test_midi_tokens_midi_round_trip(path: Path, tmp_path: Path) -> None:
    piece = read_midi(path)
    assert len(piece.notes) > 20
    tokens = encode(piece)
    assert tokens[0] == BOS and tokens[-1] == EOS and tokens.count(BAR) == piece.bars()
    back = decode(tokens)
    assert sorted(back.notes) == sorted(piece.notes)
    assert (back.key, back.time_signature) == (piece.key, piece.time_signature)
    write_midi(back, tmp_path / "again.mid")
    again = read_midi(tmp_path / "again.mid")
    assert sorted(again.notes) == sorted(piece.notes)


def test_four_voices_and_header() -> None:
    piece = read_midi(CHORALES[1])
    assert {n.voice for n in piece.notes} == {0, 1, 2, 3}
    by_voice = {v: sum(n.pitch for n in piece.notes if n.voice == v) /
                sum(1 for n in piece.notes if n.voice == v) for v in range(4)}
    assert by_voice[0] > by_voice[1] > by_voice[2] > by_voice[3]  # soprano on top
    names = [VOCAB.names[t] for t in encode(piece)[:7]]
    assert names == ["BOS", "Style_other", "Key_A_major", "TimeSig_4/4", "Tempo_90", "Vel_80",
                     "Bar"]


def test_velocity_is_running_status_and_empty_bars_survive() -> None:
    notes = [Note(0, 4, 60, 0, 80), Note(4, 4, 62, 0, 80), Note(40, 4, 64, 0, 112)]
    piece = Piece(notes, Key(0), (4, 4), 120.0, "folk", n_bars=4)
    tokens = encode(piece)
    assert sum(VOCAB.names[t].startswith("Vel_") for t in tokens) == 2  # header + one change
    back = decode(tokens)
    assert back.notes == notes and back.bars() == 4


def test_transpose_table_moves_notes_and_keys() -> None:
    table = transpose_table()
    up2 = table[5 + 2]
    assert up2[VOCAB.note(1, 60)] == VOCAB.note(1, 62)
    assert up2[VOCAB.key(Key(11, True))] == VOCAB.key(Key(1, True))
    assert up2[BAR] == BAR
    assert table[5 - 5][VOCAB.note(0, 30)] == -1  # below the range: not allowed


@pytest.mark.parametrize(("text", "key"), [
    ("D minor", Key(2, True)), ("Bb major", Key(10)), ("f#", Key(6, True)), ("Eb", Key(3)),
    ("c minor", Key(0, True)), ("A", Key(9)), ("G#m", Key(8, True))])
def test_parse_key(text: str, key: Key) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H major", "D dorian", "", "minor", "C##"])
def test_bad_key_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--key"):
        parse_key(text)


def test_bad_midi_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_midi(empty)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"MThd this is not really a midi file")
    with pytest.raises(DataError, match="not a readable MIDI"):
        read_midi(junk)
    with pytest.raises(DataError, match="does not exist"):
        read_midi(tmp_path / "missing.mid")
    import pretty_midi

    silent = tmp_path / "silent.mid"
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    pm.write(str(silent))
    with pytest.raises(DataError, match="no notes"):
        read_midi(silent)
