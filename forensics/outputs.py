"""Files a command writes, checked before any work is done and written with a clear error:
the extension is one the writer knows, the path is not a folder, its folder exists and can be
written (`check_output_file`); an error of the disk while writing names the file
(`output_errors`). Each error is a `ForensicsError` naming the option and the path."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from forensics.errors import ForensicsError


def check_extension(out: Path, option: str, extensions: Sequence[str]) -> Path:
    """`out`, whose extension (".png", any case) is one of `extensions`."""
    out = Path(out)
    if out.suffix.lower() not in extensions:
        raise ForensicsError(f"{option} {out}: the extension must be one of {', '.join(extensions)}")
    return out


def check_output_file(out: Path, option: str, extensions: Sequence[str] | None = None) -> Path:
    """`out`, once it is known that a file can be written there (see the module doc)."""
    out = Path(out).expanduser()
    if extensions is not None:
        check_extension(out, option, extensions)
    if out.is_dir():
        raise ForensicsError(f"{option} {out}: that is a folder; give a file name")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ForensicsError(f"{option} {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ForensicsError(f"{option} {out}: the folder {folder} is not writable")
    return out


def image_extensions() -> tuple[str, ...]:
    """The extensions of the image formats PIL can write (".png", ".jpg", ...), sorted."""
    from PIL import Image

    Image.init()
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE))


@contextmanager
def output_errors(out: Path, option: str) -> Iterator[None]:
    """An OSError while writing `out` (a full disk, a folder that cannot be made) becomes a
    ForensicsError naming it."""
    try:
        yield
    except OSError as e:
        raise ForensicsError(f"{option} {out}: cannot be written ({e.strerror or e})") from None


def output_format(fmt: str | None, out: Path, formats: Sequence[str], folder_default: str,
                  what: str = "report") -> str:
    """The format to write `out` (a `what`) in: `fmt` where given, else the one its extension
    names; into an existing folder (a file of default name goes in it) `folder_default`. Refused:
    a format not in `formats`, an extension that names another of `formats` than `fmt` (an HTML
    file named .pdf), an extension that names none of them when `fmt` is not given."""
    out = Path(out)
    ext = out.suffix.lower().lstrip(".")
    if fmt is None:
        if out.is_dir():
            return folder_default
        if ext not in formats:
            raise ForensicsError(f"--out {out}: the extension names no {what} format; end the file name in "
                                 f"{', '.join('.' + f for f in formats)}, or give --format")
        return ext
    fmt = fmt.lower()
    if fmt not in formats:
        raise ForensicsError(f"unknown {what} format {fmt!r}; use one of {', '.join(formats)}")
    if ext in formats and ext != fmt and not out.is_dir():
        raise ForensicsError(f"--format {fmt} but --out {out} ends in .{ext}: make them agree")
    return fmt
