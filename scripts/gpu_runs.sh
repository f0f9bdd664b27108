#!/usr/bin/env bash
# Several sketch-inverter trainings side by side on one GPU machine (an ablation), each for MINUTES:
#
#   scripts/gpu_runs.sh MINUTES CONFIG [CONFIG ...]
#   e.g. scripts/gpu_runs.sh 7.5 configs/inverter.json configs/inverter_gan.json configs/inverter_lr1e4.json
#
# Run from the repository root on the GPU machine with the training data of scripts/prepare_carry.sh
# in .dev/carry (chip cache + dlib's weights). The runs share the GPU, and the machine's 15 spare CPU
# cores are split between their data-loader workers (gpu_train.sh's WORKERS override), which
# synthesize and augment the training sketches. Each run's exported weights, sidecar, log, metrics and
# preview are packed as one archive, $OUT/run_<config name>.tgz, so every run comes back as one file
# named by its configuration; the evaluation lines of every run are printed at the end.
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
