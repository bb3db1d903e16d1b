#!/usr/bin/env bash
# Retrain the shipped chorale model (models/bach-chorale/) reproducibly, then measure it.
#
#   DEVICE=cuda recipes/bach-chorale.sh       # how it was made: ~30 s on one H200
#   recipes/bach-chorale.sh                   # CPU: same result in principle, ~1 CPU-day
#   RUN=runs/music/00003-music-bach-bach-chorales recipes/bach-chorale.sh  # export + eval
#
# 1. parses the 371 Bach chorales of music21==9.9.1 once into the data home (349 usable;
#    DATA=path/to/bach-chorales-v1.tokens.npz skips music21), 2. trains `music-bach` with
#    recipes/bach-chorale.toml (seed 0) through the ONE Trainer, 3. exports the best
#    checkpoint (held-out loss) as fp16 safetensors + meta.json, 4. composes 50 pieces of 16
#    bars (25 in G major, 25 in D minor) and scores them against the held-out chorales.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-auto}
RUNS=${RUNS:-runs/music}
OUT=${OUT:-models/bach-chorale}
DATA=${DATA:-bach-chorales}
MINUTES=${MINUTES:-0}

muselab() { "$PY" -c 'from muselab.cli import main; main()' "$@"; }

if [ -z "${RUN:-}" ]; then
  before=$(ls -d "$RUNS"/*-music-bach-* 2>/dev/null | tail -1 || true)
  muselab train --config recipes/bach-chorale.toml --data "$DATA" --device "$DEVICE" \
    --runs-dir "$RUNS" --no-progress --set train.max_minutes="$MINUTES"
  RUN=$(ls -d "$RUNS"/*-music-bach-* | tail -1)
  [ "$RUN" != "$before" ] || { echo "no new run in $RUNS" >&2; exit 1; }
fi
echo "run: $RUN"
BEST="$RUN/best/model.safetensors"
[ -f "$BEST" ] || BEST="$RUN/model.safetensors"
"$PY" - "$BEST" "$OUT" <<'PYEOF'
import sys
from pathlib import Path
from muselab.music.recipes import export_model
print(export_model(Path(sys.argv[1]), Path(sys.argv[2]), name="bach-chorale",
      description="Four-part chorales in the style of J. S. Bach: 6-layer Transformer on "
                  "REMI-like tokens (music21 Bach chorales, transposition-augmented)",
      licence="weights: same terms as muselab; training data: music21 corpus Bach chorales "
              "(public-domain music; encodings distributed with music21 under its corpus "
              "terms)"))
PYEOF

EVAL=$(mktemp -d)
muselab compose --model "$OUT" --bars 16 --key "G major" --n 25 --seed 100 --no-wav \
  --out "$EVAL/major"
muselab compose --model "$OUT" --bars 16 --key "D minor" --n 25 --seed 200 --no-wav \
  --out "$EVAL/minor"
muselab eval music "$EVAL" --reference bach-chorales --json "$OUT/eval-metrics.json"
rm -rf "$EVAL"
