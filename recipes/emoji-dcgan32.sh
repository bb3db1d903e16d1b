#!/usr/bin/env bash
# models/emoji-dcgan32: the default GAN (dcgan, CPU_NET widths) on the emoji at 32 px, one CPU
# thread. docs/training.md: plain DCGAN had its best SWD near step 1,000 in the 55-minute
# runs and drifted after, so this recipe trains 1,500 steps and ships the best checkpoint
# (lowest SWD, measured every 250 steps): muselab models export RUN --best.
# Usage: recipes/emoji-dcgan32.sh [extra muselab train options]
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train dcgan --config configs/emoji32.toml --steps "${STEPS:-1500}" \
  --set train.max_minutes=0 "$@"
