#!/usr/bin/env bash
# models/emoji-ldm64: text-to-image latent diffusion on emoji captions at 64 px.
# Usage: AE=runs/NNNNN-autoencoder-emoji64 recipes/emoji-ldm64.sh [extra options]
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
: "${AE:?set AE to the autoencoder run made by recipes/emoji-ae64.sh}"
$MUSELAB train latent-diffusion --text --data emoji --res 64 --holdout 100 --batch 128 --seed 0 \
  --steps "${STEPS:-4000}" --set model_config.autoencoder="$AE" \
  --set model_config.net.base=64 --set train.ema_decay=0.999 \
  --set train.sample_every=1000 --set train.checkpoint_every=1000 "$@"
