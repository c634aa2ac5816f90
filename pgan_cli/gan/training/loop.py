"""The GAN trainer behind ``pgan train``: dcgan / wgan / wgan-gp / sngan, conditional (AC-GAN),
resumable, data-parallel under ``torchrun``.

Algorithms: DCGAN (Radford et al. 2016), WGAN (Arjovsky et al. 2017), WGAN-GP (Gulrajani et al.
2017), SNGAN (Miyato et al. 2018), AC-GAN (Odena et al. 2017, as pGAN conditioned on the
anatomical region); see :mod:`pgan_cli.gan.training.losses` for the formulas and
:mod:`pgan_cli.gan.training.defaults` for the per-arch defaults. D sees real and generated images
through :class:`~pgan_cli.gan.training.augment.DiscriminatorView` (DiffAugment, ADA); lazy R1
(Mescheder et al. 2018) and an EMA of G's weights are options of the config.

The loop walks over the real data in epochs. Every real batch is one critic step
(:meth:`Trainer.critic_step`); after every ``n_critic`` critic steps comes one generator step
(:meth:`Trainer.generator_step`). ``step`` counts generator steps. The order of the data in
epoch ``e`` depends only on ``(seed, e)``, and a checkpoint stores the position (epoch, batch,
critic steps), the optimiser states and every RNG state, so a resumed run continues exactly
where the saved one stopped: on CPU, 2 + 2 epochs give the same weights as 4 epochs.

Extension points (e.g. DP-SGD on the discriminator, Abadi et al. 2016): subclass
:class:`Trainer` and override :meth:`~Trainer.build_discriminator` (the one place D is made),
:meth:`~Trainer.make_d_optimizer` (the one place its optimiser is made),
:meth:`~Trainer.real_batches` (the one place real batches come from) and/or
:meth:`~Trainer.critic_step` (every update that touches real data goes through it);
:meth:`~Trainer.checkpoint_extra` adds entries to the checkpoint. The config's ``norm`` picks
BatchNorm, GroupNorm or no normalisation in D.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) each rank reads its share of every epoch's
batch (the global ``batch_size`` is split across ranks), gradients are averaged with an
all-reduce after each backward pass (the data-parallel scheme of DDP, done by hand as StyleGAN2-ADA
does, because DDP does not support the double backward of the gradient penalty), NCCL on GPUs
and gloo on CPU; rank 0 writes the log, the sample grids and the one checkpoint.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pgan_cli import console, interrupts
from pgan_cli.gan.checkpoint import build_networks, finite_weights, get_rng_state, save_checkpoint, set_rng_state, unwrap
from pgan_cli.errors import FormatError, InputError
from pgan_cli.params import OptionError
from pgan_cli.gan.training import losses
from pgan_cli.gan.training.augment import DiscriminatorView
from pgan_cli.gan.training.config import BATCH_NORM_MIN_ROWS, batch_per_process
from pgan_cli.gan.training.callbacks import (PeriodicCheckpoint, ProgressBar, SampleGrids, TrainingCallback,
                                         TrainingLog, notify, wants_records)
from pgan_cli.gan.training.defaults import DEFAULT_CHECKPOINT_EVERY, DEFAULT_LOG_EVERY, R1_EVERY, augment_name
from pgan_cli.gan.training.distributed import Dist


def grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """The global L2 norm of the gradients of ``params``."""
    norms = [p.grad.detach().float().norm(2) for p in params if p.grad is not None]
    return torch.stack(norms).norm(2) if norms else torch.zeros(())


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of the data in ``epoch``: a function of (seed, epoch) only."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)]).permutation(n)


# ---- the trainer --------------------------------------------------------------------------------
class Trainer:
    """Train a GAN from a config (see :func:`make_config`) on in-memory data.

    >>> t = Trainer(config, samples, labels, device="cpu", output="gen.pt")
    >>> t.train()
    """

    def __init__(self, config: dict[str, Any], samples: np.ndarray, labels: np.ndarray | None, *,
                 device: str = "cpu", output: str | os.PathLike | None = None,
                 log_path: str | os.PathLike | None = None, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                 log_every: int = DEFAULT_LOG_EVERY, sample_every: int = 0, sample_dir: str | os.PathLike | None = None,
                 resume: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                 progress: bool = True):
        self.config = config
        self.arch = config["arch"]
        self.device = torch.device(device)
        self.dist = Dist(device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.output = Path(output) if output else None
        self.log_path = Path(log_path) if log_path else None
        self.checkpoint_every, self.log_every = int(checkpoint_every), max(1, int(log_every))
        self.sample_every = int(sample_every)
        self.sample_dir = Path(sample_dir) if sample_dir else None
        self.provenance = provenance or {}
        self.show_progress = progress
        self.conditional = bool(config["conditional"])
        self.num_classes = int(config["num_classes"]) if self.conditional else 0
        self.n_critic = int(config["n_critic"])
        self.shape = tuple(config["sample_shape"])
        self.is_conv = config["net"] == "conv"

        # real data in model space, on the device
        x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
        sc = config["data_scaling"]
        if sc["kind"] == "standardize":
            x = (x - torch.tensor(sc["mean"]).reshape(self.shape)) / torch.tensor(sc["std"]).reshape(self.shape)
        self.data = x.float().to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.long).to(self.device) if labels is not None else None
        self.n = int(self.data.shape[0])
        per_rank, local_n = int(config["batch_size"]) // self.dist.world, self.n // self.dist.world
        bn_features = config["net"] == "mlp" and config["norm"] == "batchnorm"
        self.batch = batch_per_process(int(config["batch_size"]), self.n, self.dist.world,
                                       BATCH_NORM_MIN_ROWS if bn_features else 1)
        if self.batch < per_rank and self.dist.main:
            console.warn(f"the batch size {config['batch_size']} is larger than the data ({self.n} rows); "
                         f"using batches of {self.batch * self.dist.world}")
        self.batches_per_epoch = local_n // self.batch

        # precision
        precision = config["precision"]
        if precision == "fp16" and self.device.type != "cuda":
            raise OptionError("$precision fp16 needs a GPU; use $precision bf16 on CPU", "precision")
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.channels_last = self.is_conv and (precision != "fp32" or self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        # networks and optimisers: the RNGs are seeded once, before the networks are made (numpy's
        # and Python's too: the checkpoint stores all three states, so its bytes are reproducible)
        torch.manual_seed(int(config["seed"]))
        np.random.seed(int(config["seed"]) % 2**32)
        random.seed(int(config["seed"]))
        self.G = self.build_generator().to(self.device)
        self.D = self.build_discriminator().to(self.device)
        if self.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(unwrap(self.G)).eval().requires_grad_(False) if config["ema"] else None
        # what D sees: docs/train.md, "Augmentation and regularisers"
        self.augment = augment_name(config.get("augment"))
        self.d_view = DiscriminatorView(self.augment)
        self.r1 = float(config.get("r1", 0.0))
        self.r1_every = int(config.get("r1_every", R1_EVERY))
        self._last_r1: torch.Tensor | None = None
        self.opt_g = self.make_g_optimizer(self.G)
        self.opt_d = self.make_d_optimizer(self.D)
        self.class_weight = self._class_weights() if self.conditional and config["class_balanced"] else None
        self.prior = (torch.tensor(config["class_prior"], dtype=torch.float64)
                      if self.conditional else None)

        # position
        self.step = 0        # generator steps
        self.epoch = 0       # completed epochs
        self.batch_index = 0  # next batch within the epoch
        self.d_steps = 0     # critic steps
        self.wall_offset = 0.0
        if resume is not None:
            self._restore(resume)
        elif self.dist.enabled:
            self.dist.broadcast_module(self.G)
            self.dist.broadcast_module(self.D)
        if self.dist.enabled and self.dist.rank > 0:
            torch.manual_seed(int(config["seed"]) + 7919 * self.dist.rank + 104729 * self.step)
        self._fake_for_g = None
        self._want_stats = True  # gradient norms are computed only for the steps that get logged

    # ---- overridable construction hooks -------------------------------------------------------
    def build_generator(self) -> nn.Module:
        """The one place the generator is made."""
        return build_networks(self.config)[0]

    def build_discriminator(self) -> nn.Module:
        """The one place the discriminator is made (override e.g. for DP-ready layers)."""
        from pgan_cli.gan.models.nets import build_discriminator

        c = self.config
        return build_discriminator(c["net"], tuple(c["sample_shape"]), int(c["width"]), c["norm"],
                                   self.num_classes)

    def _optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        if self.config["optimizer"] == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=tuple(self.config["betas"]))

    def make_g_optimizer(self, generator: nn.Module) -> torch.optim.Optimizer:
        """The one place the generator's optimiser is made."""
        return self._optimizer(generator.parameters(), self.config["lr_g"])

    def make_d_optimizer(self, discriminator: nn.Module) -> torch.optim.Optimizer:
        """The one place the discriminator's optimiser is made (override for DP-SGD)."""
        return self._optimizer(discriminator.parameters(), self.config["lr_d"])

    def real_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None]]:
        """The one place real batches come from: ``(index, x, labels)`` of this rank in ``epoch``,
        from batch ``start`` on. The order depends only on (seed, epoch); the last partial batch
        is dropped."""
        order = torch.as_tensor(epoch_order(self.n, self.config["seed"], epoch)).to(self.device)
        order = order[self.dist.rank:: self.dist.world]
        for b in range(start, self.batches_per_epoch):
            idx = order[b * self.batch: (b + 1) * self.batch]
            x = self.data[idx]
            if self.augment == "pgan":
                from pgan_cli.gan.training.augment import augment_images

                x = augment_images(x)
            y = self.labels[idx] if self.labels is not None else None
            yield b, x, y

    def checkpoint_extra(self) -> dict[str, Any]:
        """Extra weights_only-safe entries for the checkpoint (e.g. a privacy accountant's state).

        fp16 runs keep the gradient scaler's state (loss scale and growth tracker, plain numbers):
        a resumed run goes on with the scale reached instead of restarting at 2^16 and skipping
        steps until it has backed off again (PyTorch AMP docs, "Saving/Resuming" a GradScaler)."""
        extra: dict[str, Any] = {}
        if self.scaler is not None:
            extra["grad_scaler"] = self.scaler.state_dict()
        if self.d_view.ada is not None:
            extra["ada"] = self.d_view.state_dict()
        return extra

    # ---- helpers -------------------------------------------------------------------------------------
    def _class_weights(self) -> torch.Tensor:
        counts = torch.bincount(self.labels, minlength=self.num_classes).double()
        w = torch.where(counts > 0, counts.sum() / (self.num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
        return w.float().to(self.device)

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _cl(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def sample_z(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise and (for conditional models) classes drawn from the training prior."""
        z = torch.randn(n, int(self.config["latent_dim"])).to(self.device)
        y = torch.multinomial(self.prior, n, replacement=True).to(self.device) if self.conditional else None
        return z, y

    def backward_step(self, loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer) -> torch.Tensor:
        params = [p for p in module.parameters() if p.requires_grad]
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.dist.average_gradients(params)
            self.scaler.unscale_(opt)
            gn = grad_norm(params) if self._want_stats else None
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            self.dist.average_gradients(params)
            gn = grad_norm(params) if self._want_stats else None
            opt.step()
        return gn

    # ---- the two updates ------------------------------------------------------------------------------
    def critic_step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One discriminator/critic update on a real batch (every use of real data goes through here)."""
        arch, bs = self.arch, real.shape[0]
        real = self._cl(real)
        z, fake_labels = self.sample_z(bs)
        keep = self.n_critic == 1  # DCGAN: reuse this fake batch for the generator step (as the tutorial)
        with self.autocast(), (nullcontext() if keep else torch.no_grad()):
            fake = self.G(z, fake_labels) if self.conditional else self.G(z)
        self._fake_for_g = (fake, fake_labels) if keep else None
        fake_d = self._cl(fake.detach())
        real_v, fake_v = self.d_view(real), self.d_view(fake_d)
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            real_logit, real_cls = self.D(real_v)
            fake_logit, fake_cls = self.D(fake_v)
            loss = losses.d_loss(arch, real_logit, fake_logit)
            stats = {"loss_adv_d": loss.detach()}
            if self.conditional and self.config["class_loss_weight"] > 0:
                cl = (losses.class_loss(real_cls, labels, self.class_weight)
                      + losses.class_loss(fake_cls, fake_labels, self.class_weight))
                loss = loss + self.config["class_loss_weight"] * cl
                stats["loss_class_d"] = cl.detach()
        if arch == "wgan-gp":
            gp = losses.gradient_penalty(self.D, real_v, fake_v)
            loss = loss + self.config["gp_weight"] * gp
            stats["gp"] = gp.detach()
        if self.r1 > 0 and self.d_steps % self.r1_every == 0:  # lazy R1 (Karras et al. 2020)
            r1 = losses.r1_penalty(self.D, real, self.d_view)
            loss = loss + 0.5 * self.r1 * self.r1_every * r1
            self._last_r1 = r1.detach()
        self.d_view.observe(real_logit)
        gn = self.backward_step(loss, self.D, self.opt_d)
        if arch == "wgan":
            c = self.config["clip"]
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-c, c)
        stats.update(loss_d=loss.detach(), grad_norm_d=gn, d_real_logit=real_logit.detach().float(),
                     d_fake_logit=fake_logit.detach().float())
        return stats

    def generator_step(self) -> dict[str, torch.Tensor]:
        """One generator update (reusing the last critic step's fake batch when n_critic == 1)."""
        if self._fake_for_g is not None:
            fake, fake_labels = self._fake_for_g
        else:
            z, fake_labels = self.sample_z(self.batch)
            with self.autocast():
                fake = self.G(z, fake_labels) if self.conditional else self.G(z)
        self._fake_for_g = None
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            logit, cls = self.D(self.d_view(self._cl(fake)))
            loss = losses.g_loss(self.arch, logit)
            stats = {"loss_adv_g": loss.detach()}
            if self.conditional and self.config["class_loss_weight"] > 0:
                cl = losses.class_loss(cls, fake_labels, self.class_weight)
                loss = loss + self.config["class_loss_weight"] * cl
                stats["loss_class_g"] = cl.detach()
        gn = self.backward_step(loss, self.G, self.opt_g)
        if self.G_ema is not None:
            self._update_ema()
        stats.update(loss_g=loss.detach(), grad_norm_g=gn)
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the average's horizon grows with the run, (1 + t) / (10 + t) up to ema_decay (the
        # num_updates rule of TensorFlow's ExponentialMovingAverage): a short run is not dominated
        # by the initial weights (bench/conditional.py: 66% of them left after 420 steps at 0.999)
        decay = min(float(self.config["ema_decay"]), (1.0 + self.step) / (10.0 + self.step))
        src = unwrap(self.G)
        ema_p = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in src.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), src.buffers()):
            b_ema.copy_(b)

    # ---- checkpoints -------------------------------------------------------------------------------
    def progress_state(self, finished: bool = False) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batch": self.batch_index, "d_steps": self.d_steps,
                "wall_time": self.wall_offset + (time.perf_counter() - self._t0), "finished": finished,
                "world_size": self.dist.world}

    def save(self, finished: bool = False) -> None:
        """Write the checkpoint (rank 0 only), atomically."""
        if self.output is None or not self.dist.main:
            return
        for net in (self.G, self.G_ema):
            if net is not None and not finite_weights(net.parameters()):
                self._diverged("the generator's weights are NaN or Inf")
        save_checkpoint(self.output, config=self.config, generator=self.G, discriminator=self.D,
                        generator_ema=self.G_ema, optimizer_g=self.opt_g, optimizer_d=self.opt_d,
                        progress=self.progress_state(finished), rng=get_rng_state(),
                        provenance=self.provenance, extra=self.checkpoint_extra())
        if finished:  # the final checkpoint, for the callbacks' on_file
            notify(self, "on_file", "checkpoint", self.output)

    def _diverged(self, what: str) -> None:
        raise InputError(f"training diverged by step {self.step}: {what}; nothing more was written (earlier "
                         f"checkpoints are intact): lower --lr-g/--lr-d or --r1, or train in fp32")

    def _restore(self, blob: dict[str, Any]) -> None:
        try:
            self._load_state(blob)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
            msg = " ".join(str(e).split())[:160]
            raise FormatError(f"the checkpoint's saved state does not fit its config ({msg}); use a checkpoint "
                              f"written by `pgan train`") from None

    def _load_state(self, blob: dict[str, Any]) -> None:
        unwrap(self.G).load_state_dict(blob["generator"])
        unwrap(self.D).load_state_dict(blob["discriminator"])
        if self.G_ema is not None and blob.get("generator_ema") is not None:
            self.G_ema.load_state_dict(blob["generator_ema"])
        if blob.get("optimizer_g"):
            self.opt_g.load_state_dict(blob["optimizer_g"])
        if blob.get("optimizer_d"):
            self.opt_d.load_state_dict(blob["optimizer_d"])
        p = blob.get("progress") or {}
        self.step, self.epoch = int(p.get("step", 0)), int(p.get("epoch", 0))
        self.batch_index, self.d_steps = int(p.get("batch", 0)), int(p.get("d_steps", 0))
        self.wall_offset = float(p.get("wall_time", 0.0))
        if blob.get("rng") is not None:
            set_rng_state(blob["rng"])
        self.d_view.load_state_dict((blob.get("extra") or {}).get("ada"))
        scaler_state = (blob.get("extra") or {}).get("grad_scaler")
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)
        self.dist.broadcast_module(self.G)
        self.dist.broadcast_module(self.D)

    # ---- logging and pictures ---------------------------------------------------------------------------
    def log_record(self, d_stats: dict, g_stats: dict, images_per_s: float) -> dict[str, Any]:
        loss_d, loss_g = float(d_stats["loss_d"]), float(g_stats["loss_g"])
        for key, value in (("loss_d", loss_d), ("loss_g", loss_g)):
            if not math.isfinite(value):  # before the record reaches the log or a tracker
                self._diverged(f"{key} is {value}")
        rec: dict[str, Any] = {
            "step": self.step, "epoch": self.epoch + self.batch_index / max(1, self.batches_per_epoch),
            "loss_d": loss_d, "loss_g": loss_g,
            "d_real": losses.d_outputs(self.arch, d_stats["d_real_logit"]),
            "d_fake": losses.d_outputs(self.arch, d_stats["d_fake_logit"]),
            "images_per_s": images_per_s,
            "wall_time": self.wall_offset + (time.perf_counter() - self._t0),
        }
        for key, stats in (("grad_norm_d", d_stats), ("grad_norm_g", g_stats)):
            if stats.get(key) is not None:  # computed only for the steps that were expected to be logged
                rec[key] = float(stats[key])
        if self.arch in ("wgan", "wgan-gp"):
            rec["wasserstein"] = float(d_stats["d_real_logit"].mean() - d_stats["d_fake_logit"].mean())
        if "gp" in d_stats:
            rec["gradient_penalty"] = float(d_stats["gp"])
        if self._last_r1 is not None:  # the last lazy R1 value (computed every r1_every D steps)
            rec["r1"] = float(self._last_r1)
        if self.d_view.ada is not None:
            rec["augment_p"] = self.d_view.ada.p
        for key in ("loss_class_d",):
            if key in d_stats:
                rec[key] = float(d_stats[key])
        if "loss_class_g" in g_stats:
            rec["loss_class_g"] = float(g_stats["loss_class_g"])
        return rec

    def _step_events(self) -> list[str]:
        """The log events of the generator step just taken (see ``docs/train.md``, training log).

        ``log``: every ``log_every`` steps; ``epoch_end``: the epoch's batches run out before the
        next generator step (an epoch is over only when all its batches were used: a run that stops
        mid-epoch does not end it); ``end``: the run stops after this step.
        """
        events = ["log"] if self.step % self.log_every == 0 else []
        done = self.finished()
        left = self.batches_per_epoch - self.batch_index
        if left < self.n_critic and (left == 0 or not done):
            events.append("epoch_end")
        if done:
            events.append("end")
        return events

    def _records_next_step(self, batch: int) -> bool:
        """Whether the generator step that may follow the critic step on ``batch`` gets a log record
        (its gradient norms are computed only then)."""
        nxt = self.step + 1
        if (self.d_steps + 1) % self.n_critic:
            return False  # no generator step follows this critic step
        steps = self.config.get("steps")
        return (nxt % self.log_every == 0 or bool(steps and nxt >= int(steps))
                or self.batches_per_epoch - (batch + 1) < self.n_critic)

    def refresh_record(self, rec: dict[str, Any]) -> None:
        """Bring an ``epoch_end``/``end`` record's position up to date: it is written after the
        epoch's last critic steps, which can follow its generator step (``n_critic`` > 1)."""
        rec["epoch"] = self.epoch + self.batch_index / max(1, self.batches_per_epoch)
        rec["wall_time"] = self.wall_offset + (time.perf_counter() - self._t0)

    # ---- the loop ----------------------------------------------------------------------------------------
    def total_steps(self) -> int:
        if self.config.get("steps"):
            return int(self.config["steps"])
        return int(self.config["epochs"]) * self.batches_per_epoch // self.n_critic

    def finished(self) -> bool:
        c = self.config
        if c.get("steps"):
            return self.step >= int(c["steps"])
        return self.epoch >= int(c["epochs"])

    def callbacks(self, records: bool = False) -> list[TrainingCallback]:
        """What the loop does besides training (:mod:`pgan_cli.gan.training.callbacks`), in order: the
        training log (without a file for ``records`` only), the progress bar, the sample grids and
        the periodic checkpoints. Only the main process logs, shows progress and draws grids."""
        out: list[TrainingCallback] = []
        if self.dist.main and (self.log_path is not None or records):
            out.append(TrainingLog(self.log_path))
        if self.dist.main and self.show_progress:
            out.append(ProgressBar(self.total_steps()))
        if self.dist.main and self.sample_dir is not None:
            out.append(SampleGrids(self.sample_dir, self.sample_every))
        if self.checkpoint_every:
            out.append(PeriodicCheckpoint(self.checkpoint_every))
        return out

    def train(self, extra_callbacks: list[TrainingCallback] | None = None) -> dict[str, Any]:
        """Run until ``steps`` generator steps or ``epochs`` epochs; return a summary.

        The loop: ``n_critic`` critic steps per generator step over seeded epochs of real batches;
        each generator step may get a log record (:meth:`log_record`, events from
        :meth:`_step_events`); everything else happens in the callbacks (:meth:`callbacks`, then
        ``extra_callbacks``).
        """
        self._t0 = time.perf_counter()
        self.G.train()
        self.D.train()
        self.last_record: dict[str, Any] = {}
        extra = list(extra_callbacks or [])
        callbacks = self.running_callbacks = self.callbacks(any(map(wants_records, extra))) + extra
        try:
            for cb in callbacks:
                cb.on_start(self)
            with interrupts.polled():  # torch calls back into Python from C++: stop between steps only
                self._loop(callbacks)
            for cb in callbacks:
                cb.on_end(self)
            self.save(finished=True)
            self.dist.barrier()
        finally:
            for cb in callbacks:
                cb.close()
        return self._summary()

    def _loop(self, callbacks: list[TrainingCallback]) -> None:
        seen_images, t_rate = 0, time.perf_counter()
        while not self.finished():
            for b, real, labels in self.real_batches(self.epoch, self.batch_index):
                self._want_stats = self._records_next_step(b)
                d_stats = self.critic_step(real, labels)
                self.d_steps += 1
                self.batch_index = b + 1
                seen_images += real.shape[0] * self.dist.world
                interrupts.poll()
                if self.d_steps % self.n_critic:
                    continue
                g_stats = self.generator_step()
                self.step += 1
                record = None
                events = self._step_events()
                if events:
                    now = time.perf_counter()
                    record = self.log_record(d_stats, g_stats, seen_images / max(now - t_rate, 1e-9))
                    record["events"] = events
                    seen_images, t_rate = 0, now
                    self.last_record = record
                for cb in callbacks:
                    cb.on_step(self, record)
                interrupts.poll()
                if self.finished():
                    break
            else:
                self.epoch += 1
                self.batch_index = 0
                for cb in callbacks:
                    cb.on_epoch_end(self)
                continue
            break

    def _summary(self) -> dict[str, Any]:
        summary = {"output": str(self.output) if self.output else None, "arch": self.arch,
                   "net": self.config["net"], "steps": self.step,
                   "epochs": round(self.epoch + self.batch_index / max(1, self.batches_per_epoch), 4),
                   "world_size": self.dist.world,
                   "wall_time": round(self.wall_offset + time.perf_counter() - self._t0, 3)}
        for k in ("loss_d", "loss_g", "wasserstein"):
            if k in self.last_record:
                summary[k] = self.last_record[k]
        return summary
