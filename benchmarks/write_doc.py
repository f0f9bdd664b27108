"""Write docs/benchmarks.md from benchmarks/results/*.json, so that the figures in the docs are
exactly the ones the benchmarks measured. Run after the benchmarks:

    .venv/bin/python benchmarks/write_doc.py
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"


def load(name: str):
    p = RES / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    out = ["# Benchmarks", "",
           f"Machine: {cpu_name()}, 2 cores, 24 GB RAM, no GPU (the project's development and CI machine), "
           "unless a row says otherwise. Other jobs shared the 2 cores during some runs: speeds are lower bounds.",
           "Every figure below is read from `benchmarks/results/*.json` by `benchmarks/write_doc.py`; rerun a "
           "benchmark, then that script.", ""]

    sk = load("sketch_identification")
    if sk:
        rows = sk["rows"]
        out += ["## Sketch identification (the product's job)", "",
                "`cd benchmarks && ../.venv/bin/python sketch_identification.py` — probes: the 338 CUFS test sketches "
                "and the 200 FS2K validation sketches (never trained on), searched through `forensics evaluate` "
                "(detection, alignment, inversion, dlib descriptor, FAISS, best image per subject). Closed: against "
                "their own true photos only. Open: against the open gallery (the 338 CUFS test + 200 FS2K validation "
                "photos + 11,551 LFW photos; see `benchmarks/common.py`). Every sketch probe vector (raw and "
                "inverted) is mirror-averaged, as `forensics query` does (`forensics/probes.py`), and since session 7 "
                "every mode searches in the sketch search space, as queries do: partial PCA whitening of probe and "
                "gallery descriptors, fitted on the training pairs' photos (`forensics/whitening.py`, docs/models.md). "
                "Mode roundtrip (session 8) adds to fusion a third score, the synthesized photo against each gallery "
                "face as the inverter renders it (`forensics/roundtrip.py`); it is run on the closed galleries only: "
                "its round-trip vectors for the ~12,000 open-gallery faces would take ~4 hours of the 2 CPU cores "
                "(~1 s a face), so it has no open-set figure yet. Rank-1 / 5 / 10 in %.", "",
                "| set | gallery | mode | n | R1 | R5 | R10 |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["part"] == "all":
                out.append(f"| {r['set']} | {r['gallery']} | {r['mode']} | {r['n']} | {pct(r['rank1'])} | "
                           f"{pct(r['rank5'])} | {pct(r['rank10'])} |")
        out += ["", "CUFS per part, rank-1 (%):", "", "| gallery | mode | cuhk_student | ar | xm2vts |", "|---|---|---|---|---|"]
        for gallery in ("closed", "open"):
            for mode in ("raw", "inverted", "fusion", "roundtrip"):
                parts = {r["part"]: r for r in rows if r["set"] == "CUFS test" and r["gallery"] == gallery
                         and r["mode"] == mode}
                if parts:
                    out.append(f"| {gallery} | {mode} | " + " | ".join(
                        pct(parts[p]["rank1"]) if p in parts else "–" for p in ("cuhk_student", "ar", "xm2vts")) + " |")
        if sk.get("quality"):
            out += ["", "Synthesis quality (aligned 150×150 chips; identity = cosine of dlib descriptors):", "",
                    "| set | SSIM sketch↔photo | SSIM synthesized↔photo | identity sketch↔photo | identity synthesized↔photo |",
                    "|---|---|---|---|---|"]
            for name, q in sk["quality"].items():
                out.append(f"| {name} | {q['ssim_sketch_vs_photo']:.3f} | {q['ssim_synth_vs_photo']:.3f} | "
                           f"{q['identity_cos_sketch_vs_photo']:.3f} | {q['identity_cos_synth_vs_photo']:.3f} |")
        best = lambda s, g: max((r for r in rows if r["set"] == s and r["gallery"] == g and r["part"] == "all"),  # noqa: E731
                                key=lambda r: r["rank1"])
        raw = lambda s, g: next(r for r in rows if r["set"] == s and r["gallery"] == g and r["part"] == "all"  # noqa: E731
                                and r["mode"] == "raw")
        co, cc = best("CUFS test", "open"), best("CUFS test", "closed")
        fo, fc = best("FS2K val", "open"), best("FS2K val", "closed")
        out += ["", "Against the bars of the sketch-inversion issue:", "",
                f"- CUFS test with LFW distractors, best mode ({co['mode']}): rank-1 {pct(co['rank1'])}% "
                f"(bar ≥ 80%; raw here {pct(raw('CUFS test', 'open')['rank1'])}%) — "
                + ("met" if co["rank1"] >= 0.8 else "**not met**") + ".",
                f"- CUFS test closed set, best mode ({cc['mode']}): rank-1 {pct(cc['rank1'])}% (bar ≥ 90%; raw here "
                f"{pct(raw('CUFS test', 'closed')['rank1'])}%) — " + ("met" if cc["rank1"] >= 0.9 else "**not met**") + ".",
                f"- FS2K validation, open gallery, best mode ({fo['mode']}): rank-1 {pct(fo['rank1'])}% vs raw "
                f"{pct(raw('FS2K val', 'open')['rank1'])}% (bar: at least twice raw) — "
                + ("met" if fo["rank1"] >= 2 * raw("FS2K val", "open")["rank1"] else "**not met**") + "; "
                f"closed set: best ({fc['mode']}) {pct(fc['rank1'])}% vs raw {pct(raw('FS2K val', 'closed')['rank1'])}% — "
                + ("met" if fc["rank1"] >= 2 * raw("FS2K val", "closed")["rank1"] else "**not met**") + ". "
                "The raw FS2K figure moves with the alignment (open rank-1 15.5% with MTCNN landmarks on a "
                "template, 9.5% with dlib's landmarks, which place their points less well on FS2K's stylised "
                "faces, 11.5% with mirror-averaged probes, 12.0% once detection searched large faces first), so read the ratio together with the best mode's own "
                "rank-1. The inverter's checkpoint was chosen on these 200 FS2K pairs (closed set, training-time "
                "score), so the FS2K figures of the inverted and fusion modes are optimistic; the CUFS test pairs "
                "never chose anything.",
                "- The sketch search space's alpha and eps were chosen by cross-validation on the training pairs "
                "only (`scripts/select_whitening.py`), but the test figures of this and other settings had been seen "
                "before it was adopted (docs/models.md gives the order): read them as optimistic to an unknown degree. "
                "The same weights in the raw descriptor space, before session 7: docs/models.md.",
                "- The roundtrip mode (session 8) was adopted by a rule on FS2K val and the training pairs, written "
                "before any of its figures was seen (`scripts/studies/session8/roundtrip_study.py`); CUFS test was "
                "run once, afterwards. It is measured on the closed galleries only (no open-set figure, no FPIR "
                "calibration yet), so it is an opt-in mode and fusion stays the default.",
                "- Baselines measured with dlib's own pipeline (../shared/notes/baselines.md): raw CUFS open 46.4 / "
                "closed 62.4; a ridge map in embedding space 67.8 / 75.4. Our raw CUFS figures (open "
                f"{pct(raw('CUFS test', 'open')['rank1'])} / closed {pct(raw('CUFS test', 'closed')['rank1'])}) are "
                "at or above dlib's since we align with dlib's own landmarks; the shipped inverter is trained on "
                "chips aligned the same way.", "",
                "CMC curves: ![CMC](../benchmarks/results/sketch_identification_cmc.png)", "",
                "Twelve random probes (seed 0), aligned sketch | synthesized | true photo: "
                "![examples](img/inversion_examples.png)", ""]

    ph = load("photo_identification")
    if ph:
        out += ["## Photo identification (control)", "",
                "`cd benchmarks && ../.venv/bin/python photo_identification.py` — the first photo of each of the "
                "1,680 LFW people with 2+ photos against the open gallery, through `forensics enroll` and "
                "`forensics evaluate` (`--face central`).", "",
                "| pipeline | R1 | R5 | R10 |", "|---|---|---|---|",
                f"| forensics | {pct(ph['rank1'])} | {pct(ph['rank5'])} | {pct(ph['rank10'])} |",
                "| dlib's own pipeline (baselines.md) | 89.9 | 95.7 | 96.7 |", "",
                "Bar: ≥ 89.9% rank-1 — " + ("met" if ph["rank1"] >= 0.899 else "**not met**") + ".", ""]

    lfw = load("lfw_verification")
    if lfw:
        out += ["## LFW verification", "",
                "`.venv/bin/python benchmarks/lfw_verification.py` — the 6,000 pairs of `pairs.txt`, 10-fold "
                "(threshold chosen on the other nine folds), both pipelines on the same pairs (`--skip-dlib` reuses "
                "dlib-bin's last row, which is then dated).", "",
                "| pipeline | accuracy % | ± std | no face | seconds |", "|---|---|---|---|---|"]
        for r in lfw["rows"]:
            note = f" (earlier run, {r['reused_from']})" if r.get("reused_from") else ""
            out.append(f"| {r['pipeline']}{note} | {pct(r['accuracy'])} | {pct(r['std'])} | {r['no_face']} | {r['seconds']:.0f} |")
        if len(lfw["rows"]) > 1:
            ours, dl = lfw["rows"][0]["accuracy"], lfw["rows"][1]["accuracy"]
            reused = lfw["rows"][1].get("reused_from")
            out += ["", "Bar: ours ≥ dlib's — " + ("met" if ours >= dl else "**not met**") + "."
                    + (f" The dlib-bin row was measured at {reused} (same day) and reused (`--skip-dlib`): dlib-bin's "
                       "pipeline does not depend on this code and takes about 25 minutes here." if reused else "")]
        out.append("")

    tp = load("throughput")
    if tp:
        out += ["## Speed", "", "`cd benchmarks && ../.venv/bin/python throughput.py`", ""]
        e = tp.get("enroll")
        if e:
            loadavg = tp.get("loadavg_after_enroll")
            nw = e.get("forensics_workers")
            out += [f"Enrolling {e['images']} LFW photos, whole command (start-up and model loading included"
                    + (f"; `forensics enroll` ran its default {nw} worker processes, one per core" if nw else "")
                    + "). "
                    + (f"Load average after the run: {loadavg:.1f} on 2 cores"
                       + (" (the benchmark's own load: no other jobs)." if loadavg <= 2.2 else
                          ": other jobs shared the cores; rerun on a quiet machine for absolute figures.")
                       if loadavg is not None else
                       "The recorded run shared the 2 cores with other jobs; rerun on a quiet machine."), "",
                    "| pipeline | seconds | images/s |", "|---|---|---|",
                    f"| `forensics enroll` | {e['forensics_seconds']:.1f} | {e['forensics_img_s']:.1f} |"]
            if "dlib_img_s" in e:
                out += [f"| dlib-bin, 2 processes (HOG upsampling once, `face_recognition`'s default) | "
                        f"{e['dlib_seconds']:.1f} | {e['dlib_img_s']:.1f} |"]
                if "dlib_no_upsample_img_s" in e:
                    out += [f"| dlib-bin, 2 processes, no upsampling ({e['dlib_no_upsample_missed']} of {e['images']} "
                            f"photos without a face) | {e['dlib_no_upsample_seconds']:.1f} | "
                            f"{e['dlib_no_upsample_img_s']:.1f} |"]
                out += ["", f"Speed-up {e['speedup']:.2f}× against what `face_recognition --cpus 2` runs (bar ≥ 4×) — "
                        + ("met" if e["speedup"] >= 4 else "**not met**") + "."
                        + (f" Against dlib's pipeline without upsampling (the configuration baselines.md timed at "
                           f"19.6 img/s, which misses small faces) it is {e['speedup_vs_no_upsample']:.2f}×."
                           if "speedup_vs_no_upsample" in e else
                           " baselines.md measured 19.6 img/s for dlib's pipeline without upsampling.")]
            hist = tp.get("history") or []
            if len(hist) > 1:
                out += ["", "Runs of this benchmark since the history was first kept (26 Nov 2026, same machine, time the "
                        "run ended; both pipelines' speed varies from run to run, so read the bar against the spread):", "",
                        "| run | forensics img/s | dlib-bin img/s | speed-up |", "|---|---|---|---|"]
                out += [f"| {h['date']}{' (' + h['note'] + ')' if h.get('note') else ''} | {h['forensics_img_s']:.1f} | "
                        f"{h['dlib_img_s']:.1f} | {h['speedup']:.2f}× |" for h in hist]
            stages = tp.get("stages_ms_per_image")
            if stages:
                out += ["", "Where an image's time goes (each stage timed in one process on 320 LFW photos, warm, "
                        "2 threads; enrollment runs these stages in worker processes of one thread each, which "
                        "use the 2 cores better; the rest of the command is the database, the FAISS index "
                        "and start-up):", "",
                        "| stage | ms / image |", "|---|---|"]
                out += [f"| {k} | {v:.1f} |" for k, v in stages.items()]
                out += [f"| total of the stages | {sum(stages.values()):.1f} |", "",
                        f"4× dlib-bin's {e.get('dlib_img_s', 0):.1f} img/s means "
                        f"{1000 / (4 * e['dlib_img_s']):.1f} ms an image for the whole command."
                        if e.get("dlib_img_s") else ""]
            out.append("")
        out += ["FAISS search (one query, k = 50, random unit vectors of dimension 128):", "",
                "| vectors | index | build s | p50 ms | p95 ms | recall@50 |", "|---|---|---|---|---|---|"]
        for r in tp["search"]:
            out.append(f"| {r['n']:,} | {r['kind']} | {r['build_s']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                       f"{r['recall_at_50']:.3f} |")
        out += ["", "IVF uses nlist ≈ 4·√N and visits an eighth of the lists by default (`gallery/index.py`). Random "
                "unit vectors have no cluster structure, the worst case for IVF: its recall@50 here is a lower bound, "
                "and the exact (flat) index, the default, searches 1M vectors in well under 0.1 s.", ""]

    det = load("sketch_detection")
    if det:
        out += ["## Sketch detection", "", "`.venv/bin/python benchmarks/sketch_detection.py`", "",
                "| dataset | sketches | MTCNN | + relaxed retry | centred fallback | MTCNN rate |", "|---|---|---|---|---|---|"]
        for r in det["rows"]:
            out.append(f"| {r['dataset']} | {r['sketches']} | {r['mtcnn_found']} | {r['found_after_retry']} | "
                       f"{r['centred_fallback']} | {pct(r['detection_rate'])}% |")
        out.append("")
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(out) + "\n")
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
