"""The examiner's report of a real query, through the CLI on CUFS images: comparison rows with
the original sketch and mugshot files (checked against their SHA-256), the candidate's recorded
details, per-sketch scores, the model and data files recorded at query time, and a PDF whose
pages are full and whose ids are never broken."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import tempfile
from html import unescape
from pathlib import Path

import pytest

from forensics.testing import run_cli as run
from forensics.reports.html import fmt_score


#: CUFS test people: two are sketched (their sketches are the probes), all six are enrolled
PEOPLE = ["cufs_ar_test_101", "cufs_ar_test_102", "cufs_xm2vts_test_200", "cufs_cuhk_student_test_001",
          "cufs_xm2vts_test_201", "cufs_ar_test_103"]
TOP = 4


def sha_file(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def short_tmp():
    """A fresh folder of short path (/tmp/rcli-XXXXXXXX), whatever pytest's --basetemp: the report
    prints the paths of the original files, and a longer one would wrap onto more lines and move
    the page breaks that `test_pdf_pages_are_full_and_ids_whole` checks."""
    with tempfile.TemporaryDirectory(prefix="rcli-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def case(short_tmp, data_dir, distractor_photos):
    """Six CUFS photos enrolled from copies (so a test may change them) among LFW distractors
    (enough for the search to measure its own FPIR), one query with two sketches of the same
    person, and its JSON report."""
    rows = list(csv.DictReader(open(data_dir / "cufs" / "manifest.csv")))
    by = {(r["identity"], r["kind"]): data_dir / "cufs" / r["file"] for r in rows}
    tmp = short_tmp
    (tmp / "photos").mkdir()
    (tmp / "sketches").mkdir()
    manifest = tmp / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "sex", "birth_year", "district"])
        for k, person in enumerate(PEOPLE):
            photo = shutil.copy(by[(person, "photo")], tmp / "photos" / f"{person}.jpg")
            w.writerow([photo, person, f"Person {k}", "F" if k % 2 else "M", 1970 + 5 * k, f"district {k}"])
        for photo, subject in distractor_photos:
            w.writerow([shutil.copy(photo, tmp / "photos" / f"{subject}.jpg"), subject, "", "M", 1960, "elsewhere"])
    db = tmp / "g.db"
    run("enroll", "--manifest", manifest, "--source", "booking system 7", "--db", db)
    sketches = [shutil.copy(by[("cufs_ar_test_101", "sketch")], tmp / "sketches" / "witness1.jpg"),
                shutil.copy(by[("cufs_xm2vts_test_200", "sketch")], tmp / "sketches" / "witness2.jpg")]
    out = json.loads(run("query", *sketches, "--top", TOP, "--case", "C-9", "--operator", "examiner1",
                         "--json", "--db", db).stdout)
    run("report", out["query_id"], "--format", "json", "-o", tmp / "r.json", "--db", db)
    report = json.loads((tmp / "r.json").read_text(encoding="utf-8"))
    return {"tmp": tmp, "db": db, "query": out, "report": report, "sketches": [Path(s) for s in sketches],
            "manifest": manifest}


def test_the_format_follows_the_output_file_unless_given(case, tmp_path):
    """`-o r.json` writes JSON and `-o r.csv` CSV without `--format`; a folder gets the HTML
    report named by the query id; `--format` wins over the extension."""
    uid = case["query"]["query_id"]
    run("report", uid, "-o", tmp_path / "r.json", "--db", case["db"])
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["query"]["query_uid"] == uid
    run("report", uid, "-o", tmp_path / "r.csv", "--db", case["db"])
    assert (tmp_path / "r.csv").read_text(encoding="utf-8-sig").startswith("rank,subject_id,")
    run("report", uid, "-o", tmp_path, "--db", case["db"])
    assert (tmp_path / f"report-{uid}.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    run("report", uid, "-f", "json", "-o", tmp_path / "r.txt", "--db", case["db"])
    assert json.loads((tmp_path / "r.txt").read_text(encoding="utf-8"))["query"]["query_uid"] == uid


def test_comparison_rows_show_checked_original_files(case):
    r = case["report"]
    for inp, sketch in zip(r["inputs"], case["sketches"]):
        assert inp["original"]["status"] == "verified" and inp["original"]["sha256"] == sha_file(sketch)
        assert inp["original"]["display"]["mime"] == "image/jpeg"
    assert len(r["candidates"]) == TOP
    for c in r["candidates"]:
        photo = case["tmp"] / "photos" / f"{c['subject_id']}.jpg"
        assert c["mugshot_original"]["status"] == "verified"
        assert c["mugshot_original"]["path"] == str(photo) and c["mugshot_original"]["sha256"] == sha_file(photo)
        assert c["mugshot"]["mime"] == "image/png"  # the aligned crop stored at enrolment
        assert c["sketch_position"] in (0, 1) and "scores highest" in c["sketch_note"]


def test_candidate_details_are_the_recorded_ones(case):
    recorded = {row["subject_id"]: row for row in csv.DictReader(open(case["manifest"]))}
    for c in case["report"]["candidates"]:
        g, want = c["gallery_record"], recorded[c["subject_id"]]
        assert g["sex"] == want["sex"] and g["birth_year"] == int(want["birth_year"])
        assert g["meta"] == {"district": want["district"]}
        assert g["image"]["source"] == "booking system 7" and g["image"]["original_path"] == want["path"]
        assert g["image"]["enrolled_at"] and g["image"]["sha256"] == c["image_sha256"]


def test_per_sketch_scores_are_labelled_by_sketch_and_kind(case, tmp_path):
    by_id = {c["subject_id"]: c for c in case["query"]["candidates"]}
    for c in case["report"]["candidates"]:
        labels = [(p["label"], p["kind"]) for p in c["probe_scores"]]
        assert labels == [("Sketch 1", "drawn"), ("Sketch 2", "drawn"),  # the default mode, roundtrip
                          ("Sketch 1", "synthesized"), ("Sketch 2", "synthesized"),
                          ("Sketch 1", "synthesized vs round-trip"), ("Sketch 2", "synthesized vs round-trip")]
        assert [p["score"] for p in c["probe_scores"]] == by_id[c["subject_id"]]["detail"]["per_probe"]
        drawn = max((p["score"], p["label"]) for p in c["probe_scores"] if p["kind"] == "drawn")
        assert c["sketch_position"] == int(drawn[1][-1]) - 1
    html = unescape(_html(case, tmp_path))
    # the card's table: one row per sketch, one column per kind, each cell that sketch's score of that kind
    assert html.count('<th>Score of</th><th class="num">drawn</th><th class="num">synthesized</th>'
                      '<th class="num">synthesized vs round-trip</th>') == TOP
    for c in case["report"]["candidates"]:
        for label in ("Sketch 1", "Sketch 2"):
            cells = "".join(f'<td class="num">{fmt_score(p["score"])}</td>' for p in c["probe_scores"]
                            if p["label"] == label)
            assert f"<tr><td>{label}</td>{cells}</tr>" in html


def _html(case, tmp_path: Path) -> str:
    out = tmp_path / "r.html"
    run("report", case["query"]["query_id"], "-o", out, "--db", case["db"])
    return out.read_text(encoding="utf-8")


def test_every_card_has_its_caveat(case, tmp_path):
    html = unescape(_html(case, tmp_path))
    with_fpir = [c for c in case["report"]["candidates"] if c["fpir"] is not None]
    assert with_fpir, "a gallery of 100+ subjects measures its own FPIR"
    assert html.count("The FPIR is an estimate from this search's own scores") == len(with_fpir)
    for c in with_fpir:
        low, high = c["fpir_range"]
        assert low <= c["fpir"] <= high
        assert c["fpir_text"].startswith(("between", "about", "less", "more"))
    for c in case["report"]["candidates"]:
        assert (c["not_a_lead"] is not None) == (c["score"] < 0 or (c["fpir"] or 0) >= 0.9)


def test_model_files_recorded_at_query_time(case):
    from forensics.inversion.invert import DEFAULT_WEIGHTS
    from forensics.models.mtcnn import weights_dir
    from forensics.models.weight_files import dlib_resnet_weights_path, shape_predictor_weights_path
    from forensics.whitening import WHITENING_FILE

    files = case["report"]["models"]["files"]
    shown = json.loads(run("queries", "show", case["query"]["query_id"], "--json", "--db", case["db"]).stdout)
    assert files == shown["params"]["models"]
    by_file = {f["file"]: f for f in files if f["file"]}
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        assert by_file[name]["role"] == "detector" and by_file[name]["sha256"] == sha_file(weights_dir() / name)
    expected = {shape_predictor_weights_path(): "landmarks", dlib_resnet_weights_path(): "descriptor",
                WHITENING_FILE: "whitening"}
    for path, role in expected.items():
        assert by_file[path.name]["role"] == role and by_file[path.name]["sha256"] == sha_file(path)
    inverter = [f for f in files if f["role"] == "inverter"]
    assert [f["sha256"] for f in inverter] == [sha_file(DEFAULT_WEIGHTS)]
    for f in files:
        if f["role"] in ("fusion", "calibration"):
            assert f["sha256"] == sha_file(Path(DEFAULT_WEIGHTS).parent / f["file"])


def test_report_prints_the_stored_checksums_never_recomputed(case, tmp_path):
    from gallery.db import open_gallery

    db = tmp_path / "copy.db"
    open_gallery(case["db"], create=False).backup(db)  # the SQLite backup API: the WAL is included
    uid = case["query"]["query_id"]
    con = sqlite3.connect(db)
    params = json.loads(con.execute("SELECT params FROM queries WHERE query_uid = ?", (uid,)).fetchone()[0])
    params["models"][0]["sha256"] = "0" * 64  # what was recorded is what is printed
    con.execute("UPDATE queries SET params = ? WHERE query_uid = ?", (json.dumps(params), uid))
    con.commit()
    out = tmp_path / "r.html"
    run("report", uid, "-o", out, "--db", db)
    assert "0" * 64 in out.read_text(encoding="utf-8")
    del params["models"]  # a query stored before the files were recorded
    con.execute("UPDATE queries SET params = ? WHERE query_uid = ?", (json.dumps(params), uid))
    con.commit()
    con.close()
    run("report", uid, "-o", out, "--db", db)
    html = out.read_text(encoding="utf-8")
    assert "Not recorded: this search was stored before the model and data files were recorded" in html
    assert "0" * 64 not in html


def test_missing_or_changed_originals_are_said_plainly(case, tmp_path):
    tmp = case["tmp"]
    sketch = case["sketches"][0]
    photo = tmp / "photos" / f"{case['report']['candidates'][0]['subject_id']}.jpg"
    kept_sketch, kept_photo = sketch.read_bytes(), photo.read_bytes()
    try:
        sketch.write_bytes(kept_sketch + b"\0")
        photo.unlink()
        out = tmp_path / "r.json"
        run("report", case["query"]["query_id"], "--format", "json", "-o", out, "--db", case["db"])
        r = json.loads(out.read_text(encoding="utf-8"))
        assert r["inputs"][0]["original"]["status"] == "changed" and r["inputs"][0]["original"]["display"] is None
        assert "CHANGED" in r["inputs"][0]["original"]["status_text"]
        first = r["candidates"][0]["mugshot_original"]
        assert first["status"] == "missing" and "could not be read" in first["status_text"]
        assert all(c["mugshot_original"]["status"] == "verified" for c in r["candidates"][1:])
        html = unescape(_html(case, tmp_path))
        assert "has CHANGED since it was recorded" in html and "could not be read when this report was made" in html
    finally:
        sketch.write_bytes(kept_sketch)
        photo.write_bytes(kept_photo)


def test_pdf_pages_are_full_and_ids_whole(case, tmp_path, pdf_pages_check):
    out = tmp_path / "r.pdf"
    run("report", case["query"]["query_id"], "--format", "pdf", "-o", out, "--db", case["db"])
    r = case["report"]
    tokens = [r["query"]["query_uid"], r["gallery"]["fingerprint"], *(i["sha256"] for i in r["inputs"]),
              *(c["image_sha256"] for c in r["candidates"]), *(f["sha256"] for f in r["models"]["files"])]
    pdf_pages_check(out.read_bytes(), tokens)


def test_the_fpir_is_measured_on_the_searched_gallery(case):
    """Every candidate's FPIR comes with its interval and basis, and the query records the tail
    it was measured on (the gallery holds 100+ subjects)."""
    q = case["query"]
    assert q["gallery_size"] == q["subjects_searched"] == len(PEOPLE) + 100
    for c in q["candidates"]:
        low, high = c["detail"]["fpir_range"]
        assert 0 <= low <= c["fpir"] <= high <= 1 and c["detail"]["fpir_basis"] in ("gallery", "reference")
    tail = case["report"]["score_tail"]
    assert tail["n_searched"] == q["subjects_searched"] and tail["k"] == 30 and tail["scale"] > 0


def test_max_fpir_keeps_only_candidates_at_or_below_it(case, tmp_path):
    """report --max-fpir leaves out the candidates above it and says how many; query --max-fpir
    shows only those at or below it and stores every candidate; a bad rate is a clear error."""
    fpirs = sorted(c["fpir"] for c in case["query"]["candidates"])
    limit = fpirs[len(fpirs) // 2]  # about half the candidates are at or below it
    out = tmp_path / "limited.json"
    run("report", case["query"]["query_id"], "--format", "json", "-o", out, "--max-fpir", limit, "--db", case["db"])
    r = json.loads(out.read_text(encoding="utf-8"))
    assert [c["rank"] for c in r["candidates"]] == [c["rank"] for c in case["query"]["candidates"] if c["fpir"] <= limit]
    assert r["fpir_limit"] == {"max_fpir": limit, "left_out": sum(f > limit for f in fpirs)}
    html_out = tmp_path / "limited.html"
    run("report", case["query"]["query_id"], "-o", html_out, "--max-fpir", limit, "--db", case["db"])
    assert "are left out" in html_out.read_text(encoding="utf-8") or "is left out" in html_out.read_text(encoding="utf-8")

    res = json.loads(run("query", case["sketches"][0], "--top", TOP, "--max-fpir", "0.000001%", "--json",
                         "--db", case["db"]).stdout)
    assert res["max_fpir"] == pytest.approx(1e-8)
    assert all(c["fpir"] <= 1e-8 for c in res["candidates"]) and res["left_out"] == TOP - len(res["candidates"])
    stored = json.loads(run("queries", "show", res["query_id"], "--json", "--db", case["db"]).stdout)
    assert len(stored["candidates"]) == TOP  # every candidate is stored

    for bad in ("0", "150%", "often"):
        res = run("report", case["query"]["query_id"], "-o", tmp_path / "x.json", "--max-fpir", bad,
                  "--db", case["db"], ok=False)
        assert res.exit_code != 0 and "--max-fpir" in res.output and "Traceback" not in res.output
