#!/usr/bin/env bash
# models/emoji-dcgan64: the default GAN recipe (dcgan, docs/training.md) at 64 px.
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train dcgan --data emoji --res 64 --batch 64 --seed 0 --steps "${STEPS:-20000}" \
  --set train.sample_every=2000 --set train.checkpoint_every=2000 \
  --set train.metric_every=2000 "$@"
