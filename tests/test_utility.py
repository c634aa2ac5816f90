"""pgan utility: TSTR vs TRTR, Venkatraman's ROC test, the k-means baseline, and clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_clean_error

from pgan_cli.metrics.utility import LabelledSet, kmeans_accuracy, venkatraman_test, _venkatraman_stat


def venkatraman_direct(r, s, case):
    """pROC's venkatraman.paired.stat, transcribed literally (ranks 1..n, loop over thresholds)."""
    n = len(case)
    total = 0.0
    for x in range(1, n + 1):
        r_fn, r_fp = np.sum(r[case] <= x), np.sum(r[~case] > x)
        s_fn, s_fp = np.sum(s[case] <= x), np.sum(s[~case] > x)
        total += abs((s_fn + s_fp) - (r_fn + r_fp))
    return total


def test_venkatraman_statistic_matches_proc_formula(rng):
    case = rng.random(60) < 0.4
    r = rng.permutation(60) + 1
    s = rng.permutation(60) + 1
    assert _venkatraman_stat(r[None], s[None], case)[0] == venkatraman_direct(r, s, case)


def test_venkatraman_test_behaviour(rng):
    y = rng.integers(0, 2, 300)
    good = np.stack([1 - y * 0.6 - rng.random(300) * 0.4, y * 0.6 + rng.random(300) * 0.4], 1)
    noise = rng.random((300, 2))
    same = venkatraman_test(y, good, good, 2, permutations=200)
    assert same["statistic"] == 0 and same["p_value"] == 1.0
    diff = venkatraman_test(y, good, noise, 2, permutations=200)
    assert diff["p_value"] < 0.01 and diff["classes"] == 1
    noise2 = rng.random((300, 2))
    null = [venkatraman_test(y, noise, noise2, 2, permutations=99, seed=s)["p_value"] for s in range(3)]
    assert min(null) > 0.01


def test_kmeans_baseline_on_digits(digits_splits):
    from pgan_cli.dataset import read_dataset

    tr, te = read_dataset(digits_splits["train"]), read_dataset(digits_splits["holdout"])
    acc = kmeans_accuracy(LabelledSet(tr.samples, tr.labels, "train"), LabelledSet(te.samples, te.labels, "test"), 10)
    assert 0.6 < acc < 0.95  # k-means + Hungarian reaches about 0.79 on digits


@pytest.fixture(scope="module")
def noisy_synthetic(tmp_path_factory, digits_splits):
    """A stand-in 'generator': members plus N(0, 0.3) noise, clipped, labels kept."""
    from pgan_cli.dataset import read_dataset, write_dataset

    b = read_dataset(digits_splits["train"])
    x = np.clip(b.samples + np.random.default_rng(0).normal(0, 0.3, b.samples.shape), -1, 1)
    path = tmp_path_factory.mktemp("syn") / "synthetic.h5"
    write_dataset(path, x.astype(np.float32), labels=b.labels, class_names=b.class_names, provenance={})
    return path


def test_utility_cli_logreg_with_kmeans(cli, digits_splits, noisy_synthetic, tmp_path):
    r = cli("utility", "--synthetic", noisy_synthetic, "--real-train", digits_splits["train"],
            "--test", digits_splits["holdout"], "--kmeans", "--permutations", "200", "--json",
            "-o", tmp_path / "u.json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    for block in ("tstr", "trtr"):
        for key in ("accuracy", "balanced_accuracy", "auc", "confusion_matrix"):
            assert key in out[block]
        cm = np.array(out[block]["confusion_matrix"])
        assert cm.shape == (10, 10) and cm.sum() == out["n_test"]
        assert np.trace(cm) / cm.sum() == pytest.approx(out[block]["accuracy"])
    assert out["trtr"]["accuracy"] > 0.93  # logistic regression reaches about 0.96 on digits
    assert 0.8 < out["tstr"]["accuracy"] <= out["trtr"]["accuracy"] + 0.02
    assert 0 < out["roc_test"]["p_value"] <= 1 and out["roc_test"]["permutations"] == 200
    assert 0.5 < out["kmeans"]["synthetic"]["accuracy"] < 0.95 and "real" in out["kmeans"]
    assert json.loads((tmp_path / "u.json").read_text())["tstr"] == out["tstr"]
    r = cli("utility", "--synthetic", noisy_synthetic, "--real-train", digits_splits["train"],
            "--test", digits_splits["holdout"], "--permutations", "50")
    assert r.exit_code == 0 and r.stdout.startswith("TSTR (logreg): accuracy")


@pytest.mark.parametrize("classifier", ["knn", "cnn"])
def test_utility_other_classifiers(cli, digits_splits, noisy_synthetic, classifier):
    r = cli("utility", "--synthetic", noisy_synthetic, "--real-train", digits_splits["train"],
            "--test", digits_splits["holdout"], "--classifier", classifier,
            *(["--epochs", "3"] if classifier == "cnn" else []), "--permutations", "50", "--json")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    assert out["classifier"] == classifier
    assert out["trtr"]["accuracy"] > 0.85 and out["tstr"]["accuracy"] > 0.6
    assert 0.5 < out["tstr"]["auc"] <= 1


def test_utility_on_vectors(cli, tmp_path):
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import breast_cancer

    b = breast_cancer()
    idx = np.random.default_rng(0).permutation(len(b.labels))
    parts = {}
    for name, sel in (("train", idx[:300]), ("test", idx[300:])):
        parts[name] = write_dataset(tmp_path / f"{name}.h5", b.samples[sel], labels=b.labels[sel],
                                    class_names=b.class_names, provenance={})
    r = cli("utility", "--synthetic", parts["train"], "--real-train", parts["train"], "--test", parts["test"],
            "--permutations", "50", "--json")
    out = json.loads(r.stdout)
    assert out["tstr"] == out["trtr"] and out["roc_test"]["p_value"] == 1.0 and out["trtr"]["auc"] > 0.97
    assert_clean_error(cli("utility", "--synthetic", parts["train"], "--real-train", parts["train"],
                           "--test", parts["test"], "--classifier", "cnn"), "needs image")


def test_utility_errors(cli, digits_splits, tmp_path, ring8):
    from pgan_cli.dataset import write_dataset

    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((5, 64), np.float32))
    unl = write_dataset(tmp_path / "unl.h5", np.zeros((5, 1, 8, 8), np.float32), provenance={})
    tr, ho = digits_splits["train"], digits_splits["holdout"]
    assert_clean_error(cli("utility", "--synthetic", npy, "--real-train", tr, "--test", ho), "without labels")
    assert_clean_error(cli("utility", "--synthetic", unl, "--real-train", tr, "--test", ho), "no labels")
    assert_clean_error(cli("utility", "--synthetic", ring8, "--real-train", tr, "--test", ho), "shape")
    assert_clean_error(cli("utility", "--synthetic", tr, "--real-train", tr, "--test", ho,
                           "--classifier", "svm"), "--classifier must be one of")
    assert_clean_error(cli("utility", "--synthetic", tr, "--real-train", tr, "--test", tmp_path / "no.h5"),
                       "does not exist")
    assert_clean_error(cli("utility", "--synthetic", tr, "--real-train", tr, "--test", ho,
                           "--permutations", "0"), "permutations")
