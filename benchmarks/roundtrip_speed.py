"""Speed of the round-trip gallery side: `forensics.roundtrip.roundtrip_vectors` (what
`forensics gallery roundtrip` and the first `--mode roundtrip` query run per gallery face) on real
aligned chips (CUFS test photos and LFW photos, half each), warm, with two PyTorch threads.
Milliseconds a face, wall and CPU (all threads of the process); the load average is recorded,
since other jobs sharing the cores slow the wall time down.

    .venv/bin/python benchmarks/roundtrip_speed.py [--n 64]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from common import RESULTS, code_version, cufs_test, machine_description

from forensics.datasets import default_data_dir, read_manifest

THREADS = 2
BAR_MS_PER_FACE = 100  # issue 18: the gallery side at most 100 ms a face on 2 CPU cores


def real_chips(n: int) -> np.ndarray:
    """Aligned chips of n photos: every k-th CUFS test photo and every k-th LFW photo."""
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    data = default_data_dir(required=True)
    cufs = [r["path"] for r in cufs_test(data, "photo")]
    lfw = [r["path"] for r in sorted(read_manifest(data, "lfw"), key=lambda r: r["file"])]
    half = n // 2
    paths = cufs[:: len(cufs) // half][:half] + lfw[:: len(lfw) // (n - half)][: n - half]
    pipe = FacePipeline(embedder=load_embedder())
    return np.stack([r.chip for b in pipe.process(paths, kind="photo") for r in b])


def measure(chips: np.ndarray) -> dict:
    from forensics.inversion.invert import load_inverter
    from forensics.models.registry import load_embedder
    from forensics.roundtrip import roundtrip_space_id, roundtrip_vectors
    from forensics.whitening import load_whitening

    embedder, inverter = load_embedder(), load_inverter()
    white = load_whitening(embedder.info.key.slug)
    roundtrip_vectors(embedder, inverter, chips[:4], white)  # warm-up
    load_start = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    roundtrip_vectors(embedder, inverter, chips, white)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"faces": len(chips), "threads": THREADS, "space": roundtrip_space_id(inverter, white),
            "wall_ms_per_face": 1000 * wall / len(chips), "cpu_ms_per_face": 1000 * cpu / len(chips),
            "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0], "bar_ms_per_face": BAR_MS_PER_FACE}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    res = {"machine": machine_description(), "code": code_version()}
    res.update(measure(real_chips(args.n)))
    print(f"round-trip vectors of {res['faces']} faces, {THREADS} threads: {res['wall_ms_per_face']:.0f} ms a face "
          f"wall, {res['cpu_ms_per_face']:.0f} ms CPU (load average {res['loadavg_start']:.1f} → "
          f"{res['loadavg_end']:.1f})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "roundtrip_speed.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
