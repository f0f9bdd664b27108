"""Tests of the match reports (forensics.reports) on a small real gallery made without the ML
pipeline: random unit vectors, small drawn PNG chips, a stored query with hostile metadata."""

from __future__ import annotations

import base64
import csv
import hashlib
import html as html_mod
import io
import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gallery import FaceSpec, open_gallery
from gallery.records import QueryCandidateSpec, QueryInputSpec

from forensics.pose import TURNED_THRESHOLD
from forensics.records import QueryParams
from forensics.reports import FORMATS, ReportError, build_report, write_report
from forensics.reports.accuracy import load_accuracy
from forensics.reports.meaning import CHANCE_FPIR, STATEMENT, format_rate, fpir_caveat, not_a_lead, score_meaning
from forensics.reports.formats import render_csv
from forensics.reports.html import render_html

DIM = 16
N_SUBJECTS = 14
N_CANDIDATES = 12  # in the gallery; one more candidate was removed from it
#: images in the HTML: each candidate's aligned face, each sketch's aligned and synthesized face
#: (section 2), and in each of the N_CANDIDATES + 1 comparison rows its sketch (the aligned one: the
#: original files of this gallery do not exist) and that sketch's synthesized face
N_IMAGES = N_CANDIDATES + 4 + 2 * (N_CANDIDATES + 1)
#: a pose for sketch 1 of `build_gallery`
TURNED_POSE = {"yaw_index": -0.31, "turned": True, "threshold": TURNED_THRESHOLD}
LONG_NAME = "W" * 300
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attr": "\"><img src=x onerror=alert('x')>",
    "quotes": "O'Brien \"the & ampersand\" <b>bold</b>",
    "rtl": "محمد بن عبد الله — דוד לוי",
    "formula": "=HYPERLINK(\"http://evil.example\",\"x\")",
}


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def face_png(seed: int, size: int = 150, gray: bool = False) -> bytes:
    """A small drawn face (oval, eyes, mouth) as PNG bytes; different for each seed."""
    rng = np.random.default_rng(seed)
    bg = tuple(int(x) for x in rng.integers(170, 235, 3))
    skin = tuple(int(x) for x in rng.integers(120, 220, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    w = int(rng.integers(70, 95))
    d.ellipse([size / 2 - w / 2, 22, size / 2 + w / 2, 138], fill=skin, outline=(60, 50, 40), width=2)
    ey = int(rng.integers(62, 72))
    for ex in (size / 2 - 18, size / 2 + 18):
        d.ellipse([ex - 6, ey - 4, ex + 6, ey + 4], fill=(255, 255, 255), outline=(40, 40, 40))
        d.ellipse([ex - 2, ey - 2, ex + 2, ey + 2], fill=(30, 30, 30))
    d.line([size / 2, ey + 8, size / 2 - 4, ey + 28, size / 2 + 4, ey + 30], fill=(80, 60, 50), width=2)
    my = int(rng.integers(106, 114))
    d.arc([size / 2 - 18, my - 8, size / 2 + 18, my + 8], 10, 170, fill=(120, 40, 40), width=3)
    if gray:
        im = im.convert("L").convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


def build_gallery(path: Path, *, hostile: bool = True, n_candidates: int = N_CANDIDATES, pose: dict | None = None):
    """A gallery of N_SUBJECTS subjects and one stored query; returns (gallery, query_uid).

    `pose`: sketch 1's pose as `forensics query` stores it (default: none, as in queries stored
    before poses were); sketch 2 never has one."""
    rng = np.random.default_rng(7)
    gal = open_gallery(path)
    repo = gal.repository()
    emb = repo.get_or_create_embedder("dlib-resnet", "1.0", DIM, sha("weights"))
    names = [f"Subject Person {i}" for i in range(N_SUBJECTS)]
    ids = [f"BK-{1000 + i}" for i in range(N_SUBJECTS)]
    if hostile:
        names[0] = HOSTILE["script"]
        names[1] = LONG_NAME
        names[2] = HOSTILE["rtl"]
        names[3] = HOSTILE["quotes"]
        names[4] = HOSTILE["formula"]
        ids[5] = HOSTILE["attr"]
        ids[6] = "ID-" + "9" * 190
    shas = []
    for i in range(N_SUBJECTS):
        img_sha = sha(f"image {i}")
        shas.append(img_sha)
        repo.add_enrollment(
            {"external_id": ids[i], "name": names[i], "sex": "M" if i % 2 else "F", "birth_year": 1970 + i},
            sha256=img_sha,
            original_path=f"/mugshots/{i}.jpg",
            faces=[FaceSpec(box=[10, 10, 140, 140], landmarks=None, det_score=0.99,
                            chip_png=face_png(i), vector=unit(rng), embedder=emb)],
        )
    n_imp = 20000
    calibration = {"method": "FPIR(s,N) = 1-(1-p(s))^N", "embedder": emb.name, "mode": "fusion",
                   "reference": "CUFS/FS2K train sketches vs. LFW", "n_impostor_scores": n_imp,
                   "n_probes": 400, "n_subjects": 50}
    floor = float(-np.expm1(N_SUBJECTS * np.log1p(-1.0 / n_imp)))
    # FPIR grows as the score falls; rank 1 is beyond every calibration score (an upper bound)
    fpirs = [floor, 0.0034, 0.045, 0.31, 0.62, 0.9, None] + [0.95 + 0.004 * k for k in range(12)]
    cands = []
    for r in range(n_candidates):
        i = r % N_SUBJECTS
        cands.append(QueryCandidateSpec(
            rank=r + 1, score=round(0.82 - 0.05 * r, 6), subject_external_id=ids[i], subject_name=names[i],
            image_sha256=shas[i], score_detail={"fpir": fpirs[r], "per_probe": [0.8 - 0.05 * r, 0.84 - 0.05 * r]},
        ))
    # a candidate whose subject was removed after the search (no subject row, no image)
    cands.append(QueryCandidateSpec(rank=n_candidates + 1, score=0.1, subject_external_id="GONE-1",
                                    subject_name="Removed Person", image_sha256=sha("gone"),
                                    score_detail={"fpir": 0.999}))
    inputs = [
        QueryInputSpec(sha256=sha("sketch 1"), original_path="/cases/" + (HOSTILE["script"] if hostile else "s1") + "/sketch1.png",
                       aligned_png=face_png(101, gray=True), synthesized_png=face_png(102),
                       landmarks=[[50, 60], [100, 60], [75, 85], [55, 110], [95, 110]],
                       detection={"method": "mtcnn", "score": 0.9987, "box": [1, 2, 3, 4], "n_faces": 1,
                                  "width": 400, "height": 500, **({"pose": pose} if pose else {})}),
        QueryInputSpec(sha256=sha("sketch 2"), original_path="/cases/witness2/" + "long" * 40 + ".jpg",
                       aligned_png=face_png(103, gray=True), synthesized_png=face_png(104),
                       landmarks=None,
                       detection={"method": "centred-portrait-fallback", "score": 0.0, "n_faces": 0,
                                  "width": 300, "height": 400}),
    ]
    uid = repo.save_query(
        case_id=HOSTILE["attr"] + " C-17" if hostile else "C-17",
        operator=HOSTILE["rtl"] if hostile else "jdoe",
        mode="fusion",
        params=QueryParams(mode="fusion", top=n_candidates, n_sketches=2, fusion_weight_inverted=0.5,
                           calibration=calibration).to_dict(),
        embedder=emb,
        inverter={"name": "sketch-inverter", "version": "1.0", "sha256": sha("inverter")},
        gallery_size=N_SUBJECTS,
        gallery_fingerprint=repo.gallery_fingerprint(emb),
        timings={"load_s": 0.1, "search_s": 0.01},
        tool_version="0.1.0",
        filters={"sex": None, "born_between": [1960, 1999], "where": {"source": "<i>x</i>"}},
        inputs=inputs,
        candidates=cands,
    )
    return gal, uid


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("reports")
    gal, uid = build_gallery(d / "gallery.db")
    yield gal, uid, d
    gal.close()


@pytest.fixture(scope="module")
def outputs(case):
    gal, uid, d = case
    out = d / "out"
    out.mkdir()
    return {fmt: write_report(gal, uid, fmt, out / f"r.{fmt}") for fmt in FORMATS}


def strip_generated(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    r["report"].pop("generated_at")
    return r


# --------------------------------------------------------------------------------------------


def test_every_format_writes(outputs):
    assert set(outputs) == {"html", "pdf", "json", "csv"}
    for fmt, p in outputs.items():
        assert p.is_file() and p.stat().st_size > 0, fmt
        assert p.suffix == f".{fmt}"


def test_write_report_into_folder_and_errors(case, tmp_path):
    gal, uid, _ = case
    p = write_report(gal, uid, "json", tmp_path)
    assert p == tmp_path / f"report-{uid}.json" and p.is_file()
    with pytest.raises(ReportError):
        write_report(gal, uid, "docx", tmp_path)
    with pytest.raises(ReportError):
        write_report(gal, "no-such-query", "json", tmp_path)
    assert [x.name for x in tmp_path.iterdir()] == [p.name]  # no temporary files left behind


def test_report_content(case):
    gal, uid, _ = case
    r = build_report(gal, uid)
    assert r["statement"] == STATEMENT
    assert r["query"]["query_uid"] == uid and r["query"]["tool_version"] == "0.1.0"
    assert r["gallery"]["size"] == N_SUBJECTS and r["gallery"]["unchanged_since_query"] is True
    assert r["models"]["embedder"]["weights_sha256"] == sha("weights")
    assert r["models"]["inverter"]["sha256"] == sha("inverter")
    assert r["models"]["detector"]["package"] == "facenet-pytorch"
    assert r["models"]["detector"]["version"] == "2.6.0"
    c = r["candidates"]
    assert [x["rank"] for x in c] == list(range(1, len(c) + 1))
    # the mugshot is the face chip enrolled for that candidate's image
    for x in c[:-1]:
        assert base64.b64decode(x["mugshot"]["base64"]) == face_png(x["rank"] - 1)
    assert c[0]["fpir_text"].startswith("at most")  # beyond every measured non-mated score
    assert "upper bound" in c[0]["score_meaning"]
    assert f"among the {N_SUBJECTS} subjects searched" in c[2]["score_meaning"]
    assert "about 4.5% of the time" in c[2]["score_meaning"]
    assert c[1]["fpir_text"] == "about 0.34%"
    assert c[6]["fpir"] is None and "No false-positive rate was estimated" in c[6]["score_meaning"]
    gone = c[-1]
    assert gone["in_gallery"] is False and gone["mugshot"] is None and "removed" in gone["mugshot_note"]
    fallback = r["inputs"][1]["detection"]
    assert fallback["fallback"] is True and "ASSUMED" in fallback["method_meaning"]
    assert r["inputs"][0]["aligned"]["sha256"] == hashlib.sha256(face_png(101, gray=True)).hexdigest()
    assert r["filters"]["active"] == ["born between 1960 and 1999", "source = <i>x</i>"]
    assert any("mirror image" in p for p in r["method"]["paragraphs"])


def test_a_turned_sketch_gets_the_pose_caveat_and_a_sketch_without_a_pose_nothing(case, tmp_path):
    gal, uid, _ = case
    assert [i["detection"]["pose"] for i in build_report(gal, uid)["inputs"]] == [None, None]
    assert "Estimated pose" not in render_html(build_report(gal, uid))
    gal, uid = build_gallery(tmp_path / "g.db", hostile=False, pose=TURNED_POSE)
    outputs = {fmt: write_report(gal, uid, fmt, tmp_path / f"r.{fmt}") for fmt in ("html", "json")}
    gal.close()
    turned, unknown = (i["detection"]["pose"] for i in json.loads(outputs["json"].read_text(encoding="utf-8"))["inputs"])
    assert unknown is None
    assert turned["turned"] is True and turned["yaw_index"] == -0.31 and turned["label"] == "turned from frontal"
    caveat = turned["caveat"]
    assert "yaw index -0.31" in caveat and "0.31 eye distances left" in caveat
    assert f"far from frontal by the rule of research/pose/ (a yaw index at or beyond ±{TURNED_THRESHOLD:g})" in caveat
    assert ('in the top 10 less often than on frontal ones, and at rank 1 no more often, in every search mode '
            '(docs/benchmarks.md, "Sketch identification by pose")') in caveat
    html = html_mod.unescape(outputs["html"].read_text(encoding="utf-8"))
    assert html.count(caveat) == 1 and html.count("Estimated pose") == 1  # sketch 1's, in its caveat


def test_a_sketch_of_unknown_pose_is_stated_as_such(tmp_path):
    """Degenerate landmarks (`forensics.pose`: no yaw index): the report says the pose is unknown."""
    gal, uid = build_gallery(tmp_path / "g.db", hostile=False,
                             pose={"yaw_index": None, "turned": None, "threshold": TURNED_THRESHOLD})
    out = write_report(gal, uid, "json", tmp_path / "r.json")
    html = html_mod.unescape(write_report(gal, uid, "html", tmp_path / "r.html").read_text(encoding="utf-8"))
    gal.close()
    pose = json.loads(out.read_text(encoding="utf-8"))["inputs"][0]["detection"]["pose"]
    assert pose["label"] == "unknown" and pose["yaw_index"] is None and pose["turned"] is None
    assert pose["caveat"].startswith("Pose unknown: the landmarks found on this sketch are degenerate")
    assert html.count(pose["caveat"]) == 1 and "Estimated pose" not in html


def test_accuracy_missing_malformed_and_present(tmp_path):
    a = load_accuracy(tmp_path / "none.json", "0.1.0")
    assert a["measured"] is False and a["rows"] == []
    assert "not measured" in a["note"] and "0.1.0" in a["note"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"measured_on": "x", "rows": [{"what": "rank-1"}]}')
    b = load_accuracy(bad, "0.1.0")
    assert b["measured"] is False and b["rows"] == [] and "not measured" in b["note"]
    good = tmp_path / "acc.json"
    good.write_text(json.dumps({"measured_on": "CUFS test, 2025-01-01", "tool_version": "0.0.9",
                                "rows": [{"what": "Rank-1", "value": 0.71, "source": "bench"}]}))
    g = load_accuracy(good, "0.1.0")
    assert g["measured"] is True and g["rows"][0]["value_text"] == "0.71"
    assert "0.0.9" in g["note"]


def test_accuracy_shown_in_html(case, tmp_path):
    gal, uid, _ = case
    acc = tmp_path / "accuracy.json"
    acc.write_text(json.dumps({"measured_on": "bench <set>", "rows": [
        {"what": "Rank-10 identification rate", "value": "93.5%", "source": "docs/benchmarks.md"}]}))
    text = render_html(build_report(gal, uid, accuracy_path=acc))
    assert "93.5%" in text and "bench &lt;set&gt;" in text
    missing = render_html(build_report(gal, uid, accuracy_path=tmp_path / "absent.json"))
    assert "was not measured" in missing and "93.5%" not in missing


def test_format_rate_and_meaning():
    assert format_rate(0.45) == "45%"
    assert format_rate(0.045) == "4.5%"
    assert format_rate(0.0034) == "0.34%"
    assert format_rate(0.00004) == "less than 0.01% (about 1 in 25,000)"
    assert format_rate(0.999) == "more than 99%"
    short, text = score_meaning(0.5, 0.2, 1234, None)
    assert short == "about 20%" and "among the 1,234 subjects searched" in text


def test_html_self_contained(outputs):
    text = outputs["html"].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", text, re.I)
    assert not re.search(r"<(?:link|script|iframe|object|embed)\b", text, re.I)
    assert "@import" not in text
    srcs = re.findall(r"""<img[^>]*\ssrc="([^"]*)""", text)
    assert len(srcs) == N_IMAGES
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_hostile_metadata_escaped(outputs):
    text = outputs["html"].read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<i>x</i>" not in text
    assert LONG_NAME in text and HOSTILE["rtl"] in text
    assert 'dir="auto"' in text
    # the PDF and CSV carry the same hostile text, as text
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].read_text(encoding="utf-8-sig"))))
    assert rows[0]["name"] == HOSTILE["script"]
    assert rows[4]["name"] == "'" + HOSTILE["formula"]  # no spreadsheet formula


def test_same_content_twice(case, outputs, tmp_path):
    gal, uid, _ = case
    a, b = build_report(gal, uid), build_report(gal, uid)
    assert strip_generated(a) == strip_generated(b)
    p = write_report(gal, uid, "html", tmp_path / "again.html")
    stamp = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|Report generated</th><td>[^<]*")
    one = stamp.sub("", outputs["html"].read_text(encoding="utf-8"))
    two = stamp.sub("", p.read_text(encoding="utf-8"))
    assert one == two
    assert render_csv(a) == render_csv(b)


def test_json_round_trip(case, outputs):
    gal, uid, _ = case
    data = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert strip_generated(data) == strip_generated(build_report(gal, uid))
    assert data["candidates"][1]["name"] == LONG_NAME
    assert base64.b64decode(data["inputs"][0]["synthesized"]["base64"]) == face_png(102)


def test_csv_one_row_per_candidate(case, outputs):
    gal, uid, _ = case
    n = len(gal.repository().get_query(uid).candidates)
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].read_text(encoding="utf-8-sig"))))
    assert len(rows) == n
    assert [int(r["rank"]) for r in rows] == list(range(1, n + 1))
    assert rows[1]["name"] == LONG_NAME and rows[2]["name"] == HOSTILE["rtl"]
    assert rows[0]["image_sha256"] == sha("image 0")
    assert rows[-1]["in_gallery"] == "no"


def _pdf_pages(data: bytes) -> int:
    if shutil.which("pdfinfo"):
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
            f.write(data)
            f.flush()
            info = subprocess.run(["pdfinfo", f.name], capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"^Pages:\s+(\d+)", info, re.M)
        assert m, info
        return int(m.group(1))
    # No pdfinfo: count page objects, including those packed into compressed object streams
    # (PDF 1.5+, which newer WeasyPrint writes).
    bodies = [data]
    for m in re.finditer(rb"/FlateDecode[^>]*>>\s*stream\r?\n(.*?)endstream", data, re.S):
        try:
            bodies.append(zlib.decompressobj().decompress(m.group(1)))
        except zlib.error:
            continue
    return sum(len(re.findall(rb"/Type\s*/Page\b", b)) for b in bodies)


def test_pdf(outputs):
    data = outputs["pdf"].read_bytes()
    assert data.startswith(b"%PDF-")
    assert _pdf_pages(data) >= 1


def test_pdf_pages_full_and_ids_whole(case, outputs, pdf_pages_check):
    gal, uid, _ = case
    r = build_report(gal, uid)
    shas = [c["image_sha256"] for c in r["candidates"]] + [i["sha256"] for i in r["inputs"]]
    # min_share 0.6: the row of the 300-letter name is a third taller than the others
    pdf_pages_check(outputs["pdf"].read_bytes(), [uid, r["gallery"]["fingerprint"], *shas], min_share=0.6)


def test_not_a_lead_and_the_caveat_on_every_card(case, outputs):
    gal, uid, _ = case
    cands = build_report(gal, uid)["candidates"]
    chance = [c for c in cands if c["fpir"] is not None and c["fpir"] >= CHANCE_FPIR]
    assert [c["rank"] for c in chance] == [6] + list(range(8, N_CANDIDATES + 2))  # 0.9 and up; rank 7 uncalibrated
    assert all(c["not_a_lead"].startswith("Not a lead") for c in chance)
    assert all(c["not_a_lead"] is None for c in cands if c not in chance)
    with_fpir = [c for c in cands if c["fpir"] is not None]
    assert all("CUFS/FS2K train sketches vs. LFW" in c["fpir_caveat"] for c in with_fpir)
    assert all(c["fpir_caveat"] is None for c in cands if c["fpir"] is None)
    text = html_mod.unescape(outputs["html"].read_text(encoding="utf-8"))
    assert text.count("Not a lead:") == len(chance)
    assert text.count("The FPIR is an estimate, valid for galleries like its calibration set") == len(with_fpir)
    assert "below zero" in not_a_lead(-0.02, 0.001) and not_a_lead(0.4, 0.3) is None


def test_originals_not_on_disk_are_said_plainly(case, outputs):
    gal, uid, _ = case
    r = build_report(gal, uid)
    assert [i["original"]["status"] for i in r["inputs"]] == ["missing", "missing"]
    assert all(c["mugshot_original"]["status"] == "missing" for c in r["candidates"] if c["in_gallery"])
    assert r["candidates"][-1]["mugshot_original"] is None and r["candidates"][-1]["gallery_record"] is None
    text = outputs["html"].read_text(encoding="utf-8")
    # in full for each sketch (section 2) and each candidate's photo; in each row, short
    assert text.count("could not be read when this report was made") == 2 + N_CANDIDATES
    assert text.count("Sketch 1: original file missing, not shown (see section 2).") == N_CANDIDATES + 1


# --------------------------------------------------------------------------------------------
# headless browser: images load, nothing overflows horizontally
# --------------------------------------------------------------------------------------------


CHECK_SCRIPT = """<script>
(function () {
  function check() {
    var vw = window.innerWidth, imgs = Array.prototype.slice.call(document.images);
    var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.alt || i.src.slice(0, 40); });
    var wide = [], spill = [];
    document.querySelectorAll('body *').forEach(function (e) {
      var r = e.getBoundingClientRect();
      if (r.width > vw + 0.5 || r.right > vw + 0.5 || r.left < -0.5) wide.push(e.tagName + '.' + e.className);
      var cs = getComputedStyle(e);
      if (cs.overflowX === 'visible' && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 &&
          cs.display !== 'inline') spill.push(e.tagName + '.' + e.className);
    });
    var out = {images: imgs.length, bad_images: bad, scroll_width: document.documentElement.scrollWidth,
               inner_width: vw, too_wide: wide.slice(0, 20), spilling: spill.slice(0, 20)};
    var pre = document.createElement('pre');
    pre.id = '__report_check__';
    pre.style.display = 'none';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  if (document.readyState === 'complete') check(); else window.addEventListener('load', check);
})();
</script>"""


def chromium() -> str:
    """The chromium binary. `make test` installs it (the Makefile's `browser` step); a missing
    browser fails the rendering tests rather than skipping them."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.fail("chromium is not installed: run `make browser` (Debian's chromium) before the report tests")
    return path


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    exe = chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def check_in_browser(html_text: str, workdir: Path, width: int) -> dict:
    test_copy, n = re.subn(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">',
                           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                           'img-src data:; style-src \'unsafe-inline\'; script-src \'unsafe-inline\'">',
                           html_text, count=1)
    assert n == 1
    test_copy = test_copy.replace("</body>", CHECK_SCRIPT + "\n</body>", 1)
    page = workdir / f"check-{width}.html"
    page.write_text(test_copy, encoding="utf-8")
    res = run_chromium(["--virtual-time-budget=3000", f"--window-size={width},2000", "--dump-dom",
                        page.as_uri()], workdir / f"profile-{width}")
    m = re.search(r'<pre id="__report_check__"[^>]*>(.*?)</pre>', res.stdout, re.S)
    assert m, f"the check script did not run (rc {res.returncode}): {res.stderr[-800:]}"
    return json.loads(html_mod.unescape(m.group(1)))


def test_browser_renders_without_overflow(outputs, tmp_path):
    text = outputs["html"].read_text(encoding="utf-8")
    shot = tmp_path / "report.png"
    res = run_chromium([f"--screenshot={shot}", "--window-size=1280,2000", outputs["html"].as_uri()],
                       tmp_path / "profile-shot")
    assert shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-800:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
    for width in (1280, 500):  # 500: about the narrowest window chromium makes
        found = check_in_browser(text, tmp_path, width)
        assert found["images"] == N_IMAGES, found
        assert found["bad_images"] == [], found
        assert found["scroll_width"] <= found["inner_width"], found
        assert found["too_wide"] == [], found
        assert found["spilling"] == [], found


def test_minimal_query_every_format(tmp_path):
    """A stored query with nothing but a mode (no models, inputs or candidates) still reports."""
    with open_gallery(tmp_path / "g.db") as gal:
        uid = gal.repository().save_query(mode="raw", tool_version="0.1.0")
        for fmt in FORMATS:
            assert write_report(gal, uid, fmt, tmp_path / f"m.{fmt}").stat().st_size > 0
        r = build_report(gal, uid)
        assert r["candidates"] == [] and r["models"]["inverter"] is None and r["calibration"] is None
        text = (tmp_path / "m.html").read_text(encoding="utf-8")
        assert "returned no candidates" in text and "not used in this search" in text
        rows = list(csv.reader(io.StringIO((tmp_path / "m.csv").read_text(encoding="utf-8-sig"))))
        assert len(rows) == 1  # the header only


def test_reports_honour_the_umask(case, tmp_path):
    """Case data: with umask 077 a report is readable by its owner only (it was 0644 regardless)."""
    g, uid, _ = case
    old = os.umask(0o077)
    try:
        path = write_report(g, uid, "json", tmp_path / "r.json")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_gallery_measured_fpir_caveat_names_its_floor_only_where_there_is_one():
    """A mode with a reference calibration (fusion) states the floor; one without (roundtrip) says
    there is none, never a floor that does not exist."""
    with_ref = fpir_caveat(0.05, {"reference": "CUFS/FS2K train sketches vs. LFW"}, gallery_measured=True)
    without = fpir_caveat(0.05, None, gallery_measured=True)
    assert "never stated below the reference calibration (section 7)" in with_ref
    assert "reference calibration (section 7)" not in without and "with no reference floor in this mode" in without
