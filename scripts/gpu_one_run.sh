#!/usr/bin/env bash
# One sketch-inverter training alone on a GPU machine (no other run shares the GPU):
#   scripts/gpu_one_run.sh CONFIG [MINUTES=4]
# with the training data of scripts/prepare_carry.sh in .dev/carry; the exported weights, sidecar,
# training log and metrics are copied to $OUT.
set -uo pipefail
CONFIG="$1"; MIN="${2:-4}"
export CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat
OUT=/tmp/run bash scripts/gpu_train.sh "$MIN" "$CONFIG" > /tmp/run.out 2>&1
tail -4 /tmp/run.out
for f in sketch_inverter.pt sketch_inverter.json train.log metrics.jsonl; do cp "/tmp/run/$f" "$OUT/$f"; done
