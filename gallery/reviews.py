"""Examiner reviews of stored queries' candidates: only ever added, each sealed in the audit log.

:class:`ReviewStore` is the part of :class:`~gallery.repository.GalleryRepository` that adds and
reads them; `gallery.sealed.add_review_sealed` writes one with its audit event.
"""

from __future__ import annotations

import uuid
from typing import Optional

from sqlalchemy import select

from .errors import GalleryError
from .models import Query, QueryCandidate, Review
from .records import ReviewRecord
from .transaction import Store

DECISIONS = ("lead", "excluded", "inconclusive")


def _record(r: Review, query_uid: str) -> ReviewRecord:
    return ReviewRecord(r.review_uid, query_uid, r.candidate_rank, r.decision, r.note, r.examiner, r.created_at,
                        r.verifies_uid)


def latest_decisions(reviews: list[ReviewRecord]) -> dict[int, ReviewRecord]:
    """Per candidate rank, its latest decision (a later one supersedes; verifications are not
    decisions), from one query's reviews oldest first."""
    return {r.candidate_rank: r for r in reviews if r.verifies_uid is None}


def verifications(reviews: list[ReviewRecord], decision: ReviewRecord) -> list[ReviewRecord]:
    """The second examiners' confirmations of `decision`, oldest first."""
    return [r for r in reviews if r.verifies_uid == decision.review_uid]


class ReviewStore(Store):
    """Add and read the examiner reviews of stored queries."""

    def add_review(self, query_uid: str, candidate_rank: int, decision: str, examiner: str,
                   note: Optional[str] = None, verifies_uid: Optional[str] = None) -> str:
        """Store one review (a new uuid4 hex id, returned). The query and the candidate rank must
        exist and the decision be one of DECISIONS; GalleryError otherwise."""
        if decision not in DECISIONS:
            raise GalleryError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        with self._write() as s:
            q = s.scalars(select(Query).where(Query.query_uid == query_uid)).one_or_none()
            if q is None:
                raise GalleryError(f"no stored query {query_uid!r}")
            ranks = set(s.scalars(select(QueryCandidate.rank).where(QueryCandidate.query_id == q.id)))
            if candidate_rank not in ranks:
                raise GalleryError(f"query {query_uid} has no candidate at rank {candidate_rank} "
                                   f"(ranks 1 to {max(ranks) if ranks else 0})")
            r = Review(review_uid=uuid.uuid4().hex, query_id=q.id, candidate_rank=int(candidate_rank),
                       decision=decision, note=note, examiner=examiner, verifies_uid=verifies_uid)
            s.add(r)
            s.flush()
            return r.review_uid

    def reviews_of(self, query_uid: str) -> list[ReviewRecord]:
        """The reviews of one stored query, oldest first."""
        stmt = (select(Review).join(Query, Review.query_id == Query.id).where(Query.query_uid == query_uid)
                .order_by(Review.id))
        with self._read() as s:
            return [_record(r, query_uid) for r in s.scalars(stmt)]
