"""The face pipeline: file → SHA-256 + validated RGB → detected, aligned chip → embedding.

Photos and sketches go through the same steps. Sketches that MTCNN misses get two documented
fallbacks (see `relaxed_sketch_detection` and `centred_portrait_face`); photos never do: a photo
with no face is an error for the user to see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from forensics.detect import Detection, DetectedFace, FaceDetector
from forensics.errors import InputImageError, NoFaceError
from forensics.images import LoadedImage, decode_image, png_bytes
from forensics.intake import PendingImage, PipelineFailure, Skipped, chunks, intake, merge
from forensics.models.registry import Embedder, load_embedder
from forensics.pose import estimate_pose
from forensics.records import EmbedderInfo, Embedding, FaceRecord

__all__ = ["FacePipeline", "PipelineFailure", "Skipped", "centred_portrait_face", "detect_faces",
           "relaxed_sketch_detection"]

#: Mean MTCNN landmarks of the CUFS and FS2K sketches that MTCNN does detect, relative to image
#: width and height (printed by benchmarks/sketch_detection.py). A sketch in which no face can be
#: found even with relaxed thresholds is assumed to be a frontal, centred portrait like those.
SKETCH_FALLBACK_LANDMARKS = np.array(
    [[0.3784, 0.4657], [0.6141, 0.4632], [0.4985, 0.5905], [0.3978, 0.6984], [0.6003, 0.6972]]
)


def relaxed_sketch_detection(detector: FaceDetector, rgb: np.ndarray, select: str = "largest") -> Detection:
    """Second try for a sketch: contrast-stretched, lightly blurred (pencil texture confuses
    MTCNN's first stage), smaller minimum face, lower thresholds (0.5, 0.6, 0.6)."""
    img = ImageOps.autocontrast(Image.fromarray(rgb).convert("L"), cutoff=1).filter(ImageFilter.GaussianBlur(1.2))
    soft = np.asarray(img.convert("RGB"))
    det = detector.detect(soft, select=select, min_face_frac=0.1, thresholds=(0.5, 0.6, 0.6), align=False)
    if det.face is not None:
        det.face.method = "mtcnn-relaxed"
        detector.align([rgb], [det])  # landmarks and chip from the original sketch
    return det


#: A sketch with fewer "ink" pixels than this (grey level more than `BLANK_INK_LEVELS` from the
#: paper's median) is taken as blank, not as a drawing to assume a face in. The faintest of the
#: 1,664 CUFS and FS2K sketches has 5.4% of its pixels that far from the paper.
BLANK_INK_FRACTION = 0.005
BLANK_INK_LEVELS = 24


def ink_fraction(rgb: np.ndarray) -> float:
    """Fraction of pixels whose grey level is more than `BLANK_INK_LEVELS` from the median."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.int16)
    return float((np.abs(grey - np.median(grey)) > BLANK_INK_LEVELS).mean())


def centred_portrait_face(detector: FaceDetector, rgb: np.ndarray) -> Detection:
    """Last resort for sketches: assume a frontal portrait framed like the CUFS/FS2K sketches
    (the face box and MTCNN landmarks where they typically are), and landmark and align it."""
    h, w = rgb.shape[:2]
    lm = SKETCH_FALLBACK_LANDMARKS * np.array([w, h])
    face = DetectedFace(box=np.array([0.2 * w, 0.25 * h, 0.8 * w, 0.85 * h]), landmarks=lm, score=0.0,
                        method="centred-portrait-fallback")
    det = Detection(face=face, n_faces=0, all_faces=[])
    detector.align([rgb], [det])
    return det


def detect_faces(detector: FaceDetector, images: list[LoadedImage], kind: str = "photo",
                 select: str = "largest") -> list[Detection | InputImageError]:
    """One aligned `Detection` per image, or a `NoFaceError`; sketches get the two fallbacks."""
    dets = detector.detect_many([im.rgb for im in images], select=select)
    out: list[Detection | InputImageError] = []
    for im, det in zip(images, dets):
        if det.face is None and kind == "sketch":
            det = relaxed_sketch_detection(detector, im.rgb, select)
            if det.face is None and ink_fraction(im.rgb) < BLANK_INK_FRACTION:
                out.append(NoFaceError(im.path, "no face found, and the image is (nearly) blank",
                                       "check that this is the scanned sketch; scan a faint drawing "
                                       "with more contrast"))
                continue
            if det.face is None:
                det = centred_portrait_face(detector, im.rgb)
        if det.face is None:
            out.append(NoFaceError(im.path, "no face found",
                                   "use a frontal photo in which the face is at least ~40 px wide"))
        else:
            out.append(det)
    return out


class FacePipeline:
    """Batched intake → detection → alignment → embedding, in this process.

    `forensics.parallel.ParallelPipeline` does the same with the work after intake spread over
    worker processes; both have `embedder_info`, `process` and `process_one`.
    """

    def __init__(self, embedder: Embedder | None = None, detector: FaceDetector | None = None,
                 select: str = "largest"):
        self.embedder = embedder or load_embedder()
        self.detector = detector or FaceDetector()
        self.select = select

    @property
    def embedder_info(self) -> EmbedderInfo:
        return self.embedder.info

    def __enter__(self) -> FacePipeline:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def detect_loaded(self, images: list[LoadedImage], kind: str = "photo") -> list[Detection | InputImageError]:
        return detect_faces(self.detector, images, kind, self.select)

    def process(self, paths: Iterable[Path], kind: str = "photo", batch_size: int = 32,
                known: Callable[[list[str]], set[str]] | None = None, encode_chips: bool = False,
                ) -> Iterator[list[FaceRecord | PipelineFailure | Skipped]]:
        """Yield, batch by batch, one `FaceRecord`, `PipelineFailure` or `Skipped` per path, in order.

        With `known` (hashes → those already known), a file whose SHA-256 is known, or that repeats
        one of this run, is passed over right after hashing (a duplicate). `encode_chips`: also
        fill `chip_png`.
        """
        seen: set[str] | None = set() if known is not None else None
        for batch in chunks(paths, batch_size):
            slots, pending = intake(batch, known, seen)
            yield merge(slots, pending, self.compute(pending, kind, encode_chips))

    def compute(self, pending: list[PendingImage], kind: str = "photo", encode_chips: bool = False,
                ) -> list[FaceRecord | PipelineFailure]:
        """Decode, detect, align and embed files read at intake; one result each, in order."""
        out: list[FaceRecord | PipelineFailure | None] = [None] * len(pending)
        loaded: list[tuple[int, LoadedImage]] = []
        for j, item in enumerate(pending):
            try:
                loaded.append((j, decode_image(item.data, item.path, item.sha256)))
            except InputImageError as e:
                out[j] = PipelineFailure(item.path, e, item.sha256)
        dets = self.detect_loaded([im for _, im in loaded], kind) if loaded else []
        ok: list[tuple[int, LoadedImage, Detection]] = []
        for (j, im), det in zip(loaded, dets):
            if isinstance(det, InputImageError):
                out[j] = PipelineFailure(im.path, det, im.sha256)
            else:
                ok.append((j, im, det))
        if ok:
            vecs = self.embedder.embed(np.stack([d.chip for _, _, d in ok]))
            for (j, im, det), v in zip(ok, vecs):
                f = det.face
                out[j] = FaceRecord(
                    path=im.path, sha256=im.sha256, width=im.width, height=im.height, size_bytes=im.size_bytes,
                    n_faces=det.n_faces, box=[float(x) for x in f.box], landmarks=f.points.round(2).tolist(),
                    det_score=float(f.score), detection_method=f.method, chip=det.chip,
                    embedding=Embedding(vector=v, embedder=self.embedder.info),
                    chip_png=png_bytes(det.chip) if encode_chips else None, pose=estimate_pose(f.points),
                )
        return out  # type: ignore[return-value]

    def process_one(self, path: Path, kind: str = "photo") -> FaceRecord:
        """One file through the whole pipeline; raises its `InputImageError`."""
        (res,) = next(self.process([Path(path)], kind))
        if isinstance(res, PipelineFailure):
            raise res.error
        return res
