"""Speed: enrollment throughput of the whole `forensics enroll` command against dlib-bin's own
pipeline on 2 processes (what `face_recognition --cpus 2` runs), on the same 2,000 LFW photos in
the same run; then FAISS search latency on 100k and 1M random unit vectors (exact and IVF, with
the recall@50 of IVF against exact search).

    .venv/bin/python benchmarks/throughput.py [--n 2000] [--sizes 100000,1000000] [--skip-dlib]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, WORK, forensics_cmd, code_version, machine_description, write_manifest

from forensics.datasets import LFW_DUPLICATES, default_data_dir, read_manifest


def enroll_speed(data: Path, n: int, skip_dlib: bool) -> dict:
    rows = [r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES]
    rows = sorted(rows, key=lambda r: r["file"])[:: max(1, len(rows) // n)][:n]
    manifest = write_manifest(rows, WORK / "throughput_manifest.csv")
    with tempfile.TemporaryDirectory() as tmp:
        secs = forensics_cmd("enroll", "--manifest", manifest, "--db", Path(tmp) / "t.db")
    from forensics.parallel import choose_workers

    out = {"images": len(rows), "forensics_seconds": secs, "forensics_img_s": len(rows) / secs,
           "forensics_workers": choose_workers(None, len(rows))}
    if not skip_dlib:
        sys.path.insert(0, str(Path(__file__).parent))
        from lfw_verification import dlib_pipeline

        t = time.perf_counter()
        _, _, _ = dlib_pipeline([r["path"] for r in rows], processes=2)
        dsecs = time.perf_counter() - t
        out.update({"dlib_seconds": dsecs, "dlib_img_s": len(rows) / dsecs,
                    "speedup": (len(rows) / secs) / (len(rows) / dsecs)})
        # for reference: without upsampling (faster, finds fewer small faces), as baselines.md measured
        t = time.perf_counter()
        _, _, missed = dlib_pipeline([r["path"] for r in rows], processes=2, upsample=0)
        dsecs0 = time.perf_counter() - t
        out.update({"dlib_no_upsample_seconds": dsecs0, "dlib_no_upsample_img_s": len(rows) / dsecs0,
                    "dlib_no_upsample_missed": missed, "speedup_vs_no_upsample": dsecs0 / secs})
    return out


def stage_costs(data: Path, n: int = 320) -> dict:
    """Where an image's time goes: each pipeline stage timed in-process on n LFW photos, after a
    warm-up batch, on this machine's threads (milliseconds per image)."""
    from forensics.detect import FaceDetector
    from forensics.images import load_image, png_bytes
    from forensics.models.registry import load_embedder

    rows = sorted(read_manifest(data, "lfw"), key=lambda r: r["file"])[1::max(1, 13000 // n)][:n]
    detector, embedder = FaceDetector(), load_embedder()
    warm = [load_image(r["path"]) for r in rows[:32]]
    embedder.embed(np.stack([d.chip for d in detector.detect_many([w.rgb for w in warm])]))
    cost = {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        cost[name] = 1000 * (time.perf_counter() - t) / len(rows)
        return out

    images = timed("read + SHA-256 + decode", lambda: [load_image(r["path"]) for r in rows])
    rgbs = [im.rgb for im in images]
    dets = timed("MTCNN detection", lambda: detector.detect_many(rgbs, select="central", align=False))
    timed("dlib landmarks + chip", lambda: detector.align(rgbs, dets))
    chips = np.stack([d.chip for d in dets])
    timed("descriptor (PyTorch dlib ResNet)", lambda: embedder.embed(chips, batch_size=32))
    timed("chip PNG", lambda: [png_bytes(c) for c in chips])
    return cost


def search_latency(n: int, dim: int = 128, queries: int = 200, k: int = 50, seed: int = 0) -> list[dict]:
    from gallery.index import VectorIndex

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, queries, replace=False)] + 0.3 * rng.standard_normal((queries, dim), dtype=np.float32)
    ids = np.arange(n, dtype=np.int64)
    rows, exact_ids = [], None
    for kind in ("flat", "ivf"):
        t = time.perf_counter()
        idx = VectorIndex.build(ids, x, ("bench", "1", dim), kind)
        build = time.perf_counter() - t
        lat = []
        got = []
        for i in range(queries):
            t = time.perf_counter()
            _, hit = idx.search(q[i:i + 1], k)
            lat.append(time.perf_counter() - t)
            got.append(hit[0])
        got = np.stack(got)
        if kind == "flat":
            exact_ids = got
            recall = 1.0
        else:
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, exact_ids)]))
        rows.append({"n": n, "kind": kind, "build_s": build, "p50_ms": 1000 * float(np.percentile(lat, 50)),
                     "p95_ms": 1000 * float(np.percentile(lat, 95)), "recall_at_50": recall,
                     "nprobe": getattr(idx, "nprobe", None) if kind == "ivf" else None})
        del idx
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--skip-dlib", action="store_true")
    ap.add_argument("--skip-enroll", action="store_true")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    res = {"machine": machine_description(), "code": code_version(), "loadavg_start": os.getloadavg()[0]}
    if not args.skip_enroll:
        res["enroll"] = enroll_speed(data, args.n, args.skip_dlib)
        e = res["enroll"]
        print(f"enroll {e['images']} LFW photos (whole command, model loading included)")
        print(f"  forensics enroll: {e['forensics_seconds']:.1f} s = {e['forensics_img_s']:.1f} img/s")
        if "dlib_img_s" in e:
            print(f"  dlib-bin, 2 processes: {e['dlib_seconds']:.1f} s = {e['dlib_img_s']:.1f} img/s  "
                  f"→ speed-up {e['speedup']:.2f}x (bar: 4x)")
        if "dlib_no_upsample_img_s" in e:
            print(f"  dlib-bin, 2 processes, no upsampling: {e['dlib_no_upsample_seconds']:.1f} s = "
                  f"{e['dlib_no_upsample_img_s']:.1f} img/s, {e['dlib_no_upsample_missed']} photos without a face "
                  f"→ speed-up {e['speedup_vs_no_upsample']:.2f}x")
    res["loadavg_after_enroll"] = os.getloadavg()[0]  # > 2 means other jobs shared the 2 cores
    if not args.skip_enroll:
        res["stages_ms_per_image"] = stage_costs(data)
        for k, v in res["stages_ms_per_image"].items():
            print(f"  {k:34} {v:6.1f} ms/image")
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    res["search"] = [r for n in map(int, args.sizes.split(",")) for r in search_latency(n)]
    print(f"{'vectors':>9} {'index':5} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@50':>9}")
    for r in res["search"]:
        print(f"{r['n']:9d} {r['kind']:5} {r['build_s']:8.1f} {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {r['recall_at_50']:9.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "throughput.json"
    # earlier runs' speed-ups stay in the file: both pipelines' speed varies from run to run here
    history = json.loads(out.read_text()).get("history", []) if out.is_file() else []
    if "speedup" in res.get("enroll", {}):
        e = res["enroll"]
        history.append({"date": time.strftime("%Y-%m-%d %H:%M"), "forensics_img_s": round(e["forensics_img_s"], 2),
                        "dlib_img_s": round(e["dlib_img_s"], 2), "speedup": round(e["speedup"], 3)})
    res["history"] = history
    out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
