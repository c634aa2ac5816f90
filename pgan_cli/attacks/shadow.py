"""Shadow modelling: membership inference on a released synthetic set by training generators with
the release's own recipe, with and without each target.

Stadler, Oprisanu & Troncoso, "Synthetic data - anonymisation groundhog day", USENIX Security
2022, and the TAPAS toolbox (Houssiau, Jordon, Cohen, Daniel, Elliott, Geddes, Mole, Rangel-Smith
& Szpruch, "TAPAS: a toolbox for adversarial privacy auditing of synthetic data", NeurIPS 2022
Workshop on Synthetic Data for ML). The attacker knows the training algorithm (here: exactly, from
the released generator's checkpoint config) and has reference data from the population. For a
target record x it trains generators on reference samples with x and without x, samples a
synthetic set from each, turns every set into features relative to x, fits a classifier
"x was in / was not in" on those labelled sets, and applies it to the released set.

Design (docs/attacks.md, "Shadow modelling"):

- **One shadow run serves every target** (the multi-target game of TAPAS): shadows come in
  complementary pairs over one background sample of the reference; a random half of the targets
  goes into the first of the pair, the other half into the second. Every target is thus "in"
  exactly once and "out" exactly once per pair, and K shadow runs label 2T targets at once with
  K/2 in- and K/2 out-sets each, instead of 2T x K runs.
- **The recipe is the release's**: every training option of the checkpoint's config (arch, net,
  norm, width, latent size, epochs or steps, batch size, learning rates, critic steps, EMA,
  DP-SGD settings) goes to :func:`pgan_cli.gan.training.run.train_file` unchanged; the shadow training
  set has the release's training size (``data_n``), drawn from the reference records; a shadow's
  synthetic set has the released set's size. Only ``shadow_steps`` (asked for explicitly) changes
  the training length, and the result says so.
- **Features of a set S' relative to x** (L2 distances in the space the release's networks work
  in: vectors standardised with the checkpoint's ``data_scaling``, so that no column dominates by
  its unit; images as they are): the distance to the
  closest record of S' (DCR), the mean distance to its 5 closest records, log(1 + count of S'
  within r) for radii r at the 1%, 5%, 25% and 50% quantiles of the reference's nearest-neighbour
  distances, and a histogram of d(x, S'): the share of S' in bins whose edges are quantiles of x's
  own distances to the reference records (Stadler et al. and TAPAS use such target-relative
  distance features for generative models).
- **Classifier**: each feature is standardised per target over that target's K shadow sets, and
  one L2-regularised logistic regression is fitted on all 2T x K standardised rows. A classifier
  per target (Stadler et al.) sees only K rows of about 14 features (20 at the default K) and is
  mostly noise; one classifier on raw features would confound "x is in a dense region" with
  "x is a member"; per-target standardisation takes the target's own density out and the
  shared weights learn which direction of which feature means "in" from every target at once.
  ``classifier="per-target"`` gives Stadler et al.'s per-target classifiers on the same features.
- **Work folder**: each shadow (its checkpoint, its synthetic sample and a manifest of recipe
  hash, seeds and the targets it included, by row digest) is committed as one output set
  (:func:`pgan_cli.outputs.output_set`) in its own folder; a re-run with the same recipe,
  reference, targets and seed reuses every finished shadow, and an interrupted run loses at most
  the shadow in progress.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import console
from pgan_cli.attacks import keys as K
from pgan_cli.attacks.base import GENERATOR, REFERENCE, SYNTHETIC, Attack, AttackInputs, check_space, register
from pgan_cli.attacks.logan import check_generator_space
from pgan_cli.errors import InputError
from pgan_cli.attacks.shadow_runs import (Recipe, ShadowPlan, load_finished, plan_shadows,  # noqa: F401
                                          recipe_from_checkpoint)
from pgan_cli.attacks.shadow_runs import train_shadow as _train_one  # one name: tests interrupt it
from pgan_cli.params import (DEFAULT_SHADOW_MODELS, DEFAULT_SHADOW_TARGETS, MAX_SHADOW_COPIES, MAX_SHADOW_MODELS,
                             MAX_SHADOW_TARGETS, Interval, Optional_, Options, check)

CLASSIFIERS = ("shared", "per-target")
EXPOSED_FRACTION = 0.5            # of each side's targets: the most exposed by DCR; the rest at random
RADIUS_QUANTILES = (0.01, 0.05, 0.25, 0.5)  # of the reference's nearest-neighbour distances
HISTOGRAM_QUANTILES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)  # of d(target, reference)
KNN_MEAN = 5
RADIUS_SUBSET = 2048              # reference rows whose nearest-neighbour distances set the radii
C_REGULARISATION = 1.0            # logistic regression's inverse L2 strength (scikit-learn's default)
def model_space(ck):
    """``x -> `` x in the space the release's networks work in (vectors standardised with its
    ``data_scaling``; images unchanged), as float32 rows."""
    sc = ck.data_scaling
    if sc.get("kind") != "standardize":
        return lambda x: np.ascontiguousarray(x, dtype=np.float32)
    mean = np.asarray(sc["mean"], dtype=np.float64).reshape(-1)
    std = np.asarray(sc["std"], dtype=np.float64).reshape(-1)
    return lambda x: np.ascontiguousarray((np.asarray(x, dtype=np.float64) - mean) / std, dtype=np.float32)


def pairwise_distances(a: np.ndarray, b: np.ndarray, block: int = 8192) -> np.ndarray:
    """Exact L2 distances (float64) between the rows of ``a`` and ``b``, shape (len(a), len(b))."""
    a = np.asarray(a, dtype=np.float64)
    aa = (a * a).sum(1)[:, None]
    out = np.empty((len(a), len(b)))
    for s in range(0, len(b), block):
        bb = np.asarray(b[s:s + block], dtype=np.float64)
        d2 = aa + (bb * bb).sum(1)[None, :] - 2.0 * (a @ bb.T)
        out[:, s:s + block] = np.sqrt(np.maximum(d2, 0.0))
    return out


def reference_radii(reference: np.ndarray, seed: int, device: str = "cpu") -> np.ndarray:
    """Radii at :data:`RADIUS_QUANTILES` of the reference's nearest-neighbour distances (a seeded
    subset of at most 2,048 rows queried against all of the reference, each row's own entry excluded)."""
    from pgan_cli.neighbors import knn

    rng = np.random.default_rng(seed + 11)
    n = len(reference)
    rows = np.sort(rng.choice(n, min(n, RADIUS_SUBSET), replace=False))
    res = knn(np.ascontiguousarray(reference[rows]), reference, min(2, n), device=device)
    own = res.indices[:, 0] == rows
    nn = np.where(own, res.distances[:, -1], res.distances[:, 0]).astype(np.float64)
    radii = np.quantile(nn, RADIUS_QUANTILES)
    return np.maximum.accumulate(np.maximum(radii, 1e-12))


def feature_names() -> list[str]:
    return (["minus_dcr", f"minus_mean_distance_{KNN_MEAN}_closest"]
            + [f"log1p_count_within_nn_q{q:g}" for q in RADIUS_QUANTILES]
            + [f"share_within_reference_distance_q{q:g}" for q in HISTOGRAM_QUANTILES])


def set_features(d: np.ndarray, radii: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Features of one synthetic set relative to each target, each oriented to grow with the
    synthetic mass near the target: ``d`` (n_targets, |S'|) distances, ``radii`` the count radii,
    ``edges`` (n_targets, bins) the histogram's edges per target (the histogram as cumulative
    shares at its edges). Returns (n_targets, F) in the order of :func:`feature_names`."""
    ds = np.sort(d, axis=1)
    n = d.shape[1]
    dcr = ds[:, 0]
    near = ds[:, : min(KNN_MEAN, n)].mean(1)
    counts = np.stack([np.log1p((d < r).sum(1)) for r in radii], axis=1)
    within = np.stack([(d < edges[:, [b]]).sum(1) for b in range(edges.shape[1])], axis=1) / n
    return np.concatenate([-dcr[:, None], -near[:, None], counts, within], axis=1)


def histogram_edges(targets: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per target, the :data:`HISTOGRAM_QUANTILES` of its distances to the reference records."""
    q = np.quantile(pairwise_distances(targets, reference), HISTOGRAM_QUANTILES, axis=1).T
    return np.maximum.accumulate(q, axis=1)


def standardise(shadow: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Standardise features per target over its shadow sets: ``shadow`` (K, n_targets, F)."""
    mu = shadow.mean(0)
    sd = shadow.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return ((shadow - mu) / sd,) + tuple((o - mu) / sd for o in others)


def _logistic(x: np.ndarray, y: np.ndarray, monotone: bool = True) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression: weights and intercept minimising scikit-learn's objective
    C Σ log(1 + exp(-y' (x·w + b))) + ½‖w‖² (intercept not penalised); ``monotone``: every weight
    >= 0 (L-BFGS-B with bounds), since each feature grows with the synthetic mass near the target."""
    if not monotone:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C_REGULARISATION, max_iter=5000).fit(x, y)
        return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])
    from scipy.optimize import minimize
    from scipy.special import expit

    x = np.asarray(x, dtype=np.float64)
    ys = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    f = x.shape[1]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:f], theta[f]
        m = ys * (x @ w + b)
        dm = -expit(-m) * ys  # d log(1 + e^-m) / d(x·w + b)
        loss = C_REGULARISATION * np.logaddexp(0.0, -m).sum() + 0.5 * w @ w
        grad = np.r_[C_REGULARISATION * (x.T @ dm) + w, C_REGULARISATION * dm.sum()]
        return float(loss), grad

    res = minimize(objective, np.zeros(f + 1), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * f + [(None, None)], options={"maxiter": 5000})
    return res.x[:f], float(res.x[f])


def fit_predict(z_shadow: np.ndarray, labels: np.ndarray, z_release: np.ndarray, classifier: str = "shared",
                monotone: bool = True) -> np.ndarray:
    """The membership logit of each target on the release: ``z_shadow`` (K, n_targets, F)
    standardised features, ``labels`` (K, n_targets) 1 = in, ``z_release`` (n_targets, F)."""
    k, nt, f = z_shadow.shape
    if classifier == "shared":
        w, b = _logistic(z_shadow.reshape(k * nt, f), labels.reshape(-1), monotone)
        return z_release @ w + b
    out = np.empty(nt)
    for i in range(nt):
        w, b = _logistic(z_shadow[:, i, :], labels[:, i], monotone)
        out[i] = z_release[i] @ w + b
    return out


def validation_auc(z_shadow: np.ndarray, labels: np.ndarray, pairs: np.ndarray, classifier: str,
                   monotone: bool = True) -> float | None:
    """AUC of the classifier on shadow sets it was not fitted on (folds by shadow pair, at most 5):
    whether the shadows carry a membership signal at all. None with fewer than 2 pairs."""
    from pgan_cli.attacks.evaluation import auc

    groups = np.unique(pairs)
    if len(groups) < 2:
        return None
    k, nt, f = z_shadow.shape
    scores = np.zeros(labels.shape)
    for held in np.array_split(groups, min(5, len(groups))):
        test = np.isin(pairs, held)
        zs, ls = z_shadow[~test], labels[~test]
        if classifier == "shared":
            if len(np.unique(ls)) == 2:
                w, b = _logistic(zs.reshape(-1, f), ls.reshape(-1), monotone)
                scores[test] = z_shadow[test] @ w + b
            continue
        for i in range(nt):
            if len(np.unique(ls[:, i])) == 2:
                w, b = _logistic(zs[:, i, :], ls[:, i], monotone)
                scores[test, i] = z_shadow[test, i, :] @ w + b
    return float(auc(scores.reshape(-1), labels.reshape(-1)))


# ---- the work folder ----------------------------------------------------------------------------
# ---- the attack ---------------------------------------------------------------------------------
@register
class Shadow(Attack):
    name = "shadow"
    requires = (SYNTHETIC, REFERENCE, GENERATOR)
    whitebox = False  # attacks the released set only; knows the recipe (docs/attacks.md, threat model)
    only_by_name = "trains shadow generators with the release's recipe (minutes to hours); name it: --methods shadow"
    citation = ("Stadler, Oprisanu & Troncoso, USENIX Security 2022; Houssiau et al., TAPAS, 2022 "
                "(shadow modelling, multi-target)")
    summary = ("P(member) from a classifier fitted on synthetic sets of shadow generators trained with and "
               "without the target")

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params

        def given(name: str, default: Any) -> Any:
            return default if p.get(name) is None else p[name]

        self.n_shadows = check("shadow_models", given("shadow_models", DEFAULT_SHADOW_MODELS),
                               Interval(2, MAX_SHADOW_MODELS))
        self.n_targets = check("targets", given("targets", DEFAULT_SHADOW_TARGETS), Interval(1, MAX_SHADOW_TARGETS))
        self.shadow_steps = check("shadow_steps", p.get("shadow_steps"), Optional_(Interval(1, None)))
        self.classifier = check("classifier", given("classifier", "shared"), Options(CLASSIFIERS)).lower()
        self.exposed_fraction = check("exposed_fraction", given("exposed_fraction", EXPOSED_FRACTION),
                                      Interval(0.0, 1.0, real=True))
        self.copies = check("shadow_copies", given("shadow_copies", 1), Interval(1, MAX_SHADOW_COPIES))
        self.monotone = bool(given("monotone", True))
        self.shadow_dir = p.get("shadow_dir")
        self.params = {K.KEY_SHADOW_MODELS: self.n_shadows, "targets_per_side": self.n_targets,
                       "shadow_steps": self.shadow_steps, "shadow_copies": self.copies,
                       "classifier": self.classifier, "monotone": self.monotone,
                       "exposed_fraction": self.exposed_fraction,
                       "shadow_dir": None if self.shadow_dir is None else str(self.shadow_dir)}
        self._selection: list[dict[str, Any]] | None = None
        self._details: list[dict[str, Any]] | None = None

    def fit(self, inputs: AttackInputs) -> Shadow:
        super().fit(inputs)
        ck = inputs.generator
        self.recipe = recipe_from_checkpoint(ck, self.shadow_steps)
        check_generator_space(inputs.synthetic, ck)
        check_space(inputs.synthetic, inputs.reference, "reference")
        nt_max, c = 2 * self.n_targets, self.copies
        need = self.recipe.data_n - c * (nt_max // 2)
        if len(inputs.reference) < need:
            raise InputError(f"shadow: each shadow training set has the release's {self.recipe.data_n} records "
                             f"(data_n in {ck.path}), up to {need} of them from the reference, which has "
                             f"{len(inputs.reference)}; give more reference records (e.g. `pgan data split "
                             f"--fractions 0.25,0.25,0.5`) or fewer members")
        if self.recipe.data_n < c * (nt_max - nt_max // 2):
            raise InputError(f"shadow: {nt_max - nt_max // 2} inserted targets x {c} copies do not fit in "
                             f"training sets of {self.recipe.data_n} records; ask for fewer --targets or "
                             f"--shadow-copies")
        return self

    # -- whom to target
    def targets(self, candidates: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Per side (members, non-members): the distinct records of smallest DCR to the released
        set (``exposed_fraction`` of ``targets``, rounded up), then records drawn at random."""
        from pgan_cli.split import row_digests

        check_space(candidates, self.inputs.synthetic, "synthetic")
        dcr = self.cache.knn(candidates, self.inputs.synthetic, 1).distances[:, 0].astype(np.float64)
        rng = np.random.default_rng(self.inputs.seed + 29)
        rows, selection = [], []
        for side in (1, 0):
            idx = np.flatnonzero(np.asarray(truth) == side)
            _, first = np.unique(row_digests(candidates[idx]), return_index=True)
            idx = idx[np.sort(first)]  # one row per distinct record (a duplicated member counts once)
            order = idx[np.argsort(dcr[idx], kind="stable")]
            n_exposed = min(len(order), math.ceil(self.n_targets * self.exposed_fraction))
            rest = order[n_exposed:]
            n_random = min(len(rest), self.n_targets - n_exposed)
            picked = [(int(r), "exposed") for r in order[:n_exposed]]
            picked += [(int(r), "random") for r in np.sort(rng.choice(rest, n_random, replace=False))]
            for r, how in picked:
                rows.append(r)
                selection.append({K.KEY_TARGET_CHOSEN: how, K.KEY_TARGET_DCR: float(dcr[r])})
        self._selection = selection
        return np.asarray(rows, dtype=np.int64)

    def details(self) -> list[dict[str, Any]] | None:
        return self._details

    # -- the attack
    def score(self, candidates: np.ndarray) -> np.ndarray:
        from pgan_cli.split import row_digests

        inp = self.inputs
        check_generator_space(candidates, inp.generator)
        check_space(candidates, inp.synthetic, "synthetic")
        if not np.isfinite(candidates).all():
            raise InputError("shadow: a target holds NaN or Inf values; no membership score is computed for it")
        targets = np.ascontiguousarray(candidates, dtype=np.float32)
        digests = [d.hex() for d in row_digests(targets)]
        if len(set(digests)) != len(digests):
            raise InputError("shadow: the targets hold the same record twice; give distinct records")
        order = np.argsort(digests, kind="stable")  # canonical order: the plan depends on the set only
        t_sorted = targets[order]
        d_sorted = [digests[i] for i in order]
        S, R = inp.synthetic, inp.reference
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        reference_sha = hashlib.sha256(np.ascontiguousarray(R, dtype=np.float32).tobytes()).hexdigest()
        recipe = self.recipe
        plans = plan_shadows(self.n_shadows, d_sorted, recipe.data_n, len(R), inp.seed, recipe.sha256,
                             reference_sha, len(S), self.copies)
        manifest = {"recipe": recipe.as_json(), "recipe_sha256": recipe.sha256, "reference_sha256": reference_sha,
                    "seed": inp.seed, "n_synthetic": len(S), "generator_sha256": inp.generator.sha256}
        sets, metas = self._shadow_sets(plans, recipe, t_sorted, d_sorted, R, len(S), manifest)
        # features relative to each target, of every shadow set and of the released set
        space = model_space(inp.generator)
        t_space, r_space = space(t_sorted), space(R)
        radii = reference_radii(r_space, inp.seed, inp.cache.device)
        edges = histogram_edges(t_space, r_space)
        f_shadow = np.stack([set_features(pairwise_distances(t_space, space(x)), radii, edges) for x in sets])
        f_release = set_features(pairwise_distances(t_space, space(S)), radii, edges)
        labels = np.stack([p.inserted for p in plans]).astype(np.int64)
        z_shadow, z_release = standardise(f_shadow, f_release)
        logit_sorted = fit_predict(z_shadow, labels, z_release, self.classifier, self.monotone)
        val = validation_auc(z_shadow, labels, np.array([p.pair for p in plans]), self.classifier, self.monotone)
        logit = np.empty(len(targets))
        logit[order] = logit_sorted
        prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        sel = self._selection if self._selection is not None and len(self._selection) == len(targets) else None
        self._selection = None
        self._details = [{**(sel[i] if sel else {}), K.KEY_MEMBERSHIP_PROBABILITY: float(prob[i])}
                         for i in range(len(targets))]
        shadow_cpu = sum(float(m.get("cpu_seconds") or 0.0) for m in metas)
        this_cpu = time.process_time() - t_cpu
        feature_cpu = max(0.0, this_cpu - sum(float(m.get("cpu_seconds") or 0.0) for m in metas if m.get("_new")))
        trained = sum(1 for m in metas if m.get("_new"))
        self.params.update({
            "targets_scored": len(targets), "target_selection": (
                f"per side (members, non-members): the {math.ceil(self.n_targets * self.exposed_fraction)} distinct "
                f"records of smallest DCR to the released set, then the rest at random (seed {inp.seed + 29})"),
            K.KEY_RECIPE: recipe.as_json(), K.KEY_RECIPE_SHA256: recipe.sha256,
            "recipe_notes": recipe.notes, "training_size": recipe.data_n, "n_synthetic": len(S),
            K.KEY_SHADOWS_TRAINED: trained, K.KEY_SHADOWS_REUSED: self.n_shadows - trained,
            "design": ("complementary pairs over one background sample of the reference: each target is in one "
                       "shadow of every pair and out of the other (TAPAS multi-target)"),
            "classifier_description": (
                f"{self.classifier} logistic regression (L2, C = {C_REGULARISATION:g}"
                f"{', weights >= 0' if self.monotone else ''}) on features standardised per target over its "
                f"shadow sets"),
            "features": feature_names(), "radii": radii.tolist(),
            "feature_space": ("standardised with the checkpoint's data_scaling"
                              if inp.generator.data_scaling.get("kind") == "standardize" else "the data space"),
            K.KEY_SHADOW_VALIDATION_AUC: val,
            "cpu_seconds": round(shadow_cpu + feature_cpu, 3),
            "cpu_seconds_this_run": round(this_cpu, 3),
            "wall_seconds_this_run": round(time.perf_counter() - t_wall, 3),
            K.KEY_CPU_MINUTES_PER_TARGET: round((shadow_cpu + feature_cpu) / 60.0 / len(targets), 4),
            "score": "logit of the membership probability",
        })
        return logit

    def _shadow_sets(self, plans: list[ShadowPlan], recipe: Recipe, targets: np.ndarray, digests: list[str],
                     reference: np.ndarray, n_synthetic: int, manifest: dict) -> tuple[list[np.ndarray], list[dict]]:
        """Every shadow's synthetic set: reused from the work folder when finished there, else trained."""
        temporary = self.shadow_dir is None
        work = Path(tempfile.mkdtemp(prefix="pgan-shadow-")) if temporary else Path(self.shadow_dir)
        if not temporary:
            from pgan_cli.files import make_dirs

            if os.path.lexists(work) and not work.is_dir():
                raise InputError(f"--shadow-dir {work} is a file, not a folder; writing there would replace it")
            make_dirs(work)
        o = recipe.options
        length = f"{o['steps']} steps" if o.get("steps") else f"{o['epochs']} epochs"
        console.log(f"shadow: {len(plans)} shadow generators ({o['arch']}/{o['net']}, {length}"
                    f" on {recipe.data_n} records) for {len(digests)} targets in "
                    f"{'a temporary folder (give --shadow-dir to keep them)' if temporary else work}")
        for note in recipe.notes:
            console.log(f"shadow: {note}")
        dim = targets.shape[1]
        sets, metas = [], []
        try:
            with console.progress_task("shadow models", len(plans)) as advance:
                trained = 0
                for plan in plans:
                    found = None if temporary else load_finished(work, plan, n_synthetic, dim)
                    if found is None:
                        x, m = _train_one(work, plan, recipe, targets, digests, reference, n_synthetic,
                                          self.inputs.device, manifest, self.copies)
                        m = {**m, "_new": True}
                        trained += 1
                    else:
                        x, m = found
                    sets.append(x)
                    metas.append(m)
                    advance(1, info=f"trained {trained}, reused {len(metas) - trained}")
        finally:
            if temporary:
                shutil.rmtree(work, ignore_errors=True)  # made by this run, everything in it is pgan's
        return sets, metas

