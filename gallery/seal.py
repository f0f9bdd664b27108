"""Seals: SHA-256 digests of what the gallery stores, computed from the stored rows.

An audit event that records a write carries the digest of what that write left in the
database: an enroll batch the digest of each image it enrolled (with its faces and vectors) and
of each subject it created or changed; a stored query the digest of the query (parameters, model
checksums, input hashes, ranked candidates and scores); a subject removal the new digests of the
queries whose candidates it unlinked. ``audit verify`` (:mod:`gallery.verify`) recomputes them
with these same functions, so any later edit of those rows is detected.

Each digest is ``sha256(canonical_json(record))``; binary columns enter as their SHA-256.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Embedder, Face, FaceEmbedding, Image, Query, QueryCandidate, QueryInput, Review, Subject
from .transaction import chunks
from .util import canonical_json, iso_utc

#: Version of the sealed records, kept in each sealing event (``details["seal"]``).
SEAL_VERSION = 1


def digest(record: Any) -> str:
    """``sha256`` of the canonical JSON text of ``record``."""
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def _blob(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _when(value: Any) -> Optional[str]:
    return None if value is None else iso_utc(value)


# -- images ------------------------------------------------------------------------------------


def _image_rows(s: Session, shas: Optional[Iterable[str]]) -> list[tuple[Image, str]]:
    stmt = select(Image, Subject.external_id).join(Subject, Subject.id == Image.subject_id)
    if shas is None:
        return [(i, ext) for i, ext in s.execute(stmt.order_by(Image.id))]
    out: list[tuple[Image, str]] = []
    for chunk in chunks(sorted(set(shas))):
        out.extend((i, ext) for i, ext in s.execute(stmt.where(Image.sha256.in_(chunk))))
    return out


def _faces_of(s: Session, image_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The faces of each image (by face id), each with its vectors' embedder and SHA-256."""
    vectors: dict[int, list[dict[str, Any]]] = defaultdict(list)
    faces: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks(image_ids):
        face_rows = list(s.scalars(select(Face).where(Face.image_id.in_(chunk)).order_by(Face.id)))
        for fchunk in chunks([f.id for f in face_rows]):
            stmt = select(FaceEmbedding).where(FaceEmbedding.face_id.in_(fchunk)).order_by(FaceEmbedding.id)
            for e in s.scalars(stmt):
                vectors[e.face_id].append({"embedder_id": e.embedder_id, "vector": _blob(e.vector)})
        for f in face_rows:
            faces[f.image_id].append({"box": f.box, "landmarks": f.landmarks, "det_score": f.det_score,
                                      "chip": _blob(f.chip_png), "chip_size": f.chip_size,
                                      "vectors": vectors.get(f.id, [])})
    return faces


def image_digests(s: Session, shas: Optional[Iterable[str]] = None) -> dict[str, str]:
    """The digest of each stored image (all of them when ``shas`` is None) by SHA-256: its row,
    its subject's external id, its faces and their vectors."""
    rows = _image_rows(s, shas)
    faces = _faces_of(s, [i.id for i, _ in rows])
    return {i.sha256: digest({"sha256": i.sha256, "subject": ext, "original_path": i.original_path,
                              "width": i.width, "height": i.height, "size_bytes": i.size_bytes,
                              "source": i.source, "n_faces": i.n_faces, "enrolled_at": _when(i.enrolled_at),
                              "faces": faces.get(i.id, [])})
            for i, ext in rows}


# -- subjects ----------------------------------------------------------------------------------


def subject_key(external_id: str) -> str:
    """How audit events name a subject: the SHA-256 of its external id (a removed person's id
    must not stay readable in the append-only log)."""
    return hashlib.sha256(external_id.encode("utf-8")).hexdigest()


def subject_digests(s: Session, external_ids: Optional[Iterable[str]] = None) -> dict[str, str]:
    """The digest of each stored subject's fields (all of them when ``external_ids`` is None),
    by :func:`subject_key`."""
    stmt = select(Subject)
    if external_ids is None:
        rows = list(s.scalars(stmt))
    else:
        rows = [r for chunk in chunks(sorted(set(external_ids)))
                for r in s.scalars(stmt.where(Subject.external_id.in_(chunk)))]
    return {subject_key(r.external_id): digest({"external_id": r.external_id, "name": r.name, "sex": r.sex,
                                   "birth_year": r.birth_year, "meta": r.meta or {},
                                   "created_at": _when(r.created_at)})
            for r in rows}


# -- queries -----------------------------------------------------------------------------------


def _embedder_record(s: Session, embedder_id: Optional[int]) -> Optional[dict[str, Any]]:
    e = None if embedder_id is None else s.get(Embedder, embedder_id)
    if e is None:
        return None
    return {"id": e.id, "name": e.name, "version": e.version, "dim": e.dim, "weights_sha256": e.weights_sha256}


def _query_record(s: Session, q: Query) -> dict[str, Any]:
    inputs = s.scalars(select(QueryInput).where(QueryInput.query_id == q.id).order_by(QueryInput.id))
    cands = s.scalars(select(QueryCandidate).where(QueryCandidate.query_id == q.id).order_by(QueryCandidate.id))
    return {
        "query_uid": q.query_uid, "created_at": _when(q.created_at), "case_id": q.case_id,
        "operator": q.operator, "mode": q.mode, "params": q.params, "embedder": _embedder_record(s, q.embedder_id),
        "inverter": q.inverter, "gallery_size": q.gallery_size, "gallery_fingerprint": q.gallery_fingerprint,
        "timings": q.timings, "tool_version": q.tool_version, "filters": q.filters,
        "inputs": [{"position": i.position, "sha256": i.sha256, "original_path": i.original_path,
                    "aligned_png": _blob(i.aligned_png), "synthesized_png": _blob(i.synthesized_png),
                    "landmarks": i.landmarks, "detection": i.detection} for i in inputs],
        "candidates": [{"rank": c.rank, "subject_id": c.subject_id, "subject_external_id": c.subject_external_id,
                        "subject_name": c.subject_name, "image_sha256": c.image_sha256, "score": c.score,
                        "score_detail": c.score_detail} for c in cands],
    }


def query_digests(s: Session, query_uids: Optional[Iterable[str]] = None) -> dict[str, str]:
    """The digest of each stored query (all of them when ``query_uids`` is None) by query uid:
    its row, its embedder's checksum, its inputs and its ranked candidates with their scores."""
    stmt = select(Query)
    if query_uids is None:
        rows = list(s.scalars(stmt.order_by(Query.id)))
    else:
        rows = [q for chunk in chunks(sorted(set(query_uids)))
                for q in s.scalars(stmt.where(Query.query_uid.in_(chunk)))]
    return {q.query_uid: digest(_query_record(s, q)) for q in rows}


def review_digests(s: Session, review_uids: Optional[Iterable[str]] = None) -> dict[str, str]:
    """The digest of each stored review (all when ``review_uids`` is None) by review uid: the
    query it is of, the candidate rank, decision, note, examiner, time and what it verifies."""
    stmt = select(Review, Query.query_uid).join(Query, Review.query_id == Query.id)
    if review_uids is None:
        rows = list(s.execute(stmt.order_by(Review.id)))
    else:
        rows = [r for chunk in chunks(sorted(set(review_uids))) for r in s.execute(stmt.where(Review.review_uid.in_(chunk)))]
    return {r.review_uid: digest({"review_uid": r.review_uid, "query_uid": quid, "rank": r.candidate_rank,
                                  "decision": r.decision, "note": r.note, "examiner": r.examiner,
                                  "created_at": _when(r.created_at), "verifies_uid": r.verifies_uid})
            for r, quid in rows}


def queries_citing(s: Session, subject_id: int) -> list[str]:
    """The uids of the stored queries with a candidate linked to subject ``subject_id``."""
    stmt = (select(Query.query_uid).join(QueryCandidate, QueryCandidate.query_id == Query.id)
            .where(QueryCandidate.subject_id == subject_id).distinct())
    return sorted(s.scalars(stmt))


__all__ = ["SEAL_VERSION", "digest", "image_digests", "queries_citing", "query_digests", "review_digests",
           "subject_digests", "subject_key"]
