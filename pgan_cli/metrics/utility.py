"""Utility of synthetic data: train on synthetic, test on real (TSTR) against train on real, test
on real (TRTR), with the same classifier and settings (Esteban, Hyland & Rätsch, "Real-valued
(medical) time series generation with recurrent conditional GANs", 2017; pGAN reports balanced
accuracy 0.893 real vs 0.830 synthetic).

Reported per setting: accuracy, balanced accuracy, macro one-vs-rest ROC AUC and the confusion
matrix (rows = true class, columns = predicted). Whether the two ROC curves differ is tested
with Venkatraman & Begg's paired permutation test ("A distribution-free procedure for comparing
receiver operating characteristic curves from a paired experiment", Biometrika 83, 1996; the
``method="venkatraman"`` of pROC's ``roc.test``): both classifiers score the same test rows;
the statistic is Σ_x |(FN_S(x) + FP_S(x)) - (FN_R(x) + FP_R(x))| over rank thresholds x; each
permutation swaps, per test row with probability 1/2, the (jittered) ranks of the two scores.
For K > 2 classes pgan sums the statistic over the K one-vs-rest problems and swaps a row's
ranks in all K at once (the same paired exchange); for 2 classes it is exactly the paper's test.

``kmeans``: the DP-MNIST seed's unsupervised baseline: k-means with K = number of classes
fitted on a training set (synthetic, and real for comparison), clusters mapped to classes by
the Hungarian assignment (``scipy.optimize.linear_sum_assignment``) that maximises agreement
on the test set, i.e. the usual clustering accuracy; accuracy on the test set. The k-means and
the matching are those of ``pgan cluster`` (:mod:`pgan_cli.metrics.clustering`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pgan_cli.arrays import check_values
from pgan_cli.errors import InputError, UsageError
from pgan_cli import params
from pgan_cli.params import MAX_PERMUTATIONS, Interval, Options, constrained

CLASSIFIERS = ("logreg", "knn", "cnn")
DEFAULT_CLASSIFIER = "logreg"
DEFAULT_PERMUTATIONS = params.DEFAULT_PERMUTATIONS
KNN_K = 5
CNN_EPOCHS = 10
CNN_BATCH = 32
KEY_TSTR, KEY_TRTR, KEY_ROC_TEST, KEY_KMEANS = "tstr", "trtr", "roc_test", "kmeans"


@dataclass
class LabelledSet:
    """Samples (N, ...) float32 and int64 labels in 0..K-1."""

    samples: np.ndarray
    labels: np.ndarray
    name: str

    @property
    def flat(self) -> np.ndarray:
        return self.samples.reshape(len(self.samples), -1)


def check_sets(train_sets: list[LabelledSet], test: LabelledSet) -> int:
    """Same sample shape everywhere, labels present; returns the number of classes K."""
    shape = test.samples.shape[1:]
    for s in [*train_sets, test]:
        if s.samples.shape[1:] != shape:
            raise InputError(f"{s.name} has samples of shape {s.samples.shape[1:]} but {test.name} has "
                             f"{shape}; all sets must be in the same space")
        if len(s.samples) < 2:
            raise InputError(f"{s.name} has {len(s.samples)} sample(s); need at least 2")
        if s.labels is None:
            raise InputError(f"{s.name} has no labels; utility needs labelled sets "
                             f"(sample a conditional generator, or import labels)")
        check_values(s.samples, s.name)
        if s.labels.min() < 0:
            raise InputError(f"{s.name} has negative labels")
    for s in train_sets:
        if len(np.unique(s.labels)) < 2:
            raise InputError(f"{s.name} has only one class; a classifier needs at least two")
    return int(max(s.labels.max() for s in [*train_sets, test])) + 1


# ---- classifiers: fit on one set, return class probabilities (n_test, K) for another --------
def _full_proba(proba: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(proba), k))
    out[:, classes] = proba
    return out


def _logreg(train: LabelledSet, test: LabelledSet, k: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(train.flat, train.labels)
    return _full_proba(model.predict_proba(test.flat), model.classes_, k)


def _knn(train: LabelledSet, test: LabelledSet, k: int, seed: int) -> np.ndarray:
    """k-nearest-neighbour vote (FAISS, :func:`pgan_cli.neighbors.knn`); proba = vote shares."""
    from pgan_cli.neighbors import knn

    kk = min(KNN_K, len(train.samples))
    res = knn(test.flat, train.flat, kk)
    votes = train.labels[res.indices]  # (n_test, kk)
    proba = np.zeros((len(test.samples), k))
    for j in range(kk):
        proba[np.arange(len(votes)), votes[:, j]] += 1.0 / kk
    return proba


def _cnn(train: LabelledSet, test: LabelledSet, k: int, seed: int,
         epochs: int = CNN_EPOCHS) -> np.ndarray:
    """A small CNN (three 3x3 convolutions, pooling to 4x4, two linear layers), Adam, CPU, seeded."""
    import torch
    from torch import nn

    if train.samples.ndim != 4:
        raise UsageError("--classifier cnn needs image datasets (N, C, H, W); use logreg or knn for vectors")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small only loses to thread contention
    try:
        return _train_cnn(train, test, k, seed, epochs)
    finally:
        torch.set_num_threads(threads)


def _train_cnn(train: LabelledSet, test: LabelledSet, k: int, seed: int, epochs: int) -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    c = train.samples.shape[1]
    net = nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, k))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x = torch.from_numpy(np.ascontiguousarray(train.samples, dtype=np.float32))
    y = torch.from_numpy(train.labels.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), CNN_BATCH):
            idx = order[s:s + CNN_BATCH]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(test.samples, dtype=np.float32))
        logits = torch.cat([net(xt[s:s + 1024]) for s in range(0, len(xt), 1024)])
        return torch.softmax(logits, 1).double().numpy()


_FIT: dict[str, Callable[..., np.ndarray]] = {"logreg": _logreg, "knn": _knn, "cnn": _cnn}


# ---- scores -------------------------------------------------------------------------------
def classification_scores(y: np.ndarray, proba: np.ndarray, k: int) -> dict[str, Any]:
    """accuracy, balanced_accuracy, auc (macro one-vs-rest over the classes present in y with
    both positives and negatives; None if none), confusion_matrix (K x K)."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    pred = proba.argmax(1)
    aucs = []
    for c in range(k):
        pos = y == c
        if 0 < pos.sum() < len(y):
            aucs.append(roc_auc_score(pos, proba[:, c]))
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "auc": float(np.mean(aucs)) if aucs else None,
        "auc_classes": len(aucs),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
    }


def _ordinal_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis (ties broken by position, as R's ties.method="first")."""
    return np.argsort(np.argsort(a, axis=-1, kind="stable"), axis=-1, kind="stable") + 1


def _venkatraman_stat(r: np.ndarray, s: np.ndarray, case: np.ndarray) -> np.ndarray:
    """Σ_x |(FN_S + FP_S)(x) - (FN_R + FP_R)(x)| for score arrays r, s of shape (B, n).

    With the rows sorted by score, FN(x) + FP(x) = #controls + Σ_{rank <= x} (2·case - 1), so
    the statistic needs one sort per array (no per-threshold counting).
    """
    sign = np.where(case, 1.0, -1.0)

    def errors(score: np.ndarray) -> np.ndarray:
        return np.cumsum(sign[np.argsort(score, axis=-1, kind="stable")], axis=-1)

    return np.abs(errors(s) - errors(r)).sum(1)


def venkatraman_test(y: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, k: int,
                     permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                     chunk: int = 100) -> dict[str, Any]:
    """Paired permutation test of whether two classifiers' ROC curves on the same rows differ.

    Returns ``statistic``, ``p_value`` = (1 + #{perm >= observed}) / (B + 1), ``permutations``,
    ``classes`` (the one-vs-rest problems summed), ``method``.
    """
    rng = np.random.default_rng(seed)
    classes = [c for c in range(k) if 0 < (y == c).sum() < len(y)]
    if k == 2:
        classes = [1] if 1 in classes else classes[:1]  # binary: the one ROC curve
    if not classes:
        return {"statistic": None, "p_value": None, "permutations": 0, "classes": 0,
                "method": "venkatraman", "note": "the test set has a single class"}
    n = len(y)
    observed = 0.0
    base = []
    for c in classes:
        r = _ordinal_ranks(proba_a[None, :, c])
        s = _ordinal_ranks(proba_b[None, :, c])
        case = y == c
        observed += float(_venkatraman_stat(r, s, case)[0])
        base.append((r[0].astype(np.float64), s[0].astype(np.float64), case))
    perm_stats = np.zeros(permutations)
    for start in range(0, permutations, chunk):
        b = min(chunk, permutations - start)
        swap = rng.random((b, n)) < 0.5  # one exchange per row, shared by all classes
        for r, s, case in base:
            r2 = r[None, :] + rng.random((b, n)) - 0.5  # jitter breaks ties (pROC)
            s2 = s[None, :] + rng.random((b, n)) - 0.5
            r3 = np.where(swap, s2, r2)
            s3 = np.where(swap, r2, s2)
            perm_stats[start:start + b] += _venkatraman_stat(r3, s3, case)
    p = float((1 + np.count_nonzero(perm_stats >= observed - 1e-9)) / (permutations + 1))
    return {"statistic": observed, "p_value": p, "permutations": int(permutations),
            "classes": len(classes), "method": "venkatraman"}


def kmeans_accuracy(train: LabelledSet, test: LabelledSet, k: int, seed: int = 0) -> float:
    """k-means (K clusters) on ``train``, Hungarian-matched to classes on ``test``; test accuracy.
    The k-means and the matching are ``pgan cluster``'s (:mod:`pgan_cli.metrics.clustering`)."""
    from pgan_cli.metrics.clustering import hungarian_accuracy, kmeans_assign

    if len(train.samples) < k:
        raise InputError(f"{train.name} has {len(train.samples)} samples, fewer than the {k} clusters")
    clusters = kmeans_assign(train.flat, k, seed, predict=test.flat)
    return hungarian_accuracy(clusters, test.labels, k)


@constrained(classifier=Options(CLASSIFIERS), permutations=Interval(1, MAX_PERMUTATIONS))
def utility(synthetic: LabelledSet, real_train: LabelledSet, test: LabelledSet,
            classifier: str = DEFAULT_CLASSIFIER, seed: int = 0,
            permutations: int = DEFAULT_PERMUTATIONS, kmeans: bool = False,
            log: Callable[[str], None] | None = None, cnn_epochs: int = CNN_EPOCHS) -> dict[str, Any]:
    """TSTR and TRTR scores, the ROC-difference test and optionally the k-means baseline."""
    if classifier not in CLASSIFIERS:
        raise InputError(f"unknown classifier {classifier!r}; use one of {', '.join(CLASSIFIERS)}")
    from pgan_cli.split import require_disjoint

    k = check_sets([synthetic, real_train], test)
    require_disjoint([(real_train.name, "", real_train.samples), (test.name, "", test.samples)],
                     "train-on-real and test figures")
    if classifier == "cnn" and test.samples.ndim != 4:
        raise UsageError("--classifier cnn needs image datasets (N, C, H, W); use logreg or knn for vectors")
    say = log or (lambda s: None)
    fit = _FIT[classifier]
    kwargs = {"epochs": cnn_epochs} if classifier == "cnn" else {}
    say(f"TSTR: {classifier} trained on {synthetic.name} ({len(synthetic.samples)} rows)")
    p_tstr = fit(synthetic, test, k, seed, **kwargs)
    say(f"TRTR: {classifier} trained on {real_train.name} ({len(real_train.samples)} rows)")
    p_trtr = fit(real_train, test, k, seed, **kwargs)
    out: dict[str, Any] = {
        KEY_TSTR: classification_scores(test.labels, p_tstr, k),
        KEY_TRTR: classification_scores(test.labels, p_trtr, k),
        "classifier": classifier, "num_classes": k,
        "n_synthetic": len(synthetic.samples), "n_real_train": len(real_train.samples),
        "n_test": len(test.samples),
    }
    say(f"Venkatraman ROC test ({permutations} permutations)")
    out[KEY_ROC_TEST] = venkatraman_test(test.labels, p_tstr, p_trtr, k, permutations, seed)
    if kmeans:
        say("k-means baseline")
        out[KEY_KMEANS] = {"synthetic": {"accuracy": kmeans_accuracy(synthetic, test, k, seed)},
                           "real": {"accuracy": kmeans_accuracy(real_train, test, k, seed)},
                           "clusters": k, "matching": "hungarian on the test set"}
    return out


def _load(path, role: str) -> LabelledSet:
    from pgan_cli.dataset import read_dataset

    if Path(path).suffix.lower() == ".npy":
        raise InputError(f"{role} {path} is an NPY array without labels; utility needs a labelled dataset file (.h5)")
    b = read_dataset(path)
    if b.labels is None:
        raise InputError(f"{role} {path} has no labels; utility needs labelled sets")
    return LabelledSet(b.samples, b.labels, f"{role} ({path})")




@constrained(epochs=Interval(1, None), classifier=Options(CLASSIFIERS), permutations=Interval(1, MAX_PERMUTATIONS))
def utility_files(synthetic, real_train, test, *, classifier: str = "logreg", seed: int = 0,
                  permutations: int = DEFAULT_PERMUTATIONS, kmeans: bool = False, epochs: int = 10) -> dict:
    """``pgan utility``: TSTR against TRTR on three labelled files, as the stamped JSON the command prints."""
    from pgan_cli import console, formats
    from pgan_cli.provenance import make_provenance

    sets = [_load(synthetic, "synthetic set"), _load(real_train, "real training set"), _load(test, "test set")]
    result = utility(*sets, classifier=classifier, seed=seed, permutations=permutations, kmeans=kmeans,
                     log=console.log, cnn_epochs=epochs)
    result["provenance"] = make_provenance([synthetic, real_train, test], seed=seed, classifier=classifier,
                                           permutations=permutations, kmeans=kmeans, epochs=epochs)
    return formats.stamped(formats.UTILITY, result)
