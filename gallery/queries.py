"""Stored queries: a search's parameters, probes and ranked candidates, kept for reports.

:class:`QueryStore` is the part of :class:`~gallery.repository.GalleryRepository` that saves,
gets, lists and counts them.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping, Optional, Union

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Query, QueryCandidate, QueryInput, Subject
from .records import (
    QueryCandidateRecord,
    QueryCandidateSpec,
    QueryInputRecord,
    QueryInputSpec,
    QueryRecord,
    QuerySummary,
)
from .transaction import Store
from .util import to_plain, tool_version as _tool_version
from .vectors import EmbedderLike, embedder_id, embedder_info


def _plain_dict(value: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    return None if value is None else to_plain(dict(value))


def _input_row(query_id: int, pos: int, i: QueryInputSpec) -> QueryInput:
    return QueryInput(
        query_id=query_id,
        position=pos if i.position is None else int(i.position),
        sha256=i.sha256,
        original_path=None if i.original_path is None else str(i.original_path),
        aligned_png=i.aligned_png,
        synthesized_png=i.synthesized_png,
        landmarks=to_plain(i.landmarks),
        detection=to_plain(i.detection),
    )


def _subject_ids(s: Session, cands: list[QueryCandidateSpec]) -> dict[str, int]:
    """Subject ids by external id, for the candidates given without a subject id."""
    ext_ids = {c.subject_external_id for c in cands if c.subject_id is None}
    ext_ids.discard(None)
    if not ext_ids:
        return {}
    stmt = select(Subject.id, Subject.external_id).where(Subject.external_id.in_(sorted(ext_ids)))  # type: ignore[arg-type]
    return {ext: sid for sid, ext in s.execute(stmt)}


def _candidate_row(query_id: int, c: QueryCandidateSpec, by_ext: Mapping[str, int]) -> QueryCandidate:
    sid = c.subject_id
    if sid is None and c.subject_external_id is not None:
        sid = by_ext.get(c.subject_external_id)
    return QueryCandidate(
        query_id=query_id,
        rank=int(c.rank),
        subject_id=sid,
        subject_external_id=c.subject_external_id,
        subject_name=c.subject_name,
        image_sha256=c.image_sha256,
        score=float(c.score),
        score_detail=to_plain(c.score_detail),
    )


def _record(q: Query) -> QueryRecord:
    inputs = tuple(
        QueryInputRecord(i.position, i.sha256, i.original_path, i.aligned_png, i.synthesized_png,
                         i.landmarks, i.detection)
        for i in q.inputs
    )
    candidates = tuple(
        QueryCandidateRecord(c.rank, c.subject_id, c.subject_external_id, c.subject_name,
                             c.image_sha256, c.score, c.score_detail)
        for c in q.candidates
    )
    return QueryRecord(
        id=q.id, query_uid=q.query_uid, created_at=q.created_at, case_id=q.case_id,
        operator=q.operator, mode=q.mode, params=q.params,
        embedder=None if q.embedder is None else embedder_info(q.embedder), inverter=q.inverter,
        gallery_size=q.gallery_size, gallery_fingerprint=q.gallery_fingerprint, timings=q.timings,
        tool_version=q.tool_version, filters=q.filters, inputs=inputs, candidates=candidates,
    )


def _top_candidate(s: Session, query_id: int) -> Optional[tuple[Optional[str], float]]:
    best = s.execute(
        select(QueryCandidate.subject_external_id, QueryCandidate.score)
        .where(QueryCandidate.query_id == query_id)
        .order_by(QueryCandidate.rank)
        .limit(1)
    ).first()
    return None if best is None else (best[0], float(best[1]))


class QueryStore(Store):
    """Save, get, list and count the stored queries of a gallery."""

    def save_query(
        self,
        *,
        mode: Optional[str] = None,
        query_uid: Optional[str] = None,
        case_id: Optional[str] = None,
        operator: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        embedder: EmbedderLike = None,
        inverter: Optional[Mapping[str, Any]] = None,
        gallery_size: Optional[int] = None,
        gallery_fingerprint: Optional[str] = None,
        timings: Optional[Mapping[str, Any]] = None,
        tool_version: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        inputs: Iterable[Union[QueryInputSpec, Mapping[str, Any]]] = (),
        candidates: Iterable[Union[QueryCandidateSpec, Mapping[str, Any]]] = (),
        created_at: Any = None,
    ) -> str:
        """Store a query with its probes and ranked candidates in one transaction; returns its
        ``query_uid`` (a new uuid4 hex unless given). ``tool_version`` defaults to the installed
        forensics version. A candidate without ``subject_id`` is linked by external id."""
        in_specs = [i if isinstance(i, QueryInputSpec) else QueryInputSpec(**i) for i in inputs]
        cand_specs = [c if isinstance(c, QueryCandidateSpec) else QueryCandidateSpec(**c) for c in candidates]
        q = Query(
            query_uid=query_uid or uuid.uuid4().hex, case_id=case_id, operator=operator, mode=mode,
            params=_plain_dict(params), inverter=_plain_dict(inverter),
            embedder_id=None if embedder is None else embedder_id(embedder),
            gallery_size=gallery_size, gallery_fingerprint=gallery_fingerprint,
            timings=_plain_dict(timings), filters=_plain_dict(filters),
            tool_version=tool_version if tool_version is not None else _tool_version(),
        )
        if created_at is not None:
            q.created_at = created_at
        with self._write() as s:
            s.add(q)
            s.flush()
            s.add_all([_input_row(q.id, pos, i) for pos, i in enumerate(in_specs)])
            by_ext = _subject_ids(s, cand_specs)
            s.add_all([_candidate_row(q.id, c, by_ext) for c in cand_specs])
            s.flush()
        return q.query_uid

    def get_query(self, query_uid: str) -> Optional[QueryRecord]:
        """The stored query with its probes (by position) and candidates (by rank); None if absent."""
        with self._read() as s:
            q = s.scalars(select(Query).where(Query.query_uid == query_uid)).one_or_none()
            return None if q is None else _record(q)

    def query_uids_starting(self, prefix: str, limit: int = 10) -> list[str]:
        """The stored query ids that start with ``prefix`` (a short id typed by a user), at most
        ``limit``, in id order."""
        if not prefix or not all(c in "0123456789abcdef" for c in prefix.lower()):
            return []
        stmt = (select(Query.query_uid).where(Query.query_uid >= prefix.lower())
                .where(Query.query_uid < prefix.lower() + "g").order_by(Query.query_uid).limit(int(limit)))
        with self._read() as s:
            return list(s.scalars(stmt))

    def list_queries(
        self, limit: int = 50, offset: int = 0, case_id: Optional[str] = None
    ) -> list[QuerySummary]:
        """Stored queries, newest first (optionally of one case), with their top candidate."""
        n_in = select(func.count(QueryInput.id)).where(QueryInput.query_id == Query.id).scalar_subquery()
        n_cand = select(func.count(QueryCandidate.id)).where(QueryCandidate.query_id == Query.id).scalar_subquery()
        stmt = select(Query, n_in, n_cand).order_by(Query.created_at.desc(), Query.id.desc())
        if case_id is not None:
            stmt = stmt.where(Query.case_id == case_id)
        stmt = stmt.limit(int(limit)).offset(int(offset))
        out: list[QuerySummary] = []
        with self._read() as s:
            for q, ni, nc in s.execute(stmt):
                best = _top_candidate(s, q.id)
                out.append(QuerySummary(
                    query_uid=q.query_uid, created_at=q.created_at, case_id=q.case_id,
                    operator=q.operator, mode=q.mode, n_inputs=int(ni or 0), n_candidates=int(nc or 0),
                    top_external_id=None if best is None else best[0],
                    top_score=None if best is None else best[1], gallery_size=q.gallery_size,
                ))
        return out

    def count_queries(self) -> int:
        """Number of stored queries."""
        with self._read() as s:
            return int(s.scalar(select(func.count(Query.id))) or 0)


__all__ = ["QueryStore"]
