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
    from pgan_cli.cli.app import app, normalize_argv

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
    from pgan_cli.gan.checkpoint import load_checkpoint

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
    from pgan_cli.gan.checkpoint import load_checkpoint
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
    from pgan_cli.gan.checkpoint import load_checkpoint

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


@pytest.mark.parametrize("augment", ["pgan", "diffaug", "ada"])
def test_bf16_and_augment_train(cli, tmp_path, digits_small, augment):
    r = cli("train", digits_small, "--steps", "3", "--precision", "bf16", "--augment", augment,
            "-o", tmp_path / "g.pt", *TINY)
    assert r.exit_code == 0, r


def test_augment_keeps_range_and_shape():
    from pgan_cli.gan.training.augment import augment_images

    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    y = augment_images(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert not torch.equal(x, y)


def test_nets_sizes_and_channels():
    from pgan_cli.gan.models.nets import ConvDiscriminator, ConvGenerator

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
    assert_clean_error(cli("train", digits8, "--arch", "lsgan", "-o", out), "--arch must be one of", "wgan-gp", "lsgan")
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

    from pgan_cli.gan.checkpoint import load_checkpoint
    from pgan_cli.dataset import read_dataset
    from pgan_cli.gan.training.run import train_file

    real = read_dataset(digits8)
    clf = LogisticRegression(max_iter=2000).fit(real.samples.reshape(real.n, -1), real.labels)
    ck = tmp_path / "c.pt"
    # augment none: at 8x8 DiffAugment's cutout (a 4x4 square) slows class learning and 6 epochs
    # are too few (38% on-class); at 32x32 the defaults give 100% in 15 epochs (bench/conditional.py)
    train_file(digits8, ck, arch="dcgan", conditional=True, epochs=6, width=16, seed=0,
               checkpoint_every=0, progress=False, augment="none")
    c = load_checkpoint(ck)
    y = torch.arange(500) % 10
    with torch.no_grad():
        x = c.generate(torch.randn(500, c.latent_dim, generator=torch.Generator().manual_seed(1)), y)
    agree = (clf.predict(x.reshape(500, -1).numpy()) == y.numpy()).mean()
    assert agree >= 0.8, agree


# ---- the training log says where training is ---------------------------------------------------------
def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_short_run_with_default_log_every_logs_its_last_step(cli, tmp_path, digits_small):
    """20 steps with --log-every 50 (the default): the log still ends at step 20, and `pgan report`
    reads it."""
    log = tmp_path / "t.jsonl"
    r = cli("train", digits_small, "--steps", "20", "--log", log, "-o", tmp_path / "g.pt", *TINY)
    assert r.exit_code == 0, r
    recs = _records(log)
    assert recs and recs[-1]["step"] == 20 and "end" in recs[-1]["events"]
    assert "loss_g" in recs[-1] and np.isfinite(recs[-1]["loss_d"])
    # 10 batches per epoch, 1 critic step per generator step: steps 10 and 20 end epochs 1 and 2
    assert [(x["step"], x["events"]) for x in recs] == [(10, ["epoch_end"]), (20, ["epoch_end", "end"])]
    assert [x["epoch"] for x in recs] == [1.0, 2.0]
    summary = tmp_path / "summary.json"
    r = cli("report", log, "--summary", summary, "-q")
    assert r.exit_code == 0, r
    training = json.loads(summary.read_text())["training"]
    assert training["steps"] == 20 and training["records"] == 2


def test_epoch_end_records_with_several_critic_steps(cli, tmp_path, digits_small):
    """wgan (5 critic steps per generator step) on 10 batches per epoch for 3 epochs: one epoch_end
    record per epoch, at an integer epoch, after the epoch's trailing critic steps; log steps
    and epoch ends never share a step twice."""
    log = tmp_path / "w.jsonl"
    r = cli("train", digits_small, "--arch", "wgan", "--epochs", "3", "--log", log, "--log-every", "2",
            "-o", tmp_path / "g.pt", *TINY)
    assert r.exit_code == 0, r
    recs = _records(log)
    steps = [x["step"] for x in recs]
    assert steps == sorted(set(steps)) == [2, 4, 6]  # 30 batches / 5 = 6 generator steps
    ends = [x for x in recs if "epoch_end" in x["events"]]
    assert [(x["step"], x["epoch"]) for x in ends] == [(2, 1.0), (4, 2.0), (6, 3.0)]
    assert recs[-1]["events"] == ["log", "epoch_end", "end"]
    assert all(set(x["events"]) <= {"log", "epoch_end", "end"} for x in recs)


def test_epoch_end_with_trailing_critic_steps(cli, tmp_path, digits_small):
    """7 batches per epoch (320 rows, batches of 45) and 5 critic steps: generator steps at batches
    5 and 10 (epoch 2, batch 3), so each epoch ends 2 and 4 critic steps after its last generator
    step; the record is written at the epoch end (integer epoch) and the run ends at epoch 2."""
    log = tmp_path / "w.jsonl"
    r = cli("train", digits_small, "--arch", "wgan", "--epochs", "2", "--log", log, "--log-every", "100",
            "-o", tmp_path / "g.pt", "--width", "8", "--latent-dim", "8", "--batch-size", "45", "-q")
    assert r.exit_code == 0, r
    recs = _records(log)
    assert [(x["step"], x["epoch"], x["events"]) for x in recs] == [(1, 1.0, ["epoch_end"]),
                                                                     (2, 2.0, ["epoch_end", "end"])]
    assert "grad_norm_d" in recs[0] and "grad_norm_g" in recs[0]  # computed for the recorded steps


# ---- resume: explicit options must match the checkpoint ---------------------------------------------
@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, digits_small) -> Path:
    """A 4-step dcgan checkpoint on the small digits, trained with TINY (shared, read-only)."""
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.cli.app import app, normalize_argv

    out = tmp_path_factory.mktemp("resume") / "small.pt"
    r = CliRunner().invoke(app, normalize_argv(["train", str(digits_small), "--steps", "4", "--seed", "3",
                                                "-o", str(out), *TINY]))
    console.configure(quiet=False)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("args,needle", [
    (["--arch", "wgan"], "--arch wgan differs from the checkpoint's dcgan"),
    (["--net", "mlp"], "--net mlp differs from the checkpoint's conv"),
    (["--norm", "groupnorm"], "--norm groupnorm differs from the checkpoint's batchnorm"),
    (["--width", "16"], "--width 16 differs from the checkpoint's 8"),
    (["--latent-dim", "4"], "--latent-dim 4 differs from the checkpoint's 8"),
    (["--conditional"], "--conditional on differs from the checkpoint's off"),
    (["--class-loss-weight", "3"], "--class-loss-weight 3 differs from the checkpoint's 1"),
    (["--class-balanced"], "--class-balanced on differs from the checkpoint's off"),
    (["--n-critic", "2"], "--n-critic 2 differs from the checkpoint's 1"),
    (["--gp-weight", "5"], "--gp-weight 5 differs from the checkpoint's 0"),
    (["--clip", "0.1"], "--clip 0.1 differs from the checkpoint's 0"),
    (["--lr-g", "0.001"], "--lr-g 0.001 differs from the checkpoint's 0.0002"),
    (["--lr-d", "0.001"], "--lr-d 0.001 differs from the checkpoint's 0.0002"),
    (["--batch-size", "64"], "--batch-size 64 differs from the checkpoint's 32"),
    (["--precision", "bf16"], "--precision bf16 differs from the checkpoint's fp32"),
    (["--augment", "pgan"], "--augment pgan differs from the checkpoint's diffaug"),
    (["--no-ema"], "--ema off differs from the checkpoint's on"),
    (["--r1", "1"], "--r1 1 differs from the checkpoint's 0"),
    (["--seed", "0"], "--seed 0 differs from the checkpoint's 3"),
    (["--dp-epsilon", "2"], "--dp-epsilon 2 differs from the checkpoint's none"),
    (["--max-grad-norm", "2"], "--max-grad-norm 2 differs from the checkpoint's none"),
])
def test_resume_refuses_each_differing_option(cli, tmp_path, digits_small, small_ckpt, args, needle):
    out = tmp_path / "r.pt"
    r = cli("train", digits_small, "--resume", small_ckpt, "--steps", "6", "-o", out, *args)
    assert_clean_error(r, needle, "drop it or start a new run")
    assert not out.exists()


def _tampered(src, dst, config=None, progress=None, generator=None, drop=()):
    blob = torch.load(src, weights_only=True)
    for key in drop:
        del blob[key]
    if config:
        c = json.loads(blob["config"]) if isinstance(blob["config"], str) else dict(blob["config"])
        blob["config"] = json.dumps({**c, **config})
    if progress:
        blob["progress"] = {**blob["progress"], **progress}
    if generator:
        blob["generator"] = {k: generator(v) for k, v in blob["generator"].items()}
    torch.save(blob, dst)
    return dst


@pytest.mark.parametrize("change,needle", [
    ({"config": {"arch": "bogus"}}, "arch = 'bogus', not one of dcgan"),
    ({"config": {"augment": "bogus"}}, "augment = 'bogus'"),
    ({"config": {"class_loss_weight": -5}}, "class_loss_weight = -5"),
    ({"config": {"r1": float("nan")}}, "r1 = nan"),
    ({"config": {"ema": "yes"}}, "ema = 'yes', not true or false"),
    ({"config": {"ema_decay": 2}}, "ema_decay = 2"),
    ({"config": {"lr_g": -1}}, "lr_g = -1"),
    ({"config": {"n_critic": 0}}, "n_critic = 0"),
    ({"config": {"width": 16}}, "saved state does not fit its config"),
    ({"progress": {"step": -5}}, "step = -5, not a count"),
    ({"progress": {"step": "3"}}, "step = '3', not a count"),
    ({"generator": lambda t: t * float("nan") if t.is_floating_point() else t}, "NaN or Inf weights"),
    ({"config": {"seed": 2**64}}, "seed = 18446744073709551616, not an integer in [0, 9223372036854775808)"),
    ({"drop": ("rng",)}, "rng record is missing"),
    ({"drop": ("optimizer_d",)}, "optimizer_d record is missing"),
    ({"drop": ("optimizer_g",)}, "optimizer_g record is missing"),
])
def test_resume_refuses_a_tampered_checkpoint(cli, tmp_path, digits_small, small_ckpt, change, needle):
    """What a resumed run takes from the checkpoint is checked like the options themselves: a
    tampered config, progress record or weights is one line and exit 2, and nothing is written."""
    bad = _tampered(small_ckpt, tmp_path / "bad.pt", **change)
    before = bad.read_bytes()
    r = cli("train", digits_small, "--resume", bad, "--steps", "6")
    assert_clean_error(r, needle)
    assert bad.read_bytes() == before


def test_resume_names_every_differing_option_in_one_line(cli, tmp_path, digits_small, small_ckpt):
    r = cli("train", digits_small, "--resume", small_ckpt, "--steps", "6", "-o", tmp_path / "r.pt",
            "--width", "128", "--arch", "wgan-gp", "--latent-dim", "8")  # --latent-dim agrees
    assert_clean_error(r, "--width 128 differs from the checkpoint's 8", "--arch wgan-gp differs from the "
                       "checkpoint's dcgan", "drop them")
    assert "--latent-dim" not in r.stderr


def test_resume_accepts_options_that_agree_or_may_change(cli, tmp_path, digits_small, small_ckpt):
    """Options equal to the checkpoint's (as given or as their defaults resolve) are fine, and so are
    the ones that do not define the run: totals, output, log, checkpoints, device, grids."""
    out, log = tmp_path / "r.pt", tmp_path / "r.jsonl"
    r = cli("train", digits_small, "--resume", small_ckpt, "--steps", "6", "-o", out, "--arch", "dcgan",
            "--width", "8", "--lr-g", "2e-4", "--norm", "batchnorm", "--seed", "3", "--log", log,
            "--log-every", "1", "--checkpoint-every", "1", "--device", "cpu", "--sample-every", "6",
            "--sample-dir", tmp_path / "grids", *TINY)
    assert r.exit_code == 0, r
    assert torch.load(out, weights_only=True)["progress"]["step"] == 6
    assert [x["step"] for x in _records(log)] == [5, 6]


def test_resume_refuses_other_data_naming_both_hashes(cli, tmp_path, digits8, small_ckpt):
    from pgan_cli.files import sha256_file

    r = cli("train", digits8, "--resume", small_ckpt, "--steps", "6", "-o", tmp_path / "x.pt")
    stored = torch.load(small_ckpt, weights_only=True)["data_sha256"]
    assert_clean_error(r, "SHA-256", sha256_file(digits8)[:12], stored[:12])


def test_resume_conflicts_effective_norm():
    """The stored norm is the effective one: asking again for the batchnorm that an mlp WGAN critic
    or DP-SGD replaced is the same run."""
    from pgan_cli.gan.training.config import resume_conflicts

    mlp_wgan = {"arch": "wgan", "net": "mlp", "norm": "none"}
    assert resume_conflicts(mlp_wgan, {"norm": "batchnorm"}) == []
    assert resume_conflicts(mlp_wgan, {"norm": "groupnorm"}) == ["$norm groupnorm differs from the checkpoint's none"]
    dp = {"arch": "dcgan", "net": "conv", "norm": "groupnorm", "dp_norm_replaced": "batchnorm -> groupnorm",
          "dp": {"target_epsilon": 3.0, "delta": 1e-5, "max_grad_norm": 1.0}}
    assert resume_conflicts(dp, {"norm": "batchnorm", "dp_epsilon": 3.0, "dp_delta": 1e-5}) == []
    assert resume_conflicts(dp, {"dp_delta": 1e-6}) == ["$dp_delta 1e-06 differs from the checkpoint's 1e-05"]
    assert resume_conflicts({"arch": "dcgan", "net": "conv", "norm": "batchnorm"}, {"norm": "none"})
    with pytest.raises(TypeError):
        resume_conflicts({}, {"widht": 3})


# ---- resume: the log holds each step once ------------------------------------------------------------
def test_resumed_log_drops_what_a_killed_run_logged_past_the_checkpoint(cli, tmp_path, digits_small):
    """A run checkpoints at step 10 and logs on to step 16 before it dies; resuming from the step-10
    checkpoint with the same log keeps steps <= 10 as they were and continues from 11: one history,
    no step twice."""
    import shutil

    ck, ck10, log = tmp_path / "run.pt", tmp_path / "run10.pt", tmp_path / "train.jsonl"
    common = ["--log", log, "--log-every", "2", *TINY]
    assert cli("train", digits_small, "--steps", "10", "-o", ck, *common).exit_code == 0
    shutil.copy(ck, ck10)  # the last checkpoint the killed run left
    assert cli("train", digits_small, "--resume", ck, "--steps", "16", *common).exit_code == 0
    before = log.read_text().splitlines()
    assert [json.loads(x)["step"] for x in before] == [2, 4, 6, 8, 10, 12, 14, 16]
    with open(log, "a") as f:
        f.write('{"step": 18, "loss_d": 0.')  # killed while writing a line
    r = cli("train", digits_small, "--resume", ck10, "--steps", "20", *common)
    assert r.exit_code == 0, r
    lines = log.read_text().splitlines()
    steps = [json.loads(x)["step"] for x in lines]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert all(a < b for a, b in zip(steps, steps[1:]))
    assert lines[:5] == before[:5]  # the records up to the checkpoint are kept as written
    assert lines[5] != before[5]  # step 12 is the resumed run's, not the killed run's
    assert "end" in json.loads(lines[-1])["events"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_resume_refuses_a_log_that_is_not_a_training_log(cli, tmp_path, digits_small, small_ckpt):
    import shutil

    ck, log = tmp_path / "ck.pt", tmp_path / "notes.jsonl"
    shutil.copy(small_ckpt, ck)
    log.write_text('{"note": "mine"}\n{"step": 1}\n')
    r = cli("train", digits_small, "--resume", ck, "--steps", "6", "--log", log)
    assert_clean_error(r, "not a training log record")
    assert log.read_text() == '{"note": "mine"}\n{"step": 1}\n'


def test_callbacks_see_every_step_and_epoch(digits_small, tmp_path):
    """The loop's extension point (docs/train.md): a callback passed to train_file is called once
    per generator step, once per epoch end, and closed even when training ends normally."""
    from pgan_cli.gan.training.callbacks import TrainingCallback
    from pgan_cli.gan.training.run import train_file

    class Count(TrainingCallback):
        def __init__(self):
            self.steps, self.epochs, self.logged, self.closed = [], 0, 0, False

        def on_step(self, trainer, record):
            self.steps.append(trainer.step)
            self.logged += record is not None

        def on_epoch_end(self, trainer):
            self.epochs += 1

        def close(self):
            self.closed = True

    c = Count()
    out = train_file(digits_small, tmp_path / "g.pt", epochs=2, batch_size=32, width=8, arch="dcgan",
                     progress=False, log_every=7, callbacks=[c])
    assert c.steps == list(range(1, out["steps"] + 1)) and c.epochs == 2 and c.closed
    assert c.logged >= out["steps"] // 7 + 1  # every 7th step, each epoch end and the last step


def test_a_model_too_large_for_the_machine_is_refused_before_it_is_built(cli, tmp_path, digits_small):
    """The parameters are counted on torch's meta device: a --width whose training state exceeds
    the machine's memory is one line, not an allocation the kernel answers by killing pgan; the
    option bounds match the checkpoint format's."""
    r = cli("train", digits_small, "--steps", "2", "--net", "mlp", "--width", "16384", "-o", tmp_path / "x.pt")
    assert_clean_error(r, "M parameters", "lower --width")
    r = cli("train", digits_small, "--steps", "2", "--latent-dim", "100000000", "-o", tmp_path / "x.pt")
    assert_clean_error(r, "--latent-dim must be an integer in [1, 65536]")
    assert not list(tmp_path.iterdir())


def test_a_diverged_run_stops_with_one_line_and_writes_no_nan(cli, tmp_path, digits_small):
    """Non-finite losses end the run before the record reaches the log, and a generator with NaN
    weights is never saved: exit 2, one line, no checkpoint, the log strict JSON."""
    out, log = tmp_path / "nan.pt", tmp_path / "nan.jsonl"
    r = cli("train", digits_small, "--steps", "20", "--width", "8", "--r1", "1e308", "--log", log,
            "--log-every", "1", "-o", out)
    assert_clean_error(r, "training diverged by step", "lower --lr-g/--lr-d or --r1")
    assert not out.exists()
    for line in log.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in the log"))
