#!/usr/bin/env bash
# models/emoji-dcgan32-cond: the dcgan recipe conditioned on the emoji category (10 classes).
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train dcgan --conditional --data emoji --res 32 --batch 64 --seed 0 \
  --steps "${STEPS:-20000}" --set train.sample_every=2000 --set train.checkpoint_every=2000 \
  --set train.metric_every=2000 "$@"
