"""Round-trip gallery study: match the synthesized photo of a sketch against gallery photos that
went through the same generator (photo -> canonical synthetic sketch -> inverter), so that both
sides carry the inverter's biases. Reads runs/emb_cache.npz (research/vector-cache/sketch_pair_vectors.py);
closed set. Writes docs/training/roundtrip-study-2026-11-27.json (runs/roundtrip_study_test.json with --test).

Rule fixed before running: adopt a round-trip score only if, fused with the current two, it gains
closed-set rank-1 on FS2K val and does not lose on the training pairs (CUFS train + FS2K train).
"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
ROOT = Path(__file__).resolve().parents[2]
from forensics.inversion.invert import load_inverter
from forensics.inversion.sketchify import STYLES, sketchify
from forensics.models.registry import load_embedder
from forensics.probes import mode_probes, sketch_vectors
from forensics.whitening import load_whitening
from forensics.fusion import unit_rows

torch.set_num_threads(2)
c = dict(np.load(ROOT / "runs/emb_cache.npz"))
emb = load_embedder(); inv = load_inverter(); W = load_whitening(emb.info.key.slug)
cache = ROOT / "runs/roundtrip_cache.npz"
rt = dict(np.load(cache)) if cache.exists() else {}
sets = ["fs2k_val", "cufs_train", "fs2k_train"] + (["cufs_test"] if "--test" in sys.argv else [])
if "--only" in sys.argv:
    sets = [sys.argv[sys.argv.index("--only") + 1]]
for s in sets:
    for style in (*STYLES, *(() if "--no-photo-variant" in sys.argv else ("photo",))):
        k = f"{s}_{style}"
        if k in rt:
            continue
        t = time.time()
        sk = np.stack([p if style == "photo" else sketchify(p, style, randomize=False)
                       for p in c[s + "_photochips"]])
        _, v, _ = sketch_vectors(emb, sk, None, inv)
        rt[k] = v
        if "--only" not in sys.argv:
            np.savez(cache, **rt)
        print(k, len(v), f"{time.time()-t:.0f}s", flush=True)


def r1(scores):
    return float((scores.argmax(1) == np.arange(len(scores))).mean() * 100)


res = {}
for s in sets:
    vecs, w, _ = mode_probes(c[s + "_raw"], c[s + "_inv"], "fusion", emb.info.key.slug, inv.info.sha256, W)
    photos = unit_rows(W.apply(c[s + "_photo"]))
    s_raw = unit_rows(vecs[:, 0]) @ photos.T
    s_inv = unit_rows(vecs[:, 1]) @ photos.T
    fusion = (w[0] * s_raw + w[1] * s_inv) / w.sum()
    inv_w = unit_rows(W.apply(c[s + "_inv"]))
    row = {"n": len(photos), "raw": r1(s_raw), "inverted": r1(s_inv), "fusion": r1(fusion)}
    gal = {st: unit_rows(W.apply(rt[f"{s}_{st}"])) for st in STYLES}
    gal["mean3"] = unit_rows(sum(gal[st] for st in STYLES))
    if f"{s}_photo" in rt:  # the photo itself through the inverter (not computed for fs2k_train: stopped)
        gal["photo"] = unit_rows(W.apply(rt[f"{s}_photo"]))
    for g, gv in gal.items():
        s_rt = inv_w @ gv.T
        row[f"rt_{g}"] = r1(s_rt)
        row[f"fusion+rt_{g}"] = r1((fusion * 2 + s_rt) / 3)
    res[s] = row
    print(s, json.dumps({k: round(v, 1) for k, v in row.items()}), flush=True)
if "--only" not in sys.argv:
    out = "runs/roundtrip_study_test.json" if "--test" in sys.argv else "docs/training/roundtrip-study-2026-11-27.json"
    (ROOT / out).write_text(json.dumps(res, indent=1))
