"""The TensorBoard backend of :mod:`pgan_cli.tracking`: event files in one folder, written by
``torch.utils.tensorboard.SummaryWriter`` (docs/train.md, "Tracking")."""

from __future__ import annotations

import os
from pathlib import Path

from pgan_cli.tracking import MAX_TAG_VALUE, Tracker, TrackSpec, _key, _md, _quiet, flatten_params


class TensorBoardTracker(Tracker):
    """Event files in one folder through ``torch.utils.tensorboard.SummaryWriter``."""

    backend = "tensorboard"

    def __init__(self, spec: TrackSpec):
        super().__init__(spec)
        self.writer = None
        self.step = 0

    def start(self, name, tags=None, *, resume=None, step=0):
        from pgan_cli.files import make_dirs

        make_dirs(self.spec.folder)
        with _quiet():
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run hides what a killed run logged past its checkpoint (as trim_log does
            # for the JSON-lines log): TensorBoard purges events at steps >= purge_step
            self.writer = SummaryWriter(str(self.spec.folder), purge_step=step + 1 if step else None)
        self.step = step + 1 if step else 0
        if tags:
            self.set_tags(tags)

    def log_params(self, params):
        flat = flatten_params(params, limit=MAX_TAG_VALUE)
        rows = "\n".join(f"| {k} | {_md(v)} |" for k, v in flat.items())
        with _quiet():
            self.writer.add_text("params", "| parameter | value |\n|---|---|\n" + rows, self.step)

    def log_metrics(self, metrics, step):
        with _quiet():
            for k, v in metrics.items():
                self.writer.add_scalar(k, float(v), int(step))

    def log_image(self, path, step, tag="samples"):
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            grey = im.mode in ("L", "1", "I;16", "I", "F")
            pixels = np.asarray(im.convert("L" if grey else "RGB"))
        with _quiet():
            self.writer.add_image(tag, pixels, int(step), dataformats="HW" if grey else "HWC")

    def log_artifact(self, path, folder=None):
        from pgan_cli.files import sha256_file

        p = Path(path)
        with _quiet():
            self.writer.add_text(f"artifacts/{folder or p.name}",
                                 f"{_md(str(p.resolve()))} (SHA-256 {sha256_file(p)}; TensorBoard keeps no files)",
                                 self.step)

    def set_tags(self, tags):
        with _quiet():
            for k, v in tags.items():
                self.writer.add_text(f"tags/{_key(k)}", _md(str(v)[:MAX_TAG_VALUE]), self.step)

    def end(self, status="FINISHED"):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def record(self):
        return {"backend": "tensorboard", "dir": str(Path(os.path.abspath(self.spec.folder)))}
