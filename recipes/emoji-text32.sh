#!/usr/bin/env bash
# models/emoji-text32: text-to-image pixel-space diffusion on emoji captions at 32 px.
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train text-diffusion --text --data emoji --res 32 --holdout 100 --batch 128 --seed 0 \
  --steps "${STEPS:-8000}" --set model_config.net.base=64 --set train.ema_decay=0.999 \
  --set train.sample_every=1000 --set train.checkpoint_every=1000 "$@"
