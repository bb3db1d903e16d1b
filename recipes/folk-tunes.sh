#!/usr/bin/env bash
# Retrain the shipped folk-tune model (models/folk-tunes/) reproducibly, then measure it.
#
#   DEVICE=cuda recipes/folk-tunes.sh        # how it was made (one H200)
#   RUN=runs/music/00004-music-folk-essen-folk recipes/folk-tunes.sh     # export + eval
#
# Settings: recipes/folk-tunes.toml; steps: recipes/music.sh.
NAME=folk-tunes STYLE=folk REFERENCE=essen-folk METER=${METER:-3/4} \
DESCRIPTION="Folk melodies in the style of the Essen collection: 6-layer Transformer on \
REMI-like tokens (music21 essenFolksong, transposition-augmented)" \
LICENCE="weights: same terms as muselab; training data: Essen Folksong Collection via music21 \
(non-commercial distribution and use permitted; see music21/corpus/essenFolksong/license.txt)" \
  exec "$(dirname "$0")/music.sh"
