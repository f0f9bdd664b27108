"""Where the time of a round-trip gallery vector goes: each stage timed, wall and CPU, on 64 real
chips (32 CUFS test photos, 32 LFW photos), two PyTorch threads.

Stages of the computation as first written (style by style, each style's sketches through
`forensics.probes.sketch_vectors`): canonical sketch synthesis (3 styles), the inverter (3
styles x the sketch and its mirror image = 6 passes), the descriptor of the 6 synthesized photos,
and the descriptor of the 6 sketches themselves (computed by `sketch_vectors` and thrown away).
Then `forensics.roundtrip.roundtrip_vectors` end to end as it is now. CPU time is the process's
(all threads): the machine is shared, so wall time depends on the load (recorded).

With --variants: the cost of each one-pass candidate of gallery_variants.py instead (sketch,
inverter, descriptor), the input of its rule.

Writes research/roundtrip/gallery-speed-<date>.json (each part under its own key).

    PYTHONPATH=. .venv/bin/python research/roundtrip/gallery_speed.py [--variants]
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
from forensics.datasets import default_data_dir, read_manifest  # noqa: E402
from forensics.inversion.invert import invert_chips, load_inverter  # noqa: E402
from forensics.inversion.sketchify import STYLES, sketchify  # noqa: E402
from forensics.models.registry import load_embedder  # noqa: E402
from forensics.pipeline import FacePipeline  # noqa: E402
from forensics.probes import mirrored  # noqa: E402
from forensics.roundtrip import roundtrip_vectors  # noqa: E402
from forensics.whitening import load_whitening  # noqa: E402

THREADS = 2
torch.set_num_threads(THREADS)


def real_chips(pipe: FacePipeline, n: int = 64) -> np.ndarray:
    data = default_data_dir(required=True)
    cufs = [r["path"] for r in read_manifest(data, "cufs") if r["kind"] == "photo" and r["split"] == "test"]
    lfw = [r["path"] for r in sorted(read_manifest(data, "lfw"), key=lambda r: r["file"])]
    paths = cufs[:: len(cufs) // (n // 2)][: n // 2] + lfw[:: len(lfw) // (n // 2)][: n // 2]
    return np.stack([r.chip for b in pipe.process(paths, kind="photo") for r in b])


class Timer:
    """Wall and CPU milliseconds per face of named stages."""

    def __init__(self, faces: int):
        self.faces, self.ms = faces, {}

    def __call__(self, name: str, fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        self.ms[name] = {"wall": 1000 * (time.perf_counter() - w) / self.faces,
                         "cpu": 1000 * (time.process_time() - c) / self.faces}
        print(f"{name:40} wall {self.ms[name]['wall']:7.1f}  cpu {self.ms[name]['cpu']:7.1f} ms/face", flush=True)
        return out


def first_written(embedder, inverter, chips: np.ndarray) -> dict:
    t = Timer(len(chips))
    sketches = t("sketch synthesis (3 styles)",
                 lambda: np.stack([sketchify(c, s, randomize=False) for s in STYLES for c in chips]))
    both = np.concatenate([sketches, mirrored(sketches)])
    synth = t("inverter (6 passes)", lambda: invert_chips(inverter, both))
    t("descriptor of the synthesized photos (6)", lambda: embedder.embed(synth))
    t("descriptor of the sketches (6, unused)", lambda: embedder.embed(both))
    t.ms["total"] = {k: sum(v[k] for v in t.ms.values()) for k in ("wall", "cpu")}
    return t.ms


def variant_costs(embedder, inverter, chips: np.ndarray) -> dict:
    from gallery_variants import VARIANTS, variant_synth

    out = {}
    for name in VARIANTS:
        t = Timer(len(chips))
        t(name, lambda: embedder.embed(variant_synth(name, inverter, chips)))
        out[name] = t.ms[name]
    return out


def main():
    embedder, inverter = load_embedder(), load_inverter()
    white = load_whitening(embedder.info.key.slug)
    chips = real_chips(FacePipeline(embedder=embedder))
    roundtrip_vectors(embedder, inverter, chips[:2], white)  # warm-up
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    res = {"faces": len(chips), "threads": THREADS, "cores": os.cpu_count(), "commit": commit.stdout.strip(),
           "loadavg_start": os.getloadavg()}
    key = "variants" if "--variants" in sys.argv else "stages"
    if key == "variants":
        res["variants"] = variant_costs(embedder, inverter, chips)
    else:
        res["first_written"] = first_written(embedder, inverter, chips)
        t = Timer(len(chips))
        t("roundtrip_vectors (batched, exact)", lambda: roundtrip_vectors(embedder, inverter, chips, white))
        res["batched_exact"] = t.ms
    res["loadavg_end"] = os.getloadavg()
    out = ROOT / f"research/roundtrip/gallery-speed-{time.strftime('%Y-%m-%d')}.json"
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**earlier, key: res}, indent=1) + "\n")
    print(out, file=sys.stderr)


if __name__ == "__main__":
    main()
