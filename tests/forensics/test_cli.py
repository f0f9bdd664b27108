"""End-to-end tests through the real CLI on real LFW photos (from ../shared/data)."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from PIL import Image

from forensics.testing import run_cli as run


def counts(db):
    from gallery.db import open_gallery

    repo = open_gallery(db, create=False).repository()
    return repo.count_subjects(), repo.count_images(), repo.count_embeddings()


@pytest.fixture()
def enrolled(tmp_path, small_gallery_dir):
    db = tmp_path / "g.db"
    res = run("enroll", small_gallery_dir, "--db", db)
    assert "enrolled 10" in res.output
    return db


@pytest.fixture()
def enrolled_on_each_backend(gallery_url, small_gallery_dir):
    """The small gallery enrolled through the CLI into a SQLite file, then a PostgreSQL database."""
    res = run("enroll", small_gallery_dir, "--db", gallery_url)
    assert "enrolled 10" in res.output
    return gallery_url


def test_enroll_then_duplicates_are_skipped(enrolled_on_each_backend, small_gallery_dir):
    db = enrolled_on_each_backend
    assert counts(db) == (5, 10, 10)
    res = run("enroll", small_gallery_dir, "--db", db)
    assert "enrolled 0, duplicates skipped 10" in res.output
    assert counts(db) == (5, 10, 10)
    assert "intact" in run("audit", "verify", "--db", db).output


def test_search_finds_the_person_with_an_unseen_photo(enrolled, data_dir):
    probe = sorted((data_dir / "lfw" / "deepfunneled_250" / "Al_Gore").glob("*.jpg"))[2]
    res = run("search", probe, "--top", 3, "--json", "--db", enrolled)
    out = json.loads(res.stdout)
    assert out["candidates"][0]["subject_id"] == "Al_Gore"
    assert len(out["candidates"]) == 3
    assert len(out["candidates"][0]["image_sha256"]) == 64
    assert out["embedder"].startswith("dlib-resnet@v1")


@pytest.mark.slow
def test_bad_files_are_listed_and_the_rest_enrolled(tmp_path, data_dir, png_header):
    folder = tmp_path / "batch" / "someone"
    folder.mkdir(parents=True)
    shutil.copy(data_dir / "lfw" / "deepfunneled_250" / "Al_Gore" / "Al_Gore_0001.jpg", folder / "good.jpg")
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image at all")
    buf = io.BytesIO()
    Image.open(data_dir / "lfw" / "deepfunneled_250" / "Al_Gore" / "Al_Gore_0002.jpg").save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    Image.new("RGB", (1, 1)).save(folder / "one_pixel.png")
    Image.new("RGB", (300, 300), (200, 180, 160)).save(folder / "no_face.png")
    (folder / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
    (folder / "huge.png").write_bytes(png_header(30000, 30000))
    db = tmp_path / "g.db"
    res = run("enroll", tmp_path / "batch", "--db", db, "--workers", 2, ok=False)  # failures come back from workers
    assert res.exit_code == 1
    for name in ("zero.jpg", "text.jpg", "truncated.jpg", "one_pixel.png", "no_face.png", "dangling.jpg", "huge.png"):
        assert name in res.output, name
    assert "enrolled 1" in res.output and "failed 7" in res.output
    assert counts(db) == (1, 1, 1)
    assert run("gallery", "check", "--db", db).exit_code == 0
    assert "intact" in run("audit", "verify", "--db", db).output


def test_manifest_enroll_and_metadata(tmp_path, data_dir):
    lfw = data_dir / "lfw" / "deepfunneled_250"
    m = tmp_path / "m.csv"
    with open(m, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "sex", "birth_year", "booking"])
        w.writerow([lfw / "Al_Gore" / "Al_Gore_0001.jpg", "S-1", "Albert Gore", "M", "1948", "B77"])
    db = tmp_path / "g.db"
    run("enroll", "--manifest", m, "--db", db)
    res = run("gallery", "show", "S-1", "--db", db)
    assert "Albert Gore" in res.output and "B77" in res.output and "1948" in res.output


def test_evaluate_writes_one_line_per_probe_in_order(enrolled, data_dir, tmp_path):
    lfw = data_dir / "lfw" / "deepfunneled_250"
    probes = tmp_path / "probes.csv"
    rows = [(sorted((lfw / p).glob("*.jpg"))[2], p) for p in ("Al_Gore", "Alejandro_Toledo")]
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    rows.insert(1, (bad, "Adrien_Brody"))
    with open(probes, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id"])
        w.writerows(rows)
    out = tmp_path / "eval.jsonl"
    res = run("evaluate", "--probes", probes, "--top", 5, "--mode", "raw", "--out", out, "--db", enrolled)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["subject_id"] for x in lines] == ["Al_Gore", "Adrien_Brody", "Alejandro_Toledo"]
    assert lines[1]["candidates"] == [] and "bad.jpg" in lines[1]["error"]
    first = lines[0]["candidates"][0]
    assert (first["rank"], first["subject_id"]) == (1, "Al_Gore")
    search = json.loads(run("search", rows[0][0], "--top", 5, "--json", "--db", enrolled).stdout)
    assert first.keys() == search["candidates"][0].keys()  # the fields `search --json` / `query --json` print
    assert [c["subject_id"] for c in search["candidates"]] == [c["subject_id"] for c in lines[0]["candidates"]]
    assert lines[2]["candidates"][0]["subject_id"] == "Alejandro_Toledo"
    assert "rank-1 66.7%" in res.output
    assert out.with_suffix(".cmc.png").is_file()


def test_check_detects_a_stale_index_and_rebuild_fixes_it(enrolled):
    from gallery.db import open_gallery
    from gallery.index import VectorIndex

    idx_path = enrolled.with_suffix(".faiss")
    idx = VectorIndex.load(idx_path)
    idx.remove(idx.ids()[:2])
    idx.save(idx_path)
    res = run("gallery", "check", "--db", enrolled, ok=False)
    assert res.exit_code == 1 and "missing" in res.output
    run("gallery", "rebuild-index", "--db", enrolled)
    run("gallery", "check", "--db", enrolled)
    assert open_gallery(enrolled).repository().count_embeddings() == 10


def test_removed_subject_can_no_longer_be_found(enrolled_on_each_backend, data_dir):
    db = enrolled_on_each_backend
    probe = sorted((data_dir / "lfw" / "deepfunneled_250" / "Al_Gore").glob("*.jpg"))[2]
    run("gallery", "remove", "Al_Gore", "--yes", "--db", db)
    out = json.loads(run("search", probe, "--top", 10, "--json", "--db", db).stdout)
    assert "Al_Gore" not in [c["subject_id"] for c in out["candidates"]]
    assert counts(db) == (4, 8, 8)
    run("gallery", "check", "--db", db)
    assert "intact" in run("audit", "verify", "--db", db).output


def test_a_postgresql_gallery_through_the_cli_never_shows_its_password(pg_url, tmp_path, monkeypatch):
    url = pg_url.replace("postgres:@", "postgres:s3cret-pw@")  # the test server trusts its socket
    out = "".join(run("gallery", "init", "--db", url).output.split())  # as printed, without line wrapping
    assert "galleryready:postgresql+psycopg://postgres:***@" in out and "s3cret-pw" not in out
    monkeypatch.setenv("FORENSICS_DB", url)
    assert "intact: 1 events" in run("audit", "verify").output
    run("audit", "export", "-o", tmp_path / "a.jsonl")
    exported = (tmp_path / "a.jsonl").read_text()
    assert "gallery-init" in exported and "s3cret-pw" not in exported


def test_a_url_of_another_database_is_refused_not_made_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run("gallery", "init", "--db", "mysql://u:pw@host/cases", ok=False)
    assert res.exit_code == 2 and "other databases are not supported" in res.output
    assert list(tmp_path.iterdir()) == []


def test_clear_errors_not_tracebacks(tmp_path):
    res = run("search", tmp_path / "nothing.jpg", "--db", tmp_path / "none.db", ok=False)
    assert res.exit_code == 2 and "error" in res.output and "Traceback" not in res.output
    (tmp_path / "x.db").write_text("not sqlite " * 100)
    res = run("gallery", "list", "--db", tmp_path / "x.db", ok=False)
    assert res.exit_code == 2 and "x.db" in res.output


def test_an_error_is_one_line_with_its_path_whole(tmp_path):
    """However long the path and narrow the terminal (the test runner's: 80 columns), the error
    is printed on one line, so the path in it can be copied as it is."""
    db = tmp_path / ("folder-of-a-long-case-name-" * 4) / "gallery.db"
    res = run("gallery", "list", "--db", db, ok=False)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: no gallery at {db} (create one with `forensics gallery init`)"]


def test_a_sketch_of_unknown_pose_is_said_on_stderr(capsys):
    """The query's warning for degenerate landmarks (`forensics.pose`): pose unknown, the file named."""
    from forensics.cli import warn_sketch_pose
    from forensics.pose import TURNED_THRESHOLD

    warn_sketch_pose("witness.jpg", {"yaw_index": None, "turned": None, "threshold": TURNED_THRESHOLD})
    said = " ".join(capsys.readouterr().err.split())
    assert "witness.jpg: pose unknown: the face's landmarks are degenerate" in said
    warn_sketch_pose("frontal.jpg", {"yaw_index": 0.01, "turned": False, "threshold": TURNED_THRESHOLD})
    warn_sketch_pose("old.jpg", None)
    assert capsys.readouterr().err == ""


def test_help_teaches(lfw_people):
    for cmd in ([], ["enroll"], ["search"], ["evaluate"], ["query"], ["report"], ["gallery", "check"]):
        res = run(*cmd, "--help")
        assert "Usage" in res.output


def test_fpir_cells_never_round_a_rate_to_zero_or_certainty():
    from forensics.cli import fpir_cell

    assert fpir_cell(1e-7, {"fpir_range": [1e-9, 2e-6]}) == "<0.01% (<0.01%–<0.01%)"
    assert fpir_cell(0.99999, {"fpir_range": [0.9999, 1.0]}) == ">99.99% (99.99%–100.00%)"
    assert fpir_cell(0.0523, {"fpir_range": [0.02, 0.1]}) == "5.23% (2.00%–10.00%)"
    assert fpir_cell(0.05, None) == "5.00%" and fpir_cell(None, None) == "n/a"
