"""Classifier two-sample test (Lopez-Paz & Oquab, "Revisiting classifier two-sample tests",
ICLR 2017): train a classifier to tell real from synthetic rows and report its ROC AUC on a
held-out split. 0.5 means the classifier cannot tell them apart (ideal); 1.0 means every
synthetic row is recognisable.

The split is stratified and seeded (70% train, 30% test); the classifier is scikit-learn's
``HistGradientBoostingClassifier`` (``gbm``, default; catches non-linear differences such as
missing modes) or a standardised logistic regression (``logreg``).

**Below chance means copying.** When the synthetic set copies the real one (each synthetic row
a real row plus tiny noise), a real row and its copy often land on opposite sides of the split:
the classifier learns the training row's label and gives its held-out twin the wrong one, so the
held-out AUC falls well below 0.5 (0.05 for a planted copy with noise 1e-3, gbm): not an ideal
score but a copying signal. Under the null of independent samples from one
distribution, the held-out real and synthetic scores are exchangeable given the fitted
classifier, so U = AUC * n_real * n_synthetic has the Mann-Whitney null distribution; the
one-sided p-value of "AUC < 0.5" (``scipy.stats.mannwhitneyu``, ``alternative="less"``: exact
for tiny untied samples, else normal with the tie correction) below ``COPYING_ALPHA`` flags copying.
"""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError

CLASSIFIERS = ("gbm", "logreg")
TEST_FRACTION = 0.3
COPYING_ALPHA = 0.01  # one-sided level of the "AUC significantly below 0.5" test
COPYING_TEST = "one-sided Mann-Whitney U of the held-out scores, H1: AUC < 0.5"


def check_inputs(real: np.ndarray, synthetic: np.ndarray, classifier: str) -> None:
    """Known classifier and at least 5 rows per side."""
    if classifier not in CLASSIFIERS:
        raise InputError(f"unknown C2ST classifier {classifier!r}; use one of {', '.join(CLASSIFIERS)}")
    if min(len(real), len(synthetic)) < 5:
        raise InputError(f"C2ST needs at least 5 real and 5 synthetic samples "
                         f"(got {len(real)} and {len(synthetic)}); leave it out with --metrics")


def held_out_scores(real: np.ndarray, synthetic: np.ndarray, classifier: str = "gbm",
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's P(synthetic) on the held-out split and the split's labels (1 synthetic)."""
    from sklearn.model_selection import train_test_split

    check_inputs(real, synthetic, classifier)
    x = np.concatenate([np.asarray(real, np.float32), np.asarray(synthetic, np.float32)])
    y = np.concatenate([np.zeros(len(real), np.int64), np.ones(len(synthetic), np.int64)])
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    if classifier == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    from threadpoolctl import threadpool_limits

    # one OpenMP thread: gradient boosting on a few thousand rows gains nothing from more, and
    # OpenMP spin-waiting next to FAISS/torch thread pools slowed it 40x on a busy 2-core machine
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(x_tr, y_tr)
        proba = model.predict_proba(x_te)[:, 1]
    return proba, y_te


def is_copying(p_value: float, alpha: float = COPYING_ALPHA) -> bool:
    """The copying flag: the one-sided p-value of "held-out AUC < 0.5" below ``alpha``."""
    return p_value < alpha


def below_chance(proba: np.ndarray, labels: np.ndarray, alpha: float = COPYING_ALPHA) -> dict:
    """The one-sided test of "held-out AUC < 0.5" (module docstring): p-value, level, sizes, flag."""
    from scipy.stats import mannwhitneyu

    synth, real = proba[labels == 1], proba[labels == 0]
    p = float(mannwhitneyu(synth, real, alternative="less").pvalue)
    return {"p_value": p, "alpha": alpha, "test": COPYING_TEST, "n_real": int(len(real)),
            "n_synthetic": int(len(synth)), "copying": is_copying(p, alpha)}


def c2st_test(real: np.ndarray, synthetic: np.ndarray, classifier: str = "gbm", seed: int = 0) -> dict:
    """Held-out AUC of a classifier separating ``real`` (label 0) from ``synthetic`` (label 1), and
    the below-chance (copying) test: ``{"auc", "p_value", "alpha", "test", "n_real", "n_synthetic",
    "copying"}``."""
    from sklearn.metrics import roc_auc_score

    proba, y_te = held_out_scores(real, synthetic, classifier, seed)
    return {"auc": float(roc_auc_score(y_te, proba)), **below_chance(proba, y_te)}


def c2st_auc(real: np.ndarray, synthetic: np.ndarray, classifier: str = "gbm", seed: int = 0) -> float:
    """Held-out AUC of a classifier separating ``real`` (label 0) from ``synthetic`` (label 1)."""
    return c2st_test(real, synthetic, classifier, seed)["auc"]
