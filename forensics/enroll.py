"""Enrolling gallery photos: files, folders or a CSV manifest → subjects, images, faces, vectors.

Each batch of images (32) is committed in one transaction as soon as it is embedded, every image
all-or-nothing inside it (a SAVEPOINT each), together with the audit event that seals it: a crash
or Ctrl-C loses at most the batch in flight, never what was committed, a failure never leaves
half an image in the gallery, and no image is ever stored without its audit event.
Duplicates (same SHA-256) are skipped and counted. The FAISS index is brought up to date at the
end, also when nothing was new (so a rerun after a crash repairs a stale index).
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gallery import audit
from gallery.db import Gallery
from gallery.errors import DuplicateImageError, GalleryError
from gallery.records import EmbedderInfo, FaceSpec, ImageSpec
from gallery.seal import SEAL_VERSION
from gallery.sealed import enroll_sealed

from forensics.images import png_bytes
from forensics.intake import PipelineFailure, Skipped
from forensics.manifest import LIMITS, EnrollItem, check_against_gallery, check_consistent, check_text
from forensics.stores import open_indexes
from forensics.whitening import load_whitening


@dataclass
class EnrollReport:
    enrolled: int = 0
    duplicates: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)
    subjects_created: int = 0
    seconds: float = 0.0
    input_hashes: list[str] = field(default_factory=list)

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
           progress: Callable[[int], None] | None = None, update_subjects: bool = False) -> EnrollReport:
    """Enroll `items` with `pipeline` (a `FacePipeline`, or a `ParallelPipeline` whose workers do the
    work after intake); returns counts and per-file failures. See the module docstring.

    The items are checked against each other and against the stored subjects first (a subject
    id given another name than it has is refused unless `update_subjects`), so a refused input
    leaves the gallery as it was."""
    t0 = time.perf_counter()
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
        open_indexes(gallery).refresh(load_whitening(emb_info.key.slug))
    return report
