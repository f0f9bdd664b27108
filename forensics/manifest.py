"""What to enroll: `EnrollItem`s from files and folders or a CSV manifest, checked as a whole.

Everything is checked before the first image is enrolled, so a bad input is one clear error
naming the file, the line and the field, and nothing is half done:

* the manifest is UTF-8 CSV with a `path,subject_id` header and no field over `MAX_FIELD` chars;
* ids, names and sex fit their columns (`LIMITS`) and hold no control characters (a NUL or an
  escape in an id makes a subject impossible to show or remove);
* `birth_year` is a whole number in `BIRTH_YEARS`;
* one subject id has one name, sex and birth year across the input, and the same as in the
  gallery unless updating subjects is asked for (`--update-subjects`);
* a file listed twice belongs to one subject.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gallery.records import SubjectInfo

from forensics.errors import ForensicsError
from forensics.images import iter_image_files

SUBJECT_FROM = ("dir", "stem")
MANIFEST_FIELDS = ("path", "subject_id", "name", "sex", "birth_year")
#: Longest text accepted in each field (the gallery's column sizes); other columns: `MAX_META`.
LIMITS = {"subject_id": 200, "name": 400, "sex": 20, "path": 4096, "source": 200}
MAX_META = 1000
#: Longest field the CSV reader accepts at all (anything longer is refused with its line).
MAX_FIELD = 8192
BIRTH_YEARS = range(1850, _dt.date.today().year + 1)
#: The subject fields that must agree wherever a subject id appears.
SUBJECT_KEYS = ("name", "sex", "birth_year")


@dataclass
class EnrollItem:
    """One file to enroll and the subject it belongs to; `where` names its origin in messages
    (`manifest.csv, line 3`, or the file itself)."""

    path: Path
    subject_id: str
    name: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    meta: dict = field(default_factory=dict)
    where: str = ""

    def origin(self) -> str:
        return self.where or str(self.path)


def _control_char(text: str) -> str | None:
    """The first control character in `text`, described, or None."""
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"a control character (U+{ord(ch):04X}) at position {i + 1}"
    return None


def check_text(where: str, name: str, value: str | None, limit: int) -> None:
    """`value` (of field `name`) fits in `limit` characters and holds no control character."""
    if value is None:
        return
    if len(value) > limit:
        raise ForensicsError(f"{where}: field {name!r} is {len(value):,} characters long (at most {limit:,})")
    bad = _control_char(value)
    if bad:
        raise ForensicsError(f"{where}: field {name!r} contains {bad}")


def _birth_year(where: str, text: str) -> int | None:
    if not text:
        return None
    try:
        year = int(text)
    except ValueError:
        raise ForensicsError(f"{where}: field 'birth_year' {text[:40]!r} is not a year") from None
    if year not in BIRTH_YEARS:
        raise ForensicsError(f"{where}: field 'birth_year' {year} is out of range "
                             f"({BIRTH_YEARS.start}..{BIRTH_YEARS.stop - 1})")
    return year


def check_item(it: EnrollItem) -> EnrollItem:
    """`it`, its fields checked (sizes, control characters); raises a ForensicsError naming it."""
    where = it.origin()
    check_text(where, "subject_id", it.subject_id, LIMITS["subject_id"])
    if not it.subject_id.strip():
        raise ForensicsError(f"{where}: field 'subject_id' is empty")
    check_text(where, "name", it.name, LIMITS["name"])
    check_text(where, "sex", it.sex, LIMITS["sex"])
    check_text(where, "path", str(it.path), LIMITS["path"])
    for k, v in it.meta.items():
        check_text(where, "column name", k, LIMITS["subject_id"])
        check_text(where, k, v, MAX_META)
    return it


# -- reading -------------------------------------------------------------------------------------


def items_from_paths(paths: list[Path], subject_from: str = "dir") -> list[EnrollItem]:
    """Files and folders (recursive): the subject is the parent folder's name or the file stem."""
    if subject_from not in SUBJECT_FROM:
        raise ForensicsError(f"--subject-from must be one of {', '.join(SUBJECT_FROM)}, not {subject_from!r}")
    files = iter_image_files([Path(p) for p in paths])
    return [check_item(EnrollItem(f, f.parent.name if subject_from == "dir" else f.stem)) for f in files]


def _manifest_text(manifest: Path) -> str:
    """The manifest's text; a clear error naming the line of the first byte that is not UTF-8."""
    data = manifest.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ForensicsError(f"{manifest}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start}); save the manifest as UTF-8 CSV") from None


def _item(manifest: Path, line: int, row: dict) -> EnrollItem:
    where = f"{manifest}, line {line}"
    if None in row:
        raise ForensicsError(f"{where}: more fields than the header has columns")
    if (row.get("") or "").strip():
        raise ForensicsError(f"{where}: a value {row[''][:40]!r} under a column with no name in the header")
    if not (row.get("path") or "").strip() or not (row.get("subject_id") or "").strip():
        raise ForensicsError(f"{where}: empty path or subject_id")
    p = Path(row["path"].strip())
    return check_item(EnrollItem(
        path=p if p.is_absolute() else manifest.parent / p,
        subject_id=row["subject_id"].strip(),
        name=(row.get("name") or "").strip() or None,
        sex=(row.get("sex") or "").strip() or None,
        birth_year=_birth_year(where, (row.get("birth_year") or "").strip()),
        meta={k: v for k, v in row.items() if k not in MANIFEST_FIELDS and k and v not in (None, "")},
        where=where,
    ))


def items_from_manifest(manifest: Path) -> list[EnrollItem]:
    """A CSV with columns `path,subject_id[,name,sex,birth_year,...]`; other columns go to metadata.

    Relative paths are taken relative to the manifest's folder. Every row is checked (see the
    module) and the rows against each other (`check_consistent`).
    """
    manifest = Path(manifest)
    if manifest.is_dir():
        raise ForensicsError(f"{manifest}: is a folder, not a CSV manifest")
    if not manifest.is_file():
        raise ForensicsError(f"{manifest}: manifest not found")
    lines = _CountedLines(_manifest_text(manifest))
    reader = csv.DictReader(lines)
    old_limit = csv.field_size_limit(MAX_FIELD)
    try:
        _check_header(manifest, reader.fieldnames or [])
        items = [_item(manifest, reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ForensicsError(f"{manifest}, line {lines.n}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(old_limit)
    if not items:
        raise ForensicsError(f"{manifest}: no rows under the header, nothing to enroll")
    return check_consistent(items)


def _check_header(manifest: Path, columns: list[str]) -> None:
    """The header names path and subject_id, and no column twice (a row would keep only the
    last of its values)."""
    missing = {"path", "subject_id"} - set(columns)
    if missing:
        raise ForensicsError(f"{manifest}, line 1: missing column(s) {', '.join(sorted(missing))}; "
                             "the header must start with path,subject_id")
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if twice:
        raise ForensicsError(f"{manifest}, line 1: column(s) {', '.join(map(repr, twice))} named more than once "
                             "in the header")


class _CountedLines:
    """The lines of a text, counting how many were handed out (the line a CSV error is on)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.n = 0

    def __iter__(self) -> "_CountedLines":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.n += 1
        return line


# -- across items, and against the gallery -------------------------------------------------------


def _fields(it: EnrollItem) -> dict:
    return {k: getattr(it, k) for k in SUBJECT_KEYS if getattr(it, k) is not None}


def check_consistent(items: list[EnrollItem]) -> list[EnrollItem]:
    """`items`, refused when one subject id comes with different names (sex, birth year), or one
    file with different subjects."""
    first: dict[str, EnrollItem] = {}
    owner: dict[str, EnrollItem] = {}
    for it in items:
        seen = first.setdefault(it.subject_id, it)
        a, b = _fields(seen), _fields(it)
        clash = next((k for k in SUBJECT_KEYS if k in a and k in b and a[k] != b[k]), None)
        if clash:
            raise ForensicsError(f"{it.origin()}: subject {it.subject_id!r} has {clash} {b[clash]!r}, but "
                                 f"{seen.origin()} gives it {a[clash]!r}; one subject id is one person")
        key = str(Path(it.path).absolute())
        other = owner.setdefault(key, it)
        if other.subject_id != it.subject_id:
            raise ForensicsError(f"{it.origin()}: file {it.path} is listed for subject {it.subject_id!r}, but "
                                 f"{other.origin()} lists it for {other.subject_id!r}")
    return items


def check_against_gallery(items: list[EnrollItem], stored: Callable[[str], SubjectInfo | None],
                          update_subjects: bool) -> None:
    """Refuse an item that would change a stored subject's name, sex or birth year, unless
    `update_subjects` (then the change is made, and sealed in the audit log by its batch)."""
    if update_subjects:
        return
    for it in {it.subject_id: it for it in reversed(items)}.values():
        have = stored(it.subject_id)
        if have is None:
            continue
        for k, v in _fields(it).items():
            if getattr(have, k) is not None and getattr(have, k) != v:
                raise ForensicsError(
                    f"{it.origin()}: subject {it.subject_id!r} is stored with {k} {getattr(have, k)!r}, not "
                    f"{v!r}; pass --update-subjects to change it (the change is audit-logged)")


__all__ = ["EnrollItem", "check_against_gallery", "check_consistent", "check_item", "check_text",
           "items_from_manifest", "items_from_paths"]
