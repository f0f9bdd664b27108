"""SQLAlchemy 2.x declarative models of the gallery database (the source of truth).

Tables (see ``migrations/versions`` for the DDL that creates them; the two must agree, which
``tests/gallery/test_db.py`` checks):

* ``embedders``   one row per face-embedding model (name, version, dim, weights hash).
* ``subjects``    the people in the mugshot gallery, keyed by an ``external_id`` (booking id...).
* ``images``      enrolled photographs of a subject, unique by the SHA-256 of their bytes.
* ``faces``       faces detected in an image: box, 5 landmarks, score, aligned 150x150 PNG chip.
* ``embeddings``  one L2-normalised float32 vector per (face, embedder).
* ``queries``, ``query_inputs``, ``query_candidates``  stored sketch searches and their results.
* ``audit_events``  the append-only, hash-chained audit log (see :mod:`gallery.audit`).
* ``gallery_meta``  key/value facts about the database (creator version, audit head...).

Timestamps are stored as fixed-width ISO 8601 UTC text (``2024-01-02T03:04:05.000006Z``) and
come back as aware UTC datetimes. JSON columns are stored as canonical JSON text (sorted keys),
so the stored bytes of a value never depend on dict order.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Optional

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .util import canonical_json, iso_utc, parse_iso_utc, utc_now

# Deterministic constraint names, so that batch migrations on SQLite can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The SQLite ``PRAGMA application_id`` of a forensics gallery file ("FRNS" in ASCII).
APPLICATION_ID = 0x46524E53
#: On PostgreSQL, the comment on ``gallery_meta`` that marks the database as a forensics gallery
#: (what ``application_id`` is to a SQLite file).
PG_MARKER = f"forensics gallery (application id {APPLICATION_ID:#x})"


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime stored as fixed-width ISO 8601 text ending in ``Z``."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Optional[str]:
        if value is None:
            return None
        if isinstance(value, str):
            return iso_utc(parse_iso_utc(value))
        return iso_utc(value)

    def process_result_value(self, value: Any, dialect: Any) -> Optional[_dt.datetime]:
        return None if value is None else parse_iso_utc(value)


class CanonicalJSON(TypeDecorator):
    """Any JSON value stored as canonical JSON text (sorted keys, compact, no NaN)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Optional[str]:
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    """Declarative base; its ``metadata`` is the target of the Alembic migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Embedder(Base):
    """A face-embedding model. Vectors of different embedders are never compared or mixed.

    ``name``/``version`` identify the model (unique together), ``dim`` is the vector length and
    ``weights_sha256`` the SHA-256 of the weights file the vectors were computed with.
    """

    __tablename__ = "embedders"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("dim > 0", name="dim_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    weights_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now)

    def __repr__(self) -> str:
        return f"<Embedder {self.id} {self.name}@{self.version} dim={self.dim}>"


class Subject(Base):
    """A person in the gallery. ``external_id`` is the agency's id (booking number...).

    ``sex`` is free text as given by the source (``"M"``, ``"F"``...), ``birth_year`` may be
    unknown, ``meta`` holds any other source fields as a JSON object.
    """

    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[Optional[str]] = mapped_column(String(400), nullable=True)
    sex: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    birth_year: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON, default=dict)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now)

    images: Mapped[list["Image"]] = relationship(
        back_populates="subject", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Subject {self.id} {self.external_id!r}>"


class Image(Base):
    """An enrolled photograph: who it shows, where it came from and its SHA-256 (unique).

    ``n_faces`` is the number of faces the detector found in it (one, the chosen face, is
    enrolled); ``source`` names the data set or
    collection it was imported from.
    """

    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(
            "length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'", name="sha256_hex"
        ),
        CheckConstraint("n_faces >= 0", name="n_faces_nonneg"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    original_path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    width: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    height: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    size_bytes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    source: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    n_faces: Mapped[int] = mapped_column(Integer, default=0)
    enrolled_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now)

    subject: Mapped[Subject] = relationship(back_populates="images")
    faces: Mapped[list["Face"]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Image {self.id} {self.sha256[:12]}>"


class Face(Base):
    """A face found in an image.

    ``box`` is ``[x1, y1, x2, y2]`` in image pixels, ``landmarks`` the 5 points
    (eyes, nose, mouth corners) as ``[[x, y]] * 5``, ``det_score`` the detector confidence,
    ``chip_png`` the aligned ``chip_size`` x ``chip_size`` (150) face crop as PNG bytes.
    """

    __tablename__ = "faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    box: Mapped[list[float]] = mapped_column(CanonicalJSON)
    landmarks: Mapped[Optional[list[list[float]]]] = mapped_column(CanonicalJSON, nullable=True)
    det_score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    chip_png: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    chip_size: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)

    image: Mapped[Image] = relationship(back_populates="faces")
    embeddings: Mapped[list["FaceEmbedding"]] = relationship(
        back_populates="face", cascade="all, delete-orphan", passive_deletes=True
    )


class FaceEmbedding(Base):
    """The embedding of one face by one embedder: ``dim`` float32 values, L2-normalised,
    stored as raw little-endian bytes (``np.frombuffer(vector, "<f4")``).

    The row id is the id the FAISS index uses for this vector.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("face_id", "embedder_id"),
        CheckConstraint("length(vector) > 0 AND length(vector) % 4 = 0", name="vector_f32"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    embedder_id: Mapped[int] = mapped_column(ForeignKey("embedders.id"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now)

    face: Mapped[Face] = relationship(back_populates="embeddings")
    embedder: Mapped[Embedder] = relationship()


class GalleryMeta(Base):
    """Key/value facts about the database file (values are JSON)."""

    __tablename__ = "gallery_meta"
    __table_args__ = {"comment": PG_MARKER}

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(CanonicalJSON, nullable=True)


class Query(Base):
    """A stored sketch search: who ran it, with what models and settings, on which gallery state.

    ``query_uid`` is the public id (uuid4 hex). ``mode`` names the search mode (e.g.
    ``"sketch"``, ``"photo"``, ``"multi"``); ``params`` the search parameters (k, fusion...);
    ``inverter`` the sketch-to-photo model as ``{"name", "version", "sha256"}`` (or null);
    ``gallery_size``/``gallery_fingerprint`` the gallery state searched (see
    :meth:`gallery.repository.GalleryRepository.gallery_fingerprint`); ``timings`` seconds per
    stage; ``filters`` the subject filters applied (sex, birth years...).
    """

    __tablename__ = "queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_uid: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    case_id: Mapped[Optional[str]] = mapped_column(String(200), nullable=True, index=True)
    operator: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    mode: Mapped[Optional[str]] = mapped_column(String(50), nullable=True)
    params: Mapped[Optional[dict[str, Any]]] = mapped_column(CanonicalJSON, nullable=True)
    embedder_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("embedders.id", ondelete="SET NULL"), nullable=True
    )
    inverter: Mapped[Optional[dict[str, Any]]] = mapped_column(CanonicalJSON, nullable=True)
    gallery_size: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    gallery_fingerprint: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    timings: Mapped[Optional[dict[str, Any]]] = mapped_column(CanonicalJSON, nullable=True)
    tool_version: Mapped[Optional[str]] = mapped_column(String(100), nullable=True)
    filters: Mapped[Optional[dict[str, Any]]] = mapped_column(CanonicalJSON, nullable=True)

    embedder: Mapped[Optional[Embedder]] = relationship()
    inputs: Mapped[list["QueryInput"]] = relationship(
        back_populates="query",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="QueryInput.position",
    )
    candidates: Mapped[list["QueryCandidate"]] = relationship(
        back_populates="query",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="QueryCandidate.rank",
    )


class QueryInput(Base):
    """One probe image of a query (a sketch, or one of several for multi-probe search).

    ``position`` orders the probes (0-based); ``sha256``/``original_path`` identify the file;
    ``aligned_png`` is the aligned probe chip, ``synthesized_png`` the photo the inverter made
    from the sketch (null when no inversion ran); ``landmarks`` the 5 points and ``detection``
    the detector output (box, score, how it was found...).
    """

    __tablename__ = "query_inputs"
    __table_args__ = (UniqueConstraint("query_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    original_path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    aligned_png: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    synthesized_png: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    landmarks: Mapped[Optional[Any]] = mapped_column(CanonicalJSON, nullable=True)
    detection: Mapped[Optional[Any]] = mapped_column(CanonicalJSON, nullable=True)

    query: Mapped[Query] = relationship(back_populates="inputs")


class QueryCandidate(Base):
    """One ranked result of a query (rank 1 = best).

    The subject's external id and name and the matched image's SHA-256 are copied in, so the
    stored result stays readable after the subject is removed (``subject_id`` then becomes null).
    ``score_detail`` holds per-probe scores, an FPIR estimate and the like.
    """

    __tablename__ = "query_candidates"
    __table_args__ = (UniqueConstraint("query_id", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True, index=True
    )
    subject_external_id: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    subject_name: Mapped[Optional[str]] = mapped_column(String(400), nullable=True)
    image_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    score: Mapped[float] = mapped_column(Float)
    score_detail: Mapped[Optional[Any]] = mapped_column(CanonicalJSON, nullable=True)

    query: Mapped[Query] = relationship(back_populates="candidates")


class Review(Base):
    """An examiner's decision on one candidate of a stored query. Reviews are only ever added: a
    later review of the same candidate supersedes an earlier one, and a second examiner's
    verification is a review whose ``verifies_uid`` names the review it confirms."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_uid: Mapped[str] = mapped_column(String(64), unique=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("queries.id", ondelete="CASCADE"), index=True)
    candidate_rank: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    examiner: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[_dt.datetime] = mapped_column(UTCDateTime, default=utc_now)
    verifies_uid: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log.

    ``id`` is the sequence number (1, 2, 3...). ``ts`` is ISO 8601 UTC text, ``actor`` who did
    it, ``action`` what (``"enroll"``, ``"search"``...), ``target`` on what, ``details`` a JSON
    object stored as canonical JSON text, ``input_hashes`` the SHA-256s of input files,
    ``outcome`` (``"ok"``, ``"error: ..."``). ``hash = sha256(prev_hash + canonical JSON of the
    fields)`` and ``prev_hash`` is the previous event's hash (64 zeros for the first).
    UPDATE and DELETE on the table are refused by triggers.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    details: Mapped[str] = mapped_column(Text)
    input_hashes: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


Index("ix_audit_events_ts", AuditEvent.ts)

__all__ = [
    "APPLICATION_ID",
    "AuditEvent",
    "Base",
    "CanonicalJSON",
    "Embedder",
    "Face",
    "FaceEmbedding",
    "GalleryMeta",
    "Image",
    "Query",
    "QueryCandidate",
    "QueryInput",
    "Subject",
    "UTCDateTime",
]
