"""What the training loop does besides training, as callbacks (docs/train.md, "Extension points").

:meth:`pgan_cli.gan.training.loop.Trainer.train` calls, in order, ``on_start`` once, ``on_step``
after every generator step (with the step's log record, or None when the step is not logged),
``on_epoch_end`` when an epoch's batches run out, ``on_end`` once training is over, and ``close``
always (also after an error or an interrupt). Two more hooks carry what one callback makes to
the others (:func:`notify`): ``on_record`` gets every record the training log writes, exactly as it
writes it (epoch-end records after the epoch's last critic steps, each step once), and
``on_file(trainer, kind, path)`` each file the loop wrote: ``grid`` (a sample grid, as it is drawn)
and ``checkpoint`` (the final checkpoint, once, after ``on_end``). The loop's own callbacks, in this
order: the training log (JSON lines; it also runs without a file when another callback wants the
records), the progress bar, the sample grids and the periodic checkpoints; ``--track`` adds
:class:`TrackRun`.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pgan_cli.errors import FormatError
from pgan_cli.params import OptionError


class TrainingCallback:
    """Base class: every hook does nothing."""

    def on_start(self, trainer) -> None:
        pass

    def on_step(self, trainer, record: dict[str, Any] | None) -> None:
        pass

    def on_epoch_end(self, trainer) -> None:
        pass

    def on_end(self, trainer) -> None:
        pass

    def close(self) -> None:
        pass

    def on_record(self, trainer, record: dict[str, Any]) -> None:
        """A record the training log wrote (read it, do not change it)."""

    def on_file(self, trainer, kind: str, path: Path) -> None:
        """A file the loop wrote: ``grid`` or ``checkpoint`` (the final one)."""


def notify(trainer, hook: str, *args: Any) -> None:
    """Call ``hook`` (``on_record``, ``on_file``) of every callback of the running loop."""
    for cb in getattr(trainer, "running_callbacks", ()):
        getattr(cb, hook)(trainer, *args)


def wants_records(cb: TrainingCallback) -> bool:
    """Whether ``cb`` reads the log records (the loop then keeps the log's records without a file)."""
    return type(cb).on_record is not TrainingCallback.on_record


class TrainingLog(TrainingCallback):
    """The JSON-lines training log: a record per ``--log-every`` step, at every epoch end and at the
    last step, never the same step twice; a resumed run first drops what a killed run logged past
    the checkpoint (:func:`trim_log`). Each record goes to the other callbacks' ``on_record`` too;
    with ``path`` None there is no file, only those."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path is not None else None
        self.file = None
        self.written = 0  # the last step with a record in the log
        self.pending: dict[str, Any] | None = None  # an epoch_end record waiting for the epoch's last critic steps
        self.trainer = None

    def on_start(self, trainer) -> None:
        from pgan_cli.files import make_dirs

        self.trainer = trainer
        if self.path is None:
            self.written = trainer.step  # what a resumed run logged before its checkpoint is not repeated
            return
        make_dirs(self.path.parent)
        if trainer.step > 0:
            self.written = trim_log(self.path, trainer.step)
            self.file = open(self.path, "a")
        else:
            self.file = open(self.path, "w")

    def emit(self, rec: dict[str, Any]) -> None:
        if rec["step"] <= self.written:
            return
        self.written = rec["step"]
        if self.file is not None:
            self.file.write(json.dumps(rec, sort_keys=True) + "\n")
            self.file.flush()
        notify(self.trainer, "on_record", rec)

    def on_step(self, trainer, record) -> None:
        if record is None:
            return
        if "end" in record["events"]:
            trainer.refresh_record(record)
            self.emit(record)
        elif "epoch_end" in record["events"]:
            self.pending = record
        else:
            self.emit(record)

    def on_epoch_end(self, trainer) -> None:
        rec, self.pending = self.pending, None
        if rec is None and trainer.step > self.written:
            # a resumed run whose checkpoint came just before this epoch's end, and the killed
            # run's record of that step was lost: the position, without losses
            rec = {"step": trainer.step, "events": ["epoch_end"]}
        if rec is not None:
            if trainer.finished():
                rec["events"].append("end")
            trainer.refresh_record(rec)
            self.emit(rec)

    def on_end(self, trainer) -> None:
        if self.pending is not None:  # not reached: the loop ends at an epoch end or after an `end` step
            self.pending["events"].append("end")
            trainer.refresh_record(self.pending)
            self.emit(self.pending)
            self.pending = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class ProgressBar(TrainingCallback):
    """A progress bar on stderr with the last logged losses."""

    def __init__(self, total: int):
        self.total = total
        self._stack = ExitStack()
        self.advance = None

    def on_start(self, trainer) -> None:
        from pgan_cli import console

        self.advance = self._stack.enter_context(console.progress_task("train", self.total))
        if trainer.step:
            self.advance(min(trainer.step, self.total))

    def on_step(self, trainer, record) -> None:
        last = trainer.last_record
        info = f"loss_d {last['loss_d']:.3f} loss_g {last['loss_g']:.3f}" if last and "loss_d" in last else ""
        self.advance(1, info=info)

    def close(self) -> None:
        self._stack.close()


class SampleGrids(TrainingCallback):
    """A grid of samples on a fixed noise batch every ``every`` generator steps (``stepNNNNNNN.png``)."""

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), int(every)
        self.fixed = None  # (z, labels): the same noise in every picture, seeded by the run's seed

    def on_start(self, trainer) -> None:
        from pgan_cli.files import make_dirs

        make_dirs(self.folder)

    def on_step(self, trainer, record) -> None:
        if self.every and trainer.step % self.every == 0:
            notify(trainer, "on_file", "grid", self.draw(trainer, self.folder / f"step{trainer.step:07d}.png"))

    def draw(self, trainer, path: Path) -> Path:
        """A picture of G's samples (the EMA copy when kept) on the fixed noise batch; for vectors a
        scatter plot over the real data."""
        import numpy as np
        import torch

        from pgan_cli.gan.checkpoint import unwrap
        from pgan_cli.imaging import make_grid, save_png
        from pgan_cli.gan.sampling import save_scatter

        config, images = trainer.config, len(trainer.shape) == 3
        if self.fixed is None:
            n = 64 if images else 512
            g = torch.Generator().manual_seed(int(config["seed"]) + 1)
            z = torch.randn(n, int(config["latent_dim"]), generator=g).to(trainer.device)
            y = (torch.arange(n) % trainer.num_classes).to(trainer.device) if trainer.conditional else None
            self.fixed = (z, y)
        z, y = self.fixed
        gen = trainer.G_ema if trainer.G_ema is not None else unwrap(trainer.G)
        was_training = gen.training
        gen.eval()
        with torch.no_grad():
            x = (gen(z, y) if trainer.conditional else gen(z)).float().cpu()
        gen.train(was_training)
        if images:
            return save_png(make_grid(x.numpy(), ncol=8, pad=1, background=0), path,
                            scale=max(1, 128 // trainer.shape[1]))
        sc = config["data_scaling"]
        mean, std = np.asarray(sc["mean"]), np.asarray(sc["std"])
        real = trainer.data[:2000].cpu().numpy() * std + mean
        return save_scatter(path, x.numpy() * std + mean, real)


class PeriodicCheckpoint(TrainingCallback):
    """The checkpoint every ``every`` generator steps (atomic: a killed run resumes from the last one)."""

    def __init__(self, every: int):
        self.every = int(every)

    def on_step(self, trainer, record) -> None:
        if self.every and trainer.step % self.every == 0:
            trainer.save()


class TrackRun(TrainingCallback):
    """Experiment tracking (``--track``; :mod:`pgan_cli.tracking`), main process only: the run's
    config as parameters, every record of the training log (``on_record``: the numbers, by step),
    each sample grid as an image and the final checkpoint as a file. The run is recorded in the
    checkpoint's provenance (``tracking``), so ``--resume`` continues it.

    A failure to open the run stops training before its first step; a failure after that is one
    warning, and tracking stops while training goes on: it never costs the checkpoint."""

    # kept in the checkpoint only: which canaries were trained on is what a DP audit is scored against
    PRIVATE = ("audit_canaries.included", "audit_canaries.rows")

    def __init__(self, spec, resume: dict[str, Any] | None = None):
        self.spec, self.resume = spec, resume
        self.tracker = None
        self.record: dict[str, Any] | None = None
        self.done = False  # the final checkpoint was written
        self.error: str | None = None

    def on_start(self, trainer) -> None:
        if not trainer.dist.main:
            return
        from pgan_cli import __version__
        from pgan_cli.tracking import flatten_params, open_tracker

        tracker = open_tracker(self.spec)
        config = trainer.config
        tags = {"pgan.command": "train", "pgan.version": __version__, "pgan.arch": str(config.get("arch")),
                "pgan.checkpoint": str(trainer.output.resolve()) if trainer.output else "",
                "pgan.data_sha256": str(config.get("data_sha256"))}
        tracker.start(trainer.output.stem if trainer.output else "train", tags, resume=self.resume,
                      step=trainer.step)
        self.tracker, self.record = tracker, tracker.record()
        trainer.provenance["tracking"] = self.record
        params = {k: v for k, v in flatten_params(config, limit=1 << 30).items() if k not in self.PRIVATE}
        if trainer.step:
            self._safe(tracker.set_tags, {"pgan.resumed_at_step": str(trainer.step)})
        self._safe(tracker.log_params, params)

    def _safe(self, fn, *args) -> None:
        if self.tracker is None or self.error is not None:
            return
        try:
            fn(*args)
        except Exception as e:
            self._failed(e)

    def _failed(self, e: Exception) -> None:
        from pgan_cli import console

        self.error = " ".join(f"{type(e).__name__}: {e}".split())[:500]
        console.warn(f"tracking ({self.spec.backend}) stopped: {self.error}; training goes on and writes its "
                     f"checkpoint as usual")

    def on_record(self, trainer, record) -> None:
        from pgan_cli.tracking import numbers

        if self.tracker is not None:
            self._safe(self.tracker.log_metrics, numbers(record), record["step"])

    def on_file(self, trainer, kind, path) -> None:
        if self.tracker is None:
            return
        if kind == "grid":
            self._safe(self.tracker.log_image, path, trainer.step)
        elif kind == "checkpoint":
            self._safe(self.tracker.log_artifact, path, "checkpoint")
            self.done = True

    def close(self) -> None:
        tracker, self.tracker = self.tracker, None
        if tracker is None:
            return
        exc = sys.exc_info()[0]  # close() runs in the loop's finally: the error or interrupt, if any
        status = "FINISHED" if self.done else ("KILLED" if exc and issubclass(exc, KeyboardInterrupt) else "FAILED")
        try:
            tracker.end(status)
        except Exception as e:
            if self.error is None:
                self._failed(e)

    def result(self) -> dict[str, Any] | None:
        """Where the run went (``pgan train --json``'s ``tracking``), with the error that stopped it."""
        if self.record is None:
            return None
        return {**self.record, **({"error": self.error} if self.error else {})}


def read_training_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a training log (one JSON object with an integer ``step`` per line, as
    :class:`TrainingLog` writes them). A torn last line (the run was killed while writing it) is
    dropped; any other line that is not such a record is a :class:`FormatError` naming it."""
    from pgan_cli.files import loads_json

    p = Path(path)
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = loads_json(line, f"{p} line {i}")
        except FormatError:
            if i == len(lines):
                break
            rec = None
        step = rec.get("step") if isinstance(rec, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            raise FormatError(f"{p} line {i} is not a training log record (no integer 'step'); give the log "
                              f"pgan train --log wrote")
        records.append(rec)
    return records


def trim_log(path: str | os.PathLike, last_step: int) -> int:
    """Keep only the records of the training log ``path`` at steps <= ``last_step`` (rewritten
    atomically); return the last kept step (0 if none).

    A resumed run continues from its checkpoint's step; the records a killed run wrote after it
    describe weights that no longer exist, so the log stays one history with each step once.
    """
    from pgan_cli.atomic import atomic_path

    p = Path(path)
    if not p.exists():
        return 0
    try:
        records = read_training_log(p)
    except FormatError as e:
        raise OptionError(f"{OptionError.literal(e)}; give $log the run's own log or a new file", "log") from None
    keep = [r for r in records if r["step"] <= last_step]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep)
    if text != p.read_text(encoding="utf-8", errors="replace"):
        with atomic_path(p, suffix=".jsonl.tmp") as tmp:
            tmp.write_text(text, encoding="utf-8")
    return max((r["step"] for r in keep), default=0)
