"""All fidelity metrics at once: what ``pgan fidelity`` runs.

Result keys (stable, top level): precision, recall, density, coverage (``prdc``),
alpha_precision, beta_recall (``alpha-beta``), frechet (``frechet``), c2st_auc, c2st_copying and
c2st_copying_test (``c2st``), and for toy mixtures modes_covered, modes_total, high_quality_fraction,
log_likelihood.
Metrics that were not selected are absent (never NaN, never 0 by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from pgan_cli.arrays import check_rows, check_same_space
from pgan_cli.errors import InputError
from pgan_cli.metrics.c2st import CLASSIFIERS as C2ST_CLASSIFIERS
from pgan_cli.params import DEFAULT_PRDC_K, MAX_K, Interval, Options, constrained

METRIC_GROUPS = ("prdc", "alpha-beta", "frechet", "c2st")
KEY_PRECISION, KEY_RECALL, KEY_DENSITY, KEY_COVERAGE = "precision", "recall", "density", "coverage"
KEY_ALPHA_PRECISION, KEY_BETA_RECALL = "alpha_precision", "beta_recall"
KEY_FRECHET, KEY_C2ST_AUC = "frechet", "c2st_auc"
# the held-out AUC significantly below 0.5: true/false, and the test behind it (metrics/c2st.py)
KEY_C2ST_COPYING, KEY_C2ST_COPYING_TEST = "c2st_copying", "c2st_copying_test"
KEY_MODES_COVERED, KEY_MODES_TOTAL = "modes_covered", "modes_total"
KEY_HIGH_QUALITY, KEY_LOG_LIKELIHOOD = "high_quality_fraction", "log_likelihood"


# Which way each headline figure is better (the contract every metric group declares):
# "higher" (1 is ideal), "lower" (0 is ideal), "half" (0.5 is ideal: a classifier at chance).
ORIENTATION = {"precision": "higher", "recall": "higher", "density": "higher", "coverage": "higher",
               "alpha_precision": "higher", "beta_recall": "higher", KEY_FRECHET: "lower", KEY_C2ST_AUC: "half"}


def parse_metrics(spec: str | None) -> list[str]:
    """``"prdc,c2st"`` -> ["prdc", "c2st"]; None or "all" -> every group."""
    if spec is None or spec.strip().lower() == "all":
        return list(METRIC_GROUPS)
    names = [s.strip().lower() for s in spec.split(",") if s.strip()]
    if not names:  # "" or ",": asking for no metric is a mistake, not a run with no figures
        raise InputError(f"--metrics {spec!r} names no metric; choose from {', '.join(METRIC_GROUPS)} or all")
    bad = [n for n in names if n not in METRIC_GROUPS]
    if bad:
        raise InputError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRIC_GROUPS)}")
    return list(dict.fromkeys(names))


@constrained(k=Interval(1, MAX_K), c2st_classifier=Options(C2ST_CLASSIFIERS))
def fidelity(real: np.ndarray, synthetic: np.ndarray, k: int = DEFAULT_PRDC_K, metrics: list[str] | None = None,
             seed: int = 0, mixture: Any = None, c2st_classifier: str = "gbm",
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compute the selected metric groups (and mode scores when ``mixture`` is given)."""
    from pgan_cli.metrics import alpha_beta, c2st, frechet, modes, prdc

    real = check_rows(real, "the real set", min_rows=2)
    synthetic = check_rows(synthetic, "the synthetic set", min_rows=2)
    check_same_space(real, synthetic, "the real set", "the synthetic set")
    metrics = list(METRIC_GROUPS) if metrics is None else metrics
    # validate everything first, so a bad input fails before any work (and any log line)
    if "prdc" in metrics:
        prdc.check_pair(real, synthetic, k)
    if "c2st" in metrics:
        c2st.check_inputs(real, synthetic, c2st_classifier)
    if mixture is not None:
        modes.check_dims(synthetic, mixture)
    say = log or (lambda s: None)
    out: dict[str, Any] = {}
    if "prdc" in metrics:
        say("precision/recall/density/coverage ...")
        out.update(prdc.prdc(real, synthetic, k))
    if "alpha-beta" in metrics:
        say("alpha-precision/beta-recall ...")
        out.update(alpha_beta.alpha_beta(real, synthetic))
    if "frechet" in metrics:
        say("Fréchet distance ...")
        out[KEY_FRECHET] = frechet.frechet_distance(real, synthetic)
    if "c2st" in metrics:
        say("classifier two-sample test ...")
        test = c2st.c2st_test(real, synthetic, c2st_classifier, seed)
        out[KEY_C2ST_AUC] = test.pop("auc")
        out[KEY_C2ST_COPYING] = test.pop("copying")
        out[KEY_C2ST_COPYING_TEST] = test
    if mixture is not None:
        out.update(modes.mode_scores(synthetic, mixture, real))
    return out


def copying_message(result: dict) -> str:
    """The human line for a C2ST AUC significantly below 0.5 (a copying signal, not an ideal score)."""
    t = result[KEY_C2ST_COPYING_TEST]
    return (f"C2ST AUC {result[KEY_C2ST_AUC]:.3f} is significantly below 0.5 (one-sided p = {t['p_value']:.2g} "
            f"< {t['alpha']}): the synthetic set looks like a copy of the real one (a real record and its copy "
            f"on opposite sides of the classifier's train/test split get the wrong label); this is a copying "
            f"signal, not an ideal score")


def _space(path) -> str:
    """What space the vectors of a file are in (for the report: FID only in Inception space)."""
    from pgan_cli.provenance import read_provenance

    if Path(path).suffix.lower() == ".npy":
        prov = read_provenance(path) or {}
        params = prov.get("params") or {}
        model = params.get("model") or params.get("embedding") or params.get("space")
        return f"embedding ({model})" if model else "vectors from an NPY file"
    return "input space (flattened samples of the dataset file)"


def _mixture(path):
    """The true toy mixture stored by `pgan data gaussian`, or None."""
    if Path(path).suffix.lower() == ".npy":
        return None
    from pgan_cli.dataset import Dataset

    with Dataset(path, check_values=False) as ds:
        return ds.attrs.get("mixture")


def fidelity_files(real, synthetic, *, k: int = DEFAULT_PRDC_K, metrics: list[str] | None = None, seed: int = 0,
                   c2st_classifier: str = "gbm") -> dict:
    """``pgan fidelity``: the figures of two files, as the stamped JSON the command prints."""
    from pgan_cli import console, formats
    from pgan_cli.samples import load_vectors
    from pgan_cli.provenance import make_provenance

    chosen = metrics if metrics is not None else parse_metrics(None)
    x = load_vectors(real, "real set")
    y = load_vectors(synthetic, "synthetic set")
    mixture = _mixture(real) or _mixture(synthetic)
    result = fidelity(x, y, k=k, metrics=chosen, seed=seed, mixture=mixture,
                      c2st_classifier=c2st_classifier, log=console.log)
    if result.get(KEY_C2ST_COPYING):
        console.warn(copying_message(result))
    result.update({"n_real": len(x), "n_synthetic": len(y), "k": k, "dim": int(x.shape[1]),
                   "metrics": chosen, "space": _space(real),
                   "frechet_note": "Fréchet distance of Gaussian fits in this space (FID only in Inception space)",
                   "provenance": make_provenance([real, synthetic], seed=seed, k=k, metrics=chosen,
                                                 c2st_classifier=c2st_classifier)})
    return formats.stamped(formats.FIDELITY, result)
