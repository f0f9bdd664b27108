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

    from forensics.datasets import default_data_dir
    from forensics.inversion.invert import load_inverter
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "benchmarks" / "work" / "open.db")
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = args.data or default_data_dir(required=True)
    probes = training_sketches(data)
    reference = ReferenceGallery(args.db, {r["identity"] for r in probes})
    pipe, inverter = FacePipeline(embedder=load_embedder()), load_inverter()
    # the probe vectors a sketch query uses (mirror-averaged raw and inverted), and the photos'
    recs, raw, syn, pho = training_pair_vectors(pipe, data, probes, inverter)
    key = pipe.embedder.info.key.slug
    white, offsets = fit_space_and_offsets(raw, syn, pho, key, inverter.info.sha256, len(recs))
    fit_and_save_calibrations(reference.whitened(white), white.apply(raw), white.apply(syn), offsets, key,
                              white.space_id, f"{len(recs)} non-mated sketches (CUFS train + FS2K train) x "
                              f"{reference.n_subjects} subjects of {args.db.name} ({reference.n_images} images: "
                              "LFW + CUFS test + FS2K val photos)", len(recs))


class ReferenceGallery:
    """The non-mated reference: every vector of a gallery none of the probes' people are in."""

    def __init__(self, db: Path, probe_ids: set[str]):
        from gallery.db import open_gallery

        repo = open_gallery(db, create=False).repository()
        ids, self.vecs = repo.iter_embeddings(repo.gallery_embedder())
        owners = repo.embedding_owners(ids.tolist())
        subj = np.array([owners[int(i)].external_id for i in ids])
        uniq, self.subject_of = np.unique(subj, return_inverse=True)
        assert not probe_ids & set(uniq), "calibration probes must not be in the reference gallery"
        self.n_subjects, self.n_images = len(uniq), len(ids)

    def whitened(self, white) -> "ReferenceGallery":
        self.vecs = white.apply(self.vecs)
        return self

    def subject_best(self, q: np.ndarray) -> np.ndarray:
        """(probes, subjects): each subject's best image score for each probe."""
        sims = q @ self.vecs.T
        out = np.full((len(q), self.n_subjects), -np.inf, np.float32)
        for j in range(len(q)):
            np.maximum.at(out[j], self.subject_of, sims[j])
        return out


def fit_space_and_offsets(raw, syn, pho, key: str, inverter_sha256: str, n_pairs: int):
    """Fit and save the sketch search space on the training photos, then the fusion offsets in it."""
    from forensics.fusion import fit_offsets, save_offsets
    from forensics.whitening import fit_whitening, save_whitening

    white = save_whitening(fit_whitening(pho, key, fitted_on=f"photos of {n_pairs} training pairs (CUFS train + "
                                         "FS2K train minus the 200 validation pairs)"))
    print(f"sketch search space: alpha {white.alpha}, eps {white.eps}, {white.n_photos} photos, "
          f"sha256 {white.sha256[:16]}")
    offsets = fit_offsets(white.apply(raw), white.apply(syn), white.apply(pho), key, inverter_sha256,
                          space=white.space_id)
    save_offsets(offsets)
    print(f"fusion offsets from {n_pairs} training pairs: |raw| {np.linalg.norm(offsets.offset_raw):.3f}, "
          f"|inverted| {np.linalg.norm(offsets.offset_inverted):.3f}")
    return white, offsets


def fit_and_save_calibrations(ref: ReferenceGallery, raw, syn, offsets, key: str, space: str, reference: str,
                              n_probes: int) -> None:
    """Non-mated subject scores per mode, scored with the weights a query uses, then the FPIR fits."""
    from forensics.calibration import fit_calibration, save_calibrations
    from forensics.fusion import FUSION_WEIGHT_INVERTED, apply_offsets

    raw_f, syn_f = apply_offsets(raw, syn, offsets)
    scores = {"raw": ref.subject_best(raw), "inverted": ref.subject_best(syn),
              "fusion": (1 - FUSION_WEIGHT_INVERTED) * ref.subject_best(raw_f)
              + FUSION_WEIGHT_INVERTED * ref.subject_best(syn_f)}
    cals = [fit_calibration(s.ravel(), key, mode, n_probes, ref.n_subjects, reference, space=space)
            for mode, s in scores.items()]
    save_calibrations(cals)
    for c, s in zip(cals, scores.values()):
        top = np.sort(s, axis=1)[:, -1]
        print(f"{c.mode:9} impostor scores {c.n_impostor}: 99th pct {np.percentile(s, 99):.3f}, "
              f"max {s.max():.3f}; best non-mated subject per probe: median {np.median(top):.3f}")


if __name__ == "__main__":
    main()
