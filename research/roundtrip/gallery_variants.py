"""Cheaper round-trip gallery vectors: which one-pass variant keeps the roundtrip mode's gain?

The round-trip vector of a gallery face costs six inverter passes (three canonical sketch styles,
each inverted with its mirror image): ~1.2 s of CPU a face here, far above the 100 ms a face that
issue 18 asks for. An inverter pass alone costs ~0.2 s of CPU (two cores: ~100 ms of wall at
best), so only a variant with at most one pass at full resolution can meet it. Candidates, each
the unit whitened descriptor of the inverter's output for one input per gallery chip, no mirror:

- ``pencil``: the canonical pencil sketch (the best single style of the 2026-11-27 study);
- ``photo``: the photo chip itself (no sketch synthesis at all);
- ``pencil@100``: the pencil sketch inverted at 100x100 and resized back (~0.45 of a pass).

Rule, fixed before any figure was seen: on CUFS *train* (select), closed set, in the roundtrip
mode (2/3 fusion + 1/3 round-trip cosine, probes built by `forensics.probes.build_probes`),
choose the variant with the highest rank-1 among those whose measured cost is at most 100 ms a
face; ties go to the cheaper one. Cost: CPU time a face over two cores (CPU ms / 2, measured by
gallery_speed.py --variants on 64 chips), since wall time on this shared machine measures the other
jobs as much as this one. Adopt it only if it beats fusion alone on CUFS train. The CUFS
test figure is then measured once with the real `forensics enroll` / `forensics evaluate`.

Writes research/roundtrip/gallery-variants-2026-12-02.json (vectors cached in runs/).

    PYTHONPATH=. .venv/bin/python research/roundtrip/gallery_variants.py
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
from forensics.datasets import default_data_dir, read_manifest  # noqa: E402
from forensics.fusion import load_offsets, unit_rows  # noqa: E402
from forensics.inversion.invert import invert_chips, load_inverter  # noqa: E402
from forensics.inversion.sketchify import sketchify  # noqa: E402
from forensics.models.registry import load_embedder  # noqa: E402
from forensics.pipeline import FacePipeline, PipelineFailure  # noqa: E402
from forensics.probes import INDEX_ROUNDTRIP, INDEX_WHITENED, ProbeModels, build_probes  # noqa: E402
from forensics.whitening import load_whitening  # noqa: E402

torch.set_num_threads(2)
OUT = ROOT / "research/roundtrip/gallery-variants-2026-12-02.json"
CACHE = ROOT / "runs/gallery_variants_cache.npz"
VARIANTS = ("pencil", "pencil@100", "photo")


def resized(chips: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR)) for c in chips])


def variant_inputs(name: str, photos: np.ndarray) -> np.ndarray:
    if name == "photo":
        return photos
    return np.stack([sketchify(c, "pencil", randomize=False) for c in photos])


def variant_synth(name: str, inverter, photos: np.ndarray) -> np.ndarray:
    x = variant_inputs(name, photos)
    if name == "pencil@100":
        return resized(invert_chips(inverter, resized(x, 100)), photos.shape[1])
    return invert_chips(inverter, x)


def pairs(pipe: FacePipeline, split: str):
    rows = [r for r in read_manifest(default_data_dir(required=True), "cufs") if r["split"] == split]
    sketches = [r for r in rows if r["kind"] == "sketch"]
    photo_of = {r["identity"]: r["path"] for r in rows if r["kind"] == "photo"}
    sk = [r for b in pipe.process([r["path"] for r in sketches], kind="sketch", batch_size=64) for r in b]
    ph = [r for b in pipe.process([photo_of[r["identity"]] for r in sketches], kind="photo", batch_size=64) for r in b]
    ok = [i for i, (a, b) in enumerate(zip(sk, ph)) if not isinstance(a, PipelineFailure | Exception)
          and not isinstance(b, PipelineFailure | Exception)]
    return [sk[i] for i in ok], [ph[i] for i in ok]


def rank1(sets, gallery: dict, with_roundtrip: bool) -> float:
    """Closed-set rank-1 (%) of roundtrip-mode probe sets (probe i's true photo is gallery row i);
    without the round-trip probe, the fusion score (the other probes' weights renormalised)."""
    hits = 0
    for i, s in enumerate(sets):
        probes = [p for p in s.probes if with_roundtrip or p.index != INDEX_ROUNDTRIP]
        score = sum(p.weight * (gallery[p.index] @ p.vector) for p in probes)
        hits += int(np.argmax(score) == i)
    return 100.0 * hits / len(sets)


def main():
    split = sys.argv[1] if len(sys.argv) > 1 else "train"
    emb, inverter = load_embedder(), load_inverter()
    pipe = FacePipeline(embedder=emb)
    white = load_whitening(emb.info.key.slug)
    offsets = load_offsets(emb.info.key.slug, inverter.info.sha256, space=white.space_id)
    models = ProbeModels(emb, inverter, white, offsets)
    t = time.time()
    sk, ph = pairs(pipe, split)
    print(split, len(sk), "pairs", f"{time.time() - t:.0f}s", flush=True)
    photos = np.stack([r.chip for r in ph])
    cache = dict(np.load(CACHE)) if CACHE.is_file() else {}
    res = {"split": split, "n": len(sk), "inverter": inverter.info.sha256, "whitening": white.space_id}
    gallery = {INDEX_WHITENED: unit_rows(white.apply(np.stack([r.embedding.vector for r in ph])))}
    sets = build_probes(models, "roundtrip", sk, kind="sketch", grouped=False).sets  # the probes, once
    res["fusion"] = rank1(sets, gallery, with_roundtrip=False)
    print(json.dumps(res), flush=True)
    for name in VARIANTS:
        key = f"{split}:{name}"
        if key not in cache:
            t = time.time()
            cache[key] = emb.embed(variant_synth(name, inverter, photos))
            np.savez(CACHE, **cache)
            print(key, f"{time.time() - t:.0f}s", flush=True)
        gallery[INDEX_ROUNDTRIP] = unit_rows(white.apply(cache[key]))
        res[f"roundtrip:{name}"] = rank1(sets, gallery, with_roundtrip=True)
        print(json.dumps(res), flush=True)
    out = OUT if split == "train" else OUT.with_name(f"gallery-variants-{split}-2026-12-02.json")
    out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
