"""How a membership-inference attack is reported: AUC with a bootstrap interval, low-FPR TPR,
advantage, balanced accuracy and an effective-epsilon lower bound.

Scores are oriented so that higher means "more likely a member"; ``truth`` is 1 for members
and 0 for non-members.

- AUC: the Mann-Whitney statistic (ties count one half); its 95% interval is the percentile
  bootstrap over 1,000 resamples of the candidates, stratified (members and non-members are
  resampled separately, so each resample keeps both classes).
- TPR at FPR 0.1%, 1%, 10%: the largest TPR of a threshold whose FPR does not exceed the level
  (Carlini et al., "Membership inference attacks from first principles", S&P 2022).
- Membership advantage: max_t (TPR_t - FPR_t) (Yeom et al., CSF 2018); balanced accuracy at
  the same best threshold: (TPR + 1 - FPR) / 2.
- Effective epsilon lower bound (Jagielski et al. NeurIPS 2020; Nasr et al. S&P 2021; TAPAS,
  Houssiau et al. 2022): eps_t = log max(TPR_t / FPR_t, (1 - FPR_t) / (1 - TPR_t)) with
  Clopper-Pearson bounds (TPR from below, FPR from above). The candidates are split in half
  (stratified, seeded): thresholds are chosen on the validation half, the bound is computed on
  the other half, so the search over thresholds does not inflate it. The confidence is 95%
  overall (Bonferroni over the two bounds and the two chosen thresholds).
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks import keys as K
from pgan_cli.errors import InputError
from pgan_cli.params import DEFAULT_BOOTSTRAP

N_BOOTSTRAP = DEFAULT_BOOTSTRAP
CONFIDENCE = 0.95
VALIDATION_FRACTION = 0.5


def check_scores(name: str, scores: np.ndarray, n: int | None = None) -> np.ndarray:
    """Refuse NaN/Inf scores (never compute an AUC on them) and wrong lengths."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or (n is not None and len(s) != n):
        raise InputError(f"attack {name} returned scores of shape {s.shape}, expected ({n},); this is a bug")
    bad = ~np.isfinite(s)
    if bad.any():
        raise InputError(f"attack {name} produced {int(bad.sum())} NaN or infinite scores out of {len(s)} "
                         f"(a density that underflowed or a degenerate input); no AUC is reported on them. "
                         f"Try a lower-dimensional space (`pgan embed`) or check the inputs")
    return s


def _check_truth(truth: np.ndarray) -> np.ndarray:
    t = np.asarray(truth).astype(np.int8)
    if t.ndim != 1 or not np.isin(t, (0, 1)).all():
        raise InputError("membership truth must be a 1-D array of 0/1")
    if t.sum() == 0 or t.sum() == len(t):
        raise InputError("membership evaluation needs both members and non-members among the candidates")
    return t


def _sorted_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return order, starts


def _weighted_auc(pos_w: np.ndarray, neg_w: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AUC for rows of weights over candidates already sorted by score (ties grouped by ``starts``)."""
    pos_g = np.add.reduceat(pos_w, starts, axis=-1)
    neg_g = np.add.reduceat(neg_w, starts, axis=-1)
    below = np.cumsum(neg_g, axis=-1) - neg_g
    num = (pos_g * (below + 0.5 * neg_g)).sum(axis=-1)
    return num / (pos_g.sum(axis=-1) * neg_g.sum(axis=-1))


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC = P(score of a member > score of a non-member) + 1/2 P(tie)."""
    s, t = np.asarray(scores, dtype=np.float64), _check_truth(truth)
    order, starts = _sorted_groups(s)
    ts = t[order].astype(np.float64)
    return float(_weighted_auc(ts, 1.0 - ts, starts))


def bootstrap_auc_ci(scores: np.ndarray, truth: np.ndarray, n_boot: int = N_BOOTSTRAP,
                     seed: int = 0, level: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, resampling members and non-members separately.

    Vectorised: each resample is a vector of multiplicities over the candidates sorted once.
    """
    s, t = np.asarray(scores, dtype=np.float64), _check_truth(truth)
    order, starts = _sorted_groups(s)
    ts = t[order]
    pos, neg = np.flatnonzero(ts == 1), np.flatnonzero(ts == 0)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, (32 << 20) // (8 * len(s))))
    for a in range(0, n_boot, chunk):
        b = min(n_boot, a + chunk)
        pw = np.zeros((b - a, len(s)))
        nw = np.zeros((b - a, len(s)))
        pw[:, pos] = rng.multinomial(len(pos), np.full(len(pos), 1.0 / len(pos)), size=b - a)
        nw[:, neg] = rng.multinomial(len(neg), np.full(len(neg), 1.0 / len(neg)), size=b - a)
        out[a:b] = _weighted_auc(pw, nw, starts)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(out, [tail, 1.0 - tail])
    return float(lo), float(hi)


def roc(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FPR, TPR and thresholds ("member if score >= t"), from the strictest threshold down.

    The first point is (0, 0) (threshold +inf); one point per distinct score.
    """
    s, t = np.asarray(scores, dtype=np.float64), _check_truth(truth)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(t_sorted)[last]
    fp = np.cumsum(1 - t_sorted)[last]
    n_pos, n_neg = t.sum(), len(t) - t.sum()
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    thr = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thr


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """The largest TPR among thresholds with FPR <= level (0 when none)."""
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def _clopper_pearson(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (1 - alpha) lower and upper Clopper-Pearson bounds of a binomial proportion."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=np.float64)
    lo = np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1e-12), n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1e-12)), 1.0)
    return lo, hi


def _eps_bound(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int, alpha: float) -> np.ndarray:
    """Lower confidence bound on eps_t for each threshold (>= 0)."""
    tpr_lo, _ = _clopper_pearson(tp, n_pos, alpha)
    _, fpr_hi = _clopper_pearson(fp, n_neg, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where((tpr_lo > 0) & (fpr_hi > 0), np.log(tpr_lo / fpr_hi), 0.0)
        e2 = np.where((1 - tpr_lo) > 0, np.log(np.maximum(1 - fpr_hi, 1e-300) / (1 - tpr_lo)), 0.0)
    return np.maximum(0.0, np.maximum(e1, e2))


def _counts_at(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.sort(scores[truth == 1])
    neg = np.sort(scores[truth == 0])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp, fp


def epsilon_lower_bound(scores: np.ndarray, truth: np.ndarray, seed: int = 0,
                        confidence: float = CONFIDENCE, validation_fraction: float = VALIDATION_FRACTION,
                        max_thresholds: int = 512) -> dict:
    """Effective-epsilon lower bound: thresholds chosen on a validation split, bounded on the rest.

    Returns ``{"epsilon": float, "threshold": t, "tpr", "fpr", "n_validation", "n_test"}``.
    """
    s, t = np.asarray(scores, dtype=np.float64), _check_truth(truth)
    rng = np.random.default_rng(seed + 7919)
    val = np.zeros(len(s), dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(t == cls)
        pick = rng.permutation(idx)[: int(round(len(idx) * validation_fraction))]
        val[pick] = True
    test = ~val
    if t[val].sum() in (0, val.sum()) or t[test].sum() in (0, test.sum()):
        return {"epsilon": 0.0, "threshold": None, "note": "too few candidates to split"}
    alpha = (1.0 - confidence) / 4  # two bounds x two thresholds (Bonferroni)
    sv, tv = s[val], t[val]
    cand = np.unique(sv)
    if len(cand) > max_thresholds:
        cand = np.unique(np.quantile(sv, np.linspace(0, 1, max_thresholds)))
    tp, fp = _counts_at(sv, tv, cand)
    npv, nnv = int(tv.sum()), int(len(tv) - tv.sum())
    tpr_lo, _ = _clopper_pearson(tp, npv, alpha)
    _, fpr_hi = _clopper_pearson(fp, nnv, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where((tpr_lo > 0) & (fpr_hi > 0), np.log(tpr_lo / fpr_hi), -np.inf)
        e2 = np.where(tpr_lo < 1, np.log(np.maximum(1 - fpr_hi, 1e-300) / (1 - tpr_lo)), -np.inf)
    chosen = np.unique([cand[int(np.argmax(e1))], cand[int(np.argmax(e2))]])
    st, tt = s[test], t[test]
    tp_t, fp_t = _counts_at(st, tt, chosen)
    npt, nnt = int(tt.sum()), int(len(tt) - tt.sum())
    eps = _eps_bound(tp_t, fp_t, npt, nnt, alpha)
    best = int(np.argmax(eps))
    return {"epsilon": float(eps[best]), "threshold": float(chosen[best]),
            "tpr": float(tp_t[best] / npt), "fpr": float(fp_t[best] / nnt),
            "n_validation": int(val.sum()), "n_test": int(test.sum()), "confidence": confidence}


def evaluate_attack(scores: np.ndarray, truth: np.ndarray, seed: int = 0, n_boot: int = N_BOOTSTRAP,
                    name: str = "attack") -> dict:
    """Every figure of one attack (docs/attacks.md), keyed by :mod:`pgan_cli.attacks.keys`."""
    s = check_scores(name, scores, len(truth))
    t = _check_truth(truth)
    fpr, tpr, _ = roc(s, t)
    gap = tpr - fpr
    adv = float(max(0.0, gap.max()))
    eps = epsilon_lower_bound(s, t, seed=seed)
    return {
        K.KEY_AUC: auc(s, t),
        K.KEY_AUC_CI: list(bootstrap_auc_ci(s, t, n_boot=n_boot, seed=seed)) if n_boot else None,
        K.KEY_TPR_AT_FPR: {key: tpr_at_fpr(fpr, tpr, lvl) for key, lvl in zip(K.FPR_KEYS, K.FPR_LEVELS)},
        K.KEY_ADVANTAGE: adv,
        K.KEY_BALANCED_ACCURACY: 0.5 + adv / 2,
        K.KEY_EPSILON_LOWER_BOUND: eps["epsilon"],
        K.KEY_EPSILON_DETAILS: eps,
        K.KEY_N_MEMBERS: int(t.sum()),
        K.KEY_N_NON_MEMBERS: int(len(t) - t.sum()),
    }
