"""Face detection with MTCNN (`forensics.models.mtcnn`: facenet-pytorch's networks, whose weights ship in
its wheel: nothing is downloaded), face choice, and alignment of the chosen face.

Images are grouped by size and detected in batches. The smallest face size searched for decides
the cost of MTCNN's image pyramid, so it is set relative to the image (mugshots and sketches
show one large face), in two passes: first faces of at least `large_face_frac` (30%) of the
shorter side are searched for; only images where none is found are searched again down to
`min_face_frac` (20%, never below 20 px). On LFW photos the first pass alone costs 12.0 instead of
16.8 ms an image and finds a face in all of them; a photo whose face is smaller pays for both
passes and gets the same answer as a single search down to 20%. What the first pass changes: a
second, smaller face (under ~30%) next to a large one is not counted in `n_faces`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from forensics.align import CHIP_SIZE, align_dlib, dlib_box_from_mtcnn
from forensics.errors import ForensicsError
from forensics.models.dlib_landmarks import load_shape_predictor
from forensics.models.mtcnn import DEFAULT_THRESHOLDS, MTCNN

FACE_SELECTION = ("largest", "central")

#: Detection is run on a copy whose longer side is at most this (landmarks are mapped back).
DETECT_MAX_SIDE = 800


@dataclass
class DetectedFace:
    """One face found in an image: box and landmarks in image pixels, MTCNN's probability.

    `points` are dlib's 5 alignment landmarks (outer and inner eye corners, base of the nose),
    predicted inside the box once the face is chosen; the chip is cut from them.
    """

    box: np.ndarray  # (4,) x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2) MTCNN's: left eye, right eye, nose, mouth left, mouth right
    score: float
    method: str = "mtcnn"
    points: np.ndarray | None = None  # (5, 2) dlib's, set by FaceDetector.align


@dataclass
class Detection:
    """What detection found in one image: the chosen face, how many there were, and the chip."""

    face: DetectedFace | None
    n_faces: int
    chip: np.ndarray | None = None  # (150,150,3) uint8 aligned chip of the chosen face
    all_faces: list[DetectedFace] = field(default_factory=list)


def check_face_selection(how: str) -> None:
    """`how` names a way of choosing one face of several (`FACE_SELECTION`), or ForensicsError."""
    if how not in FACE_SELECTION:
        raise ForensicsError(f"--face must be one of {', '.join(FACE_SELECTION)}, not {how!r}")


def choose_face(faces: list[DetectedFace], shape: tuple[int, int], how: str = "largest") -> DetectedFace:
    """Pick one face: the largest box, or the one nearest the image centre (LFW-style crops)."""
    check_face_selection(how)
    h, w = shape
    if how == "largest":
        # area inside the image: a face cut by the border is not "largest" for its off-image part
        def visible_area(f: DetectedFace) -> float:
            x1, y1, x2, y2 = np.clip(f.box, 0, [w, h, w, h])
            return max(0.0, x2 - x1) * max(0.0, y2 - y1)

        return max(faces, key=visible_area)
    centre = np.array([w / 2, h / 2])
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


class FaceDetector:
    """Batched face detection (MTCNN) and alignment (dlib's 5-point landmarks → 150x150 chip)."""

    def __init__(self, min_face_frac: float = 0.2, large_face_frac: float | None = 0.3,
                 thresholds=DEFAULT_THRESHOLDS, device: str = "cpu"):
        if device != "cpu":
            raise ValueError("the face detector runs on the CPU")
        self.min_face_frac = min_face_frac
        # None (or not above min_face_frac): one pass down to min_face_frac
        self.large_face_frac = large_face_frac if large_face_frac and large_face_frac > min_face_frac else None
        self.thresholds = tuple(thresholds)
        self._mtcnn = MTCNN(thresholds=self.thresholds)
        self._landmarks = load_shape_predictor()

    @staticmethod
    def _min_face(h: int, w: int, frac: float) -> int:
        return max(20, int(round(min(h, w) * frac)))

    def detect_many(self, images: list[np.ndarray], select: str = "largest", batch_size: int = 32,
                    min_face_frac: float | None = None, thresholds=None, align: bool = True) -> list[Detection]:
        """Detect faces in RGB uint8 images (any sizes). Returns one `Detection` per image, with
        the chosen face aligned into `chip` (unless `align=False`).

        Two passes (large faces first, then the images without one down to `min_face_frac`);
        a `min_face_frac` or `thresholds` given here overrides the detector's own, in one pass."""
        results: list[Detection | None] = [None] * len(images)
        prepared = [_shrink(img) for img in images]
        if min_face_frac is None and self.large_face_frac is not None:
            self._pass(images, prepared, range(len(images)), self.large_face_frac, thresholds, select, batch_size,
                       results)
            todo = [i for i, r in enumerate(results) if r.face is None]
        else:
            todo = list(range(len(images)))
        self._pass(images, prepared, todo, min_face_frac or self.min_face_frac, thresholds, select, batch_size,
                   results)
        if align:
            self.align(images, results)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _pass(self, images, prepared, idxs, frac: float, thresholds, select: str, batch_size: int,
              results: list) -> None:
        """One MTCNN search of images `idxs` for faces down to `frac` of the shorter side, in
        batches of equal-sized images; fills `results`."""
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i in idxs:
            groups[prepared[i][0].shape[:2]].append(i)
        for (h, w), members in groups.items():
            min_face = self._min_face(h, w, frac)
            for start in range(0, len(members), batch_size):
                chunk = members[start:start + batch_size]
                found = self._mtcnn.detect(np.stack([prepared[i][0] for i in chunk]), min_face, thresholds)
                for i, fb in zip(chunk, found):
                    factor = prepared[i][1]
                    faces = [DetectedFace(box=np.asarray(b, float) * factor, landmarks=np.asarray(lm, float) * factor,
                                          score=float(p)) for b, p, lm in zip(fb.boxes, fb.probs, fb.points)]
                    results[i] = self._finish(images[i], faces, select)

    def align(self, images: list[np.ndarray], detections: list[Detection]) -> None:
        """Landmark and align the chosen face of each detection, in place (`face.points`, `chip`).

        dlib's 5-point predictor runs in the box dlib's detector would have drawn for the face
        (mapped from the MTCNN box, `dlib_box_from_mtcnn`), for all faces at once; the chip is cut
        from those points with dlib's get_face_chip geometry."""
        todo = [(img, d) for img, d in zip(images, detections) if d.face is not None]
        if not todo:
            return
        rects = [dlib_box_from_mtcnn(d.face.box) for _, d in todo]
        points = self._landmarks.predict_many([img for img, _ in todo], rects)
        for (img, d), pts in zip(todo, points):
            d.face.points = pts.astype(float)
            d.chip = align_dlib(img, d.face.points)

    def detect(self, image: np.ndarray, select: str = "largest", **kw) -> Detection:
        return self.detect_many([image], select=select, **kw)[0]

    @staticmethod
    def _finish(img: np.ndarray, faces: list[DetectedFace], select: str) -> Detection:
        if not faces:
            return Detection(face=None, n_faces=0)
        face = choose_face(faces, img.shape[:2], select)
        return Detection(face=face, n_faces=len(faces), all_faces=faces)


def _shrink(img: np.ndarray) -> tuple[np.ndarray, float]:
    """A copy with longer side <= DETECT_MAX_SIDE, and the factor to map coordinates back."""
    h, w = img.shape[:2]
    side = max(h, w)
    if side <= DETECT_MAX_SIDE:
        return img, 1.0
    from PIL import Image

    f = side / DETECT_MAX_SIDE
    small = Image.fromarray(img).resize((max(1, round(w / f)), max(1, round(h / f))), Image.Resampling.BOX)
    arr = np.asarray(small)
    return arr, w / arr.shape[1]


__all__ = ["CHIP_SIZE", "Detection", "DetectedFace", "FaceDetector", "choose_face"]
