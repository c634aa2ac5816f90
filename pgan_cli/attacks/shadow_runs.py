"""The shadow runs of ``pgan attack --methods shadow`` (:mod:`pgan_cli.attacks.shadow`): the
release's training recipe read from its checkpoint, the plan of complementary shadow pairs (which
targets each shadow holds, with seeds derived from the run's seed), and the work folder, in which
each shadow (checkpoint, synthetic sample, manifest) is committed as one output set and reused by
later runs with the same recipe, reference, targets and seed (Stadler, Oprisanu & Troncoso,
USENIX Security 2022; Houssiau et al., TAPAS, 2022)."""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import __version__, formats
from pgan_cli.attacks.logan import single_thread
from pgan_cli.errors import InputError, PganError

MANIFEST = "shadow.json"          # sorts after generator.pt and samples.h5: moved into place last
DESIGN_VERSION = 1                # part of every shadow's key: a change of design retrains

# make_config keywords that define the training recipe, as the checkpoint's config stores them
RECIPE_KEYS = ("arch", "net", "norm", "conditional", "class_loss_weight", "class_balanced", "epochs", "steps",
               "batch_size", "lr_g", "lr_d", "n_critic", "latent_dim", "width", "precision", "augment", "ema",
               "ema_decay", "gp_weight", "clip")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _seed(*parts: int) -> int:
    """A training or sampling seed in [0, 2^62) derived from the run's seed and the shadow's index."""
    seq = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts])
    return int(seq.generate_state(1, np.uint64)[0] >> 2)


# ---- the recipe --------------------------------------------------------------------------------
@dataclass
class Recipe:
    """How the released generator was trained, as :func:`pgan_cli.gan.training.run.train_file` takes it."""

    options: dict[str, Any]          # make_config keywords (no seed: every shadow has its own)
    data_n: int                      # the release's training size
    sample_shape: tuple[int, ...]
    kind: str
    dp: dict[str, Any] | None = None  # target_epsilon, delta, max_grad_norm (DP-SGD recipes)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**self.options, "data_n": self.data_n, "sample_shape": list(self.sample_shape), "kind": self.kind,
                "dp": self.dp}

    @property
    def sha256(self) -> str:
        return _digest({"recipe": self.as_json(), "design": DESIGN_VERSION})


def recipe_from_checkpoint(ck, shadow_steps: int | None = None) -> Recipe:
    """The training recipe in ``ck``'s config; ``shadow_steps`` replaces its training length."""
    cfg = ck.config
    where = f"{ck.path}"
    missing = [k for k in RECIPE_KEYS + ("data_n",) if k not in cfg]
    if missing:
        raise InputError(f"shadow: the checkpoint {where} has no training recipe in its config (missing "
                         f"{', '.join(missing)}); shadow modelling trains with the release's exact recipe: use a "
                         f"checkpoint written by `pgan train`")
    if cfg.get("conditional"):
        raise InputError(f"shadow: {where} is a conditional generator; shadow training sets would need a label "
                         f"for every reference record and target, which this attack does not carry yet: attack "
                         f"an unconditional release")
    data_n = cfg["data_n"]
    if not isinstance(data_n, int) or isinstance(data_n, bool) or data_n < 2:
        raise InputError(f"shadow: the checkpoint {where} records a training size data_n = {data_n!r}; "
                         f"need a count >= 2")
    options = {k: cfg[k] for k in RECIPE_KEYS}
    notes = []
    progress = ck.progress or {}
    if progress.get("finished") is False and int(progress.get("step") or 0) > 0:
        options["epochs"], options["steps"] = None, int(progress["step"])
        notes.append(f"the checkpoint was saved at generator step {progress['step']} before its run finished: "
                     f"shadows train for {progress['step']} steps")
    if shadow_steps is not None:
        was = f"{options['steps']} steps" if options.get("steps") else f"{options['epochs']} epochs"
        options["epochs"], options["steps"] = None, int(shadow_steps)
        notes.append(f"shadows train for {shadow_steps} generator steps (shadow_steps) instead of the release's "
                     f"{was}: the 'same recipe' assumption is relaxed")
    dp = cfg.get("dp") if isinstance(cfg.get("dp"), dict) else None
    if dp is not None:
        dp = {k: dp.get(k) for k in ("target_epsilon", "delta", "max_grad_norm")}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dp.values()):
            raise InputError(f"shadow: the checkpoint {where} records DP-SGD without its settings (target_epsilon, "
                             f"delta, max_grad_norm)")
    return Recipe(options, int(data_n), tuple(int(d) for d in cfg["sample_shape"]),
                  str(cfg.get("kind") or ck.kind), dp, notes)


# ---- which shadow holds which targets ----------------------------------------------------------
@dataclass
class ShadowPlan:
    index: int
    pair: int
    inserted: np.ndarray     # bool (n_targets,): targets in this shadow's training set
    background: np.ndarray   # rows of the reference in its training set
    key: str                 # what identifies the finished shadow in the work folder
    training_seed: int
    sample_seed: int

    @property
    def rel(self) -> str:
        return f"shadow-{self.index:03d}-{self.key[:12]}"


def plan_shadows(n_shadows: int, target_digests: list[str], data_n: int, n_reference: int, seed: int,
                 recipe_sha: str, reference_sha: str, n_synthetic: int, copies: int = 1) -> list[ShadowPlan]:
    """Complementary pairs: shadow 2j holds a random half A_j of the targets, shadow 2j+1 the rest,
    both over the same background sample of the reference (an odd last shadow holds A_j alone);
    each inserted target ``copies`` times, the background filling the rest of ``data_n`` records.
    ``target_digests`` must be in a canonical order (sorted), so the same targets give the same plan."""
    nt = len(target_digests)
    plans = []
    for k in range(n_shadows):
        j = k // 2
        rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, j, 0x5AD0]))
        half = np.zeros(nt, dtype=bool)
        half[rng.permutation(nt)[: nt // 2]] = True
        inserted = half if k % 2 == 0 else ~half
        order = rng.permutation(n_reference)
        background = np.sort(order[: data_n - copies * int(inserted.sum())])
        key = _digest({"recipe": recipe_sha, "reference": reference_sha, "targets": target_digests, "seed": seed,
                       "index": k, "n_synthetic": n_synthetic, "copies": copies, "design": DESIGN_VERSION})
        plans.append(ShadowPlan(k, j, inserted, background, key, _seed(seed, k, 1), _seed(seed, k, 2)))
    return plans


# ---- features -----------------------------------------------------------------------------------
def load_finished(work: Path, plan: ShadowPlan, n_synthetic: int, dim: int) -> tuple[np.ndarray, dict] | None:
    """The synthetic set of a finished shadow with ``plan.key``, or None (absent, unfinished, altered)."""
    from pgan_cli.dataset import read_dataset
    from pgan_cli.files import read_json, sha256_file

    folder = work / plan.rel
    if not (folder / MANIFEST).is_file():
        return None
    try:
        m = read_json(folder / MANIFEST, "shadow manifest")
        if not isinstance(m, dict) or m.get("format") != formats.SHADOW_RUN or m.get("key") != plan.key:
            return None
        files = m.get("files")
        sample = folder / "samples.h5"
        if not isinstance(files, dict) or not sample.is_file() or files.get("samples.h5") != sha256_file(sample):
            return None
        x = read_dataset(sample).samples
    except (PganError, OSError):
        return None
    x = x.reshape(len(x), -1)
    if x.shape != (n_synthetic, dim) or not np.isfinite(x).all():
        return None
    return np.ascontiguousarray(x, dtype=np.float32), m


def train_shadow(work: Path, plan: ShadowPlan, recipe: Recipe, targets: np.ndarray, target_digests: list[str],
               reference: np.ndarray, n_synthetic: int, device: str, manifest: dict,
               copies: int = 1) -> tuple[np.ndarray, dict]:
    """Train, sample and commit one shadow (checkpoint, samples, manifest) as one output set."""
    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import write_dataset
    from pgan_cli.atomic import write_json
    from pgan_cli.files import sha256_file
    from pgan_cli.outputs import output_set
    from pgan_cli.gan.sampling import generate
    from pgan_cli.gan.training.run import train_file

    t_cpu, t_wall = time.process_time(), time.perf_counter()
    x = np.concatenate([reference[plan.background], np.repeat(targets[plan.inserted], copies, axis=0)])
    x = x.astype(np.float32)
    x = x[np.random.default_rng(plan.training_seed).permutation(len(x))]
    trainer = {}
    if recipe.dp is not None:
        from pgan_cli.gan.training.dpsgd import dp_trainer

        trainer = {"trainer_cls": dp_trainer(recipe.dp["target_epsilon"], recipe.dp["delta"],
                                             recipe.dp["max_grad_norm"])}
    prov = {"pgan_version": __version__, "made_by": "pgan attack --methods shadow", "shadow": plan.index,
            "key": plan.key}
    with output_set(work, f"shadow-{plan.key[:16]}") as out:
        data = out.path(f"{plan.rel}/train.h5")
        write_dataset(data, x.reshape(len(x), *recipe.sample_shape), provenance=prov, kind=recipe.kind)
        gen_path = out.path(f"{plan.rel}/generator.pt")
        quiet = single_thread() if device == "cpu" and recipe.options.get("net") == "mlp" else nullcontext()
        with quiet:
            train_file(data, gen_path, device=device, checkpoint_every=0, progress=False,
                       **recipe.options, seed=plan.training_seed, **trainer)
        data.unlink()  # the training set is rows of the reference and the targets: not kept
        ck = load_checkpoint(gen_path, device=device)
        parts = list(generate(ck, n_synthetic, seed=plan.sample_seed, progress=False))
        samples = np.concatenate([p[0] for p in parts]).reshape(n_synthetic, -1)
        latents = np.concatenate([p[2] for p in parts])
        sample_path = out.path(f"{plan.rel}/samples.h5")
        write_dataset(sample_path, samples.reshape(n_synthetic, *recipe.sample_shape), latents=latents,
                      provenance={**prov, "seed": plan.sample_seed, "checkpoint_sha256": sha256_file(gen_path)},
                      kind=recipe.kind)
        m = {**manifest, "format": formats.SHADOW_RUN, "format_version": 1, "key": plan.key, "index": plan.index,
             "pair": plan.pair, "training_seed": plan.training_seed, "sample_seed": plan.sample_seed,
             "training_size": len(x), "background_rows": int(len(plan.background)), "copies": copies,
             "targets_in": [d for d, a in zip(target_digests, plan.inserted) if a],
             "targets_out": [d for d, a in zip(target_digests, plan.inserted) if not a],
             "files": {"generator.pt": sha256_file(gen_path), "samples.h5": sha256_file(sample_path)},
             "cpu_seconds": round(time.process_time() - t_cpu, 3),
             "wall_seconds": round(time.perf_counter() - t_wall, 3), "pgan_version": __version__}
        write_json(out.path(f"{plan.rel}/{MANIFEST}"), m)
    return np.ascontiguousarray(samples, dtype=np.float32), m
