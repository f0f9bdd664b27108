"""Enrollment: images of subjects with their faces and vectors, written in batches.

There is one write path, :meth:`EnrollmentStore.add_enrollments`: a batch in one transaction,
written with multi-row INSERTs when nothing in it is refused (the common case, about 5x faster
than image by image); otherwise image by image, each image a batch of one in its own SAVEPOINT,
so each comes back as its result or its error. :meth:`EnrollmentStore.add_enrollment` is a batch
of one that raises the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import DuplicateImageError, EmbedderMismatchError, EnrollmentError, GalleryError
from .models import Embedder, Face, FaceEmbedding, Image, Subject
from .pgvector import add_plain, is_postgres
from .records import EnrollmentResult, FaceSpec, ImageSpec, SubjectInfo
from .subjects import SUBJECT_FIELDS, upsert_subjects
from .transaction import Store, chunks
from .util import is_sha256_hex, to_plain
from .vectors import (EmbedderLike, gallery_embedder_row, mismatch_message, normalize_vector, vector_from_bytes,
                      vector_to_bytes)

Outcome = Union[EnrollmentResult, GalleryError]


@dataclass(frozen=True)
class Enrollment:
    """One image to enroll, checked: its subject's fields, the image and its faces."""

    subject: dict[str, Any]
    image: ImageSpec
    faces: list[FaceSpec]


# --------------------------------------------------------------------------------------------
# Reading what the caller gives
# --------------------------------------------------------------------------------------------


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


def _face_spec(face: Any, default_embedder: EmbedderLike) -> FaceSpec:
    if isinstance(face, FaceSpec):
        spec = FaceSpec(**face.__dict__)
    else:
        items = list(face)
        if len(items) == 5:
            items.append(None)
        if len(items) != 6:
            raise EnrollmentError("a face is (box, landmarks, det_score, chip_png, vector[, embedder])")
        spec = FaceSpec(*items)
    emb = spec.embedder if spec.embedder is not None else default_embedder
    if emb is None:
        raise EnrollmentError("no embedder given for a face")
    spec.embedder = int(emb) if isinstance(emb, (int, np.integer)) else int(emb.id)
    return spec


def _subject_fields(subject: Any) -> dict[str, Any]:
    if isinstance(subject, str):
        return {"external_id": subject}
    if isinstance(subject, SubjectInfo):
        return {"external_id": subject.external_id}
    fields = dict(subject)
    unknown = set(fields) - {"external_id", *SUBJECT_FIELDS}
    if unknown or "external_id" not in fields:
        raise EnrollmentError(f"bad subject fields: {sorted(unknown) or 'no external_id'}")
    return fields


def prepare(subject: Any, image: Any, faces: Iterable[Any], embedder: EmbedderLike = None,
            image_fields: Optional[Mapping[str, Any]] = None) -> Enrollment:
    """An :class:`Enrollment` from what :meth:`EnrollmentStore.add_enrollment` takes
    (EnrollmentError on invalid data, TypeError on a wrong call)."""
    spec = _image_spec(image, image_fields or {})
    return Enrollment(_subject_fields(subject), spec, [_face_spec(f, embedder) for f in faces])


# --------------------------------------------------------------------------------------------
# Writing a batch
# --------------------------------------------------------------------------------------------


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


def _image_row(e: Enrollment, subject_id: int) -> dict[str, Any]:
    spec = e.image
    n_faces = len(e.faces) if spec.n_faces_detected is None else spec.n_faces_detected
    return {"subject_id": subject_id, "sha256": spec.sha256, "original_path": spec.original_path,
            "width": spec.width, "height": spec.height, "size_bytes": spec.size_bytes,
            "source": spec.source, "n_faces": n_faces}


def _face_rows(f: FaceSpec, dim: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `faces` columns of one face (but its image) and the `embeddings` columns of its
    vector (but its face), checked."""
    face = {"box": _check_box(f.box), "landmarks": _check_landmarks(f.landmarks),
            "det_score": None if f.det_score is None else float(f.det_score),
            "chip_png": None if f.chip_png is None else bytes(f.chip_png), "chip_size": f.chip_size}
    return face, {"embedder_id": f.embedder, "vector": vector_to_bytes(normalize_vector(f.vector, dim))}


def _refuse_duplicates(s: Session, batch: Sequence[Enrollment]) -> None:
    shas = [e.image.sha256 for e in batch]
    twice = next((x for i, x in enumerate(shas) if x in shas[:i]), None)
    if twice is not None:
        raise DuplicateImageError(f"image {twice[:12]}… is given twice in one batch", twice)
    stmt = select(Image.sha256, Image.id, Subject.external_id).join(Subject)
    for chunk in chunks(shas):
        found = s.execute(stmt.where(Image.sha256.in_(chunk)).limit(1)).first()
        if found is not None:
            sha, image_id, owner = found
            raise DuplicateImageError(
                f"image {sha[:12]}… is already enrolled (subject {owner!r}, image id {image_id})", sha)


def _embedder(s: Session, batch: Sequence[Enrollment]) -> Optional[Embedder]:
    """The one embedder of the batch's faces (None without faces); refuses unknown ids, several
    embedders, and an embedder other than the gallery's."""
    rows: dict[int, Embedder] = {}
    for f in (f for e in batch for f in e.faces):
        if f.embedder not in rows:
            row = s.get(Embedder, f.embedder)
            if row is None:
                raise EnrollmentError(f"unknown embedder id {f.embedder}")
            rows[f.embedder] = row
    if len(rows) > 1:
        raise EmbedderMismatchError("one enrollment uses several embedders; the gallery holds one only")
    have = gallery_embedder_row(s)
    for e in rows.values():
        if have is not None and e.id != have.id:
            raise EmbedderMismatchError(mismatch_message(have, e.name, e.version, e.dim))
    return next(iter(rows.values()), None)


def _insert_returning(s: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Multi-row INSERT ... RETURNING id; the ids in row order."""
    if not rows:
        return []
    return list(s.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def insert_batch(s: Session, batch: Sequence[Enrollment]) -> list[EnrollmentResult]:
    """Write ``batch`` in ``s`` (the caller holds the SAVEPOINT): all of it, or raise
    DuplicateImageError / EmbedderMismatchError / EnrollmentError (or the database's
    IntegrityError) having written nothing the caller keeps."""
    _refuse_duplicates(s, batch)
    embedder = _embedder(s, batch)
    dim = 0 if embedder is None else embedder.dim
    rows = [[_face_rows(f, dim) for f in e.faces] for e in batch]
    owners = upsert_subjects(s, [e.subject for e in batch])
    image_ids = _insert_returning(s, Image, [_image_row(e, subj.id) for e, (subj, _) in zip(batch, owners)])
    flat = [(image_id, face, emb) for image_id, faces in zip(image_ids, rows) for face, emb in faces]
    face_ids = _insert_returning(s, Face, [{"image_id": image_id, **face} for image_id, face, _ in flat])
    emb_ids = _insert_returning(s, FaceEmbedding, [{"face_id": fid, **emb} for fid, (_, _, emb) in zip(face_ids, flat)])
    if emb_ids and is_postgres(s):  # searched in the database: the vectors go in with their rows
        add_plain(s, embedder.id, dim, emb_ids, np.stack([vector_from_bytes(emb["vector"]) for _, _, emb in flat]))
    out, k = [], 0
    for e, (subj, created), image_id in zip(batch, owners, image_ids):
        n = len(e.faces)
        out.append(EnrollmentResult(subject_id=subj.id, external_id=subj.external_id, image_id=image_id,
                                    image_sha256=e.image.sha256, face_ids=tuple(face_ids[k:k + n]),
                                    embedding_ids=tuple(emb_ids[k:k + n]), subject_created=created))
        k += n
    return out


def _integrity_error(exc: IntegrityError, spec: ImageSpec) -> GalleryError:
    """The error of a refused image: a duplicate when the image hash's unique constraint refused
    it (SQLite names the column, PostgreSQL the constraint)."""
    if any(name in str(exc.orig) for name in ("images.sha256", "uq_images_sha256")):
        err: GalleryError = DuplicateImageError(f"image {spec.sha256[:12]}… is already enrolled", spec.sha256)
    else:
        err = EnrollmentError(f"enrollment refused by the database: {exc.orig}")
    err.__cause__ = exc
    return err


def _insert_alone(s: Session, item: Union[Enrollment, GalleryError]) -> Outcome:
    """One image as a batch of one in its own SAVEPOINT: its result, or the error that refused it
    (an EmbedderMismatchError is raised instead: it aborts the whole call)."""
    if isinstance(item, GalleryError):
        return item
    try:
        with s.begin_nested():
            (result,) = insert_batch(s, [item])
            return result
    except (DuplicateImageError, EnrollmentError) as exc:
        return exc
    except IntegrityError as exc:
        return _integrity_error(exc, item.image)


def _prepare_or_error(subject: Any, image: Any, faces: Iterable[Any], embedder: EmbedderLike,
                      image_fields: Optional[Mapping[str, Any]] = None) -> Union[Enrollment, GalleryError]:
    try:
        return prepare(subject, image, faces, embedder, image_fields)
    except EnrollmentError as exc:
        return exc


class EnrollmentStore(Store):
    """Enroll images (subjects, images, faces, vectors) and tell which are enrolled."""

    def known_images(self, shas: list[str]) -> set[str]:
        """The SHA-256s of `shas` that are already enrolled (one query per 900)."""
        wanted = [x.lower() for x in shas]
        found: set[str] = set()
        with self._read() as s:
            for chunk in chunks(wanted):
                found.update(s.scalars(select(Image.sha256).where(Image.sha256.in_(chunk))))
        return found

    def image_exists(self, sha256: str) -> bool:
        """True when an image with this SHA-256 is already enrolled."""
        return bool(self.known_images([sha256]))

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
        (outcome,) = self._enroll([_prepare_or_error(subject, image, faces, embedder, image_fields)])
        if isinstance(outcome, GalleryError):
            raise outcome
        return outcome

    def add_enrollments(
        self, enrollments: Iterable[tuple[Any, Any, Iterable[Any]]], *, embedder: EmbedderLike = None
    ) -> list[Outcome]:
        """Enroll many images in one transaction: one commit (one disk sync) for all of them.

        ``enrollments``: ``(subject, image, faces)`` triples as :meth:`add_enrollment` takes them.
        Each one is all or nothing inside its own SAVEPOINT: a duplicate or invalid image comes
        back as its ``DuplicateImageError`` / ``EnrollmentError`` in the returned list, in input
        order, and the others are still written. An embedder mismatch aborts the whole call and
        writes nothing. A crash before the commit loses this call's images only, never what
        earlier calls committed.
        """
        return self._enroll([_prepare_or_error(subj, image, faces, embedder) for subj, image, faces in enrollments])

    def _enroll(self, items: list[Union[Enrollment, GalleryError]]) -> list[Outcome]:
        with self._write() as s:
            if len(items) > 1 and all(isinstance(item, Enrollment) for item in items):
                try:
                    with s.begin_nested():
                        return list(insert_batch(s, items))  # type: ignore[arg-type]
                except (GalleryError, IntegrityError):
                    pass  # something in it is refused: image by image tells which
            return [_insert_alone(s, item) for item in items]


__all__ = ["Enrollment", "EnrollmentStore", "insert_batch", "prepare"]
