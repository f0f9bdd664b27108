"""Ranking gallery subjects for probe sets: the one ranking path.

`rank` serves `forensics query`, `forensics evaluate`, photo search and the benchmarks alike, so
what is measured is what a query runs. Scores are cosine similarities between unit vectors. For
each probe set (`forensics.probes.ProbeSet`), every probe is searched in its index; the hits of
all probes are pooled; every pooled image is then scored exactly by every probe; a subject's
per-probe score is the best over its pooled images ("best image per subject") and its score the
weighted mean of its per-probe scores. Ties are broken by subject id, so the order is
deterministic.

Retrieval over-fetches (k = max(4 x top, 64) images per probe) and widens (k x 4) until `top`
subjects that pass the subject filter are pooled or the whole gallery was searched, so a filter
never loses candidates from the top K. Many probe sets are searched in one batched call per index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gallery.records import Owner

from forensics.errors import ForensicsError
from forensics.indexes import SearchIndex
from forensics.probes import ProbeSet
from forensics.records import Candidate

#: A filter on subject metadata: receives the `Owner` of an embedding, True keeps it.
SubjectFilter = Callable[[Owner], bool]


@dataclass
class RankedSubject:
    external_id: str
    score: float
    per_probe: list[float]  # in the probe set's order
    owner: Owner  # the subject's best image for the weighted probes


class OwnerLookup:
    """Who each embedding id belongs to, fetched from the gallery once and cached."""

    def __init__(self, repo):
        self._repo = repo
        self._known: dict[int, Owner] = {}
        self._asked: set[int] = set()

    def fetch(self, ids) -> None:
        new = {int(i) for i in ids} - self._asked
        if new:
            self._known.update(self._repo.embedding_owners(sorted(new)))
            self._asked |= new

    def get(self, eid: int) -> Owner | None:
        return self._known.get(eid)


def rank(probe_sets: Sequence[ProbeSet], indexes: Mapping[str, SearchIndex], owners: OwnerLookup, top: int,
         subject_filter: SubjectFilter | None = None, embedder_key=None) -> list[list[RankedSubject]]:
    """For each probe set, its `top` best subjects, best first (filters applied before ranking).

    `indexes`: the derived indexes the probes name, all over the same embedding ids.
    """
    if top <= 0:
        raise ForensicsError(f"the number of candidates must be at least 1, not {top}")
    names = sorted({n for s in probe_sets for n in s.indexes()})
    missing = [n for n in names if n not in indexes]
    if missing:
        raise ForensicsError(f"no {', '.join(missing)} index was opened for these probes")
    if not probe_sets:
        return []
    n = indexes[names[0]].ntotal
    if n == 0:
        return [[] for _ in probe_sets]
    keep = _Keeper(owners, subject_filter)
    pools = _retrieve(probe_sets, indexes, keep, top, n, embedder_key)
    return [_score(s, sorted(pool), indexes, keep, top) for s, pool in zip(probe_sets, pools)]


class _Keeper:
    """The owners of hits, and whether the subject filter keeps them."""

    def __init__(self, owners: OwnerLookup, subject_filter: SubjectFilter | None):
        self.owners, self.filter = owners, subject_filter

    def __call__(self, eid: int) -> Owner | None:
        o = self.owners.get(eid)
        return o if o is not None and (self.filter is None or self.filter(o)) else None


def _retrieve(probe_sets, indexes, keep: _Keeper, top: int, n: int, embedder_key) -> list[set[int]]:
    """Per probe set, the pooled embedding ids: searched at k hits per probe, widened until `top`
    kept subjects are pooled or k covers the gallery. An approximate (IVF) index can leave a set
    short even then: that set pools every id, so a filter never loses candidates there either."""
    pools: list[set[int]] = [set() for _ in probe_sets]
    pending = list(range(len(probe_sets)))
    k = min(n, max(4 * top, 64))
    while pending:
        for name, ix in indexes.items():
            rows = [(si, p.vector) for si in pending for p in probe_sets[si].probes if p.index == name]
            if not rows:
                continue
            _, ids = ix.search(np.stack([v for _, v in rows]), k, embedder_key=embedder_key)
            for (si, _), hit in zip(rows, ids):
                pools[si].update(int(i) for i in hit if i >= 0)
        keep.owners.fetch(set().union(*(pools[si] for si in pending)))
        short = [si for si in pending if len({o.external_id for o in map(keep, pools[si]) if o is not None}) < top]
        if k >= n:
            _pool_everything(short, pools, indexes, keep)
            break
        pending, k = short, min(n, k * 4)
    return pools


def _pool_everything(short: list[int], pools: list[set[int]], indexes, keep: _Keeper) -> None:
    """Sets still short after a search of the whole gallery (only an approximate index misses):
    every id is pooled and scored exactly."""
    if not short or all(ix.kind == "flat" for ix in indexes.values()):
        return
    every = {int(i) for i in next(iter(indexes.values())).ids()}
    keep.owners.fetch(every)
    for si in short:
        pools[si] |= every


def _score(probe_set: ProbeSet, pool: list[int], indexes, keep: _Keeper, top: int) -> list[RankedSubject]:
    """Exact scores of the pooled images that the filter keeps, best image per subject, fused.
    An id some index of the set lacks (the gallery changed between building two of them) is left
    out rather than scored in part."""
    held = np.asarray(pool, dtype=np.int64)
    for name in probe_set.indexes():
        held = held[indexes[name].contains(held)]
    kept = [(eid, o) for eid, o in ((int(e), keep(int(e))) for e in held) if o is not None]
    if not kept:
        return []
    ids = np.asarray([eid for eid, _ in kept], dtype=np.int64)
    sims = np.stack([p.vector @ indexes[p.index].reconstruct(ids).T for p in probe_set.probes])  # (m, c)
    w = probe_set.weights / probe_set.weights.sum()
    by_subject: dict[str, list[int]] = {}
    for col, (_, o) in enumerate(kept):
        by_subject.setdefault(o.external_id, []).append(col)
    ranked = []
    for sid, cols in by_subject.items():
        sub = sims[:, cols]  # (m, images of this subject)
        per_probe = sub.max(axis=1)
        best = cols[int(np.argmax(w @ sub))]
        ranked.append(RankedSubject(sid, float(per_probe @ w), [float(x) for x in per_probe], kept[best][1]))
    ranked.sort(key=lambda r: (-r.score, r.external_id))
    return ranked[:top]


def to_candidates(ranked: list[RankedSubject], probe_set: ProbeSet | None = None) -> list[Candidate]:
    """Typed candidates, rank 1 first; with several probes, each probe's score labelled."""
    labels = [p.describe() for p in probe_set.probes] if probe_set is not None else None
    out = []
    for i, r in enumerate(ranked):
        detail = {}
        if len(r.per_probe) > 1:
            detail["per_probe"] = [round(s, 6) for s in r.per_probe]
            if labels:
                detail["probes"] = [{**lab, "score": round(s, 6)} for lab, s in zip(labels, r.per_probe)]
        out.append(Candidate(
            rank=i + 1, subject_id=r.external_id, name=r.owner.name, score=round(r.score, 6),
            image_sha256=r.owner.image_sha256, image_id=r.owner.image_id, embedding_id=r.owner.embedding_id,
            sex=r.owner.sex, birth_year=r.owner.birth_year, detail=detail))
    return out
