"""``pgan utility``: is the synthetic data useful? Train on synthetic, test on real (TSTR) vs TRTR."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgan_cli import console
from pgan_cli.cli.frame import JsonOpt, JsonOutputOpt, SeedOpt, command, deliver
from pgan_cli.params import DEFAULT_PERMUTATIONS, Only, check_applies, defaults_of

APPLIES = {"epochs": Only("classifier", ("cnn",))}  # logreg and knn are not trained in epochs


@command("utility", stdout_json=True, help="Train on synthetic, test on real (TSTR) against train on real (TRTR).")
def utility_cmd(
    ctx: typer.Context,
    synthetic: Annotated[Path, typer.Option("--synthetic", help="Labelled synthetic dataset file.")],
    real_train: Annotated[Path, typer.Option("--members", help="Labelled real training set: the members (TRTR trains on it).")],
    test: Annotated[Path, typer.Option("--holdout", help="Labelled real test set: the holdout, never trained on.")],
    classifier: Annotated[str, typer.Option("--classifier", help="logreg (standardised), knn (k=5, FAISS) or cnn (small CNN, images).")] = "logreg",
    permutations: Annotated[int, typer.Option("--permutations", help="Permutations of Venkatraman's ROC test (1 to 100,000).")] = DEFAULT_PERMUTATIONS,
    kmeans: Annotated[bool, typer.Option("--kmeans", help="Add the unsupervised k-means + Hungarian baseline.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs of the cnn classifier.")] = 10,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    output: JsonOutputOpt = None,
) -> None:
    """Accuracy, balanced accuracy, macro one-vs-rest AUC and confusion matrices for TSTR and
    TRTR with the same classifier, and Venkatraman's paired test of whether the ROC curves differ.

    JSON: tstr.{accuracy,balanced_accuracy,auc,confusion_matrix}, trtr.{...},
    roc_test.p_value, kmeans.synthetic.accuracy (with --kmeans), provenance.

    Example: pgan utility --synthetic synthetic.h5 --members splits/train.h5 --holdout splits/holdout.h5 --json
    """
    from pgan_cli.metrics.utility import utility_files

    check_applies(APPLIES, ctx.params, defaults_of(utility_cmd))
    result = utility_files(synthetic, real_train, test, classifier=classifier, seed=seed,
                           permutations=permutations, kmeans=kmeans, epochs=epochs)
    if deliver(result, output, json_out):
        return
    t, r = result["tstr"], result["trtr"]
    auc = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"TSTR ({classifier}): accuracy {t['accuracy']:.3f}, balanced {t['balanced_accuracy']:.3f}, AUC {auc(t['auc'])}",
             f"TRTR ({classifier}): accuracy {r['accuracy']:.3f}, balanced {r['balanced_accuracy']:.3f}, AUC {auc(r['auc'])}",
             f"ROC curves differ (Venkatraman): p = {result['roc_test']['p_value']}"]
    if "kmeans" in result:
        lines.append(f"k-means baseline: synthetic {result['kmeans']['synthetic']['accuracy']:.3f}, "
                     f"real {result['kmeans']['real']['accuracy']:.3f}")
    console.emit("\n".join(lines))
