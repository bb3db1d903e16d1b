#!/usr/bin/env bash
# Retrain the shipped chorale model (models/bach-chorale/) reproducibly, then measure it.
#
#   DEVICE=cuda recipes/bach-chorale.sh      # how it was made: 28 s of training on one H200
#   recipes/bach-chorale.sh                  # CPU: the same recipe, most of a day
#   RUN=runs/music/00003-music-bach-bach-chorales recipes/bach-chorale.sh  # export + eval
#
# Settings: recipes/bach-chorale.toml; steps: recipes/music.sh.
NAME=bach-chorale STYLE=bach REFERENCE=bach-chorales \
DESCRIPTION="Four-part chorales in the style of J. S. Bach: 6-layer Transformer on REMI-like \
tokens (music21 Bach chorales, transposition-augmented)" \
LICENCE="weights: same terms as muselab; training data: music21 corpus Bach chorales \
(public-domain music; encodings distributed with music21 under its corpus terms)" \
  exec "$(dirname "$0")/music.sh"
