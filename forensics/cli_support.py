"""What every `forensics` command shares: the consoles, the common options, the error handler
that turns user-fixable errors into one line and exit code 2, the progress bars, and the
application object a command works through (`forensics_app`)."""

from __future__ import annotations

import functools
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
err = Console(stderr=True)

DbOption = typer.Option("forensics.db", "--db", envvar="FORENSICS_DB",
                        help="The gallery: a SQLite file (the derived FAISS index lives beside it: cases.db → "
                        "cases.faiss + cases.faiss.json) or a PostgreSQL database "
                        "(postgresql://user@host:port/dbname, or postgresql://user@/dbname?host=/socket/dir).")
EmbedderOption = typer.Option("dlib-resnet", "--embedder", help="Face embedder: dlib-resnet (default, offline) "
                              "or facenet-vggface2 (needs --weights).")
WeightsOption = typer.Option(None, "--weights", help="Weights file for the embedder (facenet-vggface2 only).")
FaceOption = typer.Option("largest", "--face", help="With several faces in an image: 'largest' or 'central' "
                          "(the one nearest the centre, for LFW-style crops).")


def handle_errors(fn):
    """Print user-fixable errors as one line (never wrapped: a path in it stays whole) and exit 2,
    instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from sqlalchemy.exc import DatabaseError

        from gallery.errors import GalleryError

        from forensics.errors import ForensicsError

        try:
            return fn(*args, **kwargs)
        except (ForensicsError, GalleryError) as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except DatabaseError as e:
            if type(e.orig).__module__.startswith("psycopg"):  # the server refused (e.g. an append-only trigger)
                reason = " ".join(str(e.orig).split())  # one line: the server's DETAIL and HINT lines too
                err.print(f"[bold red]error:[/] the PostgreSQL server refused: {escape(reason)}",
                          highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            # SQLite itself refused: a damaged file, a full disk, a lock held too long
            err.print(f"[bold red]error:[/] the gallery database cannot be used: {escape(str(e.orig))} "
                      "(run `forensics gallery check`; restore a damaged file from a backup)", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: everything committed before the interruption is kept.")
            raise typer.Exit(130) from None

    return wrapper


@contextmanager
def progress_bar(total: int, what: str, unit: str = "img"):
    columns = [TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal and total < 1) as prog:
        task = prog.add_task(what, total=total, rate="")
        t0 = time.perf_counter()

        def advance(n: int):
            prog.advance(task, n)
            done = prog.tasks[0].completed
            prog.update(task, rate=f"{done / max(time.perf_counter() - t0, 1e-9):.1f} {unit}/s")

        yield advance


@contextmanager
def lazy_progress_bar(what: str, unit: str = "img"):
    """A `progress(done, total)` callback that opens a progress bar on its first call (work whose
    size is known only once it starts, e.g. the round-trip vectors still to compute)."""
    with ExitStack() as stack:
        state: dict = {}

        def progress(done: int, total: int) -> None:
            if "advance" not in state:
                state["advance"], state["done"] = stack.enter_context(progress_bar(total, what, unit)), 0
            state["advance"](done - state["done"])
            state["done"] = done

        yield progress


def forensics_app(db: str, operator: Optional[str] = None, embedder: str = "dlib-resnet",
                  weights: Optional[Path] = None, face: str = "largest"):
    """The application object for this command (models load when first needed); `db` is read by
    `gallery.location.GalleryLocation.parse` (a file path or a PostgreSQL URL)."""
    from forensics.app import Forensics, ModelChoice

    return Forensics(db, ModelChoice(embedder, weights, face), operator)
