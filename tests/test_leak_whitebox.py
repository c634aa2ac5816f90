"""`pgan data leak` (planted-leak sets) and the white-box attacks (logan, gan-leaks) on real checkpoints."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from conftest import assert_clean_error

from pgan_cli.attacks import AttackInputs, get_attack
from pgan_cli.attacks.evaluation import auc
from pgan_cli.gan.checkpoint import build_networks, load_checkpoint, save_checkpoint
from pgan_cli.dataset import read_dataset, write_dataset
from pgan_cli.leak import LEAK_IS_COPY, LEAK_MEMBER_INDEX, LEAK_POPULATION_INDEX


# ---- pgan data leak --------------------------------------------------------------------------
def test_leak_cli_records_copies(cli, digits_splits, tmp_path):
    out = tmp_path / "leak.h5"
    r = cli("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"],
            "--fraction", "0.4", "--noise", "0.05", "-n", "400", "--seed", "2", "-o", out, "--json")
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    assert summary["n_copies"] == 160 and summary["n_fresh"] == 240
    leak, m, p = read_dataset(out), read_dataset(digits_splits["train"]), read_dataset(digits_splits["reference"])
    assert leak.samples.shape == (400, 1, 8, 8) and leak.kind == "images" and leak.samples.min() >= -1
    assert leak.attrs["leak"]["fraction"] == 0.4 and leak.attrs["leak"]["noise"] == 0.05
    assert leak.attrs["provenance"]["params"]["fraction"] == 0.4 and len(leak.attrs["provenance"]["inputs"]) == 2
    with h5py.File(out) as f:
        is_copy, mi, pi = f[LEAK_IS_COPY][:], f[LEAK_MEMBER_INDEX][:], f[LEAK_POPULATION_INDEX][:]
    assert is_copy.sum() == 160 and (mi[is_copy == 1] >= 0).all() and (mi[is_copy == 0] == -1).all()
    assert not is_copy[:160].all()  # rows are shuffled
    # copies are their member plus (clipped) noise; fresh rows are population rows, unchanged
    diff = leak.samples[is_copy == 1] - m.samples[mi[is_copy == 1]]
    assert 0.02 < diff.std() < 0.06
    assert np.array_equal(leak.samples[is_copy == 0], p.samples[pi[is_copy == 0]])
    assert np.array_equal(leak.labels[is_copy == 1], m.labels[mi[is_copy == 1]])
    assert len(np.unique(mi[is_copy == 1])) == 160  # without replacement when possible
    # the same seed gives the same file contents
    cli("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"],
        "--fraction", "0.4", "--noise", "0.05", "-n", "400", "--seed", "2", "-o", tmp_path / "again.h5")
    assert np.array_equal(read_dataset(tmp_path / "again.h5").samples, leak.samples)


def test_leak_cli_bad_inputs(cli, digits_splits, tmp_path):
    base = ["data", "leak", "--members", digits_splits["train"], "--population", digits_splits["reference"]]
    out = tmp_path / "x.h5"
    assert_clean_error(cli(*base, "--fraction", "1.5", "-o", out), "--fraction")
    assert_clean_error(cli(*base, "--fraction", "0.5", "--noise", "-1", "-o", out), "--noise")
    assert_clean_error(cli(*base, "--fraction", "0.0", "-o", out), "population has")  # 899 fresh rows needed
    assert_clean_error(cli(*base, "-n", "0", "-o", out), "-n")
    write_dataset(tmp_path / "vec.h5", np.zeros((50, 64), dtype=np.float32) + np.arange(50)[:, None],
                  provenance={}, kind="vectors")
    assert_clean_error(cli("data", "leak", "--members", digits_splits["train"], "--population", tmp_path / "vec.h5",
                           "-o", out), "vectors")
    assert_clean_error(cli(*base[:4], "--population", tmp_path / "nope.h5", "-o", out), "does not exist")
    assert not out.exists()
    # a population that shares rows with the members is written, with a warning
    r = cli("data", "leak", "--members", digits_splits["train"], "--population", digits_splits["train"],
            "--fraction", "0.5", "-n", "100", "-o", out)
    assert r.exit_code == 0 and "identical to members" in r.stderr


# ---- white-box attacks -----------------------------------------------------------------------
def _checkpoint(path, seed, dim=8, latent=4):
    config = {"arch": "gan", "net": "mlp", "norm": "none", "latent_dim": latent, "width": 16,
              "sample_shape": [dim], "kind": "vectors", "conditional": False, "num_classes": 0,
              "data_scaling": {"kind": "none"}}
    torch.manual_seed(seed)
    g, d = build_networks(config)
    for p in g.parameters():  # a generator with a clearly non-degenerate range
        torch.nn.init.normal_(p, 0, 0.5)
    return save_checkpoint(path, config=config, generator=g, discriminator=d)


@pytest.fixture(scope="module")
def whitebox_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("wb")
    _checkpoint(d / "gen.pt", 0)
    _checkpoint(d / "ref.pt", 1)
    ck = load_checkpoint(d / "gen.pt")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4)).astype(np.float32)
    with torch.no_grad():
        x = ck.generate(torch.from_numpy(z)).numpy()
    # "members" lie in the generator's range (what it reproduces), non-members off it
    members = x[:150] + 0.001 * rng.normal(size=(150, 8)).astype(np.float32)
    scale = x.std(0)
    non_members = (x[150:] + scale * rng.normal(size=(150, 8))).astype(np.float32)
    synthetic_z = np.concatenate([z[:150] + 0.3 * rng.normal(size=(150, 4)).astype(np.float32),
                                  rng.normal(size=(150, 4)).astype(np.float32)])
    with torch.no_grad():
        s = ck.generate(torch.from_numpy(synthetic_z)).numpy()
    paths = {"gen": d / "gen.pt", "ref": d / "ref.pt", "dir": d}
    for name, arr in (("M", members), ("H", non_members)):
        paths[name] = write_dataset(d / f"{name}.h5", arr, provenance={}, kind="vectors")
    paths["S"] = write_dataset(d / "S.h5", s, latents=synthetic_z, provenance={}, kind="vectors")
    return paths


def test_logan_is_the_discriminator_logit(whitebox_files):
    ck = load_checkpoint(whitebox_files["gen"])
    x = read_dataset(whitebox_files["M"]).samples
    att = get_attack("logan").fit(AttackInputs(synthetic=None, generator=ck))
    s = att.score(x)
    with torch.no_grad():
        expect = ck.discriminate(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s, expect, rtol=1e-5, atol=1e-6)


def test_gan_leaks_orientation_and_latent_start(whitebox_files):
    ck = load_checkpoint(whitebox_files["gen"])
    M, H = read_dataset(whitebox_files["M"]).samples, read_dataset(whitebox_files["H"]).samples
    S = read_dataset(whitebox_files["S"])
    att = get_attack("gan-leaks", steps=60).fit(AttackInputs(synthetic=S.samples, generator=ck,
                                                            synthetic_latents=S.latents))
    s = att.score(np.concatenate([M, H]))
    assert att.params["start"] == "nearest synthetic latent"
    assert auc(s, np.r_[np.ones(150), np.zeros(150)]) > 0.9
    assert np.median(-s[:150]) < 0.02 and 10 * np.median(-s[:150]) < np.median(-s[150:])  # members reconstruct


def test_whitebox_from_the_cli(cli, whitebox_files, tmp_path):
    f = whitebox_files
    r = cli("attack", "--members", f["M"], "--non-members", f["H"], "--synthetic", f["S"], "--generator", f["gen"],
            "--reference-generator", f["ref"], "--methods", "logan,gan-leaks,dcr", "--json", "--bootstrap", "100",
            "--scores", tmp_path / "s.h5", "--device", "cpu")
    assert r.exit_code == 0, r
    out = json.loads(r.stdout)
    assert set(out["attacks"]) == {"logan", "gan-leaks", "dcr"}
    assert out["attacks"]["gan-leaks"]["params"]["calibrated"] is True
    assert 0 <= out["attacks"]["gan-leaks"]["auc"] <= 1 and out["attacks"]["logan"]["n_members"] == 150
    with h5py.File(tmp_path / "s.h5") as h:
        assert np.isfinite(h["scores/gan-leaks"][:]).all() and h["scores/logan"].shape == (300,)
    # candidates in another space than the generator's: one clear line
    np.save(tmp_path / "M.npy", np.zeros((20, 5), dtype=np.float32) + np.arange(20)[:, None])
    np.save(tmp_path / "H.npy", np.full((20, 5), 0.5, dtype=np.float32) + np.arange(20)[:, None])
    assert_clean_error(cli("attack", "--members", tmp_path / "M.npy", "--non-members", tmp_path / "H.npy",
                           "--generator", f["gen"], "--methods", "logan"), "data space")
    assert_clean_error(cli("attack", "--members", f["M"], "--non-members", f["H"], "--generator", f["dir"] / "none.pt",
                           "--methods", "logan"), "does not exist")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert_clean_error(cli("attack", "--members", f["M"], "--non-members", f["H"], "--generator", bad,
                           "--methods", "logan"), "checkpoint")
