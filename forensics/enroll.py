"""Enrolling gallery photos: files, folders or a CSV manifest → subjects, images, faces, vectors.

Each batch of images (32) is committed in one transaction as soon as it is embedded, every image
all-or-nothing inside it (a SAVEPOINT each), together with the audit event that seals it: a crash
or Ctrl-C loses at most the batch in flight, never what was committed, a failure never leaves
half an image in the gallery, and no image is ever stored without its audit event.
Duplicates (same SHA-256) are skipped and counted. The FAISS index is brought up to date at the
end, also when nothing was new (so a rerun after a crash repairs a stale index).

A gallery whose setting "round-trip vectors at enrollment" is on (`forensics.settings`) then
gets the round-trip vectors (`forensics.roundtrip`) of the faces just enrolled, in the space
queries search them in, so a `--mode roundtrip` query never waits for them. They are derived
data, computed after the rows are committed: a run killed meanwhile leaves a consistent gallery
whose missing vectors the next enrollment, `forensics gallery roundtrip` or round-trip query
computes (only the missing ones). The inverter is loaded only when the setting is on.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gallery import audit
from gallery.db import Gallery
from gallery.errors import DuplicateImageError, GalleryError
from gallery.records import EmbedderInfo, FaceSpec, ImageSpec
from gallery.seal import SEAL_VERSION
from gallery.sealed import enroll_sealed

from forensics.errors import ForensicsError
from forensics.images import png_bytes
from forensics.indexes import Progress
from forensics.intake import PipelineFailure, Skipped
from forensics.manifest import LIMITS, EnrollItem, check_against_gallery, check_consistent, check_text
from forensics.settings import read_settings
from forensics.stores import open_indexes
from forensics.whitening import load_whitening


@dataclass(frozen=True)
class RoundtripModels:
    """What computes round-trip vectors: the embedder (in this process) and the sketch inverter."""

    embedder: Any
    inverter: Any


@dataclass(frozen=True)
class RoundtripUpdate:
    """Round-trip vectors brought up to date after an enrollment: how many were computed (the
    faces just enrolled, and any an interrupted run left without), in how long, how many the
    index holds now and its space id."""

    computed: int
    seconds: float
    total: int
    space: str


@dataclass
class EnrollReport:
    enrolled: int = 0
    duplicates: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)
    subjects_created: int = 0
    seconds: float = 0.0  # the enrollment, without the round-trip vectors (`roundtrip.seconds`)
    input_hashes: list[str] = field(default_factory=list)
    roundtrip: RoundtripUpdate | None = None  # None: the gallery does not compute them at enrollment

    @property
    def total(self) -> int:
        return self.enrolled + self.duplicates + len(self.failures)


def _enrollment(res, item: EnrollItem, embedder: EmbedderInfo, source: str) -> tuple[dict, ImageSpec, list[FaceSpec]]:
    """The `(subject, image, faces)` the gallery enrolls for one pipeline result."""
    subject = {"external_id": item.subject_id, "name": item.name, "sex": item.sex,
               "birth_year": item.birth_year, "meta": item.meta or None}
    image = ImageSpec(sha256=res.sha256, original_path=str(res.path.absolute()), width=res.width,
                      height=res.height, size_bytes=res.size_bytes, source=source, n_faces_detected=res.n_faces)
    face = FaceSpec(box=res.box, landmarks=res.landmarks, det_score=res.det_score,
                    chip_png=res.chip_png or png_bytes(res.chip), vector=res.embedding.vector, embedder=embedder)
    return subject, image, [face]


def _enroll_batch(gallery: Gallery, results: list, by_path: dict[str, EnrollItem], embedder: EmbedderInfo,
                  source: str, actor: str, report: EnrollReport) -> None:
    """Enroll one batch of pipeline results in one transaction with its audit event (each image
    all-or-nothing within it) and count what happened to each in `report`."""
    to_add = []
    for res in results:
        if isinstance(res, Skipped):
            report.duplicates += 1
        elif isinstance(res, PipelineFailure):
            report.failures.append((res.path, str(res.error)))
        else:
            to_add.append((res, _enrollment(res, by_path[str(res.path)], embedder, source)))
    outcomes = enroll_sealed(gallery, [args for _, args in to_add], actor, {"source": source}) if to_add else []
    for (res, _), outcome in zip(to_add, outcomes):
        report.input_hashes.append(res.sha256)
        if isinstance(outcome, DuplicateImageError):
            report.duplicates += 1
        elif isinstance(outcome, GalleryError):
            report.failures.append((res.path, str(outcome)))
        else:
            report.enrolled += 1
            report.subjects_created += int(outcome.subject_created)


def _audit(gallery: Gallery, report: EnrollReport, n_items: int, interrupted: bool, source: str,
           embedder_key: str, actor: str) -> None:
    """The run's summary event (each batch was sealed by its own event when it was committed)."""
    audit.append_event(
        gallery, actor=actor, action="enroll", target=f"{n_items} file(s)",
        details={"seal": SEAL_VERSION, "enrolled": report.enrolled, "duplicates": report.duplicates,
                 "failed": [[str(p), why] for p, why in report.failures], "source": source,
                 "embedder": embedder_key, "interrupted": interrupted},
        input_hashes=report.input_hashes,
        outcome="interrupted" if interrupted else ("ok" if not report.failures else "partial"),
    )


def enroll(gallery: Gallery, pipeline, items: list[EnrollItem], source: str = "cli",
           operator: str | None = None, batch_size: int = 32,
           progress: Callable[[int], None] | None = None, update_subjects: bool = False,
           roundtrip_models: Callable[[], RoundtripModels] | None = None,
           roundtrip_progress: Progress | None = None) -> EnrollReport:
    """Enroll `items` with `pipeline` (a `FacePipeline`, or a `ParallelPipeline` whose workers do the
    work after intake); returns counts and per-file failures. See the module docstring.

    The items are checked against each other and against the stored subjects first (a subject
    id given another name than it has is refused unless `update_subjects`), so a refused input
    leaves the gallery as it was. Where the gallery computes round-trip vectors at enrollment,
    `roundtrip_models()` gives the models that compute them (called once the rows are committed;
    refused up front when missing) and `roundtrip_progress(done, total)` follows them."""
    t0 = time.perf_counter()
    roundtrip_on = read_settings(gallery).roundtrip_at_enrollment
    if roundtrip_on and roundtrip_models is None:
        raise ForensicsError("this gallery computes round-trip vectors at enrollment, but no models to compute "
                             "them were given (enroll through `forensics enroll` or `Forensics.enroll`)")
    repo = gallery.repository()
    check_text("--source", "source", source, LIMITS["source"])
    check_against_gallery(check_consistent(items), repo.get_subject, update_subjects)
    emb_info = pipeline.embedder_info
    repo.ensure_embedder_compatible(emb_info.name, emb_info.version, emb_info.dim)
    embedder = repo.get_or_create_embedder(emb_info.name, emb_info.version, emb_info.dim, emb_info.weights_sha256)
    report = EnrollReport()
    actor = operator or getpass.getuser()
    by_path = {str(it.path): it for it in items}
    done_paths: set[str] = set()
    whitening = load_whitening(emb_info.key.slug)
    try:
        for results in pipeline.process([it.path for it in items], kind="photo", batch_size=batch_size,
                                        known=repo.known_images, encode_chips=True):
            _enroll_batch(gallery, results, by_path, embedder, source, actor, report)
            done_paths.update(str(res.path) for res in results)
            if progress:
                progress(len(results))
    finally:
        report.seconds = time.perf_counter() - t0
        _audit(gallery, report, len(items), len(done_paths) < len(items), source, emb_info.key.slug, actor)
        open_indexes(gallery).refresh(whitening)
    if roundtrip_on:
        report.roundtrip = _update_roundtrip(gallery, roundtrip_models, whitening, roundtrip_progress, report)
    return report


def _update_roundtrip(gallery: Gallery, models: Callable[[], RoundtripModels], whitening,
                      progress: Progress | None, report: EnrollReport) -> RoundtripUpdate:
    """The gallery's round-trip index (in `whitening`'s sketch search space when one is fitted for
    the embedder, as queries search it; else raw) brought up to date, computing only the faces
    that lack vectors. A failure leaves the enrolled rows as they are and says what completes it."""
    t0 = time.perf_counter()
    computed = [0]

    def counted(done: int, total: int) -> None:
        computed[0] = total
        if progress:
            progress(done, total)

    try:
        loaded = models()
        index = open_indexes(gallery).roundtrip(loaded.embedder, loaded.inverter, whitening, counted)
    except (ForensicsError, GalleryError) as e:
        raise ForensicsError(f"{report.enrolled} image(s) were enrolled, but the round-trip vectors could not be "
                             f"computed: {e}. `forensics gallery roundtrip`, the next enrollment or the next "
                             "round-trip query computes the missing ones") from e
    return RoundtripUpdate(computed[0], time.perf_counter() - t0, index.ntotal, index.space)
