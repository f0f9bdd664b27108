"""The application: one gallery and the models that work on it, as the CLI (and any other front
end) uses them. Each `forensics` command parses its arguments, calls one method here and prints
what it returns, as datasette's CLI calls its `Datasette` object.

Models load lazily, on the first method that needs them; the gallery opens on first use.
Actions that change or search the gallery are audit-logged by the modules they call.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gallery import audit, transfer
from gallery.db import Gallery, open_gallery
from gallery.location import GalleryLocation
from gallery.index import IndexProblem
from gallery.records import QueryRecord, RemovedSubject, SubjectInfo
from gallery.reviews import DECISIONS, latest_decisions, verifications
from gallery.roles import RoleGrant, create_roles, require_postgres

from forensics.detect import check_face_selection
from forensics.enroll import EnrollReport, RoundtripModels, enroll
from forensics.errors import ForensicsError, check_at_least
from forensics.evaluate import EvalSummary, evaluate
from forensics.filters import SubjectFilters
from forensics.manifest import MAX_FIELD, check_text
from forensics.models.registry import check_embedder_name
from forensics.modes import DEFAULT_SKETCH_MODE
from forensics.outputs import check_output_file, output_errors, output_format
from forensics.faiss_indexes import foreign_index_files
from forensics.indexes import SearchIndex
from forensics.query import QueryOutcome, run_query, search_photo
from forensics.records import SearchResult
from forensics.settings import GallerySettings, SettingChange, read_settings, set_roundtrip_at_enrollment
from forensics.stores import open_indexes
from forensics.whitening import load_whitening

Progress = Callable[[int, int], None]


def check_free_text(option: str, text: str | None) -> None:
    """A free-text note (line breaks allowed) fits the size limit of any stored text field."""
    if text is not None and len(text) > MAX_FIELD:
        raise ForensicsError(f"{option} is {len(text):,} characters long (at most {MAX_FIELD:,})")


@dataclass(frozen=True)
class ModelChoice:
    """Which face pipeline to build: the embedder (and its weights file), and the face to keep
    when an image shows several ("largest" or "central")."""

    embedder: str = "dlib-resnet"
    weights: Path | None = None
    face: str = "largest"

    def __post_init__(self) -> None:
        """Refused at once, before any work: an unknown embedder or way of choosing the face."""
        check_embedder_name(self.embedder)
        check_face_selection(self.face)


class Forensics:
    """One gallery (`db`: where it lives, a SQLite file or a PostgreSQL URL: `GalleryLocation`)
    and the models, for one operator. Messages and the audit log name the gallery by
    `db.display()` (a URL's password masked)."""

    def __init__(self, db: GalleryLocation | Path | str, models: ModelChoice = ModelChoice(),
                 operator: str | None = None):
        self.db = GalleryLocation.parse(db)
        self.models = models
        self.operator = operator or getpass.getuser()
        check_text("--operator", "operator", self.operator, 200)  # the actor of every audit event
        self._gallery: Gallery | None = None
        self._pipeline = None

    # -- what it works on ----------------------------------------------------------------------

    def gallery(self, create: bool = False, backup: bool = True) -> Gallery:
        """The gallery (opened once); `create`: a new one when there is none, unless index files
        of another gallery lie where its indexes would go (they are never overwritten); `backup`:
        an older gallery is saved before it is upgraded (false: the caller saved it)."""
        if self._gallery is None:
            foreign = foreign_index_files(self.db.path) if create and self.db.path is not None else []
            if foreign:
                raise ForensicsError(f"{foreign[0]} exists but the gallery {self.db} does not: it was built from "
                                     "another gallery; refusing to create a new gallery that would overwrite it "
                                     "(restore the gallery, move the index away, or give another --db)")
            self._gallery = open_gallery(self.db, create=create, backup_on_upgrade=backup)
        return self._gallery

    def pipeline(self, workers: int = 0):
        """The face pipeline (in this process; with `workers` > 0 a pool, which the caller closes)."""
        from forensics.parallel import make_pipeline

        if workers:
            return make_pipeline(self.models.embedder, self.models.weights, self.models.face, workers)
        if self._pipeline is None:
            self._pipeline = make_pipeline(self.models.embedder, self.models.weights, self.models.face, 0)
        return self._pipeline

    # -- the gallery ---------------------------------------------------------------------------

    def init_gallery(self, backup: bool = True) -> Gallery:
        g = self.gallery(create=True, backup=backup)
        audit.append_event(g, actor=self.operator, action="gallery-init", target=self.db.display(),
                           details={"revision": g.revision})
        return g

    def settings(self) -> GallerySettings:
        """The gallery's own settings (`forensics.settings`)."""
        return read_settings(self.gallery())

    def set_roundtrip_at_enrollment(self, on: bool) -> SettingChange:
        """Turn the round-trip vectors at enrollment on or off (audited with the old and new value)."""
        return set_roundtrip_at_enrollment(self.gallery(), on, self.operator)

    def faces_with_vectors(self) -> int:
        """How many gallery faces have a stored descriptor (each has, or will get, a round-trip vector)."""
        repo = self.gallery().repository()
        emb = repo.gallery_embedder()
        return repo.count_embeddings(emb) if emb is not None else 0

    def create_roles(self) -> list[RoleGrant]:
        """The PostgreSQL roles forensics_admin and forensics_examiner, granted their rights on this
        gallery (`gallery.roles`); audit-logged."""
        require_postgres(self.db)
        grants = create_roles(self.gallery())
        audit.append_event(self.gallery(), actor=self.operator, action="gallery-roles", target=self.db.display(),
                           details={g.role: {"appends": list(g.appends), "changes": list(g.changes)} for g in grants})
        return grants

    def subjects(self, limit: int = 50, offset: int = 0) -> tuple[list[SubjectInfo], dict]:
        """A page of subjects, and the gallery's totals (subjects, images, embedder)."""
        check_at_least("--limit", limit, 1)
        check_at_least("--offset", offset, 0)
        repo = self.gallery().repository()
        totals = {"subjects": repo.count_subjects(), "images": repo.count_images(),
                  "embedder": repo.gallery_embedder()}
        return repo.list_subjects(limit=limit, offset=offset), totals

    def subject(self, subject_id: str) -> SubjectInfo:
        s = self.gallery().repository().get_subject(subject_id)
        if s is None:
            raise ForensicsError(f"no subject {subject_id!r} in {self.db}")
        return s

    def remove_subject(self, subject_id: str) -> RemovedSubject:
        from forensics.maintenance import remove_subject

        return remove_subject(self.gallery(), subject_id, operator=self.operator)

    def check(self) -> list[IndexProblem]:
        from forensics.maintenance import check_gallery

        return check_gallery(self.gallery(), operator=self.operator)

    def rebuild_index(self, kind: str | None, nprobe: int | None) -> SearchIndex:
        """The plain and sketch-search-space indexes rebuilt as `kind` (None: the store's default)."""
        from forensics.maintenance import rebuild_index
        from forensics.whitening import load_whitening

        g = self.gallery()
        emb = g.repository().gallery_embedder()
        white = load_whitening(emb.key.slug) if emb is not None else None
        return rebuild_index(g, kind=kind, nprobe=nprobe, operator=self.operator, whitening=white)

    def copy_gallery(self, dest: GalleryLocation | Path | str, progress: Progress | None = None) -> transfer.CopyResult:
        """Copy this gallery into the new or empty gallery `dest` (a file path or a PostgreSQL URL),
        every row as stored, verified before it commits (`gallery.transfer.copy_gallery`); then
        the destination's indexes are brought up to date as after an enrollment (its store's
        `refresh`), so it is ready to search. Round-trip vectors are made there when first needed."""
        target = Forensics(dest, self.models, self.operator)
        result = transfer.copy_gallery(self.gallery(), target.gallery(create=True), actor=self.operator,
                                       source_label=self.db.display(), dest_label=target.db.display(),
                                       progress=progress)
        emb = target.gallery().repository().gallery_embedder()
        if emb is not None:
            open_indexes(target.gallery()).refresh(load_whitening(emb.key.slug))
        return result

    def build_roundtrip(self, whiten: bool, progress: Progress | None = None) -> SearchIndex:
        """The round-trip index, brought up to date (only faces not yet computed are)."""
        models = self.roundtrip_models()
        white = load_whitening(models.embedder.info.key.slug) if whiten else None
        return open_indexes(self.gallery()).roundtrip(models.embedder, models.inverter, white, progress)

    def roundtrip_models(self) -> RoundtripModels:
        """The embedder (this process's pipeline's) and the sketch inverter, which compute round-trip vectors."""
        from forensics.inversion.invert import load_inverter

        return RoundtripModels(self.pipeline().embedder, load_inverter())

    # -- enroll, search, query, evaluate -------------------------------------------------------

    def enroll(self, items, source: str = "cli", workers: int = 0, progress: Callable[[int], None] | None = None,
               update_subjects: bool = False, roundtrip_progress: Progress | None = None) -> EnrollReport:
        """Enroll `items` (forensics.manifest.EnrollItem); detection and embedding in `workers`
        processes (0: this one). A stored subject's name, sex or birth year is changed only with
        `update_subjects`. Where the gallery computes round-trip vectors at enrollment, they are
        computed here afterwards, `roundtrip_progress(done, total)` following them."""
        options = {"source": source, "operator": self.operator, "progress": progress,
                   "update_subjects": update_subjects, "roundtrip_models": self.roundtrip_models,
                   "roundtrip_progress": roundtrip_progress}
        if workers:
            with self.pipeline(workers) as pipeline:
                g = self.gallery(create=True)  # while the workers start
                return enroll(g, pipeline, items, **options)
        return enroll(self.gallery(create=True), self.pipeline(), items, **options)

    def search_photo(self, image: Path, top: int = 10) -> SearchResult:
        return search_photo(self.gallery(), self.pipeline(), image, top, operator=self.operator)

    def query(self, sketches: list[Path], top: int = 50, mode: str = DEFAULT_SKETCH_MODE, case_id: str | None = None,
              filters: SubjectFilters | None = None, whiten: bool = True,
              progress: Progress | None = None, provenance: list[dict] | None = None,
              max_fpir: float | None = None) -> QueryOutcome:
        """Run and store a sketch query (`forensics.query.run_query`); the case id is checked
        first (size, no control character: it is printed in reports)."""
        check_text("--case", "case id", case_id, 200)
        return run_query(self.gallery(), self.pipeline(), sketches, top=top, mode=mode, case_id=case_id,
                         operator=self.operator, filters=filters, whitening=whiten, progress=progress,
                         provenance=provenance, max_fpir=max_fpir)

    @staticmethod
    def sketch_provenance(n_sketches: int, witness: list[str], artist: list[str], drawn_on: list[str],
                          note: list[str]) -> list[dict] | None:
        """Per sketch, who saw and who drew it: each option given once (for every sketch) or once
        per sketch, in the order of the sketches; None when none was given."""
        import datetime as dt

        given = {"witness": witness, "artist": artist, "drawn_on": drawn_on, "note": note}
        if not any(given.values()):
            return None
        for key, values in given.items():
            if len(values) not in (0, 1, n_sketches):
                opt = "--sketch-note" if key == "note" else "--" + key.replace("_", "-")
                raise ForensicsError(f"{opt} given {len(values)} times for {n_sketches} sketches: give it once "
                                     "(for every sketch) or once per sketch, in their order")
        for key, values in given.items():
            for v in values:
                if key == "note":
                    check_free_text("--sketch-note", v)
                else:
                    check_text("sketch provenance", key, v, 400)
        for d in drawn_on:
            try:
                dt.date.fromisoformat(d)
            except ValueError:
                raise ForensicsError(f"--drawn-on {d!r}: give a date as YYYY-MM-DD") from None
        return [{k: (v[i] if len(v) == n_sketches else v[0]) if v else None for k, v in given.items()}
                for i in range(n_sketches)]

    def searcher(self, mode: str = "raw", probe_kind: str = "auto", whiten: bool = True,
                 progress: Progress | None = None):
        """A search of this gallery set up once for many probes (`evaluate`); `probe_kind` auto:
        photo for mode raw, else sketch. `progress(done, total)`: while round-trip vectors are
        computed (mode roundtrip)."""
        from forensics.searcher import Searcher

        kind = probe_kind if probe_kind != "auto" else ("photo" if mode == "raw" else "sketch")
        return Searcher(self.gallery(), self.pipeline(), mode, kind, whiten=whiten, progress=progress)

    def evaluate(self, searcher, probes: list[tuple[Path, str]], out: Path, top: int = 10,
                 progress: Callable[[int], None] | None = None) -> EvalSummary:
        """Search every probe (path, true subject id; `read_probe_manifest`) with `searcher` as a
        query would; write one JSON line per probe to `out`."""
        return evaluate(searcher, probes, out, top=top, progress=progress)

    # -- stored queries, reports, audit --------------------------------------------------------

    def query_id(self, given: str) -> str:
        """The full id of a stored query from the id or an unambiguous prefix of it (at least 6
        characters)."""
        repo = self.gallery().repository()
        if repo.get_query(given) is not None:
            return given
        if len(given) < 6:
            raise ForensicsError(f"no query {given!r} in {self.db} (give the id, or at least its first 6 characters)")
        found = repo.query_uids_starting(given, limit=6)
        if not found:
            raise ForensicsError(f"no query {given!r} in {self.db} (`forensics queries list` lists them)")
        if len(found) > 1:
            raise ForensicsError(f"{given!r} is the start of several query ids ({', '.join(found[:5])}"
                                 f"{', ...' if len(found) > 5 else ''}): give more characters")
        return found[0]

    def stored_query(self, query_id: str) -> QueryRecord:
        return self.gallery().repository().get_query(self.query_id(query_id))

    def review(self, query_id: str, rank: int, decision: str | None, examiner: str | None,
               note: str | None = None, verify: bool = False) -> str:
        """Record an examiner's decision on candidate `rank` of a stored query (`verify`: a second
        examiner confirms the latest decision on it; refused when it is the same examiner). Sealed
        in the audit log; returns the review's id."""
        from gallery.sealed import add_review_sealed

        uid = self.query_id(query_id)
        examiner = (examiner or self.operator).strip()
        if not examiner:
            raise ForensicsError("--examiner: give the examiner's name")
        check_text("review", "examiner", examiner, 200)
        check_free_text("--note", note)
        verifies = None
        if verify:
            last = latest_decisions(self.gallery().repository().reviews_of(uid)).get(rank)
            if last is None:
                raise ForensicsError(f"candidate {rank} of query {uid} has no decision to verify yet")
            if last.examiner.lower() == examiner.lower():
                raise ForensicsError(f"{examiner} made the decision on candidate {rank}; a second examiner must verify it")
            decision, verifies = decision or last.decision, last.review_uid
            if decision != last.decision:
                raise ForensicsError(f"--verify confirms the decision {last.decision!r}; to disagree, record "
                                     "your own decision without --verify")
        if decision not in DECISIONS:
            raise ForensicsError(f"--decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        return add_review_sealed(self.gallery(), actor=self.operator, query_uid=uid, candidate_rank=rank,
                                 decision=decision, examiner=examiner, note=note, verifies_uid=verifies)

    def review_status(self, query_uid: str) -> str:
        """'not reviewed', or how many candidates have a decision and how many were verified."""
        reviews = self.gallery().repository().reviews_of(query_uid)
        latest = latest_decisions(reviews)
        if not latest:
            return "not reviewed"
        n_verified = sum(1 for r in latest.values() if verifications(reviews, r))
        leads = sum(1 for r in latest.values() if r.decision == "lead")
        return f"{len(latest)} reviewed ({leads} lead), {n_verified} verified"

    def queries(self, limit: int = 50, case_id: str | None = None, offset: int = 0):
        """A page of stored queries, newest first (of one case, with `case_id`)."""
        check_at_least("--limit", limit, 1)
        check_at_least("--offset", offset, 0)
        return self.gallery().repository().list_queries(limit=limit, offset=offset, case_id=case_id)

    def case_report(self, case_id: str, out: Path, fmt: str | None = None) -> Path:
        """Every search of a case with its review status, as HTML or JSON; audit-logged with the
        file's SHA-256."""
        from forensics.images import sha256_file
        from forensics.reports.case import CASE_FORMATS, build_case_report, write_case_report

        fmt = output_format(fmt, out, list(CASE_FORMATS), folder_default="html", what="case report")
        check_output_file(out, "--out")
        with output_errors(out, "--out"):
            path = write_case_report(build_case_report(self, case_id), fmt, out)
        audit.append_event(self.gallery(), actor=self.operator, action="case-report", target=case_id,
                           details={"format": fmt, "path": str(path), "report_sha256": sha256_file(path)})
        return path

    @staticmethod
    def check_report_target(out: Path) -> None:
        """Before a query runs: its `--report` path has a known extension and a writable folder."""
        from forensics.reports import FORMATS

        check_output_file(out, "--report", ["." + f for f in FORMATS])

    def query_report(self, query_id: str, out: Path) -> Path:
        """The report of a query just stored; if it cannot be written, the error says the query is
        stored and how to export its report again."""
        try:
            return self.report(query_id, out)
        except Exception as e:  # any failure: the user must still learn the query is stored
            raise ForensicsError(f"the query is stored as {query_id}, but its report could not be written to "
                                 f"{out} ({e}); export it with `forensics report {query_id} -o FILE`") from None

    def report(self, query_id: str, out: Path, fmt: str | None = None, max_fpir: float | None = None) -> Path:
        """Write the report of a stored query; `max_fpir` (default: the query's own) leaves out the
        candidates above it, saying how many."""
        from forensics.reports import FORMATS, export_report

        fmt = output_format(fmt, out, list(FORMATS), folder_default="html")
        if not Path(out).is_dir():
            check_output_file(out, "--out")
        uid = self.query_id(query_id)
        with output_errors(out, "--out"):
            return export_report(self.gallery(), uid, fmt, out, self.operator, max_fpir=max_fpir)

    def verify_audit(self):
        """The chain, its append-only triggers and the stored rows against their sealed events
        (`gallery.verify.GalleryVerdict`)."""
        from gallery.verify import verify_gallery

        return verify_gallery(self.gallery())

    def export_audit(self, fmt: str, out: Path) -> int:
        """Every audit event written to `out` as `fmt` (jsonl or csv); how many."""
        from gallery.audit import export_events

        check_output_file(out, "--out")
        with output_errors(out, "--out"):
            return export_events(self.gallery(), fmt, out)
