"""Ranking gallery subjects for one or more probe vectors.

Scores are cosine similarities between L2-normalised descriptors. A subject's score is the
best score over its images ("best image per subject"). With several probes (several sketches
of one suspect, or a sketch and its synthesized photo) the subject's fused score is the mean
over probes of its per-probe score, computed exactly for every subject that any probe retrieved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gallery.index import VectorIndex
from gallery.records import Owner
from gallery.repository import GalleryRepository

from forensics.fusion import unit_rows
from forensics.records import Candidate

#: A filter on subject metadata: receives the `Owner` of an embedding, True keeps it.
SubjectFilter = Callable[[Owner], bool]


@dataclass
class RankedSubject:
    external_id: str
    score: float
    per_probe: list[float]
    owner: Owner  # the best-scoring image of this subject


def rank_subjects(
    repo: GalleryRepository,
    index: VectorIndex,
    probes: np.ndarray,
    top: int,
    embedder_key=None,
    subject_filter: SubjectFilter | None = None,
    weights: np.ndarray | None = None,
    also: Sequence[tuple[VectorIndex, np.ndarray]] = (),
) -> list[RankedSubject]:
    """The `top` best subjects for probes (m, d), best first, filters applied before ranking.

    Retrieval over-fetches and widens until `top` subjects that pass the filter are found or
    the whole gallery was scanned, so a filter never loses candidates from the top K.
    `also`: more (index, probes) pairs, each index a derived one over the same embedding ids (the
    round-trip index), searched and scored the same way; `weights` then covers `probes`' rows
    followed by each pair's rows.
    """
    searches = [(ix, unit_rows(np.atleast_2d(np.asarray(p, dtype=np.float32)))) for ix, p in [(index, probes), *also]]
    m = sum(len(p) for _, p in searches)
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, float) / np.sum(weights)
    n = index.ntotal
    if n == 0 or top <= 0:
        return []
    k = min(n, max(4 * top, 64))
    owners: dict[int, Owner] = {}
    while True:
        hit_ids = sorted({int(i) for ix, p in searches for i in ix.search(p, k, embedder_key=embedder_key)[1].ravel()
                          if i >= 0})
        new = [i for i in hit_ids if i not in owners]
        if new:
            owners.update(repo.embedding_owners(new))
        kept_subjects = {owners[i].external_id for i in hit_ids
                         if i in owners and (subject_filter is None or subject_filter(owners[i]))}
        if len(kept_subjects) >= top or k >= n:
            break
        k = min(n, k * 4)
    # exact per-probe scores for every image of the retrieved subjects' retrieved embeddings
    cand_ids = [i for i in hit_ids if i in owners and (subject_filter is None or subject_filter(owners[i]))]
    if not cand_ids:
        return []
    cand = np.asarray(cand_ids, dtype=np.int64)
    sims = np.concatenate([p @ ix.reconstruct(cand).T for ix, p in searches])  # (m, c)
    by_subject: dict[str, list[int]] = {}
    for j, eid in enumerate(cand_ids):
        by_subject.setdefault(owners[eid].external_id, []).append(j)
    ranked = []
    for sid, cols in by_subject.items():
        sub = sims[:, cols]  # (m, images of this subject)
        per_probe = sub.max(axis=1)
        fused = float(per_probe @ w)
        best_col = cols[int(np.argmax(sub.mean(axis=0)))]
        ranked.append(RankedSubject(sid, fused, [float(x) for x in per_probe], owners[cand_ids[best_col]]))
    ranked.sort(key=lambda r: (-r.score, r.external_id))
    return ranked[:top]


def to_candidates(ranked: list[RankedSubject]) -> list[Candidate]:
    return [
        Candidate(
            rank=i + 1, subject_id=r.external_id, name=r.owner.name, score=round(r.score, 6),
            image_sha256=r.owner.image_sha256, image_id=r.owner.image_id, embedding_id=r.owner.embedding_id,
            sex=r.owner.sex, birth_year=r.owner.birth_year,
            detail={"per_probe": [round(s, 6) for s in r.per_probe]} if len(r.per_probe) > 1 else {},
        )
        for i, r in enumerate(ranked)
    ]


def rank_subjects_batch(index: VectorIndex, owner_of: dict[int, str], probes: np.ndarray, top: int,
                        embedder_key=None) -> list[list[tuple[str, float]]]:
    """Fast path for evaluation: per probe (no fusion), the top subjects by best image.

    `owner_of` maps every embedding id to its subject's external id (loaded once).
    """
    n = index.ntotal
    k = min(n, max(8 * top, 64))
    out: list[list[tuple[str, float]] | None] = [None] * len(probes)
    todo = np.arange(len(probes))
    while len(todo):
        scores, ids = index.search(probes[todo], k, embedder_key=embedder_key)
        retry = []
        for row, pi in enumerate(todo):
            seen: dict[str, float] = {}
            for s, i in zip(scores[row], ids[row]):
                if i < 0:
                    continue
                sid = owner_of[int(i)]
                if sid not in seen:
                    seen[sid] = float(s)
            if len(seen) >= top or k >= n:
                out[pi] = list(seen.items())[:top]
            else:
                retry.append(pi)
        todo = np.asarray(retry, dtype=int)
        k = min(n, k * 4)
    return out  # type: ignore[return-value]
