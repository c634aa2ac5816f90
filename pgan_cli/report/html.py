"""The audit report as one self-contained HTML page: inline CSS, every figure a PNG data URI,
no script, no external URL, readable offline and printable.

Sections (ids in :data:`SECTIONS`, each with a short "how to read this"): the verdict and gates;
membership-inference attacks with ROC curves on a log-scale FPR axis (Carlini et al., S&P 2022:
the low-FPR region is the honest one); distances to the training data (DCR histograms of
synthetic->members against holdout->members, Chen et al. CCS 2020); a 2-D map (PCA, or UMAP) of
real against synthetic per class; synthetic sample grids; training curves; MMD, fidelity and
utility tables; provenance. Real member images appear only with ``show_real_images``, in a
closest-pairs section.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pgan_cli.report.measure import MAX_MAP_POINTS, PageData
from pgan_cli.metrics.fidelity import KEY_C2ST_AUC, KEY_C2ST_COPYING, KEY_C2ST_COPYING_TEST
from pgan_cli.report.page import (Raw, css, esc, figure_png, flatten, fmt, image_png, img_tag, na, new_figure,
                                  section, table, tight_layout)
from pgan_cli.report.measure import labels_and_names as _labels_names
from pgan_cli.report.results import KIND_KNN, KIND_SCORES, KIND_TRAIN_LOG, KIND_UTILITY, ResultFile, knn_pair
from pgan_cli.report.summary import KEY_ATTACKS, KEY_DISTANCES, KEY_FIDELITY, KEY_PRIVACY, KEY_UTILITY

SECTIONS = ("verdict", "attacks", "distances", "exposure", "map", "samples", "training", "fidelity", "utility",
            "provenance")
SECTION_PAIRS = "closest-pairs"
SECTION_COMPARISON = "comparison"
SECTION_DP_AUDIT = "dp-audit"
SECTION_EXPOSURE = "exposure"
GRID_PER_CLASS = 8
REAL_COLOUR, SYNTHETIC_COLOUR = "#1f77b4", "#ff7f0e"
MAX_GRID_CLASSES = 10

def _by_kind(results: list[ResultFile], kind: str) -> list[ResultFile]:
    return [r for r in results if r.kind == kind]


# ---- sections ---------------------------------------------------------------------------------
def verdict_section(summary: dict[str, Any], gate_rows: list[dict[str, Any]], verdict: str) -> str:
    cls = {"pass": "pass", "fail": "fail"}.get(verdict, "none")
    label = {"pass": "PASS", "fail": "FAIL", "no gates": "NO GATES"}.get(verdict, "FAIL")
    failed = sum(1 for g in gate_rows if not g["passed"])
    text = (f"{len(gate_rows)} gates, {failed} failed" if gate_rows
            else f"nothing was checked (preset {summary.get('preset', 'none')}, no --gate)")
    body = [f'<p><span class="verdict {cls}">{label}</span> <span class="meta">{esc(text)}</span></p>',
            copying_warning(summary.get(KEY_FIDELITY))]
    if gate_rows:
        rows = [[g["gate"], g["path"], f"missing ({g['missing']})" if g.get("missing") else g["value"],
                 "pass" if g["passed"] else "FAIL", g["source"]] for g in gate_rows]
        classes = [["", "", "num", "pass" if g["passed"] else "fail", ""] for g in gate_rows]
        body.append(table(rows, ["gate", "figure", "value", "result", "from"], classes))
    return section("verdict", "".join(body))


def _roc_points(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(truth, scores)
    return fpr, tpr


def attacks_section(summary: dict[str, Any], results: list[ResultFile]) -> str:
    attacks = summary.get(KEY_PRIVACY, {}).get(KEY_ATTACKS, {})
    scores = _by_kind(results, KIND_SCORES)
    if not attacks and not scores:
        return section("attacks", na("give the --json output of pgan attack (and its --scores file for ROC curves)"))
    body = []
    if attacks:
        rows = []
        for name, a in attacks.items():
            tpr = a.get("tpr_at_fpr") or {}
            rows.append([name, "black" if a.get("black_box") else "white", a.get("auc"), a.get("auc_ci"),
                         tpr.get("0.001"), tpr.get("0.01"), tpr.get("0.1"), a.get("advantage"),
                         a.get("balanced_accuracy"), a.get("epsilon_lower_bound"), a.get("space")])
        body.append(table(rows, ["attack", "box", "AUC", "95% CI", "TPR@0.1%", "TPR@1%", "TPR@10%",
                                 "advantage", "bal. acc.", "eps lower bound", "space"]))
    from pgan_cli.attacks.evaluation import auc

    panels = max(1, len(scores))
    fig = new_figure(min(15.0, 6.5 * panels), 5)
    drawn = 0
    grid = np.logspace(-4, 0, 50)
    for p, res in enumerate(scores):
        ax = fig.add_subplot(1, panels, p + 1)
        truth = res.data["truth"]
        n_neg = int((truth == 0).sum())
        for name, sc in res.data["scores"].items():
            fpr, tpr = _roc_points(truth, sc)
            ax.step(np.maximum(fpr, 0.5 / max(n_neg, 1)), tpr, where="post",
                    label=f"{name} (AUC {auc(sc, truth):.3f})")
            drawn += 1
        _roc_axes(ax, grid, 0.5 / max(n_neg, 1), f"{res.space} space ({res.path.name})")
    if not scores:  # no scores file: the operating points of the JSON
        ax = fig.add_subplot(1, 1, 1)
        for name, a in attacks.items():
            tpr = a.get("tpr_at_fpr") or {}
            pts = sorted((float(k), v) for k, v in tpr.items() if isinstance(v, (int, float)) and _isfloat(k))
            if pts:
                ax.plot([q[0] for q in pts], [q[1] for q in pts], "o-", label=f"{name} (points from the JSON)")
                drawn += 1
        _roc_axes(ax, grid, 1e-3, "operating points")
    if drawn:
        tight_layout(fig)
        body.append("<h3>ROC curves</h3>" + img_tag(figure_png(fig), "ROC curves per attack, log-scale FPR"))
    else:
        body.append(na("ROC curves need the --scores file of pgan attack"))
    return section("attacks", "".join(body))


def _roc_axes(ax, grid: np.ndarray, xmin: float, title: str) -> None:
    ax.plot(grid, grid, "k--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlim(max(1e-4, xmin), 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (log scale)")
    ax.set_ylabel("true-positive rate")
    ax.set_title(f"ROC, members against holdout: {title}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")


def _isfloat(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def distances_section(summary: dict[str, Any], results: list[ResultFile], dcr_sets: dict[str, np.ndarray]) -> str:
    privacy = summary.get(KEY_PRIVACY, {})
    body = []
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    for res in _by_kind(results, KIND_KNN):
        q, r = knn_pair(res)
        groups.setdefault(res.space, []).append((f"{q} -> {r} ({res.path.name})", res.data["distances"][:, 0]))
    if not groups:
        for res in _by_kind(results, KIND_SCORES):
            for k, v in res.data.get("dcr", {}).items():
                groups.setdefault(res.space, []).append((f"{k} ({res.path.name})", v))
    if not groups and dcr_sets:
        groups["pixel"] = list(dcr_sets.items())
    if groups:
        fig = new_figure(min(15.0, 6.5 * len(groups)), 4)
        for i, (space, series) in enumerate(groups.items()):
            ax = fig.add_subplot(1, len(groups), i + 1)
            allv = np.concatenate([v for _, v in series])
            hi = float(np.percentile(allv, 99.5)) if len(allv) else 1.0
            bins = np.linspace(0, max(hi, 1e-9), 50)
            for label, d in series:
                ax.hist(np.clip(d, 0, hi), bins=bins, histtype="stepfilled", alpha=0.45, density=True, label=label)
            ax.set_xlabel(f"distance to the closest member ({space} space)")
            ax.set_ylabel("density")
            ax.set_title(f"DCR, {space} space: synthetic -> members against holdout -> members", fontsize=9)
            ax.legend(fontsize=7)
        tight_layout(fig)
        body.append(img_tag(figure_png(fig), "DCR histograms"))
    else:
        body.append(na("DCR histograms need knn files (pgan knn synthetic members, pgan knn holdout "
                       "members), the scores file of pgan attack, or --members, --holdout and --synthetic"))
    dist_keys = [k for k in privacy if k.startswith(KEY_DISTANCES)]
    for k in dist_keys:
        shown = {key: v for key, v in privacy[k].items() if key != "details"}
        rows = [[p, v] for p, v in flatten(shown)]
        body.append(f"<h3>{esc(k)}</h3>" + table(rows, ["figure", "value"]))
        notes = (privacy[k].get("details") or {}).get("notes")
        if isinstance(notes, list):
            body.append("".join(f'<p class="meta">{esc(n)}</p>' for n in notes))
    if "nearest_neighbours" in privacy:
        rows = [[name, s["p5"], s["median"], s["mean"], s["n"]] for name, s in privacy["nearest_neighbours"].items()]
        body.append("<h3>Nearest-neighbour distances (knn files)</h3>"
                    + table(rows, ["query -> reference", "5th percentile", "median", "mean", "n"]))
    return section("distances", "".join(body))


def map_section(page: PageData) -> str:
    if page.map is None:
        return section("map", na(page.map_unavailable or "not measured"))
    m = page.map
    pm, ps, lm, ls, names, used = m.members, m.synthetic, m.member_labels, m.synthetic_labels, m.class_names, m.projection
    classes = list(range(len(names))) if lm is not None and ls is not None else []
    panels = [("all classes", None)] + [(names[c], c) for c in classes[:MAX_GRID_CLASSES]]
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(3.2 * cols, 3.0 * rows)
    for i, (title, c) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        mm = np.ones(len(pm), bool) if c is None else lm == c
        ms = np.ones(len(ps), bool) if c is None else ls == c
        ax.scatter(pm[mm, 0], pm[mm, 1], s=6, alpha=0.35, c=REAL_COLOUR, label="real (members)", linewidths=0)
        ax.scatter(ps[ms, 0], ps[ms, 1], s=6, alpha=0.35, c=SYNTHETIC_COLOUR, label="synthetic", linewidths=0)
        dens = m.densities.get(c)
        overlap = ""
        if dens is not None:
            for z, levels, colour in ((dens.real, dens.levels_real, REAL_COLOUR),
                                      (dens.synthetic, dens.levels_synthetic, SYNTHETIC_COLOUR)):
                if z is not None and len(set(levels)) == len(levels) > 0:
                    ax.contour(dens.x, dens.y, z, levels=levels, colors=colour, linewidths=(0.8, 1.4))
            if dens.overlap is not None:
                overlap = f", overlap {dens.overlap:.2f}"
        ax.set_title(f"{title} ({int(mm.sum())} real, {int(ms.sum())} synth.{overlap})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.legend(fontsize=7, markerscale=3)
    tight_layout(fig)
    note = (f'<p class="meta">Projection: {esc(used)}; up to {MAX_MAP_POINTS} points per set. Contours: '
            f'kernel densities (Gaussian, Scott\'s rule) enclosing 90% (thin) and 50% (thick) of each set; '
            f'overlap: the shared density mass, 1 for identical densities.</p>')
    return section("map", note + img_tag(figure_png(fig), "2-D map of real and synthetic records per class"))


def _grid_rows(bundle, seed: int) -> list[tuple[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    labels, names = _labels_names(bundle)
    rows = []
    for c in range(min(len(names), MAX_GRID_CLASSES)):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        pick = np.sort(rng.choice(idx, min(GRID_PER_CLASS, len(idx)), replace=False))
        rows.append((names[c], [bundle.samples[i] for i in pick]))
    return rows


def samples_section(synthetic, seed: int) -> str:
    if synthetic is None:
        return section("samples", na("give the --synthetic dataset file"))
    if synthetic.kind != "images":
        return section("samples", na(f"{synthetic.path} holds vectors, not images; the 2-D map shows them"))
    body = []
    for name, imgs in _grid_rows(synthetic, seed):
        tags = "".join(img_tag(image_png(x), f"synthetic {name}", "") for x in imgs)
        body.append(f'<div class="row"><div class="lab">class {esc(name)}</div><div class="grid">{tags}</div></div>')
    return section("samples", f'<p class="meta">{synthetic.n} synthetic records in {esc(synthetic.path.name)}; '
                              f'up to {GRID_PER_CLASS} per class, chosen at random.</p>' + "".join(body))


_CURVE_GROUPS = (("losses", ("loss",)), ("discriminator outputs", ("d_real", "d_fake")),
                 ("Wasserstein estimate", ("wasserstein",)), ("gradient norms", ("grad_norm", "gradient_penalty")),
                 ("privacy spent (epsilon)", ("epsilon",)), ("throughput (images/s)", ("images_per_s",)),
                 ("augmentation and R1", ("augment_p", "r1")))
_NOT_CURVES = {"step", "epoch", "wall_time", "time", "batch", "rank"}


def training_settings(synthetic) -> str:
    """The settings of the run that made the synthetic set, as ``pgan sample`` recorded them."""
    gen = (getattr(synthetic, "attrs", None) or {}).get("generator")
    if not isinstance(gen, dict):
        return ""
    from pgan_cli.gan.training.defaults import TRAINING_SETTINGS

    rows = [[k, ", ".join(map(str, gen[k])) if isinstance(gen[k], list) else gen[k]]
            for k in (*TRAINING_SETTINGS, "conditional", "step") if k in gen]
    return (f'<h3>Settings of the run that made {esc(synthetic.path.name)}</h3>'
            + table(rows, ["setting", "value"])) if rows else ""


def training_section(results: list[ResultFile], synthetic=None) -> str:
    logs = _by_kind(results, KIND_TRAIN_LOG)
    settings = training_settings(synthetic)
    if not logs:
        return section("training", settings + na("give the training log (pgan train --log train.jsonl)"))
    body = [settings]
    for res in logs:
        recs = res.data
        keys = sorted({k for r in recs for k, v in r.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in _NOT_CURVES})
        groups: list[tuple[str, list[str]]] = []
        used: set[str] = set()
        for title, pats in _CURVE_GROUPS:
            ks = [k for k in keys if k not in used and any(p in k for p in pats)]
            if ks:
                groups.append((title, ks))
                used.update(ks)
        rest = [k for k in keys if k not in used]
        if rest:
            groups.append(("other", rest))
        if not groups:
            body.append(na(f"{res.path.name} has no numeric series"))
            continue
        cols = min(3, len(groups))
        rows = math.ceil(len(groups) / cols)
        fig = new_figure(4.2 * cols, 3.0 * rows)
        steps = np.array([r.get("step", i) for i, r in enumerate(recs)], dtype=np.float64)
        for i, (title, ks) in enumerate(groups):
            ax = fig.add_subplot(rows, cols, i + 1)
            for k in ks:
                y = np.array([r.get(k, np.nan) if isinstance(r.get(k), (int, float)) else np.nan for r in recs],
                             dtype=np.float64)
                ax.plot(steps, y, lw=1.2, label=k)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("generator step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        tight_layout(fig)
        body.append(f'<p class="meta">{esc(res.path.name)}: {len(recs)} records, last step '
                    f'{esc(recs[-1].get("step"))}.</p>' + img_tag(figure_png(fig), f"training curves {res.path.name}"))
    return section("training", "".join(body))


def copying_warning(fid: dict[str, Any] | None) -> str:
    """A C2ST AUC significantly below 0.5 read as what it is: synthetic records that copy the real
    ones (the classifier learns them backwards), not ideal fidelity (``pgan fidelity``'s test)."""
    if not fid or fid.get(KEY_C2ST_COPYING) is not True:
        return ""
    test = fid.get(KEY_C2ST_COPYING_TEST) or {}
    return (f'<p class="warn"><b>Copying signal:</b> the classifier two-sample AUC is {fmt(fid.get(KEY_C2ST_AUC))}, '
            f'significantly below 0.5 (one-sided p = {fmt(test.get("p_value"))}): the classifier separates real '
            f'from synthetic backwards, which happens when synthetic records copy real ones. This is not ideal '
            f'fidelity; see the distances and the members most at risk.</p>')


def fidelity_section(summary: dict[str, Any]) -> str:
    fid = summary.get(KEY_FIDELITY)
    if not fid:
        return section("fidelity", na("give the --json output of pgan mmd and pgan fidelity"))
    body = [copying_warning(fid)]
    mmd_keys = [k for k in fid if k.startswith("mmd")]
    for k in mmd_keys:
        m = fid[k]
        rows = [[k, m.get("mmd2"), m.get("p_value"), m.get("kernel"), m.get("bandwidth"), m.get("estimator"),
                 m.get("permutations"), m.get("n_x"), m.get("n_y")]]
        body.append(table(rows, ["test", "MMD²", "p-value", "kernel", "bandwidth", "estimator",
                                 "permutations", "n real", "n synthetic"]))
    curves = {k: v for k, v in fid.items() if k.startswith("alpha_beta_curves") and isinstance(v, dict)}
    rest = {k: v for k, v in fid.items() if k not in mmd_keys and k not in curves}
    if rest:
        body.append("<h3>Fidelity and diversity metrics</h3>" + table([[p, v] for p, v in flatten(rest)],
                                                                       ["metric", "value"]))
    for k, c in curves.items():
        lv, ap, br = c.get("levels"), c.get("alpha_precision"), c.get("beta_recall")
        if not (isinstance(lv, list) and isinstance(ap, list) and isinstance(br, list) and len(lv) == len(ap) == len(br)):
            continue
        fig = new_figure(5.5, 4)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
        ax.plot(lv, ap, label="alpha-precision")
        ax.plot(lv, br, label="beta-recall")
        ax.set_xlabel("alpha / beta (share of the support)")
        ax.set_ylabel("share of records inside")
        ax.set_title(f"alpha-precision and beta-recall curves ({k})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        body.append(img_tag(figure_png(fig), "alpha-precision and beta-recall curves"))
    return section("fidelity", "".join(body))


def utility_section(summary: dict[str, Any], results: list[ResultFile]) -> str:
    util = summary.get(KEY_UTILITY)
    if not util:
        return section("utility", na("give the --json output of pgan utility"))
    body = []
    sides = [k for k in ("trtr", "tstr") if isinstance(util.get(k), dict)]
    if sides:
        metrics = [m for m in ("accuracy", "balanced_accuracy", "auc", "macro_auc")
                   if any(isinstance(util[s].get(m), (int, float)) for s in sides)]
        rows = [[s.upper()] + [util[s].get(m) for m in metrics] for s in sides]
        body.append(table(rows, ["train / test"] + metrics))
    rest = {k: v for k, v in util.items() if k not in sides}
    if rest:
        body.append(table([[p, v] for p, v in flatten(rest)], ["figure", "value"]))
    for res in _by_kind(results, KIND_UTILITY):
        for s in ("trtr", "tstr"):
            cm = (res.data.get(s) or {}).get("confusion_matrix")
            if isinstance(cm, list) and cm and all(isinstance(r, list) for r in cm) and len(cm) <= 20:
                rows = [[str(i)] + list(r) for i, r in enumerate(cm)]
                body.append(f"<h3>Confusion matrix, {s.upper()} (rows: true class)</h3>"
                            + table(rows, [""] + [str(j) for j in range(len(cm[0]))]))
    return section("utility", "".join(body))


def provenance_section(summary: dict[str, Any], results: list[ResultFile]) -> str:
    rows = []
    for rec in summary.get("inputs", []):
        rows.append([Raw(f"<code>{esc(rec['path'])}</code>"), rec.get("kind"),
                     Raw(f"<code>{esc(rec.get('sha256', ''))}</code>"),
                     Raw(f"<code>{esc(rec.get('command') or '')}</code>")])
    body = [table(rows, ["input", "kind", "SHA-256", "command that made it"])]
    privacy = summary.get(KEY_PRIVACY, {})
    dp = privacy.get("dp")
    if dp:
        body.append("<h3>Differential privacy (DP-SGD)</h3>" + table([[k, v] for k, v in flatten(dp)], ["", "value"]))
    else:
        body.append('<p class="meta">No DP-SGD record in the inputs\' provenance: the generator was '
                    'trained without differential privacy (epsilon = infinity).</p>')
    if privacy.get("ldp"):
        body.append("<h3>Local DP of the training data</h3>"
                    + table([[k, v] for k, v in flatten(privacy["ldp"])], ["", "value"]))
    if summary.get("seeds"):
        body.append("<h3>Seeds</h3>" + table([[k, v] for k, v in summary["seeds"].items()], ["command", "seed"]))
    if summary.get("versions"):
        body.append("<h3>Versions</h3>" + table([[k, v] for k, v in summary["versions"].items()], ["package", "version"]))
    return section("provenance", "".join(body))


def comparison_section(summary: dict[str, Any]) -> str:
    from pgan_cli.report.curve import privacy_utility_figure

    runs = summary["comparison"]["runs"]
    rows = [[p["label"], p["epsilon"] if p["epsilon"] is not None else "no DP", p.get("delta"), p["utility"],
             p["attack_auc"]] for p in runs]
    fig = privacy_utility_figure(runs)
    return section(SECTION_COMPARISON, img_tag(figure_png(fig), "utility and attack AUC against epsilon")
                   + table(rows, ["audit", "epsilon", "delta", "utility", "attack AUC"]))


def dp_audit_section(summary: dict[str, Any]) -> str:
    """The claimed epsilon beside the one-run audit's lower bound (one row per dp-audit result)."""
    audits = {k: v for k, v in (summary.get(KEY_PRIVACY) or {}).items() if k.startswith("dp_audit")}
    rows = []
    for key, a in audits.items():
        verdict = ("EXCEEDS THE CLAIM" if a.get("exceeds_claim") else
                   "below the claim" if a.get("claimed_epsilon") is not None else "no claim (trained without DP)")
        rows.append([key, a.get("claimed_epsilon"), a.get("claimed_delta"), a.get("epsilon_lower_bound"),
                     a.get("confidence"), f"{a.get('correct')} of {a.get('guesses')}", a.get("canaries"),
                     a.get("score"), verdict])
    return section(SECTION_DP_AUDIT, table(rows, ["audit", "claimed epsilon", "claimed delta", "audited epsilon >=",
                                                   "confidence", "correct guesses", "canaries", "score", "result"]))


def exposure_section(page: PageData, members=None, synthetic=None, show_real_images: bool = False) -> str:
    ex = page.exposure
    if ex is None or ex.unavailable or not ex.attacks:
        return section(SECTION_EXPOSURE, na(ex.unavailable if ex and ex.unavailable else "not measured"))
    from pgan_cli.report.exposure import FLAG_P

    images = show_real_images and members is not None and synthetic is not None and members.kind == "images"
    summary_rows = [[a.attack, a.space, a.n_members, a.singled_out, round(a.expected_by_chance, 1),
                     ", ".join(str(m.row) for m in a.members if m.p_value <= FLAG_P) or "none"]
                    for a in ex.attacks]
    body = [table(summary_rows, ["attack", "space", "members", f"singled out (p <= {FLAG_P:g})",
                                 "expected by chance", "rows singled out, highest first"])]
    for a in ex.attacks:
        rows, classes = [], []
        for rank, m in enumerate(a.members, 1):
            row = [rank, m.row, m.score, m.p_value, m.distance, m.nearest_synthetic]
            if images and m.distance is not None:
                row.append(Raw(img_tag(image_png(members.samples[m.row]), f"member {m.row}", "thumb")
                               + img_tag(image_png(synthetic.samples[m.nearest_synthetic]),
                                         f"synthetic {m.nearest_synthetic}", "thumb")))
            rows.append(row)
            classes.append(["num", "num", "num", "fail" if m.p_value <= FLAG_P else "num", "num", "num", ""])
        head = ["rank", "member row", "score", "p vs non-members", "distance to nearest synth.", "synthetic row"]
        if images:
            head.append("member / nearest synthetic")
        body.append(f"<h3>{esc(a.attack)} ({esc(a.space)} space, {esc(a.source)})</h3>" + table(rows, head, classes))
    body.append(f'<p class="meta">{esc(ex.distance_note)}.</p>' if ex.distance_note else "")
    return section(SECTION_EXPOSURE, "".join(body))


def pairs_section(page: PageData, members, synthetic) -> str:
    if page.pairs is None:
        return section(SECTION_PAIRS, na(page.pairs_unavailable or "not measured"))
    cells = []
    for i, j, d in page.pairs:
        cells.append(f'<div class="pair"><div>{img_tag(image_png(synthetic.samples[i]), "synthetic", "")}'
                     f'{img_tag(image_png(members.samples[j]), "member", "")}</div>'
                     f'synthetic #{i} / member #{j}<br>distance {d:.3g}</div>')
    return section(SECTION_PAIRS, '<p class="meta">Left: synthetic; right: its closest member (pixel space).</p>'
                   f'<div class="pairs">{"".join(cells)}</div>')


def render(summary: dict[str, Any], results: list[ResultFile], page: PageData, *, members=None, synthetic=None,
           show_real_images: bool = False, seed: int = 0, title: str = "pgan audit report") -> str:
    """The whole page as a string, drawn from the summary, the results and what
    :func:`pgan_cli.report.measure.measure_page` measured. ``members``/``synthetic`` are DataBundles or None."""
    gate_rows = summary.get("gates", [])
    verdict = summary.get("verdict", "no gates")
    parts = [verdict_section(summary, gate_rows, verdict),
             attacks_section(summary, results),
             distances_section(summary, results, page.dcr_sets),
             exposure_section(page, members, synthetic, show_real_images),
             map_section(page),
             samples_section(synthetic, seed),
             training_section(results, synthetic),
             fidelity_section(summary),
             utility_section(summary, results),
             provenance_section(summary, results)]
    if show_real_images and members is not None and synthetic is not None:
        parts.insert(6, pairs_section(page, members, synthetic))
    if any(k.startswith("dp_audit") for k in summary.get(KEY_PRIVACY) or {}):
        parts.insert(2, dp_audit_section(summary))
    if summary.get("comparison"):
        parts.insert(1, comparison_section(summary))
    from pgan_cli import __version__
    from pgan_cli.provenance import timestamp

    when = timestamp(minutes=True)
    warn = ('<p class="meta"><b>This report contains real training images</b> (--show-real-images).</p>'
            if show_real_images else '<p class="meta">No real training image is shown in this report.</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{css()}</style></head><body><header><h1>{esc(title)}</h1>"
            f"<p class=\"meta\">pgan {esc(__version__)} &middot; {esc(when)} &middot; "
            f"{len(results)} result files</p>{warn}</header>" + "".join(parts) + "</body></html>\n")
