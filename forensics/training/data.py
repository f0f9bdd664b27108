"""Training data for the sketch inverter: a cache of aligned face chips, and the pair dataset.

Detecting and aligning thousands of faces with MTCNN takes minutes on a CPU, and a rented GPU box
may lack facenet-pytorch altogether, so chips are made once, here, and stored in ``.npz`` files:

``chips.npz`` (the training side; what is carried to a GPU box)
    - CUFS train pairs (268): training;
    - FS2K pairs (1,058), split by a fixed seed into 858 train / 200 validation (split "val");
    - ``n_lfw`` LFW photos (one per person first, in a seeded order): photos to synthesize
      training sketches from (`forensics.inversion.sketchify`).
``chips_cufs_test.npz`` (`eval_cache_path`)
    - CUFS test pairs (338): evaluation ONLY. They live in a file of their own so that no
      training run can even load them by mistake (`ChipDataset` also refuses held-out splits).

Every image gets a chip: photos and sketches that MTCNN misses go through the pipeline's
sketch fallbacks (`relaxed_sketch_detection`, then `centred_portrait_face`); which one was used
is recorded per chip (``method``). LFW photos without a face are skipped.

Chips are stored JPEG-encoded, concatenated in one byte array, with per-chip tags (dataset,
split, kind, identity, subset, FS2K style, source file, detection method); greyscale sketches
as 8-bit greyscale JPEGs. Qualities (defaults) are set by what can be carried: a GPU call takes
64 MiB in all, dlib's weights (21.4 MiB) included, so the training side must stay under ~36 MiB:
CUFS/FS2K chips at 90, LFW chips at 85, CUFS test (not carried) at 95. No image file is copied:
the caches live under ``runs/`` (git-ignored).

CLI: ``python -m forensics.training.data --out runs/cache/chips.npz``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from forensics.inversion.sketchify import sketchify

log = logging.getLogger("forensics.training.data")

CACHE_VERSION = 1
DEFAULT_CACHE = Path("runs/cache/chips.npz")
FS2K_VAL_SEED = 20160915  # fixed: the 200 FS2K validation pairs must never change
FS2K_N_VAL = 200
LFW_SEED = 5749
CHIP = 150


# --------------------------------------------------------------------------------------------
# JPEG helpers
# --------------------------------------------------------------------------------------------


def _is_grey(chip: np.ndarray, tol: int = 6) -> bool:
    c = chip.astype(np.int16)
    return bool(np.abs(c - c[..., :1]).max() <= tol)


def encode_chip(chip: np.ndarray, quality: int, grey_ok: bool = False) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(chip))
    if grey_ok and _is_grey(chip):
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def decode_chip(data: bytes | np.ndarray) -> np.ndarray:
    with Image.open(io.BytesIO(bytes(data))) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


# --------------------------------------------------------------------------------------------
# Building the cache
# --------------------------------------------------------------------------------------------


@dataclass
class Item:
    path: Path
    dataset: str
    split: str
    kind: str
    identity: str
    subset: str
    style: int
    source: str


def _fs2k_styles(data_dir: Path) -> dict[str, int]:
    """FS2K style (0/1/2) per identity, from anno_train.json (image_name 'photo1/image0110')."""
    anno = json.loads((data_dir / "fs2k" / "anno_train.json").read_text())
    styles = {}
    for a in anno:
        folder, name = a["image_name"].split("/")
        styles[f"fs2k_p{folder.removeprefix('photo')}_{name.removeprefix('image')}"] = int(a["style"])
    return styles


def fs2k_val_identities(identities: list[str], n_val: int = FS2K_N_VAL, seed: int = FS2K_VAL_SEED) -> set[str]:
    """The fixed FS2K validation identities: a seeded permutation of the sorted identities."""
    ids = sorted(set(identities))
    perm = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i] for i in perm[:n_val]}


def list_items(data_dir: Path, n_lfw: int = 4000) -> list[Item]:
    """Every image the cache will hold, in a fixed order."""
    from forensics.datasets import LFW_DUPLICATES, read_manifest

    items: list[Item] = []
    cufs = read_manifest(data_dir, "cufs")
    for r in sorted(cufs, key=lambda r: (r["split"], r["identity"], r["kind"])):
        items.append(Item(r["path"], "cufs", r["split"], r["kind"], r["identity"], r["subset"], -1, r["file"]))

    fs2k = read_manifest(data_dir, "fs2k")
    styles = _fs2k_styles(data_dir)
    val = fs2k_val_identities([r["identity"] for r in fs2k])
    for r in sorted(fs2k, key=lambda r: (r["identity"], r["kind"])):
        split = "val" if r["identity"] in val else "train"
        items.append(Item(r["path"], "fs2k", split, r["kind"], r["identity"], r["subset"],
                           styles.get(r["identity"], -1), r["file"]))

    lfw = [r for r in read_manifest(data_dir, "lfw") if r["kind"] == "photo"
           and Path(r["file"]).stem not in LFW_DUPLICATES]
    by_person: dict[str, list[dict]] = {}
    for r in sorted(lfw, key=lambda r: r["file"]):
        by_person.setdefault(r["identity"], []).append(r)
    people = sorted(by_person)
    order = [people[i] for i in np.random.default_rng(LFW_SEED).permutation(len(people))]
    chosen: list[dict] = []
    rank = 0  # first photo of every person (seeded order), then second photos, ...
    while len(chosen) < n_lfw:
        added = False
        for p in order:
            if rank < len(by_person[p]):
                chosen.append(by_person[p][rank])
                added = True
                if len(chosen) == n_lfw:
                    break
        if not added:
            break
        rank += 1
    for r in chosen:
        items.append(Item(r["path"], "lfw", "train", "photo", r["identity"], r["subset"], -1, r["file"]))
    return items


def _detect_chips(items: list[Item], batch: int = 64, progress=None) -> list[tuple[np.ndarray | None, str]]:
    """(chip, method) per item: MTCNN; for CUFS/FS2K images it misses, the sketch fallbacks."""
    from forensics.detect import Detection, FaceDetector
    from forensics.images import load_image
    from forensics.pipeline import detect_faces

    detector = FaceDetector()
    out: list[tuple[np.ndarray | None, str]] = []
    t0 = time.time()
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        images = [load_image(it.path) for it in chunk]
        # LFW crops are centred on the person named, and a miss stays a miss; artist pairs show
        # one large face, and their photos and sketches both get the sketch fallbacks.
        modes = [("central", "photo") if it.dataset == "lfw" else ("largest", "sketch") for it in chunk]
        dets: list = [None] * len(chunk)
        for select, kind in set(modes):
            idx = [i for i, m in enumerate(modes) if m == (select, kind)]
            for i, d in zip(idx, detect_faces(detector, [images[i] for i in idx], kind=kind, select=select)):
                dets[i] = d
        for det in dets:  # a Detection, or the NoFaceError of an LFW photo without a face
            out.append((det.chip, det.face.method) if isinstance(det, Detection) else (None, "none"))
        done = start + len(chunk)
        if progress:
            progress(done, len(items), time.time() - t0)
    return out


def build_chip_cache(data_dir: Path | None = None, out: Path = DEFAULT_CACHE, n_lfw: int = 4000,
                     quality: int = 90, lfw_quality: int = 85, eval_quality: int = 95, progress=None,
                     keep_aligned: bool = True) -> dict:
    """Detect, align and store chips (see the module docstring): the training-side cache at ``out``,
    the held-out CUFS test chips at `eval_cache_path` (out). Returns the build summary.

    Aligned chips are also kept, unencoded, in ``<out stem>.aligned.npz`` (~0.5 GB, not to be
    carried): a rebuild with other JPEG qualities then skips detection."""
    from forensics.datasets import default_data_dir

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(required=True)
    out = Path(out)
    t0 = time.time()
    items = list_items(data_dir, n_lfw)
    # raw aligned chips are kept beside the cache so that re-encoding skips detection
    raw = out.with_name(out.stem + ".aligned.npz")
    sources = np.array([it.source for it in items])
    chips = None
    if raw.is_file():
        with np.load(raw, allow_pickle=False) as z:
            if np.array_equal(z["source"], sources):
                ok, arr, meth = z["ok"], z["chips"], z["method"]
                chips = [(arr[i] if ok[i] else None, str(meth[i])) for i in range(len(items))]
    if chips is None:
        chips = _detect_chips(items, progress=progress)
        if keep_aligned:
            blank = np.zeros((CHIP, CHIP, 3), np.uint8)
            raw.parent.mkdir(parents=True, exist_ok=True)
            np.savez(raw, source=sources, ok=np.array([c is not None for c, _ in chips]),
                     chips=np.stack([blank if c is None else c for c, _ in chips]),
                     method=np.array([m for _, m in chips]))
    keep = [(it, chip, method) for it, (chip, method) in zip(items, chips) if chip is not None]
    held_out = [k for k in keep if (k[0].dataset, k[0].split) == ("cufs", "test")]
    train_side = [k for k in keep if (k[0].dataset, k[0].split) != ("cufs", "test")]
    summary = {
        "version": CACHE_VERSION, "n": len(keep), "n_lfw_asked": n_lfw,
        "n_lfw": sum(it.dataset == "lfw" for it, *_ in keep),
        "lfw_missed": sum(1 for c, _ in chips if c is None),
        "quality": quality, "lfw_quality": lfw_quality, "eval_quality": eval_quality,
        "fs2k_val_seed": FS2K_VAL_SEED, "lfw_seed": LFW_SEED,
        "methods": {m: sum(1 for *_, mm in keep if mm == m) for m in sorted({m for *_, m in keep})},
        "build_seconds": round(time.time() - t0, 1),
    }
    eval_out = eval_cache_path(out)
    for path, part, qual in ((out, train_side, lambda it: lfw_quality if it.dataset == "lfw" else quality),
                             (eval_out, held_out, lambda it: eval_quality)):
        write_cache(path, [c for _, c, _ in part], [it for it, _, _ in part], [m for *_, m in part],
                    {**summary, "n": len(part)}, qualities=[qual(it) for it, _, _ in part])
    summary["bytes"] = out.stat().st_size
    summary["eval_bytes"] = eval_out.stat().st_size
    return summary


def eval_cache_path(cache: Path) -> Path:
    """Where the held-out CUFS test chips of a cache are: ``<cache stem>_cufs_test.npz``."""
    cache = Path(cache)
    return cache.with_name(cache.stem + "_cufs_test.npz")


def write_cache(out: Path, chips: list[np.ndarray], items: list[Item], methods: list[str], meta: dict,
                qualities: list[int] | None = None) -> Path:
    """Write chips (JPEG-encoded; greyscale sketches as 8-bit grey) and their tags to ``out``."""
    qualities = qualities or [95] * len(chips)
    blobs = [encode_chip(c, q, grey_ok=it.kind == "sketch") for c, it, q in zip(chips, items, qualities)]
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(  # the JPEG bytes hardly compress; the tag strings do
        tmp,
        jpeg=np.frombuffer(b"".join(blobs), np.uint8),
        offsets=offsets,
        dataset=np.array([it.dataset for it in items]),
        split=np.array([it.split for it in items]),
        kind=np.array([it.kind for it in items]),
        identity=np.array([it.identity for it in items]),
        subset=np.array([it.subset for it in items]),
        style=np.array([it.style for it in items], np.int8),
        source=np.array([it.source for it in items]),
        method=np.array(methods),
        meta=np.array(json.dumps(meta)),
    )
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------------------------
# Reading the cache
# --------------------------------------------------------------------------------------------


class ChipCache:
    """The chip cache in memory: tags as arrays, chips decoded on demand (`chip`, `chips`)."""

    TAGS = ("dataset", "split", "kind", "identity", "subset", "style", "source", "method")

    def __init__(self, path: Path | str = DEFAULT_CACHE):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"{self.path}: chip cache not found; build it with "
                f"`python -m forensics.training.data --out {self.path}`")
        with np.load(self.path, allow_pickle=False) as z:
            self.jpeg = z["jpeg"]
            self.offsets = z["offsets"]
            for t in self.TAGS:
                setattr(self, t, z[t])
            self.meta = json.loads(str(z["meta"]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def chip(self, i: int) -> np.ndarray:
        return decode_chip(self.jpeg[self.offsets[i]:self.offsets[i + 1]])

    def chips(self, idx) -> np.ndarray:
        idx = list(idx)
        out = np.empty((len(idx), CHIP, CHIP, 3), np.uint8)
        for j, i in enumerate(idx):
            out[j] = self.chip(int(i))
        return out

    def select(self, **tags) -> np.ndarray:
        m = np.ones(len(self), bool)
        for k, v in tags.items():
            m &= getattr(self, k) == v
        return np.flatnonzero(m)

    def pairs(self, dataset: str, split: str) -> np.ndarray:
        """(n, 2) indices [sketch, photo] of the identities with both, sorted by identity."""
        sk = {self.identity[i]: i for i in self.select(dataset=dataset, split=split, kind="sketch")}
        ph = {self.identity[i]: i for i in self.select(dataset=dataset, split=split, kind="photo")}
        ids = sorted(set(sk) & set(ph))
        return np.array([[sk[k], ph[k]] for k in ids], np.int64).reshape(-1, 2)

    def pair_chips(self, dataset: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sketch chips, photo chips, identities) of one split's pairs."""
        p = self.pairs(dataset, split)
        return self.chips(p[:, 0]), self.chips(p[:, 1]), self.identity[p[:, 1]]


# --------------------------------------------------------------------------------------------
# The training pairs
# --------------------------------------------------------------------------------------------

#: The real pairs that may be trained on. CUFS test and FS2K val are never in this list.
TRAIN_PAIR_SPLITS = (("cufs", "train"), ("fs2k", "train"))


def _affine_coeffs(size: int, shift: tuple[float, float], angle_deg: float, scale: float, pad: int) -> tuple:
    """PIL inverse-affine coefficients (output → input) for a rotation/scale about the chip centre
    plus a shift, in an image padded by `pad` on every side, cropped back to `size`."""
    c = size / 2.0
    a = np.deg2rad(angle_deg)
    cos, sin = np.cos(a) / scale, np.sin(a) / scale
    # output pixel (x, y) in the crop → centred → inverse rotate/scale → + centre - shift + pad
    x0 = c - cos * c - sin * c - shift[0] + pad
    y0 = c + sin * c - cos * c - shift[1] + pad
    return (cos, sin, x0, -sin, cos, y0)


def augment_pair(sketch: np.ndarray, photo: np.ndarray, rng: np.random.Generator,
                 max_shift: float = 4.0, max_rot: float = 5.0, max_scale: float = 0.04,
                 p_flip: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The same mild flip/shift/rotate/scale applied to both chips (no colour changes)."""
    if rng.random() < p_flip:
        sketch, photo = sketch[:, ::-1], photo[:, ::-1]
    shift = (rng.uniform(-max_shift, max_shift), rng.uniform(-max_shift, max_shift))
    coeffs = _affine_coeffs(CHIP, shift, rng.uniform(-max_rot, max_rot), 1.0 + rng.uniform(-max_scale, max_scale),
                            pad=12)
    out = []
    for im in (sketch, photo):
        padded = Image.fromarray(np.pad(im, ((12, 12), (12, 12), (0, 0)), mode="edge"))
        out.append(np.asarray(padded.transform((CHIP, CHIP), Image.Transform.AFFINE, coeffs,
                                               resample=Image.Resampling.BILINEAR)))
    return out[0], out[1]


class ChipDataset(Dataset):
    """(sketch chip, photo chip) training pairs as uint8 tensors (3, 150, 150).

    Item ``k`` is a pure function of (seed, k): with probability ``p_real`` a real artist pair
    (CUFS train / FS2K train, drawn uniformly), else an LFW photo with a sketch synthesized by
    `sketchify` in a random style of ``styles`` (with ``caricature`` > 0, exaggerated by a strength
    drawn uniformly in [0, caricature]); then (if ``augment``) the same mild geometric augmentation on
    both. So a sampler that resumes at sample ``step * batch_size`` replays training exactly,
    whatever the number of workers. ``length`` is the number of samples it can be asked for.
    """

    def __init__(self, cache: ChipCache, p_real: float = 0.5, styles=("line", "pencil", "colour"),
                 augment: bool = True, seed: int = 0, length: int = 10**9,
                 real_splits=TRAIN_PAIR_SPLITS, caricature: float = 0.0):
        for ds, sp in real_splits:
            if (ds, sp) in (("cufs", "test"), ("fs2k", "val")):
                raise ValueError(f"{ds}/{sp} is held out for evaluation and must never be trained on")
        pairs = np.concatenate([cache.pairs(ds, sp) for ds, sp in real_splits]) if real_splits else np.zeros((0, 2), int)
        self.real_sketch = cache.chips(pairs[:, 0])
        self.real_photo = cache.chips(pairs[:, 1])
        self.lfw = cache.chips(cache.select(dataset="lfw")) if p_real < 1 else np.zeros((0, CHIP, CHIP, 3), np.uint8)
        if len(self.real_sketch) == 0 and p_real > 0:
            raise ValueError("no real training pairs in the cache")
        if len(self.lfw) == 0 and p_real < 1:
            raise ValueError("no LFW photos in the cache to synthesize sketches from")
        self.p_real, self.styles, self.augment = float(p_real), tuple(styles), bool(augment)
        self.seed, self.length, self.caricature = int(seed), int(length), float(caricature)

    def __len__(self) -> int:
        return self.length

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        rng = np.random.default_rng([self.seed, int(k)])
        real = rng.random() < self.p_real
        if real:
            j = int(rng.integers(len(self.real_sketch)))
            sketch, photo = self.real_sketch[j], self.real_photo[j]
        else:
            photo = self.lfw[int(rng.integers(len(self.lfw)))]
            style = self.styles[int(rng.integers(len(self.styles)))]
            # drawn only when asked for, so that recipes without caricature replay their samples exactly
            strength = rng.uniform(0.0, self.caricature) if self.caricature > 0 else 0.0
            sketch = sketchify(photo, style, rng, caricature=strength)
        if self.augment:
            sketch, photo = augment_pair(sketch, photo, rng)
        return sketch, photo, real

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        sketch, photo, _ = self.sample(k)
        return (torch.from_numpy(np.array(sketch)).permute(2, 0, 1).contiguous(),
                torch.from_numpy(np.array(photo)).permute(2, 0, 1).contiguous())


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the aligned-chip cache for sketch-inverter training.")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: ../shared/data)")
    ap.add_argument("--out", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--n-lfw", type=int, default=4000)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the CUFS train / FS2K chips")
    ap.add_argument("--lfw-quality", type=int, default=85, help="JPEG quality of the LFW chips")
    ap.add_argument("--eval-quality", type=int, default=95, help="JPEG quality of the held-out CUFS test chips")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    def progress(done, total, secs):
        if done % 512 < 64 or done == total:
            print(f"  {done}/{total} images, {secs:.0f} s", flush=True)

    s = build_chip_cache(args.data, args.out, args.n_lfw, args.quality, args.lfw_quality, args.eval_quality,
                         progress=progress)
    print(json.dumps(s, indent=1))
    print(f"wrote {args.out} ({s['bytes'] / 2**20:.1f} MiB: training + FS2K validation chips) and "
          f"{eval_cache_path(args.out)} ({s['eval_bytes'] / 2**20:.1f} MiB: CUFS test, evaluation only); "
          f"{s['n']} chips, {s['build_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
