#!/usr/bin/env bash
# Train the shipped image models side by side on one GPU, then export them as zoo entries.
#
#   MODE=full  (default) on a CUDA machine: each job stops after its minute budget.
#   MODE=tiny  a CPU smoke test of the same commands: 2 steps each, small batches.
#
# Each job writes into $RUNS/<job>/ and its log to $RUNS/<job>.log; exports go to
# $EXPORT/<model name>/ (models/<name>/ layout: fp16 weights + meta.json).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-full}
RUNS=${RUNS:-gpu-runs}
EXPORT=${EXPORT:-gpu-export}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export MUSELAB=${MUSELAB:-"python3 -m muselab.cli"}
mkdir -p "$RUNS" "$EXPORT"

if [ "$MODE" = full ]; then
  export STEPS=1000000
  common=(--device cuda --no-progress --set train.threads=2)
  budget() { echo "--set train.max_minutes=$1"; }
else
  export STEPS=2
  common=(--device cpu --no-progress --limit 300 --batch 8 --set train.sample_n=2
          --set train.metric_n=16)
  budget() { echo "--set train.max_minutes=$1"; }
fi
ae_min=${AE_MIN:-2.0}; ldm_min=${LDM_MIN:-4.0}; long_min=${LONG_MIN:-6.0}

job() {  # job NAME RECIPE-SCRIPT [args...]: run one recipe into $RUNS/NAME
  local name=$1 recipe=$2; shift 2
  echo "[$(date +%T)] start $name"
  "recipes/$recipe" --runs-dir "$RUNS/$name" "${common[@]}" "$@" >"$RUNS/$name.log" 2>&1
  echo "[$(date +%T)] end $name: exit $?"
}
run_of() { ls -d "$RUNS/$1"/0* 2>/dev/null | tail -1; }

# shellcheck disable=SC2046
{ job ae emoji-ae64.sh $(budget "$ae_min") &&
  AE=$(run_of ae) job ldm emoji-ldm64.sh $(budget "$ldm_min"); } &
# shellcheck disable=SC2046
job text32 emoji-text32.sh $(budget "$long_min") &
# shellcheck disable=SC2046
job dcgan64 emoji-dcgan64.sh $(budget "$long_min") &
# shellcheck disable=SC2046
job dcgan32cond emoji-dcgan32-cond.sh $(budget "$long_min") &
# shellcheck disable=SC2046
job vae32 emoji-vae32.sh $(budget "$long_min") &
wait

export_one() {  # export_one JOB NAME LICENCE DESCRIPTION
  local run; run=$(run_of "$1")
  [ -n "$run" ] || { echo "no run for $1"; return; }
  $MUSELAB models export "$run" --name "$2" --out "$EXPORT/$2" --licence "$3" \
    --description "$4" || echo "export $1 failed"
}
export_one ldm emoji-ldm64 "Apache-2.0" "text-to-image latent diffusion, emoji 64 px"
export_one text32 emoji-text32 "Apache-2.0" "text-to-image pixel diffusion, emoji 32 px"
export_one dcgan64 emoji-dcgan64 "Apache-2.0" "DCGAN, emoji 64 px"
export_one dcgan32cond emoji-dcgan32-cond "Apache-2.0" "DCGAN conditioned on emoji category, 32 px"
export_one vae32 emoji-vae32 "Apache-2.0" "convolutional VAE, emoji 32 px"
echo "[$(date +%T)] done"
