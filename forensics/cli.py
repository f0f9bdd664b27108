"""The `forensics` command line: a thin typer + rich layer over the application object.

Every command parses its options, calls one method of `forensics.app.Forensics` (the gallery
named by --db, default ./forensics.db or $FORENSICS_DB, and the models) and prints the result.
Errors the user can fix are printed as one clear line (which file, what is wrong, what to do)
with exit code 2; partial batch failures exit 1. The `gallery` commands are in
`forensics.cli_gallery`; what every command shares (options, errors, progress bars) in
`forensics.cli_support`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from forensics import __version__
from forensics.cli_gallery import gallery_app
from forensics.cli_support import (DbOption, EmbedderOption, FaceOption, WeightsOption, console, err, forensics_app,
                                   handle_errors, lazy_progress_bar, progress_bar)
from forensics.modes import DEFAULT_SKETCH_MODE, modes_help

app = typer.Typer(
    help="Turn an eyewitness face sketch into ranked leads from a mugshot gallery.\n\n"
    "Typical session: `forensics gallery init`, `forensics enroll mugshots/ --subject-from dir`, "
    "`forensics query sketch.jpg --case C-17 --operator jdoe --report report.html`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(help="Verify and export the tamper-evident audit log.", no_args_is_help=True)
queries_app = typer.Typer(help="List and show stored queries.", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")
app.add_typer(audit_app, name="audit")
app.add_typer(queries_app, name="queries")

# --------------------------------------------------------------------------------------------
# enroll / search / evaluate
# --------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def enroll(
    paths: list[Path] = typer.Argument(None, help="Image files and/or folders (searched recursively)."),
    manifest: Optional[Path] = typer.Option(None, help="CSV with path,subject_id[,name,sex,birth_year,...]; "
                                            "extra columns are stored as subject metadata."),
    subject_from: str = typer.Option("dir", help="Without a manifest, the subject id is the parent folder "
                                     "name ('dir') or the file name without extension ('stem')."),
    source: str = typer.Option("cli", help="Free text recorded with each image (e.g. the booking system)."),
    operator: Optional[str] = typer.Option(None, help="Who enrolls (default: the login name)."),
    face: str = FaceOption,
    db: str = DbOption,
    embedder: str = EmbedderOption,
    weights: Optional[Path] = WeightsOption,
    workers: Optional[int] = typer.Option(None, help="Worker processes for detection and embedding (0: work in "
                                          "this process). Default: one per CPU core for 128 images or more."),
    update_subjects: bool = typer.Option(False, "--update-subjects", help="Let the input change the name, sex or "
                                         "birth year of subjects already in the gallery (audit-logged); without "
                                         "it such a change is refused before anything is enrolled."),
):
    """Enroll gallery photos. Duplicates (same SHA-256) are skipped; each failure is listed with
    its reason and makes the exit code 1. Interrupting keeps everything already enrolled. A gallery
    set to compute round-trip vectors at enrollment (`gallery settings --roundtrip`) then gets
    those of the new faces (and any an interrupted run left out).

    Example: `forensics enroll mugshots/ --subject-from dir --operator jdoe` (one folder per person), or
    `forensics enroll --manifest bookings.csv --operator jdoe`.
    """
    from forensics.manifest import items_from_manifest, items_from_paths
    from forensics.errors import ForensicsError
    from forensics.parallel import choose_workers

    if not paths and manifest is None:
        raise ForensicsError("nothing to enroll: give image files/folders or --manifest CSV")
    items = (items_from_manifest(manifest) if manifest else []) + (items_from_paths(paths, subject_from) if paths else [])
    if not items:
        raise ForensicsError("no image files found in the given paths")
    if not manifest and len(items) > 5 and len({it.subject_id for it in items}) == 1:
        err.print(f"[yellow]note:[/] all {len(items)} files go to ONE subject {escape(repr(items[0].subject_id))} "
                  "(--subject-from dir uses the folder name); use --subject-from stem or a --manifest "
                  "if each file is a different person")
    fx = forensics_app(db, operator, embedder, weights, face)
    with progress_bar(len(items), "enrolling") as advance, lazy_progress_bar("round-trip gallery vectors") as rt:
        rep = fx.enroll(items, source=source, workers=choose_workers(workers, len(items)), progress=advance,
                        update_subjects=update_subjects, roundtrip_progress=rt)
    console.print(f"enrolled {rep.enrolled}, duplicates skipped {rep.duplicates}, failed {len(rep.failures)} "
                  f"of {len(items)} in {rep.seconds:.1f}s ({len(items) / max(rep.seconds, 1e-9):.1f} img/s)"
                  + (f"; round-trip vectors computed for {rep.roundtrip.computed} face(s) in "
                     f"{rep.roundtrip.seconds:.1f}s ({rep.roundtrip.total} in the index)" if rep.roundtrip else ""))
    if rep.failures:
        err.print(f"[bold red]{len(rep.failures)} file(s) failed[/] (nothing of them was written to the gallery):")
        for _, why in rep.failures:
            err.print(f"  {why}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
@handle_errors
def search(
    image: Path = typer.Argument(..., help="A face photo to search the gallery with."),
    top: int = typer.Option(10, "--top", "-k", min=1, help="How many subjects to return."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    face: str = FaceOption,
    db: str = DbOption,
    embedder: str = EmbedderOption,
    weights: Optional[Path] = WeightsOption,
):
    """Search the gallery with a face photo: ranked subjects (best image per subject).

    Example: `forensics search photo.jpg --top 10`.
    """
    result = forensics_app(db, None, embedder, weights, face).search_photo(image, top)
    if as_json:
        print(json.dumps({"probe": str(image), "probe_sha256": result.probe_sha256[0],
                          "embedder": result.embedder.key.slug, "gallery_size": result.gallery_size,
                          "candidates": [c.to_dict() for c in result.candidates]}, indent=2))
        return
    print_candidates(result.candidates, f"{escape(str(image))} (sha256 {result.probe_sha256[0][:16]}…)")


def warn_assumed_face(path, detection_method: str | None) -> None:
    """Say on stderr when a sketch's face position was assumed, not detected."""
    if detection_method == "centred-portrait-fallback":
        err.print(f"[yellow]warning:[/] {escape(str(path))}: no face was detected; its position was ASSUMED from the "
                  "framing of a standard frontal portrait. Look at the aligned sketch (forensics invert "
                  "SKETCH -o face.png --aligned) before relying on the result.", highlight=False, soft_wrap=True)


def warn_sketch_pose(path, pose: dict | None) -> None:
    """Say on stderr when a sketch's face appears turned from frontal, or its pose is unknown
    (degenerate landmarks; `forensics.pose`)."""
    from forensics.pose import POSE_BENCHMARK_SECTION, UNKNOWN_POSE_REASON, PoseEstimate

    estimate = PoseEstimate.from_dict(pose)
    if estimate is not None and not estimate.known:
        err.print(f"[yellow]warning:[/] {escape(str(path))}: pose unknown: the face's landmarks are degenerate "
                  f"{UNKNOWN_POSE_REASON}. Look at the aligned sketch (forensics invert SKETCH -o face.png "
                  "--aligned) before relying on the result.",
                  highlight=False, soft_wrap=True)
    elif estimate is not None and estimate.turned:
        err.print(f"[yellow]warning:[/] {escape(str(path))}: the sketch appears turned from frontal (yaw index "
                  f"{estimate.yaw_index:+.2f}, threshold {estimate.threshold:g}); such sketches were identified less "
                  f"often than frontal ones ({POSE_BENCHMARK_SECTION}).", highlight=False, soft_wrap=True)


def max_fpir_option(text: str | None) -> float | None:
    """`--max-fpir` parsed (a fraction or a percentage), or None where not given."""
    from forensics.calibration import parse_max_fpir
    from forensics.errors import ForensicsError

    if text is None:
        return None
    try:
        return parse_max_fpir(text)
    except ValueError as e:
        raise ForensicsError(str(e)) from None


def fpir_cell(fpir: float | None, detail: dict | None) -> str:
    """A candidate's FPIR for a table: the stated value and its interval where one is stored."""
    if fpir is None:
        return "n/a"
    r = (detail or {}).get("fpir_range")
    return f"{_rate(fpir)} ({_rate(r[0])}–{_rate(r[1])})" if isinstance(r, list) and len(r) == 2 else _rate(fpir)


def _rate(x: float) -> str:
    """A rate for a table cell, never rounded to 0% or 100% when it is neither."""
    if 0 < x < 0.0001:
        return "<0.01%"
    if 0.9999 < x < 1:
        return ">99.99%"
    return f"{x:.2%}"


def print_candidates(cands, title: str):
    show_fpir = any(c.fpir is not None for c in cands)
    t = Table("rank", title=title)
    t.add_column("subject id", overflow="fold")
    for col in ("name", "score", *(["FPIR (90% interval)"] if show_fpir else []), "image sha256"):
        t.add_column(col)
    for c in cands:
        fpir = [fpir_cell(c.fpir, c.detail)] if show_fpir else []
        t.add_row(str(c.rank), Text(c.subject_id), Text(c.name or ""), f"{c.score:.3f}", *fpir,
                  c.image_sha256[:16] + "…")
    console.print(t)


@app.command()
@handle_errors
def evaluate(
    probes: Path = typer.Option(..., help="CSV manifest of probes: path,subject_id (the true subject)."),
    out: Path = typer.Option(..., help="JSON-lines output: one line per probe, in manifest order."),
    top: int = typer.Option(10, "--top", "-k", min=1, help="Candidates kept per probe."),
    mode: str = typer.Option("raw", help="How each probe is searched, as in `query --mode`: " + modes_help()),
    probe_kind: str = typer.Option("auto", help="photo or sketch (sketches get the detection fallbacks); auto: "
                                   "sketch for inverted/fusion/roundtrip, photo for raw."),
    cmc: Optional[Path] = typer.Option(None, help="CMC plot PNG (default: next to --out)."),
    whiten: bool = typer.Option(True, "--whiten/--no-whiten", help="Search sketches in the sketch search "
                                "space (partial PCA whitening, fitted on training photos; docs/models.md) when "
                                "one is fitted for the embedder; --no-whiten: raw descriptor space."),
    face: str = FaceOption,
    db: str = DbOption,
    embedder: str = EmbedderOption,
    weights: Optional[Path] = WeightsOption,
):
    """Identification test: rank-1/5/10 of many probes against the gallery, plus a CMC plot. Each
    probe is searched as `forensics query` searches one sketch; each JSON line holds the same
    candidate fields as `query --json`.

    Example: `forensics evaluate --probes probes.csv --mode fusion --out results.jsonl` (probes.csv:
    path,subject_id).
    """
    from forensics.evaluate import read_probe_manifest, write_cmc_plot

    items = read_probe_manifest(probes)
    fx = forensics_app(db, None, embedder, weights, face)
    with lazy_progress_bar("round-trip gallery vectors") as rt_progress:  # mode roundtrip: computed first
        searcher = fx.searcher(mode, probe_kind, whiten, progress=rt_progress)
    with progress_bar(len(items), f"evaluating ({mode})") as advance:
        s = fx.evaluate(searcher, items, out, top=top, progress=advance)
    png = write_cmc_plot({mode: s.cmc}, cmc or Path(out).with_suffix(".cmc.png"), title=f"CMC ({mode})")
    console.print(f"probes {s.n_probes} (failed {s.n_failed}): rank-1 {s.rank_k(1):.1%}  rank-5 {s.rank_k(5):.1%}  "
                  f"rank-10 {s.rank_k(10):.1%}")
    console.print(f"wrote {escape(str(out))} and {escape(str(png))}")


# --------------------------------------------------------------------------------------------
# query / queries / report
# --------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def query(
    sketches: list[Path] = typer.Argument(..., help="One or more sketches of ONE suspect (e.g. from several "
                                          "witnesses); they are fused into one candidate list."),
    top: int = typer.Option(50, "--top", "-k", help="How many candidate subjects to return."),
    case: Optional[str] = typer.Option(None, "--case", help="Case id, recorded with the query and on the report."),
    operator: Optional[str] = typer.Option(None, help="Who runs the query (default: the login name)."),
    mode: str = typer.Option(DEFAULT_SKETCH_MODE, help="How the sketches are searched. " + modes_help()),
    sex: Optional[str] = typer.Option(None, help="Keep only subjects of this recorded sex."),
    born_between: Optional[tuple[int, int]] = typer.Option(None, help="Keep only subjects born in this range, "
                                                            "e.g. --born-between 1980 1995."),
    where: list[str] = typer.Option([], help="Keep only subjects whose metadata has key=value (repeatable)."),
    witness: list[str] = typer.Option([], help="Who described the face (recorded and printed beside the sketch; "
                                      "once for all sketches, or once per sketch in their order)."),
    artist: list[str] = typer.Option([], help="Who drew the sketch (as --witness)."),
    drawn_on: list[str] = typer.Option([], "--drawn-on", help="When the sketch was drawn, YYYY-MM-DD (as --witness)."),
    sketch_note: list[str] = typer.Option([], "--sketch-note", help="Free text on the sketch's circumstances "
                                          "(as --witness)."),
    max_fpir: Optional[str] = typer.Option(None, "--max-fpir", help="Show (and report) only candidates whose "
                                           "estimated FPIR is at or below this rate, e.g. 0.01 or 1%. Every "
                                           "candidate is still stored; the report says how many are left out."),
    report: Optional[Path] = typer.Option(None, help="Also write a report (format from the extension: "
                                          ".html, .pdf, .json, .csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (query_id, candidates) on stdout."),
    whiten: bool = typer.Option(True, "--whiten/--no-whiten", help="Search sketches in the sketch search "
                                "space (partial PCA whitening, fitted on training photos; docs/models.md) when "
                                "one is fitted for the embedder; --no-whiten: raw descriptor space."),
    face: str = FaceOption,
    db: str = DbOption,
    embedder: str = EmbedderOption,
    weights: Optional[Path] = WeightsOption,
):
    """Query the gallery with eyewitness sketch(es): invert, embed, search, fuse, rank; the query
    is stored (see `forensics queries list`) and can be reported (`forensics report`).

    Example: `forensics query witness1.jpg witness2.png --case C-17 --operator jdoe --report C-17.html`.
    """
    from forensics.errors import ForensicsError, check_at_least
    from forensics.filters import SubjectFilters
    from forensics.modes import get_mode

    get_mode(mode)
    check_at_least("--top", top, 1)
    fx = forensics_app(db, operator, embedder, weights, face)
    if report is not None:
        fx.check_report_target(report)
    conditions = {}
    for w in where:
        if "=" not in w:
            raise ForensicsError(f"--where {w!r}: expected key=value")
        k, v = w.split("=", 1)
        conditions[k.strip()] = v.strip()
    filters = SubjectFilters(sex=sex, born_between=tuple(born_between) if born_between else None, where=conditions)
    filters.check_shape()
    provenance = fx.sketch_provenance(len(sketches), witness, artist, drawn_on, sketch_note)
    limit = max_fpir_option(max_fpir)
    with lazy_progress_bar("round-trip gallery vectors") as progress:
        q = fx.query(sketches, top=top, mode=mode, case_id=case, filters=filters, whiten=whiten, progress=progress,
                     provenance=provenance, max_fpir=limit)
    for inp in q.inputs:
        warn_assumed_face(inp["original_path"], inp["detection"]["method"])
        warn_sketch_pose(inp["original_path"], inp["detection"]["pose"])
    written = fx.query_report(q.query_uid, report) if report else None
    if as_json:
        print(json.dumps({"query_id": q.query_uid, "mode": q.mode, "gallery_size": q.gallery_size,
                          "subjects_searched": q.subjects_searched,
                          "max_fpir": limit, "candidates": [c.to_dict() for c in q.shown],
                          "left_out": len(q.candidates) - len(q.shown),
                          "report": str(written) if written else None}, indent=2))
        return
    searched = f", {q.subjects_searched} searched after the filters" if filters.active() else ""
    print_candidates(q.shown, f"query {q.query_uid} ({q.mode}, gallery of {q.gallery_size} subjects{searched})")
    if limit is not None:
        console.print(f"{len(q.candidates) - len(q.shown)} of {len(q.candidates)} candidates have an FPIR above "
                      f"{limit:.4g} (or none estimated) and are not shown; all are stored "
                      f"(`forensics report {q.query_uid[:8]} --max-fpir 1` lists them).", highlight=False)
    if written:
        console.print(f"report: {escape(str(written))}", highlight=False)


@app.command()
@handle_errors
def report(
    query_id: Optional[str] = typer.Argument(None, help="A query id, or its first 6+ characters (see "
                                             "`forensics queries list`)."),
    case: Optional[str] = typer.Option(None, "--case", help="Instead of one query: the case report, every search "
                                       "run in this case with its review status (html or json)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="html (self-contained), pdf, json or csv "
                                      "(case report: html or json). Default: the extension of --out (html when "
                                      "--out is a folder)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output file, or an existing folder to write "
                             "report-<query id>.<ext> in."),
    operator: Optional[str] = typer.Option(None, help="Who exports the report (recorded in the audit log)."),
    max_fpir: Optional[str] = typer.Option(None, "--max-fpir", help="Only candidates whose estimated FPIR is at "
                                           "or below this rate (0.01 or 1%); default: the limit the query was run "
                                           "with (none: all). The report says how many are left out."),
    db: str = DbOption,
):
    """Export the match report of a stored query, or with --case the case report.

    Example: `forensics report 82a66328 -o C-17.pdf` (a PDF: the format follows the extension), or
    `forensics report --case C-17 -o case-C-17.html`.
    """
    from forensics.errors import ForensicsError

    if (query_id is None) == (case is None):
        raise ForensicsError("give a query id, or --case ID for the case report (not both)")
    if case is not None and max_fpir is not None:
        raise ForensicsError("--max-fpir applies to the report of one query, not to the case report")
    limit = max_fpir_option(max_fpir)
    fx = forensics_app(db, operator)
    path = fx.case_report(case, out, fmt) if case is not None else fx.report(query_id, out, fmt, max_fpir=limit)
    console.print(f"wrote {escape(str(path))}", highlight=False)


@queries_app.command("list")
@handle_errors
def queries_list(db: str = DbOption, limit: int = typer.Option(50, help="Show at most this many."),
                 case: Optional[str] = typer.Option(None, "--case", help="Only the queries of this case id."),
                 as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table.")):
    """Stored queries, newest first (`forensics queries show ID` for one, `forensics report ID` to export).

    Example: `forensics queries list --case C-17`.
    """
    fx = forensics_app(db)
    rows = fx.queries(limit=limit, case_id=case)
    status = {q.query_uid: fx.review_status(q.query_uid) for q in rows}
    if as_json:
        print(json.dumps([{**dataclasses.asdict(q), "review": status[q.query_uid]} for q in rows], indent=2, default=str))
        return
    t = Table("time (UTC)", "case", "operator", "mode", "sketches", "top candidate", "score", "review")
    t.add_column("query id", no_wrap=True, min_width=32)
    for q in rows:
        t.add_row(str(q.created_at)[:19], Text(q.case_id or ""), Text(q.operator or ""), Text(q.mode or ""),
                  str(q.n_inputs), Text(q.top_external_id or ""),
                  f"{q.top_score:.3f}" if q.top_score is not None else "", status[q.query_uid], Text(q.query_uid))
    console.print(t)


@app.command()
@handle_errors
def review(
    query_id: str = typer.Argument(..., help="The stored query (its id, or its first 6+ characters)."),
    candidate: int = typer.Option(..., "--candidate", min=1, help="The candidate's rank in that query."),
    decision: Optional[str] = typer.Option(None, "--decision", help="lead, excluded or inconclusive "
                                           "(with --verify: the decision being confirmed, by default the latest)."),
    note: Optional[str] = typer.Option(None, "--note", help="Why: what was compared, what was seen."),
    examiner: Optional[str] = typer.Option(None, "--examiner", help="Who decides (default: the login name)."),
    verify: bool = typer.Option(False, "--verify", help="Confirm the latest decision on this candidate as a "
                                "second examiner (refused for the examiner who made it)."),
    db: str = DbOption,
):
    """Record an examiner's decision on one candidate of a stored query, or a second examiner's
    verification of it. Reviews are only added (a later one supersedes), are sealed in the audit
    log, and appear in `queries list` and in the query's report.

    Example:
    `forensics review 82a66328 --candidate 1 --decision lead --note "same scar above the left brow" --examiner jdoe`,
    then `forensics review 82a66328 --candidate 1 --verify --examiner asmith`.
    """
    fx = forensics_app(db, examiner)
    uid = fx.review(query_id, candidate, decision, examiner, note, verify)
    console.print(f"recorded review {uid}: {fx.review_status(fx.query_id(query_id))}", highlight=False)


@queries_app.command("show")
@handle_errors
def queries_show(query_id: str = typer.Argument(..., help="A query id, or its first 6+ characters (see "
                                                "`forensics queries list`)."), db: str = DbOption,
                 as_json: bool = typer.Option(False, "--json", help="Print everything as JSON, with full hashes "
                                              "and each candidate's per-sketch scores.")):
    """One stored query: inputs, models, parameters and candidates.

    Example: `forensics queries show 82a66328 --json`.
    """
    q = forensics_app(db).stored_query(query_id)
    if as_json:
        print(json.dumps({"query_id": q.query_uid, "created_at": str(q.created_at), "case_id": q.case_id,
                          "operator": q.operator, "mode": q.mode, "params": q.params, "filters": q.filters,
                          "gallery_size": q.gallery_size, "gallery_fingerprint": q.gallery_fingerprint,
                          "inverter": q.inverter, "timings": q.timings,
                          "inputs": [{"sha256": i.sha256, "path": i.original_path} for i in q.inputs],
                          "candidates": [{"rank": c.rank, "subject_id": c.subject_external_id, "score": c.score,
                                          "image_sha256": c.image_sha256, "detail": c.score_detail}
                                         for c in q.candidates]}, indent=2, default=str))
        return
    console.print(f"[bold]query {escape(q.query_uid)}[/] {q.created_at} case={escape(str(q.case_id))} "
                  f"operator={escape(str(q.operator))} mode={escape(str(q.mode))}", highlight=False)
    console.print(f"gallery: {q.gallery_size} subjects, fingerprint {q.gallery_fingerprint}; embedder {q.embedder}; "
                  f"inverter {escape(str(q.inverter))}", highlight=False)
    for i in q.inputs:
        console.print(f"input {i.position}: {escape(str(i.original_path))} sha256 {i.sha256}", highlight=False)
    t = Table("rank", "subject id", "name", "score", "FPIR (90% interval)", "image sha256")
    for c in q.candidates:
        detail = c.score_detail or {}
        t.add_row(str(c.rank), Text(c.subject_external_id or "(removed)"), Text(c.subject_name or ""),
                  f"{c.score:.3f}", fpir_cell(detail.get("fpir"), detail), (c.image_sha256 or "")[:16] + "…")
    console.print(t)


# --------------------------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------------------------


@audit_app.command("verify")
@handle_errors
def audit_verify(db: str = DbOption):
    """Check the audit hash chain; names any edited, deleted or reordered event and exits 1.

    Example: `forensics audit verify --db cases.db`.
    """
    res = forensics_app(db).verify_audit()
    console.print(res.summary(), highlight=False, markup=False)
    if not res.ok:
        raise typer.Exit(1)


@audit_app.command("export")
@handle_errors
def audit_export(out: Path = typer.Option(..., "-o", "--out", help="Output file."),
                 fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."), db: str = DbOption):
    """Export every audit event, in order.

    Example: `forensics audit export -o audit.csv --format csv`.
    """
    n = forensics_app(db).export_audit(fmt, out)
    console.print(f"wrote {n} events to {escape(str(out))}", highlight=False)


# --------------------------------------------------------------------------------------------
# demo, sketches, version
# --------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def demo(
    data: Optional[Path] = typer.Option(None, help="Folder with cufs/ and lfw/ (default: ../shared/data if present)."),
    out: Path = typer.Option(Path("demo"), help="Where the demo gallery and outputs go."),
    n_lfw: int = typer.Option(2000, help="LFW photos enrolled as distractors."),
):
    """Run the whole job on an embedded default: enroll CUFS test photos + LFW distractors into
    ./demo/, compute their round-trip vectors, query with 3 CUFS test sketches, print the ranked
    candidates and write their reports.

    Example: `forensics demo --n-lfw 500` (a smaller, quicker gallery).
    """
    from forensics.demo import run_demo

    run_demo(data, out, n_lfw=n_lfw, console=console, progress_bar=progress_bar, show=print_candidates,
             lazy_progress_bar=lazy_progress_bar)


@app.command()
@handle_errors
def sketchify(photo: Path = typer.Argument(..., help="A face photo; the whole image is drawn (no face detection or alignment)."),
              style: str = typer.Option("pencil", help="line, pencil or colour (the training "
                                                    "recipe's styles); charcoal or pressure (artist-like)."),
              out: Path = typer.Option(..., "-o", "--out", help="Output image file."),
              seed: Optional[int] = typer.Option(None, help="Random seed (omit for the canonical, unrandomised look).")):
    """Turn a face photo into a synthetic sketch (how the inversion network's training data is made).

    Example: `forensics sketchify photo.jpg --style pencil -o sketch.png`.
    """
    from forensics.inversion.sketchify import sketchify_file

    sketchify_file(photo, out, style, seed)
    console.print(f"wrote {escape(str(out))}")


@app.command()
@handle_errors
def invert(sketch: Path = typer.Argument(..., help="A face sketch (any size; the face is found and aligned)."),
           out: Path = typer.Option(..., "-o", "--out", help="Where to write the synthesized face (PNG)."),
           aligned: bool = typer.Option(False, "--aligned", help="Also write the aligned sketch next to it "
                                        "(OUT_aligned.png)."),
           face: str = FaceOption):
    """Turn a sketch into a synthesized, photo-like face (150x150, the network's output). It is the
    network's guess of a face matching the sketch, not a photograph of anyone.

    Example: `forensics invert sketch.jpg -o face.png --aligned` (also writes face_aligned.png).
    """
    from forensics.inversion.invert import invert_sketch_file

    aligned_out = out.with_name(out.stem + "_aligned.png") if aligned else None
    r = invert_sketch_file(sketch, out, aligned_out, select=face)
    warn_assumed_face(sketch, r["detection"])
    console.print(f"wrote {escape(str(out))} (detection: {r['detection']}; inverter {r['inverter'].name} "
                  f"{r['inverter'].version}, sha256 {r['inverter'].sha256[:16]}…)", highlight=False)
    if aligned_out:
        console.print(f"wrote {escape(str(aligned_out))}")


@app.command("train-inverter")
def train_inverter(
    config: Path = typer.Option(Path("configs/inverter.json"), help="Training configuration (JSON)."),
    resume: bool = typer.Option(False, help="Continue from the run folder's last checkpoint."),
    device: Optional[str] = typer.Option(None, help="cuda or cpu (default: cuda when available)."),
    max_minutes: Optional[float] = typer.Option(None, help="Stop gracefully, with a checkpoint, after M minutes."),
    export: Optional[Path] = typer.Option(None, help="Write the best weights here (+ .json sidecar) at the end."),
):
    """Train the sketch-inversion network (needs the chip cache: python -m forensics.training.data).
    Seeded; logs to runs/<name>/train.log; checkpoints, resumes, keeps the best on validation.

    Example:
    `forensics train-inverter --config configs/inverter_gan.json --max-minutes 60 --export sketch_inverter.pt`.
    """
    from forensics.training.trainer import main as train_main

    argv = ["--config", str(config)] + (["--resume"] if resume else []) + (["--device", device] if device else [])
    argv += (["--max-minutes", str(max_minutes)] if max_minutes else []) + (["--export", str(export)] if export else [])
    raise typer.Exit(train_main(argv) or 0)


@app.command()
def version():
    """Print the tool version.

    Example: `forensics version`.
    """
    console.print(__version__)


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
