"""pgan mmd / pgan fidelity: correctness against direct computations and reference packages,
calibration and power of the permutation test, toy-mixture scores, and clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_clean_error

from pgan_cli.metrics import alpha_beta, c2st, frechet, mmd, modes, prdc


# ---- MMD ------------------------------------------------------------------------------------
def direct_mmd2(x, y, kernel, sigma):
    """Non-blocked float64 NumPy MMD²_u with full kernel matrices (Gretton et al. 2012, eq. 3)."""
    d = x.shape[1]

    def k(a, b):
        if kernel == "poly":
            return (a @ b.T / d + 1.0) ** 3
        dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        return np.exp(-dist ** 2 / (2 * sigma ** 2)) if kernel == "rbf" else np.exp(-dist / sigma)

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


@pytest.mark.parametrize("kernel", mmd.KERNELS)
@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_mmd_equals_direct_computation(kernel, shift, rng, monkeypatch):
    x = rng.normal(size=(37, 6))
    y = rng.normal(size=(52, 6)) + shift
    full = mmd.mmd_test(x, y, kernel, permutations=50)
    # tiny blocks and permutation chunks: the blocked path must give the same numbers
    monkeypatch.setattr(mmd, "PERM_BYTES", 8 * 89 * 7)
    blocked = mmd.mmd_test(x, y, kernel, permutations=50, block_bytes=8 * 89 * 5)
    ref = direct_mmd2(x, y, kernel, full.bandwidth)
    assert full.mmd2 == pytest.approx(ref, rel=1e-6, abs=1e-14)
    assert blocked.mmd2 == pytest.approx(ref, rel=1e-6, abs=1e-14)
    assert blocked.p_value == full.p_value
    if shift and kernel != "poly":
        assert full.mmd2 > 0


def test_permutation_statistics_equal_reindexed_kernel(rng):
    """Every GEMM permutation statistic equals the U-statistic of the re-indexed split."""
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(15, 3)) + 0.3
    sigma = mmd.median_bandwidth(x, y)
    stats = mmd.unbiased_with_permutations(x, y, "rbf", sigma, 30, seed=3)
    ind = mmd._indicator(20, 15, 30, seed=3)
    z = np.concatenate([x, y])
    for b in (0, 1, 17, 30):
        assert stats[b] == pytest.approx(direct_mmd2(z[ind[:, b]], z[~ind[:, b]], "rbf", sigma), rel=1e-9)


def test_median_bandwidth_is_median_pairwise_distance(rng):
    from scipy.spatial.distance import pdist

    x, y = rng.normal(size=(40, 4)), rng.normal(size=(30, 4))
    assert mmd.median_bandwidth(x, y) == pytest.approx(np.median(pdist(np.concatenate([x, y]))), rel=1e-12)
    big = rng.normal(size=(3000, 2))
    assert mmd.median_bandwidth(big, big, seed=1) == mmd.median_bandwidth(big, big, seed=1)


def test_permutation_test_calibration_and_power():
    """Null: rejection at 0.05 over 200 repetitions in [0.02, 0.09]. Power: a 0.5 sigma shift
    in 2-D with 200 points per side gives p < 0.01 in >= 90% of repetitions."""
    rng = np.random.default_rng(12)
    rejections = 0
    for rep in range(200):
        x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
        rejections += mmd.mmd_test(x, y, permutations=99, seed=rep).p_value <= 0.05
    assert 0.02 <= rejections / 200 <= 0.09, rejections
    detected = 0
    for rep in range(40):
        x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + np.array([0.5, 0.0])
        detected += mmd.mmd_test(x, y, permutations=199, seed=rep).p_value < 0.01
    assert detected / 40 >= 0.9, detected


def test_linear_estimator(rng):
    x = rng.normal(size=(4000, 2))
    shifted = mmd.mmd_test(x, rng.normal(size=(4000, 2)) + 0.5, estimator="linear")
    null = mmd.mmd_test(x, rng.normal(size=(4000, 2)), estimator="linear", bandwidth=shifted.bandwidth)
    unbiased = mmd.mmd_test(x[:800], rng.normal(size=(800, 2)) + 0.5, permutations=0,
                            bandwidth=shifted.bandwidth)
    assert shifted.p_value < 1e-4 and null.p_value > 0.01
    assert shifted.permutations == 0 and shifted.p_value_method == "normal"
    assert shifted.mmd2 == pytest.approx(unbiased.mmd2, rel=0.3)


def torch_fidelity_kid(features_1, features_2, kid_subsets, kid_subset_size, rng_seed):
    """torch-fidelity's KID (metric_kid.py: kid_features_to_metric, polynomial_kernel and
    mmd2(mmd_est="unbiased") with its defaults degree 3, gamma 1/d, coef0 1), written out
    literally on NumPy float64 arrays."""
    def mmd2(K_XX, K_XY, K_YY):
        m = K_XX.shape[0]
        diag_X, diag_Y = np.diagonal(K_XX), np.diagonal(K_YY)
        Kt_XX_sums = K_XX.sum(axis=1) - diag_X
        Kt_YY_sums = K_YY.sum(axis=1) - diag_Y
        K_XY_sums_0 = K_XY.sum(axis=0)
        Kt_XX_sum, Kt_YY_sum, K_XY_sum = Kt_XX_sums.sum(), Kt_YY_sums.sum(), K_XY_sums_0.sum()
        value = (Kt_XX_sum + Kt_YY_sum) / (m * (m - 1))
        value -= 2 * K_XY_sum / (m * m)
        return value

    def polynomial_kernel(X, Y, degree=3, gamma=None, coef0=1):
        if gamma is None:
            gamma = 1.0 / X.shape[1]
        return (np.matmul(X, Y.T) * gamma + coef0) ** degree

    n_samples_1, n_samples_2 = len(features_1), len(features_2)
    mmds = np.zeros(kid_subsets)
    rng = np.random.RandomState(rng_seed)
    for i in range(kid_subsets):
        f1 = features_1[rng.choice(n_samples_1, kid_subset_size, replace=False)]
        f2 = features_2[rng.choice(n_samples_2, kid_subset_size, replace=False)]
        mmds[i] = mmd2(polynomial_kernel(f1, f1), polynomial_kernel(f1, f2), polynomial_kernel(f2, f2))
    return {"mean": float(np.mean(mmds)), "std": float(np.std(mmds))}


@pytest.mark.parametrize("seed", [0, 2020])
def test_kid_over_subsets_equals_torch_fidelity_and_a_direct_computation(seed, rng):
    x = rng.normal(size=(90, 7))
    y = rng.normal(size=(70, 7)) * 1.1 + 0.2
    got = mmd.kid_over_subsets(x, y, subsets=25, subset_size=40, seed=seed)
    assert (got["kid_subsets"], got["kid_subset_size"]) == (25, 40)
    theirs = torch_fidelity_kid(x, y, 25, 40, seed)
    assert got["kid_mean"] == pytest.approx(theirs["mean"], rel=1e-9)
    assert got["kid_std"] == pytest.approx(theirs["std"], rel=1e-9)
    # the same subsets, each scored by the independent full-matrix MMD²_u of this file (n = m)
    draw = np.random.RandomState(seed)
    values = [direct_mmd2(x[draw.choice(90, 40, replace=False)], y[draw.choice(70, 40, replace=False)], "poly", None)
              for _ in range(25)]
    assert got["kid_mean"] == pytest.approx(np.mean(values), rel=1e-9)
    assert got["kid_std"] == pytest.approx(np.std(values, ddof=0), rel=1e-9)
    assert got["kid_std"] > 0 and got["kid_mean"] > 0
    # default size: min(1000, |X|, |Y|): every subset is all of Y, and a size above a set is refused
    assert mmd.kid_over_subsets(x, y, subsets=3)["kid_subset_size"] == 70
    from pgan_cli.errors import InputError
    with pytest.raises(InputError, match="kid_subset_size 80 is larger than a set"):
        mmd.kid_over_subsets(x, y, subsets=3, subset_size=80)


def test_poly_kernel_refuses_a_bandwidth(rng):
    from pgan_cli.errors import InputError

    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    for bw in (2.0, "median"):
        with pytest.raises(InputError, match="poly kernel .* has no bandwidth"):
            mmd.mmd_test(x, y, "poly", bandwidth=bw, permutations=0)
    assert mmd.mmd_test(x, y, "poly", permutations=0).bandwidth is None
    assert mmd.mmd_test(x, y, "rbf", bandwidth="median", permutations=0).bandwidth == mmd.median_bandwidth(x, y)


def test_mmd_errors_in_library():
    from pgan_cli.errors import InputError

    with pytest.raises(InputError, match="median pairwise distance"):
        mmd.mmd_test(np.ones((5, 2)), np.ones((6, 2)))
    assert mmd.mmd_test(np.ones((5, 2)), np.ones((6, 2)), bandwidth=1.0, permutations=10).mmd2 == pytest.approx(0, abs=1e-12)
    with pytest.raises(InputError, match="NaN"):
        mmd.mmd_test(np.array([[0.0], [np.nan]]), np.zeros((3, 1)) + np.arange(3)[:, None])


# ---- PRDC, alpha/beta, Fréchet, C2ST ---------------------------------------------------------
@pytest.mark.parametrize("k", [1, 5])
def test_prdc_equals_the_prdc_package(k, rng, capsys):
    from prdc import compute_prdc

    real = rng.normal(size=(700, 8))
    synth = rng.normal(size=(450, 8)) * 1.2 + 0.15
    ours = prdc.prdc(real, synth, k, block_bytes=8 * 700 * 37)  # many row blocks
    theirs = compute_prdc(real, synth, k)
    capsys.readouterr()
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6), key


def test_prdc_sees_mode_collapse(rng):
    real = rng.normal(size=(500, 4))
    collapsed = rng.normal(size=(500, 4)) * 0.2
    scores = prdc.prdc(real, collapsed)
    assert scores["precision"] > 0.9 and scores["coverage"] < 0.5 and scores["recall"] < 0.5


def test_alpha_beta(rng):
    real = rng.normal(size=(1500, 3))
    same = alpha_beta.alpha_beta(real, rng.normal(size=(1500, 3)))
    collapsed = alpha_beta.alpha_beta(real, rng.normal(size=(1500, 3)) * 0.3)
    assert same["alpha_precision"] > 0.9 and same["beta_recall"] > collapsed["beta_recall"] + 0.2
    assert collapsed["alpha_precision"] < 0.7
    assert len(same["alpha_beta_curves"]["levels"]) == alpha_beta.N_LEVELS


def test_frechet_closed_form(rng):
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    # diagonal covariances: ||mu1-mu2||² + Σ (sqrt(a) - sqrt(b))²
    assert frechet.frechet_from_stats(mu1, s1, mu2, s2) == pytest.approx(5.0 + 1 + 1 + 4, rel=1e-9)
    x = rng.normal(size=(20000, 3))
    assert frechet.frechet_distance(x, rng.normal(size=(20000, 3)) + [1, 0, 0]) == pytest.approx(1.0, abs=0.05)
    few = frechet.frechet_distance(rng.normal(size=(5, 30)), rng.normal(size=(6, 30)))  # singular covariances
    assert np.isfinite(few) and few >= 0


def test_c2st(rng):
    real = rng.normal(size=(400, 3))
    assert 0.38 < c2st.c2st_auc(real, rng.normal(size=(400, 3))) < 0.62
    assert c2st.c2st_auc(real, rng.normal(size=(400, 3)) + 1.5) > 0.9
    assert c2st.c2st_auc(real, rng.normal(size=(400, 3)) + 1.5, "logreg") > 0.9


def test_c2st_below_chance_flags_copying(rng):
    """A planted copy (S = the real set + N(0, 1e-3²) noise) drives the held-out AUC far below 0.5
    and the one-sided test flags it; independent samples do not. The p-value is the normal
    approximation of the Mann-Whitney U of the held-out scores (U = AUC n_real n_synthetic),
    recomputed here from the AUC (logreg: no tied scores, so no tie correction)."""
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    real = rng.normal(size=(600, 8))
    copy = real + 1e-3 * rng.normal(size=real.shape)
    t = c2st.c2st_test(real, copy)  # gbm (a linear classifier falls below 0.5 too, less far: 0.42-0.45)
    assert t["auc"] < 0.15 and t["copying"] and t["p_value"] < 1e-10, t
    for seed in range(3):
        t = c2st.c2st_test(real, rng.normal(size=(600, 8)), seed=seed)
        assert 0.4 < t["auc"] < 0.6 and not t["copying"] and t["p_value"] > c2st.COPYING_ALPHA, t
    assert c2st.c2st_test(real, rng.normal(size=(600, 8)) + 1.5)["p_value"] > 0.99  # far above chance
    proba, y = c2st.held_out_scores(real, copy, "logreg")
    t = c2st.below_chance(proba, y)
    n0, n1 = (y == 0).sum(), (y == 1).sum()
    assert (t["n_real"], t["n_synthetic"]) == (n0, n1) == (180, 180)
    u = roc_auc_score(y, proba) * n0 * n1
    z = (u - n0 * n1 / 2 + 0.5) / np.sqrt(n0 * n1 * (n0 + n1 + 1) / 12)  # continuity-corrected
    assert t["p_value"] == pytest.approx(norm.cdf(z), rel=1e-6)


# ---- toy mixture ----------------------------------------------------------------------------
def test_mode_scores_on_the_ring(ring8):
    from pgan_cli.dataset import read_dataset
    from pgan_cli.datasets import gaussian_mixture

    real = read_dataset(ring8)
    mix = real.attrs["mixture"]
    fresh = gaussian_mixture(8, 2000, mix["radius"], mix["std"], seed=7).samples
    s = modes.mode_scores(fresh, mix, real.samples)
    assert (s["modes_covered"], s["modes_total"]) == (8, 8)
    # E[log p] for well-separated modes: log(1/8) - log(2πσ²) - 1
    expected = np.log(1 / 8) - np.log(2 * np.pi * mix["std"] ** 2) - 1
    assert s["log_likelihood"] == pytest.approx(expected, abs=0.1)
    assert s["log_likelihood_real"] == pytest.approx(expected, abs=0.1)
    assert s["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    one = fresh[np.argmin(np.linalg.norm(fresh - np.array(mix["means"][3]), axis=1) > 0.1)][None].repeat(50, 0)
    one = one + np.random.default_rng(0).normal(0, mix["std"], one.shape)
    s1 = modes.mode_scores(one, mix)
    assert (s1["modes_covered"], s1["modes_total"]) == (1, 8)
    assert s1["log_likelihood"] == pytest.approx(expected, abs=0.5)  # sharp but in one mode
    far = modes.mode_scores(np.zeros((10, 2)), mix)
    assert far["modes_covered"] == 0 and far["high_quality_fraction"] == 0 and np.isfinite(far["log_likelihood"])


# ---- CLI --------------------------------------------------------------------------------------
@pytest.fixture
def vecs(tmp_path, rng):
    paths = {}
    arrays = {"a": rng.normal(size=(60, 5)), "b": rng.normal(size=(50, 5)) + 0.8,
              "const": np.ones((20, 5)), "one": rng.normal(size=(1, 5)), "d4": rng.normal(size=(20, 4))}
    nan = rng.normal(size=(20, 5))
    nan[3, 2] = np.nan
    arrays["nan"] = nan
    for name, a in arrays.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], a.astype(np.float32))
    return paths


def test_mmd_cli_json_and_text(cli, vecs):
    r = cli("mmd", vecs["a"], vecs["b"], "--permutations", "200", "--seed", "1", "--json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    for key in ("mmd2", "p_value", "kernel", "bandwidth", "n_x", "n_y", "permutations", "estimator", "provenance"):
        assert key in out
    assert (out["n_x"], out["n_y"], out["permutations"], out["kernel"]) == (60, 50, 200, "rbf")
    assert not any(k.startswith("kid") for k in out) and out["provenance"]["params"]["bandwidth"] == "median"
    assert out["p_value"] < 0.01 and out["mmd2"] > 0
    assert len(out["provenance"]["inputs"]) == 2
    again = json.loads(cli("mmd", vecs["a"], vecs["b"], "--permutations", "200", "--seed", "1", "--json").stdout)
    assert again["p_value"] == out["p_value"] and again["mmd2"] == out["mmd2"]
    r = cli("mmd", vecs["a"], vecs["b"], "--kernel", "poly", "--permutations", "0")
    assert r.exit_code == 0 and r.stdout.startswith("MMD² = ") and "p = n/a" in r.stdout
    assert "; KID = " in r.stdout and "(100 subsets of 50)" in r.stdout
    out = json.loads(cli("mmd", vecs["a"], vecs["b"], "--kernel", "poly", "--permutations", "0", "--kid-subsets",
                         "20", "--kid-subset-size", "30", "--seed", "4", "--json").stdout)
    assert (out["kid_subsets"], out["kid_subset_size"], out["bandwidth"]) == (20, 30, None)
    a, b = (np.load(vecs[k]).astype(np.float64) for k in "ab")
    assert out["kid_mean"] == pytest.approx(torch_fidelity_kid(a, b, 20, 30, 4)["mean"], rel=1e-9)
    assert out["kid_std"] == pytest.approx(torch_fidelity_kid(a, b, 20, 30, 4)["std"], rel=1e-9)
    assert out["provenance"]["params"]["kid_subset_size"] == 30


def test_mmd_cli_on_dataset_files(cli, digits_splits):
    r = cli("mmd", digits_splits["train"], digits_splits["holdout"], "--kernel", "laplace",
            "--permutations", "100", "--json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    assert out["p_value"] > 0.01 and out["n_x"] > 800 and out["n_y"] > 400 and out["kernel"] == "laplace"


@pytest.mark.parametrize("args,needle", [
    (("const", "const"), "bandwidth is undefined"),
    (("one", "a"), "at least 2"),
    (("d4", "a"), "different dimensions"),
    (("nan", "a"), "NaN"),
    (("a", "b", "--kernel", "gauss"), "--kernel must be one of"),
    (("a", "b", "--bandwidth", "-2"), "bandwidth"),
    (("a", "b", "--bandwidth", "wide"), "bandwidth"),
    (("a", "b", "--bandwidth", "1e-300"), "too small (1/(2σ²) overflows)"),
    (("a", "b", "--estimator", "quadratic"), "--estimator must be one of"),
    (("a", "b", "--kernel", "poly", "--bandwidth", "2"), "the poly kernel (x·y/d + 1)³ of KID has no bandwidth, so --bandwidth 2"),
    (("a", "b", "--kernel", "poly", "--bandwidth", "median"), "leave --bandwidth out"),
    (("a", "b", "--kid-subsets", "10"), "--kid-subsets is for KID, the poly kernel; add --kernel poly"),
    (("a", "b", "--kernel", "poly", "--kid-subsets", "0"), "--kid-subsets must be"),
    (("a", "b", "--kernel", "poly", "--kid-subset-size", "51"), "--kid-subset-size 51 is larger than a set"),
    (("a", "b", "--kernel", "poly", "--kid-subset-size", "1"), "--kid-subset-size must be"),
    (("a", "b", "--permutations", "-1"), "permutations"),
    (("a", "missing"), "does not exist"),
])
def test_mmd_cli_errors(cli, vecs, tmp_path, args, needle):
    paths = [str(vecs.get(a, tmp_path / "missing.npy")) if i < 2 else a for i, a in enumerate(args)]
    r = cli("mmd", *paths, "--json")
    assert_clean_error(r, needle)
    assert r.stdout == ""


def test_fidelity_cli_on_ring(cli, ring8, tmp_path):
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import gaussian_mixture

    b = gaussian_mixture(8, 1000, seed=5)
    synth = write_dataset(tmp_path / "synth.h5", b.samples, provenance={})
    r = cli("fidelity", ring8, synth, "--json", "-o", tmp_path / "fid.json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    for key in ("precision", "recall", "density", "coverage", "alpha_precision", "beta_recall", "frechet",
                "c2st_auc", "c2st_copying", "c2st_copying_test", "modes_covered", "modes_total", "high_quality_fraction", "log_likelihood",
                "n_real", "n_synthetic", "k", "space", "provenance"):
        assert key in out, key
    assert (out["modes_covered"], out["modes_total"]) == (8, 8)
    assert out["precision"] > 0.9 and out["coverage"] > 0.8 and out["c2st_auc"] < 0.62
    assert out["c2st_copying"] is False and "warning" not in r.stderr
    assert set(out["c2st_copying_test"]) == {"p_value", "alpha", "test", "n_real", "n_synthetic"}
    assert json.loads((tmp_path / "fid.json").read_text())["precision"] == out["precision"]
    r = cli("fidelity", ring8, synth, "--metrics", "frechet", "--json")
    out = json.loads(r.stdout)
    assert "frechet" in out and "precision" not in out and "c2st_auc" not in out and out["modes_covered"] == 8


def test_fidelity_cli_says_a_copy_is_below_chance(cli, tmp_path, rng):
    """S = the real set + tiny noise: the JSON flags copying, stderr says so in one line, and the
    text output marks the AUC; an independent sample gets no flag."""
    real = rng.normal(size=(500, 6)).astype(np.float32)
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "copy.npy", real + np.float32(1e-3) * rng.normal(size=real.shape).astype(np.float32))
    np.save(tmp_path / "fresh.npy", rng.normal(size=(500, 6)).astype(np.float32))
    r = cli("fidelity", tmp_path / "real.npy", tmp_path / "copy.npy", "--metrics", "c2st", "--json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    assert out["c2st_auc"] < 0.15 and out["c2st_copying"] is True
    assert out["c2st_copying_test"]["p_value"] < out["c2st_copying_test"]["alpha"] == 0.01
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and "significantly below 0.5" in warning[0] and "copy" in warning[0]
    text = cli("fidelity", tmp_path / "real.npy", tmp_path / "copy.npy", "--metrics", "c2st")
    assert "(below chance: copying)" in text.stdout
    fresh = json.loads(cli("fidelity", tmp_path / "real.npy", tmp_path / "fresh.npy", "--metrics", "c2st",
                           "--json").stdout)
    assert fresh["c2st_copying"] is False and fresh["c2st_copying_test"]["p_value"] > 0.01


def test_fidelity_cli_errors(cli, vecs, ring8):
    assert_clean_error(cli("fidelity", vecs["a"], vecs["d4"]), "different dimensions")
    assert_clean_error(cli("fidelity", vecs["a"], vecs["b"], "--metrics", "prdc,fid"), "unknown metric")
    assert_clean_error(cli("fidelity", vecs["a"], vecs["one"]), "at least 2")
    assert_clean_error(cli("fidelity", vecs["a"], vecs["b"], "--k", "80"), "k = 80")
    assert_clean_error(cli("fidelity", vecs["a"], vecs["nan"]), "NaN")
    assert_clean_error(cli("fidelity", vecs["a"], vecs["b"], "--c2st-classifier", "svm"), "--c2st-classifier must be one of")
    r = cli("fidelity", vecs["a"], vecs["const"], "--metrics", "prdc,frechet", "--json")
    assert r.exit_code == 0 and "NaN" not in r.stdout


@pytest.mark.parametrize("group", __import__("pgan_cli.metrics.fidelity", fromlist=["METRIC_GROUPS"]).METRIC_GROUPS)
def test_every_fidelity_metric_keeps_the_contract(group):
    """Contract of every registered fidelity group (a new one is picked up here): it returns
    finite headline figures whose orientation is declared (ORIENTATION), and each figure ranks a
    sample of the real distribution above a shifted one."""
    from pgan_cli.metrics.fidelity import ORIENTATION, fidelity

    rng = np.random.default_rng(0)
    real, same, shifted = (rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 1.0)
    good, bad = fidelity(real, same, metrics=[group]), fidelity(real, shifted, metrics=[group])
    heads = {k: v for k, v in good.items() if isinstance(v, float)}
    assert heads and set(heads) <= set(ORIENTATION), (group, sorted(good))
    for key, v in heads.items():
        w = bad[key]
        assert np.isfinite(v) and np.isfinite(w)
        closeness = {"higher": lambda x: -x, "lower": lambda x: x, "half": lambda x: abs(x - 0.5)}[ORIENTATION[key]]
        assert closeness(v) < closeness(w), (group, key, v, w)
