#!/usr/bin/env bash
# One GPU lease, several inverter trainings side by side (an ablation), each for MINUTES:
#
#   scripts/gpu_runs.sh MINUTES CONFIG [CONFIG ...]
#   e.g. scripts/gpu_runs.sh 7.5 configs/inverter.json configs/inverter_gan.json configs/inverter_lr1e4.json
#
# Run from the repo root on the device machine with .dev/carry carried (chip cache + dlib .dat:
# scripts/prepare_carry.sh builds it here first). The box's 15 spare cores are split between the
# runs' data-loader workers (gpu_train.sh's WORKERS override). Each run's exported weights, sidecar,
# log, metrics and preview come back as one archive, $OUT/run_<config name>.tgz (the device tool
# returns at most 8 files), and the evaluation lines of every run are printed at the end.
# Session 3's ablation was inverter.json vs inverter_skips.json (then called gpu_two_runs.sh).
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MINUTES CONFIG [CONFIG ...]" >&2; exit 2; }
MIN="$1"; shift
export CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
WORKERS=$(( 15 / $# )); [ "$WORKERS" -ge 2 ] || WORKERS=2
names=()
for cfg in "$@"; do
  name="$(basename "$cfg" .json)"; names+=("$name")
  OUT="/tmp/run_$name" WORKERS=$WORKERS bash scripts/gpu_train.sh "$MIN" "$cfg" > "/tmp/run_$name.out" 2>&1 &
done
wait
mkdir -p "$OUT"
for name in "${names[@]}"; do
  echo "=== $name"
  grep -E "eval step|CUFS test|exported|Error|error" "/tmp/run_$name/train.log" 2>/dev/null || tail -20 "/tmp/run_$name.out"
  cp "/tmp/run_$name.out" "/tmp/run_$name/stdout.txt" 2>/dev/null
  tar -czf "$OUT/run_$name.tgz" -C "/tmp/run_$name" \
    $(cd "/tmp/run_$name" 2>/dev/null && ls sketch_inverter.pt sketch_inverter.json train.log metrics.jsonl preview.png stdout.txt 2>/dev/null) \
    || echo "run $name: nothing to pack"
done
ls -la "$OUT"
