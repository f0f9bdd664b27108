"""The `forensics gallery` commands: create, inspect and maintain the gallery database, its
settings and its indexes (each parses, calls one method of the application object, prints)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from forensics.cli_support import DbOption, console, forensics_app, handle_errors, lazy_progress_bar

gallery_app = typer.Typer(help="Create, inspect and maintain the gallery database and its index.", no_args_is_help=True)


@gallery_app.command("init")
@handle_errors
def gallery_init(db: str = DbOption,
                 no_backup: bool = typer.Option(False, "--no-backup", help="Upgrade without a backup copy "
                                                "(PostgreSQL: say that you took one with pg_dump)."),
                 roundtrip: bool = typer.Option(False, "--roundtrip", help="Also turn on the gallery's setting "
                                                "'round-trip vectors at enrollment' (see `gallery settings`)."),
                 operator: Optional[str] = typer.Option(None, help="Who creates or upgrades (audit log).")):
    """Create the gallery database, or upgrade an older one to this version's schema (a SQLite
    file is copied to <db>.bak-<old revision> first; a PostgreSQL gallery is upgraded only with
    --no-backup, once pg_dump has saved it).

    Example: `forensics gallery init --db cases.db`.
    """
    fx = forensics_app(db, operator)
    g = fx.init_gallery(backup=not no_backup)
    console.print(f"gallery ready: {escape(fx.db.display())} (schema {g.revision})", highlight=False)
    if roundtrip:
        report_roundtrip_change(fx, fx.set_roundtrip_at_enrollment(True))


@gallery_app.command("settings")
@handle_errors
def gallery_settings(db: str = DbOption,
                     roundtrip: Optional[bool] = typer.Option(
                         None, "--roundtrip/--no-roundtrip", help="Whether `forensics enroll` computes the "
                         "round-trip vectors of the faces it enrolls (`query --mode roundtrip` then never waits "
                         "for them; ~0.05 s a face), or leaves them to `gallery roundtrip` or the first "
                         "round-trip query (the default)."),
                     operator: Optional[str] = typer.Option(None, help="Who changes a setting (audit log).")):
    """Show the gallery's own settings (kept in its database), or change one: each change is
    recorded in the audit log with who, when, the old and the new value.

    Example: `forensics gallery settings --roundtrip` (turn it on), or `forensics gallery settings` (show them).
    """
    fx = forensics_app(db, operator)
    if roundtrip is not None:
        report_roundtrip_change(fx, fx.set_roundtrip_at_enrollment(roundtrip))
    table = Table("setting", "value", title=f"settings of {escape(fx.db.display())}")
    for name, value in fx.settings().describe():
        table.add_row(name, value)
    console.print(table)


def report_roundtrip_change(fx, change) -> None:
    """Say what the setting was and is; when it was just turned on, `offer_roundtrip_build`."""
    old, new = ("on" if v else "off" for v in (change.old, change.new))
    console.print(f"round-trip vectors at enrollment: {old} → {new}" if change.changed
                  else f"round-trip vectors at enrollment: already {new}", highlight=False)
    if change.changed and change.new:
        offer_roundtrip_build(fx)


def offer_roundtrip_build(fx) -> None:
    """The setting was just turned on: say how the faces already enrolled get their round-trip
    vectors, and at a terminal offer to compute them now."""
    n = fx.faces_with_vectors()
    if not n:
        return
    console.print(f"{n} faces are already enrolled: `forensics gallery roundtrip --db {escape(fx.db.display())}` "
                  "computes the round-trip vectors they lack (so do the next enrollment and the next round-trip "
                  "query)", highlight=False)
    if sys.stdin.isatty() and typer.confirm("compute them now?", default=True):
        idx = build_roundtrip(fx, whiten=True)
        console.print(f"round-trip index: {idx.ntotal} vectors, space {idx.space}", highlight=False)


@gallery_app.command("roles")
@handle_errors
def gallery_roles(db: str = DbOption, operator: Optional[str] = typer.Option(None, help="Who grants (audit log).")):
    """PostgreSQL only: create the group roles forensics_admin (enroll, remove, everything) and
    forensics_examiner (search, query, report, review; cannot enroll, remove or alter) and grant
    their rights on this gallery. Run as the owner of the tables, again after an upgrade; then
    make people members: CREATE ROLE jdoe LOGIN PASSWORD '...' IN ROLE forensics_examiner.

    Example: `forensics gallery roles --db postgresql://owner@db.agency.local/forensics`.
    """
    t = Table("role", "reads", "adds to", "changes")
    for g in forensics_app(db, operator).create_roles():
        t.add_row(g.role, "every table", ", ".join(g.appends) if g.appends != g.reads else "every table",
                  "every table (not the append-only ones)" if g.changes else "nothing")
    console.print(t)


@gallery_app.command("list")
@handle_errors
def gallery_list(db: str = DbOption, limit: int = typer.Option(50, help="How many subjects."),
                 offset: int = typer.Option(0, help="Skip this many subjects.")):
    """List enrolled subjects with their image counts, then the gallery's totals and settings.

    Example: `forensics gallery list --limit 100 --offset 100` (the second hundred).
    """
    fx = forensics_app(db)
    subjects, totals = fx.subjects(limit=limit, offset=offset)
    t = Table("subject id", "name", "sex", "born", "images", "vectors")
    for s in subjects:
        t.add_row(Text(s.external_id), Text(s.name or ""), Text(s.sex or ""), str(s.birth_year or ""),
                  str(s.n_images), str(s.n_embeddings))
    console.print(t)
    console.print(f"{totals['subjects']} subjects, {totals['images']} images; "
                  f"embedder: {totals['embedder'] or 'none yet'}")
    console.print("; ".join(f"{name}: {value}" for name, value in fx.settings().describe()), highlight=False)


@gallery_app.command("show")
@handle_errors
def gallery_show(subject_id: str = typer.Argument(..., help="The subject id, as `gallery list` prints it "
                                                  "(case-sensitive)."), db: str = DbOption):
    """Show one subject: metadata and every enrolled image with its SHA-256.

    Example: `forensics gallery show B-1001`.
    """
    s = forensics_app(db).subject(subject_id)
    console.print(f"[bold]{escape(s.external_id)}[/] {escape(s.name or '')}  sex={escape(s.sex or '-')} "
                  f"born={s.birth_year or '-'}", highlight=False)
    if s.meta:
        console.print(json.dumps(s.meta, ensure_ascii=False), highlight=False, markup=False)
    t = Table("image id", "sha256", "size", "faces", "source", "original path", "enrolled")
    for im in s.images:
        t.add_row(str(im.id), im.sha256, f"{im.width}x{im.height}", str(im.n_faces), Text(im.source or ""),
                  Text(im.original_path or ""), str(im.enrolled_at or ""))
    console.print(t)


@gallery_app.command("remove")
@handle_errors
def gallery_remove(subject_id: str = typer.Argument(..., help="The subject id, as `gallery list` prints it "
                                                    "(case-sensitive)."), db: str = DbOption,
                   operator: Optional[str] = typer.Option(None, help="Who removes (audit log; default: the login "
                                                          "name)."),
                   yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")):
    """Remove a subject: its images, faces and vectors leave the DB and the index (the audit
    log keeps only the image hashes).

    Example: `forensics gallery remove K-3001 --operator jdoe`.
    """
    from forensics.errors import ForensicsError

    fx = forensics_app(db, operator)
    if not yes:
        if not sys.stdin.isatty():
            raise ForensicsError("removing a subject needs confirmation: pass --yes when not at a terminal")
        typer.confirm(f"remove subject {subject_id!r} and all its images from {fx.db.display()}?", abort=True)
    removed = fx.remove_subject(subject_id)
    console.print(f"removed {escape(removed.external_id)}: {len(removed.image_sha256s)} image(s), "
                  f"{len(removed.embedding_ids)} vector(s)", highlight=False)


@gallery_app.command("check")
@handle_errors
def gallery_check(db: str = DbOption, operator: Optional[str] = typer.Option(None, help="Who checks (audit log).")):
    """Check the database (SQLite's integrity check; on PostgreSQL, its constraints), then compare
    the search indexes (FAISS files, or pgvector spaces) with it, the source of truth; exit 1 on
    any problem.

    Example: `forensics gallery check --db cases.db`.
    """
    problems = forensics_app(db, operator).check()
    if not problems:
        console.print("[green]ok[/]: the database passed its integrity check; the database and the index agree")
        return
    for p in problems:
        console.print(f"[red]{p.kind}[/]: {escape(p.message)}", highlight=False)
    if any(p.kind == "integrity" for p in problems):
        console.print("the database file is damaged: restore it from a backup (the index was not checked)")
    else:
        console.print("run `forensics gallery rebuild-index` to rebuild the index from the database")
    raise typer.Exit(1)


@gallery_app.command("roundtrip")
@handle_errors
def gallery_roundtrip(db: str = DbOption, whiten: bool = typer.Option(True, "--whiten/--no-whiten",
                                                                       help="For queries in the sketch search space "
                                                                       "(default) or in the raw one.")):
    """Compute the round-trip gallery vectors that `query --mode roundtrip` uses (each gallery face
    as its canonical pencil sketch, inverted and embedded; ~0.05 s a face on 2 CPU cores), ahead of
    the first such query. Only faces not yet computed are: an interrupted run resumes where it stopped.
    A gallery can have `forensics enroll` compute them instead (`gallery settings --roundtrip`).

    Example: `forensics gallery roundtrip --db cases.db`.
    """
    idx = build_roundtrip(forensics_app(db), whiten)
    console.print(f"round-trip index: {idx.ntotal} vectors, space {idx.space}", highlight=False)


def build_roundtrip(fx, whiten: bool):
    """The gallery's round-trip index, brought up to date with a progress bar."""
    with lazy_progress_bar("round-trip gallery vectors") as progress:
        return fx.build_roundtrip(whiten, progress)


@gallery_app.command("rebuild-index")
@handle_errors
def gallery_rebuild_index(db: str = DbOption,
                          kind: Optional[str] = typer.Option(
                              None, help="SQLite (FAISS): flat (exact, the default) or ivf (approximate, for very "
                                         "large galleries). PostgreSQL (pgvector): hnsw (the default) or flat."),
                          nprobe: Optional[int] = typer.Option(None, help="IVF lists visited per search (FAISS)."),
                          operator: Optional[str] = typer.Option(None, help="Who rebuilds (audit log).")):
    """Rebuild the search indexes (the stored descriptors and the sketch search space's) from the
    database: the FAISS files beside a SQLite gallery, the pgvector spaces and their HNSW indexes
    in a PostgreSQL one. The kind is kept in the gallery: every later rebuild (after enrolling or
    removing) keeps it.

    Example: `forensics gallery rebuild-index` (after `gallery check` reports a problem), or
    `forensics gallery rebuild-index --kind ivf --nprobe 16` (approximate, for a very large gallery).
    """
    idx = forensics_app(db, operator).rebuild_index(kind, nprobe)
    console.print(f"index rebuilt: {idx.ntotal} vectors, {idx.kind}, embedder {idx.embedder}")


@gallery_app.command("copy")
@handle_errors
def gallery_copy(source: str = typer.Option(..., "--from", help="The gallery to copy: a SQLite file or a PostgreSQL "
                                            "URL (postgresql://user@host:port/dbname)."),
                 dest: str = typer.Option(..., "--to", help="Where the copy goes: a new (or empty) SQLite file or an "
                                          "empty PostgreSQL database."),
                 operator: Optional[str] = typer.Option(None, help="Who copies (audit log).")):
    """Copy a whole gallery into a new or empty one, SQLite to PostgreSQL or back: subjects, images,
    chips, descriptors, stored queries, reviews and the audit log, every row as stored, so `audit
    verify` passes on the copy. Row counts are compared and the copy is verified before it commits
    (a failed copy leaves the destination empty); a `copy` event is added to its audit log. The
    sketch search space and round-trip vectors are made on the destination when first needed.

    Example: `forensics gallery copy --from cases.db --to postgresql://intake@db.agency.local/forensics`.
    """
    fx = forensics_app(source, operator)
    with lazy_progress_bar("copying rows", "rows") as progress:
        res = fx.copy_gallery(dest, progress)
    table = Table("table", "rows in the source", "rows copied", title="gallery copied, counts checked")
    for c in res.counts:
        table.add_row(c.table, f"{c.source:,}", f"{c.destination:,}")
    console.print(table)
    console.print(f"audit log: {res.audit_events} events, head {res.head_hash}", highlight=False)
