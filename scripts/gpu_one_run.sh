#!/usr/bin/env bash
# One inverter training on a lent GPU: CONFIG, MINUTES; keeps weights, sidecar, log, metrics in $OUT.
set -uo pipefail
CONFIG="$1"; MIN="${2:-4}"
export CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat
OUT=/tmp/run bash scripts/gpu_train.sh "$MIN" "$CONFIG" > /tmp/run.out 2>&1
tail -4 /tmp/run.out
for f in sketch_inverter.pt sketch_inverter.json train.log metrics.jsonl; do cp "/tmp/run/$f" "$OUT/$f"; done
