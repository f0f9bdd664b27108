"""Subjects (the people in the gallery): upsert, list, get and remove.

:class:`SubjectStore` is the part of :class:`~gallery.repository.GalleryRepository` that does
it; :func:`upsert_subjects` is the one upsert rule, shared with enrollment.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .errors import EnrollmentError, GalleryError, SubjectNotFoundError
from .models import Face, FaceEmbedding, Image, QueryCandidate, Subject
from .records import ImageInfo, RemovedSubject, SubjectInfo
from .transaction import CHUNK, Store
from .util import to_plain

#: The subject fields an upsert may set (besides ``external_id``).
SUBJECT_FIELDS = ("name", "sex", "birth_year", "meta")


def _update_subject(subj: Subject, name: Optional[str] = None, sex: Optional[str] = None,
                    birth_year: Optional[int] = None, meta: Optional[Mapping[str, Any]] = None) -> None:
    """Set the given fields of a subject; metadata is merged into what it has."""
    if name is not None:
        subj.name = name
    if sex is not None:
        subj.sex = sex
    if birth_year is not None:
        subj.birth_year = int(birth_year)
    if meta:
        merged = dict(subj.meta or {})
        merged.update(to_plain(dict(meta)))
        subj.meta = merged


def upsert_subjects(s: Session, fields: Sequence[Mapping[str, Any]]) -> list[tuple[Subject, bool]]:
    """Create or update one subject per mapping (``external_id`` plus :data:`SUBJECT_FIELDS`),
    in order; returns each row (flushed, with its id) and whether that mapping created it.

    Fields left None are kept; ``meta`` is merged (keys given replace keys stored). Raises
    EnrollmentError when an external id is not a non-empty string.
    """
    ext_ids = [kw.get("external_id") for kw in fields]
    if not all(isinstance(x, str) and x.strip() for x in ext_ids):
        raise EnrollmentError("subject external_id must be a non-empty string")
    rows = {r.external_id: r for r in s.scalars(select(Subject).where(Subject.external_id.in_(sorted(set(ext_ids)))))}
    out: list[tuple[Subject, bool]] = []
    for kw in fields:
        subj = rows.get(kw["external_id"])
        created = subj is None
        if subj is None:
            subj = rows[kw["external_id"]] = Subject(external_id=kw["external_id"], meta={})
            s.add(subj)
        _update_subject(subj, **{k: v for k, v in kw.items() if k != "external_id"})
        out.append((subj, created))
    s.flush()
    return out


def _image_info(i: Image) -> ImageInfo:
    return ImageInfo(id=i.id, sha256=i.sha256, original_path=i.original_path, width=i.width,
                     height=i.height, size_bytes=i.size_bytes, source=i.source, n_faces=i.n_faces,
                     enrolled_at=i.enrolled_at)


def _subject_record(subj: Subject, counts: Sequence[int], images: tuple[ImageInfo, ...] = ()) -> SubjectInfo:
    n_images, n_faces, n_embeddings = counts
    return SubjectInfo(id=subj.id, external_id=subj.external_id, name=subj.name, sex=subj.sex,
                       birth_year=subj.birth_year, meta=dict(subj.meta or {}), created_at=subj.created_at,
                       n_images=n_images, n_faces=n_faces, n_embeddings=n_embeddings, images=images)


def _counts(s: Session, sids: list[int]) -> dict[int, list[int]]:
    """``[images, faces, embeddings]`` of each subject id (three grouped queries)."""
    counts: dict[int, list[int]] = {sid: [0, 0, 0] for sid in sids}
    by_subject = Image.subject_id.in_(sids)
    queries = (
        select(Image.subject_id, func.count(Image.id)).where(by_subject),
        select(Image.subject_id, func.count(Face.id)).join(Face, Face.image_id == Image.id).where(by_subject),
        select(Image.subject_id, func.count(FaceEmbedding.id))
        .join(Face, Face.image_id == Image.id)
        .join(FaceEmbedding, FaceEmbedding.face_id == Face.id)
        .where(by_subject),
    )
    for k, stmt in enumerate(queries):
        for sid, n in s.execute(stmt.group_by(Image.subject_id)):
            counts[sid][k] = n
    return counts


def _subject_info(s: Session, subj: Subject, with_images: bool = False) -> SubjectInfo:
    images: tuple[ImageInfo, ...] = ()
    if with_images:
        stmt = select(Image).where(Image.subject_id == subj.id).order_by(Image.id)
        images = tuple(_image_info(i) for i in s.scalars(stmt))
    return _subject_record(subj, _counts(s, [subj.id])[subj.id], images)


def _find(s: Session, external_id: str) -> Optional[Subject]:
    return s.scalars(select(Subject).where(Subject.external_id == external_id)).one_or_none()


def _purge(s: Session, subj: Subject) -> RemovedSubject:
    """Delete ``subj`` (cascading to its images, faces and embeddings) and unlink its query
    candidates; returns what went."""
    sid = subj.id
    emb_ids = tuple(s.scalars(
        select(FaceEmbedding.id).join(Face).join(Image).where(Image.subject_id == sid).order_by(FaceEmbedding.id)))
    shas = tuple(s.scalars(select(Image.sha256).where(Image.subject_id == sid).order_by(Image.id)))
    n_faces = s.scalar(select(func.count(Face.id)).join(Image).where(Image.subject_id == sid)) or 0
    s.expunge(subj)
    s.execute(
        update(QueryCandidate)
        .where(QueryCandidate.subject_id == sid)
        .values(subject_external_id=None, subject_name=None)
        .execution_options(synchronize_session=False)
    )
    s.execute(delete(Subject).where(Subject.id == sid).execution_options(synchronize_session=False))
    if emb_ids:
        # The cascade is done by SQLite; make sure it really ran (foreign_keys=ON).
        left = s.scalar(select(func.count(FaceEmbedding.id)).where(FaceEmbedding.id.in_(emb_ids[:CHUNK])))
        if left:
            raise GalleryError("cascade delete did not run (foreign keys off); rolled back")
    return RemovedSubject(subj.external_id, sid, emb_ids, shas, int(n_faces))


class SubjectStore(Store):
    """Upsert, list, get and remove the subjects of a gallery."""

    def upsert_subject(
        self,
        external_id: str,
        name: Optional[str] = None,
        sex: Optional[str] = None,
        birth_year: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
    ) -> SubjectInfo:
        """Create the subject ``external_id`` or update it. Fields left None are kept as they
        are; ``meta`` is merged into the stored object (keys given replace keys stored)."""
        fields = {"external_id": external_id, "name": name, "sex": sex, "birth_year": birth_year, "meta": meta}
        with self._write() as s:
            ((subj, _),) = upsert_subjects(s, [fields])
            return _subject_info(s, subj)

    def list_subjects(self, limit: int = 100, offset: int = 0) -> list[SubjectInfo]:
        """Subjects ordered by external id, with image/face/embedding counts.

        The page is selected first (on the unique external_id index), then counted, so a
        page costs the same at any offset.
        """
        stmt = select(Subject).order_by(Subject.external_id).limit(int(limit)).offset(int(offset))
        with self._read() as s:
            page = list(s.scalars(stmt))
            counts = _counts(s, [p.id for p in page]) if page else {}
            return [_subject_record(p, counts[p.id]) for p in page]

    def get_subject(self, external_id: str) -> Optional[SubjectInfo]:
        """The subject with its counts and its images (``images``); None if unknown."""
        with self._read() as s:
            subj = _find(s, external_id)
            return None if subj is None else _subject_info(s, subj, with_images=True)

    def remove_subject(self, external_id: str) -> RemovedSubject:
        """Delete the subject and (by ON DELETE CASCADE) its images, faces and embeddings.

        Stored query candidates of this subject lose the link and their copied id and name
        (rank, score and image SHA-256 stay), so a purged person can no longer be found in the
        gallery or its stored queries. Returns the embedding ids to take out of the FAISS index.
        Raises SubjectNotFoundError.
        """
        with self._write() as s:
            subj = _find(s, external_id)
            if subj is None:
                raise SubjectNotFoundError(f"no subject with external id {external_id!r}")
            return _purge(s, subj)


__all__ = ["SUBJECT_FIELDS", "SubjectStore", "upsert_subjects"]
