#!/usr/bin/env bash
# models/emoji-text32: text-to-image latent diffusion on emoji captions at 32 px.
# The diffusion runs on the 128-d latent vectors of the shipped VAE (models/emoji-vae32) with
# a residual MLP (LSGM, Vahdat et al. 2021; the DALL-E 2 prior, Ramesh et al. 2022): about
# 0.15 CPU-second a step at batch 128: one CPU thread trains it in about 7 minutes.
# The codes are the VAE's posterior means: at step 3,000 they put the prompted category first
# for 50 % of held-out captions against 41 % for posterior samples at step 5,000. Longer is
# worse here (27 % at 10,000 steps: the MLP fits the 3,686 fixed codes), hence 3,000 steps.
# One torch thread: on a shared machine two threads spin and run ten times slower.
# Usage: recipes/emoji-text32.sh [extra muselab train options]
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train latent-diffusion --text --data emoji --res 32 --holdout 100 --batch 128 --seed 0 \
  --steps "${STEPS:-3000}" --set model_config.autoencoder="${VAE:-emoji-vae32}" \
  --set model_config.vae_posterior=mean \
  --set model_config.lr=3e-4 --set train.ema_decay=0.999 --set train.threads=1 \
  --set train.sample_every=1000 --set train.checkpoint_every=500 "$@"
