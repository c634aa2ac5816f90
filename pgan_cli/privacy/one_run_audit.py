"""One-run auditing of a differential-privacy claim: ``pgan dp-audit`` (Steinke, Nasr & Jagielski,
"Privacy auditing with one (1) training run", NeurIPS 2023; docs/dp.md, "Auditing the claim").

The run trained on each of m canaries independently with probability 1/2
(:mod:`pgan_cli.gan.canaries`). The auditor scores every canary with the trained model (the
discriminator's logit, as LOGAN; or minus the generator's reconstruction error, as GAN-Leaks),
guesses "in" for the k+ highest scores and "out" for the k- lowest, and counts the correct
guesses v among the r = k+ + k- made. If the training is (eps, delta)-DP, then (their Theorem
5.2, the exact tail, no normal approximation)

    P[v correct or more] <= P[Binomial(r, q) >= v] + 2 m delta max_{1<=i<=v} P[v-i <= Binomial(r, q) < v] / i,

with q = e^eps / (1 + e^eps), the accuracy of eps-DP randomised response. The audited epsilon is
the largest eps that this p-value rejects at level beta = 1 - confidence: with probability at
least 1 - beta the training is not (eps', delta)-DP for any eps' below it. pgan tries a fixed grid
of guess counts and divides beta by the grid's size (Bonferroni), so the confidence holds for
the best of them; ``--guesses`` tests one pre-registered pair instead.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from pgan_cli import formats
from pgan_cli.errors import InputError
from pgan_cli.params import Interval, OptionError, Optional_, Options, constrained

SCORES = ("logan", "gan-leaks")
GUESS_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.5)  # k+ as a share of the canaries; k- is 0 or k+
DEFAULT_CONFIDENCE = 0.95
DEFAULT_DELTA_WITHOUT_CLAIM = 1e-5


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[at least ``v`` of ``r`` guesses correct] for an (``epsilon``, ``delta``)-DP run with ``m``
    canaries, each included with probability 1/2 (the bound above; 1 is the most it says)."""
    from scipy.stats import binom

    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1.0 / (1.0 + math.exp(-epsilon))
    p = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if delta > 0 and v > 0:
        below = binom.pmf(np.arange(v - 1, -1, -1), r, q)   # P[B = v-1], P[B = v-2], ..., P[B = 0]
        windows = np.cumsum(below) / np.arange(1, v + 1)    # P[v-i <= B < v] / i for i = 1..v
        p += 2.0 * m * delta * float(windows.max())
    return min(p, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, beta: float) -> float:
    """The largest epsilon whose p-value for ``v`` correct of ``r`` guesses is below ``beta``
    (0 when even epsilon = 0 is not rejected); by bisection to 1e-6."""
    if r == 0 or p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < beta:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:  # every guess right and beta tiny: the bound is as large as the data can show
            return lo
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2.0
        if p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def exceeds_claim(epsilon_lower_bound: float, claimed_epsilon: float | None) -> bool:
    """Whether the audit proves more privacy loss than the training claimed (docs/dp.md, "Auditing
    the claim"): the audited lower bound above the claimed epsilon; never without a claim."""
    return claimed_epsilon is not None and epsilon_lower_bound > claimed_epsilon


def guess_grid(m: int) -> list[tuple[int, int]]:
    """The (k+, k-) pairs pgan tries by default: k+ a fixed share of the canaries, k- 0 or k+."""
    out: list[tuple[int, int]] = []
    for f in GUESS_FRACTIONS:
        k = max(1, int(round(f * m)))
        for pair in ((k, 0), (k, k)):
            if sum(pair) <= m and pair not in out:
                out.append(pair)
    return out


def audit_scores(scores: np.ndarray, included: np.ndarray, *, delta: float, confidence: float = DEFAULT_CONFIDENCE,
                 guesses: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The audit from the canaries' scores (higher: more likely trained on) and inclusion bits.

    Ties are broken by canary index, which is independent of inclusion, so the guesses stay a
    function of the model alone."""
    from pgan_cli.attacks.evaluation import auc

    scores = np.asarray(scores, dtype=np.float64)
    included = np.asarray(included, dtype=bool)
    m = len(scores)
    if not np.isfinite(scores).all():
        raise InputError("some canary scores are not finite; the model's outputs overflowed")
    grid = list(guesses) if guesses else guess_grid(m)
    beta = (1.0 - confidence) / len(grid)
    order = np.lexsort((np.arange(m), -scores))  # highest score first, then lowest index
    tests = []
    for kp, kn in grid:
        if kp < 0 or kn < 0 or kp + kn > m or kp + kn == 0:
            raise OptionError(f"$guesses {kp},{kn}: need k+ and k- >= 0, 0 < k+ + k- <= {m} (the canaries)",
                              "guesses")
        top, bottom = order[:kp], order[m - kn:] if kn else order[:0]
        correct = int(included[top].sum() + (~included[bottom]).sum())
        tests.append({"guess_in": kp, "guess_out": kn, "correct": correct,
                      "epsilon_lower_bound": epsilon_lower_bound(m, kp + kn, correct, delta, beta)})
    best = max(tests, key=lambda t: (t["epsilon_lower_bound"], t["correct"] / (t["guess_in"] + t["guess_out"])))
    both = included.any() and (~included).any()
    return {"epsilon_lower_bound": best["epsilon_lower_bound"], "confidence": confidence, "delta": delta,
            "guess_in": best["guess_in"], "guess_out": best["guess_out"], "guesses": best["guess_in"] + best["guess_out"],
            "correct": best["correct"], "tests": tests, "beta_per_test": beta,
            "correction": "bonferroni over the tests" if len(grid) > 1 else "none (one pre-registered test)",
            "auc": auc(scores, included.astype(np.int8)) if both else None}


def canary_scores(ck, x: np.ndarray, labels: np.ndarray | None, method: str, seed: int = 0) -> np.ndarray:
    """Each canary's membership score under the trained model: the discriminator's logit
    (``logan``; Hayes et al. 2019) or minus the generator's best reconstruction error
    (``gan-leaks``; Chen et al. 2020)."""
    import torch

    flat = x.reshape(len(x), -1)
    if method == "logan":
        with torch.no_grad():
            return np.concatenate([ck.discriminate(torch.from_numpy(flat[a:a + 1024])).double().cpu().numpy()
                                   for a in range(0, len(flat), 1024)])
    from pgan_cli.attacks.gan_leaks import reconstruction_loss

    lab = labels if ck.conditional else None
    if ck.conditional and lab is None:
        raise InputError("the generator is conditional but the canaries have no labels")
    return -reconstruction_loss(ck, flat, None, lab, seed=seed)


def parse_guesses(text: str | None) -> list[tuple[int, int]] | None:
    """``"20,20"`` -> [(20, 20)]; ``"20"`` -> [(20, 0)]; None -> None (the default grid)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise OptionError(f"$guesses must be K+ or K+,K- (whole numbers), got {OptionError.literal(text)!r}", "guesses")
    return [(parts[0], parts[1] if len(parts) == 2 else 0)]


@constrained(score=Options(SCORES), confidence=Interval(0.5, 1.0, real=True, high_open=True),
             delta=Optional_(Interval(0.0, 1.0, real=True, high_open=True)))
def dp_audit_file(checkpoint: str | os.PathLike, *, canary_source: str | os.PathLike | None = None,
                  score: str = "logan", confidence: float = DEFAULT_CONFIDENCE, guesses: str | None = None,
                  delta: float | None = None, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """``pgan dp-audit``: the audited epsilon of a run trained with ``--audit-canaries``, beside its
    claim; the stamped JSON the command prints."""
    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.files import check_input
    from pgan_cli.gan import canaries
    from pgan_cli.provenance import make_provenance

    check_input(checkpoint, "checkpoint")
    ck = load_checkpoint(checkpoint, device)
    record = ck.config.get(canaries.CONFIG_KEY)
    if not record:
        raise InputError(f"{checkpoint} was trained without audit canaries; train with "
                         f"`pgan train --audit-canaries M` (e.g. 500) to audit its privacy claim")
    design = canaries.CanaryDesign.from_record(record, ck.config, str(checkpoint))
    x, y = canaries.canary_records(design, ck.config, canary_source, where=str(checkpoint))
    s = canary_scores(ck, x, y, score, seed=seed)
    dp = ck.config.get("dp") if isinstance(ck.config.get("dp"), dict) else None
    claimed = None
    if dp is not None:
        claimed = {"epsilon": float(dp.get("epsilon", dp.get("target_epsilon"))), "delta": float(dp["delta"]),
                   "target_epsilon": float(dp["target_epsilon"]), "accountant": dp.get("accountant")}
    used_delta = float(delta if delta is not None else (claimed["delta"] if claimed else DEFAULT_DELTA_WITHOUT_CLAIM))
    audited = audit_scores(s, np.asarray(design.included), delta=used_delta, confidence=confidence,
                           guesses=parse_guesses(guesses))
    result = {
        "claimed": claimed,
        "audited": audited,
        "exceeds_claim": exceeds_claim(audited["epsilon_lower_bound"], claimed["epsilon"] if claimed else None),
        "score": score,
        "canaries": {"m": design.m, "included": design.n_included, "source": design.source,
                     "source_path": design.source_path, "seed": design.seed,
                     "inclusion_probability": canaries.INCLUSION_PROBABILITY},
        "checkpoint_step": ck.step,
        "provenance": make_provenance([checkpoint] + ([canary_source] if canary_source else []), seed=seed,
                                      device=device, score=score, confidence=confidence, guesses=guesses,
                                      delta=used_delta, checkpoint_sha256=ck.sha256),
    }
    return formats.stamped(formats.DP_AUDIT, result)
