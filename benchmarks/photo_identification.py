"""Photo identification (the photo control): the first photo of each of the 1,680 LFW people
with 2+ photos as probes, against the open gallery (LFW without those photos, plus the CUFS test
photos and every FS2K photo: benchmarks/common.py), through the real `forensics enroll` and `forensics evaluate`.
dlib's own pipeline reaches rank-1 89.9% on this protocol (../shared/notes/baselines.md).

    .venv/bin/python benchmarks/photo_identification.py [--rebuild]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import (RESULTS, WORK, build_gallery, code_version, forensics_cmd, lfw_photo_probes, machine_description,
                    open_gallery_rows, write_manifest)

from forensics.datasets import default_data_dir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    db = build_gallery("open", open_gallery_rows(data), rebuild=args.rebuild)
    probes, _ = lfw_photo_probes(data)
    manifest = write_manifest(probes, WORK / "lfw_photo_probes.csv")
    out = WORK / "photo_identification.jsonl"
    secs = forensics_cmd("evaluate", "--probes", manifest, "--top", 10, "--mode", "raw", "--probe-kind", "photo",
                         "--out", out, "--cmc", RESULTS / "photo_identification_cmc.png", "--db", db, "--face", "central")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ranks = [next((c["rank"] for c in x["candidates"] if c["subject_id"] == x["subject_id"]), None) for x in lines]
    row = {"probes": len(lines), "failed": sum("error" in x for x in lines),
           **{f"rank{k}": sum(r is not None and r <= k for r in ranks) / len(ranks) for k in (1, 5, 10)},
           "evaluate_seconds": secs, "dlib_baseline_rank1": 0.899}
    print("LFW photo identification (1,680 probes → open gallery)")
    print(f"{'pipeline':12} {'R1':>7} {'R5':>7} {'R10':>7} {'failed':>7}")
    print(f"{'forensics':12} {row['rank1']:7.1%} {row['rank5']:7.1%} {row['rank10']:7.1%} {row['failed']:7d}")
    print(f"{'dlib (notes)':12} {0.899:7.1%} {0.957:7.1%} {0.967:7.1%}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "photo_identification.json").write_text(json.dumps(row | {"machine": machine_description(), "code": code_version()}, indent=2))


if __name__ == "__main__":
    main()
