"""`pgan train` and `pgan sample`: every arch/net pair end to end, the checkpoint API, resume
equivalence, a killed run, torchrun with 2 CPU processes, logs, grids, and bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import REPO, assert_clean_error

TINY = ["--width", "8", "--latent-dim", "8", "--batch-size", "32", "-q"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny nets gain nothing from threads, and OpenMP spin-waits badly on a shared machine."""
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # for the pgan subprocesses too
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="module")
def digits_small(tmp_path_factory) -> Path:
    """320 of the 8x8 digits (10 batches of 32): fast multi-epoch runs."""
    from pgan_cli.dataset import write_dataset
    from pgan_cli.datasets import digits

    b = digits(8)
    path = tmp_path_factory.mktemp("small") / "digits_small.h5"
    write_dataset(path, b.samples[:320], labels=b.labels[:320], class_names=b.class_names, attrs=b.attrs,
                  provenance={})
    return path


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory) -> Path:
    from pgan_cli.dataset import write_dataset

    path = tmp_path_factory.mktemp("nolab") / "nolab.h5"
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    write_dataset(path, x, provenance={})
    return path


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory, digits8) -> Path:
    """A tiny conditional wgan-gp checkpoint on 8x8 digits, trained with EMA (shared)."""
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.app import app, normalize_argv

    out = tmp_path_factory.mktemp("cond") / "cond.pt"
    r = CliRunner().invoke(app, normalize_argv(["train", str(digits8), "--arch", "wgan-gp", "--conditional", "--ema",
                                                "--steps", "6", "-o", str(out), *TINY]))
    console.configure(quiet=False)
    assert r.exit_code == 0, r.output
    return out


def _dataset_ok(path: Path, n: int, shape: tuple, labels: bool) -> h5py.File:
    from pgan_cli.dataset import Dataset

    with Dataset(path) as ds:  # validates the whole file
        assert ds.n == n and ds.sample_shape == shape
        assert ds.has_latents and ds.has_labels == labels
    return h5py.File(path, "r")


# ---- every arch/net pair, from the CLI ------------------------------------------------------------
@pytest.mark.parametrize("data", ["digits", "ring"])
@pytest.mark.parametrize("net", ["conv", "mlp"])
@pytest.mark.parametrize("arch", ["dcgan", "wgan", "wgan-gp"])
def test_every_arch_and_net_trains_and_samples(cli, tmp_path, digits8, ring8, data, net, arch):
    src = digits8 if data == "digits" else ring8
    ck = tmp_path / "g.pt"
    r = cli("train", src, "--arch", arch, "--net", net, "--steps", "3", "-o", ck, "--json", *TINY)
    if data == "ring" and net == "conv":
        assert_clean_error(r, "--net mlp")
        assert not ck.exists()
        return
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    assert summary["steps"] == 3 and summary["arch"] == arch and summary["net"] == net
    blob = torch.load(ck, weights_only=True)  # loads without unpickling code
    assert blob["format"] == "pgan-checkpoint" and blob["progress"]["step"] == 3
    cfg = json.loads(blob["config"])
    assert cfg["arch"] == arch and cfg["net"] == net and cfg["latent_dim"] == 8
    if arch == "wgan-gp":
        assert cfg["norm"] != "batchnorm"
        assert not any("running_mean" in k for k in blob["discriminator"])
    out = tmp_path / "s.h5"
    r = cli("sample", ck, "-n", "40", "-o", out, "--seed", "1", "-q")
    assert r.exit_code == 0, r
    shape = (1, 8, 8) if data == "digits" else (2,)
    f = _dataset_ok(out, 40, shape, labels=False)
    with f:
        assert f["latents"].shape == (40, 8)
        prov = json.loads(f.attrs["provenance"])
        assert prov["params"]["checkpoint_sha256"] == cfg_sha(ck)
        assert prov["params"]["data_sha256"] == cfg["data_sha256"]
        if data == "ring":
            mixture = json.loads(f.attrs["mixture"])
            assert mixture["modes"] == 8 and len(mixture["means"]) == 8
        assert json.loads(f.attrs["class_names"])


def cfg_sha(path: Path) -> str:
    from pgan_cli.files import sha256_file

    return sha256_file(path)


# ---- checkpoint API --------------------------------------------------------------------------------
def test_checkpoint_api_generate_discriminate_features(cond_ckpt):
    from pgan_cli.checkpoint import load_checkpoint

    ck = load_checkpoint(cond_ckpt)
    assert ck.latent_dim == 8 and ck.num_classes == 10 and ck.class_names == [str(i) for i in range(10)]
    assert ck.sample_shape == (1, 8, 8) and ck.data_scaling["kind"] == "none" and ck.step == 6
    assert not ck.generator.training and not ck.discriminator.training
    # EMA weights are the ones loaded into the generator
    raw = torch.load(cond_ckpt, weights_only=True)
    ema = raw["generator_ema"]
    assert all(torch.equal(ck.generator.state_dict()[k], ema[k]) for k in ema)
    assert any(not torch.equal(raw["generator"][k], ema[k]) for k in ema if ema[k].is_floating_point())
    z = torch.randn(5, 8, requires_grad=True)
    y = ck.sample_labels(5, torch.Generator().manual_seed(0))
    x = ck.generate(z, y)
    assert x.shape == (5, 1, 8, 8) and x.abs().max() <= 1
    x.pow(2).sum().backward()  # differentiable in z (GAN-Leaks latent optimisation)
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with torch.no_grad():
        s = ck.discriminate(x)
        feats = ck.features(x)
    assert s.shape == (5,) and feats.shape[0] == 5 and feats.shape[1] == ck.discriminator.feature_dim
    with pytest.raises(ValueError):
        ck.generate(z)  # conditional model without labels


def test_vector_scaling_round_trip_and_samples_in_data_space(cli, tmp_path):
    """Vectors are standardised for training and un-scaled when sampling (input space out)."""
    from pgan_cli.checkpoint import load_checkpoint
    from pgan_cli.dataset import write_dataset

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(256, 3)) * [1.0, 10.0, 0.1] + [100.0, -50.0, 3.0]).astype(np.float32)
    src = tmp_path / "vec.h5"
    write_dataset(src, x, provenance={})
    ck_path = tmp_path / "v.pt"
    r = cli("train", src, "--arch", "dcgan", "--steps", "150", "--batch-size", "64", "--width", "16",
            "--latent-dim", "4", "-o", ck_path, "-q")
    assert r.exit_code == 0, r
    ck = load_checkpoint(ck_path)
    sc = ck.data_scaling
    assert sc["kind"] == "standardize"
    np.testing.assert_allclose(sc["mean"], x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(sc["std"], x.std(0), rtol=1e-4)
    t = torch.as_tensor(x[:7])
    torch.testing.assert_close(ck.to_data_space(ck.to_model_space(t)), t)
    out = tmp_path / "vs.h5"
    assert cli("sample", ck_path, "-n", "500", "-o", out, "-q").exit_code == 0
    with h5py.File(out) as f:
        s = f["samples"][:]
    # samples live in the input's space: each feature within one real std of the real mean
    # (standardised samples would sit near 0, i.e. 100, 5 and 30 stds away)
    assert np.all(np.abs(s.mean(0) - x.mean(0)) < 1.0 * x.std(0))


# ---- conditional sampling --------------------------------------------------------------------------
def test_conditional_sampling_modes(cli, tmp_path, cond_ckpt, digits_splits):
    out = tmp_path / "c.h5"
    r = cli("sample", cond_ckpt, "-n", "300", "-o", out, "--json", "-q")
    assert r.exit_code == 0, r
    with _dataset_ok(out, 300, (1, 8, 8), labels=True) as f:
        labels = f["labels"][:]
    assert len(np.unique(labels)) >= 8  # the training prior (near uniform on digits)
    r = cli("sample", cond_ckpt, "-n", "50", "-o", out, "--class", "3", "--json", "-q")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["label_counts"]["3"] == 50
    with h5py.File(out) as f:
        assert (f["labels"][:] == 3).all()
    r = cli("sample", cond_ckpt, "-n", "2000", "-o", out, "--uniform-classes", "--json", "-q")
    counts = np.array(list(json.loads(r.stdout)["label_counts"].values()))
    assert counts.min() > 140 and counts.max() < 260
    r = cli("sample", cond_ckpt, "-n", "100", "-o", out, "--classes-from", digits_splits["train"], "-q")
    assert r.exit_code == 0, r
    grid = tmp_path / "interp.png"
    r = cli("sample", cond_ckpt, "--interpolate", "--grid", grid, "--rows", "4", "--steps", "5", "-q")
    assert r.exit_code == 0, r
    from PIL import Image

    img = Image.open(grid)
    assert img.width > img.height > 0  # 4 rows x 5 columns of 8x8 images, upscaled


def test_sampling_is_reproducible_and_batch_size_independent(cli, tmp_path, cond_ckpt):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    assert cli("sample", cond_ckpt, "-n", "1500", "-o", a, "--seed", "5", "--batch-size", "100", "-q").exit_code == 0
    assert cli("sample", cond_ckpt, "-n", "1500", "-o", b, "--seed", "5", "--batch-size", "512", "-q").exit_code == 0
    assert cli("sample", cond_ckpt, "-n", "1500", "-o", c, "--seed", "6", "-q").exit_code == 0
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        np.testing.assert_array_equal(fa["latents"][:], fb["latents"][:])
        np.testing.assert_array_equal(fa["labels"][:], fb["labels"][:])
        np.testing.assert_allclose(fa["samples"][:], fb["samples"][:], atol=1e-5)
        assert not np.array_equal(fa["latents"][:], fc["latents"][:])


# ---- resume ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["dcgan", "wgan-gp"])
def test_resume_two_plus_two_epochs_equals_four(cli, tmp_path, digits_small, arch):
    digits8 = digits_small
    common = ["--arch", arch, "--conditional", "--ema", "--seed", "7", *TINY]
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    assert cli("train", digits8, "--epochs", "4", "-o", full, *common).exit_code == 0
    assert cli("train", digits8, "--epochs", "2", "-o", half, *common).exit_code == 0
    r = cli("train", digits8, "--resume", half, "--epochs", "4", "-q")
    assert r.exit_code == 0, r
    f, h = torch.load(full, weights_only=True), torch.load(half, weights_only=True)
    assert f["progress"]["step"] == h["progress"]["step"] > 0 and h["progress"]["epoch"] == 4
    for key in ("generator", "discriminator", "generator_ema"):
        for name, t in f[key].items():
            assert torch.equal(t, h[key][name]), (key, name)
    for name, t in f["optimizer_d"]["state"][0].items():
        assert torch.equal(torch.as_tensor(t), torch.as_tensor(h["optimizer_d"]["state"][0][name]))
    # asking for fewer epochs than done is a clear error
    r = cli("train", digits8, "--resume", full, "--epochs", "3")
    assert_clean_error(r, "already reached")


def test_resume_refuses_other_data(cli, tmp_path, cond_ckpt, digits_small):
    r = cli("train", digits_small, "--resume", cond_ckpt, "--steps", "10", "-o", tmp_path / "x.pt")
    assert_clean_error(r, "SHA-256")
    assert not (tmp_path / "x.pt").exists()


def test_killed_run_leaves_a_loadable_checkpoint(cli, tmp_path, digits_small):
    digits8 = digits_small
    from pgan_cli.checkpoint import load_checkpoint

    ck = tmp_path / "run.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "pgan_cli", "train", str(digits8), "--steps", "1000000",
                          "--checkpoint-every", "4", "-o", str(ck), *TINY], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if ck.exists() and torch.load(ck, weights_only=True)["progress"]["step"] >= 4:
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGKILL)  # no chance to clean up
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    loaded = load_checkpoint(ck)
    assert loaded.step >= 4 and loaded.step % 4 == 0
    leftovers = [x for x in tmp_path.iterdir() if x.name != "run.pt" and not x.name.startswith(".run.pt.")]
    assert leftovers == []
    r = cli("train", digits8, "--resume", ck, "--steps", str(loaded.step + 2), "-q")
    assert r.exit_code == 0, r
    assert load_checkpoint(ck).step == loaded.step + 2


# ---- torchrun ----------------------------------------------------------------------------------------
def test_torchrun_two_cpu_processes(tmp_path, ring8):
    ck, log = tmp_path / "dist.pt", tmp_path / "dist.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "pgan_cli", "--", "train", str(ring8), "--arch", "wgan-gp", "--steps", "6",
           "--log", str(log), "--log-every", "2", "-o", str(ck), "--json", *TINY]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout[p.stdout.index("{"):])  # rank 0 prints the result once
    assert summary["world_size"] == 2 and summary["steps"] == 6
    blob = torch.load(ck, weights_only=True)
    assert blob["progress"]["world_size"] == 2 and blob["progress"]["step"] == 6
    lines = log.read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4, 6]  # one writer: rank 0
    # 2 processes x 16 rows per batch = the global batch of 32; 2000 rows -> 62 batches per epoch
    assert blob["progress"]["d_steps"] == 30


# ---- log and sample grids --------------------------------------------------------------------------
def test_log_keys_and_sample_grids(cli, tmp_path, digits8):
    log, grids = tmp_path / "train.jsonl", tmp_path / "grids"
    r = cli("train", digits8, "--arch", "wgan", "--steps", "6", "--log", log, "--log-every", "2",
            "--sample-every", "3", "--sample-dir", grids, "-o", tmp_path / "g.pt", *TINY)
    assert r.exit_code == 0, r
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["step"] for r in recs] == [2, 4, 6]
    for rec in recs:
        for key in ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                    "wasserstein", "images_per_s", "wall_time"):
            assert key in rec and np.isfinite(rec[key]), key
        assert abs(rec["wasserstein"] - (rec["d_real"] - rec["d_fake"])) < 1e-4
    assert recs[-1]["wall_time"] >= recs[0]["wall_time"] and recs[0]["images_per_s"] > 0
    assert sorted(p.name for p in grids.iterdir()) == ["step0000003.png", "step0000006.png"]


def test_dcgan_logs_probabilities(cli, tmp_path, digits8):
    log = tmp_path / "t.jsonl"
    assert cli("train", digits8, "--steps", "4", "--log", log, "--log-every", "2", "-o", tmp_path / "g.pt",
               *TINY).exit_code == 0
    rec = json.loads(log.read_text().splitlines()[-1])
    assert 0 < rec["d_real"] < 1 and 0 < rec["d_fake"] < 1 and "wasserstein" not in rec


def test_bf16_and_augment_train(cli, tmp_path, digits_small):
    r = cli("train", digits_small, "--steps", "3", "--precision", "bf16", "--augment", "-o", tmp_path / "g.pt", *TINY)
    assert r.exit_code == 0, r


def test_augment_keeps_range_and_shape():
    from pgan_cli.training.augment import augment_images

    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    y = augment_images(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert not torch.equal(x, y)


def test_nets_sizes_and_channels():
    from pgan_cli.models.nets import ConvDiscriminator, ConvGenerator

    for size in (8, 16, 32, 64, 128, 256):
        g = ConvGenerator(16, 9, size, width=4, num_classes=3)
        d = ConvDiscriminator(9, size, width=4, norm="groupnorm", num_classes=3)
        x = g(torch.randn(2, 16), torch.tensor([0, 2]))
        assert x.shape == (2, 9, size, size)
        logit, cls = d(x)
        assert logit.shape == (2,) and cls.shape == (2, 3) and d.features(x).shape == (2, d.feature_dim)


# ---- bad inputs --------------------------------------------------------------------------------------
def test_bad_inputs(cli, tmp_path, digits8, ring8, unlabelled, cond_ckpt):
    out = tmp_path / "g.pt"
    assert_clean_error(cli("train", digits8, "--arch", "lsgan", "-o", out), "unknown --arch", "wgan-gp")
    assert_clean_error(cli("train", unlabelled, "--conditional", "-o", out), "--conditional", "labels")
    assert_clean_error(cli("train", ring8, "--arch", "wgan-gp", "--norm", "batchnorm", "-o", out), "BatchNorm")
    assert_clean_error(cli("train", digits8, "--precision", "fp16", "-o", out), "bf16")
    assert_clean_error(cli("train", digits8, "--epochs", "0", "-o", out), "--epochs")
    assert_clean_error(cli("train", digits8, "--epochs", "2", "--steps", "3", "-o", out), "--steps")
    assert_clean_error(cli("train", tmp_path / "missing.h5", "-o", out), "does not exist")
    assert_clean_error(cli("train", digits8), "--output")
    assert not out.exists()

    synth = tmp_path / "s.h5"
    bare = tmp_path / "bare.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), bare)
    assert_clean_error(cli("sample", bare, "-n", "5", "-o", synth), "bare state_dict")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "pgan-checkpoint", "x": Path("/etc")}, pickled)
    assert_clean_error(cli("sample", pickled, "-n", "5", "-o", synth), "will not unpickle")
    data = cond_ckpt.read_bytes()
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(data[: len(data) // 2])
    assert_clean_error(cli("sample", truncated, "-n", "5", "-o", synth), "not a readable checkpoint", "truncated")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    assert_clean_error(cli("sample", garbage, "-n", "5", "-o", synth), "not a readable checkpoint")
    assert_clean_error(cli("sample", cond_ckpt, "-n", "0", "-o", synth), "-n")
    assert_clean_error(cli("sample", cond_ckpt, "-n", "-3", "-o", synth), "-n")
    assert_clean_error(cli("sample", cond_ckpt, "-n", "5", "-o", synth, "--class", "cat"), "cat", "known classes")
    assert_clean_error(cli("sample", cond_ckpt, "-n", "5", "-o", synth, "--class", "1", "--uniform-classes"),
                       "only one")
    assert_clean_error(cli("sample", cond_ckpt, "--interpolate"), "--grid")
    assert_clean_error(cli("sample", cond_ckpt, "-n", "5"), "--output")
    assert_clean_error(cli("sample", tmp_path / "nope.pt", "-n", "5", "-o", synth), "does not exist")
    assert not synth.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---- quality (fast version; the 32x32 bar is in bench/conditional.py) --------------------------------
def test_conditional_digits_are_recognised_as_their_class(tmp_path, digits8):
    """A conditional dcgan on 8x8 digits: a logistic regression trained on the real digits assigns
    >= 80% of the samples to the class they were conditioned on."""
    from sklearn.linear_model import LogisticRegression

    from pgan_cli.checkpoint import load_checkpoint
    from pgan_cli.dataset import read_dataset
    from pgan_cli.training.loop import train_file

    real = read_dataset(digits8)
    clf = LogisticRegression(max_iter=2000).fit(real.samples.reshape(real.n, -1), real.labels)
    ck = tmp_path / "c.pt"
    train_file(digits8, ck, arch="dcgan", conditional=True, epochs=6, width=16, seed=0,
               checkpoint_every=0, progress=False)
    c = load_checkpoint(ck)
    y = torch.arange(500) % 10
    with torch.no_grad():
        x = c.generate(torch.randn(500, c.latent_dim, generator=torch.Generator().manual_seed(1)), y)
    agree = (clf.predict(x.reshape(500, -1).numpy()) == y.numpy()).mean()
    assert agree >= 0.8, agree
