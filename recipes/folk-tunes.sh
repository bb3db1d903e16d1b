#!/usr/bin/env bash
# Retrain the shipped folk-tune model (models/folk-tunes/) reproducibly, then measure it.
#
#   nice -n 10 recipes/folk-tunes.sh          # how it was made (CPU, one thread)
#   RUN=runs/music/00000-music-folk-essen-folk recipes/folk-tunes.sh     # export + eval
#
# Settings: recipes/folk-tunes.toml (3 layers x 128, 256-token context, 800 steps of
# 16 x 256 tokens); steps: recipes/music.sh. Pieces are scored in 3/4 (METER).
NAME=folk-tunes STYLE=folk REFERENCE=essen-folk METER=${METER:-3/4} DEVICE=${DEVICE:-cpu} \
DESCRIPTION="Folk melodies in the style of the Essen collection: small 3-layer Transformer \
on REMI-like tokens (music21 essenFolksong, transposition-augmented), trained on a CPU" \
LICENCE="weights: same terms as muselab; training data: Essen Folksong Collection via music21 \
(non-commercial distribution and use permitted; see music21/corpus/essenFolksong/license.txt)" \
  exec "$(dirname "$0")/music.sh"
