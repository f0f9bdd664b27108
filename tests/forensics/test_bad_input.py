"""The bad-input corpus: every kind of bad input, generated here, is a clear error that names the
file, line or field, and leaves the gallery as it was (`gallery check` and `audit verify` pass,
the counts are equal). A photo with five faces is not an error: photo search uses the largest.

Each case builds its input in a folder, runs one command on a copy of a small enrolled gallery
and says the exit code and a fragment of the message it expects.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from forensics.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def gallery_state(db: Path) -> tuple[int, int, int, int]:
    """(subjects, images, embeddings, queries) of the gallery at `db`."""
    from gallery.db import open_gallery

    g = open_gallery(db, create=False)
    try:
        repo = g.repository()
        return repo.count_subjects(), repo.count_images(), repo.count_embeddings(), repo.count_queries()
    finally:
        g.close()


@pytest.fixture(scope="module")
def base_gallery(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    """A gallery of two LFW people (two photos each), enrolled with the CLI; and one LFW photo."""
    root = tmp_path_factory.mktemp("base")
    rows = [[str(f), person, person.replace("_", " "), ""] for person in ("Aaron_Peirsol", "Abdullah_Gul")
            for f in sorted((data_dir / "lfw" / "deepfunneled_250" / person).glob("*.jpg"))[:2]]
    db = root / "g.db"
    res = run("enroll", "--manifest", _manifest(root, rows), "--db", db, "--workers", 0)
    assert res.exit_code == 0, res.output
    photo = sorted((data_dir / "lfw" / "deepfunneled_250" / "Al_Gore").glob("*.jpg"))[0]
    return db, photo


# --------------------------------------------------------------------------------------------
# Builders: each writes its input under `d` and returns the command's arguments (without --db)
# --------------------------------------------------------------------------------------------


def _manifest(d: Path, rows: list[list[str]], header=("path", "subject_id", "name", "birth_year"),
              encoding="utf-8") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    m = d / "m.csv"
    m.write_bytes(buf.getvalue().encode(encoding, errors="surrogateescape"))
    return m


def _image(d: Path, name: str, save: Callable[[Path], None]) -> Path:
    p = d / name
    save(p)
    return p


def _blank(mode="RGB", size=(200, 240), colour=255):
    return Image.new(mode, size, colour if mode not in ("RGB", "RGBA") else (colour,) * len(mode))


def _noise(size=(200, 240)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _enroll_file(d: Path, p: Path) -> list:
    return ["enroll", "--manifest", _manifest(d, [[str(p), "NEW-1", "", ""]])]


def _png(w: int, h: int, idat: bytes) -> bytes:
    """A greyscale PNG of w x h pixels with the given compressed pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _png_bomb(p: Path) -> None:
    """A real PNG: 7000x7000 grey pixels in a few KB (decoding it would take 49 MB)."""
    p.write_bytes(_png(7000, 7000, zlib.compress(b"\0" * (7001 * 7000), 9)))


def _five_faces(photo: Path) -> Callable[[Path], None]:
    def save(p: Path) -> None:
        face = Image.open(photo).convert("RGB").resize((120, 120))
        sheet = Image.new("RGB", (600, 120), "white")
        for i in range(5):
            sheet.paste(face, (i * 120, 0))
        sheet.save(p)
    return save


def _exif_rotated(p: Path) -> None:
    img = _noise()
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(p, "JPEG", exif=exif)


def _animated_gif(p: Path) -> None:
    _blank().save(p, save_all=True, append_images=[_blank(colour=250)], duration=100, loop=0)


def _multipage_tiff(p: Path) -> None:
    _blank().save(p, save_all=True, append_images=[_blank(colour=250)])


def _palette_alpha(p: Path) -> None:
    img = _blank().convert("P")
    img.info["transparency"] = 0
    img.save(p, transparency=0)


def _sixteen_bit(p: Path) -> None:
    Image.fromarray((np.arange(200 * 240).reshape(240, 200) % 65535).astype(np.uint16)).save(p)


def _symlink_loop(d: Path) -> Path:
    a, b = d / "a.jpg", d / "b.jpg"
    os.symlink(b, a)
    os.symlink(a, b)
    return a


def _fifo(d: Path) -> Path:
    p = d / "pipe.jpg"
    os.mkfifo(p)
    return p


@dataclass(frozen=True)
class Case:
    """One bad input: `build(d, photo)` writes it and returns the command's arguments; the
    command must exit with `code` and print `message` (a fragment naming the file/line/field)."""

    build: Callable[[Path, Path], list]
    code: int
    message: str


def _file_case(save: Callable[[Path], None], name: str, message: str) -> Case:
    return Case(lambda d, photo: _enroll_file(d, _image(d, name, save)), 1, message)


CASES: dict[str, Case] = {
    # -- manifests: refused before anything is enrolled
    "manifest not UTF-8": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "Ren\udce9", ""]])], 2, "line 2: not UTF-8"),
    "field of 200,000 characters": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "n" * 200_000, ""]])], 2, "line 2: not valid CSV"),
    "name too long": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "n" * 5000, ""]])], 2, "line 2: field 'name' is 5,000 characters long"),
    "subject id too long": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X" * 201, "", ""]])], 2, "line 2: field 'subject_id' is 201 characters long"),
    "birth year over 2^63": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "", str(2**64)]])], 2, "line 2: field 'birth_year' 18446744073709551616 is out of range"),
    "birth year not a number": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "", "abc"]])], 2, "line 2: field 'birth_year' 'abc' is not a year"),
    "NUL in a subject id": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X\x001", "", ""]])], 2, "line 2"),
    "escape character in a name": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "A\x1b[31mB", ""]])], 2, "field 'name' contains a control character (U+001B)"),
    "one subject id, two names": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "Ann", ""], [str(d / "other.jpg"), "X-1", "Bob", ""]])], 2,
        "line 3: subject 'X-1' has name 'Bob'"),
    "one file, two subjects": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "", ""], [str(p), "X-2", "", ""]])], 2, "line 3: file"),
    "stored subject renamed without --update-subjects": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "Aaron_Peirsol", "Someone Else", ""]])], 2, "pass --update-subjects"),
    "missing subject_id column": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p)]], header=("path",))], 2, "missing column(s) subject_id"),
    "empty subject id": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "", "", ""]])], 2, "line 2: empty path or subject_id"),
    "column named twice": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "X-2"]], header=("path", "subject_id", "subject_id"))], 2,
        "line 1: column(s) 'subject_id' named more than once"),
    "a value under a column with no name": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "Ann"]], header=("path", "subject_id", ""))], 2,
        "line 2: a value 'Ann' under a column with no name"),
    "manifest with a header and no rows": Case(lambda d, p: ["enroll", "--manifest", _manifest(d, [])], 2,
                                               "m.csv: no rows under the header, nothing to enroll"),
    "manifest that is a folder": Case(lambda d, p: ["enroll", "--manifest", _mkdir(d / "m.csv")], 2,
                                      "m.csv: is a folder, not a CSV manifest"),
    "unknown --face": Case(lambda d, p: ["enroll", str(p), "--face", "biggest"], 2,
                           "--face must be one of largest, central, not 'biggest'"),
    "unknown --face for search": Case(lambda d, p: ["search", str(p), "--face", "biggest"], 2,
                                      "--face must be one of largest, central, not 'biggest'"),
    "unknown --embedder": Case(lambda d, p: ["enroll", str(p), "--embedder", "arcface"], 2,
                               "unknown embedder 'arcface'"),
    "more fields than columns": Case(lambda d, p: ["enroll", "--manifest", _manifest(
        d, [[str(p), "X-1", "", "", "extra"]])], 2, "line 2: more fields than the header"),
    "--source too long": Case(lambda d, p: ["enroll", str(p), "--source", "s" * 300], 2, "field 'source'"),
    # -- image files: each refused with its name, nothing of it written
    "zero bytes": _file_case(lambda p: p.write_bytes(b""), "empty.jpg", "file is empty (0 bytes)"),
    "truncated JPEG": Case(lambda d, p: _enroll_file(d, _image(d, "cut.jpg", lambda q: q.write_bytes(
        p.read_bytes()[: len(p.read_bytes()) // 2]))), 1, "cut.jpg"),
    "text as .jpg": _file_case(lambda p: p.write_text("not an image\n"), "text.jpg", "is not an image PIL can read"),
    "1x1 image": _file_case(lambda p: _blank(size=(1, 1)).save(p), "dot.png", "is too small (1x1 pixels)"),
    "30000x30000 header": _file_case(lambda p: p.write_bytes(_png(30000, 30000, zlib.compress(b"\0" * 16))),
                                     "huge.png", "huge.png"),
    "12000x12000 header (over PIL's warning size)": _file_case(
        lambda p: p.write_bytes(_png(12000, 12000, zlib.compress(b"\0" * 16))), "big.png",
        "big.png: is too large (12000x12000 pixels, limit 40 megapixels)"),
    "decompression bomb": _file_case(_png_bomb, "bomb.png", "bomb.png"),
    "CMYK": _file_case(lambda p: _blank("CMYK", colour=0).save(p, "JPEG"), "cmyk.jpg", "cmyk.jpg: no face found"),
    "16-bit": _file_case(_sixteen_bit, "deep.png", "deep.png: no face found"),
    "palette with alpha": _file_case(_palette_alpha, "palette.png", "palette.png: no face found"),
    "animated GIF": _file_case(_animated_gif, "anim.gif", "anim.gif: no face found"),
    "WebP": _file_case(lambda p: _noise().save(p, "WEBP"), "x.webp", "x.webp: no face found"),
    "multi-page TIFF": _file_case(_multipage_tiff, "pages.tif", "pages.tif: no face found"),
    "BMP": _file_case(lambda p: _noise().save(p, "BMP"), "x.bmp", "x.bmp: no face found"),
    "SVG": _file_case(lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>'), "x.svg",
                      "x.svg: is not an image PIL can read"),
    "EXIF rotation": _file_case(_exif_rotated, "rot.jpg", "rot.jpg: no face found"),
    "FIFO": Case(lambda d, p: _enroll_file(d, _fifo(d)), 1, "pipe.jpg: file is empty"),
    "symlink loop": Case(lambda d, p: _enroll_file(d, _symlink_loop(d)), 1, "a.jpg"),
    "directory named .jpg": Case(lambda d, p: _enroll_file(d, _mkdir(d / "folder.jpg")), 1,
                                 "folder.jpg: is a folder"),
    "file vanished before it was read": Case(lambda d, p: _enroll_file(d, d / "gone.jpg"), 1,
                                             "gone.jpg: file not found"),
    "no face": _file_case(lambda p: _noise().save(p), "noise.png", "noise.png: no face found"),
    "blank page": _file_case(lambda p: _blank().save(p), "blank.png", "blank.png: no face found"),
    "five faces (photo search: the largest is used)": Case(
        lambda d, p: ["search", _image(d, "five.png", _five_faces(p)), "--json"], 0, "five.png"),
    "one sketch given twice (a copy)": Case(lambda d, p: ["query", p, _copy(p, d / "copy.jpg"), "--mode", "raw"], 2,
                                            "copy.jpg: the same sketch as"),
    "case id with a line break": Case(lambda d, p: ["query", p, "--mode", "raw", "--case", "C-17\nC-18"], 2,
                                      "--case: field 'case id' contains a control character (U+000A)"),
    "case id too long": Case(lambda d, p: ["query", p, "--mode", "raw", "--case", "C" * 201], 2,
                             "--case: field 'case id' is 201 characters long"),
    "operator with an escape character": Case(lambda d, p: ["enroll", str(p), "--operator", "j\x1b[2Jdoe"], 2,
                                              "--operator: field 'operator' contains a control character (U+001B)"),
    # -- options and output files
    "gallery list --limit -1": Case(lambda d, p: ["gallery", "list", "--limit", -1], 2,
                                    "--limit must be at least 1, not -1"),
    "gallery list --offset -5": Case(lambda d, p: ["gallery", "list", "--offset", -5], 2,
                                     "--offset must be at least 0, not -5"),
    "queries list --limit 0": Case(lambda d, p: ["queries", "list", "--limit", 0], 2,
                                   "--limit must be at least 1, not 0"),
    "audit export into a missing folder": Case(lambda d, p: ["audit", "export", "-o", d / "no" / "a.jsonl"], 2,
                                               "a.jsonl: the folder"),
    "audit export onto a folder": Case(lambda d, p: ["audit", "export", "-o", d], 2, "that is a folder"),
    # -- the database and its index files
    "zero-byte database": Case(lambda d, p: ["enroll", str(p), "--db", _touch(d / "empty.db")], 2,
                               "empty (zero-byte) file"),
    "text file as database": Case(lambda d, p: ["enroll", str(p), "--db", _text(d / "notes.db")], 2,
                                  "is not a SQLite database"),
    "another application's SQLite file": Case(lambda d, p: ["enroll", str(p), "--db", _other_sqlite(d / "o.db")],
                                              2, "not a forensics gallery"),
    "new gallery beside another gallery's index": Case(
        lambda d, p: ["enroll", str(p), "--db", _foreign_index(d / "new.db")], 2, "was built from another gallery"),
}

#: Cases that name their own --db (the shared gallery is not touched by them).
OWN_DB = {"zero-byte database", "text file as database", "another application's SQLite file",
          "new gallery beside another gallery's index"}


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


def _copy(src: Path, p: Path) -> Path:
    p.write_bytes(src.read_bytes())
    return p


def _touch(p: Path) -> Path:
    p.write_bytes(b"")
    p.with_suffix(".faiss").write_bytes(b"an index this command did not build")
    return p


def _text(p: Path) -> Path:
    p.write_text("case notes\n")
    return p


def _other_sqlite(p: Path) -> Path:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    return p


def _foreign_index(p: Path) -> Path:
    p.with_suffix(".faiss").write_bytes(b"an index this command did not build")
    return p


def test_the_corpus_has_at_least_30_kinds():
    assert len(CASES) >= 30


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_is_a_clear_error_and_the_gallery_is_unchanged(kind, base_gallery, copy_gallery, tmp_path):
    base, photo = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    before = gallery_state(db)
    d = tmp_path / "input"
    d.mkdir()
    args = CASES[kind].build(d, photo)
    own = [a for a in args if isinstance(a, Path) and a.suffix == ".db"]
    snapshot = {p: p.read_bytes() for p in d.glob("*") if p.is_file() and not p.is_fifo()} if own else {}
    workers = ["--workers", 0] if args[0] == "enroll" else []
    res = run(*args) if kind in OWN_DB else run(*args, "--db", db, *workers)
    out = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == CASES[kind].code, res.output
    assert CASES[kind].message in out, res.output
    assert "Traceback" not in res.output
    for p, data in snapshot.items():  # the files given as a database, and beside it, untouched
        assert p.read_bytes() == data, p
    assert gallery_state(db) == before
    assert run("gallery", "check", "--db", db).exit_code == 0
    verified = run("audit", "verify", "--db", db)
    assert verified.exit_code == 0 and "match their sealed audit events" in verified.output, verified.output


NO_GALLERY: dict[str, Case] = {
    "sketchify: unknown style": Case(lambda d, p: ["sketchify", p, "--style", "crayon", "-o", d / "s.png"], 2,
                                     "unknown sketch style 'crayon'; choose one of line, pencil"),
    "sketchify: photo not found": Case(lambda d, p: ["sketchify", d / "none.jpg", "-o", d / "s.png"], 2,
                                       "none.jpg: file not found"),
    "sketchify: text as photo": Case(lambda d, p: ["sketchify", _image(d, "t.jpg", lambda q: q.write_text("x")),
                                                   "-o", d / "s.png"], 2, "t.jpg: is not an image PIL can read"),
    "sketchify: unknown output extension": Case(lambda d, p: ["sketchify", p, "-o", d / "s.xyz"], 2,
                                                "--out " + "{d}/s.xyz: the extension must be one of"),
    "sketchify: output folder cannot be made": Case(lambda d, p: ["sketchify", p, "-o", _text(d / "f") / "s.png"],
                                                    2, "--out {d}/f/s.png: cannot be written"),
    "invert: unknown output extension": Case(lambda d, p: ["invert", p, "-o", d / "s.xyz"], 2,
                                             "--out {d}/s.xyz: the extension must be one of"),
    "invert: unknown --face": Case(lambda d, p: ["invert", p, "-o", d / "s.png", "--face", "left"], 2,
                                   "--face must be one of largest, central, not 'left'"),
}


@pytest.mark.parametrize("kind", sorted(NO_GALLERY))
def test_commands_without_a_gallery_refuse_bad_input_clearly(kind, base_gallery, tmp_path):
    """sketchify and invert: a clear error naming the file or option, exit 2, nothing written."""
    _, photo = base_gallery
    args = NO_GALLERY[kind].build(tmp_path, photo)
    before = sorted(tmp_path.rglob("*"))
    res = run(*args)
    out = " ".join(res.output.split())
    assert res.exit_code == NO_GALLERY[kind].code, res.output
    assert NO_GALLERY[kind].message.format(d=tmp_path) in out, res.output
    assert "Traceback" not in res.output
    assert sorted(tmp_path.rglob("*")) == before


def test_index_files_that_cannot_be_trusted_are_named(base_gallery, copy_gallery, tmp_path):
    """A sidecar with `count: "abc"` is reported by `gallery check` naming the field; a `.faiss`
    that is a directory is a clear error for search, and the database is left as it was."""
    import json

    base, photo = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    before = gallery_state(db)
    run("gallery", "rebuild-index", "--db", db)
    side = db.with_suffix(".faiss.json")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "count": "abc"}))
    res = run("gallery", "check", "--db", db)
    assert res.exit_code == 1 and "field 'count'" in " ".join(res.output.split()), res.output
    side.unlink()
    db.with_suffix(".faiss").unlink()
    db.with_suffix(".faiss").mkdir()
    res = run("search", photo, "--db", db)
    assert res.exit_code == 2 and "is a directory" in " ".join(res.output.split()), res.output
    assert gallery_state(db) == before
    assert run("audit", "verify", "--db", db).exit_code == 0


def test_markup_in_ids_and_names_is_printed_as_text(base_gallery, copy_gallery, tmp_path):
    """Rich console markup in a subject id or name is shown literally everywhere, errors included."""
    base, photo = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    d = tmp_path / "in"
    d.mkdir()
    res = run("enroll", "--manifest", _manifest(d, [[str(photo), "[/]id[bold]", "[red]Name[/red]", ""]]),
              "--db", db, "--workers", 0)
    assert res.exit_code == 0, res.output
    assert "[/]id[bold]" in run("gallery", "list", "--db", db).output
    shown = run("gallery", "show", "[/]id[bold]", "--db", db).output
    assert "[/]id[bold]" in shown and "[red]Name[/red]" in shown
    res = run("gallery", "show", "[/]missing[bold]", "--db", db)
    assert res.exit_code == 2 and "[/]missing[bold]" in res.output


def test_exported_csv_neutralises_formulas(base_gallery, copy_gallery, tmp_path):
    base, _ = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    assert run("gallery", "check", "--db", db, "--operator", "=cmd|' /C calc'!A0").exit_code == 0
    out = tmp_path / "audit.csv"
    assert run("audit", "export", "--format", "csv", "-o", out, "--db", db).exit_code == 0
    rows = list(csv.reader(out.open(encoding="utf-8")))
    actors = [r[2] for r in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in actors and not any(a.startswith("=") for a in actors)


def test_a_damaged_page_is_reported_by_gallery_check(base_gallery, copy_gallery, tmp_path):
    """4 KB of random bytes over a page of the database: SQLite's integrity check fails and
    `gallery check` says so (exit 1); other commands give a clear error, not a traceback."""
    base, _ = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    data = bytearray(db.read_bytes())
    page = 4096 * (len(data) // 4096 // 2)
    data[page:page + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    res = run("gallery", "check", "--db", db)
    assert res.exit_code == 1 and "integrity" in res.output and "damaged" in res.output, res.output
    for cmd in (["audit", "verify"], ["gallery", "list"]):
        res = run(*cmd, "--db", db)
        assert "Traceback" not in res.output and res.exit_code in (0, 1, 2), res.output


def test_update_subjects_changes_a_stored_name_and_the_change_is_sealed(base_gallery, copy_gallery, tmp_path):
    base, photo = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    d = tmp_path / "in"
    d.mkdir()
    m = _manifest(d, [[str(photo), "Aaron_Peirsol", "Aaron P.", ""]])
    res = run("enroll", "--manifest", m, "--update-subjects", "--db", db, "--workers", 0)
    assert res.exit_code == 0, res.output
    assert "Aaron P." in run("gallery", "show", "Aaron_Peirsol", "--db", db).output
    assert run("audit", "verify", "--db", db).exit_code == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE subjects SET name='Aaron Peirsol' WHERE external_id='Aaron_Peirsol'")  # undone by hand
    con.commit()
    con.close()
    res = run("audit", "verify", "--db", db)
    assert res.exit_code == 1 and "1 subjects changed since their audit event" in res.output, res.output


def test_report_output_is_checked_and_its_format_agrees_with_its_name(base_gallery, copy_gallery, tmp_path):
    """`report`: the format follows the extension of --out unless --format is given, and the two
    must agree; a file that cannot be written is a clear error naming it, nothing half written."""
    import json

    base, photo = base_gallery
    db = copy_gallery(base, tmp_path / "g.db")
    uid = json.loads(run("query", photo, "--mode", "raw", "--json", "--db", db).stdout)["query_id"]
    before = gallery_state(db)
    d = tmp_path / "out"
    d.mkdir()
    refused = {("-o", "/proc/r.html"): "--out /proc/r.html: cannot be written",
               ("-o", d / "no" / "r.html"): "r.html: the folder",
               ("-f", "pdf", "-o", d / "r.html"): "--format pdf but --out",
               ("-o", d / "r.out"): "r.out: the extension names no report format",
               ("-f", "docx", "-o", d / "r.docx"): "unknown report format 'docx'"}
    for args, message in refused.items():
        res = run("report", uid, *args, "--db", db)
        assert res.exit_code == 2 and message in " ".join(res.output.split()), (args, res.output)
    res = run("report", "--case", "C-1", "-o", d, "--db", db)
    assert res.exit_code == 2 and "that is a folder" in " ".join(res.output.split()), res.output
    assert list(d.iterdir()) == []
    assert gallery_state(db) == before
    assert run("report", uid, "-o", d / "r.json", "--db", db).exit_code == 0  # JSON, from the name
    assert json.loads((d / "r.json").read_text(encoding="utf-8"))["query"]["query_uid"] == uid
    assert run("audit", "verify", "--db", db).exit_code == 0
