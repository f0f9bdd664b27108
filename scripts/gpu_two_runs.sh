#!/usr/bin/env bash
# One GPU lease, two inverter trainings side by side (an ablation), each for MINUTES:
#
#   scripts/gpu_two_runs.sh [MINUTES=8] [CONFIG_A=configs/inverter.json] [CONFIG_B=configs/inverter_gan.json]
#
# Run from the repo root on the device machine with .dev/carry carried (chip cache + dlib .dat:
# scripts/prepare_carry.sh builds it here first). Keeps, per run, the exported weights, their
# sidecar, the log and the metrics (8 files in all) under $OUT/a and $OUT/b.
# Session 3's ablation was a = configs/inverter.json, b = configs/inverter_skips.json.
set -uo pipefail
MIN="${1:-8}"
CFG_A="${2:-configs/inverter.json}"
CFG_B="${3:-configs/inverter_gan.json}"
export CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# two runs share the box's 16 cores: 7 loader workers each
sed 's/"num_workers": 12/"num_workers": 7/' "$CFG_A" > /tmp/config_a.json
sed 's/"num_workers": 12/"num_workers": 7/' "$CFG_B" > /tmp/config_b.json
for run in a b; do
  OUT=/tmp/run_$run bash scripts/gpu_train.sh "$MIN" /tmp/config_$run.json > /tmp/run_$run.out 2>&1 &
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
