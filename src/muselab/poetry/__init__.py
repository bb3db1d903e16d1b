"""Poetry: classical Chinese verse (Tang) and English verse, with constrained decoding.

Modules: :mod:`~muselab.poetry.prosody` (forms, rhyme classes, tones),
:mod:`~muselab.poetry.vocab` (character vocabulary), :mod:`~muselab.poetry.tang`
(the ``chinese-poetry`` corpus), :mod:`~muselab.poetry.constraints` (the
``logits_mask`` for forms, rhyme, tones, acrostics), :mod:`~muselab.poetry.poet`
(loading a model and writing poems), :mod:`~muselab.poetry.metrics` and
:mod:`~muselab.poetry.recipes` (training recipes).
"""
