#!/usr/bin/env bash
# The autoencoder inside models/emoji-ldm64: 64 px emoji -> 16x16x4 latents (Rombach 2022).
# Usage: recipes/emoji-ae64.sh [extra muselab train options, e.g. --device cuda]
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train autoencoder --data emoji --res 64 --holdout 100 --batch 64 --seed 0 \
  --steps "${STEPS:-3000}" \
  --set model_config.net.base=64 --set model_config.disc_start=1500 \
  --set model_config.perceptual_weight=0.1 --set model_config.perceptual_backbone=mobilenet-v2 \
  --set train.sample_every=1000 --set train.checkpoint_every=1000 "$@"
