"""Fit the sketch search space (forensics/whitening.py), the fusion offsets (forensics/fusion.py)
and the FPIR score calibration (forensics/calibration.py) for each query mode, from training data only.

Sketch search space: partial PCA whitening (alpha, eps: forensics/whitening.py's defaults, chosen by
cross-validation on the training pairs) fitted on the training pairs' photos; written to
forensics/weights/whitening.json. Offsets and calibration below are measured in that space, as
queries search in it.

Fusion offsets: mean(photo) − mean(probe) over the same training pairs, for raw sketch probes and
for synthesized-photo probes; written to forensics/weights/fusion.json.

Probes: the CUFS train sketches (268) and the FS2K train sketches outside the 200 validation
pairs (858): sketches of people who are NOT in the reference gallery. Reference gallery: the
benchmark's open gallery (LFW people plus the CUFS test and FS2K validation photos, built by
benchmarks/photo_identification.py). Every (probe, subject) score is non-mated; a subject's score is
its best image's, exactly as in a query; fusion = the weighted mean used by `forensics query`.
Writes forensics/weights/whitening.json, fusion.json and calibration.json.

    .venv/bin/python scripts/calibrate_scores.py [--db benchmarks/work/open.db]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main():
    from common import training_pair_vectors, training_sketches

    from forensics.calibration import fit_calibration, save_calibrations
    from forensics.datasets import default_data_dir
    from forensics.inversion.invert import load_inverter
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline
    from forensics.fusion import fit_offsets, fusion_probes, save_offsets
    from forensics.whitening import fit_whitening, save_whitening
    from gallery.db import open_gallery

    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "benchmarks" / "work" / "open.db")
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = args.data or default_data_dir(required=True)
    probes = training_sketches(data)

    repo = open_gallery(args.db, create=False).repository()
    emb = repo.gallery_embedder()
    ids, vecs = repo.iter_embeddings(emb)
    owners = repo.embedding_owners(ids.tolist())
    subj = np.array([owners[int(i)].external_id for i in ids])
    uniq, inv_idx = np.unique(subj, return_inverse=True)
    probe_ids = {r["identity"] for r in probes}
    assert not probe_ids & set(uniq), "calibration probes must not be in the reference gallery"

    pipe = FacePipeline(embedder=load_embedder())
    inverter = load_inverter()
    # the probe vectors a sketch query uses (mirror-averaged raw and inverted), and the photos'
    recs, raw, syn, pho = training_pair_vectors(pipe, data, probes, inverter)
    key = pipe.embedder.info.key.slug
    white = save_whitening(fit_whitening(pho, key, fitted_on=f"photos of {len(recs)} training pairs (CUFS train + "
                                         "FS2K train minus the 200 validation pairs)"))
    print(f"sketch search space: alpha {white.alpha}, eps {white.eps}, {white.n_photos} photos, "
          f"sha256 {white.sha256[:16]}")
    raw, syn, pho, vecs = white.apply(raw), white.apply(syn), white.apply(pho), white.apply(vecs)
    offsets = fit_offsets(raw, syn, pho, key, inverter.info.sha256, space=white.space_id)
    save_offsets(offsets)
    print(f"fusion offsets from {len(recs)} training pairs: |raw| {np.linalg.norm(offsets.offset_raw):.3f}, "
          f"|inverted| {np.linalg.norm(offsets.offset_inverted):.3f}")

    def subject_best(q: np.ndarray) -> np.ndarray:
        sims = q @ vecs.T  # (m, n_vectors)
        out = np.full((len(q), len(uniq)), -np.inf, np.float32)
        for j in range(len(q)):
            np.maximum.at(out[j], inv_idx, sims[j])
        return out

    s_raw, s_inv = subject_best(raw), subject_best(syn)
    fp, w = fusion_probes(raw, syn, offsets)
    m = len(raw)
    s_fus = w[0] * subject_best(fp[:m]) + w[-1] * subject_best(fp[m:])
    ref = (f"{len(recs)} non-mated sketches (CUFS train + FS2K train) x {len(uniq)} subjects of "
           f"{args.db.name} ({len(ids)} images: LFW + CUFS test + FS2K val photos)")
    cals = [fit_calibration(s.ravel(), key, mode, len(recs), len(uniq), ref, space=white.space_id)
            for mode, s in (("raw", s_raw), ("inverted", s_inv), ("fusion", s_fus))]
    save_calibrations(cals)
    for c, s in zip(cals, (s_raw, s_inv, s_fus)):
        top = np.sort(s, axis=1)[:, -1]
        print(f"{c.mode:9} impostor scores {c.n_impostor}: 99th pct {np.percentile(s, 99):.3f}, "
              f"max {s.max():.3f}; best non-mated subject per probe: median {np.median(top):.3f}")


if __name__ == "__main__":
    main()
