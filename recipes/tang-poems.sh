#!/usr/bin/env bash
# Retrain the shipped Tang-verse model (models/tang-poems/) reproducibly, then measure it.
#
#   recipes/tang-poems.sh                 # CPU, 1 thread (about 30 CPU-minutes)
#   DEVICE=cuda STEPS=6000 BATCH=64 recipes/tang-poems.sh
#   RUN=runs/poetry/00003-poetry-tang-tang recipes/tang-poems.sh   # export + measure only
#   MODEL=gpu/tang/model.safetensors recipes/tang-poems.sh          # measure an exported model
#   (recipes/poetry-gpu.sh trains on a CUDA GPU from the token files alone)
#
# 1. builds the corpus (npm chinese-poetry@2.0.1, sha256-pinned; OpenCC; pypinyin) into the
#    data home, 2. trains `poetry-tang` (seed 0) through the ONE Trainer, 3. exports the best
#    checkpoint (held-out loss) as fp16 safetensors with its vocabulary, 4. writes 100
#    constrained, 100 unconstrained and 100 constrained --novel poems (25 of each form) and
#    their metrics into $OUT/eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-1200}
BATCH=${BATCH:-32}
DEVICE=${DEVICE:-cpu}
MINUTES=${MINUTES:-0}
RUNS=${RUNS:-runs/poetry}
OUT=${OUT:-models/tang-poems}
DATA=${DATA:-tang}  # or a .tokens.npz file
EXTRA=${EXTRA:-}

muselab() {  # the CLI, with the poetry recipes registered
  "$PY" -c 'import muselab.poetry.recipes; from muselab.cli import app; app(prog_name="muselab")' "$@"
}

if [ -n "${MODEL:-}" ]; then  # an exported model (e.g. from recipes/poetry-gpu.sh): measure it
  mkdir -p "$OUT"
  [ "$MODEL" -ef "$OUT/model.safetensors" ] || cp "$MODEL" "$OUT/model.safetensors"
elif [ -z "${RUN:-}" ]; then
  before=$(ls -d "$RUNS"/*-poetry-tang-* 2>/dev/null | tail -1 || true)
  # shellcheck disable=SC2086
  muselab train poetry-tang --data "$DATA" --steps "$STEPS" --batch "$BATCH" --seed 0 \
    --device "$DEVICE" --runs-dir "$RUNS" --no-progress \
    --set model_config.decay_steps="$STEPS" --set train.threads=1 \
    --set train.max_minutes="$MINUTES" --set train.tensorboard=false $EXTRA
  RUN=$(ls -d "$RUNS"/*-poetry-tang-* | tail -1)
  [ "$RUN" != "$before" ] || { echo "no new run in $RUNS" >&2; exit 1; }
fi
if [ -z "${MODEL:-}" ]; then
  echo "run: $RUN"
  BEST="$RUN/best/model.safetensors"
  [ -f "$BEST" ] || BEST="$RUN/model.safetensors"
  "$PY" -c 'import sys; from pathlib import Path; from muselab.poetry.poet import export_model
print(export_model(Path(sys.argv[1]), Path(sys.argv[2])))' "$BEST" "$OUT"
fi

mkdir -p "$OUT/eval"
for mode in constraints no-constraints novel; do
  : > "$OUT/eval/$mode.jsonl"
  seed=0
  for form in jueju5 jueju7 lushi5 lushi7; do
    muselab poem --model "$OUT" --form "$form" --n 25 --seed "$seed" --"$mode" \
      --out "$OUT/eval/$form-$mode.jsonl" > /dev/null
    cat "$OUT/eval/$form-$mode.jsonl" >> "$OUT/eval/$mode.jsonl"
    rm "$OUT/eval/$form-$mode.jsonl"
    seed=$((seed + 1000))
  done
  muselab eval poetry "$OUT/eval/$mode.jsonl" --json "$OUT/eval/$mode.metrics.json"
done
muselab poem --model "$OUT" --form qijue --acrostic 春夏秋冬 --seed 1 --tones
