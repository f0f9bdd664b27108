#!/usr/bin/env bash
# Build, on this machine, what a GPU training call carries (.dev/carry, git-ignored, 64 MiB at most):
# the aligned-chip cache (training side + the held-out CUFS test cache) and dlib's descriptor weights.
#
#   scripts/prepare_carry.sh
#
# then the device tool's run, with carry [".dev/carry/chips.npz", ".dev/carry/dlib_face_recognition_resnet_model_v1.dat"]:
#   OUT=$OUT bash scripts/gpu_runs.sh MINUTES CONFIG...
# The CUFS test cache (6 MB) no longer fits beside the tree's ~7 MB under the 64 MiB limit; training
# then skips its held-out CUFS evaluation, which `python -m forensics.training.trainer --evaluate W`
# does here afterwards.
#
# About 7 minutes on 2 CPU cores (MTCNN + dlib landmarks on ~5,700 images); reuses a cache already built.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
mkdir -p .dev/carry runs/cache
# built under runs/cache (beside it the unencoded chips.aligned.npz, ~0.5 GB, which is not carried)
[ -f runs/cache/chips.npz ] || "$PY" -m forensics.training.data --out runs/cache/chips.npz
cp runs/cache/chips.npz runs/cache/chips_cufs_test.npz .dev/carry/
"$PY" - <<'PY'
import shutil
from forensics.models.weight_files import dlib_resnet_weights_path
shutil.copy(dlib_resnet_weights_path(), ".dev/carry/")
PY
du -ch .dev/carry/*
total=$(du -cb .dev/carry/* | tail -1 | cut -f1)
[ "$total" -lt $((64 * 1024 * 1024)) ] || { echo "error: .dev/carry is $total bytes, over the 64 MiB a call carries" >&2; exit 1; }
