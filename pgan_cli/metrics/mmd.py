"""Maximum mean discrepancy (MMD²) and its permutation test, computed in blocks.

Definitions (Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A kernel two-sample test",
JMLR 13, 2012):

- unbiased U-statistic (their eq. 3), with X of size n and Y of size m::

      MMD²_u = 1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j)
               - 2/(nm) Σ_{i,j} k(x_i, y_j)

- linear-time estimator (their Lemma 14), m2 = floor(min(n, m) / 2) disjoint pairs::

      MMD²_l = 1/m2 Σ_i h(i),  h(i) = k(x_{2i-1}, x_{2i}) + k(y_{2i-1}, y_{2i})
                                     - k(x_{2i-1}, y_{2i}) - k(x_{2i}, y_{2i-1})

  with a one-sided Gaussian p-value from the sample variance of h (their Corollary 16).

Kernels: ``rbf`` exp(-||x-y||²/(2σ²)), ``laplace`` exp(-||x-y||/σ), and ``poly``
(x·y/d + 1)³, the kernel of KID (Bińkowski, Sutherland, Arbel & Gretton, ICLR 2018).
The bandwidth σ defaults to the median heuristic: the median Euclidean distance between
distinct points of the pooled sample, taken on a seeded subsample of at most 1,000 points per
side (``MEDIAN_SUBSAMPLE``) so it costs O(1) whatever N is. The poly kernel has no bandwidth
(its scale 1/d and offset 1 are KID's fixed choices); a bandwidth given with it is refused.

KID over subsets (:func:`kid_over_subsets`), as torch-fidelity's ``kid_features_to_metric``: for
each of ``subsets`` rounds, ``subset_size`` rows of X and then of Y are drawn without
replacement by ``numpy.random.RandomState(seed mod 2³²).choice`` (so ``seed=2020``, its default
``rng_seed``, draws torch-fidelity's subsets); the unbiased MMD² of the two subsets
with the poly kernel (equal sizes m: 1/(m(m-1)) Σ_{i≠j} over XX and YY minus 2/m² Σ_{i,j} over
XY, torch-fidelity's ``mmd2(..., mmd_est="unbiased")``) is computed in float64; the result is
their mean and their standard deviation with ``numpy.std``'s default ddof = 0.

Permutation test (Schrab et al., "MMD aggregated two-sample test", JMLR 2023, appendix C):
the pooled kernel matrix K (N = n + m rows, diagonal zeroed) is computed exactly once, in
row blocks that are never all held at once; B permutations are encoded as a 0/1 indicator
matrix A (N x (B+1), column 0 the observed split), and all statistics follow from one GEMM
K @ A accumulated in float64 (float32 sums over 10k rows give p-values off by a large
fraction of a null standard deviation). With a = A[:, b], r = K 1 and T = 1ᵀ K 1:
S_XX = aᵀ K a, S_XY = aᵀ r - S_XX, S_YY = T - 2 aᵀ r + S_XX. The p-value is
(1 + #{b: MMD²_b >= MMD²_obs}) / (B + 1) (Phipson & Smyth 2010).

Memory: one row block of K (``block_bytes``, 256 MiB by default) plus A; N + M = 100k with
B = 1,000 needs about 1 GiB, never an (N+M)² matrix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from pgan_cli import params
from pgan_cli.arrays import check_rows, check_same_space
from pgan_cli.errors import InputError
from pgan_cli.params import MAX_PERMUTATIONS, Interval, OptionError, Optional_, Options, constrained

KERNELS = ("rbf", "laplace", "poly")
KID_KERNEL = "poly"
DEFAULT_KID_SUBSETS = 100      # torch-fidelity's kid_subsets
DEFAULT_KID_SUBSET_SIZE = 1000  # torch-fidelity's kid_subset_size (capped at the smaller set)
MAX_KID_SUBSETS = 100_000
ESTIMATORS = ("unbiased", "linear")
DEFAULT_KERNEL = "rbf"
DEFAULT_PERMUTATIONS = params.DEFAULT_PERMUTATIONS
DEFAULT_ESTIMATOR = "unbiased"
MEDIAN_SUBSAMPLE = 1000
BLOCK_BYTES = 256 << 20
PERM_BYTES = 512 << 20


@dataclass
class MMDResult:
    """One MMD test. ``bandwidth`` is None for the poly kernel; ``p_value`` None with 0 permutations."""

    mmd2: float
    p_value: float | None
    kernel: str
    bandwidth: float | None
    n_x: int
    n_y: int
    permutations: int
    estimator: str
    bandwidth_rule: str
    p_value_method: str

    def to_dict(self) -> dict:
        return asdict(self)


# ---- validation ------------------------------------------------------------------------------
def check_samples(x: np.ndarray, y: np.ndarray, min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate two samples: 2-D, same dimension, at least ``min_n`` rows each, finite."""
    x, y = check_rows(x, "X", min_rows=min_n), check_rows(y, "Y", min_rows=min_n)
    check_same_space(x, y, "X", "Y")
    return x, y


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise InputError(f"unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}")


# ---- bandwidth ------------------------------------------------------------------------------
def median_bandwidth(x: np.ndarray, y: np.ndarray, seed: int = 0,
                     max_per_side: int = MEDIAN_SUBSAMPLE) -> float:
    """Median heuristic: median distance between distinct pooled points (seeded subsample).

    At most ``max_per_side`` rows of each sample are drawn without replacement (seeded), then
    the median of the pairwise Euclidean distances i < j of the pooled subsample is returned.
    Raises :class:`InputError` when it is 0 (constant or mostly duplicated data).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for a in (x, y):
        idx = np.sort(rng.choice(len(a), size=min(len(a), max_per_side), replace=False))
        parts.append(np.asarray(a[idx], dtype=np.float64))
    z = np.concatenate(parts)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    iu = np.triu_indices(len(z), k=1)
    dist = np.sqrt(np.maximum(d2[iu], 0.0))
    sigma = float(np.median(dist))
    if not (sigma > 0 and math.isfinite(sigma)):
        raise InputError("the median pairwise distance of the pooled sample is 0 (constant or "
                         "duplicated data), so the median-heuristic bandwidth is undefined; "
                         "pass --bandwidth FLOAT")
    return sigma


MIN_BANDWIDTH = 1e-150


def resolve_bandwidth(x: np.ndarray, y: np.ndarray, kernel: str, bandwidth: float | str | None,
                      seed: int = 0) -> tuple[float | None, str]:
    """The bandwidth σ to use and how it was chosen (``median``, ``fixed`` or ``none``).

    ``None`` means the median heuristic for ``rbf`` and ``laplace``; the ``poly`` kernel has no
    bandwidth, so any other value with it is refused (it would otherwise be ignored).
    """
    if kernel == "poly":
        if bandwidth is not None:
            raise OptionError(f"the poly kernel (x·y/d + 1)³ of KID has no bandwidth, so $bandwidth "
                              f"{OptionError.literal(bandwidth)} would be ignored; leave $bandwidth out "
                              f"(or use $kernel rbf or laplace)", "bandwidth", "kernel")
        return None, "none"
    if bandwidth is None or (isinstance(bandwidth, str) and bandwidth.strip().lower() == "median"):
        return median_bandwidth(x, y, seed), "median"
    try:
        sigma = float(bandwidth)
    except (TypeError, ValueError):
        raise InputError(f"bandwidth {bandwidth!r} is neither 'median' nor a number") from None
    if not (sigma > 0 and math.isfinite(sigma)):
        raise InputError(f"bandwidth must be a positive finite number, got {bandwidth}")
    if sigma < MIN_BANDWIDTH:  # 1 / (2σ²) would overflow float64
        raise InputError(f"bandwidth {bandwidth} is too small (1/(2σ²) overflows); give at least {MIN_BANDWIDTH:g}")
    return sigma, "fixed"


# ---- kernels (torch, float64) ---------------------------------------------------------------
def kernel_block(a, b, kernel: str, sigma: float | None, dim: int, sq_a=None, sq_b=None):
    """k(a_i, b_j) for two torch float64 blocks (rows of a against rows of b)."""
    import torch

    if kernel == "poly":
        return (a @ b.T / dim + 1.0) ** 3
    if sq_a is None:
        sq_a = (a * a).sum(1)
    if sq_b is None:
        sq_b = (b * b).sum(1)
    d2 = a @ b.T  # in place from here: one block-sized buffer, no temporaries
    d2.mul_(-2.0).add_(sq_a[:, None]).add_(sq_b[None, :]).clamp_(min=0.0)
    if kernel == "rbf":
        return torch.exp_(d2.mul_(-1.0 / (2.0 * sigma * sigma)))
    return torch.exp_(d2.sqrt_().mul_(-1.0 / sigma))


def _indicator(n: int, m: int, permutations: int, seed: int) -> np.ndarray:
    """(N, B+1) bool matrix: column 0 the observed split (first n rows are X), then B permutations."""
    total = n + m
    ind = np.zeros((total, permutations + 1), dtype=bool)
    ind[:n, 0] = True
    rng = np.random.default_rng(seed)
    for b in range(1, permutations + 1):
        ind[rng.permutation(total)[:n], b] = True
    return ind


def _u_statistics(s_xx: np.ndarray, a_r: np.ndarray, total: float, n: int, m: int) -> np.ndarray:
    s_xy = a_r - s_xx
    s_yy = total - 2.0 * a_r + s_xx
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def unbiased_with_permutations(x: np.ndarray, y: np.ndarray, kernel: str, sigma: float | None,
                               permutations: int, seed: int = 0, device: str = "cpu",
                               block_bytes: int = BLOCK_BYTES,
                               progress: Callable[[int], None] | None = None) -> np.ndarray:
    """MMD²_u of the observed split and of ``permutations`` random splits (index 0 = observed).

    One pass over row blocks of the pooled kernel matrix; each block is computed once and
    multiplied by the indicator matrix in float64 (see the module docstring).
    ``progress(rows_done)`` is called after each block.
    """
    import torch

    n, m = len(x), len(y)
    total = n + m
    dim = x.shape[1]
    dev = torch.device(device)
    z = torch.from_numpy(np.concatenate([np.asarray(x, np.float64), np.asarray(y, np.float64)])).to(dev)
    sq = (z * z).sum(1)
    ind = _indicator(n, m, permutations, seed)
    n_cols = ind.shape[1]
    # the indicator in float64 on the device, in column chunks if it would be too large
    chunk = max(1, min(n_cols, PERM_BYTES // (8 * total)))
    chunks = [(c, min(n_cols, c + chunk)) for c in range(0, n_cols, chunk)]
    resident = len(chunks) == 1
    ind_t = torch.from_numpy(ind).to(dev)
    a_full = ind_t.to(torch.float64) if resident else None
    rows = max(16, min(total, block_bytes // (8 * total)))
    s_xx = torch.zeros(n_cols, dtype=torch.float64, device=dev)
    row_sums = torch.zeros(total, dtype=torch.float64, device=dev)
    for start in range(0, total, rows):
        stop = min(total, start + rows)
        kb = kernel_block(z[start:stop], z, kernel, sigma, dim, sq[start:stop], sq)
        idx = torch.arange(stop - start, device=dev)
        kb[idx, idx + start] = 0.0  # zero the diagonal: i ≠ j in the U-statistic
        row_sums[start:stop] = kb.sum(1)
        for c0, c1 in chunks:
            a = a_full if resident else ind_t[:, c0:c1].to(torch.float64)
            ka = kb @ a  # (rows, cols) = Σ_j K_ij A_jb, float64 accumulation
            s_xx[c0:c1] += (ka * a[start:stop]).sum(0)
        del kb
        if progress is not None:
            progress(stop - start)
    t = float(row_sums.sum())
    a_r = torch.cat([(a_full if resident else ind_t[:, c0:c1].to(torch.float64)).T @ row_sums
                     for c0, c1 in chunks])
    stats = _u_statistics(s_xx.cpu().numpy(), a_r.cpu().numpy(), t, n, m)
    return stats


def linear_time(x: np.ndarray, y: np.ndarray, kernel: str, sigma: float | None, seed: int = 0,
                device: str = "cpu", batch: int = 1 << 16) -> tuple[float, float]:
    """Linear-time MMD²_l and its one-sided Gaussian p-value (Gretton et al. 2012, Lemma 14).

    Both samples are shuffled (seeded) so the pairing does not follow file order; m2 pairs
    of each are used (the rest of the larger sample is left out).
    """
    import torch

    rng = np.random.default_rng(seed)
    m2 = min(len(x), len(y)) // 2
    if m2 < 2:
        raise InputError(f"the linear estimator needs at least 4 samples per side "
                         f"(got {len(x)} and {len(y)}); use --estimator unbiased")
    xi = rng.permutation(len(x))[:2 * m2]
    yi = rng.permutation(len(y))[:2 * m2]
    dim = x.shape[1]
    dev = torch.device(device)
    h_all = []
    for s in range(0, m2, batch):
        e = min(m2, s + batch)
        x1 = torch.from_numpy(np.asarray(x[xi[2 * s:2 * e:2]], np.float64)).to(dev)
        x2 = torch.from_numpy(np.asarray(x[xi[2 * s + 1:2 * e:2]], np.float64)).to(dev)
        y1 = torch.from_numpy(np.asarray(y[yi[2 * s:2 * e:2]], np.float64)).to(dev)
        y2 = torch.from_numpy(np.asarray(y[yi[2 * s + 1:2 * e:2]], np.float64)).to(dev)
        h = (_paired(x1, x2, kernel, sigma, dim) + _paired(y1, y2, kernel, sigma, dim)
             - _paired(x1, y2, kernel, sigma, dim) - _paired(x2, y1, kernel, sigma, dim))
        h_all.append(h.cpu().numpy())
    h = np.concatenate(h_all)
    stat = float(h.mean())
    sd = float(h.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if stat <= 0 else 1.0 / (m2 + 1)
    else:
        from scipy.stats import norm

        p = float(norm.sf(stat / (sd / math.sqrt(m2))))
    return stat, p


def _paired(a, b, kernel: str, sigma: float | None, dim: int):
    """k(a_i, b_i) row by row."""
    import torch

    if kernel == "poly":
        return ((a * b).sum(1) / dim + 1.0) ** 3
    d2 = ((a - b) ** 2).sum(1)
    if kernel == "rbf":
        return torch.exp(-d2 / (2.0 * sigma * sigma))
    return torch.exp(-torch.sqrt(d2) / sigma)


@constrained(kernel=Options(KERNELS), estimator=Options(ESTIMATORS),
             permutations=Interval(0, MAX_PERMUTATIONS))
def mmd_test(x: np.ndarray, y: np.ndarray, kernel: str = DEFAULT_KERNEL,
             bandwidth: float | str | None = None, permutations: int = DEFAULT_PERMUTATIONS,
             estimator: str = DEFAULT_ESTIMATOR, seed: int = 0, device: str = "cpu",
             block_bytes: int = BLOCK_BYTES,
             progress: Callable[[int], None] | None = None,
             log: Callable[[str], None] | None = None) -> MMDResult:
    """MMD² between samples ``x`` (n, d) and ``y`` (m, d) with a p-value.

    ``estimator="unbiased"``: the U-statistic and a permutation test with ``permutations``
    random splits (0 for no p-value). ``estimator="linear"``: the linear-time statistic with
    a Gaussian p-value (``permutations`` is ignored and reported as 0). ``bandwidth``: None or
    ``"median"`` for the median heuristic, or a number; None with the poly kernel (no bandwidth).
    """
    _check_kernel(kernel)
    if estimator not in ESTIMATORS:
        raise InputError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    x, y = check_samples(x, y, min_n=4 if estimator == "linear" else 2)
    sigma, rule = resolve_bandwidth(x, y, kernel, bandwidth, seed)
    if log is not None:
        bw = "" if sigma is None else f", σ = {sigma:.4g} ({rule})"
        log(f"MMD² ({kernel}{bw}, {estimator}) between {len(x)} and {len(y)} samples on {device}")
    if estimator == "linear":
        stat, p = linear_time(x, y, kernel, sigma, seed, device)
        return MMDResult(stat, p, kernel, sigma, len(x), len(y), 0, estimator, rule, "normal")
    stats = unbiased_with_permutations(x, y, kernel, sigma, permutations, seed, device, block_bytes,
                                       progress)
    if not np.isfinite(stats).all():
        raise InputError("the MMD statistic is not finite (kernel overflow); scale the data or "
                         "choose another kernel/bandwidth")
    obs = float(stats[0])
    p = None
    if permutations > 0:
        p = float((1 + np.count_nonzero(stats[1:] >= obs)) / (permutations + 1))
    return MMDResult(obs, p, kernel, sigma, len(x), len(y), permutations, estimator, rule,
                     "permutation" if permutations > 0 else "none")


def kid_subset_size_for(n_x: int, n_y: int, subset_size: int | None) -> int:
    """The subset size KID uses: ``subset_size``, or by default torch-fidelity's 1,000 capped at the
    smaller set; a size larger than a set is refused (as torch-fidelity does)."""
    if subset_size is None:
        return min(DEFAULT_KID_SUBSET_SIZE, n_x, n_y)
    if subset_size > min(n_x, n_y):
        raise OptionError(f"$kid_subset_size {int(subset_size)} is larger than a set (X has {n_x} rows, "
                          f"Y {n_y}); give at most {min(n_x, n_y)} or leave it out", "kid_subset_size")
    return int(subset_size)


@constrained(subsets=Interval(1, MAX_KID_SUBSETS), subset_size=Optional_(Interval(2, None)))
def kid_over_subsets(x: np.ndarray, y: np.ndarray, subsets: int = DEFAULT_KID_SUBSETS,
                     subset_size: int | None = None, seed: int = 0, device: str = "cpu") -> dict:
    """KID's mean and standard deviation over random subsets, as torch-fidelity computes them
    (module docstring): ``{"kid_mean", "kid_std", "kid_subsets", "kid_subset_size"}``.

    ``subset_size`` None: min(1000, |X|, |Y|). ``kid_std`` is the spread of the subset estimates
    (``numpy.std``, ddof = 0), not a standard error of ``kid_mean``.
    """
    import torch

    x, y = check_samples(x, y)
    m = kid_subset_size_for(len(x), len(y), subset_size)
    dim = x.shape[1]
    dev = torch.device(device)
    xt = torch.from_numpy(np.asarray(x, np.float64)).to(dev)
    yt = torch.from_numpy(np.asarray(y, np.float64)).to(dev)
    rng = np.random.RandomState(seed % 2 ** 32)  # torch-fidelity's generator and draws (its rng_seed: 2020)
    values = np.zeros(int(subsets))
    for i in range(int(subsets)):
        a = xt[torch.from_numpy(rng.choice(len(x), m, replace=False)).to(dev)]
        b = yt[torch.from_numpy(rng.choice(len(y), m, replace=False)).to(dev)]
        k_xx = kernel_block(a, a, KID_KERNEL, None, dim)
        k_yy = kernel_block(b, b, KID_KERNEL, None, dim)
        k_xy = kernel_block(a, b, KID_KERNEL, None, dim)
        off = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
        values[i] = float(off - 2.0 * k_xy.sum() / (m * m))
    if not np.isfinite(values).all():
        raise InputError("a KID subset statistic is not finite (kernel overflow); scale the data first")
    return {"kid_mean": float(np.mean(values)), "kid_std": float(np.std(values)), "kid_subsets": int(subsets),
            "kid_subset_size": m}


@constrained(kid_subsets=Optional_(Interval(1, MAX_KID_SUBSETS)), kid_subset_size=Optional_(Interval(2, None)))
def mmd_files(x_path, y_path, *, kernel: str = DEFAULT_KERNEL, bandwidth: str | float | None = None,
              permutations: int = DEFAULT_PERMUTATIONS, estimator: str = DEFAULT_ESTIMATOR, seed: int = 0,
              device: str = "cpu", kid_subsets: int | None = None, kid_subset_size: int | None = None) -> dict:
    """``pgan mmd``: the test between two files of vectors, as the stamped JSON the command prints.

    With the poly kernel the result also holds KID over subsets (:func:`kid_over_subsets`:
    ``kid_mean``, ``kid_std``, ``kid_subsets``, ``kid_subset_size``); ``kid_subsets`` (default
    100) and ``kid_subset_size`` are refused with another kernel.
    """
    from pgan_cli import console, formats
    from pgan_cli.samples import load_vectors
    from pgan_cli.provenance import make_provenance

    kid = kernel == KID_KERNEL
    for name, value in (("kid_subsets", kid_subsets), ("kid_subset_size", kid_subset_size)):
        if value is not None and not kid:
            raise OptionError(f"${name} is for KID, the poly kernel; add $kernel poly or leave ${name} out",
                              name, "kernel")
    x = load_vectors(x_path, "X")
    y = load_vectors(y_path, "Y")
    if kid:  # before any work: a subset size larger than a set is an error
        kid_subset_size_for(len(x), len(y), kid_subset_size)
    with console.progress_task("kernel rows", len(x) + len(y)) as step:
        res = mmd_test(x, y, kernel=kernel, bandwidth=bandwidth, permutations=permutations, estimator=estimator,
                       seed=seed, device=device, progress=step, log=console.log)
    result = res.to_dict()
    params = {"bandwidth": bandwidth if bandwidth is not None or kid else "median"}
    if kid:
        subsets = DEFAULT_KID_SUBSETS if kid_subsets is None else kid_subsets
        console.log(f"KID over {subsets} subsets ...")
        result.update(kid_over_subsets(x, y, subsets=subsets, subset_size=kid_subset_size, seed=seed, device=device))
        params.update(kid_subsets=subsets, kid_subset_size=result["kid_subset_size"])
    result["provenance"] = make_provenance([x_path, y_path], seed=seed, device=device, kernel=kernel,
                                           permutations=permutations, estimator=estimator, **params)
    return formats.stamped(formats.MMD, result)
