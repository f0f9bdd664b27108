"""Pose study: which |yaw index| (forensics.pose) marks a sketch as turned from frontal?

Ground truth: FS2K's anno_train.json, attribute `frontal_face`, which is 1 on THREE-QUARTER views
and 0 on frontal ones despite its name (checked by eye: research/pose/README.md). Its
`image_name` "photo1/image0110" is manifest identity "fs2k_p1_0110"; the sketch was drawn from
that photo, so it shares the annotation.

Landmarks: the product's own, `forensics.pipeline.detect_faces(kind="sketch")` (MTCNN, the
sketch fallbacks, dlib's 5 points), cached in runs/pose_points.json.

Rule, fixed before any figure was seen:
- index: `forensics.pose.yaw_index` of dlib's 5 points (nose base offset from the eyes' midpoint
  along the eye line, over the inter-ocular distance); a sketch is flagged when |index| >= t;
- t is chosen on the FS2K TRAINING sketches only (identities not in
  `forensics.training.data.fs2k_val_identities`): the t that maximises balanced accuracy
  (mean of the flag rate on annotated turned sketches and 1 - the flag rate on frontal ones),
  among the midpoints between consecutive sorted |index| values of those sketches; ties go to the
  larger t (fewer false flags), and t is rounded to 3 decimals (the rounded t is the one evaluated);
- reported with it: flag rate on turned and on frontal FS2K validation sketches (the 200 fixed
  validation identities), and the flag rate on the CUFS test sketches (all frontal).

Writes research/pose/pose-threshold-2026-12-02.json.
"""

import json
from pathlib import Path

import numpy as np

from forensics.datasets import default_data_dir, read_manifest
from forensics.detect import FaceDetector
from forensics.images import load_image
from forensics.pipeline import detect_faces
from forensics.pose import yaw_index
from forensics.training.data import fs2k_val_identities

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "runs" / "pose_points.json"
OUT = Path(__file__).resolve().parent / "pose-threshold-2026-12-02.json"


def fs2k_identity(image_name: str) -> str:
    """anno_train.json's "photo1/image0110" -> manifest identity "fs2k_p1_0110"."""
    folder, stem = image_name.split("/")
    return f"fs2k_p{folder.removeprefix('photo')}_{stem.removeprefix('image')}"


def sketches(data: Path) -> list[dict]:
    """FS2K sketches (with split and annotation) and CUFS test sketches, as dicts."""
    anno = {fs2k_identity(a["image_name"]): int(a["frontal_face"])
            for a in json.loads((data / "fs2k" / "anno_train.json").read_text())}
    fs2k = [r for r in read_manifest(data, "fs2k") if r["kind"] == "sketch"]
    val = fs2k_val_identities([r["identity"] for r in fs2k])
    out = [{"set": "fs2k_val" if r["identity"] in val else "fs2k_train", "identity": r["identity"],
            "path": str(r["path"]), "turned": anno[r["identity"]]} for r in fs2k]
    cufs = [r for r in read_manifest(data, "cufs") if r["kind"] == "sketch" and r["split"] == "test"]
    return out + [{"set": "cufs_test", "identity": r["identity"], "path": str(r["path"]), "turned": 0} for r in cufs]


def landmark_points(items: list[dict]) -> dict[str, dict]:
    """dlib's 5 points and the detection method of every sketch, by path (cached)."""
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    todo = [it for it in items if it["path"] not in cache]
    detector = FaceDetector()
    for start in range(0, len(todo), 64):
        chunk = todo[start:start + 64]
        images = [load_image(Path(it["path"])) for it in chunk]
        for it, det in zip(chunk, detect_faces(detector, images, kind="sketch")):
            face = getattr(det, "face", None)  # a NoFaceError (blank image) has none: left out, counted
            cache[it["path"]] = {"points": None if face is None else face.points.tolist(),
                                 "method": "no face" if face is None else face.method}
        CACHE.parent.mkdir(exist_ok=True)
        CACHE.write_text(json.dumps(cache))
        print(f"{start + len(chunk)}/{len(todo)} landmarked", flush=True)
    return cache


def rates(index: np.ndarray, turned: np.ndarray, t: float) -> dict:
    flagged = np.abs(index) >= t
    out = {"n_turned": int(turned.sum()), "n_frontal": int((~turned).sum())}
    if turned.any():
        out["flag_rate_turned"] = float(flagged[turned].mean())
    if (~turned).any():
        out["flag_rate_frontal"] = float(flagged[~turned].mean())
    if turned.any() and (~turned).any():
        out["balanced_accuracy"] = (out["flag_rate_turned"] + 1 - out["flag_rate_frontal"]) / 2
    return out


def choose_threshold(index: np.ndarray, turned: np.ndarray) -> float:
    """The rule of the module docstring, on training sketches."""
    values = np.unique(np.abs(index))
    candidates = (values[1:] + values[:-1]) / 2
    best = max(candidates, key=lambda t: (rates(index, turned, t)["balanced_accuracy"], t))
    return round(float(best), 3)


def main() -> None:
    data = default_data_dir(required=True)
    items = sketches(data)
    points = landmark_points(items)
    for it in items:
        it["method"] = points[it["path"]]["method"]
    result_methods = {m: sum(it["method"] == m for it in items) for m in sorted({i["method"] for i in items})}
    items = [it for it in items if points[it["path"]]["points"] is not None]
    for it in items:
        it["yaw_index"] = yaw_index(points[it["path"]]["points"])
        if it["yaw_index"] is None:  # the study's sketches all have distinct eye centres; say so if one does not
            raise ValueError(f"{it['path']}: degenerate landmarks (eye centres coincide), no yaw index")

    def subset(name):
        rows = [it for it in items if it["set"] == name]
        return np.array([r["yaw_index"] for r in rows]), np.array([bool(r["turned"]) for r in rows])

    t = choose_threshold(*subset("fs2k_train"))
    result = {"threshold": t, "rule": "max balanced accuracy on FS2K train sketches (module docstring)",
              **{name: rates(*subset(name), t) for name in ("fs2k_train", "fs2k_val", "cufs_test")}}
    result["index_quantiles"] = {
        name: {label: [round(float(q), 3) for q in np.quantile(np.abs(idx[turned == (label == "turned")]),
                                                                 [0.1, 0.25, 0.5, 0.75, 0.9])]
               for label in ("turned", "frontal") if (turned == (label == "turned")).any()}
        for name in ("fs2k_train", "fs2k_val", "cufs_test") for idx, turned in [subset(name)]}
    result["detection_methods"] = result_methods
    result["sketches"] = [{**{k: it[k] for k in ("set", "identity", "turned", "method")},
                           "yaw_index": round(it["yaw_index"], 4)} for it in items]
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "sketches"}, indent=1))


if __name__ == "__main__":
    main()
