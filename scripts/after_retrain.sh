#!/usr/bin/env bash
# After new sketch-inverter weights are copied to forensics/weights/ (sketch_inverter.pt + .json):
# refit what depends on them and re-measure, in order (about 35 minutes on 2 CPU cores):
#
#   scripts/after_retrain.sh
#
# 1. benchmarks/photo_identification.py builds the open gallery if benchmarks/work/open.db is missing
#    (LFW + CUFS test + FS2K val photos, ~12 min) and re-measures photo identification;
# 2. scripts/calibrate_scores.py refits the sketch search space (whitening: training photos only, so
#    unchanged by a new inverter), then the fusion offsets and the FPIR calibration in it (training
#    sketches only) for the new inverter's SHA-256;
# 3. benchmarks/sketch_identification.py (closed galleries rebuilt) for raw / inverted / fusion;
# 4. accuracy.json, the 12-example inversion figure and docs/benchmarks.md are regenerated.
# Then update the numbers quoted in docs/models.md (model card) and docs/forensic-use.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -f benchmarks/work/open.db ] || "$PY" benchmarks/photo_identification.py
"$PY" scripts/calibrate_scores.py
rm -f benchmarks/work/closed_*
"$PY" benchmarks/sketch_identification.py
"$PY" scripts/write_accuracy.py
"$PY" scripts/inversion_figure.py
"$PY" benchmarks/write_doc.py
git status --short
