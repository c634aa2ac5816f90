"""Local differential privacy of records: each record is randomised on its own before release
(the DP-MNIST seed's approach), so the output file is epsilon-DP with respect to any one record
whatever is done with it later (post-processing).

Mechanisms (``x`` is one record flattened to ``d`` values; images in [-1, 1]):

- ``randomized-response`` (Warner 1965; Erlingsson et al. 2014 for bits): binarise each pixel at
  ``threshold`` (1 if x > T); report a 1 with probability ``p`` when the bit is 1 and with
  probability ``q`` when it is 0. One bit's neighbouring inputs are its two values, and the two
  possible outputs have likelihood ratios ``p / q`` (report 1) and ``(1 - q) / (1 - p)`` (report
  0), so per bit ``eps_bit = max(ln(p / q), ln((1 - q) / (1 - p)))`` (Dwork & Roth 2014,
  Sec. 3.2); for the symmetric ``q = 1 - p`` this is ``ln(p / (1 - p))``, and p = .88, q = .12
  gives ln(.88 / .12) = 1.992. (``ln[p (1 - q) / (q (1 - p))]`` is the epsilon of unary encoding,
  Wang et al. 2017, whose neighbouring inputs differ in two bits; it is twice the per-bit value
  here.) A record has ``d`` bits that may all change, so the record's guarantee is
  ``eps = d * eps_bit`` (sequential composition; tight for independent bits). ``--epsilon`` is that
  record-level budget; by default ``p = 1 - q = e^{eps_bit} / (1 + e^{eps_bit})`` with
  ``eps_bit = eps / d``, so each bit flips with probability ``1 / (1 + e^{eps / d})``.
  Output bits map to -1 (0) and +1 (1).
- ``gaussian`` (Dwork & Roth 2014, Thm A.1; Balle & Wang 2018): clip ``x`` to L2 norm ``C``
  (``x * min(1, C / ||x||_2)``); any clipped record may become any other, so the L2
  sensitivity is ``2C``; add ``N(0, sigma^2 I)``. ``sigma`` is calibrated by the analytic Gaussian
  mechanism (Balle & Wang 2018, Thm 8 / Alg. 1): the smallest sigma with
  ``Phi(D/(2s) - eps s/D) - e^eps Phi(-D/(2s) - eps s/D) <= delta``, exact for every eps > 0.
  The classic ``sigma = sqrt(2 ln(1.25/delta)) * 2C / eps`` is valid only for eps < 1 and is
  available as ``calibration="classic"`` (refused for eps >= 1).
- ``laplace`` (Dwork et al. 2006): clip ``x`` to L1 norm ``C``; L1 sensitivity ``2C``; add
  i.i.d. Laplace noise of scale ``2C / eps`` (pure eps-DP, delta = 0).
- labels by k-ary randomised response (Warner 1965; Kairouz et al. 2016): keep the label with
  probability ``e^eps / (e^eps + k - 1)``, otherwise report one of the other ``k - 1`` classes
  uniformly; the record's total budget is ``eps + labels_eps`` (basic composition).

Default clip for images: ``sqrt(d)`` (L2) or ``d`` (L1), the largest norm of any record in
[-1, 1]^d, so nothing is clipped and ``2C`` is exactly the diameter of the image box. Vectors
have no natural bound: ``clip`` must be given. Images are clipped back to [-1, 1] after the noise
(post-processing, no privacy cost); vectors are left unbounded.

Traps of the seed not repeated: ``q = 1e-17`` made ``p = 1 - q`` round to exactly 1.0 (an
infinite epsilon), and its images were L2-normalised twice; here p, q are validated in (0, 1)
and clipping happens once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgan_cli.errors import InputError, UsageError

MECHANISMS = ("randomized-response", "gaussian", "laplace")
CALIBRATIONS = ("analytic", "classic")
DEFAULT_DELTA = 1e-5
DEFAULT_THRESHOLD = 0.0
OUTPUT_MAPPING = {
    "randomized-response": "bits: 1 (pixel > threshold) -> +1, 0 -> -1",
    "gaussian": "clip to L2 norm C, add noise, clip pixels to [-1, 1] (images)",
    "laplace": "clip to L1 norm C, add noise, clip pixels to [-1, 1] (images)",
}


# ---- validation -----------------------------------------------------------------------------
def _check_epsilon(epsilon: float, name: str = "--epsilon") -> float:
    if epsilon is None or not (math.isfinite(epsilon) and epsilon > 0):
        raise UsageError(f"{name} must be a positive finite number, got {epsilon}")
    return float(epsilon)


def _check_delta(delta: float) -> float:
    if delta is None or not (math.isfinite(delta) and 0.0 < delta < 1.0):
        raise UsageError(f"--delta must lie strictly between 0 and 1 (e.g. 1e-5), got {delta}")
    return float(delta)


def _check_prob(value: float, name: str) -> float:
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise UsageError(f"{name} must lie strictly between 0 and 1, got {value} "
                         f"(0 or 1 would make epsilon infinite)")
    return float(value)


# ---- randomised response ------------------------------------------------------------------------
def rr_epsilon(p: float, q: float) -> float:
    """Per-bit epsilon of randomised response that reports 1 w.p. p (bit 1) or q (bit 0).

    The bit's neighbouring inputs are 0 and 1; the output 1 has likelihood ratio p / q and the
    output 0 has (1 - q) / (1 - p), so ``eps = max(ln(p / q), ln((1 - q) / (1 - p)))`` (Warner
    1965; Dwork & Roth 2014, Sec. 3.2), ``ln(p / (1 - p))`` when q = 1 - p. Needs 0 < q < p < 1.
    """
    p, q = _check_prob(p, "p"), _check_prob(q, "q")
    if not q < p:
        raise UsageError(f"randomised response needs q < p (a 1 must be more likely kept than made), got p={p}, q={q}")
    return max(math.log(p) - math.log(q), math.log1p(-q) - math.log1p(-p))


def rr_probabilities(epsilon_bit: float) -> tuple[float, float]:
    """The symmetric (p, q = 1 - p) reaching ``epsilon_bit`` per bit: ``p = e^e / (1 + e^e)``, so
    that ``ln(p / (1 - p)) = epsilon_bit`` (the inverse of :func:`rr_epsilon` for q = 1 - p)."""
    _check_epsilon(epsilon_bit)
    p = 1.0 / (1.0 + math.exp(-epsilon_bit))
    if not p < 1.0:
        raise UsageError(f"epsilon {epsilon_bit:.4g} per pixel is too large for randomised response: the flip "
                         f"probability 1 / (1 + e^{epsilon_bit:.4g}) rounds to 0 (no randomisation at all); "
                         f"give a smaller --epsilon")
    q = math.exp(-epsilon_bit) * p  # = 1 / (1 + e^e), without overflow
    return p, q


def randomized_response(bits: np.ndarray, p: float, q: float, rng: np.random.Generator) -> np.ndarray:
    """Report each bit as 1 with probability ``p`` if it is 1 and ``q`` if it is 0."""
    u = rng.random(bits.shape)
    return np.where(bits.astype(bool), u < p, u < q)


# ---- Gaussian mechanism ---------------------------------------------------------------------------
def gaussian_sigma_classic(epsilon: float, delta: float, sensitivity: float) -> float:
    """``sqrt(2 ln(1.25/delta)) * sensitivity / epsilon`` (Dwork & Roth 2014, Thm A.1); eps < 1 only."""
    _check_epsilon(epsilon), _check_delta(delta)
    if epsilon >= 1.0:
        raise UsageError(f"the classic Gaussian calibration is proven only for epsilon < 1, got {epsilon}; "
                         f"use --calibration analytic (Balle & Wang 2018)")
    return math.sqrt(2.0 * math.log(1.25 / delta)) * sensitivity / epsilon


def gaussian_delta(epsilon: float, sigma: float, sensitivity: float) -> float:
    """The smallest delta at which N(0, sigma^2) noise is (eps, delta)-DP for L2 sensitivity Delta.

    Balle & Wang 2018, Theorem 8: ``Phi(D/(2s) - eps s/D) - e^eps Phi(-D/(2s) - eps s/D)``.
    """
    from scipy.special import log_ndtr, ndtr

    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    return float(ndtr(a - b) - math.exp(epsilon + float(log_ndtr(-a - b))))


CLIP_RANGE = (1e-12, 1e12)  # --clip: beyond it the noise scale leaves float64's comfortable range


def gaussian_sigma_analytic(epsilon: float, delta: float, sensitivity: float) -> float:
    """The smallest sigma with :func:`gaussian_delta` <= delta (Balle & Wang 2018, Algorithm 1),
    found by root finding on log(sigma) (delta decreases monotonically in sigma)."""
    from scipy.optimize import brentq

    _check_epsilon(epsilon), _check_delta(delta)
    if not sensitivity > 0:
        raise UsageError(f"the sensitivity must be positive, got {sensitivity}")
    # delta depends on sigma / sensitivity only: find the root for sensitivity 1 (no overflow or
    # subnormals whatever the sensitivity), then scale
    f = lambda log_s: gaussian_delta(epsilon, math.exp(log_s), 1.0) - delta  # noqa: E731
    lo = hi = 0.0
    while f(lo) <= 0:
        lo -= 1.0
    while f(hi) > 0:
        hi += 1.0
    s = sensitivity * math.exp(brentq(f, lo, hi, xtol=1e-13, rtol=1e-13, maxiter=500))
    for _ in range(10_000):  # land on the safe side of the root, one float at a time
        if gaussian_delta(epsilon, s, sensitivity) <= delta:
            return s
        s = math.nextafter(s, math.inf)
    raise UsageError(f"cannot calibrate the Gaussian noise for sensitivity {sensitivity:g}; use a --clip "
                     f"nearer the data's scale")


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float, calibration: str = "analytic") -> float:
    """Noise std of the Gaussian mechanism by ``calibration`` (analytic or classic)."""
    if calibration == "analytic":
        return gaussian_sigma_analytic(epsilon, delta, sensitivity)
    if calibration == "classic":
        return gaussian_sigma_classic(epsilon, delta, sensitivity)
    raise UsageError(f"unknown --calibration {calibration!r}; choose one of {', '.join(CALIBRATIONS)}")


# ---- Laplace mechanism, clipping, labels ----------------------------------------------------------
def laplace_scale(epsilon: float, sensitivity: float) -> float:
    """Laplace scale ``b = sensitivity / epsilon`` (Dwork et al. 2006)."""
    return sensitivity / _check_epsilon(epsilon)


def clip_rows(x: np.ndarray, clip: float, ord: int) -> np.ndarray:
    """Scale each row of ``x`` (N, d) to norm at most ``clip`` (L1 or L2), once."""
    norms = np.linalg.norm(x, ord=ord, axis=1, keepdims=True)
    factor = np.minimum(1.0, clip / np.maximum(norms, 1e-30))
    return x * factor


def krr_keep_probability(epsilon: float, k: int) -> float:
    """k-ary randomised response keeps the true label w.p. ``e^eps / (e^eps + k - 1)``."""
    _check_epsilon(epsilon, "--labels-epsilon")
    if k < 2:
        raise UsageError(f"k-ary randomised response needs at least 2 classes, got {k}")
    return 1.0 / (1.0 + (k - 1) * math.exp(-epsilon))


def k_randomized_response(labels: np.ndarray, k: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each label w.p. e^eps/(e^eps+k-1), else draw one of the other k-1 classes uniformly."""
    keep = krr_keep_probability(epsilon, k)
    labels = np.asarray(labels, dtype=np.int64)
    stay = rng.random(labels.shape) < keep
    other = (labels + rng.integers(1, k, size=labels.shape)) % k  # uniform over the k-1 others
    return np.where(stay, labels, other)


# ---- the whole file ------------------------------------------------------------------------------
@dataclass
class LdpResult:
    """Privatized samples and labels, and the ``ldp`` record describing the guarantee."""

    samples: np.ndarray
    labels: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)


def privatize(samples: np.ndarray, labels: np.ndarray | None = None, *, mechanism: str, kind: str = "images",
              epsilon: float | None = None, delta: float | None = None, clip: float | None = None,
              threshold: float = DEFAULT_THRESHOLD, p: float | None = None, q: float | None = None,
              calibration: str = "analytic", labels_epsilon: float | None = None,
              num_classes: int | None = None, keep_raw_labels: bool = False,
              seed: int | None = None) -> LdpResult:
    """Randomise every record (and optionally its label) with a local DP mechanism.

    ``epsilon`` is the budget of one record's values; labels add ``labels_epsilon``. Labels are
    dropped unless ``labels_epsilon`` is given (k-ary randomised response) or ``keep_raw_labels``
    (copied unprotected, stated in the record). ``seed=None`` draws fresh OS entropy.
    """
    if mechanism not in MECHANISMS:
        raise UsageError(f"unknown --mechanism {mechanism!r}; choose one of {', '.join(MECHANISMS)}")
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    d = flat.shape[1]
    is_images = kind == "images"
    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {"mechanism": mechanism, "dim": int(d), "records": int(n),
                            "mapping": OUTPUT_MAPPING[mechanism]}
    if mechanism != "gaussian" and delta is not None:
        raise UsageError(f"--delta applies to the gaussian mechanism; {mechanism} is pure epsilon-DP (delta = 0)")
    if mechanism != "randomized-response" and (p is not None or q is not None):
        raise UsageError("--rr-p/--rr-q apply to --mechanism randomized-response only")

    if mechanism == "randomized-response":
        if not is_images:
            raise UsageError("randomized-response binarises pixels and needs images in [-1, 1]; use "
                             "--mechanism gaussian or laplace with --clip for vectors")
        if clip is not None:
            raise UsageError("--clip applies to gaussian and laplace; randomized-response has no clipping")
        if not (math.isfinite(threshold) and -1.0 <= threshold < 1.0):
            raise UsageError(f"--threshold must lie in [-1, 1) for images in [-1, 1], got {threshold}")
        if (p is None) != (q is None):
            raise UsageError("give both --rr-p and --rr-q, or neither (then --epsilon sets them)")
        if p is not None:
            if epsilon is not None:
                raise UsageError("give --epsilon or --rr-p/--rr-q, not both (p and q determine epsilon)")
            eps_bit = rr_epsilon(p, q)
            epsilon = eps_bit * d
        else:
            epsilon = _check_epsilon(epsilon)
            p, q = rr_probabilities(epsilon / d)
            # the epsilon of the floating-point p, q actually used: if rounding (large per-pixel
            # epsilon, p near 1) made it exceed the request, state what is really spent
            eps_bit = rr_epsilon(p, q)
            if eps_bit * d > epsilon * (1 + 1e-9):
                epsilon = eps_bit * d
        bits = flat > threshold
        out = np.where(randomized_response(bits, p, q, rng), 1.0, -1.0)
        info.update(epsilon=float(epsilon), epsilon_per_pixel=float(eps_bit), p=float(p), q=float(q),
                    threshold=float(threshold), delta=0.0, clip=None, sensitivity=None)
    else:
        epsilon = _check_epsilon(epsilon)
        ord_ = 2 if mechanism == "gaussian" else 1
        if clip is None:
            if not is_images:
                raise UsageError(f"vectors have no natural bound: give --clip C (the L{ord_} norm each "
                                 f"record is clipped to; sensitivity is 2C)")
            clip = math.sqrt(d) if ord_ == 2 else float(d)
        if not (math.isfinite(clip) and CLIP_RANGE[0] <= clip <= CLIP_RANGE[1]):
            raise UsageError(f"--clip must be a number from {CLIP_RANGE[0]:g} to {CLIP_RANGE[1]:g}, got {clip}")
        clipped = clip_rows(flat, clip, ord_)
        sens = 2.0 * clip
        info.update(epsilon=float(epsilon), clip=float(clip), norm=f"L{ord_}", sensitivity=sens,
                    clipped_fraction=float(np.mean(np.linalg.norm(flat, ord=ord_, axis=1) > clip * (1 + 1e-9))))
        if mechanism == "gaussian":
            delta = _check_delta(DEFAULT_DELTA if delta is None else delta)
            sigma = gaussian_sigma(epsilon, delta, sens, calibration)
            out = clipped + rng.normal(0.0, sigma, size=clipped.shape)
            info.update(delta=delta, sigma=sigma, calibration=calibration)
        else:
            scale = laplace_scale(epsilon, sens)
            out = clipped + rng.laplace(0.0, scale, size=clipped.shape)
            info.update(delta=0.0, scale=scale)
        if is_images:
            np.clip(out, -1.0, 1.0, out=out)

    new_labels = None
    if labels_epsilon is not None and keep_raw_labels:
        raise UsageError("give --labels-epsilon or --keep-raw-labels, not both")
    if labels is not None and labels_epsilon is not None:
        k = int(num_classes if num_classes is not None else int(np.max(labels)) + 1)
        new_labels = k_randomized_response(labels, k, labels_epsilon, rng)
        info.update(labels="k-ary randomized response", labels_epsilon=float(labels_epsilon),
                    labels_keep_probability=krr_keep_probability(labels_epsilon, k), num_classes=k)
    elif labels is not None and keep_raw_labels:
        new_labels = np.asarray(labels, dtype=np.int64)
        info.update(labels="raw (NOT private)", labels_epsilon=None)
    elif labels_epsilon is not None:
        raise InputError("--labels-epsilon was given but the input has no labels")
    else:
        info.update(labels="dropped" if labels is not None else "none", labels_epsilon=None)
    le = info.get("labels_epsilon")
    info["epsilon_total"] = float(epsilon) + (float(le) if le is not None else 0.0)
    if new_labels is not None and keep_raw_labels:
        info["epsilon_total"] = None  # raw labels: no finite guarantee for the record
    return LdpResult(out.reshape(x.shape).astype(np.float32), new_labels, info)


SEED_WITHHELD = "<withheld>"


def redact_seed(cmd: str) -> str:
    """The command line with the value of --seed replaced: whoever knows the seed can regenerate
    the noise and subtract it, so it must never be stored next to the noisy data."""
    import shlex

    args, out = shlex.split(cmd), []
    skip = False
    for a in args:
        if skip:
            out.append(SEED_WITHHELD)
            skip = False
        elif a == "--seed":
            out.append(a)
            skip = True
        elif a.startswith("--seed="):
            out.append(f"--seed={SEED_WITHHELD}")
        else:
            out.append(a)
    return shlex.join(out)


def privatize_file(source, output, *, mechanism: str = "gaussian", epsilon: float | None = None,
                   delta: float | None = None, clip: float | None = None, threshold: float = 0.0,
                   p: float | None = None, q: float | None = None, calibration: str = "analytic",
                   labels_epsilon: float | None = None, keep_raw_labels: bool = False,
                   seed: int | None = None) -> dict[str, Any]:
    """``pgan privatize``: a locally private copy of a dataset file; returns ``{"output", **guarantee}``.

    The seed is never stored (whoever knows it can regenerate the noise and subtract it): the
    recorded command line and provenance say ``<withheld>``.
    """
    from pgan_cli import console
    from pgan_cli.dataset import MANAGED_ATTRS, read_dataset, write_dataset
    from pgan_cli.provenance import make_provenance, shown_path

    data = read_dataset(source)
    result = privatize(data.samples, data.labels, mechanism=mechanism, kind=data.kind, epsilon=epsilon,
                       delta=delta, clip=clip, threshold=threshold, p=p, q=q, calibration=calibration,
                       labels_epsilon=labels_epsilon, num_classes=data.num_classes,
                       keep_raw_labels=keep_raw_labels, seed=seed)
    info = result.info
    if seed is not None:
        console.warn("--seed makes the noise reproducible; it is not stored in the output, keep it secret")
    if data.labels is not None and result.labels is None:
        console.log("labels dropped (give --labels-epsilon to keep them privately)")
    elif info.get("labels") == "raw (NOT private)":
        console.warn("--keep-raw-labels: labels are copied unprotected; the output is not private as a whole")
    if info.get("delta") and info["delta"] >= 1.0 / data.n:
        console.warn(f"delta {info['delta']:g} is not below 1/N = {1.0 / data.n:.3g}")
    params = {k: v for k, v in info.items() if k not in ("mapping",)}
    prov = make_provenance([source], seed=None, **params)
    if "command" in prov:  # absent under --no-provenance
        prov["command"] = redact_seed(prov["command"])
    prov["seed"] = SEED_WITHHELD if seed is not None else None
    keep = {k: v for k, v in data.attrs.items() if k not in MANAGED_ATTRS}
    keep["ldp"] = info
    write_dataset(output, result.samples, labels=result.labels, kind=data.kind,
                  class_names=data.class_names if result.labels is not None else None, attrs=keep, provenance=prov)
    return {"output": shown_path(output), **info}
