"""DP-SGD on the discriminator (Abadi et al. 2016; DPGAN, Xie et al. 2018) with Opacus.

Only the discriminator/critic touches real data, so only its updates are privatised; the generator
learns from D alone and is private by post-processing (Dwork & Roth 2014, Prop. 2.1).

What each critic step does (:class:`DPTrainer`):

- Poisson sampling (the accountant's assumption): every real record joins the batch independently
  with probability ``q = batch_size / N``; batch sizes vary (fixed-size shuffled batches would
  break the analysis). An epoch is ``N // batch_size`` such batches (one expected pass); for
  ``wgan`` every critic step is one of them, so 5 critic steps per generator step spend 5 steps.
- Per-sample gradients from Opacus's ``GradSampleModule``. The real and generated halves of the
  loss go through D in one backward pass with equal batch sizes, so record ``i``'s gradient unit is
  ``grad l_real(x_i) + grad l_fake(G(z_i))`` (the Opacus DCGAN example); the fake part does not
  depend on the data, so clipping each unit to ``max_grad_norm`` bounds one record's influence.
- ``DPOptimizer``: clip each unit to L2 norm C, sum, add ``N(0, (sigma C)^2)``, divide by the
  expected batch size ``q N``. ``sigma`` (the noise multiplier) is the smallest that reaches
  ``(epsilon, delta)`` after all the planned critic steps under the PRV accountant (Gopi et al.
  2021), found by Opacus's ``get_noise_multiplier``.
- Every critic step is counted, and training stops when the planned steps (the budget) are done;
  a resumed run cannot go past them.
- The generator step runs with D's per-sample hooks disabled and D's parameters frozen, so it
  neither records per-sample gradients into D's accumulators nor touches D's optimiser.
- BatchNorm mixes records within a batch (no per-sample gradient): D's BatchNorm becomes
  GroupNorm (said on stderr, recorded in the config); so does spectral normalisation (sngan),
  whose W / sigma(W) parametrisation Opacus has no per-sample gradients for. WGAN-GP and R1 are
  refused: their double backward is not supported by Opacus's per-sample hooks.
- Augmentation of D's inputs (``diffaug``, ``pgan``) changes what each per-sample gradient is
  computed on, not how many records it depends on: every clipped unit still depends on one
  record, so the accountant is unchanged. ``ada`` is refused: its probability p is set from D's
  outputs on the members, a statistic DP-SGD does not cover.
- Non-private statistics of real batches (D's loss and output on real data, the gradient norm
  before noise, the batch sizes) are kept out of the training log; the log holds D's output on
  generated data, the generator loss, the noisy gradient's norm and the epsilon spent.

The checkpoint stores ``dp`` (in ``extra``, in ``config`` and in the provenance that ``pgan sample``
carries forward): noise_multiplier, sample_rate, steps, delta, epsilon, max_grad_norm, accountant.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np
import torch

from pgan_cli import console
from pgan_cli.errors import UsageError
from pgan_cli.params import OptionError
from pgan_cli.gan.training.loop import Trainer, grad_norm
from pgan_cli.gan.training.defaults import augment_name

DP_ARCHS = ("dcgan", "wgan", "sngan")
ACCOUNTANT = "prv"
DEFAULT_MAX_GRAD_NORM = 1.0
EPSILON_TOLERANCE = 0.01
# statistics of real batches that are not private and stay out of the training log under DP
PRIVATE_LOG_DROP = ("loss_d", "d_real", "wasserstein", "loss_class_d", "gradient_penalty", "images_per_s")


def default_delta(n: int) -> float:
    """``min(1e-5, 1 / (10 N))``: well below 1/N, the level at which a mechanism could publish a
    whole record and still claim (eps, delta)-DP (Dwork & Roth 2014, sec. 2.3)."""
    return min(1e-5, 1.0 / (10.0 * n))


def check_dp_options(epsilon: float, delta: float | None, max_grad_norm: float) -> None:
    """Refuse impossible DP settings before any data is read."""
    if epsilon is None or not (math.isfinite(epsilon) and epsilon > 0):
        raise OptionError(f"$dp_epsilon must be a positive finite number, got {epsilon}", "dp_epsilon")
    if delta is not None and not (math.isfinite(delta) and 0 < delta < 1):
        raise OptionError(f"$dp_delta must lie strictly between 0 and 1 (and below 1/N), got {delta}", "dp_delta")
    if not (math.isfinite(max_grad_norm) and max_grad_norm > 0):
        raise OptionError(f"$max_grad_norm must be a positive number, got {max_grad_norm}", "max_grad_norm")


def compute_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                    accountant: str = ACCOUNTANT) -> float:
    """Epsilon after ``steps`` Poisson-sampled Gaussian steps, by Opacus's accountant (PRV default)."""
    from opacus.accountants import create_accountant

    import warnings

    if steps <= 0:
        return 0.0
    acc = create_accountant(accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with warnings.catch_warnings():  # RDP's "optimal order is the largest alpha" (PRV uses RDP for its domain)
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta=delta))


def noise_for_budget(epsilon: float, delta: float, sample_rate: float, steps: int,
                     accountant: str = ACCOUNTANT) -> float:
    """The smallest noise multiplier whose epsilon after ``steps`` is at most ``epsilon``."""
    import warnings

    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                              steps=steps, accountant=accountant, epsilon_tolerance=EPSILON_TOLERANCE))
        except ValueError as e:
            raise UsageError(f"no noise level reaches epsilon {epsilon:g} at delta {delta:g} over {steps} steps "
                             f"({e}); ask for a larger --dp-epsilon or fewer epochs") from None


def not_covered(config: dict[str, Any]) -> list[str]:
    """Statistics of the members that the run uses outside DP-SGD (stated, not hidden)."""
    out = []
    if (config.get("data_scaling") or {}).get("kind") == "standardize":
        out.append("data_scaling: the members' per-feature mean and std standardise vectors (not private)")
    if config.get("conditional"):
        out.append("class_prior: the members' class frequencies set the generator's class prior (not private)")
    return out


class _PrivateRecord(dict):
    """A log record whose dropped (non-private) keys read as NaN for the progress line but are not
    written to the JSON log or the summary."""

    def __missing__(self, key):
        return float("nan")


class DPTrainer(Trainer):
    """:class:`~pgan_cli.gan.training.loop.Trainer` with DP-SGD on the discriminator (see module doc)."""

    def __init__(self, config: dict[str, Any], samples: np.ndarray, labels: np.ndarray | None, *,
                 dp_epsilon: float, dp_delta: float | None = None,
                 max_grad_norm: float = DEFAULT_MAX_GRAD_NORM, resume: dict[str, Any] | None = None,
                 **kwargs: Any):
        check_dp_options(dp_epsilon, dp_delta, max_grad_norm)
        n = int(np.asarray(samples).shape[0])
        arch = config["arch"]
        if arch not in DP_ARCHS:
            raise OptionError(f"DP-SGD does not support $arch {arch}: the gradient penalty's double backward breaks "
                              f"Opacus's per-sample gradients; use $arch {' or '.join(DP_ARCHS)} with $dp_epsilon",
                              "arch", "dp_epsilon")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UsageError("DP-SGD training runs in one process; run it without torchrun")
        if config["precision"] != "fp32":
            raise OptionError(f"DP-SGD needs $precision fp32 (per-sample gradients in {config['precision']} "
                              f"are not supported here)", "precision")
        delta = default_delta(n) if dp_delta is None else float(dp_delta)
        if delta >= 1.0 / n:
            raise OptionError(f"$dp_delta {delta:g} is not below 1/N = {1.0 / n:.3g} for the {n} training records; "
                              f"such a delta allows publishing a record outright (use e.g. {default_delta(n):.1g})",
                              "dp_delta")
        prior = (resume or {}).get("config", {})
        prior_dp = prior.get("dp") if isinstance(prior, dict) else None
        if augment_name(config.get("augment")) == "ada":
            raise OptionError("$augment ada sets its probability from D's outputs on the members, a statistic "
                              "DP-SGD does not cover; use $augment diffaug with $dp_epsilon", "augment", "dp_epsilon")
        if float(config.get("r1", 0.0)) > 0:
            raise OptionError("$r1 differentiates D's gradient on each member, which Opacus's per-sample "
                              "gradients cannot follow; drop $r1 with $dp_epsilon", "r1", "dp_epsilon")
        if config["norm"] == "batchnorm":
            console.log("DP-SGD: BatchNorm in the discriminator mixes records within a batch; using GroupNorm instead")
            config["norm"] = "groupnorm"
            config["dp_norm_replaced"] = "batchnorm -> groupnorm"
        elif config["norm"] == "spectral":
            # Opacus computes per-sample gradients of a layer's weight, not of the parametrisation
            # W / sigma(W) that spectral normalisation puts between them
            console.log("DP-SGD: spectral normalisation has no per-sample gradients in Opacus; using GroupNorm instead")
            config["norm"] = "groupnorm"
            config["dp_norm_replaced"] = "spectral -> groupnorm"
        self.dp_target = {"target_epsilon": float(dp_epsilon), "delta": delta, "max_grad_norm": float(max_grad_norm),
                          "accountant": ACCOUNTANT, "not_covered": not_covered(config)}
        for item in self.dp_target["not_covered"]:
            console.warn(f"DP-SGD covers D's updates only; not covered: {item}")
        self._dp_sigma: float | None = None if prior_dp is None else float(prior_dp["noise_multiplier"])
        super().__init__(config, samples, labels, resume=resume, **kwargs)
        self.sample_rate = self.batch / self.n
        self.dp_total_steps = self.planned_critic_steps()
        if self._dp_sigma is None:
            self._dp_sigma = noise_for_budget(dp_epsilon, delta, self.sample_rate, self.dp_total_steps)
            self.opt_d.noise_multiplier = self._dp_sigma
        if prior_dp is not None and self.dp_total_steps > int(prior_dp["planned_steps"]):
            raise UsageError(f"the privacy budget epsilon {prior_dp['target_epsilon']:g} was planned for "
                             f"{prior_dp['planned_steps']} critic steps; training longer would spend more. "
                             f"Start a new run with a larger --dp-epsilon")
        config["dp"] = {**self.dp_target, "noise_multiplier": self._dp_sigma, "sample_rate": self.sample_rate,
                        "planned_steps": self.dp_total_steps, "expected_batch_size": self.batch}
        params = self.provenance.get("params")
        if isinstance(params, dict):
            params["norm"] = config["norm"]
        self.provenance["dp"] = self.dp_record()
        console.log(f"DP-SGD: noise multiplier {self._dp_sigma:.4g}, sample rate {self.sample_rate:.4g}, "
                    f"{self.dp_total_steps} critic steps for epsilon {dp_epsilon:g} at delta {delta:.3g} "
                    f"(clip {max_grad_norm:g}, {ACCOUNTANT.upper()} accountant)")

    # ---- construction hooks ---------------------------------------------------------------------------
    def build_discriminator(self):
        from opacus import GradSampleModule
        from opacus.validators import ModuleValidator

        d = super().build_discriminator()
        for m in d.modules():  # in-place activations clash with Opacus's backward hooks
            if hasattr(m, "inplace"):
                m.inplace = False
        errors = ModuleValidator.validate(d, strict=False)
        if errors:
            raise UsageError(f"the discriminator has layers DP-SGD cannot handle: {errors[0]}")
        return GradSampleModule(d, batch_first=True, loss_reduction="mean")

    def make_d_optimizer(self, discriminator):
        from opacus.optimizers import DPOptimizer

        base = super().make_d_optimizer(discriminator)
        # the noise multiplier is set once the planned step count is known (see __init__)
        return DPOptimizer(base, noise_multiplier=self._dp_sigma if self._dp_sigma is not None else 1.0,
                           max_grad_norm=self.dp_target["max_grad_norm"], expected_batch_size=self.batch,
                           loss_reduction="mean")

    def planned_critic_steps(self) -> int:
        """Every critic step of the whole run (each touches real data)."""
        if self.config.get("steps"):
            return int(self.config["steps"]) * self.n_critic
        return int(self.config["epochs"]) * self.batches_per_epoch

    def real_batches(self, epoch: int, start: int = 0):
        """Poisson-sampled batches: each record joins independently w.p. ``q``; a function of
        (seed, epoch, batch) so a resumed run draws the same batches."""
        q = self.sample_rate
        for b in range(start, self.batches_per_epoch):
            rng = np.random.default_rng([int(self.config["seed"]) & 0xFFFFFFFF, int(epoch), int(b), 0xD9])
            idx = torch.as_tensor(np.flatnonzero(rng.random(self.n) < q)).to(self.device)
            x = self.data[idx]
            if self.augment == "pgan":
                from pgan_cli.gan.training.augment import augment_images

                x = augment_images(x) if len(x) else x
            y = self.labels[idx] if self.labels is not None else None
            yield b, x, y
        every = max(1, int(self.config.get("epochs") or 0) // 100)  # at most ~100 lines
        if not self.finished() and (epoch + 1) % every == 0:
            self._log_epsilon(f"epoch {epoch + 1}")

    # ---- the updates -----------------------------------------------------------------------------------
    def critic_step(self, real, labels):
        if real.shape[0] == 0:  # an empty Poisson batch still releases a noisy (all-noise) step
            self.opt_d.zero_grad(set_to_none=True)
            for p in self.D.parameters():
                if p.requires_grad:
                    p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
            self.opt_d.step()
            self._fake_for_g = None
            if self.arch == "wgan":
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-self.config["clip"], self.config["clip"])
            zero = torch.zeros((), device=self.device)
            return {"loss_d": zero, "grad_norm_d": grad_norm(list(self.D.parameters())),
                    "d_real_logit": zero.reshape(1), "d_fake_logit": zero.reshape(1)}
        return super().critic_step(real, labels)

    def generator_step(self):
        params = list(self.D.parameters())
        flags = [p.requires_grad for p in params]
        self.D.disable_hooks()
        for p in params:
            p.requires_grad_(False)
        try:
            return super().generator_step()
        finally:
            for p, f in zip(params, flags):
                p.requires_grad_(f)
            self.D.enable_hooks()

    def backward_step(self, loss, module, opt):
        if module is not self.D:
            return super().backward_step(loss, module, opt)
        import warnings

        with warnings.catch_warnings():  # inputs (real data) need no gradient: harmless
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss.backward()
        opt.step()  # clip per sample, sum, add noise, average: p.grad is now the private gradient
        return grad_norm([p for p in module.parameters() if p.requires_grad])

    # ---- budget, accounting, logs ------------------------------------------------------------------------
    def epsilon_spent(self) -> float:
        """Epsilon after the critic steps taken so far (cached per step count: one PRV accountant
        run costs about half a second)."""
        cached = getattr(self, "_eps_cache", None)
        if cached is None or cached[0] != (self.d_steps, self._dp_sigma):
            eps = compute_epsilon(self._dp_sigma, self.sample_rate, self.d_steps, self.dp_target["delta"])
            self._eps_cache = cached = ((self.d_steps, self._dp_sigma), eps)
        return cached[1]

    def dp_record(self) -> dict[str, Any]:
        steps = int(self.d_steps)
        return {"noise_multiplier": self._dp_sigma, "sample_rate": self.sample_rate, "steps": steps,
                "delta": self.dp_target["delta"], "epsilon": self.epsilon_spent(),
                "target_epsilon": self.dp_target["target_epsilon"], "planned_steps": self.dp_total_steps,
                "max_grad_norm": self.dp_target["max_grad_norm"], "accountant": ACCOUNTANT,
                "expected_batch_size": self.batch, "trained": "discriminator (DP-SGD); generator by post-processing",
                "not_covered": self.dp_target["not_covered"]}

    def _log_epsilon(self, when: str) -> None:
        eps = self.epsilon_spent()
        self._last_eps = eps
        console.log(f"{when}: epsilon spent {eps:.4g} of {self.dp_target['target_epsilon']:g} "
                    f"(delta {self.dp_target['delta']:.3g}, {self.d_steps} critic steps)")

    def finished(self) -> bool:
        return super().finished() or self.d_steps >= getattr(self, "dp_total_steps", float("inf"))

    def log_record(self, d_stats, g_stats, images_per_s):
        rec = super().log_record(d_stats, g_stats, images_per_s)
        out = _PrivateRecord({k: v for k, v in rec.items() if k not in PRIVATE_LOG_DROP})
        out["epsilon"] = getattr(self, "_last_eps", None)
        out["critic_steps"] = int(self.d_steps)
        return out

    def refresh_record(self, rec):
        """``epoch_end`` and ``end`` records carry the epsilon spent after all the critic steps so far;
        ``log`` records carry the value at the last epoch end (one accountant run per epoch)."""
        super().refresh_record(rec)
        self._last_eps = rec["epsilon"] = self.epsilon_spent()
        rec["critic_steps"] = int(self.d_steps)

    def checkpoint_extra(self) -> dict[str, Any]:
        rec = self.dp_record()
        self.provenance["dp"] = rec
        self.config["dp"].update(steps=rec["steps"], epsilon=rec["epsilon"])
        return {**super().checkpoint_extra(), "dp": rec}

    def train(self, extra_callbacks=None) -> dict[str, Any]:
        summary = super().train(extra_callbacks)
        rec = self.dp_record()
        console.log(f"DP-SGD done: epsilon {rec['epsilon']:.4g} at delta {rec['delta']:.3g} after "
                    f"{rec['steps']} critic steps (noise multiplier {rec['noise_multiplier']:.4g})")
        summary["dp"] = rec
        return summary


def dp_trainer(dp_epsilon: float | None, dp_delta: float | None = None, max_grad_norm: float | None = None,
               resume: str | os.PathLike | None = None):
    """The ``trainer_cls`` for :func:`pgan_cli.gan.training.run.train_file`, or None for plain training.

    A resumed DP run keeps its DP settings (given again or not); DP cannot be switched on or off
    in the middle of a run (the earlier steps' privacy loss is already spent or unbounded).
    """
    prior = None
    if resume is not None:
        from pgan_cli.gan.checkpoint import read_checkpoint_file

        prior = (read_checkpoint_file(resume).get("config") or {}).get("dp")
    if prior is not None:
        if dp_epsilon is not None and abs(dp_epsilon - prior["target_epsilon"]) > 1e-12:
            raise OptionError(f"{OptionError.literal(resume)} was trained with $dp_epsilon {prior['target_epsilon']:g}; "
                              f"a resumed run keeps it", "dp_epsilon")
        dp_epsilon, dp_delta = prior["target_epsilon"], prior["delta"]
        max_grad_norm = prior["max_grad_norm"]
    elif resume is not None and dp_epsilon is not None:
        raise OptionError(f"{OptionError.literal(resume)} was trained without DP; its earlier steps are not private, "
                          f"so DP cannot be switched on now. Start a new run with $dp_epsilon", "dp_epsilon")
    if dp_epsilon is None:
        if dp_delta is not None or max_grad_norm is not None:
            raise OptionError("$dp_delta and $max_grad_norm need $dp_epsilon", "dp_delta", "max_grad_norm", "dp_epsilon")
        return None
    max_grad_norm = DEFAULT_MAX_GRAD_NORM if max_grad_norm is None else max_grad_norm
    check_dp_options(dp_epsilon, dp_delta, max_grad_norm)
    return functools.partial(DPTrainer, dp_epsilon=dp_epsilon, dp_delta=dp_delta, max_grad_norm=max_grad_norm)
