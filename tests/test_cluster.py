"""pgan cluster: k-means and IIC, Hungarian accuracy / NMI / ARI, the pgan-clusters file, clean
errors, and that pgan utility --kmeans still gives what it gave before sharing the k-means."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from conftest import assert_clean_error

from pgan_cli.errors import FormatError
from pgan_cli.metrics.clustering import (IICConfig, clustering_scores, hungarian_match, iic_assign, iic_loss,
                                         read_clusters)


def _json(r):
    assert r.exit_code == 0, r
    return json.loads(r.stdout)


# ---- scores ---------------------------------------------------------------------------------------
def test_hungarian_recovers_a_permutation(rng):
    labels = rng.integers(0, 6, 500)
    perm = np.array([3, 5, 0, 1, 4, 2])  # class c is cluster perm[c]
    mapping, acc = hungarian_match(perm[labels], labels, 6)
    assert acc == 1.0
    assert mapping == [int(np.where(perm == c)[0][0]) for c in range(6)]  # cluster -> class: the inverse


def test_hungarian_on_a_hand_made_table():
    # clusters x classes counts: [[0, 5, 1], [4, 0, 0], [1, 1, 3]]; best map 0->1, 1->0, 2->2 (12 of 15)
    table = [[0, 5, 1], [4, 0, 0], [1, 1, 3]]
    clusters = np.repeat([0, 0, 0, 1, 1, 1, 2, 2, 2], np.ravel(table))
    labels = np.repeat([0, 1, 2] * 3, np.ravel(table))
    mapping, acc = hungarian_match(clusters, labels, 3)
    assert mapping == [1, 0, 2] and acc == pytest.approx(12 / 15)
    # more clusters than classes: an unmatched cluster's rows count as wrong
    mapping, acc = hungarian_match(np.array([0, 0, 1, 2, 3]), np.array([0, 0, 1, 1, 0]), 4)
    assert acc == pytest.approx(3 / 5) and mapping.count(None) == 2


def _nmi_ari_by_hand(a, b):
    """NMI (arithmetic mean of the entropies) and ARI (Hubert & Arabie) from the contingency table."""
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    n = table.sum()
    pa, pb, pab = table.sum(1) / n, table.sum(0) / n, table / n
    nz = pab > 0
    mi = (pab[nz] * np.log(pab[nz] / np.outer(pa, pb)[nz])).sum()
    h = lambda p: -(p[p > 0] * np.log(p[p > 0])).sum()  # noqa: E731
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    index, sa, sb = comb(table).sum(), comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    expected = sa * sb / comb(n)
    return mi / ((h(pa) + h(pb)) / 2), (index - expected) / ((sa + sb) / 2 - expected)


def test_nmi_and_ari_are_the_textbook_ones(rng):
    labels = rng.integers(0, 5, 400)
    clusters = np.where(rng.random(400) < 0.7, labels, rng.integers(0, 7, 400))
    s = clustering_scores(clusters, labels, 7)
    nmi, ari = _nmi_ari_by_hand(clusters, labels)
    assert s["nmi"] == pytest.approx(nmi, abs=1e-12) and s["ari"] == pytest.approx(ari, abs=1e-12)
    assert 0.3 < s["ari"] < 0.9 and s["num_classes"] == 5


# ---- the IIC objective ----------------------------------------------------------------------------
def test_iic_loss_is_minus_the_mutual_information(rng):
    import torch

    k = 4
    onehot = torch.eye(k)[torch.arange(400) % k].double()
    assert float(iic_loss(onehot, onehot)) == pytest.approx(-math.log(k), abs=1e-9)  # the bound
    uniform = torch.full((400, k), 1 / k, dtype=torch.float64)
    assert float(iic_loss(uniform, uniform)) == pytest.approx(0.0, abs=1e-12)
    z = torch.softmax(torch.from_numpy(rng.normal(size=(50, k))), 1)
    zt = torch.softmax(torch.from_numpy(rng.normal(size=(50, k))), 1)
    p = (z.numpy()[:, :, None] * zt.numpy()[:, None, :]).sum(0)
    p = (p + p.T) / 2
    p /= p.sum()
    mi = (p * np.log(p / np.outer(p.sum(1), p.sum(0)))).sum()  # eq. 3
    assert float(iic_loss(z, zt)) == pytest.approx(-mi, abs=1e-12)


# ---- the command ----------------------------------------------------------------------------------
def test_kmeans_on_digits_and_the_file(cli, digits8, tmp_path):
    out = _json(cli("cluster", digits8, "--method", "kmeans", "--k", "10", "-o", tmp_path / "c.h5", "--json"))
    assert 0.6 < out["accuracy"] < 0.95  # k-means + Hungarian: about 0.79 on the 1,797 8x8 digits
    assert 0.5 < out["nmi"] < 0.95 and 0.4 < out["ari"] < 0.95
    assert out["n"] == 1797 and sum(out["sizes"]) == 1797 and len(out["sizes"]) == 10
    c = read_clusters(tmp_path / "c.h5")
    assert c.method == "kmeans" and c.k == 10 and c.sizes.tolist() == out["sizes"]
    assert len(c.assignments) == 1797 and c.assignments.dtype == np.int64
    assert c.scores["accuracy"] == out["accuracy"] and c.params == out["params"]
    assert c.provenance["seed"] == 0 and c.provenance["params"]["method"] == "kmeans"
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f.attrs["format"] == "pgan-clusters" and f.attrs["format_version"] == 1


def test_unlabelled_data_has_no_scores(cli, tmp_path, rng):
    from pgan_cli.dataset import write_dataset

    x = np.concatenate([rng.normal(0, 0.1, (30, 3)), rng.normal(5, 0.1, (30, 3))]).astype(np.float32)
    write_dataset(tmp_path / "u.h5", x, provenance={})
    np.save(tmp_path / "u.npy", x)
    for src in ("u.h5", "u.npy"):
        out = _json(cli("cluster", tmp_path / src, "--k", "2", "-o", tmp_path / f"{src}.c.h5", "--json"))
        assert not {"accuracy", "nmi", "ari", "mapping", "num_classes"} & set(out)
        assert sorted(out["sizes"]) == [30, 30]
        assert read_clusters(tmp_path / f"{src}.c.h5").scores is None


def test_iic_on_the_ring_and_seed(cli, ring8, tmp_path):
    """IIC through the CLI on the 8-mode ring (vectors: the MLP, dropout and noise); the seed
    fixes every byte of the assignments, another seed trains another net."""
    args = ["cluster", ring8, "--method", "iic", "--k", "8", "--epochs", "4", "--json"]
    a = _json(cli(*args, "-o", tmp_path / "a.h5"))
    b = _json(cli(*args, "-o", tmp_path / "b.h5"))
    c = _json(cli(*args, "--seed", "1", "-o", tmp_path / "c.h5"))
    assert a["accuracy"] > 0.6  # 0.76-0.89 over seeds 0-2; chance (8 balanced modes) is about 0.15
    assert a["iic"]["loss"] < -1.0 and len(a["iic"]["sub_head_losses"]) == 5 and a["device"] == "cpu"
    drop = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "output")}  # noqa: E731
    assert drop(a) == drop(b)
    assert np.array_equal(read_clusters(tmp_path / "a.h5").assignments, read_clusters(tmp_path / "b.h5").assignments)
    assert c["iic"]["sub_head_losses"] != a["iic"]["sub_head_losses"]


def test_iic_on_digit_images_beats_chance():
    """A quick IIC setting on 600 of the 8x8 digits (conv net, affine perturbations): well above
    the ~0.12 Hungarian accuracy of a random clustering."""
    from pgan_cli.datasets import digits

    b = digits(8)
    idx = np.random.default_rng(0).permutation(len(b.samples))[:600]
    cfg = IICConfig(epochs=5, batch_size=16, repeats=4, width=8, heads=2, overcluster=3)
    assign, info = iic_assign(b.samples[idx], 10, seed=0, cfg=cfg)
    acc = clustering_scores(assign, b.labels[idx], 10)["accuracy"]
    assert acc > 0.3, (acc, info)


def test_kmeans_is_reproducible(cli, digits8, tmp_path):
    a = _json(cli("cluster", digits8, "--seed", "3", "-o", tmp_path / "a.h5", "--json"))
    b = _json(cli("cluster", digits8, "--seed", "3", "-o", tmp_path / "b.h5", "--json"))
    assert a["kmeans"] == b["kmeans"] and a["sizes"] == b["sizes"]
    assert np.array_equal(read_clusters(tmp_path / "a.h5").assignments, read_clusters(tmp_path / "b.h5").assignments)


@pytest.mark.parametrize("argv, needle", [
    (["--k", "1"], "--k"), (["--k", "1001"], "--k"), (["--k", "-3"], "--k"),
    (["--method", "dbscan"], "--method"), (["--method", "iic", "--epochs", "0"], "--epochs"),
    (["--method", "iic", "--overcluster", "-1"], "--overcluster"), (["--device", "tpu"], "tpu"),
    (["--seed", "-1"], "seed")])
def test_bad_options_are_one_line(cli, digits8, tmp_path, argv, needle):
    r = cli("cluster", digits8, "-o", tmp_path / "c.h5", *argv)
    assert_clean_error(r, needle)
    assert not (tmp_path / "c.h5").exists()


def test_fewer_rows_than_clusters(cli, tmp_path):
    from pgan_cli.dataset import write_dataset

    write_dataset(tmp_path / "five.h5", np.eye(5, dtype=np.float32), labels=np.arange(5), provenance={})
    for method in ("kmeans", "iic"):
        assert_clean_error(cli("cluster", tmp_path / "five.h5", "--method", method, "--k", "10",
                               "-o", tmp_path / "c.h5"), "5 rows", "10 clusters")
    assert not (tmp_path / "c.h5").exists()


def test_output_may_not_replace_the_input(cli, digits8, tmp_path):
    import shutil

    shutil.copy(digits8, tmp_path / "d.h5")
    before = (tmp_path / "d.h5").read_bytes()
    assert_clean_error(cli("cluster", tmp_path / "d.h5", "-o", tmp_path / "d.h5"), "input")
    assert (tmp_path / "d.h5").read_bytes() == before


# ---- the reader refuses what is not a clusters file ------------------------------------------------
def _write(path, attrs, assignments=(0, 1, 1), sizes=(1, 2)):
    with h5py.File(path, "w") as f:
        f.create_dataset("assignments", data=np.asarray(assignments, np.int64))
        f.create_dataset("sizes", data=np.asarray(sizes, np.int64))
        for k, v in attrs.items():
            f.attrs[k] = v


@pytest.mark.parametrize("attrs, kw, needle", [
    ({}, {}, "no pgan format stamp"),
    ({"format": "pgan-knn", "format_version": 1, "k": 2}, {}, "'pgan-knn'"),
    ({"format": "pgan-clusters", "format_version": 2, "k": 2}, {}, "format_version 2"),
    ({"format": "pgan-clusters", "format_version": 1, "k": 2}, {"sizes": (2, 1)}, "disagree"),
    ({"format": "pgan-clusters", "format_version": 1, "k": 2}, {"assignments": (0, 1, 2)}, "disagree"),
    ({"format": "pgan-clusters", "format_version": 1, "k": 2, "params": "[1]"}, {}, "params"),
])
def test_reader_refuses_with_one_line(tmp_path, attrs, kw, needle):
    _write(tmp_path / "x.h5", attrs, **kw)
    with pytest.raises(FormatError) as e:
        read_clusters(tmp_path / "x.h5")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_reader_refuses_a_dataset_file(digits8):
    with pytest.raises(FormatError, match="not a pgan clusters file"):
        read_clusters(digits8)


# ---- pgan utility --kmeans: the shared k-means gives what the old code gave --------------------------
def _kmeans_accuracy_before(train, test, k, seed=0):
    """pgan utility's k-means baseline as it was before it called metrics.clustering, verbatim."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(train.flat.astype(np.float64))
        clusters = km.predict(test.flat.astype(np.float64))
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (clusters, test.labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(test.labels))


@pytest.mark.parametrize("seed", [0, 7])
def test_utility_kmeans_unchanged(digits_splits, seed):
    from pgan_cli.dataset import read_dataset
    from pgan_cli.metrics.utility import LabelledSet, kmeans_accuracy

    tr, te = read_dataset(digits_splits["train"]), read_dataset(digits_splits["holdout"])
    train, test = LabelledSet(tr.samples, tr.labels, "train"), LabelledSet(te.samples, te.labels, "test")
    assert kmeans_accuracy(train, test, 10, seed) == _kmeans_accuracy_before(train, test, 10, seed)
