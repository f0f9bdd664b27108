"""Batched identification evaluation: a manifest of probes against the gallery → JSONL + CMC.

Modes:
- `raw`: each probe is embedded as it is (photos, or sketches without inversion).
- `inverted`: each sketch is inverted into a synthesized photo, which is embedded.
- `fusion`: both embeddings, moved by the fusion offsets, are searched and the subject score is
  the weighted mean of the two cosine similarities (forensics/fusion.py), as in `forensics query`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gallery.db import Gallery

from forensics.errors import ForensicsError
from forensics.fusion import FUSION_WEIGHT_INVERTED
from forensics.probes import mode_probes, sketch_vectors
from forensics.pipeline import FacePipeline, PipelineFailure
from forensics.roundtrip import roundtrip_index, roundtrip_probes, with_roundtrip_weights
from forensics.search import rank_subjects_batch
from forensics.service import gallery_index
from forensics.whitening import load_whitening

MODES = ("raw", "inverted", "fusion", "roundtrip")


@dataclass
class EvalSummary:
    n_probes: int
    n_failed: int
    ranks: list[int | None]  # rank of the true subject per probe (None: not in the returned top)
    cmc: list[float] = field(default_factory=list)  # cmc[k-1] = fraction found at rank <= k

    def rank_k(self, k: int) -> float:
        return self.cmc[k - 1] if k <= len(self.cmc) else (self.cmc[-1] if self.cmc else 0.0)


def read_probe_manifest(path: Path) -> list[tuple[Path, str]]:
    path = Path(path)
    if not path.is_file():
        raise ForensicsError(f"{path}: probe manifest not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"path", "subject_id"} <= set(reader.fieldnames or []):
            raise ForensicsError(f"{path}: the header must have path,subject_id")
        out = []
        for row in reader:
            p = Path(row["path"])
            out.append((p if p.is_absolute() else path.parent / p, row["subject_id"]))
    return out


def cmc_curve(ranks: list[int | None], top: int) -> list[float]:
    n = len(ranks)
    if n == 0:
        return []
    return [sum(1 for r in ranks if r is not None and r <= k) / n for k in range(1, top + 1)]


def probe_embeddings(pipeline: FacePipeline, records, mode: str, inverter=None, sketches: bool = False,
                     whitening=None) -> np.ndarray:
    """The probe vectors for a batch of FaceRecords in `mode` (b, m, d): raw, inverted or fused;
    roundtrip: fused, then the synthesized photos' vectors (for the round-trip index).

    Sketch probes (`sketches`) are mirror-averaged (`forensics.probes`) and mapped into the
    `whitening`'s space if one is given, as `query` does; photos are embedded as they are, as the
    gallery is."""
    raw = np.stack([r.embedding.vector for r in records])
    if mode == "raw" and not sketches:
        return raw[:, None, :]
    if mode != "raw" and inverter is None:
        raise ForensicsError(f"--mode {mode} needs the sketch-inversion network")
    raw, inv, _ = sketch_vectors(pipeline.embedder, np.stack([r.chip for r in records]), raw,
                                 inverter if mode != "raw" else None, mirror=sketches)
    vecs, _, _ = mode_probes(raw, inv, "fusion" if mode == "roundtrip" else mode, pipeline.embedder.info.key.slug,
                             inverter.info.sha256 if inverter is not None else None, whitening)
    if mode == "roundtrip":
        vecs = np.concatenate([vecs, roundtrip_probes(inv, whitening)[:, None, :]], axis=1)
    return vecs


def evaluate(gallery: Gallery, pipeline: FacePipeline, probes: list[tuple[Path, str]], out: Path,
             top: int = 10, mode: str = "raw", probe_kind: str = "photo", inverter=None,
             fusion_weight_inverted: float = FUSION_WEIGHT_INVERTED, batch_size: int = 32,
             progress: Callable[[int], None] | None = None, whitening: bool = True) -> EvalSummary:
    """Search every probe; write one JSON line per probe in manifest order; return the CMC.

    Sketch probes are searched in the sketch search space (`forensics.whitening`) when one is
    fitted for the embedder, as `forensics query` does (``whitening=False``: the raw space).
    Mode roundtrip brings the round-trip index up to date first (`forensics.roundtrip`)."""
    if mode not in MODES:
        raise ForensicsError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    repo = gallery.repository()
    emb = repo.gallery_embedder()
    if emb is None:
        raise ForensicsError("the gallery is empty: enroll photos first")
    info = pipeline.embedder.info
    repo.ensure_embedder_compatible(info.name, info.version, info.dim)
    white = load_whitening(info.key.slug) if whitening and probe_kind == "sketch" else None
    index = gallery_index(repo, gallery.path, white) if gallery.path else None
    indexes = [index, index]  # the index each probe column is searched in
    if mode == "roundtrip":
        if inverter is None:
            raise ForensicsError("--mode roundtrip needs the sketch-inversion network")
        indexes.append(roundtrip_index(repo, gallery.path, pipeline.embedder, inverter, white))
    ids, _ = repo.iter_embeddings(emb)
    owners = repo.embedding_owners(ids.tolist())
    owner_of = {i: o.external_id for i, o in owners.items()}
    weights = np.array([1.0 - fusion_weight_inverted, fusion_weight_inverted])
    if mode == "roundtrip":
        weights = with_roundtrip_weights(weights, 1)
    ranks: list[int | None] = []
    n_failed = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        paths = [p for p, _ in probes]
        truth = [t for _, t in probes]
        pos = 0
        for results in pipeline.process(paths, kind=probe_kind, batch_size=batch_size):
            ok = [r for r in results if not isinstance(r, PipelineFailure)]
            ranked: dict[int, list[tuple[str, float]]] = {}
            if ok:
                vecs = probe_embeddings(pipeline, ok, mode, inverter, sketches=probe_kind == "sketch",
                                        whitening=white)  # (b, m, d)
                if vecs.shape[1] == 1:
                    lists = rank_subjects_batch(index, owner_of, vecs[:, 0], top, embedder_key=emb.key)
                else:
                    lists = _fused_lists(indexes, owner_of, vecs, weights, top, emb.key)
                okpos = [j for j, r in enumerate(results) if not isinstance(r, PipelineFailure)]
                ranked = dict(zip(okpos, lists))
            for j, r in enumerate(results):
                true_id = truth[pos + j]
                line = {"probe": str(paths[pos + j]), "subject_id": true_id}
                if isinstance(r, PipelineFailure):
                    n_failed += 1
                    line["candidates"] = []
                    line["error"] = str(r.error)
                    ranks.append(None)
                else:
                    cands = ranked[j]
                    line["probe_sha256"] = r.sha256
                    line["detection"] = r.detection_method
                    line["candidates"] = [{"rank": k + 1, "subject_id": s, "score": round(sc, 6)}
                                          for k, (s, sc) in enumerate(cands)]
                    found = next((k + 1 for k, (s, _) in enumerate(cands) if s == true_id), None)
                    ranks.append(found)
                fh.write(json.dumps(line) + "\n")
            pos += len(results)
            if progress:
                progress(len(results))
    return EvalSummary(n_probes=len(probes), n_failed=n_failed, ranks=ranks, cmc=cmc_curve(ranks, top))


def _fused_lists(indexes, owner_of, vecs, weights, top, key) -> list[list[tuple[str, float]]]:
    """Per probe: search each of its vectors (column j in `indexes[j]`, indexes over the same
    embedding ids), then fuse exact per-subject scores."""
    out = []
    n = indexes[0].ntotal
    for v in vecs:  # (m, d)
        k = min(n, max(16 * top, 256))
        cand = sorted({int(i) for j, ix in enumerate(indexes) for i in ix.search(v[j], k, embedder_key=key)[1].ravel()
                       if i >= 0})
        cand_arr = np.asarray(cand, dtype=np.int64)
        sims = np.stack([v[j] @ ix.reconstruct(cand_arr).T for j, ix in enumerate(indexes)])  # (m, c)
        best: dict[str, np.ndarray] = {}
        for col, eid in enumerate(cand):
            sid = owner_of[eid]
            best[sid] = np.maximum(best[sid], sims[:, col]) if sid in best else sims[:, col]
        fused = sorted(((sid, float(s @ weights)) for sid, s in best.items()), key=lambda t: -t[1])
        out.append(fused[:top])
    return out


def write_cmc_plot(curves: dict[str, list[float]], path: Path, title: str = "CMC") -> Path:
    """A CMC plot (PNG) of one or more curves, rank 1..K on x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    for label, cmc in curves.items():
        ax.plot(range(1, len(cmc) + 1), [100 * c for c in cmc], marker="o", ms=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
