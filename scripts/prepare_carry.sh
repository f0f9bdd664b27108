#!/usr/bin/env bash
# Package, on this machine, the training data of a sketch-inverter run on a GPU machine, in .dev/carry
# (git-ignored): the inverter trains on aligned face chips and scores itself with dlib's descriptor, so
# the GPU machine needs these files beside the checkout:
#   chips.npz     the aligned-chip cache of the training side (CUFS train, FS2K train + the 200
#                 validation pairs that choose the checkpoint, LFW photos to synthesize sketches from),
#                 JPEG-encoded chips in one array, so the remote machine receives the whole training set
#                 in one transfer and needs neither MTCNN nor the data sets themselves;
#   dlib_face_recognition_resnet_model_v1.dat
#                 dlib's descriptor weights: the identity and perceptual critic of the training losses;
#   fs2k_select.json
#                 the FS2K validation identities of the protocol's select half (a few kB), which a run
#                 given SELECT_IDS (scripts/gpu_train.sh) chooses its checkpoint on.
# The held-out CUFS test chips (runs/cache/chips_cufs_test.npz) stay here: no training run looks at
# them, and `python -m forensics.training.trainer --evaluate W` measures the exported weights on them
# afterwards, on this machine.
#
#   scripts/prepare_carry.sh
#
# then on the GPU machine, with .dev/carry/chips.npz and .dev/carry/dlib_face_recognition_resnet_model_v1.dat:
#   OUT=$OUT bash scripts/gpu_runs.sh MINUTES CONFIG...
# or, one run choosing its checkpoint on the select half only:
#   CACHE=.dev/carry/chips.npz DLIB_WEIGHTS=.dev/carry/dlib_face_recognition_resnet_model_v1.dat \
#   SELECT_IDS=.dev/carry/fs2k_select.json OUT=$OUT bash scripts/gpu_train.sh 9 configs/inverter_artist.json
#
# About 7 minutes on 2 CPU cores (MTCNN + dlib landmarks on ~5,700 images); reuses a cache already built.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
mkdir -p .dev/carry runs/cache
# built under runs/cache (beside it the unencoded chips.aligned.npz, ~0.5 GB, which is not carried)
[ -f runs/cache/chips.npz ] || "$PY" -m forensics.training.data --out runs/cache/chips.npz
cp runs/cache/chips.npz .dev/carry/
"$PY" scripts/fs2k_select_identities.py -o runs/cache/fs2k_select.json
cp runs/cache/fs2k_select.json .dev/carry/
"$PY" - <<'PY'
import shutil
from forensics.models.weight_files import dlib_resnet_weights_path
shutil.copy(dlib_resnet_weights_path(), ".dev/carry/")
PY
du -ch .dev/carry/*
total=$(du -cb .dev/carry/* | tail -1 | cut -f1)
# the GPU machine receives the checkout and these files together, 64 MiB at most
[ "$total" -lt $((64 * 1024 * 1024)) ] || { echo "error: .dev/carry is $total bytes, over the 64 MiB the GPU machine receives" >&2; exit 1; }
