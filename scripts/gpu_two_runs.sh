#!/usr/bin/env bash
# One GPU lease, two inverter trainings side by side (an ablation: with and without U-Net skips).
# Run from the repo root on the device machine with .dev/carry carried (chip cache + dlib .dat).
# Keeps, per run, the exported weights, their sidecar, the log and the metrics (8 files in all).
set -uo pipefail
MIN="${1:-8}"
export CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
sed 's/"num_workers": 12/"num_workers": 7/' configs/inverter.json > /tmp/inverter_a.json
for run in a b; do
  cfg=/tmp/inverter_a.json; [ "$run" = b ] && cfg=configs/inverter_skips.json
  OUT=/tmp/run_$run bash scripts/gpu_train.sh "$MIN" "$cfg" > /tmp/run_$run.out 2>&1 &
done
wait
for run in a b; do
  mkdir -p "$OUT/$run"
  tail -5 /tmp/run_$run.out
  for f in sketch_inverter.pt sketch_inverter.json train.log metrics.jsonl; do
    cp "/tmp/run_$run/$f" "$OUT/$run/$f" 2>/dev/null || echo "run $run: no $f"
  done
done
ls -la "$OUT"/*
