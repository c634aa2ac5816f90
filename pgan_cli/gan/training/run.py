"""``pgan train``'s file job: read the dataset, resolve the options (a new run's config, or the
checkpoint's when resuming), record provenance and run the :class:`~pgan_cli.gan.training.loop.Trainer`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pgan_cli.gan.checkpoint import check_model_fits, read_checkpoint_file
from pgan_cli.errors import InputError
from pgan_cli.params import (DEFAULT_TENSORBOARD_ROOT, DEFAULT_TRACK, TRACK_BACKENDS, Interval, OptionError, Options,
                             constrained)
from pgan_cli.gan import canaries
from pgan_cli.gan.training.callbacks import TrackRun, TrainingCallback
from pgan_cli.gan.training.config import check_resumable, check_resume_options, make_config
from pgan_cli.gan.training.defaults import DEFAULT_CHECKPOINT_EVERY, DEFAULT_LOG_EVERY
from pgan_cli.gan.training.loop import Trainer


def _add_canaries(config: dict[str, Any], data, m: int, source, resume) -> tuple[Any, Any]:
    """The training records with the run's audit canaries: a new design (recorded in ``config``)
    or, when resuming, the checkpoint's, regenerated."""
    if resume is None:
        if m > data.n:
            from pgan_cli import console

            console.warn(f"{m} audit canaries for {data.n} training records: about {m // 2} canaries will be "
                         f"trained on, a large share of the data")
        design, x, y = canaries.design_canaries(data, config, m, int(config["seed"]), source)
        config[canaries.CONFIG_KEY] = design.record()
    else:
        design = canaries.CanaryDesign.from_record(config[canaries.CONFIG_KEY], config, str(resume))
        x, y = canaries.canary_records(design, config, source, where=str(resume))
    samples, labels = canaries.with_canaries(data.samples, data.labels, design, x, y)
    config["data_n"] = int(len(samples))
    return samples, labels


@constrained(checkpoint_every=Interval(0, None), log_every=Interval(1, None), sample_every=Interval(0, None),
             audit_canaries=canaries.COUNT, track=Options(TRACK_BACKENDS))
def train_file(data_path: str | os.PathLike, output: str | os.PathLike, *, device: str = "cpu",
               resume: str | os.PathLike | None = None, log_path: str | os.PathLike | None = None,
               checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, log_every: int = DEFAULT_LOG_EVERY,
               sample_every: int = 0, sample_dir: str | os.PathLike | None = None, progress: bool = True,
               trainer_cls: type[Trainer] = Trainer, callbacks: list[TrainingCallback] | None = None,
               audit_canaries: int = 0, canary_source: str | os.PathLike | None = None,
               track: str = DEFAULT_TRACK, track_uri: str | None = None, track_dir: str | os.PathLike | None = None,
               track_experiment: str | None = None, **options: Any) -> dict[str, Any]:
    """Train on a dataset file and write the checkpoint ``output``; what ``pgan train`` runs.

    ``options`` are :func:`~pgan_cli.gan.training.config.make_config`'s keyword arguments. With
    ``resume``, the model options come from that checkpoint and only ``epochs``/``steps`` (the new
    totals) are taken from ``options``: any other option given must equal the checkpoint's
    (:func:`~pgan_cli.gan.training.config.resume_conflicts`; pass only what the user asked for); the
    data must be the same file contents (SHA-256) the run started with.

    ``audit_canaries`` M > 0 adds M audit canaries, each trained on with probability 1/2, drawn from
    ``canary_source`` (a held-out dataset file) or crafted (:mod:`pgan_cli.gan.canaries`), for
    ``pgan dp-audit``; a resumed run keeps the canaries it started with.

    ``track`` ``mlflow`` or ``tensorboard`` logs the run (:mod:`pgan_cli.tracking`, checked before
    any work): into the MLflow file store ``track_uri`` (default ``./mlruns``), experiment
    ``track_experiment`` (default ``pgan``), or TensorBoard event files in ``track_dir`` (default
    ``runs/<checkpoint name>``); the summary's ``tracking`` says where. A resumed run continues the
    MLflow run (or TensorBoard folder) its checkpoint records.
    """
    from pgan_cli.dataset import read_dataset
    from pgan_cli.files import sha256_file
    from pgan_cli.provenance import make_provenance
    from pgan_cli.tracking import check_tracking, resumed_folder, resumed_record

    spec = check_tracking(track, track_uri=track_uri, track_dir=track_dir, track_experiment=track_experiment,
                          default_dir=Path(DEFAULT_TENSORBOARD_ROOT) / Path(output).stem)

    if canary_source is not None and not audit_canaries and resume is None:
        raise OptionError("$canary_source needs $audit_canaries M (the number of canaries)",
                          "canary_source", "audit_canaries")
    if sample_every and sample_dir is None:
        raise OptionError("$sample_every needs $sample_dir (the folder for the pictures)", "sample_every", "sample_dir")
    data = read_dataset(data_path)
    digest = sha256_file(data_path)
    blob = None
    if resume is not None:
        blob = read_checkpoint_file(resume)
        check_resumable(blob, resume)
        config = dict(blob["config"])
        check_resume_options(config, options, resume)
        if config.get("data_sha256") != digest:
            was = str(config.get("data_sha256") or "none")
            raise InputError(f"{data_path} is not the data {resume} was trained on (SHA-256 {digest[:12]}... "
                             f"differs from the checkpoint's {was[:12]}...); resume with the same file")
        epochs, steps = options.get("epochs"), options.get("steps")
        if epochs is not None and steps is not None:
            raise OptionError("give $epochs or $steps, not both", "epochs", "steps")
        if epochs is not None or steps is not None:
            config["epochs"], config["steps"] = epochs, steps
        if audit_canaries:
            raise OptionError("a resumed run keeps the canaries it started with; drop $audit_canaries",
                              "audit_canaries")
        if canaries.CONFIG_KEY not in config:
            canaries.refuse_source(None, canary_source, str(resume))
    else:
        config = make_config(data, data_sha256=digest, data_path=str(data_path), **options)
    check_model_fits(config)
    samples, labels, inputs = data.samples, data.labels, [data_path]
    if audit_canaries or config.get(canaries.CONFIG_KEY):
        samples, labels = _add_canaries(config, data, audit_canaries, canary_source, resume)
        if canary_source is not None or config[canaries.CONFIG_KEY]["source"] == canaries.SOURCE_FILE:
            inputs.append(canary_source or config[canaries.CONFIG_KEY]["source_path"])
    prov = make_provenance(inputs, seed=config["seed"], device=device,
                           **{k: config[k] for k in ("arch", "net", "norm", "epochs", "steps", "batch_size",
                                                     "conditional", "precision")},
                           resumed_from=str(resume) if resume else None)
    tracked = resumed_record(blob.get("provenance")) if blob is not None else None
    if tracked:  # kept for a later --resume --track, replaced by this run's own when it tracks
        prov["tracking"] = tracked
    track_cb = None
    if spec is not None:
        if spec.backend == "tensorboard" and track_dir is None:
            spec = resumed_folder(spec, tracked)  # a resumed run goes on in its folder
        track_cb = TrackRun(spec, resume=tracked)
        callbacks = [*(callbacks or []), track_cb]
    trainer = trainer_cls(config, samples, labels, device=device, output=output, log_path=log_path,
                          checkpoint_every=checkpoint_every, log_every=log_every, sample_every=sample_every,
                          sample_dir=sample_dir, resume=blob, provenance=prov, progress=progress)
    try:
        if trainer.finished():
            raise OptionError(f"{OptionError.literal(resume)} already reached {trainer.step} steps / "
                              f"{trainer.epoch} epochs; ask for more with $epochs or $steps (totals, not "
                              f"increments)", "epochs", "steps")
        summary = trainer.train(callbacks)
    finally:
        trainer.dist.close()
    if config.get(canaries.CONFIG_KEY):
        rec = config[canaries.CONFIG_KEY]
        summary["audit_canaries"] = {"m": rec["m"], "included": int(sum(rec["included"])), "source": rec["source"]}
    if track_cb is not None and track_cb.result() is not None:
        summary["tracking"] = track_cb.result()
    return summary
