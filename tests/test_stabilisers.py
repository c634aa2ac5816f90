"""Data-efficient training (docs/train.md, "Augmentation and regularisers"): DiffAugment's ops, ADA's
probability rule, R1 against its closed form, the hinge loss, spectral normalisation, the EMA's
horizon, and what DP-SGD makes of each (accountant unchanged by augmentation; ADA and R1
refused; spectral normalisation replaced)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_clean_error
from pgan_cli.gan.training import augment as A
from pgan_cli.gan.training import losses

TINY = ["--width", "8", "--latent-dim", "8", "--batch-size", "32", "-q"]


# ---- DiffAugment ------------------------------------------------------------------------------------
def test_translation_is_an_integer_shift_with_zero_padding():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8) + 1.0  # all positive: zero padding is visible
    y = A.translation(x)
    assert y.shape == x.shape
    for i in range(len(x)):
        found = False
        for dx in range(-1, 2):
            for dy in range(-1, 2):
                want = torch.zeros_like(x[i])
                src = x[i, :, max(0, dx):8 + min(0, dx), max(0, dy):8 + min(0, dy)]
                want[:, max(0, -dx):8 + min(0, -dx), max(0, -dy):8 + min(0, -dy)] = src
                found |= torch.equal(y[i], want)
        assert found, i  # ratio 1/8 of 8 pixels: shifts of -1, 0 or 1 in each direction
    assert not torch.equal(x, y)


def test_cutout_zeroes_one_square_of_half_the_size():
    torch.manual_seed(1)
    x = torch.ones(200, 2, 16, 16)
    y = A.cutout(x)
    zeros = (y == 0).all(1).flatten(1).sum(1)
    # an 8x8 square, clipped at the border: between 4x4 and 8x8 pixels, identical in every channel
    assert zeros.max() == 64 and zeros.min() >= 16
    assert torch.equal(y[:, 0] == 0, y[:, 1] == 0)


def test_colour_changes_brightness_per_sample_and_keeps_grey_grey():
    torch.manual_seed(2)
    x = torch.rand(32, 1, 8, 8) * 2 - 1
    y = A.color(x)
    assert y.shape == x.shape and not torch.allclose(x, y)
    rgb = x.repeat(1, 3, 1, 1)
    out = A.color(rgb)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])  # saturation of grey is grey


def test_diffaugment_is_differentiable_and_p_zero_is_identity():
    torch.manual_seed(3)
    x = (torch.rand(8, 3, 16, 16) * 2 - 1).requires_grad_(True)
    A.diff_augment(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(A.diff_augment(x.detach(), p=0.0), x.detach())
    torch.manual_seed(4)
    y = A.diff_augment(x.detach(), p=0.5)
    changed = (y != x.detach()).flatten(1).any(1).float().mean()
    assert 0.6 < changed < 0.99  # 1 - 0.5^3 = 0.875 of the samples get at least one op


# ---- ADA ------------------------------------------------------------------------------------------------
def test_ada_probability_follows_the_sign_of_d_on_reals():
    ada = A.AdaptiveP()
    over = torch.full((64,), 3.0)  # D sure that every real is real: r_t = 1 > 0.6
    for _ in range(A.ADA_INTERVAL * 10):
        ada.observe(over)
    step = A.ADA_INTERVAL * 64 / (A.ADA_KIMG * 1000.0)
    assert ada.p == pytest.approx(10 * step)
    under = torch.tensor([1.0, -1.0] * 32)  # r_t = 0 < 0.6
    for _ in range(A.ADA_INTERVAL * 20):
        ada.observe(under)
    assert ada.p == 0.0  # clamped at 0
    ada.load_state_dict({"p": 0.3})
    assert ada.state_dict() == {"p": 0.3}


# ---- losses and nets ------------------------------------------------------------------------------------
def test_hinge_loss_values():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    want_d = np.mean([0, 0.5, 2.0]) + np.mean([0, 1.0, 2.5])
    assert float(losses.d_loss("sngan", real, fake)) == pytest.approx(want_d)
    assert float(losses.g_loss("sngan", fake)) == pytest.approx(-np.mean([-2.0, 0.0, 1.5]))


def test_r1_is_the_squared_gradient_norm():
    """For D(x) = w . x + (x . x) the gradient is w + 2x: R1 = mean ||w + 2x||^2."""
    torch.manual_seed(5)
    w = torch.randn(12)

    def d(x):
        flat = x.flatten(1)
        return flat @ w + (flat * flat).sum(1), None

    x = torch.randn(6, 3, 2, 2)
    want = ((w + 2 * x.flatten(1)) ** 2).sum(1).mean()
    assert float(losses.r1_penalty(d, x).detach()) == pytest.approx(float(want), rel=1e-5)
    # through a view (D sees 3x the image): the gradient with respect to the un-augmented image
    want_view = ((3 * w + 18 * x.flatten(1)) ** 2).sum(1).mean()
    assert float(losses.r1_penalty(d, x, view=lambda v: 3 * v).detach()) == pytest.approx(float(want_view), rel=1e-5)


def test_spectral_norm_bounds_every_layer():
    from pgan_cli.gan.models.nets import ConvDiscriminator, MLPDiscriminator

    torch.manual_seed(6)
    for d in (ConvDiscriminator(1, 16, width=8, norm="spectral", num_classes=3),
              MLPDiscriminator((5,), width=8, norm="spectral")):
        d.train()
        x = torch.randn(4, *d.input_shape)
        for _ in range(30):  # power iterations run in training-mode forward passes
            d(x)
        d.eval()
        layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        assert layers and all(hasattr(m, "parametrizations") for m in layers)
        for m in layers:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert float(sigma) == pytest.approx(1.0, abs=0.05)


# ---- the command line: defaults, logs, resume, DP ------------------------------------------------------
def test_defaults_per_kind_are_recorded(cli, tmp_path, digits8, ring8):
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    assert cli("train", digits8, "--steps", "2", "-o", tmp_path / "i.pt", *TINY).exit_code == 0
    c = read_checkpoint_file(tmp_path / "i.pt")["config"]
    assert (c["augment"], c["ema"], c["r1"], c["class_loss_weight"]) == ("diffaug", True, 0.0, 1.0)  # dcgan, images
    assert cli("train", ring8, "--arch", "wgan-gp", "--steps", "2", "-o", tmp_path / "v.pt", *TINY).exit_code == 0
    c = read_checkpoint_file(tmp_path / "v.pt")["config"]
    # Gulrajani et al.'s toy setting on vectors (TINY's --batch-size 32 wins over the default 256)
    assert (c["augment"], c["gp_weight"], c["batch_size"]) == ("none", 0.1, 32)
    assert cli("train", ring8, "--arch", "wgan-gp", "--steps", "1", "-o", tmp_path / "b.pt", "-q").exit_code == 0
    assert read_checkpoint_file(tmp_path / "b.pt")["config"]["batch_size"] == 256
    assert cli("train", digits8, "--arch", "wgan-gp", "--steps", "1", "-o", tmp_path / "w.pt", *TINY).exit_code == 0
    c = read_checkpoint_file(tmp_path / "w.pt")["config"]
    # the critic's penalty, no DiffAugment, the AC-GAN weight for a Wasserstein critic
    assert (c["gp_weight"], c["augment"], c["class_loss_weight"]) == (10.0, "none", 3.0)
    assert cli("train", digits8, "--arch", "sngan", "--steps", "1", "-o", tmp_path / "s.pt", *TINY).exit_code == 0
    c = read_checkpoint_file(tmp_path / "s.pt")["config"]
    assert (c["norm"], c["lr_d"], c["lr_g"], c["n_critic"], c["augment"]) == ("spectral", 4e-4, 1e-4, 1, "diffaug")


def test_ada_p_is_logged_saved_and_resumed(cli, tmp_path, digits8):
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    log, ck = tmp_path / "t.jsonl", tmp_path / "a.pt"
    r = cli("train", digits8, "--augment", "ada", "--r1", "1", "--steps", "40", "--log", log, "--log-every", "10",
            "-o", ck, *TINY)
    assert r.exit_code == 0, r
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert all("augment_p" in x for x in recs)
    assert recs[-1]["augment_p"] > 0  # a small D overfits 8x8 digits at once: p rises
    assert any("r1" in x for x in recs)
    saved = read_checkpoint_file(ck)
    assert saved["extra"]["ada"]["p"] == pytest.approx(recs[-1]["augment_p"])
    # resuming continues from the saved p, and equals an uninterrupted run
    full = tmp_path / "full.pt"
    assert cli("train", digits8, "--augment", "ada", "--r1", "1", "--steps", "60", "-o", full, *TINY).exit_code == 0
    r = cli("train", digits8, "--resume", ck, "--steps", "60", "-o", tmp_path / "b.pt", "-q")
    assert r.exit_code == 0, r
    a, b = read_checkpoint_file(full), read_checkpoint_file(tmp_path / "b.pt")
    assert a["extra"]["ada"]["p"] == pytest.approx(b["extra"]["ada"]["p"])
    for k, v in a["generator"].items():
        assert torch.allclose(v.float(), b["generator"][k].float(), atol=1e-6), k


def test_bad_combinations(cli, tmp_path, digits8, ring8):
    out = tmp_path / "x.pt"
    assert_clean_error(cli("train", ring8, "--augment", "diffaug", "-o", out), "--augment diffaug", "vectors")
    assert_clean_error(cli("train", digits8, "--arch", "wgan-gp", "--augment", "ada", "-o", out), "--augment ada",
                       "diffaug")
    assert_clean_error(cli("train", digits8, "--augment", "flip", "-o", out), "--augment")
    assert_clean_error(cli("train", digits8, "--r1", "-1", "-o", out), "--r1")
    assert_clean_error(cli("train", digits8, "--arch", "wgan", "--norm", "spectral", "-o", out), "spectral")
    assert_clean_error(cli("train", digits8, "--dp-epsilon", "4", "--augment", "ada", "-o", out), "--augment ada",
                       "--dp-epsilon")
    assert_clean_error(cli("train", digits8, "--dp-epsilon", "4", "--r1", "1", "-o", out), "--r1", "--dp-epsilon")
    assert not out.exists()


def test_dp_accountant_ignores_augmentation_and_sngan_runs(cli, tmp_path, digits8):
    """DiffAugment changes what each per-sample gradient is computed on, not how many records it
    depends on: the noise and epsilon are those of the same run without augmentation. sngan under
    DP-SGD trains with GroupNorm in place of spectral normalisation."""
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    dps = {}
    for aug in ("none", "diffaug"):
        ck = tmp_path / f"{aug}.pt"
        r = cli("train", digits8, "--arch", "sngan", "--augment", aug, "--dp-epsilon", "4", "--epochs", "1",
                "-o", ck, *TINY)
        assert r.exit_code == 0, r
        c = read_checkpoint_file(ck)["config"]
        assert c["norm"] == "groupnorm" and c["dp_norm_replaced"] == "spectral -> groupnorm"
        dps[aug] = c["dp"]
    for key in ("noise_multiplier", "sample_rate", "steps", "epsilon"):
        assert dps["none"][key] == pytest.approx(dps["diffaug"][key]), key


def test_ema_horizon_grows_with_the_run(digits8):
    """After t generator steps the EMA uses decay min(0.999, (1 + t) / (10 + t)): early steps are
    averaged over a short horizon, so a short run is not held at its initial weights."""
    from pgan_cli.dataset import read_dataset
    from pgan_cli.gan.training.config import make_config
    from pgan_cli.gan.training.loop import Trainer

    b = read_dataset(digits8)
    cfg = make_config(b, steps=1, width=4, latent_dim=4, batch_size=16, augment="none")
    t = Trainer(cfg, b.samples[:64], None, output=None)
    init = [p.clone() for p in t.G_ema.parameters()]
    with torch.no_grad():
        for p in t.G.parameters():
            p.add_(1.0)
    t.step = 0
    t._update_ema()  # decay (1 + 0) / 10 = 0.1: 90% of the way to G
    for e, p0 in zip(t.G_ema.parameters(), init):
        assert torch.allclose(e, p0 + 0.9, atol=1e-6)
