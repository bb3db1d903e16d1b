#!/usr/bin/env bash
# models/emoji-vae32: the vae recipe at 32 px.
set -euo pipefail
MUSELAB=${MUSELAB:-muselab}
$MUSELAB train vae --data emoji --res 32 --batch 64 --seed 0 --steps "${STEPS:-20000}" \
  --set train.sample_every=2000 --set train.checkpoint_every=2000 "$@"
