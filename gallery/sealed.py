"""The writes that must never be committed without their audit event: each runs in one
transaction with the event that records it and seals what it left (:mod:`gallery.seal`).

* :func:`enroll_sealed`          a batch of images (event ``enroll-batch``);
* :func:`save_query_sealed`      a stored query (event ``query``);
* :func:`remove_subject_sealed`  a subject's removal (event ``remove-subject``), which re-seals
  the stored queries whose candidates lose the subject's id and name;
* :func:`add_review_sealed`      an examiner's review of a candidate (event ``review``);
* :func:`change_setting_sealed`  a gallery setting kept in ``gallery_meta`` (event ``gallery-setting``,
  with the setting's old and new value).

``audit verify`` (:func:`gallery.verify.verify_gallery`) checks the stored rows against them.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from . import audit
from .enrollment import Outcome
from .models import GalleryMeta
from .records import EnrollmentResult, RemovedSubject
from .repository import GalleryRepository
from .seal import SEAL_VERSION, image_digests, queries_citing, query_digests, review_digests, subject_digests, subject_key
from .transaction import Source, write_transaction

ENROLL_BATCH, QUERY, REMOVE_SUBJECT, REVIEW = "enroll-batch", "query", "remove-subject", "review"
SETTING = "gallery-setting"
#: The prefix of a removal event's target (then the subject's key: no readable id stays).
REMOVED_PREFIX = "subject-sha256:"


def enroll_sealed(source: Source, enrollments: Iterable[tuple[Any, Any, Iterable[Any]]], actor: str,
                  details: Optional[Mapping[str, Any]] = None) -> list[Outcome]:
    """:meth:`~gallery.enrollment.EnrollmentStore.add_enrollments` and, when something was
    enrolled, its ``enroll-batch`` event (with ``details``, the digest of each image and subject
    it wrote, and the images' SHA-256 as input hashes), in one transaction."""
    with write_transaction(source) as s:
        outcomes = GalleryRepository(s).add_enrollments(enrollments)
        added = [o for o in outcomes if isinstance(o, EnrollmentResult)]
        if added:
            shas = [o.image_sha256 for o in added]
            audit.append_event(s, actor=actor, action=ENROLL_BATCH, target=f"{len(added)} image(s)",
                               details={**(details or {}), "seal": SEAL_VERSION, "images": image_digests(s, shas),
                                        "subjects": subject_digests(s, {o.external_id for o in added})},
                               input_hashes=shas)
    return outcomes


def save_query_sealed(source: Source, actor: str, details: Mapping[str, Any], input_hashes: Iterable[str],
                      **query: Any) -> str:
    """:meth:`~gallery.queries.QueryStore.save_query` (``query``: its arguments) and its
    ``query`` event (``details`` plus the query's digest), in one transaction; the query uid."""
    with write_transaction(source) as s:
        uid = GalleryRepository(s).save_query(**query)
        audit.append_event(s, actor=actor, action=QUERY, target=uid,
                           details={**details, "seal": SEAL_VERSION, "digest": query_digests(s, [uid])[uid]},
                           input_hashes=input_hashes)
    return uid


def remove_subject_sealed(source: Source, external_id: str, actor: str) -> RemovedSubject:
    """:meth:`~gallery.subjects.SubjectStore.remove_subject` and its event, in one transaction.
    The event keeps only hashes of the purged person (the id's key, the images' SHA-256) and the
    new digests of the stored queries that cited the subject. Raises SubjectNotFoundError."""
    with write_transaction(source) as s:
        repo = GalleryRepository(s)
        info = repo.get_subject(external_id)
        citing = queries_citing(s, info.id) if info is not None else []
        removed = repo.remove_subject(external_id)
        audit.append_event(s, actor=actor, action=REMOVE_SUBJECT, target=REMOVED_PREFIX + subject_key(external_id),
                           details={"images": len(removed.image_sha256s), "vectors": len(removed.embedding_ids),
                                    "seal": SEAL_VERSION, "queries": query_digests(s, citing)},
                           input_hashes=list(removed.image_sha256s))
    return removed


def add_review_sealed(source: Source, actor: str, query_uid: str, candidate_rank: int, decision: str,
                      examiner: str, note: Optional[str] = None, verifies_uid: Optional[str] = None) -> str:
    """:meth:`~gallery.reviews.ReviewStore.add_review` and its ``review`` event (with the review's
    digest), in one transaction; the review uid."""
    with write_transaction(source) as s:
        uid = GalleryRepository(s).add_review(query_uid, candidate_rank, decision, examiner, note, verifies_uid)
        audit.append_event(s, actor=actor, action=REVIEW, target=uid,
                           details={"query": query_uid, "rank": candidate_rank, "decision": decision,
                                    "verifies": verifies_uid, "seal": SEAL_VERSION,
                                    "digest": review_digests(s, [uid])[uid]})
    return uid


def change_setting_sealed(source: Source, key: str, value: Any, actor: str, default: Any = None) -> Any:
    """Store the JSON ``value`` under ``key`` in ``gallery_meta`` and its ``gallery-setting`` event
    (the key, the old value and the new one), in one transaction; returns the old value (``default``
    when unset). When the value is already ``value`` nothing is written."""
    with write_transaction(source) as s:
        row = s.get(GalleryMeta, key)
        old = default if row is None else row.value
        if old != value:
            s.merge(GalleryMeta(key=key, value=value))
            audit.append_event(s, actor=actor, action=SETTING, target=key,
                               details={"setting": key, "old": old, "new": value})
    return old


__all__ = ["ENROLL_BATCH", "QUERY", "REMOVED_PREFIX", "REMOVE_SUBJECT", "REVIEW", "SETTING", "add_review_sealed",
           "change_setting_sealed", "enroll_sealed", "remove_subject_sealed", "save_query_sealed"]
