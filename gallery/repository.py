"""High-level operations on the gallery database (the source of truth).

``GalleryRepository(gallery)`` runs every call in its own transaction (writes with
``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout instead of failing).
``GalleryRepository(session)`` uses the caller's session and transaction instead: writes go
inside a SAVEPOINT (so each call is still all-or-nothing) and the caller commits.

Results are detached value objects from :mod:`gallery.records`.
"""

from __future__ import annotations

import hashlib
import uuid
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import Gallery
from .errors import (
    DuplicateImageError,
    EmbedderMismatchError,
    EnrollmentError,
    GalleryError,
    SubjectNotFoundError,
)
from .models import (
    Embedder,
    Face,
    FaceEmbedding,
    Image,
    Query,
    QueryCandidate,
    QueryInput,
    Subject,
)
from .records import (
    EmbedderInfo,
    EnrollmentResult,
    FaceSpec,
    ImageInfo,
    ImageSpec,
    Owner,
    QueryCandidateRecord,
    QueryCandidateSpec,
    QueryInputRecord,
    QueryInputSpec,
    QueryRecord,
    QuerySummary,
    RemovedSubject,
    SubjectInfo,
)
from .util import is_sha256_hex, to_plain, tool_version as _tool_version

#: Ids per ``IN (...)`` clause (SQLite's historical limit is 999 bound parameters).
_CHUNK = 900

EmbedderLike = Union[EmbedderInfo, Embedder, int, None]


def _chunks(seq: Sequence[int], n: int = _CHUNK) -> Iterator[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _dbapi(s: Session) -> Any:
    """The sqlite3 connection under the session's current transaction."""
    return s.connection().connection.dbapi_connection


def _info(e: Embedder) -> EmbedderInfo:
    return EmbedderInfo(e.name, e.version, e.dim, e.weights_sha256, id=e.id)


def normalize_vector(vector: Any, dim: int) -> np.ndarray:
    """``vector`` as a float32 array of length ``dim`` with unit L2 norm (EnrollmentError if not
    finite, wrong length or zero)."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape[0] != dim:
        raise EnrollmentError(f"embedding has {v.shape[0]} values, the embedder's dim is {dim}")
    if not np.all(np.isfinite(v)):
        raise EnrollmentError("embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise EnrollmentError("embedding is all zeros (cannot be normalised)")
    return (v / norm).astype("<f4")


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """The storage form of a (normalised) vector: little-endian float32 bytes."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(blob: bytes) -> np.ndarray:
    """The float32 vector stored by :func:`vector_to_bytes`."""
    return np.frombuffer(blob, dtype="<f4")


def _check_box(box: Any) -> list[float]:
    b = to_plain(box)
    if not (isinstance(b, list) and len(b) == 4 and all(isinstance(x, (int, float)) for x in b)):
        raise EnrollmentError(f"face box must be [x1, y1, x2, y2], got {box!r}")
    return [float(x) for x in b]


def _check_landmarks(landmarks: Any) -> Optional[list[list[float]]]:
    if landmarks is None:
        return None
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.shape != (5, 2) or not np.all(np.isfinite(arr)):
        raise EnrollmentError(f"landmarks must be 5 finite (x, y) points, got shape {arr.shape}")
    return arr.tolist()


def _image_row(spec: ImageSpec, n_face_specs: int) -> dict[str, Any]:
    """The `images` columns of an enrollment (but its subject)."""
    return {"sha256": spec.sha256, "original_path": spec.original_path, "width": spec.width, "height": spec.height,
            "size_bytes": spec.size_bytes, "source": spec.source,
            "n_faces": n_face_specs if spec.n_faces_detected is None else spec.n_faces_detected}


def _face_row(f: FaceSpec) -> dict[str, Any]:
    """The `faces` columns of one face (but its image), checked."""
    return {"box": _check_box(f.box), "landmarks": _check_landmarks(f.landmarks),
            "det_score": None if f.det_score is None else float(f.det_score),
            "chip_png": None if f.chip_png is None else bytes(f.chip_png), "chip_size": f.chip_size}


class _NotPlain(Exception):
    """A batch that cannot take the one-flush path of `add_enrollments`."""


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


class GalleryRepository:
    """The operations the application needs on a gallery database.

    ``source`` is a :class:`~gallery.db.Gallery` (each call is its own transaction) or an open
    SQLAlchemy ``Session`` (calls join the caller's transaction; writes use a SAVEPOINT).
    """

    def __init__(self, source: Union[Gallery, Session]) -> None:
        if isinstance(source, Gallery):
            self._gallery: Optional[Gallery] = source
            self._session: Optional[Session] = None
        elif isinstance(source, Session):
            self._gallery = None
            self._session = source
        else:
            raise TypeError(f"GalleryRepository needs a Gallery or a Session, not {type(source)}")

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        if self._gallery is not None:
            with self._gallery.session() as s:
                yield s
        else:
            assert self._session is not None
            yield self._session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        if self._gallery is not None:
            with self._gallery.Session() as s:
                with s.begin():
                    # Take the write lock up front: no deferred read->write upgrade, which in
                    # WAL mode fails at once (SQLITE_BUSY) instead of waiting.
                    s.connection(execution_options={"forensics_begin": "BEGIN IMMEDIATE"})
                    yield s
        else:
            assert self._session is not None
            with self._session.begin_nested():
                yield self._session

    @contextmanager
    def snapshot(self) -> Iterator["GalleryRepository"]:
        """A repository whose reads all see one consistent state of the database (one read
        transaction), e.g. to take a fingerprint and the vectors it describes together."""
        with self._read() as s:
            yield GalleryRepository(s)

    # -- embedders ----------------------------------------------------------------------------

    def get_or_create_embedder(
        self, name: str, version: str, dim: int, weights_sha256: Optional[str] = None
    ) -> EmbedderInfo:
        """The ``embedders`` row for (name, version), created if new.

        Raises EmbedderMismatchError if a row with that name/version exists with another
        ``dim`` or another known ``weights_sha256`` (same version label, different model).
        """
        dim = int(dim)
        if dim <= 0:
            raise ValueError("embedder dim must be positive")
        if weights_sha256 is not None and not is_sha256_hex(weights_sha256):
            raise ValueError("weights_sha256 must be 64 lowercase hex characters")
        with self._write() as s:
            e = s.scalars(
                select(Embedder).where(Embedder.name == name, Embedder.version == version)
            ).one_or_none()
            if e is None:
                e = Embedder(name=name, version=version, dim=dim, weights_sha256=weights_sha256)
                s.add(e)
                s.flush()
                return _info(e)
            if e.dim != dim:
                raise EmbedderMismatchError(
                    f"embedder {name}@{version} is registered with dim {e.dim}, not {dim}; "
                    "a model with a different output size needs a new version label"
                )
            if weights_sha256 and e.weights_sha256 and e.weights_sha256 != weights_sha256:
                raise EmbedderMismatchError(
                    f"embedder {name}@{version} is registered with weights "
                    f"{e.weights_sha256[:12]}…, but these weights are {weights_sha256[:12]}…; "
                    "different weights under the same version label would silently mix "
                    "incomparable vectors (give the new weights a new version)"
                )
            if weights_sha256 and not e.weights_sha256:
                e.weights_sha256 = weights_sha256
            return _info(e)

    def get_embedder(self, embedder_id: int) -> Optional[EmbedderInfo]:
        """The embedder with database id ``embedder_id`` (None if absent)."""
        with self._read() as s:
            e = s.get(Embedder, int(embedder_id))
            return None if e is None else _info(e)

    def list_embedders(self) -> list[EmbedderInfo]:
        """All registered embedders (whether or not the gallery holds their vectors)."""
        with self._read() as s:
            return [_info(e) for e in s.scalars(select(Embedder).order_by(Embedder.id))]

    def _gallery_embedder(self, s: Session) -> Optional[Embedder]:
        ids = list(s.scalars(select(FaceEmbedding.embedder_id).distinct().limit(2)))
        if not ids:
            return None
        if len(ids) > 1:
            raise GalleryError(
                "the gallery holds vectors of more than one embedder; it must be re-enrolled "
                "with a single embedder"
            )
        return s.get(Embedder, ids[0])

    def gallery_embedder(self) -> Optional[EmbedderInfo]:
        """The one embedder whose vectors are in the gallery; None while it holds none."""
        with self._read() as s:
            e = self._gallery_embedder(s)
            return None if e is None else _info(e)

    @staticmethod
    def _mismatch_message(have: Embedder | EmbedderInfo, name: str, version: str, dim: int) -> str:
        return (
            f"the gallery was enrolled with embedder {have.name}@{have.version} (dim {have.dim}), "
            f"but this run uses {name}@{version} (dim {dim}). Vectors of different embedders are "
            "not comparable and are never mixed: use the gallery's embedder, or re-enroll the "
            "whole gallery into a new database with the new one."
        )

    def ensure_embedder_compatible(
        self, name: str, version: str, dim: int, weights_sha256: Optional[str] = None
    ) -> Optional[EmbedderInfo]:
        """Check that vectors of (name, version, dim) may be added to / compared with the gallery.

        Returns the gallery's embedder (None for an empty gallery); raises
        EmbedderMismatchError when the gallery was enrolled with another embedder, or with the
        same name/version but other weights.
        """
        have = self.gallery_embedder()
        if have is None:
            return None
        if (have.name, have.version, have.dim) != (name, version, int(dim)):
            raise EmbedderMismatchError(self._mismatch_message(have, name, version, int(dim)))
        if weights_sha256 and have.weights_sha256 and weights_sha256 != have.weights_sha256:
            raise EmbedderMismatchError(
                f"the gallery's embedder {have.name}@{have.version} used weights "
                f"{have.weights_sha256[:12]}…, this run loads {weights_sha256[:12]}…; the "
                "vectors would not be comparable"
            )
        return have

    # -- subjects -----------------------------------------------------------------------------

    @staticmethod
    def _upsert_subject(
        s: Session,
        external_id: str,
        name: Optional[str] = None,
        sex: Optional[str] = None,
        birth_year: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
    ) -> tuple[Subject, bool]:
        if not isinstance(external_id, str) or not external_id.strip():
            raise EnrollmentError("subject external_id must be a non-empty string")
        subj = s.scalars(select(Subject).where(Subject.external_id == external_id)).one_or_none()
        created = subj is None
        if subj is None:
            subj = Subject(external_id=external_id, meta={})
            s.add(subj)
        _update_subject(subj, name, sex, birth_year, meta)
        s.flush()
        return subj, created

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
        with self._write() as s:
            subj, _ = self._upsert_subject(s, external_id, name, sex, birth_year, meta)
            return self._subject_info(s, subj)

    def _subject_info(self, s: Session, subj: Subject, with_images: bool = False) -> SubjectInfo:
        n_images = s.scalar(select(func.count(Image.id)).where(Image.subject_id == subj.id)) or 0
        n_faces = (
            s.scalar(
                select(func.count(Face.id)).join(Image).where(Image.subject_id == subj.id)
            )
            or 0
        )
        n_emb = (
            s.scalar(
                select(func.count(FaceEmbedding.id))
                .join(Face)
                .join(Image)
                .where(Image.subject_id == subj.id)
            )
            or 0
        )
        images: tuple[ImageInfo, ...] = ()
        if with_images:
            images = tuple(
                self._image_info(i)
                for i in s.scalars(
                    select(Image).where(Image.subject_id == subj.id).order_by(Image.id)
                )
            )
        return SubjectInfo(
            id=subj.id,
            external_id=subj.external_id,
            name=subj.name,
            sex=subj.sex,
            birth_year=subj.birth_year,
            meta=dict(subj.meta or {}),
            created_at=subj.created_at,
            n_images=n_images,
            n_faces=n_faces,
            n_embeddings=n_emb,
            images=images,
        )

    @staticmethod
    def _image_info(i: Image) -> ImageInfo:
        return ImageInfo(
            id=i.id,
            sha256=i.sha256,
            original_path=i.original_path,
            width=i.width,
            height=i.height,
            size_bytes=i.size_bytes,
            source=i.source,
            n_faces=i.n_faces,
            enrolled_at=i.enrolled_at,
        )

    def list_subjects(self, limit: int = 100, offset: int = 0) -> list[SubjectInfo]:
        """Subjects ordered by external id, with image/face/embedding counts.

        The page is selected first (on the unique external_id index), then counted, so a
        page costs the same at any offset.
        """
        with self._read() as s:
            page = list(
                s.scalars(
                    select(Subject)
                    .order_by(Subject.external_id)
                    .limit(int(limit))
                    .offset(int(offset))
                )
            )
            if not page:
                return []
            sids = [p.id for p in page]
            counts: dict[int, list[int]] = {sid: [0, 0, 0] for sid in sids}
            for sid, n in s.execute(
                select(Image.subject_id, func.count(Image.id))
                .where(Image.subject_id.in_(sids))
                .group_by(Image.subject_id)
            ):
                counts[sid][0] = n
            for sid, n in s.execute(
                select(Image.subject_id, func.count(Face.id))
                .join(Face, Face.image_id == Image.id)
                .where(Image.subject_id.in_(sids))
                .group_by(Image.subject_id)
            ):
                counts[sid][1] = n
            for sid, n in s.execute(
                select(Image.subject_id, func.count(FaceEmbedding.id))
                .join(Face, Face.image_id == Image.id)
                .join(FaceEmbedding, FaceEmbedding.face_id == Face.id)
                .where(Image.subject_id.in_(sids))
                .group_by(Image.subject_id)
            ):
                counts[sid][2] = n
            return [
                SubjectInfo(
                    id=p.id,
                    external_id=p.external_id,
                    name=p.name,
                    sex=p.sex,
                    birth_year=p.birth_year,
                    meta=dict(p.meta or {}),
                    created_at=p.created_at,
                    n_images=counts[p.id][0],
                    n_faces=counts[p.id][1],
                    n_embeddings=counts[p.id][2],
                )
                for p in page
            ]

    def get_subject(self, external_id: str) -> Optional[SubjectInfo]:
        """The subject with its counts and its images (``images``); None if unknown."""
        with self._read() as s:
            subj = s.scalars(
                select(Subject).where(Subject.external_id == external_id)
            ).one_or_none()
            return None if subj is None else self._subject_info(s, subj, with_images=True)

    def remove_subject(self, external_id: str) -> RemovedSubject:
        """Delete the subject and (by ON DELETE CASCADE) its images, faces and embeddings.

        Stored query candidates of this subject lose the link and their copied id and name
        (rank, score and image SHA-256 stay), so a purged person can no longer be found in the
        gallery or its stored queries. Returns the embedding ids to take out of the FAISS index.
        Raises SubjectNotFoundError.
        """
        with self._write() as s:
            subj = s.scalars(
                select(Subject).where(Subject.external_id == external_id)
            ).one_or_none()
            if subj is None:
                raise SubjectNotFoundError(f"no subject with external id {external_id!r}")
            sid = subj.id
            emb_ids = tuple(
                s.scalars(
                    select(FaceEmbedding.id)
                    .join(Face)
                    .join(Image)
                    .where(Image.subject_id == sid)
                    .order_by(FaceEmbedding.id)
                )
            )
            shas = tuple(
                s.scalars(select(Image.sha256).where(Image.subject_id == sid).order_by(Image.id))
            )
            n_faces = (
                s.scalar(select(func.count(Face.id)).join(Image).where(Image.subject_id == sid))
                or 0
            )
            s.expunge(subj)
            s.execute(
                update(QueryCandidate)
                .where(QueryCandidate.subject_id == sid)
                .values(subject_external_id=None, subject_name=None)
                .execution_options(synchronize_session=False)
            )
            s.execute(
                delete(Subject).where(Subject.id == sid).execution_options(synchronize_session=False)
            )
            if emb_ids:
                # The cascade is done by SQLite; make sure it really ran (foreign_keys=ON).
                left = s.scalar(
                    select(func.count(FaceEmbedding.id)).where(
                        FaceEmbedding.id.in_(emb_ids[:_CHUNK])
                    )
                )
                if left:
                    raise GalleryError("cascade delete did not run (foreign keys off); rolled back")
            return RemovedSubject(external_id, sid, emb_ids, shas, int(n_faces))

    # -- images / enrollment ------------------------------------------------------------------

    def known_images(self, shas: list[str]) -> set[str]:
        """The SHA-256s of `shas` that are already enrolled (one query)."""
        wanted = [x.lower() for x in shas]
        with self._read() as s:
            found: set[str] = set()
            for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
                found.update(s.scalars(select(Image.sha256).where(Image.sha256.in_(wanted[i:i + 500]))))
            return found

    def image_exists(self, sha256: str) -> bool:
        """True when an image with this SHA-256 is already enrolled."""
        with self._read() as s:
            return s.scalar(select(Image.id).where(Image.sha256 == sha256.lower())) is not None

    def add_enrollment(
        self,
        subject: Union[str, Mapping[str, Any], SubjectInfo],
        image: Union[ImageSpec, Mapping[str, Any], None] = None,
        faces: Iterable[Union[FaceSpec, Sequence[Any]]] = (),
        *,
        embedder: EmbedderLike = None,
        **image_fields: Any,
    ) -> EnrollmentResult:
        """Enroll one image of one subject with its faces and embeddings, all or nothing.

        ``subject``: an external id (created if new) or a mapping with ``external_id`` and
        optional ``name``, ``sex``, ``birth_year``, ``meta`` (upserted). ``image``: an
        :class:`ImageSpec` or mapping (``sha256``, ``original_path``, ``width``, ``height``,
        ``size_bytes``, ``source``), or give those as keyword arguments. ``faces``: FaceSpecs or
        tuples ``(box, landmarks, det_score, chip_png, vector, embedder)`` (``embedder`` may be
        left out of the tuple when given as the ``embedder`` argument).

        Raises DuplicateImageError when the SHA-256 is already enrolled, EmbedderMismatchError
        when the embedder differs from the gallery's, EnrollmentError on invalid data. On any
        error nothing is written.
        """
        spec, face_specs, subj_kw = self._enrollment_specs(subject, image, faces, embedder, image_fields)
        try:
            with self._write() as s:
                return self._enroll_in(s, subj_kw, spec, face_specs)
        except IntegrityError as exc:
            raise self._integrity_error(exc, spec) from exc

    def add_enrollments(
        self, enrollments: Iterable[tuple[Any, Any, Iterable[Any]]], *, embedder: EmbedderLike = None
    ) -> list[Union[EnrollmentResult, GalleryError]]:
        """Enroll many images in one transaction: one commit (one disk sync) for all of them.

        ``enrollments``: ``(subject, image, faces)`` triples as :meth:`add_enrollment` takes them.
        Each one is all or nothing inside its own SAVEPOINT: a duplicate or invalid image comes
        back as its ``DuplicateImageError`` / ``EnrollmentError`` in the returned list, in input
        order, and the others are still written. An embedder mismatch aborts the whole call and
        writes nothing. A crash before the commit loses this call's images only, never what
        earlier calls committed.
        """
        prepared: list[Any] = []
        for subject, image, faces in enrollments:
            try:
                prepared.append(self._enrollment_specs(subject, image, faces, embedder, {}))
            except EnrollmentError as exc:
                prepared.append(exc)
        results: list[Union[EnrollmentResult, GalleryError]] = []
        with self._write() as s:
            if prepared and not any(isinstance(item, GalleryError) for item in prepared):
                try:
                    with s.begin_nested():
                        return self._enroll_batch(s, prepared)
                except _NotPlain:
                    pass  # a duplicate, or a refusal: image by image below tells which
                except IntegrityError:
                    pass
            for item in prepared:
                if isinstance(item, GalleryError):
                    results.append(item)
                    continue
                spec, face_specs, subj_kw = item
                try:
                    with s.begin_nested():
                        results.append(self._enroll_in(s, subj_kw, spec, face_specs))
                except (DuplicateImageError, EnrollmentError) as exc:  # not EmbedderMismatchError
                    results.append(exc)
                except IntegrityError as exc:
                    results.append(self._integrity_error(exc, spec))
        return results

    def _enroll_batch(self, s: Session, prepared: list[tuple[ImageSpec, list[FaceSpec], dict[str, Any]]],
                      ) -> list[Union[EnrollmentResult, GalleryError]]:
        """All of a batch in one flush (multi-row INSERTs), when nothing in it is a duplicate or
        invalid: the common case, about 5x faster than image by image. Raises `_NotPlain` (or the
        database's IntegrityError) otherwise; the caller then rolls back and goes image by image."""
        shas = [spec.sha256 for spec, _, _ in prepared]
        if len(set(shas)) < len(shas) or s.scalar(select(Image.id).where(Image.sha256.in_(shas)).limit(1)):
            raise _NotPlain
        embedder_ids = {f.embedder for _, faces, _ in prepared for f in faces}
        embedders = {eid: s.get(Embedder, eid) for eid in embedder_ids}
        gal_emb = self._gallery_embedder(s)
        if None in embedders.values() or len(embedders) > 1:
            raise _NotPlain
        if gal_emb is not None and any(e.id != gal_emb.id for e in embedders.values()):
            e = next(iter(embedders.values()))
            raise EmbedderMismatchError(self._mismatch_message(gal_emb, e.name, e.version, e.dim))
        ext_ids = {kw.get("external_id") for _, _, kw in prepared}
        if not all(isinstance(x, str) and x.strip() for x in ext_ids):
            raise _NotPlain
        subjects = {subj.external_id: subj for subj in s.scalars(select(Subject).where(Subject.external_id.in_(ext_ids)))}
        created: list[bool] = []
        try:
            for _, face_specs, subj_kw in prepared:
                subj = subjects.get(subj_kw["external_id"])
                created.append(subj is None)
                if subj is None:
                    subj = subjects[subj_kw["external_id"]] = Subject(external_id=subj_kw["external_id"], meta={})
                    s.add(subj)
                _update_subject(subj, **{k: v for k, v in subj_kw.items() if k != "external_id"})
            faces = [[(_face_row(f), {"embedder_id": f.embedder,
                                      "vector": vector_to_bytes(normalize_vector(f.vector, embedders[f.embedder].dim))})
                      for f in face_specs] for _, face_specs, _ in prepared]
        except EnrollmentError:
            raise _NotPlain from None
        s.flush()  # subjects: ids for the new ones, fields of the others
        # multi-row INSERT ... RETURNING, ids in parameter order
        owners = [subjects[kw["external_id"]] for _, _, kw in prepared]
        image_ids = list(s.scalars(insert(Image).returning(Image.id, sort_by_parameter_order=True), [
            {"subject_id": subj.id, **_image_row(spec, len(fs))} for (spec, fs, _), subj in zip(prepared, owners)]))
        flat = [(image_id, face, emb) for image_id, fs in zip(image_ids, faces) for face, emb in fs]
        face_ids = list(s.scalars(insert(Face).returning(Face.id, sort_by_parameter_order=True), [
            {"image_id": image_id, **face} for image_id, face, _ in flat])) if flat else []
        emb_ids = list(s.scalars(insert(FaceEmbedding).returning(FaceEmbedding.id, sort_by_parameter_order=True), [
            {"face_id": face_id, **emb} for face_id, (_, _, emb) in zip(face_ids, flat)])) if flat else []
        out: list[Union[EnrollmentResult, GalleryError]] = []
        k = 0
        for (spec, _, _), subj, image_id, fs, new in zip(prepared, owners, image_ids, faces, created):
            out.append(EnrollmentResult(subject_id=subj.id, external_id=subj.external_id, image_id=image_id,
                                        image_sha256=spec.sha256, face_ids=tuple(face_ids[k:k + len(fs)]),
                                        embedding_ids=tuple(emb_ids[k:k + len(fs)]), subject_created=new))
            k += len(fs)
        return out

    def _enrollment_specs(self, subject: Any, image: Any, faces: Iterable[Any], embedder: EmbedderLike,
                          image_fields: Mapping[str, Any]) -> tuple[ImageSpec, list[FaceSpec], dict[str, Any]]:
        spec = self._image_spec(image, image_fields)
        face_specs = [self._face_spec(f, embedder) for f in faces]
        if isinstance(subject, str):
            subj_kw: dict[str, Any] = {"external_id": subject}
        elif isinstance(subject, SubjectInfo):
            subj_kw = {"external_id": subject.external_id}
        else:
            subj_kw = dict(subject)
            unknown = set(subj_kw) - {"external_id", "name", "sex", "birth_year", "meta"}
            if unknown or "external_id" not in subj_kw:
                raise EnrollmentError(f"bad subject fields: {sorted(unknown) or 'no external_id'}")
        return spec, face_specs, subj_kw

    @staticmethod
    def _integrity_error(exc: IntegrityError, spec: ImageSpec) -> GalleryError:
        if "images.sha256" in str(exc.orig):
            return DuplicateImageError(f"image {spec.sha256[:12]}… is already enrolled", spec.sha256)
        return EnrollmentError(f"enrollment refused by the database: {exc.orig}")

    def _enroll_in(self, s: Session, subj_kw: dict[str, Any], spec: ImageSpec,
                   face_specs: list[FaceSpec]) -> EnrollmentResult:
        existing = s.execute(
            select(Image.id, Subject.external_id)
            .join(Subject)
            .where(Image.sha256 == spec.sha256)
        ).first()
        if existing is not None:
            raise DuplicateImageError(
                f"image {spec.sha256[:12]}… is already enrolled (subject "
                f"{existing[1]!r}, image id {existing[0]})",
                spec.sha256,
            )
        gal_emb = self._gallery_embedder(s)
        embedders: dict[int, Embedder] = {}
        for f in face_specs:
            eid = f.embedder
            if eid not in embedders:
                e = s.get(Embedder, eid)
                if e is None:
                    raise EnrollmentError(f"unknown embedder id {eid}")
                embedders[eid] = e
        if len(embedders) > 1:
            raise EmbedderMismatchError(
                "one enrollment uses several embedders; the gallery holds one only"
            )
        if gal_emb is not None:
            for e in embedders.values():
                if e.id != gal_emb.id:
                    raise EmbedderMismatchError(
                        self._mismatch_message(gal_emb, e.name, e.version, e.dim)
                    )

        subj, created = self._upsert_subject(s, **subj_kw)
        img = Image(subject_id=subj.id, **_image_row(spec, len(face_specs)))
        s.add(img)
        s.flush()
        face_ids: list[int] = []
        emb_ids: list[int] = []
        for f in face_specs:
            e = embedders[f.embedder]
            face = Face(image_id=img.id, **_face_row(f))
            s.add(face)
            s.flush()
            vec = normalize_vector(f.vector, e.dim)
            emb = FaceEmbedding(face_id=face.id, embedder_id=e.id, vector=vector_to_bytes(vec))
            s.add(emb)
            s.flush()
            face_ids.append(face.id)
            emb_ids.append(emb.id)
        return EnrollmentResult(
            subject_id=subj.id,
            external_id=subj.external_id,
            image_id=img.id,
            image_sha256=img.sha256,
            face_ids=tuple(face_ids),
            embedding_ids=tuple(emb_ids),
            subject_created=created,
        )

    @staticmethod
    def _image_spec(image: Any, fields: Mapping[str, Any]) -> ImageSpec:
        if image is not None and fields:
            raise TypeError("give the image as `image=` or as keyword fields, not both")
        if image is None:
            image = dict(fields)
        if isinstance(image, Mapping):
            unknown = set(image) - set(ImageSpec.__dataclass_fields__)
            if unknown:
                raise TypeError(f"unknown image fields: {sorted(unknown)}")
            image = ImageSpec(**image)
        if not isinstance(image, ImageSpec):
            raise TypeError(f"image must be an ImageSpec or mapping, not {type(image)}")
        sha = image.sha256.lower() if isinstance(image.sha256, str) else image.sha256
        if not is_sha256_hex(sha):
            raise EnrollmentError(f"image sha256 must be 64 hex characters, got {image.sha256!r}")
        if sha != image.sha256:
            image = ImageSpec(**{**image.__dict__, "sha256": sha})
        return image

    @staticmethod
    def _face_spec(face: Any, default_embedder: EmbedderLike) -> FaceSpec:
        if isinstance(face, FaceSpec):
            spec = FaceSpec(**face.__dict__)
        else:
            items = list(face)
            if len(items) == 5:
                items.append(None)
            if len(items) != 6:
                raise EnrollmentError(
                    "a face is (box, landmarks, det_score, chip_png, vector[, embedder])"
                )
            spec = FaceSpec(*items)
        emb = spec.embedder if spec.embedder is not None else default_embedder
        if emb is None:
            raise EnrollmentError("no embedder given for a face")
        spec.embedder = int(emb) if isinstance(emb, (int, np.integer)) else int(emb.id)
        return spec

    # -- counts -------------------------------------------------------------------------------

    def count_subjects(self) -> int:
        """Number of subjects."""
        with self._read() as s:
            return int(s.scalar(select(func.count(Subject.id))) or 0)

    def count_images(self) -> int:
        """Number of enrolled images."""
        with self._read() as s:
            return int(s.scalar(select(func.count(Image.id))) or 0)

    def count_faces(self) -> int:
        """Number of stored faces."""
        with self._read() as s:
            return int(s.scalar(select(func.count(Face.id))) or 0)

    def count_embeddings(self, embedder: EmbedderLike = None) -> int:
        """Number of stored vectors (of ``embedder`` when given, else of all embedders)."""
        stmt = select(func.count(FaceEmbedding.id))
        if embedder is not None:
            stmt = stmt.where(FaceEmbedding.embedder_id == self._embedder_id(embedder))
        with self._read() as s:
            return int(s.scalar(stmt) or 0)

    @staticmethod
    def _embedder_id(embedder: EmbedderLike) -> int:
        if isinstance(embedder, (int, np.integer)):
            return int(embedder)
        return int(embedder.id)  # type: ignore[union-attr]

    def _resolve_embedder(self, s: Session, embedder: EmbedderLike) -> Optional[Embedder]:
        if embedder is None:
            return self._gallery_embedder(s)
        e = s.get(Embedder, self._embedder_id(embedder))
        if e is None:
            raise GalleryError(f"unknown embedder {embedder!r}")
        return e

    # -- vectors ------------------------------------------------------------------------------

    def iter_embedding_batches(
        self, embedder: EmbedderLike = None, batch_size: int = 20_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids int64 (n,), vectors float32 (n, dim))`` batches ordered by id.

        ``embedder`` defaults to the gallery's embedder. Reads one consistent snapshot.
        """
        with self._read() as s:
            e = self._resolve_embedder(s, embedder)
            if e is None:
                return
            dim = e.dim
            # A plain DB-API cursor on the session's connection (same transaction, so the same
            # snapshot): several times faster than SQLAlchemy result rows for 100k+ blobs.
            cur = _dbapi(s).cursor()
            try:
                cur.execute(
                    "SELECT id, vector FROM embeddings WHERE embedder_id = ? ORDER BY id", (e.id,)
                )
                yield from self._vector_batches(cur, dim, batch_size)
            finally:
                cur.close()

    @staticmethod
    def _vector_batches(
        cur: Any, dim: int, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            rows = cur.fetchmany(batch_size)
            if not rows:
                break
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            blob = b"".join(r[1] for r in rows)
            if len(blob) != len(rows) * dim * 4:
                raise GalleryError(
                    f"stored vectors do not all have {dim} float32 values; the gallery is damaged"
                )
            yield ids, np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).copy()

    def iter_embeddings(self, embedder: EmbedderLike = None) -> tuple[np.ndarray, np.ndarray]:
        """All vectors of ``embedder`` (default: the gallery's) as ``(ids int64 (N,),
        vectors float32 (N, dim))`` ordered by id; ``(empty, empty (0, 0))`` for an empty gallery.

        Preallocated and filled in batches (about one copy of the data in memory).
        """
        with self._read() as s:
            e = self._resolve_embedder(s, embedder)
            if e is None:
                return np.empty(0, np.int64), np.empty((0, 0), np.float32)
            n = int(
                s.scalar(
                    select(func.count(FaceEmbedding.id)).where(FaceEmbedding.embedder_id == e.id)
                )
                or 0
            )
            ids = np.empty(n, np.int64)
            vecs = np.empty((n, e.dim), np.float32)
            pos = 0
            # Same session/transaction as the count, so the snapshot is the same.
            sub = GalleryRepository(s)
            for bid, bvec in sub.iter_embedding_batches(e.id):
                if pos + len(bid) > n:
                    raise GalleryError("the gallery changed while it was read")
                ids[pos : pos + len(bid)] = bid
                vecs[pos : pos + len(bid)] = bvec
                pos += len(bid)
            if pos != n:
                raise GalleryError("the gallery changed while it was read")
            return ids, vecs

    def get_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of the given embedding ids (absent ids are left out)."""
        out: dict[int, np.ndarray] = {}
        id_list = [int(i) for i in ids]
        with self._read() as s:
            for chunk in _chunks(id_list):
                for eid, blob in s.execute(
                    select(FaceEmbedding.id, FaceEmbedding.vector).where(
                        FaceEmbedding.id.in_(chunk)
                    )
                ):
                    out[eid] = vector_from_bytes(blob).copy()
        return out

    def face_chips(self, ids: Sequence[int]) -> dict[int, Optional[bytes]]:
        """The aligned face chip (PNG bytes, None if not stored) behind each given embedding id
        (absent ids are left out)."""
        out: dict[int, Optional[bytes]] = {}
        id_list = [int(i) for i in ids]
        stmt = select(FaceEmbedding.id, Face.chip_png).join(Face, FaceEmbedding.face_id == Face.id)
        with self._read() as s:
            for chunk in _chunks(id_list):
                for eid, png in s.execute(stmt.where(FaceEmbedding.id.in_(chunk))):
                    out[eid] = None if png is None else bytes(png)
        return out

    def embedding_owners(self, ids: Iterable[int]) -> dict[int, Owner]:
        """For each embedding id found, who it belongs to (:class:`~gallery.records.Owner`:
        external id, name, subject id, image sha256, image id, face id, sex, birth year,
        meta, embedding id). Unknown ids (e.g. removed subjects) are left out."""
        id_list = sorted({int(i) for i in ids if int(i) >= 0})
        out: dict[int, Owner] = {}
        stmt = (
            select(
                FaceEmbedding.id,
                Subject.external_id,
                Subject.name,
                Subject.id,
                Image.sha256,
                Image.id,
                Face.id,
                Subject.sex,
                Subject.birth_year,
                Subject.meta,
            )
            .join(Face, FaceEmbedding.face_id == Face.id)
            .join(Image, Face.image_id == Image.id)
            .join(Subject, Image.subject_id == Subject.id)
        )
        with self._read() as s:
            for chunk in _chunks(id_list):
                for row in s.execute(stmt.where(FaceEmbedding.id.in_(chunk))):
                    eid, ext, name, sid, sha, iid, fid, sex, by, meta = row
                    out[eid] = Owner(ext, name, sid, sha, iid, fid, sex, by, dict(meta or {}), eid)
        return out

    def gallery_fingerprint(self, embedder: EmbedderLike = None) -> str:
        """SHA-256 (hex) of the gallery state searched with ``embedder`` (default: the gallery's).

        Hashes a header line ``embedder:<name>@<version>:<dim>`` (``embedder:none`` when the
        gallery is empty) followed by one ``<embedding id>:<image sha256>`` line per vector in id
        order, so it changes whenever a vector is added or removed or the embedder changes.
        """
        h = hashlib.sha256()
        with self._read() as s:
            e = self._resolve_embedder(s, embedder)
            if e is None:
                h.update(b"embedder:none\n")
                return h.hexdigest()
            h.update(f"embedder:{e.name}@{e.version}:{e.dim}\n".encode())
            cur = _dbapi(s).cursor()
            try:
                cur.execute(
                    "SELECT e.id, i.sha256 FROM embeddings e JOIN faces f ON e.face_id = f.id "
                    "JOIN images i ON f.image_id = i.id WHERE e.embedder_id = ? ORDER BY e.id",
                    (e.id,),
                )
                while True:
                    rows = cur.fetchmany(20_000)
                    if not rows:
                        break
                    h.update("".join(f"{r[0]}:{r[1]}\n" for r in rows).encode())
            finally:
                cur.close()
        return h.hexdigest()

    # -- stored queries -----------------------------------------------------------------------

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
        uid = query_uid or uuid.uuid4().hex
        in_specs = [i if isinstance(i, QueryInputSpec) else QueryInputSpec(**i) for i in inputs]
        cand_specs = [
            c if isinstance(c, QueryCandidateSpec) else QueryCandidateSpec(**c) for c in candidates
        ]
        with self._write() as s:
            q = Query(
                query_uid=uid,
                case_id=case_id,
                operator=operator,
                mode=mode,
                params=to_plain(dict(params)) if params is not None else None,
                embedder_id=None if embedder is None else self._embedder_id(embedder),
                inverter=to_plain(dict(inverter)) if inverter is not None else None,
                gallery_size=gallery_size,
                gallery_fingerprint=gallery_fingerprint,
                timings=to_plain(dict(timings)) if timings is not None else None,
                tool_version=tool_version if tool_version is not None else _tool_version(),
                filters=to_plain(dict(filters)) if filters is not None else None,
            )
            if created_at is not None:
                q.created_at = created_at
            s.add(q)
            s.flush()
            for pos, i in enumerate(in_specs):
                s.add(
                    QueryInput(
                        query_id=q.id,
                        position=pos if i.position is None else int(i.position),
                        sha256=i.sha256,
                        original_path=None if i.original_path is None else str(i.original_path),
                        aligned_png=i.aligned_png,
                        synthesized_png=i.synthesized_png,
                        landmarks=to_plain(i.landmarks),
                        detection=to_plain(i.detection),
                    )
                )
            ext_ids = {c.subject_external_id for c in cand_specs if c.subject_id is None}
            ext_ids.discard(None)
            by_ext: dict[str, int] = {}
            if ext_ids:
                for sid, ext in s.execute(
                    select(Subject.id, Subject.external_id).where(
                        Subject.external_id.in_(sorted(ext_ids))  # type: ignore[arg-type]
                    )
                ):
                    by_ext[ext] = sid
            for c in cand_specs:
                sid = c.subject_id
                if sid is None and c.subject_external_id is not None:
                    sid = by_ext.get(c.subject_external_id)
                s.add(
                    QueryCandidate(
                        query_id=q.id,
                        rank=int(c.rank),
                        subject_id=sid,
                        subject_external_id=c.subject_external_id,
                        subject_name=c.subject_name,
                        image_sha256=c.image_sha256,
                        score=float(c.score),
                        score_detail=to_plain(c.score_detail),
                    )
                )
            s.flush()
        return uid

    def get_query(self, query_uid: str) -> Optional[QueryRecord]:
        """The stored query with its probes (by position) and candidates (by rank); None if absent."""
        with self._read() as s:
            q = s.scalars(select(Query).where(Query.query_uid == query_uid)).one_or_none()
            if q is None:
                return None
            return QueryRecord(
                id=q.id,
                query_uid=q.query_uid,
                created_at=q.created_at,
                case_id=q.case_id,
                operator=q.operator,
                mode=q.mode,
                params=q.params,
                embedder=None if q.embedder is None else _info(q.embedder),
                inverter=q.inverter,
                gallery_size=q.gallery_size,
                gallery_fingerprint=q.gallery_fingerprint,
                timings=q.timings,
                tool_version=q.tool_version,
                filters=q.filters,
                inputs=tuple(
                    QueryInputRecord(
                        i.position,
                        i.sha256,
                        i.original_path,
                        i.aligned_png,
                        i.synthesized_png,
                        i.landmarks,
                        i.detection,
                    )
                    for i in q.inputs
                ),
                candidates=tuple(
                    QueryCandidateRecord(
                        c.rank,
                        c.subject_id,
                        c.subject_external_id,
                        c.subject_name,
                        c.image_sha256,
                        c.score,
                        c.score_detail,
                    )
                    for c in q.candidates
                ),
            )

    def list_queries(
        self, limit: int = 50, offset: int = 0, case_id: Optional[str] = None
    ) -> list[QuerySummary]:
        """Stored queries, newest first (optionally of one case), with their top candidate."""
        n_in = (
            select(func.count(QueryInput.id))
            .where(QueryInput.query_id == Query.id)
            .scalar_subquery()
        )
        n_cand = (
            select(func.count(QueryCandidate.id))
            .where(QueryCandidate.query_id == Query.id)
            .scalar_subquery()
        )
        stmt = select(Query, n_in, n_cand).order_by(Query.created_at.desc(), Query.id.desc())
        if case_id is not None:
            stmt = stmt.where(Query.case_id == case_id)
        stmt = stmt.limit(int(limit)).offset(int(offset))
        out: list[QuerySummary] = []
        with self._read() as s:
            for q, ni, nc in s.execute(stmt):
                best = s.execute(
                    select(QueryCandidate.subject_external_id, QueryCandidate.score)
                    .where(QueryCandidate.query_id == q.id)
                    .order_by(QueryCandidate.rank)
                    .limit(1)
                ).first()
                out.append(
                    QuerySummary(
                        query_uid=q.query_uid,
                        created_at=q.created_at,
                        case_id=q.case_id,
                        operator=q.operator,
                        mode=q.mode,
                        n_inputs=int(ni or 0),
                        n_candidates=int(nc or 0),
                        top_external_id=None if best is None else best[0],
                        top_score=None if best is None else float(best[1]),
                        gallery_size=q.gallery_size,
                    )
                )
        return out

    def count_queries(self) -> int:
        """Number of stored queries."""
        with self._read() as s:
            return int(s.scalar(select(func.count(Query.id))) or 0)


__all__ = [
    "GalleryRepository",
    "normalize_vector",
    "vector_from_bytes",
    "vector_to_bytes",
]
