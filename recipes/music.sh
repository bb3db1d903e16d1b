#!/usr/bin/env bash
# Train, export and measure a shipped music model (used by bach-chorale.sh, folk-tunes.sh).
#
#   NAME=bach-chorale STYLE=bach REFERENCE=bach-chorales recipes/music.sh
#
# 1. parses the corpus of music21==9.9.1 once into the data home (DATA=path/to/*.tokens.npz
#    skips music21), 2. trains with recipes/$NAME.toml (seed 0) through the ONE Trainer,
#    3. exports the best checkpoint (held-out loss) as fp16 safetensors + meta.json into
#    models/$NAME, 4. composes 50 pieces of 16 bars (25 in G major, 25 in D minor, seeds
#    100.. and 200..) and scores them against the corpus's held-out pieces.
#    RUN=runs/music/NNNNN-... skips training (export + measure only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-auto}
RUNS=${RUNS:-runs/music}
OUT=${OUT:-models/$NAME}
DATA=${DATA:-$REFERENCE}
MINUTES=${MINUTES:-0}
METER=${METER:-4/4}

muselab() { "$PY" -c 'from muselab.cli import main; main()' "$@"; }

if [ -z "${RUN:-}" ]; then
  before=$(ls -d "$RUNS"/*-music-* 2>/dev/null | tail -1 || true)
  muselab train --config "recipes/$NAME.toml" --data "$DATA" --device "$DEVICE" \
    --runs-dir "$RUNS" --no-progress --set train.max_minutes="$MINUTES"
  RUN=$(ls -d "$RUNS"/*-music-* | tail -1)
  [ "$RUN" != "$before" ] || { echo "no new run in $RUNS" >&2; exit 1; }
fi
echo "run: $RUN"
BEST="$RUN/best/model.safetensors"
[ -f "$BEST" ] || BEST="$RUN/model.safetensors"
"$PY" - "$BEST" "$OUT" "$NAME" "$DESCRIPTION" "$LICENCE" <<'PYEOF'
import sys
from pathlib import Path
from muselab.music.recipes import export_model
best, out, name, description, licence = sys.argv[1:]
print(export_model(Path(best), Path(out), name=name, description=description, licence=licence))
PYEOF

EVAL=$(mktemp -d)
muselab compose --model "$OUT" --style "$STYLE" --meter "$METER" --bars 16 --key "G major" \
  --n 25 --seed 100 --no-wav --out "$EVAL/major"
muselab compose --model "$OUT" --style "$STYLE" --meter "$METER" --bars 16 --key "D minor" \
  --n 25 --seed 200 --no-wav --out "$EVAL/minor"
muselab eval music "$EVAL" --reference "$REFERENCE" --json "$OUT/eval-metrics.json"
rm -rf "$EVAL"
