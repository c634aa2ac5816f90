"""Local DP (`pgan privatize`, pgan_cli.privacy.ldp): mechanism statistics, epsilon formulas,
reproducibility, the file it writes, bad input, and the utility-vs-epsilon shape on digits."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from conftest import assert_clean_error
from scipy.stats import norm

from pgan_cli.privacy import ldp


# ---- formulas ---------------------------------------------------------------------------------
def _rr_eps(p, q):
    """Per-bit epsilon from the definition: the larger log-likelihood ratio of the two outputs."""
    return max(math.log(p / q), math.log((1 - q) / (1 - p)))


def test_rr_epsilon_seed_value():
    # the DP-MNIST seed's p = .88, q = .12: ln(.88/.12) = 1.992 per pixel, not the unary-encoding
    # ln[p(1-q)/(q(1-p))] = 3.985 (twice as large)
    assert ldp.rr_epsilon(0.88, 0.12) == pytest.approx(math.log(0.88 / 0.12), rel=1e-12)
    assert ldp.rr_epsilon(0.88, 0.12) == pytest.approx(1.992, abs=5e-4)
    assert ldp.rr_epsilon(0.75, 0.25) == pytest.approx(math.log(3))


def test_rr_epsilon_asymmetric_is_the_larger_ratio():
    # report 0 is the more revealing output: ln(.7/.1) = 1.946 > ln(.9/.3) = 1.099
    assert ldp.rr_epsilon(0.9, 0.3) == pytest.approx(math.log(7.0), rel=1e-12)
    # report 1 is the more revealing output: ln(.6/.05) = 2.485 > ln(.95/.4) = 0.865
    assert ldp.rr_epsilon(0.6, 0.05) == pytest.approx(math.log(12.0), rel=1e-12)
    for p, q in ((0.9, 0.3), (0.6, 0.05), (0.51, 0.5), (0.999, 1e-6)):
        assert ldp.rr_epsilon(p, q) == pytest.approx(_rr_eps(p, q), rel=1e-9)


def test_rr_epsilon_needs_q_below_p():
    for p, q in ((0.3, 0.5), (0.5, 0.5)):
        with pytest.raises(Exception, match="q < p"):
            ldp.rr_epsilon(p, q)


def test_rr_probabilities_invert_epsilon():
    for eps in (0.1, 1.0, 1.992, 3.985, 20.0):
        p, q = ldp.rr_probabilities(eps)
        assert 0 < q < p < 1 and p + q == pytest.approx(1.0)
        # 1 - p is known to float64's spacing near 1 (1e-16), about 1e-8 relative at eps = 20
        assert math.log(p / (1 - p)) == pytest.approx(eps, rel=1e-7)
        assert p == pytest.approx(math.exp(eps) / (1 + math.exp(eps)), rel=1e-12)
        assert ldp.rr_epsilon(p, q) == pytest.approx(eps, rel=1e-7)


def test_rr_probabilities_refuse_a_per_pixel_epsilon_without_noise():
    # p = e^e / (1 + e^e) rounds to 1.0 (no flip at all): a clear error, not an overflow or p = 1
    for eps in (40.0, 800.0):
        with pytest.raises(Exception, match="too large for randomised response"):
            ldp.rr_probabilities(eps)


@pytest.mark.parametrize("d,epsilon", [(64, 80.0), (64, 64 * 1.992), (784, 100.0), (3, 0.5)])
def test_rr_record_epsilon_round_trip(d, epsilon):
    x = np.where(np.random.default_rng(0).random((10, d)) < 0.5, 1.0, -1.0).astype(np.float32)
    info = ldp.privatize(x[:, None, None, :], mechanism="randomized-response", epsilon=epsilon, seed=0).info
    p, q = info["p"], info["q"]
    assert p + q == pytest.approx(1.0) and info["dim"] == d
    assert math.log(p / (1 - p)) * d == pytest.approx(epsilon, rel=1e-9)
    assert info["epsilon"] == pytest.approx(epsilon, rel=1e-9)
    assert info["epsilon_per_pixel"] == pytest.approx(epsilon / d, rel=1e-9)
    assert info["epsilon_total"] == pytest.approx(epsilon, rel=1e-9)


def test_rr_refuses_the_seed_bug():
    # the seed's q = 1e-17 made p = 1 - q round to exactly 1.0: infinite epsilon
    with pytest.raises(Exception, match="strictly between 0 and 1"):
        ldp.rr_epsilon(1 - 1e-17, 1e-17)


def test_analytic_gaussian_solves_balle_wang_equation():
    for eps, delta, sens in ((0.5, 1e-5, 1.0), (1.0, 1e-5, 1.0), (4.0, 1e-6, 2.0), (50.0, 1e-5, 16.0)):
        s = ldp.gaussian_sigma_analytic(eps, delta, sens)
        # independent evaluation of Theorem 8 with scipy.stats.norm
        got = norm.cdf(sens / (2 * s) - eps * s / sens) - math.exp(eps) * norm.cdf(-sens / (2 * s) - eps * s / sens)
        assert got <= delta * (1 + 1e-6) and got == pytest.approx(delta, rel=1e-5)
        # a slightly smaller sigma is not private enough
        s2 = s * 0.999
        assert norm.cdf(sens / (2 * s2) - eps * s2 / sens) - math.exp(eps) * norm.cdf(-sens / (2 * s2) - eps * s2 / sens) > delta
    # sigma scales linearly with the sensitivity; the published value at eps=1, delta=1e-5
    assert ldp.gaussian_sigma_analytic(1.0, 1e-5, 3.0) == pytest.approx(3 * ldp.gaussian_sigma_analytic(1.0, 1e-5, 1.0))
    assert ldp.gaussian_sigma_analytic(1.0, 1e-5, 1.0) == pytest.approx(3.7306, abs=1e-3)


def test_classic_gaussian_formula_and_its_condition():
    assert ldp.gaussian_sigma_classic(0.5, 1e-5, 2.0) == pytest.approx(math.sqrt(2 * math.log(1.25e5)) * 2.0 / 0.5)
    assert ldp.gaussian_sigma_analytic(0.5, 1e-5, 2.0) < ldp.gaussian_sigma_classic(0.5, 1e-5, 2.0)
    with pytest.raises(Exception, match="epsilon < 1"):
        ldp.gaussian_sigma_classic(2.0, 1e-5, 1.0)


def test_krr_keep_probability():
    assert ldp.krr_keep_probability(math.log(9), 10) == pytest.approx(0.5)
    assert ldp.krr_keep_probability(2.0, 2) == pytest.approx(math.exp(2) / (math.exp(2) + 1))
    for eps, k in ((0.5, 3), (2.0, 10), (5.0, 100)):
        assert ldp.krr_keep_probability(eps, k) == pytest.approx(math.exp(eps) / (math.exp(eps) + k - 1), rel=1e-12)


# ---- mechanism statistics -----------------------------------------------------------------------
def test_randomized_response_flip_rates(rng):
    bits = rng.random(400_000) < 0.5
    out = ldp.randomized_response(bits, 0.88, 0.12, np.random.default_rng(1))
    p_hat, q_hat = out[bits].mean(), out[~bits].mean()
    se = math.sqrt(0.88 * 0.12 / (bits.sum()))
    assert abs(p_hat - 0.88) < 5 * se and abs(q_hat - 0.12) < 5 * se


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_rr_empirical_flip_rate_matches_epsilon():
    # 20,000 records of 64 bits at 80 per record: each bit flips w.p. 1/(1 + e^{80/64}) = 0.223
    # (the unary-encoding accounting flipped 1/(1 + e^{0.625}) = 0.349)
    x = np.where(np.random.default_rng(3).random((20_000, 1, 8, 8)) < 0.4, 1.0, -1.0).astype(np.float32)
    r = ldp.privatize(x, mechanism="randomized-response", epsilon=80.0, seed=4)
    flip = float(np.mean((r.samples > 0) != (x > 0)))
    expect = 1.0 / (1.0 + math.exp(80.0 / 64))
    assert expect == pytest.approx(0.2227, abs=1e-4)
    assert abs(flip - expect) < 5 * _binomial_se(expect, x.size), (flip, expect)


def _empirical_rr_epsilon(bits: np.ndarray, reports: np.ndarray) -> tuple[float, float]:
    """(epsilon, standard error) from the observed P(1 | 1) and P(1 | 0) (delta method)."""
    n1, n0 = int(bits.sum()), int((~bits).sum())
    p_hat, q_hat = reports[bits].mean(), reports[~bits].mean()
    e1 = math.log(p_hat / q_hat)  # report 1
    e0 = math.log((1 - q_hat) / (1 - p_hat))  # report 0
    se1 = math.sqrt((1 - p_hat) / (p_hat * n1) + (1 - q_hat) / (q_hat * n0))
    se0 = math.sqrt(p_hat / ((1 - p_hat) * n1) + q_hat / ((1 - q_hat) * n0))
    return (e1, se1) if e1 >= e0 else (e0, se0)


@pytest.mark.parametrize("kwargs,per_pixel", [
    ({"epsilon": 96.0}, 1.5),
    ({"p": 0.88, "q": 0.12}, math.log(0.88 / 0.12)),
    ({"p": 0.9, "q": 0.3}, math.log(7.0)),
])
def test_rr_empirical_likelihood_ratio_gives_the_stated_epsilon(kwargs, per_pixel):
    x = np.where(np.random.default_rng(5).random((20_000, 1, 8, 8)) < 0.5, 0.5, -0.5).astype(np.float32)
    r = ldp.privatize(x, mechanism="randomized-response", seed=6, **kwargs)
    assert r.info["epsilon_per_pixel"] == pytest.approx(per_pixel, rel=1e-9)
    assert r.info["epsilon"] == pytest.approx(64 * per_pixel, rel=1e-9)
    bits, reports = (x > 0).ravel(), (r.samples > 0).ravel()
    eps_hat, se = _empirical_rr_epsilon(bits, reports)
    assert se < 0.01
    # the mechanism spends what is stated: neither more (privacy) nor much less (wasted noise)
    assert eps_hat <= r.info["epsilon_per_pixel"] + 4 * se, (eps_hat, se, r.info)
    assert abs(eps_hat - r.info["epsilon_per_pixel"]) < 4 * se, (eps_hat, se, r.info)


def test_privatize_rr_on_images_uses_threshold_and_maps_to_pm1():
    x = np.where(np.random.default_rng(0).random((3000, 1, 8, 8)) < 0.3, 0.8, -0.6).astype(np.float32)
    r = ldp.privatize(x, mechanism="randomized-response", epsilon=64 * 2.0, seed=11)
    assert set(np.unique(r.samples)) <= {-1.0, 1.0}
    p, q = r.info["p"], r.info["q"]
    assert r.info["epsilon_per_pixel"] == pytest.approx(2.0) and ldp.rr_epsilon(p, q) == pytest.approx(2.0)
    on = x > 0
    assert (r.samples[on] > 0).mean() == pytest.approx(p, abs=0.01)
    assert (r.samples[~on] > 0).mean() == pytest.approx(q, abs=0.01)


def test_gaussian_noise_std_matches_sigma_and_clipping():
    x = np.zeros((2000, 50), dtype=np.float32)
    x[:, 0] = 10.0  # every row has norm 10 > clip
    r = ldp.privatize(x, mechanism="gaussian", kind="vectors", epsilon=2.0, delta=1e-5, clip=1.0, seed=0)
    sigma = r.info["sigma"]
    assert r.info["sensitivity"] == 2.0 and r.info["clipped_fraction"] == 1.0
    assert sigma == pytest.approx(ldp.gaussian_sigma_analytic(2.0, 1e-5, 2.0))
    noise = r.samples - np.eye(50, dtype=np.float32)[0]  # the clipped record is (1, 0, ..., 0)
    assert noise.std() == pytest.approx(sigma, rel=0.02)
    assert abs(noise.mean()) < 0.02 * sigma


def test_laplace_scale():
    x = np.zeros((4000, 20), dtype=np.float32)
    r = ldp.privatize(x, mechanism="laplace", kind="vectors", epsilon=4.0, clip=0.5, seed=1)
    assert r.info["scale"] == pytest.approx(2 * 0.5 / 4.0) and r.info["delta"] == 0.0
    assert np.abs(r.samples).mean() == pytest.approx(0.25, rel=0.02)  # E|Laplace(b)| = b


def test_clip_rows_l1_l2():
    x = np.random.default_rng(0).normal(size=(100, 7)) * 5
    for ord_ in (1, 2):
        c = ldp.clip_rows(x, 1.5, ord_)
        assert np.all(np.linalg.norm(c, ord=ord_, axis=1) <= 1.5 + 1e-9)
        small = np.linalg.norm(x, ord=ord_, axis=1) <= 1.5
        assert np.allclose(c[small], x[small])


def test_k_randomized_response_rates(rng):
    labels = rng.integers(0, 5, size=200_000)
    out = ldp.k_randomized_response(labels, 5, 1.0, np.random.default_rng(2))
    keep = ldp.krr_keep_probability(1.0, 5)
    assert (out == labels).mean() == pytest.approx(keep, abs=0.005)
    moved = out[(out != labels) & (labels == 0)]
    counts = np.bincount(moved, minlength=5)
    assert counts[0] == 0 and np.allclose(counts[1:] / counts[1:].sum(), 0.25, atol=0.01)


@pytest.mark.parametrize("k,eps", [(10, 2.0), (3, 0.5)])
def test_k_randomized_response_empirical_keep_rate(k, eps):
    # Kairouz et al. 2016: keep w.p. e^eps/(e^eps + k - 1), each other label w.p. 1/(e^eps + k - 1)
    n = 300_000
    labels = np.random.default_rng(7).integers(0, k, size=n)
    out = ldp.privatize(np.zeros((n, 1, 1, 1), np.float32), labels, mechanism="laplace", epsilon=1.0,
                        labels_epsilon=eps, num_classes=k, seed=8).labels
    keep, other = math.exp(eps) / (math.exp(eps) + k - 1), 1.0 / (math.exp(eps) + k - 1)
    assert abs((out == labels).mean() - keep) < 5 * _binomial_se(keep, n)
    zero = labels == 0
    rates = np.bincount(out[zero], minlength=k) / zero.sum()
    assert abs(rates[0] - keep) < 5 * _binomial_se(keep, int(zero.sum()))
    assert np.all(np.abs(rates[1:] - other) < 5 * _binomial_se(other, int(zero.sum())))
    # the likelihood ratio P(out = 0 | 0) / P(out = 0 | 1) is e^eps
    one = labels == 1
    eps_hat = math.log(rates[0] / np.mean(out[one] == 0))
    assert eps_hat == pytest.approx(eps, abs=0.08)


def test_reproducible_with_seed_and_fresh_without():
    x = np.random.default_rng(0).uniform(-1, 1, size=(50, 1, 8, 8)).astype(np.float32)
    a = ldp.privatize(x, mechanism="gaussian", epsilon=5.0, seed=7).samples
    b = ldp.privatize(x, mechanism="gaussian", epsilon=5.0, seed=7).samples
    c = ldp.privatize(x, mechanism="gaussian", epsilon=5.0, seed=8).samples
    d = ldp.privatize(x, mechanism="gaussian", epsilon=5.0).samples
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.min() >= -1 and a.max() <= 1


# ---- the command --------------------------------------------------------------------------------
def test_cli_gaussian_writes_ldp_attribute(cli, digits8, tmp_path):
    out = tmp_path / "p.h5"
    r = cli("privatize", digits8, "--mechanism", "gaussian", "--epsilon", "20", "--labels-epsilon", "3",
            "--seed", "5", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = json.loads(r.stdout)
    with h5py.File(out) as f:
        x, y = f["samples"][:], f["labels"][:]
        info = json.loads(f.attrs["ldp"])
        prov = json.loads(f.attrs["provenance"])
    assert x.shape == (1797, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    for key in ("mechanism", "epsilon", "delta", "clip", "sensitivity", "labels_epsilon"):
        assert key in info
    assert info["mechanism"] == "gaussian" and info["epsilon"] == 20 and info["delta"] == 1e-5
    assert info["clip"] == pytest.approx(8.0) and info["sensitivity"] == pytest.approx(16.0)
    assert info["labels_epsilon"] == 3 and info["epsilon_total"] == 23
    assert res["sigma"] == pytest.approx(ldp.gaussian_sigma_analytic(20, 1e-5, 16.0))
    with h5py.File(digits8) as f:
        raw_y, raw_x = f["labels"][:], f["samples"][:]
    keep = ldp.krr_keep_probability(3.0, 10)
    assert (y == raw_y).mean() == pytest.approx(keep, abs=0.06)
    assert not np.allclose(x, raw_x)
    # the seed must not be stored: whoever knows it regenerates the noise
    assert prov["seed"] == "<withheld>" and "--seed 5" not in prov["command"]
    assert prov["inputs"][0]["path"] == str(digits8)


def test_cli_rr_with_p_q_and_dropped_labels(cli, digits8, tmp_path):
    out = tmp_path / "rr.h5"
    r = cli("privatize", digits8, "-m", "randomized-response", "--rr-p", "0.88", "--rr-q", "0.12", "-o", out, "--json")
    assert r.exit_code == 0, r
    info = json.loads(r.stdout)
    assert info["p"] == 0.88 and info["q"] == 0.12
    assert info["epsilon_per_pixel"] == pytest.approx(math.log(0.88 / 0.12), rel=1e-9)  # 1.992
    assert info["epsilon"] == pytest.approx(64 * 1.99243, rel=1e-4)  # 127.5 per image
    with h5py.File(out) as f:
        assert "labels" not in f and set(np.unique(f["samples"][:])) <= {-1.0, 1.0}
    assert "labels dropped" in r.stderr


def test_cli_rr_flip_rate_on_digits(cli, digits8, tmp_path):
    # --epsilon 80 on 8x8 digits: 1.25 per pixel, flip rate 1/(1 + e^1.25) = 0.223 (not 0.35)
    out = tmp_path / "rr80.h5"
    r = cli("privatize", digits8, "-m", "randomized-response", "--epsilon", "80", "--seed", "3", "-o", out, "--json")
    assert r.exit_code == 0, r
    info = json.loads(r.stdout)
    with h5py.File(out) as f:
        x = f["samples"][:]
        stored = json.loads(f.attrs["ldp"])
    with h5py.File(digits8) as f:
        raw = f["samples"][:]
    expect = 1.0 / (1.0 + math.exp(1.25))
    for rec in (info, stored):
        assert rec["epsilon"] == pytest.approx(80.0) and rec["epsilon_per_pixel"] == pytest.approx(1.25)
        assert rec["p"] == pytest.approx(1 - expect) and rec["q"] == pytest.approx(expect)
    flip = float(np.mean((x > 0) != (raw > 0)))
    assert abs(flip - expect) < 5 * math.sqrt(expect * (1 - expect) / raw.size), flip


def test_cli_same_seed_same_file_contents(cli, digits8, tmp_path):
    outs = []
    for name in ("a.h5", "b.h5"):
        r = cli("privatize", digits8, "-m", "laplace", "--epsilon", "100", "--seed", "1", "-o", tmp_path / name, "-q")
        assert r.exit_code == 0, r
        with h5py.File(tmp_path / name) as f:
            outs.append(f["samples"][:])
    assert np.array_equal(*outs)


@pytest.mark.parametrize("args,needle", [
    (["--epsilon", "-1"], "--epsilon must be a positive"),
    (["--epsilon", "0"], "--epsilon must be a positive"),
    (["--epsilon", "1", "--delta", "1.5"], "--delta must lie strictly between 0 and 1"),
    (["--epsilon", "1", "--delta", "0"], "--delta must lie strictly between 0 and 1"),
    (["-m", "laplace", "--epsilon", "1", "--delta", "1e-5"], "pure epsilon-DP"),
    (["-m", "fourier", "--epsilon", "1"], "unknown --mechanism"),
    (["--epsilon", "2", "--calibration", "classic"], "epsilon < 1"),
    (["-m", "randomized-response", "--rr-p", "1.0", "--rr-q", "1e-17"], "strictly between 0 and 1"),
    (["-m", "randomized-response", "--epsilon", "5", "--rr-p", "0.8", "--rr-q", "0.2"], "not both"),
    (["-m", "randomized-response", "--rr-p", "0.3", "--rr-q", "0.5"], "q < p"),
    (["-m", "randomized-response", "--rr-p", "0.8"], "give both --rr-p and --rr-q"),
    (["-m", "randomized-response", "--epsilon", "1e6"], "too large for randomised response"),
    (["--epsilon", "1", "--clip", "-3"], "--clip must be a number from 1e-12 to 1e+12"),
    (["--epsilon", "5", "--clip", "1e-320"], "--clip must be a number from"),  # a subnormal hung the calibration
    (["--epsilon", "5", "--clip", "1e308"], "--clip must be a number from"),
    (["--epsilon", "1", "--labels-epsilon", "-2"], "--labels-epsilon must be a positive"),
    (["--epsilon", "nan"], "--epsilon must be a positive"),
])
def test_cli_bad_values(cli, digits8, tmp_path, args, needle):
    out = tmp_path / "bad.h5"
    r = cli("privatize", digits8, *args, "-o", out)
    assert_clean_error(r, needle)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_vectors_need_clip_and_no_rr(cli, ring8, tmp_path):
    r = cli("privatize", ring8, "--epsilon", "1", "-o", tmp_path / "v.h5")
    assert_clean_error(r, "--clip")
    r = cli("privatize", ring8, "-m", "randomized-response", "--epsilon", "1", "-o", tmp_path / "v.h5")
    assert_clean_error(r, "needs images")
    r = cli("privatize", ring8, "--epsilon", "1", "--clip", "3", "-o", tmp_path / "v.h5", "-q")
    assert r.exit_code == 0, r
    with h5py.File(tmp_path / "v.h5") as f:
        assert f["samples"].shape == (2000, 2) and f.attrs["kind"] == "vectors"


def test_cli_missing_and_corrupt_input(cli, tmp_path):
    assert_clean_error(cli("privatize", tmp_path / "nope.h5", "--epsilon", "1", "-o", tmp_path / "o.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    assert_clean_error(cli("privatize", bad, "--epsilon", "1", "-o", tmp_path / "o.h5"))
    assert not (tmp_path / "o.h5").exists()


# ---- utility rises with epsilon (fast version of bench/dp.py) -------------------------------------
def test_ldp_utility_rises_with_epsilon():
    from pgan_cli.report.curve import digits_ldp_utility

    rows = digits_ldp_utility("gaussian", [5.0, 50.0, 1000.0], seed=0)
    acc = [r["accuracy"] for r in rows]
    assert acc[0] < acc[1] < acc[2], rows
    assert acc[0] < 0.45 and acc[2] > 0.9  # near chance (0.1) at eps 5, near raw (0.96) at 1000


@pytest.mark.parametrize("sensitivity", [2e-12, 0.37, 2.0, 2e12])
def test_analytic_sigma_scales_with_the_sensitivity(sensitivity):
    """delta depends on sigma / sensitivity only: sigma is the unit root times the sensitivity, on
    the safe side (delta <= target) at every scale the CLI accepts."""
    unit = ldp.gaussian_sigma_analytic(1.0, 1e-5, 1.0)
    sigma = ldp.gaussian_sigma_analytic(1.0, 1e-5, sensitivity)
    assert sigma == pytest.approx(unit * sensitivity, rel=1e-12)
    assert ldp.gaussian_delta(1.0, sigma, sensitivity) <= 1e-5
