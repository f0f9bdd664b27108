"""Train the sketch inverter (Convolutional Sketch Inversion with an identity loss).

    python -m forensics.training.trainer --config configs/inverter.json [--resume]
        [--device cuda|cpu] [--max-minutes M] [--run-dir DIR] [--export PATH]

Reads aligned chips from the cache built by ``python -m forensics.training.data`` (no face
detection happens here, so facenet-pytorch is not needed). `Trainer`'s steps, in order:

1. ``setup``: config (JSON merged over `forensics.training.config.DEFAULTS`), run folder
   ``runs/<name>`` (or ``--run-dir``), logging to ``train.log`` and stdout, metrics to
   ``metrics.jsonl``; seeds; CUDA: bf16 autocast, channels_last, TF32; CPU: 2 threads;
   data: `ChipDataset` (real CUFS/FS2K train pairs + LFW photos with synthesized sketches);
   sample k of the run is a pure function of (seed, k), so resuming replays the same data;
   model `SketchInverter`, frozen dlib ResNet as the loss network, Adam, linear warm-up then
   cosine decay; with ``--max-minutes`` the decay also follows the clock (whichever of
   step/steps and elapsed/allowed time is further along), so a time-boxed run still anneals;
   with ``loss.adversarial > 0`` also a conditional PatchGAN discriminator (config ``gan``,
   `forensics.training.adversarial`), trained one step per inverter step;
2. ``resume``: ``--resume`` continues from ``last.pt``; ``init`` starts from exported weights;
3. ``train_steps``: the training loop;
4. ``evaluate``, every ``eval_every`` steps: the 200 FS2K validation pairs (never trained on), or
   those listed by ``select_identities`` (the select half of the development protocol):
   closed-set rank-1 among their validation photos for the raw sketches and for the inverted
   ones (cosine of L2-normalised dlib descriptors), mean identity cosine synth↔photo; the best
   (score = rank-1 inverted + 0.1 x mean cosine; with ``"selection": "whitened"`` the rank-1 is
   measured in the sketch search space that queries search in, `forensics.whitening`) is kept in
   ``best.pt``;
5. ``checkpoint``: ``last.pt`` (model, optimizer, discriminator if any, step, RNG states, best
   score, elapsed time) every ``checkpoint_every`` steps and on exit, SIGTERM/SIGINT and
   ``--max-minutes`` included;
6. ``finish``: the best weights measured on the held-out CUFS test pairs (when their cache
   exists) and exported as a plain state_dict (fp16 by default) with a JSON sidecar (name,
   version, sha256, config, step, metrics) for `forensics.inversion.invert`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from forensics.inversion.invert import load_inverter
from forensics.inversion.network import InverterConfig, SketchInverter, count_parameters
from forensics.training.adversarial import (
    DiscriminatorConfig,
    PatchDiscriminator,
    discriminator_loss,
    generator_loss,
)
from forensics.training.checkpoints import (
    atomic_save,
    export_weights,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    state_dict_of,
)
from forensics.training.config import load_config
from forensics.training.data import ChipCache, ChipDataset, eval_cache_path
from forensics.training.evaluation import Evaluator, evaluate_weights, load_loss_network, rank1, save_preview
from forensics.training.losses import InversionLoss

log = logging.getLogger("forensics.training.trainer")


def setup_logging(run_dir: Path) -> None:
    """The training package's log to ``<run_dir>/train.log`` and stdout (replacing earlier handlers)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("forensics.training")
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for h in (logging.FileHandler(run_dir / "train.log"), logging.StreamHandler(sys.stdout)):
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False


def lr_at(progress: float, step: int, optim_cfg: dict) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from lr to lr*min_lr_frac as progress → 1."""
    lr, lo = optim_cfg["lr"], optim_cfg["lr"] * optim_cfg["min_lr_frac"]
    warm = optim_cfg["warmup_steps"]
    if step < warm:
        return lr * (step + 1) / warm
    p = min(max(progress, 0.0), 1.0)
    return lo + 0.5 * (lr - lo) * (1.0 + math.cos(math.pi * p))


def _worker_init(_: int) -> None:
    # workers leave stopping to the main process, which saves a checkpoint first
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Stop:
    """Set by SIGTERM/SIGINT; the loop checks it after every step."""

    def __init__(self):
        self.signal = None

    def __call__(self, signum, frame):
        self.signal = signum


class Trainer:
    """One training run in ``run_dir``: `setup` (in the constructor), `resume`, `train_steps`
    (calling `evaluate` and `checkpoint` on schedule), `finish`. `train` runs them in order."""

    def __init__(self, cfg: dict, run_dir: Path, device: str = "cpu", max_minutes: float | None = None):
        self.t_start = time.time()
        self.cfg, self.run_dir, self.device, self.max_minutes = cfg, run_dir, device, max_minutes
        self.last, self.best = run_dir / "last.pt", run_dir / "best.pt"
        self.state = {"step": 0, "best_score": -1.0, "best_step": -1, "best_metrics": None, "progress": 0.0,
                      "elapsed": 0.0, "config": cfg}
        self.stop = _Stop()
        self._setup_run()
        self._setup_data()
        self._setup_model()

    # -- setup ---------------------------------------------------------------------------------

    def _setup_run(self) -> None:
        setup_logging(self.run_dir)
        (self.run_dir / "config.json").write_text(json.dumps(self.cfg, indent=1) + "\n")
        seed_everything(self.cfg["seed"])
        self.cuda = self.device.startswith("cuda")
        if self.cuda and not torch.cuda.is_available():
            raise SystemExit(f"--device {self.device}: this torch ({torch.__version__}) sees no CUDA device")
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        else:
            torch.set_num_threads(2)
        self.amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else nullcontext()
        self.mem = torch.channels_last  # faster on CPU (mkldnn) as well as on CUDA

    def _setup_data(self) -> None:
        cfg, d = self.cfg, self.cfg["data"]
        self.cache = ChipCache(cfg["cache"])
        self.bs, self.steps = int(cfg["batch_size"]), int(cfg["steps"])
        self.dataset = ChipDataset(self.cache, p_real=d["p_real"], styles=d["styles"], augment=d["augment"],
                                   seed=cfg["seed"], length=self.steps * self.bs, caricature=d["caricature"])
        log.info("run %s on %s: %d real train pairs, %d LFW photos, p_real=%.2f, styles %s, caricature %g, "
                 "batch %d, %d steps", cfg["name"], self.device, len(self.dataset.real_sketch), len(self.dataset.lfw),
                 d["p_real"], "/".join(d["styles"]), d["caricature"], self.bs, self.steps)

    def _setup_model(self) -> None:
        """The inverter, the frozen loss network, the optimizer and (adversarial loss) the discriminator."""
        cfg, o = self.cfg, self.cfg["optim"]
        self.model = SketchInverter(cfg["model"]).to(self.device).to(memory_format=self.mem)
        self.dlib = load_loss_network(cfg, self.device)
        self.criterion = InversionLoss(self.dlib, cfg["loss"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o["lr"], betas=tuple(o["betas"]),
                                          weight_decay=o["weight_decay"])
        log.info("model: %s, %.2fM parameters; loss weights %s", cfg["model"],
                 count_parameters(self.model) / 1e6, cfg["loss"])
        self.w_adv = self.criterion.w.adversarial
        self.disc = self.disc_opt = self.gcfg = None
        if self.w_adv > 0:
            self.gcfg = DiscriminatorConfig.from_dict(cfg.get("gan"))
            self.disc = PatchDiscriminator(self.gcfg).to(self.device).to(memory_format=self.mem)
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=self.gcfg.lr, betas=self.gcfg.betas)
            log.info("adversarial loss (conditional PatchGAN, LSGAN) weight %g from step %d: discriminator %s, "
                     "%.2fM parameters", self.w_adv, self.gcfg.start_step, self.gcfg.to_dict(),
                     count_parameters(self.disc) / 1e6)

    # -- resume and evaluation ----------------------------------------------------------------

    def resume(self, resume: bool) -> None:
        """Continue from ``last.pt`` (with `resume`, when it exists), else start from ``init`` weights if any."""
        resumed = resume and self.last.is_file()
        if resumed:
            ck = load_checkpoint(self.last, self.model, self.optimizer, self.device, self.disc, self.disc_opt)
            for k in self.state:
                if k in ck and k != "config":
                    self.state[k] = ck[k]
            log.info("resumed from %s at step %d (best score %.4f at step %d)", self.last, self.state["step"],
                     self.state["best_score"], self.state["best_step"])
        elif resume:
            log.info("--resume: no %s yet, starting fresh", self.last)
        if self.cfg.get("init") and not resumed:
            self._init_from(Path(self.cfg["init"]))

    def _init_from(self, weights: Path) -> None:
        """Start from exported weights (SHA-256 checked against their sidecar) instead of random ones."""
        src = load_inverter(weights, "cpu")
        model_cfg = self.cfg["model"]
        if InverterConfig.from_dict(src.meta["config"]["model"]) != InverterConfig.from_dict(model_cfg):
            raise SystemExit(f"init: {weights} was trained with model {src.meta['config']['model']}, "
                             f"this config has {model_cfg}")
        self.model.load_state_dict(src.state_dict())
        log.info("initialised from %s (%s, sha256 %s)", weights, src.info.version, src.info.sha256[:16])

    def prepare_evaluation(self) -> None:
        """The validation evaluator; its setup time sizes the time kept back for the final evaluations."""
        t_ev = time.time()
        select = self.cfg.get("select_identities")
        identities = json.loads(Path(select).read_text()) if select else None
        self.evaluator = Evaluator(self.cache, self.dlib, self.device, selection=self.cfg.get("selection", "raw"),
                                   identities=identities)
        t_ev = time.time() - t_ev  # embedding 400 chips: about what one evaluation costs
        log.info("validation: %d FS2K pairs%s; raw sketches rank-1 %.3f", len(self.evaluator.d_photo),
                 f" (those of {select})" if select else "", rank1(self.evaluator.d_raw, self.evaluator.d_photo))
        self.budget = self.max_minutes * 60.0 if self.max_minutes else None
        # time kept back for the final evaluations (FS2K val, CUFS test if present) and the export
        self.reserve = 4 * t_ev + 10 if self.budget else 0.0

    def evaluate(self, step: int) -> dict:
        """Validation metrics at `step`; a better score replaces ``best.pt``; preview and metrics written."""
        t = time.time()
        m = self.evaluator(self.model)
        m["step"] = step
        improved = m["score"] > self.state["best_score"]
        if improved:
            self.state.update(best_score=m["score"], best_step=step, best_metrics=m)
            atomic_save({"model": state_dict_of(self.model), "step": step, "metrics": m, "config": self.cfg},
                        self.best)
        save_preview(self.evaluator, self.model, self.run_dir / "preview.png")
        self._append_metrics({"kind": "eval", **m})
        self.reserve = max(self.reserve, 3.5 * (time.time() - t) + 10)
        log.info("eval step %d: rank-1 raw %.3f -> inverted %.3f (fused %.3f), rank-5 %.3f -> %.3f, "
                 "cos %.3f -> %.3f%s [%.1f s]", step, m["rank1_raw"], m["rank1_inv"], m["rank1_fused"],
                 m["rank5_raw"], m["rank5_inv"], m["cos_raw"], m["cos_inv"], "  *best*" if improved else "",
                 time.time() - t)
        return m

    def checkpoint(self) -> None:
        self.state["elapsed"] = self.elapsed0 + time.time() - self.t_loop
        save_checkpoint(self.last, self.model, self.optimizer, self.state, self.disc, self.disc_opt)

    def _append_metrics(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- the training loop --------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        """Batches from the run's current step on (sample k is a function of (seed, k))."""
        workers, bs = int(self.cfg["data"]["num_workers"]), self.bs
        return DataLoader(self.dataset, batch_size=bs, sampler=range(self.state["step"] * bs, self.steps * bs),
                          num_workers=workers, pin_memory=self.cuda, drop_last=True,
                          worker_init_fn=_worker_init if workers else None,
                          persistent_workers=False, prefetch_factor=2 if workers else None)

    def train_steps(self) -> str:
        """Train until the last step, a signal or the time budget; checkpoint on the way out.
        Returns why it stopped."""
        old_handlers = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}
        self.progress0, self.elapsed0 = self.state["progress"], self.state["elapsed"]
        self.fwd = torch.compile(self.model) if self.cfg.get("compile") and self.cuda else self.model
        self.t_loop = time.time()
        loader = self._loader()
        self.model.train()
        self.t_log, self.n_log, self.sums = time.time(), 0, {}
        self.last_eval_step = -1
        why = "done"
        try:
            for sketch, photo in loader:
                if self.state["step"] >= self.steps:
                    break
                lr = self._schedule()
                loss, parts = self.train_step(sketch, photo)
                self._after_step(lr, loss, parts)
                why = self._stop_reason() or why
                if why != "done":
                    break
        except BaseException as e:  # the checkpoint below is still written; the log says why it stopped
            why = f"{type(e).__name__}: {e}"
            raise
        finally:
            del loader
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self.checkpoint()
            log.info("stopped at step %d (%s); checkpoint %s", self.state["step"], why, self.last)
        return why

    def _schedule(self) -> float:
        """Set this step's learning rate (inverter, and discriminator in proportion) and return it."""
        step, o = self.state["step"], self.cfg["optim"]
        time_frac = 0.0
        if self.budget:  # --max-minutes counts from the start of the run; the final evaluations must fit in it
            deadline = self.t_start + self.budget - self.reserve
            time_frac = (time.time() - self.t_loop) / max(deadline - self.t_loop, 1.0)
        # monotone: a resumed run continues the schedule where the last one left it
        p0 = self.progress0
        self.state["progress"] = max(p0, step / self.steps, p0 + (1.0 - p0) * time_frac)
        lr = lr_at(self.state["progress"], step, o)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        if self.disc is not None:  # the discriminator's rate follows the same schedule
            for g in self.disc_opt.param_groups:
                g["lr"] = self.gcfg.lr * lr / o["lr"]
        return lr

    def train_step(self, sketch: torch.Tensor, photo: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One optimizer step of the inverter (and of the discriminator); (loss, its parts)."""
        sketch = sketch.to(self.device, non_blocking=True).float().contiguous(memory_format=self.mem)
        photo = photo.to(self.device, non_blocking=True).float().contiguous(memory_format=self.mem)
        with self.amp:
            synth = self.fwd(sketch)
            loss, parts = self.criterion(synth, photo)
            if self.disc is not None and self.state["step"] >= self.gcfg.start_step:
                self.disc.requires_grad_(False)
                parts["adv_g"] = generator_loss(self.disc, sketch, synth)
                loss = loss + self.w_adv * parts["adv_g"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg["optim"].get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["optim"]["grad_clip"])
        self.optimizer.step()
        if self.disc is not None:
            parts["adv_d"] = self._discriminator_step(sketch, synth, photo)
        return loss, parts

    def _discriminator_step(self, sketch, synth, photo) -> torch.Tensor:
        self.disc.requires_grad_(True)
        with self.amp:
            d_loss = discriminator_loss(self.disc, sketch, synth, photo)
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        return d_loss

    def _after_step(self, lr: float, loss: torch.Tensor, parts: dict) -> None:
        """Count the step; log, evaluate and checkpoint when they are due."""
        self.state["step"] += 1
        step = self.state["step"]
        self.n_log += 1
        for k, v in {"loss": loss, **parts}.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach()
        if step % self.cfg["log_every"] == 0 or step == 1:
            self._log_training(step, lr)
        if step % self.cfg["eval_every"] == 0:
            self.evaluate(step)
            self.last_eval_step = step
        if step % self.cfg["checkpoint_every"] == 0:
            self.checkpoint()

    def _log_training(self, step: int, lr: float) -> None:
        avg = {k: float(v) / self.n_log for k, v in self.sums.items()}
        rate = self.n_log / (time.time() - self.t_log)
        log.info("step %d/%d  lr %.2e  %s  %.2f steps/s (%.0f img/s)  progress %.3f", step, self.steps, lr,
                 "  ".join(f"{k} {v:.4f}" for k, v in avg.items()), rate, rate * self.bs, self.state["progress"])
        self._append_metrics({"kind": "train", "step": step, "lr": lr, "steps_per_s": rate, **avg})
        self.t_log, self.n_log, self.sums = time.time(), 0, {}

    def _stop_reason(self) -> str | None:
        if self.stop.signal is not None:
            return f"signal {self.stop.signal}"
        if self.budget and time.time() >= self.t_start + self.budget - self.reserve:
            return f"--max-minutes {self.max_minutes:g} reached"
        return None

    # -- the end of the run -------------------------------------------------------------------

    def finish(self, why: str, export_path: Path | None) -> dict:
        """Final evaluation, the held-out CUFS test metrics of the best weights, their export."""
        step = self.state["step"]
        if self.last_eval_step != step and self.stop.signal is None:
            self.evaluate(step)
            self.checkpoint()  # with the final best score
        result = {"step": step, "best_step": self.state["best_step"], "best_metrics": self.state["best_metrics"],
                  "stopped": why, "seconds": round(time.time() - self.t_start, 1)}
        if not self.best.is_file():
            return result
        b = torch.load(self.best, map_location="cpu", weights_only=False)
        metrics = {"fs2k_val": b["metrics"]}
        held_out = eval_cache_path(self.cfg["cache"])
        if held_out.is_file() and self.stop.signal is None:
            metrics["cufs_test"] = self._held_out_test(b, held_out)
        result["metrics"] = metrics
        if export_path is not None:
            side = export_weights(b["model"], export_path, self.cfg, b["step"], metrics)
            log.info("exported best weights (step %d, FS2K val rank-1 %.3f) to %s (sha256 %s)", b["step"],
                     b["metrics"]["rank1_inv"], export_path, side["sha256"][:16])
            result["export"] = str(export_path)
        return result

    def _held_out_test(self, best: dict, held_out: Path) -> dict:
        # reported only: the CUFS test pairs never choose anything (best.pt is chosen on FS2K val)
        getattr(self.model, "_orig_mod", self.model).load_state_dict(best["model"])
        mt = Evaluator(ChipCache(held_out), self.dlib, self.device, dataset="cufs", split="test")(self.model)
        log.info("CUFS test (held out; best weights, step %d): rank-1 raw %.3f -> inverted %.3f (fused %.3f); %s",
                 best["step"], mt["rank1_raw"], mt["rank1_inv"], mt["rank1_fused"],
                 ", ".join(f"{k} {v['rank1_raw']:.3f}->{v['rank1_inv']:.3f}"
                           for k, v in mt.get("per_subset", {}).items()))
        return mt


def train(cfg: dict, run_dir: Path, device: str = "cpu", resume: bool = False, max_minutes: float | None = None,
          export_path: Path | None = None) -> dict:
    """One training run (see the module docstring); returns its summary."""
    trainer = Trainer(cfg, run_dir, device, max_minutes)
    trainer.resume(resume)
    trainer.prepare_evaluation()
    why = trainer.train_steps()
    return trainer.finish(why, export_path)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/inverter.json"))
    ap.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt if present")
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop gracefully (with a checkpoint) after M minutes")
    ap.add_argument("--run-dir", type=Path, default=None, help="default: runs/<name>")
    ap.add_argument("--export", type=Path, default=None, help="write the best weights here (+ .json sidecar); "
                    "default: <run-dir>/sketch_inverter.pt")
    ap.add_argument("--cache", default=None, help="override the config's chip cache path")
    ap.add_argument("--dlib-weights", default=None, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--steps", type=int, default=None, help="override the config's steps")
    ap.add_argument("--workers", type=int, default=None, help="override the config's data.num_workers")
    ap.add_argument("--select-identities", default=None, metavar="JSON",
                    help="override the config's select_identities (FS2K validation pairs choosing the checkpoint)")
    ap.add_argument("--evaluate", type=Path, default=None, metavar="WEIGHTS",
                    help="only evaluate exported weights (FS2K val, and CUFS test if its cache exists), print JSON")
    return ap.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict:
    over: dict = {}
    if args.cache:
        over["cache"] = args.cache
    if args.dlib_weights:
        over["dlib_weights"] = args.dlib_weights
    if args.steps:
        over["steps"] = args.steps
    if args.workers is not None:
        over["data"] = {"num_workers": args.workers}
    if args.select_identities:
        over["select_identities"] = args.select_identities
    return over


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    cfg = load_config(args.config, _overrides(args))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.evaluate:
        print(json.dumps(evaluate_weights(args.evaluate, cfg, device), indent=1), flush=True)
        return 0
    run_dir = args.run_dir or Path("runs") / cfg["name"]
    export = args.export or run_dir / "sketch_inverter.pt"
    res = train(cfg, run_dir, device=device, resume=args.resume, max_minutes=args.max_minutes, export_path=export)
    print(json.dumps(res, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
