"""Run the attack suite and the distance metrics on members M, non-members H and synthetic S.

:func:`run_suite` works on arrays (for notebooks and tests); :func:`audit_files` loads the
files given to ``pgan attack``, runs the suite, writes the optional scores file and returns
the JSON result with its provenance.

Unequal |M| and |H|: the larger set is subsampled (seeded) to the size of the smaller for the
attacks, so the candidates are balanced; the ``sets`` object says so and the scores file keeps
each candidate's row in its own file.

An attack that scores chosen targets rather than every candidate (``Attack.targets``: shadow
modelling) is evaluated over its targets; its JSON entry lists them (``targets``) and the scores
file keeps them under ``targets/<method>``, apart from the per-candidate ``scores/<method>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import console
from pgan_cli.attacks import keys as K
from pgan_cli.attacks.base import (GENERATOR, REFERENCE, REFERENCE_GENERATOR, REGISTRY, SYNTHETIC,
                                   AttackInputs, get_attack, plan)
from pgan_cli.attacks.evaluation import N_BOOTSTRAP, check_scores, evaluate_attack
from pgan_cli.arrays import check_rows
from pgan_cli.errors import InputError
from pgan_cli.params import (MAX_BOOTSTRAP, MAX_SHADOW_COPIES, MAX_SHADOW_MODELS, MAX_SHADOW_TARGETS, Interval,
                             Optional_, check, constrained)
from pgan_cli.attacks.cache import NeighborCache


@dataclass
class SuiteResult:
    """``json``: the result object (without provenance); ``scores``/``truth``/...: for the scores file."""

    json: dict
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    truth: np.ndarray | None = None
    candidate_index: np.ndarray | None = None
    candidate_source: np.ndarray | None = None
    distance_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    target_rows: dict[str, np.ndarray] = field(default_factory=dict)    # per-target attacks: candidate rows
    target_scores: dict[str, np.ndarray] = field(default_factory=dict)  # ... and their scores


def balanced_candidates(n_members: int, n_holdout: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of M and H used as candidates: all of both when equal, else the larger subsampled."""
    rng = np.random.default_rng(seed + 3)
    n = min(n_members, n_holdout)
    mi = np.arange(n_members) if n_members == n else np.sort(rng.choice(n_members, n, replace=False))
    hi = np.arange(n_holdout) if n_holdout == n else np.sort(rng.choice(n_holdout, n, replace=False))
    return mi, hi


def _as_vectors(x: np.ndarray | None, what: str) -> np.ndarray | None:
    if x is None:
        return None
    a = check_rows(x, f"the {what} set", flatten=True)
    return np.ascontiguousarray(a, dtype=np.float32)


def run_suite(members: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray | None = None,
              reference: np.ndarray | None = None, generator: Any = None, reference_generator: Any = None,
              methods: str | list[str] = "all", *, synthetic_latents: np.ndarray | None = None,
              synthetic_labels: np.ndarray | None = None, seed: int = 0, device: str = "cpu",
              n_boot: int = N_BOOTSTRAP, distances: bool = True, params: dict | None = None,
              cache: NeighborCache | None = None) -> SuiteResult:
    """Run the chosen attacks (and the distance metrics when S is given) and evaluate them.

    ``cache``: the neighbour cache to search through (a fresh one by default)."""
    M, H = _as_vectors(members, "members"), _as_vectors(holdout, "non-members")
    S, R = _as_vectors(synthetic, "synthetic"), _as_vectors(reference, "reference")
    dim = M.shape[1]
    for what, x in (("non-members", H), ("synthetic", S), ("reference", R)):
        if x is not None and x.shape[1] != dim:
            raise InputError(f"the {what} set has {x.shape[1]} dimensions but the members have {dim}; "
                             f"mismatched spaces: all sets must be in one space (pixels, or the same `pgan embed` model)")
    if len(M) < 2 or len(H) < 2:
        raise InputError(f"need at least 2 members and 2 non-members (got {len(M)} and {len(H)})")
    given = {n for n, v in ((SYNTHETIC, S), (REFERENCE, R), (GENERATOR, generator),
                            (REFERENCE_GENERATOR, reference_generator)) if v is not None}
    run, skipped = plan(methods, given, dim)
    for name, why in skipped.items():
        console.log(f"skipped {name}: {why}")
    mi, hi = balanced_candidates(len(M), len(H), seed)
    cand = np.ascontiguousarray(np.concatenate([M[mi], H[hi]]))
    truth = np.r_[np.ones(len(mi), dtype=np.int8), np.zeros(len(hi), dtype=np.int8)]
    cache = NeighborCache() if cache is None else cache
    cache.register_rows(cand, [(M, mi), (H, hi)])
    if distances and S is not None:  # the attacks search M, H -> S; the distance metrics S -> M, H
        cache.pair(M, S)
        cache.pair(H, S)
    inputs = AttackInputs(synthetic=S, reference=R, generator=generator, reference_generator=reference_generator,
                          synthetic_latents=synthetic_latents, synthetic_labels=synthetic_labels, cache=cache,
                          seed=seed, device=device)
    per_params = params or {}
    attacks, scores, target_rows, target_scores = {}, {}, {}, {}
    cand_index = np.r_[mi, hi].astype(np.int64)
    for name in console.progress(run, description="attacks"):
        t0 = time.perf_counter()
        att = get_attack(name, **per_params.get(name, {}))
        att.fit(inputs)
        rows = att.targets(cand, truth)
        if rows is None:
            s = check_scores(name, att.score(cand), len(cand))
            rep = evaluate_attack(s, truth, seed=seed, n_boot=n_boot, name=name)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            s = check_scores(name, att.score(np.ascontiguousarray(cand[rows])), len(rows))
            rep = evaluate_attack(s, truth[rows], seed=seed, n_boot=n_boot, name=name)
            extra = att.details() or [{} for _ in rows]
            rep[K.KEY_TARGETS] = [{K.KEY_TARGET_SOURCE: "members" if truth[r] else "holdout",
                                   K.KEY_TARGET_INDEX: int(cand_index[r]), K.KEY_TARGET_MEMBER: int(truth[r]),
                                   K.KEY_TARGET_SCORE: float(v), **e} for r, v, e in zip(rows, s, extra)]
        rep[K.KEY_REFERENCE] = REGISTRY[name].citation
        rep[K.KEY_WHITE_BOX] = bool(REGISTRY[name].whitebox)
        rep[K.KEY_PARAMS] = att.describe()
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        attacks[name] = rep
        if rows is None:
            scores[name] = s
        else:
            target_rows[name], target_scores[name] = rows, s
        ci = rep[K.KEY_AUC_CI]
        ci_text = "" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"
        over = "" if rows is None else f" over {len(rows)} targets"
        console.log(f"{name}: AUC {rep[K.KEY_AUC]:.3f}{ci_text}{over} ({rep['seconds']:.1f} s)")
    dist_summary, dist_arrays = None, {}
    if distances and S is not None:
        from pgan_cli.attacks.distances import privacy_distances

        t0 = time.perf_counter()
        rep = privacy_distances(M, H, S, cache=cache, seed=seed)
        dist_summary, dist_arrays = rep.summary, rep.arrays
        console.log(f"distances: DCR share {dist_summary[K.KEY_DCR_SHARE]:.3f}, "
                    f"{dist_summary[K.KEY_NEAR_COPIES]} near-copies ({time.perf_counter() - t0:.1f} s)")
    balanced = len(M) != len(H)
    sets = {
        "members": {"n": len(M), "used": len(mi)},
        "non_members": {"n": len(H), "used": len(hi)},
        "synthetic": None if S is None else {"n": len(S)},
        "reference": None if R is None else {"n": len(R)},
        "dim": dim,
        "candidates": int(len(cand)),
        "balanced_subsampling": balanced,
        "note": (f"|members| = {len(M)} and |non-members| = {len(H)} differ: the larger was subsampled "
                 f"(seed {seed}) to {len(mi)} so the attacks see balanced candidates") if balanced else
                "members and non-members have equal sizes; all are candidates",
        "metric": "l2",
        "score_orientation": "higher = more likely a member",
    }
    out = {K.KEY_ATTACKS: attacks, K.KEY_DISTANCES: dist_summary, K.KEY_SETS: sets, K.KEY_SKIPPED: skipped}
    return SuiteResult(out, scores, truth, cand_index,
                       np.r_[np.ones(len(mi)), np.zeros(len(hi))].astype(np.int8), dist_arrays,
                       target_rows, target_scores)


def write_scores(path: str | Path, result: SuiteResult, provenance: dict) -> Path:
    """The scores file: per-candidate scores per attack, truth, candidate rows, DCR arrays (atomic)."""
    import json

    from pgan_cli.atomic import atomic_path, h5_create

    with atomic_path(path, suffix=".h5.tmp") as tmp:
        with h5_create(tmp) as f:
            f.attrs["format"] = K.SCORES_FORMAT
            f.attrs["format_version"] = K.SCORES_FORMAT_VERSION
            f.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
            f.attrs["sets"] = json.dumps(result.json[K.KEY_SETS], sort_keys=True, default=str)
            f.attrs["methods"] = json.dumps(list(result.scores))
            f.attrs["score_orientation"] = "higher = more likely a member"
            f.create_dataset(K.SCORES_MEMBERSHIP, data=result.truth.astype(np.int8))
            f.create_dataset(K.SCORES_CANDIDATE_INDEX, data=result.candidate_index)
            f.create_dataset(K.SCORES_CANDIDATE_SOURCE, data=result.candidate_source)
            g = f.create_group(K.SCORES_GROUP)
            for name, s in result.scores.items():
                g.create_dataset(name, data=np.asarray(s, dtype=np.float64))
            d = f.create_group(K.SCORES_DISTANCES_GROUP)
            for name, a in result.distance_arrays.items():
                d.create_dataset(name, data=a)
            if result.target_scores:  # attacks scored over chosen targets, one group each
                f.attrs["target_methods"] = json.dumps(list(result.target_scores))
                tg = f.create_group(K.SCORES_TARGETS_GROUP)
                for name, s in result.target_scores.items():
                    rows = result.target_rows[name]
                    g = tg.create_group(name)
                    g.create_dataset(K.SCORES_TARGET_SCORE, data=np.asarray(s, dtype=np.float64))
                    g.create_dataset(K.SCORES_MEMBERSHIP, data=result.truth[rows].astype(np.int8))
                    g.create_dataset(K.SCORES_CANDIDATE_INDEX, data=result.candidate_index[rows])
                    g.create_dataset(K.SCORES_CANDIDATE_SOURCE, data=result.candidate_source[rows])
    return Path(path)


def _load_set(path: Path | None, what: str) -> tuple[np.ndarray | None, dict]:
    from pgan_cli.dataset import read_dataset
    from pgan_cli.samples import load_vectors
    from pgan_cli.files import check_input

    if path is None:
        return None, {}
    from pgan_cli.provenance import shown_path

    info: dict[str, Any] = {"path": shown_path(path),
                            "format": "npy" if Path(path).suffix.lower() == ".npy" else "pgan-h5"}
    if info["format"] == "npy":
        info["kind"] = "embedding"
        return load_vectors(path, what), info
    bundle = read_dataset(check_input(path, what))  # samples, labels and latents in one read
    info.update(kind=bundle.kind, latents=bundle.latents, labels=bundle.labels)
    return bundle.samples.reshape(bundle.n, -1), info


def check_bootstrap(bootstrap: int) -> int:
    """0 (no interval) or 10 to 100,000 resamples (fewer give no usable 95% interval)."""
    if bootstrap != 0:
        check("bootstrap", bootstrap, Interval(10, MAX_BOOTSTRAP))
    return bootstrap


@constrained(shadow_models=Optional_(Interval(2, MAX_SHADOW_MODELS)),
             targets=Optional_(Interval(1, MAX_SHADOW_TARGETS)), shadow_steps=Optional_(Interval(1, None)), shadow_copies=Optional_(Interval(1, MAX_SHADOW_COPIES)))
def audit_files(members: Path, non_members: Path, synthetic: Path | None = None, reference: Path | None = None,
                generator: Path | None = None, reference_generator: Path | None = None,
                methods: str = "all", scores: Path | None = None, seed: int = 0, device: str = "cpu",
                bootstrap: int = N_BOOTSTRAP, distances: bool = True, knn_device: str = "cpu", *,
                shadow_models: int | None = None, targets: int | None = None, shadow_dir: Path | None = None,
                shadow_steps: int | None = None, shadow_copies: int | None = None) -> dict:
    """``pgan attack``: load the files, run the suite, write ``scores`` (optional), return the JSON.

    ``device``: torch device of the white-box attacks and of shadow training; ``knn_device``:
    FAISS device of the neighbour searches (``cpu``, ``cuda:N``, ``cuda:all``). ``shadow_models``,
    ``targets``, ``shadow_dir``, ``shadow_steps``, ``shadow_copies``: the shadow attack's (None: its
    defaults)."""
    from pgan_cli.params import OptionError
    from pgan_cli.provenance import make_provenance, shown_path

    n_boot = check_bootstrap(bootstrap)
    shadow = {k: v for k, v in (("shadow_models", shadow_models), ("targets", targets), ("shadow_dir", shadow_dir),
                                ("shadow_steps", shadow_steps), ("shadow_copies", shadow_copies)) if v is not None}
    named = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    if shadow and "shadow" not in named:
        raise OptionError(" and ".join(f"${k}" for k in shadow) + " set the shadow attack, which runs only when "
                          "named: add shadow to $methods", *shadow, "methods")
    loaded = {}
    for what, p in (("members", members), ("non-members", non_members), ("synthetic", synthetic),
                    ("reference", reference)):
        loaded[what] = _load_set(p, what)
    from pgan_cli.split import require_disjoint

    require_disjoint([(w, p, loaded[w][0]) for w, p in (("members", members), ("non-members", non_members),
                                                        ("reference", reference))],
                     "membership-inference figures")
    kinds = {what: info["kind"] for what, (x, info) in loaded.items() if x is not None}
    if "embedding" in kinds.values() and len(set(kinds.values())) > 1:
        desc = ", ".join(f"{w} is {'an NPY embedding' if k == 'embedding' else k}" for w, k in kinds.items())
        raise InputError(f"mismatched spaces: {desc}; give all sets as dataset files or all as embeddings "
                         f"from the same `pgan embed` model")
    ck = ref_ck = None
    if generator is not None or reference_generator is not None:
        from pgan_cli.gan.checkpoint import load_checkpoint

        ck = load_checkpoint(generator, device=device) if generator is not None else None
        ref_ck = load_checkpoint(reference_generator, device=device) if reference_generator is not None else None
    if ref_ck is not None and ck is None:
        raise InputError("--reference-generator calibrates the white-box gan-leaks attack; give --generator too")
    s_info = loaded["synthetic"][1]
    result = run_suite(loaded["members"][0], loaded["non-members"][0], loaded["synthetic"][0],
                       loaded["reference"][0], ck, ref_ck, methods, synthetic_latents=s_info.get("latents"),
                       synthetic_labels=s_info.get("labels"), seed=seed, device=device, n_boot=n_boot,
                       distances=distances, cache=NeighborCache(device=knn_device),
                       params={"shadow": shadow} if "shadow" in named else None)
    sets = result.json[K.KEY_SETS]
    for what, key in (("members", "members"), ("non-members", "non_members"), ("synthetic", "synthetic"),
                      ("reference", "reference")):
        if sets.get(key) is not None:
            sets[key]["path"] = loaded[what][1]["path"]
            sets[key]["format"] = loaded[what][1]["format"]
    sets["generator"] = None if generator is None else str(generator)
    sets["reference_generator"] = None if reference_generator is None else str(reference_generator)
    inputs = [p for p in (members, non_members, synthetic, reference, generator, reference_generator) if p is not None]
    prov = make_provenance(inputs, seed=seed, device=device, knn_device=knn_device, methods=methods,
                           n_bootstrap=n_boot,
                           distances=distances, scores=None if scores is None else shown_path(scores),
                           **({"shadow": {k: (shown_path(v) if k == "shadow_dir" else v) for k, v in shadow.items()}}
                              if shadow else {}))
    if scores is not None:
        write_scores(scores, result, prov)
    from pgan_cli import formats

    out = dict(result.json)
    out[K.KEY_PROVENANCE] = prov
    return formats.stamped(formats.ATTACK, out)
