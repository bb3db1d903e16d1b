"""Music: a REMI-like multi-voice tokenizer, corpora from music21, composition, metrics.

Modules: :mod:`~muselab.music.tokens` (notes <-> tokens, no heavy dependencies),
:mod:`~muselab.music.midi` (MIDI files in and out, WAV, piano rolls),
:mod:`~muselab.music.corpus` (Bach chorales and Essen folk songs, parsed once and cached),
:mod:`~muselab.music.compose` (generation, continuation, harmonisation),
:mod:`~muselab.music.metrics` and :mod:`~muselab.music.recipes` (training recipes).
"""
