"""DP-SGD training (`pgan train --dp-epsilon`, pgan_cli.gan.training.dpsgd): the accountant against an
independent computation, the steps counted, the checkpoint / sample records, and bad options."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import torch
from conftest import assert_clean_error

from pgan_cli.gan.training import dpsgd

N_TINY = 120


@pytest.fixture(scope="session")
def tiny_digits(tmp_path_factory, digits8):
    """The first 120 digits (8x8): enough for a few DP steps in a second."""
    from pgan_cli.dataset import read_dataset, write_dataset

    d = read_dataset(digits8)
    path = tmp_path_factory.mktemp("dp") / "tiny.h5"
    write_dataset(path, d.samples[:N_TINY], labels=d.labels[:N_TINY], class_names=d.class_names,
                  provenance={"test": "tiny digits"})
    return path


def _run_cli(*args):
    from typer.testing import CliRunner

    from pgan_cli import console
    from pgan_cli.cli.app import app, normalize_argv

    console.configure(quiet=False, verbose=False, provenance=True)
    r = CliRunner().invoke(app, normalize_argv([str(a) for a in args]), catch_exceptions=False)
    return r


@pytest.fixture(scope="session")
def dp_dcgan(tiny_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("dpck") / "dcgan_dp.pt"
    log = out.with_suffix(".jsonl")
    r = _run_cli("train", tiny_digits, "--arch", "dcgan", "--dp-epsilon", "3", "--epochs", "2", "--batch-size", "20",
                 "--width", "8", "--latent-dim", "8", "--log", log, "--log-every", "1", "--seed", "0",
                 "--device", "cpu", "-o", out, "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return out, log, r


@pytest.fixture(scope="session")
def dp_wgan(tiny_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("dpck") / "wgan_dp.pt"
    r = _run_cli("train", tiny_digits, "--arch", "wgan", "--dp-epsilon", "8", "--dp-delta", "1e-4", "--epochs", "2",
                 "--batch-size", "24", "--width", "8", "--latent-dim", "8", "--max-grad-norm", "0.5",
                 "--device", "cpu", "-o", out, "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return out, r


def _independent_prv(sigma, q, steps, delta):
    from opacus.accountants import PRVAccountant

    acc = PRVAccountant()
    acc.history = [(sigma, q, steps)]
    return acc.get_epsilon(delta=delta)


def _independent_rdp(sigma, q, steps, delta):
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 256))
    rdp = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    return get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0]


# ---- the accountant --------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma,q,steps,delta", [(1.1, 0.01, 400, 1e-5), (0.8, 0.05, 300, 1e-6),
                                                 (2.3, 0.2, 57, 1e-4), (0.6, 0.003, 5000, 1e-5)])
def test_compute_epsilon_matches_independent_accountants(sigma, q, steps, delta):
    eps = dpsgd.compute_epsilon(sigma, q, steps, delta)
    assert eps == pytest.approx(_independent_prv(sigma, q, steps, delta), rel=1e-9)
    rdp = _independent_rdp(sigma, q, steps, delta)
    assert eps <= rdp + 0.02 and eps > 0.6 * rdp  # PRV is tighter than RDP, but not by much


def test_noise_for_budget_reaches_the_budget():
    sigma = dpsgd.noise_for_budget(2.0, 1e-5, 0.05, 400)
    eps = _independent_prv(sigma, 0.05, 400, 1e-5)
    assert eps <= 2.0 + 1e-9 and eps > 2.0 - 0.1
    assert _independent_prv(sigma * 0.97, 0.05, 400, 1e-5) > eps


def test_default_delta_below_one_over_n():
    assert dpsgd.default_delta(100) == 1e-5
    assert dpsgd.default_delta(10**6) == pytest.approx(1e-7)


# ---- DP training from the CLI -------------------------------------------------------------------------
def test_dp_dcgan_checkpoint_records_dp(dp_dcgan):
    from pgan_cli.gan.checkpoint import load_checkpoint

    out, log, r = dp_dcgan
    ck = load_checkpoint(out)
    dp = ck.raw["extra"]["dp"]
    for key in ("noise_multiplier", "sample_rate", "steps", "delta", "epsilon", "max_grad_norm", "accountant"):
        assert key in dp
    assert dp["accountant"] == "prv" and dp["delta"] == 1e-5 and dp["max_grad_norm"] == 1.0
    assert dp["sample_rate"] == pytest.approx(20 / N_TINY)
    assert dp["steps"] == 2 * (N_TINY // 20)  # every critic step of 2 epochs is counted
    # the reported epsilon equals an independent accountant run on the recorded settings
    assert dp["epsilon"] == pytest.approx(_independent_prv(dp["noise_multiplier"], dp["sample_rate"], dp["steps"], dp["delta"]), rel=1e-9)
    assert 3.0 - 0.1 < dp["epsilon"] <= 3.0 + 1e-9
    assert ck.config["norm"] == "groupnorm" and ck.config["dp_norm_replaced"] == "batchnorm -> groupnorm"
    assert ck.config["dp"]["epsilon"] == dp["epsilon"]
    assert json.loads(ck.raw["provenance"])["dp"]["epsilon"] == dp["epsilon"]
    summary = json.loads(r.stdout)
    assert summary["dp"]["epsilon"] == dp["epsilon"]
    assert "GroupNorm" in r.stderr and "epoch 1: epsilon spent" in r.stderr


def test_dp_log_holds_only_private_figures(dp_dcgan):
    _, log, _ = dp_dcgan
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert recs
    for rec in recs:
        assert "loss_d" not in rec and "d_real" not in rec and "images_per_s" not in rec
        assert "loss_g" in rec and "d_fake" in rec and "critic_steps" in rec
    assert recs[-1]["epsilon"] is not None and recs[-1]["epsilon"] > 0


def test_dp_epoch_end_records_carry_the_epsilon_spent(dp_dcgan):
    """2 epochs of 6 Poisson batches, one generator step each: epoch_end records at steps 6 and 12
    carry the epsilon after exactly their critic steps (an independent accountant run); the last
    one is also the run's end and matches the checkpoint."""
    from pgan_cli.gan.checkpoint import load_checkpoint

    out, log, _ = dp_dcgan
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r["step"] for r in recs]
    assert steps == list(range(1, 13))  # --log-every 1: every step once, epoch ends included
    ends = [r for r in recs if "epoch_end" in r["events"]]
    assert [(r["step"], r["epoch"], r["critic_steps"]) for r in ends] == [(6, 1.0, 6), (12, 2.0, 12)]
    dp = load_checkpoint(out).raw["extra"]["dp"]
    for r in ends:
        assert r["epsilon"] == pytest.approx(_independent_prv(dp["noise_multiplier"], dp["sample_rate"],
                                                              r["critic_steps"], dp["delta"]), rel=1e-9)
    assert 0 < ends[0]["epsilon"] < ends[1]["epsilon"] == dp["epsilon"]
    assert recs[-1]["events"] == ["log", "epoch_end", "end"]
    assert recs[0]["epsilon"] is None  # a log record before the first epoch end: nothing accounted yet


def test_dp_sample_file_carries_epsilon(dp_dcgan, tmp_path):
    out, _, _ = dp_dcgan
    from pgan_cli.gan.checkpoint import load_checkpoint

    eps = load_checkpoint(out).raw["extra"]["dp"]["epsilon"]
    synth = tmp_path / "s.h5"
    r = _run_cli("sample", out, "-n", "20", "-o", synth, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    with h5py.File(synth) as f:
        prov = json.loads(f.attrs["provenance"])
    assert prov["params"]["training"]["dp"]["epsilon"] == eps


def test_dp_wgan_counts_every_critic_step(dp_wgan):
    from pgan_cli.gan.checkpoint import load_checkpoint

    out, r = dp_wgan
    ck = load_checkpoint(out)
    dp = ck.raw["extra"]["dp"]
    assert dp["steps"] == 2 * (N_TINY // 24) == 10  # critic steps, not generator steps
    assert ck.step == 10 // 5 and dp["max_grad_norm"] == 0.5 and dp["delta"] == 1e-4
    assert dp["epsilon"] == pytest.approx(_independent_prv(dp["noise_multiplier"], 24 / N_TINY, 10, 1e-4), rel=1e-9)
    assert dp["epsilon"] <= 8.0 + 1e-9
    assert ck.config["norm"] == "groupnorm"
    for p in ck.discriminator.parameters():  # wgan weight clipping still applied after the DP step
        assert float(p.detach().abs().max()) <= ck.config["clip"] + 1e-7


# ---- the trainer's internals ----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_generator_step_leaves_d_accumulators_alone(tiny_digits):
    from pgan_cli.dataset import read_dataset
    from pgan_cli.gan.training.config import make_config

    data = read_dataset(tiny_digits)
    cfg = make_config(data, arch="dcgan", width=8, latent_dim=8, batch_size=16, epochs=1)
    t = dpsgd.DPTrainer(cfg, data.samples, data.labels, dp_epsilon=5.0, device="cpu", progress=False)
    batches = list(t.real_batches(0))
    sizes = [len(x) for _, x, _ in batches]
    assert len(sizes) == N_TINY // 16 and len(set(sizes)) > 1  # Poisson: the batch size varies
    _, real, labels = batches[0]
    t.D.train()
    t.G.train()
    t.opt_d.zero_grad(set_to_none=True)
    real_logit, _ = t.D(real)
    fake_logit, _ = t.D(t.G(torch.randn(len(real), 8)).detach())
    (torch.nn.functional.softplus(-real_logit).mean() + torch.nn.functional.softplus(fake_logit).mean()).backward()
    for p in t.D.parameters():
        assert p.grad_sample.shape[0] == len(real)  # one unit (real_i + fake_i) per real record
    t.opt_d.zero_grad(set_to_none=True)
    t._fake_for_g = None
    before = [p.detach().clone() for p in t.D.parameters()]
    t.generator_step()
    for p, b in zip(t.D.parameters(), before):
        assert p.grad is None and getattr(p, "grad_sample", None) is None and torch.equal(p, b)
        assert p.requires_grad
    assert any(p.grad is not None for p in t.G.parameters())


# ---- bad options ------------------------------------------------------------------------------------
def test_dp_delta_not_below_one_over_n(cli, tiny_digits, tmp_path):
    r = cli("train", tiny_digits, "--dp-epsilon", "1", "--dp-delta", "0.5", "--epochs", "1", "-o", tmp_path / "x.pt")
    assert_clean_error(r, "--dp-delta")
    r = cli("train", tiny_digits, "--dp-epsilon", "1", "--dp-delta", "0.01", "--epochs", "1", "-o", tmp_path / "x.pt")
    assert_clean_error(r, "1/N")
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("args,needles", [
    (["--dp-epsilon", "-1"], ("--dp-epsilon must be a positive",)),
    (["--dp-epsilon", "0"], ("--dp-epsilon must be a positive",)),
    (["--dp-epsilon", "1", "--arch", "wgan-gp"], ("wgan-gp", "dcgan", "wgan")),
    (["--dp-epsilon", "1", "--max-grad-norm", "0"], ("--max-grad-norm",)),
    (["--dp-delta", "1e-6"], ("need --dp-epsilon",)),
    (["--dp-epsilon", "1", "--precision", "bf16"], ("fp32",)),
])
def test_dp_bad_options(cli, tiny_digits, tmp_path, args, needles):
    r = cli("train", tiny_digits, *args, "--epochs", "1", "-o", tmp_path / "x.pt")
    assert_clean_error(r, *needles)
    assert not (tmp_path / "x.pt").exists()


def test_resume_cannot_spend_more_than_the_budget(dp_dcgan, tiny_digits, tmp_path):
    import shutil

    out, _, _ = dp_dcgan
    ck = tmp_path / "ck.pt"
    shutil.copy(out, ck)
    r = _run_cli("train", tiny_digits, "--resume", ck, "--epochs", "4", "--device", "cpu")
    assert r.exit_code == 2 and "budget" in r.stderr, r.stderr


def test_dp_cannot_be_switched_on_when_resuming(cli, tiny_digits, tmp_path):
    ck = tmp_path / "plain.pt"
    r = cli("train", tiny_digits, "--steps", "1", "--width", "8", "--latent-dim", "8", "--batch-size", "16",
            "--device", "cpu", "-o", ck, "-q")
    assert r.exit_code == 0, r
    r = cli("train", tiny_digits, "--resume", ck, "--steps", "2", "--dp-epsilon", "1")
    assert_clean_error(r, "without DP")
