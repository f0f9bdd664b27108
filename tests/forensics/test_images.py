"""Intake of input files: hashing, validation and mode conversion, with clear per-file errors."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from forensics.errors import InputImageError
from forensics.images import iter_image_files, load_image


def _jpeg_bytes(size=(120, 100), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="JPEG")
    return buf.getvalue()


def test_sha256_of_the_file_bytes(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(_jpeg_bytes())
    im = load_image(p)
    assert im.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert im.rgb.shape == (100, 120, 3) and im.rgb.dtype == np.uint8


@pytest.mark.parametrize(
    "name,content,fragment",
    [
        ("empty.jpg", b"", "empty"),
        ("text.jpg", b"this is not an image\n" * 10, "not an image"),
        ("truncated.jpg", _jpeg_bytes((400, 400))[:300], "truncated"),
        ("tiny.png", None, "too small"),
        ("huge.png", (30000, 30000), "too large"),
    ],
)
def test_bad_files_give_a_clear_error_naming_the_file(tmp_path, png_header, name, content, fragment):
    p = tmp_path / name
    if content is None:
        Image.new("RGB", (1, 1)).save(p)
    elif isinstance(content, tuple):  # a PNG header claiming these dimensions
        p.write_bytes(png_header(*content))
    else:
        p.write_bytes(content)
    with pytest.raises(InputImageError) as e:
        load_image(p)
    assert str(p) in str(e.value)
    assert fragment in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "CMYK", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    arr = (np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8)
    img = Image.fromarray(arr, "L")
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 256)  # 16-bit greyscale
        assert img.mode.startswith("I;16")
    else:
        img = img.convert(mode)
    p = tmp_path / f"x_{mode.replace(';', '')}.png" if mode != "CMYK" else tmp_path / "x.jpg"
    img.save(p)
    im = load_image(p)
    assert im.rgb.shape == (64, 64, 3) and im.rgb.dtype == np.uint8
    assert im.original_mode == img.mode


def test_transparency_is_composited_on_white(tmp_path):
    p = tmp_path / "t.png"
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(p)
    assert load_image(p).rgb.min() == 255


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes())
    assert load_image(p).rgb.shape[:2] == (80, 40)


def test_folder_listing_keeps_broken_entries(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(_jpeg_bytes())
    (tmp_path / "a" / "notes.txt").write_text("skip me")
    (tmp_path / "a" / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    files = iter_image_files([tmp_path])
    assert [f.name for f in files] == ["dangling.jpg", "x.jpg"]


def test_chip_png_is_lossless_and_readable_by_pil():
    from forensics.images import png_bytes, png_to_array

    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(0, 3, (150, 150, 3)), axis=0).astype(np.uint8)  # rows wrap around 255
    for arr in (smooth, rng.integers(0, 256, (7, 5, 3), dtype=np.uint8), np.zeros((1, 1, 3), np.uint8)):
        data = png_bytes(arr)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", arr.shape[1::-1])
        np.testing.assert_array_equal(png_to_array(data), arr)
    grey = rng.integers(0, 256, (9, 4), dtype=np.uint8)  # other arrays go through PIL
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(grey)))), grey)


def test_a_truncated_file_is_refused_even_when_another_library_allows_them(tmp_path, monkeypatch):
    """weasyprint (PDF reports) sets PIL's LOAD_TRUNCATED_IMAGES process-wide on import."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _jpeg_bytes(size=(200, 200))
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as it was


def test_an_image_over_pils_warning_size_is_refused_without_a_warning(tmp_path, png_header):
    """12000x12000 pixels is over PIL's decompression-bomb warning (89 megapixels) but under its
    error: the refusal is the tool's own clear error, and nothing is printed beside it."""
    import warnings

    p = tmp_path / "big.png"
    p.write_bytes(png_header(12000, 12000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputImageError, match=r"big.png: is too large \(12000x12000 pixels"):
            load_image(p)
