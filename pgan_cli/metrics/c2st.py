"""Classifier two-sample test (Lopez-Paz & Oquab, "Revisiting classifier two-sample tests",
ICLR 2017): train a classifier to tell real from synthetic rows and report its ROC AUC on a
held-out split. 0.5 means the classifier cannot tell them apart (ideal); 1.0 means every
synthetic row is recognisable.

The split is stratified and seeded (70% train, 30% test); the classifier is scikit-learn's
``HistGradientBoostingClassifier`` (``gbm``, default; catches non-linear differences such as
missing modes) or a standardised logistic regression (``logreg``).
"""

from __future__ import annotations

import numpy as np

from pgan_cli.errors import InputError

CLASSIFIERS = ("gbm", "logreg")
TEST_FRACTION = 0.3


def check_inputs(real: np.ndarray, synthetic: np.ndarray, classifier: str) -> None:
    """Known classifier and at least 5 rows per side."""
    if classifier not in CLASSIFIERS:
        raise InputError(f"unknown C2ST classifier {classifier!r}; use one of {', '.join(CLASSIFIERS)}")
    if min(len(real), len(synthetic)) < 5:
        raise InputError(f"C2ST needs at least 5 real and 5 synthetic samples "
                         f"(got {len(real)} and {len(synthetic)}); leave it out with --metrics")


def c2st_auc(real: np.ndarray, synthetic: np.ndarray, classifier: str = "gbm", seed: int = 0) -> float:
    """Held-out AUC of a classifier separating ``real`` (label 0) from ``synthetic`` (label 1)."""
    from sklearn.metrics import roc_auc_score
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
    return float(roc_auc_score(y_te, proba))
