"""Clustering without labels, and how well the clusters recover the labels when a file has them
(``pgan cluster``; the k-means baseline of ``pgan utility --kmeans``).

Methods:

- ``kmeans``: scikit-learn's ``KMeans`` (Lloyd's algorithm, k-means++ seeding, the best of
  ``n_init = 10`` runs by inertia) on the flattened samples, as they are. The one k-means of pgan:
  :func:`kmeans_assign` also fits ``pgan utility --kmeans`` (docs/cluster.md).
- ``iic``: Invariant Information Clustering (Ji, Henriques & Vedaldi, "Invariant Information
  Clustering for Unsupervised Image Classification and Segmentation", ICCV 2019). A small net
  Φ ends in softmax heads; for a row x and a random perturbation x' = g(x) it maximises the
  mutual information between the cluster assignments z = Φ(x) and z' = Φ(x'). Over a batch,
  the joint is P = (1/n) Σ Φ(x) Φ(x')^T, symmetrised (P + P^T) / 2 as in the paper, and the
  loss is -I(z, z') = -Σ_cc' P_cc' ln(P_cc' / (P_c P_c')) (eq. 3), written as the reference
  code writes it with lambda = 1: -Σ P_cc' (ln P_cc' - λ ln P_c - λ ln P_c'), every
  probability clamped at machine epsilon. Maximising I(z, z') = H(z) - H(z | z') rewards
  confident, identical assignments of x and x' and, through H(z), balanced clusters. As in the
  paper: a main head with k clusters and an auxiliary overclustering head with ``overcluster``
  x k (5 k by default), trained alternately, one pass over the data each per epoch (Adam,
  learning rate 1e-3 for images, 1e-2 for vectors); each head has ``heads`` sub-heads
  (independently initialised copies, the loss averaged over them) and the main head's sub-head
  with the lowest mean loss over the last epoch gives the clusters (the paper's selection by
  lowest loss). Each row is repeated ``repeats`` times per batch with a fresh perturbation (the
  paper's repeated sampling of g). Perturbations: images get a random affine map (rotation
  ±20°, scale ±15%, shear ±0.2, translation ±15% of the side; the background is the image's
  minimum value) and Gaussian pixel noise (sigma 0.1 of [-1, 1]); vectors are standardised per
  feature and the net is a two-layer MLP: g adds Gaussian noise (sigma 0.1) to the input and
  drops hidden units of the first layer (p = 0.1; dropping one of a few input features would
  change the row itself, e.g. a 2-D point).

Scores against labels: the Hungarian-matched accuracy (the assignment of clusters to classes
maximising agreement, Kuhn 1955, ``scipy.optimize.linear_sum_assignment``; with k clusters and
K classes min(k, K) pairs are matched and a row of an unmatched cluster counts as wrong), the
normalised mutual information (Strehl & Ghosh 2002, arithmetic-mean normalisation, scikit-learn's
default) and the adjusted Rand index (Hubert & Arabie 1985), both from ``sklearn.metrics``.

The file ``pgan cluster -o`` writes (``pgan-clusters``, docs/FORMAT.md "Clusters") is written
by :func:`write_clusters` and read by :func:`read_clusters`, nowhere else.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pgan_cli import formats
from pgan_cli.errors import FormatError, InputError
from pgan_cli.params import (DEFAULT_CLUSTERS, DEFAULT_IIC_BATCH, DEFAULT_IIC_EPOCHS, DEFAULT_IIC_HEADS,
                             DEFAULT_IIC_OVERCLUSTER, DEFAULT_IIC_REPEATS, MAX_CLUSTERS, Interval, Options,
                             constrained)

METHODS = ("kmeans", "iic")
KMEANS_INIT = 10  # k-means runs, the best by inertia (scikit-learn's n_init)
CLUSTERS_VERSION = 1  # layout of the pgan-clusters file
KIND_CLUSTERS = "clusters"
EPS = sys.float_info.epsilon  # the reference IIC code's clamp
NOISE = 0.1    # sigma of g's Gaussian noise (pixels in [-1, 1]; standardised features)
DROPOUT = 0.1  # g's dropout of hidden units, vectors


# ---- k-means: the one implementation (pgan cluster, pgan utility --kmeans) --------------------
def kmeans_assign(x: np.ndarray, k: int, seed: int = 0, *, predict: np.ndarray | None = None,
                  info: dict | None = None) -> np.ndarray:
    """k-means with ``k`` clusters fitted on the rows of ``x`` (flattened, float64); the cluster of
    every row of ``predict`` (of ``x`` itself when None). ``info`` receives inertia and iterations.
    One OpenMP thread: the fit is then the same on every machine for a seed."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x) < k:
        raise InputError(f"{len(x)} rows are fewer than the {k} clusters asked for")
    with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=KMEANS_INIT, random_state=seed).fit(x)
        out = km.predict(np.asarray(predict, dtype=np.float64).reshape(len(predict), -1)) \
            if predict is not None else km.labels_
    if info is not None:
        info.update(inertia=float(km.inertia_), iterations=int(km.n_iter_), n_init=KMEANS_INIT,
                    distinct_clusters_found=not any(issubclass(w.category, ConvergenceWarning) for w in caught))
    return np.asarray(out, dtype=np.int64)


# ---- scores -------------------------------------------------------------------------------------
def hungarian_match(clusters: np.ndarray, labels: np.ndarray, k: int | None = None) -> tuple[list, float]:
    """The cluster-to-class map maximising agreement (``mapping[c]`` = class of cluster c, None for
    a cluster left unmatched when there are more clusters than classes) and the accuracy it gives."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels = np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    n_clusters = max(int(k or 0), int(clusters.max()) + 1)
    counts = np.zeros((n_clusters, int(labels.max()) + 1), dtype=np.int64)  # clusters x classes
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    mapping: list = [None] * n_clusters
    for r, c in zip(rows, cols):
        mapping[int(r)] = int(c)
    return mapping, float(counts[rows, cols].sum() / len(labels))


def hungarian_accuracy(clusters: np.ndarray, labels: np.ndarray, k: int | None = None) -> float:
    """Clustering accuracy: the share of rows whose cluster maps to their class (Hungarian map)."""
    return hungarian_match(clusters, labels, k)[1]


def clustering_scores(clusters: np.ndarray, labels: np.ndarray, k: int) -> dict[str, Any]:
    """accuracy (Hungarian), nmi, ari, mapping (cluster -> class) and num_classes."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    mapping, acc = hungarian_match(clusters, labels, k)
    return {"accuracy": acc, "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters)), "mapping": mapping,
            "num_classes": int(labels.max()) + 1}


# ---- IIC ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IICConfig:
    """IIC's settings (the module docstring); ``width`` is the first layer's channels (images) or a
    quarter of the hidden units (vectors)."""

    epochs: int = DEFAULT_IIC_EPOCHS
    heads: int = DEFAULT_IIC_HEADS              # sub-heads per head
    overcluster: int = DEFAULT_IIC_OVERCLUSTER  # the overclustering head has overcluster x k outputs (0: none)
    batch_size: int = DEFAULT_IIC_BATCH         # distinct rows per batch
    repeats: int = DEFAULT_IIC_REPEATS          # perturbations of each row per batch
    lr: float | None = None  # Adam; None: 1e-3 for images, 1e-2 for vectors (BENCHMARKS.md, "Clustering")
    width: int = 16


def iic_loss(z, zt):
    """Ji et al. eq. 3 with lambda = 1: -I(z, z') of the symmetrised joint of two (n, k) softmax
    outputs; ranges from 0 (independent) down to -ln k (a perfect, balanced clustering)."""
    import torch

    k = z.shape[1]
    p = (z.unsqueeze(2) * zt.unsqueeze(1)).sum(0)
    p = (p + p.t()) / 2
    p = p / p.sum()
    p_i = p.sum(1).view(k, 1).expand(k, k).clamp(min=EPS)
    p_j = p.sum(0).view(1, k).expand(k, k).clamp(min=EPS)
    p = p.clamp(min=EPS)
    return -(p * (torch.log(p) - torch.log(p_j) - torch.log(p_i))).sum()


def _net(sample_shape: tuple[int, ...], k: int, cfg: IICConfig):
    """Trunk (convolutions for images, an MLP for vectors) and the two heads of sub-heads."""
    import torch
    from torch import nn

    if len(sample_shape) == 3:
        c, h, w = sample_shape
        ch, layers = cfg.width, [nn.Conv2d(c, cfg.width, 3, padding=1), nn.BatchNorm2d(cfg.width), nn.ReLU()]
        side = max(h, w)
        while side > 2:  # conv, batch norm, ReLU, 2x2 max pool, doubling channels up to 8 x width
            nxt = min(2 * ch, 8 * cfg.width)
            layers += [nn.Conv2d(ch, nxt, 3, padding=1), nn.BatchNorm2d(nxt), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            ch, side = nxt, -(-side // 2)
        trunk, rest = nn.Sequential(*layers, nn.Flatten()), None
    else:  # two layers; the perturbed branch drops hidden units of the first (DROPOUT)
        hidden = 4 * cfg.width
        trunk = nn.Sequential(nn.Linear(sample_shape[0], hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        rest = nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
    features = 4 * cfg.width if rest is not None else _flat_features(trunk, sample_shape)

    class IICNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk, self.rest = trunk, rest
            self.main = nn.ModuleList(nn.Linear(features, k) for _ in range(cfg.heads))
            self.over = nn.ModuleList(nn.Linear(features, cfg.overcluster * k) for _ in range(cfg.heads)
                                      ) if cfg.overcluster else None

        def forward(self, x, head: str = "main", dropout_gen=None):
            f = self.trunk(x)
            if self.rest is not None:
                if dropout_gen is not None:  # part of g for vectors: inverted dropout, seeded
                    keep = torch.rand(f.shape, generator=dropout_gen, device=f.device) >= DROPOUT
                    f = f * keep / (1 - DROPOUT)
                f = self.rest(f)
            return [torch.softmax(sub(f), 1) for sub in (self.main if head == "main" else self.over)]

    return IICNet()


def _flat_features(trunk, sample_shape: tuple[int, ...]) -> int:
    import torch

    with torch.no_grad():
        trunk.eval()
        features = trunk(torch.zeros(1, *sample_shape)).shape[1]
        trunk.train()
    return int(features)


def perturb(x, gen, images: bool):
    """g(x) on the input: a random affine map and pixel noise (images), Gaussian noise (standardised
    vectors, whose perturbation also drops hidden units in the net)."""
    import torch
    import torch.nn.functional as F

    n, dev = len(x), x.device

    def u(*shape):  # uniform in [-1, 1)
        return torch.rand(*shape, generator=gen, device=dev) * 2 - 1

    if not images:
        return x + NOISE * torch.randn(x.shape, generator=gen, device=dev)
    angle, scale, shear, shift = u(n) * math.radians(20), 1 + 0.15 * u(n), 0.2 * u(n), 0.15 * u(n, 2)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale + shear
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    low = x.amin(dim=(1, 2, 3), keepdim=True)  # the background fills what the map uncovers
    out = F.grid_sample(x - low, grid, align_corners=False, padding_mode="zeros") + low
    return out + NOISE * torch.randn(out.shape, generator=gen, device=dev)


def iic_assign(samples: np.ndarray, k: int, seed: int = 0, device: str = "cpu", cfg: IICConfig = IICConfig(),
               progress: Callable | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Train IIC on ``samples`` ((N, C, H, W) images or (N, D) vectors) and return each row's
    cluster with what training found (the chosen sub-head and every sub-head's loss).
    ``progress(n, info)`` is called after every step."""
    import torch

    images = samples.ndim == 4
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)
    if not images:  # standardise features, so noise and dropout mean the same on every column
        x = x.reshape(len(x), -1)
        x = (x - x.mean(0)) / x.std(0).clamp(min=1e-6)
    torch.manual_seed(seed)
    net = _net(tuple(x.shape[1:]), k, cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=iic_lr(cfg, images))
    order_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    n, batch = len(x), min(cfg.batch_size, len(x))
    phases = ["over", "main"] if cfg.overcluster else ["main"]
    last_losses = np.zeros(cfg.heads)
    net.train()
    for epoch in range(cfg.epochs):
        for head in phases:  # the heads alternate, one pass over the data each (Ji et al. 2019)
            order = torch.randperm(n, generator=order_gen).to(device)
            sums, steps = np.zeros(cfg.heads), 0
            for s in range(0, n, batch):
                idx = order[s:s + batch]
                if len(idx) < 2:  # batch norm needs two rows
                    continue
                xb = x[idx].repeat(cfg.repeats, *([1] * (x.dim() - 1)))
                z = net(xb, head)
                zt = net(perturb(xb, noise_gen, images), head, dropout_gen=None if images else noise_gen)
                losses = torch.stack([iic_loss(a, b) for a, b in zip(z, zt)])
                opt.zero_grad()
                losses.mean().backward()
                opt.step()
                sums += losses.detach().cpu().numpy()
                steps += 1
                if progress is not None:
                    progress(1, f"epoch {epoch + 1} {head} loss {float(losses.detach().mean()):.3f}")
            if head == "main":
                last_losses = sums / max(steps, 1)
    best = int(np.argmin(last_losses))
    net.eval()
    with torch.no_grad():
        assign = torch.cat([net(x[s:s + 1024], "main")[best].argmax(1) for s in range(0, n, 1024)])
    info = {"sub_head": best, "sub_head_losses": [float(v) for v in last_losses],
            "loss": float(last_losses[best]), "loss_bound": -math.log(k)}
    return assign.cpu().numpy().astype(np.int64), info


def iic_lr(cfg: IICConfig, images: bool) -> float:
    """Adam's learning rate: the configured one, else 1e-3 for images, 1e-2 for vectors (an MLP on a
    few features merges neighbouring clusters at 1e-3 and escapes at 1e-2)."""
    return cfg.lr if cfg.lr is not None else (1e-3 if images else 1e-2)


def iic_steps(n: int, cfg: IICConfig) -> int:
    """Optimiser steps of one IIC run on n rows (for the progress bar)."""
    batch = min(cfg.batch_size, n)
    per_pass = sum(1 for s in range(0, n, batch) if min(batch, n - s) >= 2)
    return cfg.epochs * per_pass * (2 if cfg.overcluster else 1)


# ---- the file -------------------------------------------------------------------------------------
@dataclass
class Clusters:
    """A ``pgan-clusters`` file in memory."""

    assignments: np.ndarray  # int64 (N,), in 0..k-1
    sizes: np.ndarray        # int64 (k,)
    method: str
    k: int
    params: dict[str, Any]
    result: dict[str, Any]   # what the method found (k-means inertia, IIC's sub-head losses)
    scores: dict[str, Any] | None
    provenance: dict[str, Any] | None
    path: Path | None = None


def write_clusters(path: str | os.PathLike, c: Clusters) -> None:
    """Write ``c`` atomically (a temporary file renamed into place when complete)."""
    from pgan_cli import FORMAT_VERSION, __version__
    from pgan_cli.atomic import atomic_path, h5_create

    attrs = {"format": formats.CLUSTERS, "format_version": CLUSTERS_VERSION, "kind": KIND_CLUSTERS,
             "pgan_version": __version__, "dataset_format_version": FORMAT_VERSION, "method": c.method,
             "k": int(c.k), "n": int(len(c.assignments)),
             **{name: json.dumps(v, sort_keys=True, default=str)
                for name, v in (("params", c.params), ("result", c.result), ("provenance", c.provenance))},
             **({"scores": json.dumps(c.scores, sort_keys=True)} if c.scores is not None else {})}
    with atomic_path(path, suffix=".h5.tmp") as tmp:
        with h5_create(tmp) as f:
            f.create_dataset("assignments", data=np.asarray(c.assignments, dtype=np.int64))
            f.create_dataset("sizes", data=np.asarray(c.sizes, dtype=np.int64))
            for name, v in attrs.items():
                f.attrs[name] = v


def read_clusters(path: str | os.PathLike) -> Clusters:
    """Read a ``pgan-clusters`` file; anything else (another stamp, a version this pgan does not
    read, inconsistent arrays) is a :class:`FormatError` of one line naming the file."""
    import h5py

    from pgan_cli.dataset import decode_attr, open_h5
    from pgan_cli.files import check_input

    p = check_input(path, "clusters file")
    with open_h5(p) as f:  # links and external storage refused (docs/security.md)
        try:
            attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
            raise FormatError(f"{p}: its attributes cannot be read ({type(e).__name__}); re-run pgan cluster") from None
        stamp = attrs.get("format")
        if stamp != formats.CLUSTERS:
            what = f"format {stamp!r}" if stamp is not None else "no pgan format stamp"
            raise FormatError(f"{p} is not a pgan clusters file ({what}); write one with pgan cluster -o")
        version = attrs.get("format_version")
        if version != CLUSTERS_VERSION:
            raise FormatError(f"{p}: {formats.CLUSTERS} format_version {version!r} is not {CLUSTERS_VERSION}, "
                              f"the one this pgan reads; re-run pgan cluster")
        arrays = {}
        for name in ("assignments", "sizes"):
            ds = f.get(name)
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iu" or ds.shape[0] == 0:
                raise FormatError(f"{p}: '{name}' is missing or not a non-empty 1-D integer array; re-run pgan cluster")
            arrays[name] = np.asarray(ds[()], dtype=np.int64)
    k, a, sizes = attrs.get("k"), arrays["assignments"], arrays["sizes"]
    if isinstance(k, bool) or not isinstance(k, int) or len(sizes) != k or a.min() < 0 or a.max() >= k \
            or not np.array_equal(np.bincount(a, minlength=k), sizes):
        raise FormatError(f"{p}: assignments, sizes and k = {k!r} disagree; re-run pgan cluster")
    dicts = {name: attrs.get(name) for name in ("params", "result", "scores", "provenance")}
    for name, v in dicts.items():
        if v is not None and not isinstance(v, dict):
            raise FormatError(f"{p}: attribute '{name}' is not a JSON object; re-run pgan cluster")
    return Clusters(assignments=a, sizes=sizes, method=str(attrs.get("method")), k=k, params=dicts["params"] or {},
                    result=dicts["result"] or {}, scores=dicts["scores"], provenance=dicts["provenance"], path=p)


# ---- pgan cluster ---------------------------------------------------------------------------------
def _load(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples (as stored: images keep their shape) and labels (None for NPY or unlabelled files)."""
    from pgan_cli.dataset import read_dataset
    from pgan_cli.files import check_input
    from pgan_cli.samples import SampleReader

    p = check_input(path, "data file")
    if p.suffix.lower() == ".npy":
        with SampleReader(p, "data") as reader:
            return reader.read(), None
    b = read_dataset(p)
    return b.samples, b.labels


@constrained(method=Options(METHODS), k=Interval(2, MAX_CLUSTERS), epochs=Interval(1, 100_000),
             heads=Interval(1, 20), overcluster=Interval(0, 20), batch_size=Interval(2, 1 << 16),
             repeats=Interval(1, 64), width=Interval(1, 512))
def cluster_file(data: str | os.PathLike, output: str | os.PathLike, *, method: str = "kmeans",
                 k: int = DEFAULT_CLUSTERS, seed: int = 0, device: str = "cpu", epochs: int = DEFAULT_IIC_EPOCHS,
                 heads: int = IICConfig.heads, overcluster: int = IICConfig.overcluster,
                 batch_size: int = IICConfig.batch_size, repeats: int = IICConfig.repeats,
                 width: int = IICConfig.width) -> dict[str, Any]:
    """``pgan cluster``: cluster the rows of ``data`` into ``k`` clusters, write ``output``
    (``pgan-clusters``) and return what ``--json`` prints: sizes, the method's parameters and
    findings and, when the file has labels, accuracy (Hungarian), nmi, ari and the mapping."""
    from pgan_cli import console
    from pgan_cli.devices import parse_device, torch_device
    from pgan_cli.provenance import make_provenance, shown_path

    method = method.lower()
    parse_device(device)  # a misspelt device is refused for either method
    t0 = time.perf_counter()
    samples, labels = _load(data)
    n = len(samples)
    if n < k:
        raise InputError(f"{data} has {n} rows, fewer than the {k} clusters asked for (--k); give k <= {n}")
    result: dict[str, Any] = {}
    if method == "kmeans":
        dev = "cpu"  # scikit-learn's k-means runs on the CPU whatever --device says
        params: dict[str, Any] = {"n_init": KMEANS_INIT, "algorithm": "lloyd", "init": "k-means++"}
        console.log(f"k-means: {n} rows of dimension {int(np.prod(samples.shape[1:]))}, k = {k}")
        assignments = kmeans_assign(samples, k, seed, info=result)
        if not result["distinct_clusters_found"]:
            console.warn(f"k-means found fewer than {k} distinct clusters: {data} has fewer distinct rows than that")
    else:
        dev = torch_device(device)
        cfg = IICConfig(epochs=epochs, heads=heads, overcluster=overcluster, batch_size=batch_size,
                        repeats=repeats, width=width)
        params = {**asdict(cfg), "lr": iic_lr(cfg, samples.ndim == 4), "perturbation": "affine + noise" if samples.ndim == 4 else "noise + hidden dropout",
                  "lambda": 1.0}
        console.log(f"IIC: {n} rows {tuple(samples.shape[1:])}, k = {k}, overclustering "
                    f"{overcluster * k or 'none'}, {epochs} epochs on {dev}")
        with console.progress_task("iic", iic_steps(n, cfg)) as step:
            assignments, result = iic_assign(samples, k, seed, dev, cfg, progress=step)
    sizes = np.bincount(assignments, minlength=k)
    scores = clustering_scores(assignments, labels, k) if labels is not None else None
    prov = make_provenance([data], seed=seed, device=dev, method=method, k=k, **params)
    write_clusters(output, Clusters(assignments=assignments, sizes=sizes, method=method, k=k, params=params,
                                    result=result, scores=scores, provenance=prov))
    out: dict[str, Any] = {"output": shown_path(output), "method": method, "k": k, "n": n, "seed": seed,
                           "device": dev, "sizes": sizes.tolist(), "empty_clusters": int((sizes == 0).sum()),
                           "params": params, method: result}
    if scores is not None:
        out.update(scores)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
