"""pgan embed and the embedding registry: every method from the CLI on digits, one fitted model
for several files, model files that reload identically (without pickle), and clean errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import assert_clean_error

from pgan_cli.dataset import read_dataset
from pgan_cli.samples import load_vectors
from pgan_cli.embeddings import load_model, make_embedding


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A small (untrained) conv checkpoint for 1x8x8 digits, written by the checkpoint API."""
    from pgan_cli.gan.checkpoint import build_networks, save_checkpoint

    cfg = {"arch": "dcgan", "net": "conv", "norm": "none", "latent_dim": 8, "width": 8,
           "sample_shape": [1, 8, 8], "kind": "images", "conditional": False, "num_classes": 0}
    torch.manual_seed(0)
    g, d = build_networks(cfg)
    path = tmp_path_factory.mktemp("ck") / "gen.pt"
    save_checkpoint(path, config=cfg, generator=g, discriminator=d)
    return path


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """A user-supplied torchvision state_dict (random weights saved to a file, as a user would)."""
    import torchvision

    path = tmp_path_factory.mktemp("w") / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


METHOD_ARGS = {
    "pixel": ["--method", "pixel", "--resize", "16"],
    "pca": ["--method", "pca", "--dim", "12"],
    "autoencoder": ["--method", "autoencoder", "--dim", "16", "--epochs", "3"],
    "discriminator": ["--method", "discriminator", "--checkpoint", "{ckpt}"],
    "torchvision": ["--method", "torchvision:resnet18", "--weights", "{weights}", "--resize", "0"],
}
OUT_DIMS = {"pixel": 256, "pca": 12, "autoencoder": 16, "discriminator": 128, "torchvision": 512}


@pytest.fixture(scope="module")
def small_splits(tmp_path_factory, digits_splits):
    """The first 200 digits of each split as NPY (N, 1, 8, 8), for the slower methods."""
    d = tmp_path_factory.mktemp("small")
    out = []
    for name in ("train", "holdout", "reference"):
        np.save(d / f"{name}.npy", read_dataset(digits_splits[name]).samples[:200])
        out.append(d / f"{name}.npy")
    return out


def _n_rows(path):
    return np.load(path).shape[0] if path.suffix == ".npy" else read_dataset(path).n


@pytest.mark.parametrize("method", sorted(METHOD_ARGS))
def test_each_method_from_cli(cli, digits_splits, small_splits, tmp_path, ckpt, resnet_weights, method):
    files = [digits_splits[n] for n in ("train", "holdout", "reference")]
    if method in ("torchvision", "autoencoder"):
        files = small_splits
    args = [a.format(ckpt=ckpt, weights=resnet_weights) for a in METHOD_ARGS[method]]
    out, model = tmp_path / "emb", tmp_path / "model.npz"
    r = cli("embed", *files, *args, "--out-dir", out, "--save-model", model, "--json", "--seed", "1")
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    assert summary["method"] == method and len(summary["outputs"]) == 3
    for f in files:
        arr = np.load(out / f"{f.stem}.npy")
        n = _n_rows(f)
        assert arr.dtype == np.float32 and arr.shape == (n, OUT_DIMS[method]) and np.isfinite(arr).all()
        side = json.loads((out / f"{f.stem}.json").read_text())
        assert side["embedding"]["method"] == method and side["shape"] == [n, OUT_DIMS[method]]
        assert side["provenance"]["inputs"][0]["path"] == str(f)
        # the fit set (first input) is the parent of every output
        assert side["provenance"]["inputs"][1]["path"] == str(files[0])
    assert arr.std(axis=0).max() > 0  # not a constant map
    # the saved model applied again (another run) gives identical rows
    again = tmp_path / "again.npy"
    r2 = cli("embed", files[1], "--model", model, "-o", again)
    assert r2.exit_code == 0, r2
    np.testing.assert_array_equal(np.load(again), np.load(out / "holdout.npy"))
    if method == "torchvision":
        adapt = side["embedding"]["adaptation"]
        assert any("repeated to 3 channels" in a for a in adapt) and any("ImageNet" in a for a in adapt)


def test_pixel_and_pca_match_independent_computation(cli, digits_splits, tmp_path):
    from sklearn.decomposition import PCA

    train, hold = digits_splits["train"], digits_splits["holdout"]
    r = cli("embed", train, hold, "--method", "pixel", "--out-dir", tmp_path / "px")
    assert r.exit_code == 0, r
    np.testing.assert_array_equal(np.load(tmp_path / "px" / "holdout.npy"), load_vectors(hold))
    r = cli("embed", hold, "--fit-on", train, "--method", "pca", "--dim", "5", "-o", tmp_path / "h.npy")
    assert r.exit_code == 0, r
    ref = PCA(5, random_state=0).fit(load_vectors(train)).transform(load_vectors(hold))
    got = np.load(tmp_path / "h.npy")
    # components are defined up to sign
    np.testing.assert_allclose(np.abs(got), np.abs(ref), atol=1e-4)
    side = json.loads((tmp_path / "h.json").read_text())
    assert side["provenance"]["inputs"][1]["path"] == str(train)


def test_registry_contract_batch_independent_and_reloads(digits_splits, tmp_path, ckpt):
    x = read_dataset(digits_splits["holdout"]).samples[:64]
    opts = {"pixel": {}, "pca": {"dim": 4}, "autoencoder": {"dim": 8, "epochs": 1},
            "discriminator": {"checkpoint": ckpt}}
    for method, o in opts.items():
        emb = make_embedding(method, batch_size=16, **o).fit(x)
        whole = emb.transform(x)
        parts = np.concatenate([emb.transform(x[:10]), emb.transform(x[10:])])
        np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-5, err_msg=method)
        emb.save(tmp_path / f"{emb.method}.npz")
        back = load_model(tmp_path / f"{emb.method}.npz")
        np.testing.assert_array_equal(back.transform(x), whole, err_msg=method)
        assert back.describe() == emb.describe()


def test_umap_one_model_three_files(cli, digits_splits, small_splits, tmp_path):
    """The only UMAP test (umap-learn compiles for ~20-40 s in a fresh process)."""
    files = small_splits
    r = cli("embed", *files, "--method", "umap", "--out-dir", tmp_path, "--save-model", tmp_path / "u.npz")
    assert r.exit_code == 0, r
    assert "40 s" in r.stderr
    emb = {f.stem: np.load(tmp_path / f"{f.stem}.npy") for f in files}
    assert all(e.shape[1] == 2 for e in emb.values())
    side = json.loads((tmp_path / "holdout.json").read_text())["embedding"]
    assert side["n_neighbors"] == 20 and side["min_dist"] == 0.0 and side["seed"] == 10
    # same space: each holdout digit's nearest training point mostly has the same label
    from pgan_cli.dataset import load_labels
    from pgan_cli.neighbors import knn

    nn = knn(emb["holdout"], emb["train"], 1).indices[:, 0]
    labels = {n: load_labels(digits_splits[n])[:200] for n in ("train", "holdout")}
    agree = (labels["train"][nn] == labels["holdout"]).mean()
    assert agree > 0.8
    r2 = cli("embed", files[1], "--model", tmp_path / "u.npz", "-o", tmp_path / "again.npy")
    assert r2.exit_code == 0, r2
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), emb["holdout"])


def test_model_files_never_unpickle(cli, digits_splits, tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, __config__=np.array([{"x": 1}], dtype=object))
    r = cli("embed", digits_splits["holdout"], "--model", evil, "-o", tmp_path / "o.npy")
    assert_clean_error(r, "unpickle")
    blob = tmp_path / "blob.npz"
    blob.write_bytes(pickle.dumps({"a": 1}))
    assert_clean_error(cli("embed", digits_splits["holdout"], "--model", blob, "-o", tmp_path / "o.npy"),
                       "blob.npz")
    assert not (tmp_path / "o.npy").exists()


def test_embed_errors(cli, digits_splits, tmp_path, ring8):
    h, t = digits_splits["holdout"], digits_splits["train"]
    nan = np.ones((20, 1, 8, 8), np.float32)
    nan[7, 0, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    out = tmp_path / "out"
    cases = [
        ((h, t, "--method", "pca", "-o", tmp_path / "x.npy"), ("one input",)),
        ((h, "--method", "pca"), ("--out-dir",)),
        ((h, "--out-dir", out), ("--method",)),
        ((h, "--method", "tsne", "--out-dir", out), ("tsne",)),
        ((h, "--method", "pixel", "--dim", "3", "--out-dir", out), ("--dim",)),
        ((h, "--method", "torchvision:resnet18", "--out-dir", out), ("--weights", "never downloads")),
        ((h, "--method", "torchvision:notanet", "--weights", "x.pt", "--out-dir", out), ("notanet",)),
        ((ring8, "--method", "torchvision:resnet18", "--weights", "x.pt", "--out-dir", out), ("weights file",)),
        ((h, ring8, "--method", "pca", "--out-dir", out), ("shape",)),
        ((h, tmp_path / "nan.npy", "--method", "pixel", "--out-dir", out), ("NaN", "row 7")),
        ((h, "--method", "pca", "--dim", "5000", "--out-dir", out), ("--dim 5000",)),
        ((h, "--method", "discriminator", "--out-dir", out), ("--checkpoint",)),
        ((h, "--method", "pca", "--epochs", "3", "--out-dir", out), ("--epochs",)),
        ((ring8, "--method", "pixel", "--resize", "4", "--out-dir", out), ("--resize",)),
    ]
    for args, needles in cases:
        r = cli("embed", *args)
        assert_clean_error(r, *needles)
        assert not out.exists() or not any(out.iterdir()), args


def test_torchvision_needs_images(cli, ring8, tmp_path, resnet_weights):
    r = cli("embed", ring8, "--method", "torchvision:resnet18", "--weights", resnet_weights, "-o", tmp_path / "o.npy")
    assert_clean_error(r, "needs images")
