"""Enrolling gallery photos: files, folders or a CSV manifest → subjects, images, faces, vectors.

Each batch of images (32) is committed in one transaction as soon as it is embedded, every image
all-or-nothing inside it (a SAVEPOINT each), together with the audit event that seals it: a crash
or Ctrl-C loses at most the batch in flight, never what was committed, a failure never leaves
half an image in the gallery, and no image is ever stored without its audit event.
Duplicates (same SHA-256) are skipped and counted. The FAISS index is brought up to date at the
end, also when nothing was new (so a rerun after a crash repairs a stale index).
"""

from __future__ import annotations

import csv
import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gallery import audit
from gallery.db import Gallery
from gallery.errors import DuplicateImageError, GalleryError
from gallery.records import EmbedderInfo, EnrollmentResult, FaceSpec, ImageSpec
from gallery.repository import GalleryRepository
from gallery.seal import SEAL_VERSION, image_digests, subject_digests
from gallery.transaction import write_transaction

from forensics.errors import ForensicsError
from forensics.indexes import GalleryIndexes
from forensics.images import iter_image_files, png_bytes
from forensics.intake import PipelineFailure, Skipped

SUBJECT_FROM = ("dir", "stem")
MANIFEST_FIELDS = ("path", "subject_id", "name", "sex", "birth_year")


@dataclass
class EnrollItem:
    """One file to enroll and the subject it belongs to."""

    path: Path
    subject_id: str
    name: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    meta: dict = field(default_factory=dict)


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


def items_from_paths(paths: list[Path], subject_from: str = "dir") -> list[EnrollItem]:
    """Files and folders (recursive): the subject is the parent folder's name or the file stem."""
    if subject_from not in SUBJECT_FROM:
        raise ForensicsError(f"--subject-from must be one of {', '.join(SUBJECT_FROM)}, not {subject_from!r}")
    files = iter_image_files([Path(p) for p in paths])
    return [EnrollItem(f, f.parent.name if subject_from == "dir" else f.stem) for f in files]


def items_from_manifest(manifest: Path) -> list[EnrollItem]:
    """A CSV with columns `path,subject_id[,name,sex,birth_year,...]`; other columns go to metadata.

    Relative paths are taken relative to the manifest's folder.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ForensicsError(f"{manifest}: manifest not found")
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"path", "subject_id"} - set(reader.fieldnames or [])
        if missing:
            raise ForensicsError(f"{manifest}: missing column(s) {', '.join(sorted(missing))}; "
                                 "the header must start with path,subject_id")
        items = []
        for line, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip() or not (row.get("subject_id") or "").strip():
                raise ForensicsError(f"{manifest}, line {line}: empty path or subject_id")
            p = Path(row["path"].strip())
            by = (row.get("birth_year") or "").strip()
            try:
                birth_year = int(by) if by else None
            except ValueError:
                raise ForensicsError(f"{manifest}, line {line}: birth_year {by!r} is not a year") from None
            items.append(EnrollItem(
                path=p if p.is_absolute() else manifest.parent / p,
                subject_id=row["subject_id"].strip(),
                name=(row.get("name") or "").strip() or None,
                sex=(row.get("sex") or "").strip() or None,
                birth_year=birth_year,
                meta={k: v for k, v in row.items() if k not in MANIFEST_FIELDS and k and v not in (None, "")},
            ))
    return items


def _enrollment(res, item: EnrollItem, embedder: EmbedderInfo, source: str) -> tuple[dict, ImageSpec, list[FaceSpec]]:
    """The `(subject, image, faces)` the gallery enrolls for one pipeline result."""
    subject = {"external_id": item.subject_id, "name": item.name, "sex": item.sex,
               "birth_year": item.birth_year, "meta": item.meta or None}
    image = ImageSpec(sha256=res.sha256, original_path=str(res.path.absolute()), width=res.width,
                      height=res.height, size_bytes=res.size_bytes, source=source, n_faces_detected=res.n_faces)
    face = FaceSpec(box=res.box, landmarks=res.landmarks, det_score=res.det_score,
                    chip_png=res.chip_png or png_bytes(res.chip), vector=res.embedding.vector, embedder=embedder)
    return subject, image, [face]


def _commit_sealed(gallery: Gallery, enrollments: list, actor: str, source: str) -> list:
    """Enroll `enrollments` in one transaction together with the audit event that seals what it
    wrote (the digest of each image and subject, `gallery.seal`): no image is ever committed
    without its event, whenever the process dies."""
    with write_transaction(gallery) as s:
        outcomes = GalleryRepository(s).add_enrollments(enrollments)
        added = [o for o in outcomes if isinstance(o, EnrollmentResult)]
        if added:
            shas = [o.image_sha256 for o in added]
            audit.append_event(s, actor=actor, action="enroll-batch", target=f"{len(added)} image(s)",
                               details={"seal": SEAL_VERSION, "source": source, "images": image_digests(s, shas),
                                        "subjects": subject_digests(s, {o.external_id for o in added})},
                               input_hashes=shas)
    return outcomes


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
    outcomes = _commit_sealed(gallery, [args for _, args in to_add], actor, source) if to_add else []
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
           progress: Callable[[int], None] | None = None) -> EnrollReport:
    """Enroll `items` with `pipeline` (a `FacePipeline`, or a `ParallelPipeline` whose workers do the
    work after intake); returns counts and per-file failures. See the module docstring."""
    t0 = time.perf_counter()
    repo = gallery.repository()
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
        if gallery.path is not None and repo.gallery_embedder() is not None:
            GalleryIndexes(gallery).plain()  # brought up to date (even with nothing new), as the kind kept
    return report
