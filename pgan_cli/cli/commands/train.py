"""``pgan train``: train a GAN (dcgan, wgan, wgan-gp, sngan; conv or mlp; conditional) on a dataset file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pgan_cli import console
from pgan_cli.cli.frame import DeviceOpt, JsonOpt, SeedOpt, TrackExperimentOpt, TrackOpt, TrackUriOpt, command
from pgan_cli.params import DEFAULT_TENSORBOARD_ROOT, DEFAULT_TRACK
from pgan_cli.gan.training import defaults as D


def _per_arch(key: str) -> str:
    """An option's per-arch defaults for its help text, e.g. "dcgan 0.0002, wgan 5e-05, ..."."""
    return ", ".join(f"{a} {v:g}" if isinstance(v := D.ARCH_DEFAULTS[a][key], (int, float)) else f"{a} {v}"
                     for a in D.ARCHS)


def _checked_options(ctx: typer.Context, options: dict, resume: Optional[Path]) -> dict:
    """The training options to pass on: all of them for a new run; for a resumed run, which takes
    its model and training options from the checkpoint, those given on the command line, which
    must agree with it (docs/train.md, Resume). An option that would be ignored by the run's arch
    (the checkpoint's, when resuming) or mode is refused (``D.APPLIES``)."""
    from pgan_cli.params import check_applies, defaults_of

    if resume is None:
        check_applies(D.APPLIES, ctx.params, defaults_of(train_cmd))
        return options
    from pgan_cli.gan.checkpoint import read_checkpoint_file
    from pgan_cli.gan.training.config import check_resume_options

    config = read_checkpoint_file(resume)["config"]
    given = {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}
    options = {k: v for k, v in options.items() if k in given}
    dp_given = {k: ctx.params[k] for k in ("dp_epsilon", "dp_delta", "max_grad_norm") if k in given}
    check_resume_options(config, {**options, **dp_given}, resume)
    check_applies(D.APPLIES, ctx.params, defaults_of(train_cmd), {k: config.get(k) for k in ("arch", "conditional")})
    return options


@command("train", in_place=("resume",), help="Train a GAN (dcgan, wgan, wgan-gp, sngan) on images or vectors; writes a checkpoint.")
def train_cmd(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Training data: a pgan dataset file (.h5), e.g. splits/train.h5.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Checkpoint to write (.pt); default: the --resume file.", dir_okay=False)] = None,
    arch: Annotated[str, typer.Option("--arch", help="Loss and regulariser: " + ", ".join(D.ARCHS) + ".")] = D.DEFAULT_ARCH,
    net: Annotated[Optional[str], typer.Option("--net", help="Backbone: conv (default for images) or mlp (default for vectors).")] = None,
    norm: Annotated[Optional[str], typer.Option("--norm", help="Normalisation in D: " + ", ".join(D.NORMS) + " (default per arch: " + ", ".join(f"{a} {D.ARCH_DEFAULTS[a]['norm']}" for a in D.ARCHS) + ").")] = None,
    conditional: Annotated[bool, typer.Option("--conditional", help="Class-conditional G and an AC-GAN class head on D (needs labels).")] = False,
    class_loss_weight: Annotated[Optional[float], typer.Option("--class-loss-weight", help=f"Weight of the AC-GAN class loss (default per arch: {_per_arch('class_loss_weight')}).")] = None,
    class_balanced: Annotated[bool, typer.Option("--class-balanced", help="Weight the class loss by inverse class frequency.")] = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help=f"Total epochs over the data (also with --resume); default {D.DEFAULT_EPOCHS}.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total generator steps (instead of --epochs).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=f"Real samples per critic step, split across torchrun processes (default {D.DEFAULT_BATCH_SIZE}; {D.VECTOR_GP_BATCH} for wgan-gp on vectors).")] = None,
    lr_g: Annotated[Optional[float], typer.Option("--lr-g", help=f"Generator learning rate (default per arch: {_per_arch('lr_g')}).")] = None,
    lr_d: Annotated[Optional[float], typer.Option("--lr-d", help=f"Discriminator learning rate (default per arch: {_per_arch('lr_d')}).")] = None,
    n_critic: Annotated[Optional[int], typer.Option("--n-critic", help=f"Critic steps per generator step (default per arch: {_per_arch('n_critic')}).")] = None,
    gp_weight: Annotated[Optional[float], typer.Option("--gp-weight", help=f"wgan-gp: gradient-penalty weight lambda (default {D.ARCH_DEFAULTS['wgan-gp']['gp_weight']:g}).")] = None,
    clip: Annotated[Optional[float], typer.Option("--clip", help=f"wgan: weight-clipping bound c (default {D.ARCH_DEFAULTS['wgan']['clip']:g}).")] = None,
    latent_dim: Annotated[int, typer.Option("--latent-dim", help="Size of the noise z.")] = D.DEFAULT_LATENT_DIM,
    width: Annotated[int, typer.Option("--width", help="Base width of the nets (conv channels; MLP hidden = 4x).")] = D.DEFAULT_WIDTH,
    precision: Annotated[str, typer.Option("--precision", help="fp32, bf16 (autocast + channels_last; CPU or GPU) or fp16 (GPU AMP).")] = D.DEFAULT_PRECISION,
    augment: Annotated[Optional[str], typer.Option("--augment", help=f"What D sees: {', '.join(D.AUGMENTS)}. diffaug: DiffAugment (colour, translation, cutout) on real and generated images; ada: the same with ADA's adaptive probability; pgan: pGAN's zoom/rotation/shift/intensity on real images only (default for images per arch: {_per_arch('image_augment')}; vectors: {D.VECTOR_AUGMENT}).")] = None,
    r1: Annotated[float, typer.Option("--r1", help=f"R1 penalty weight gamma on D's gradient at real data, applied every {D.R1_EVERY} D steps (0: off).")] = D.DEFAULT_R1,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Sample from an exponential moving average of G's weights.")] = D.DEFAULT_EMA,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run saved in this checkpoint.", dir_okay=False)] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Save the checkpoint every N generator steps (0: only at the end).")] = D.DEFAULT_CHECKPOINT_EVERY,
    log: Annotated[Optional[Path], typer.Option("--log", help="Write a JSON line per log step (train.jsonl).", dir_okay=False)] = None,
    log_every: Annotated[int, typer.Option("--log-every", help="Generator steps between log lines.")] = D.DEFAULT_LOG_EVERY,
    sample_every: Annotated[int, typer.Option("--sample-every", help="Write a sample grid (PNG) every N generator steps.")] = 0,
    sample_dir: Annotated[Optional[Path], typer.Option("--sample-dir", help="Folder for the sample grids.", file_okay=False)] = None,
    dp_epsilon: Annotated[Optional[float], typer.Option("--dp-epsilon", help="Train D with DP-SGD (Opacus, PRV accountant) to this epsilon; G is private by post-processing. dcgan and wgan.")] = None,
    dp_delta: Annotated[Optional[float], typer.Option("--dp-delta", help="DP delta; must be below 1/N [default: min(1e-5, 1/(10 N))].")] = None,
    max_grad_norm: Annotated[Optional[float], typer.Option("--max-grad-norm", help="DP-SGD per-sample gradient clipping norm C [default: 1.0].")] = None,
    audit_canaries: Annotated[int, typer.Option("--audit-canaries", help="Add M audit canaries, each trained on with probability 1/2, for `pgan dp-audit` (0: none). Not for a release.")] = 0,
    canary_source: Annotated[Optional[Path], typer.Option("--canary-source", help="Held-out dataset file the canaries are drawn from (default: crafted noise canaries).", dir_okay=False)] = None,
    track: TrackOpt = DEFAULT_TRACK,
    track_uri: TrackUriOpt = None,
    track_experiment: TrackExperimentOpt = None,
    track_dir: Annotated[Optional[Path], typer.Option("--track-dir", help=f"--track tensorboard: the folder for the run's event files [default: {DEFAULT_TENSORBOARD_ROOT}/<checkpoint name>; with --resume, the run's own].", file_okay=False)] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Train a GAN on DATA and write a checkpoint (weights, optimisers, config, RNG states, data hash).

    --arch picks the loss (dcgan: non-saturating, Adam 2e-4; wgan: weight clipping, RMSprop 5e-5,
    5 critic steps; wgan-gp: gradient penalty 10 on images and 0.1 on vectors, Adam 1e-4 (0.5, 0.9),
    5 critic steps; sngan: spectral normalisation and hinge loss, D 4e-4 / G 1e-4); --net the
    backbone. With dcgan and sngan D sees images through DiffAugment (--augment none to turn it
    off); G is sampled from its moving average (--no-ema to turn it off). Data-parallel with torchrun: torchrun --nproc-per-node 2 -m pgan_cli train ...

    Example: pgan train splits/train.h5 --arch wgan-gp --conditional --epochs 15 --log train.jsonl -o gen.pt
    Example: pgan train splits/train.h5 --arch dcgan --dp-epsilon 4 --epochs 20 -o gen_dp.pt
    Example: pgan train splits/train.h5 --dp-epsilon 4 --audit-canaries 200 --canary-source splits/reference.h5 -o audit.pt
    Example: pgan train splits/train.h5 --track mlflow --sample-every 500 --sample-dir grids -o gen.pt
    """
    from pgan_cli.cli.frame import resolve_device
    from pgan_cli.errors import UsageError
    from pgan_cli.files import check_input
    from pgan_cli.gan.training.run import train_file

    check_input(data, "dataset file")
    if resume is not None:
        check_input(resume, "checkpoint")
    out = output or resume
    if out is None:
        raise UsageError("missing --output/-o: the checkpoint file to write (e.g. -o gen.pt)")
    from pgan_cli.gan.training.dpsgd import dp_trainer

    options = dict(arch=arch, net=net, norm=norm, conditional=conditional, class_loss_weight=class_loss_weight,
                   class_balanced=class_balanced, epochs=epochs, steps=steps, batch_size=batch_size, lr_g=lr_g,
                   lr_d=lr_d, n_critic=n_critic, latent_dim=latent_dim, width=width, precision=precision,
                   augment=augment, r1=r1, ema=ema, seed=seed, gp_weight=gp_weight, clip=clip)
    options = _checked_options(ctx, options, resume)
    trainer_cls = dp_trainer(dp_epsilon, dp_delta, max_grad_norm, resume=resume)
    dev = resolve_device(device)
    summary = train_file(data, out, device=dev, resume=resume, log_path=log, checkpoint_every=checkpoint_every,
                         log_every=log_every, sample_every=sample_every, sample_dir=sample_dir,
                         progress=not console.state.quiet, audit_canaries=audit_canaries,
                         canary_source=canary_source, track=track, track_uri=track_uri, track_dir=track_dir,
                         track_experiment=track_experiment, **options,
                         **({"trainer_cls": trainer_cls} if trainer_cls else {}))
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    from pgan_cli.tracking import describe

    if json_out:
        console.emit_json(summary)
    else:
        console.emit(f"wrote {out}: {summary['arch']}/{summary['net']}, {summary['steps']} generator steps, "
                     f"{summary['epochs']} epochs in {summary['wall_time']:.1f} s"
                     + (f", DP epsilon {summary['dp']['epsilon']:.3g} at delta {summary['dp']['delta']:.2g}"
                        if summary.get("dp") else "")
                     + describe(summary.get("tracking")))
