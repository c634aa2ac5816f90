"""Experiment tracking (`pgan train --track`, `pgan audit --track`; pgan_cli/tracking/): each run
read back with the library's own reader (MlflowClient, TensorBoard's EventAccumulator) and
compared with the training log; hostile options and a missing extra end in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, assert_clean_error, run_pgan

mlflow = pytest.importorskip("mlflow")  # the dev extra installs both; skipped only where they are missing
pytest.importorskip("tensorboard")

TINY = ["--width", "8", "--latent-dim", "8", "--batch-size", "32", "-q"]
ALLOW = "MLFLOW_ALLOW_FILE_STORE"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_file_store_opt_in(monkeypatch):
    """pgan opts into MLflow's file store around its own calls only: the tests start without it."""
    monkeypatch.delenv(ALLOW, raising=False)


def _client(monkeypatch, store: Path):
    """MLflow's own reader of the store (its file store needs the opt-in, as pgan's docs say)."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv(ALLOW, "true")
    return MlflowClient(tracking_uri=store.resolve().as_uri())


def _records(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()]


def _numbers(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _ckpt_tracking(path: Path) -> dict:
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    return json.loads(read_checkpoint_file(path)["provenance"])["tracking"]


def _train(cli, data, tmp_path, *extra, steps=6, name="g"):
    log, grids, out = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-grids", tmp_path / f"{name}.pt"
    r = cli("train", data, "--steps", str(steps), "--log", log, "--log-every", "2", "--sample-every", "3",
            "--sample-dir", grids, "-o", out, "--json", *TINY, *extra)
    assert r.exit_code == 0 and r.stderr == "", r  # the tracking libraries print nothing of their own
    return json.loads(r.stdout), log, grids, out


# ---- MLflow ---------------------------------------------------------------------------------------------------
def test_mlflow_run_holds_params_metrics_by_step_grids_and_checkpoint(cli, tmp_path, digits8, monkeypatch):
    store = tmp_path / "store"
    summary, log, grids, out = _train(cli, digits8, tmp_path, "--arch", "wgan", "--track", "mlflow",
                                      "--track-uri", store, "--track-experiment", "tiny gans")
    assert ALLOW not in os.environ  # the opt-in was scoped to pgan's own calls
    tr = summary["tracking"]
    assert tr["backend"] == "mlflow" and tr["uri"] == store.resolve().as_uri() and tr["experiment"] == "tiny gans"
    assert _ckpt_tracking(out)["run_id"] == tr["run_id"]  # recorded for --resume

    c = _client(monkeypatch, store)
    run = c.get_run(tr["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "g"
    assert c.get_experiment(run.info.experiment_id).name == "tiny gans"
    params = run.data.params
    assert params["arch"] == "wgan" and params["steps"] == "6" and params["batch_size"] == "32"
    assert params["width"] == "8" and float(params["clip"]) == 0.01 and params["sample_shape"] == "[1, 8, 8]"
    assert params["data_scaling.kind"] == "none"  # nested values flattened with dots
    assert run.data.tags["pgan.command"] == "train" and run.data.tags["pgan.checkpoint"] == str(out.resolve())

    recs = _records(log)
    assert [r["step"] for r in recs] == [2, 4, 6]
    keys = set(_numbers(recs[0]))
    assert {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "wasserstein",
            "images_per_s", "epoch"} <= keys
    for key in keys:  # every number of every record, at its step, exactly as the JSON-lines log has it
        history = sorted((m.step, m.value) for m in c.get_metric_history(tr["run_id"], key))
        assert history == [(r["step"], float(r[key])) for r in recs], key

    arts = {a.path for a in c.list_artifacts(tr["run_id"], "samples")}
    assert arts == {"samples/step0000003.png", "samples/step0000006.png"}
    assert [a.path for a in c.list_artifacts(tr["run_id"], "checkpoint")] == ["checkpoint/g.pt"]
    local = Path(c.download_artifacts(tr["run_id"], "checkpoint/g.pt", str(tmp_path / "dl")))
    assert _sha(local) == _sha(out)  # the final checkpoint, not a periodic one
    grid = Path(c.download_artifacts(tr["run_id"], "samples/step0000006.png", str(tmp_path / "dl")))
    assert _sha(grid) == _sha(grids / "step0000006.png")


def test_mlflow_stderr_stays_clean_and_runs_share_the_experiment(cli, tmp_path, digits8, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    r = cli("train", digits8, "--steps", "2", "--track", "mlflow", "-o", "a.pt", *TINY)
    assert r.exit_code == 0 and r.stderr == "", r
    assert "MLflow run" in r.stdout and store.as_uri() in r.stdout
    r = cli("train", digits8, "--steps", "2", "--track", "mlflow", "-o", "b.pt", *TINY)
    assert r.exit_code == 0 and r.stderr == "", r
    c = _client(monkeypatch, store)
    runs = c.search_runs([c.get_experiment_by_name("pgan").experiment_id])
    assert sorted(x.info.run_name for x in runs) == ["a", "b"]
    # without --log the tracker still gets the records (the last step of a 2-step run)
    assert [m.step for m in c.get_metric_history(runs[0].info.run_id, "loss_g")] == [2]


@pytest.mark.slow
def test_mlflow_logs_the_dp_epsilon_spent(cli, tmp_path, digits_splits, monkeypatch):
    store, log = tmp_path / "store", tmp_path / "dp.jsonl"
    r = cli("train", digits_splits["train"], "--dp-epsilon", "4", "--epochs", "1", "--log", log, "--log-every", "5",
            "--track", "mlflow", "--track-uri", store, "-o", tmp_path / "dp.pt", "--json", *TINY)
    assert r.exit_code == 0, r
    run_id = json.loads(r.stdout)["tracking"]["run_id"]
    c = _client(monkeypatch, store)
    recs = _records(log)
    spent = [(x["step"], x["epsilon"]) for x in recs if x["epsilon"] is not None]  # null before the first epoch end
    assert spent and sorted((m.step, m.value) for m in c.get_metric_history(run_id, "epsilon")) == spent
    assert sorted(m.step for m in c.get_metric_history(run_id, "critic_steps")) == [x["step"] for x in recs]
    assert "loss_d" not in c.get_run(run_id).data.metrics  # DP-SGD leaves real-batch statistics out of the log
    assert c.get_run(run_id).data.params["dp.target_epsilon"] == "4.0"


def test_canary_inclusion_bits_stay_in_the_checkpoint(cli, tmp_path, digits8, monkeypatch):
    """Which audit canaries were trained on is what pgan dp-audit is scored against: not logged."""
    store = tmp_path / "store"
    r = cli("train", digits8, "--steps", "2", "--audit-canaries", "6", "--track", "mlflow", "--track-uri", store,
            "-o", tmp_path / "g.pt", "--json", *TINY)
    assert r.exit_code == 0, r
    params = _client(monkeypatch, store).get_run(json.loads(r.stdout)["tracking"]["run_id"]).data.params
    assert params["audit_canaries.m"] == "6" and params["audit_canaries.source"] == "crafted"
    assert not [k for k in params if k.startswith(("audit_canaries.included", "audit_canaries.rows"))]


def test_mlflow_resume_continues_the_run(cli, tmp_path, digits8, monkeypatch):
    store = tmp_path / "store"
    first, log, _, out = _train(cli, digits8, tmp_path, "--track", "mlflow", "--track-uri", store, steps=4)
    r = cli("train", digits8, "--resume", out, "--steps", "8", "--log", log, "--log-every", "2", "--json",
            "--track", "mlflow", "--track-uri", store, "-q")
    assert r.exit_code == 0, r
    run_id = json.loads(r.stdout)["tracking"]["run_id"]
    assert run_id == first["tracking"]["run_id"]
    c = _client(monkeypatch, store)
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED"
    # params are write-once in MLflow: the first value stays, the resumed run's new total is a tag
    assert run.data.params["steps"] == "4" and run.data.tags["pgan.param.steps"] == "8"
    assert run.data.tags["pgan.resumed_at_step"] == "4"
    recs = _records(log)
    assert sorted((m.step, m.value) for m in c.get_metric_history(run_id, "loss_d")) == \
        [(x["step"], x["loss_d"]) for x in recs]
    assert [x["step"] for x in recs] == [2, 4, 6, 8]


def test_mlflow_resume_into_another_store_starts_a_new_run(cli, tmp_path, digits8, monkeypatch):
    first, _, _, out = _train(cli, digits8, tmp_path, "--track", "mlflow", "--track-uri", tmp_path / "s1", steps=2)
    r = cli("train", digits8, "--resume", out, "--steps", "4", "--json", "--track", "mlflow", "--track-uri",
            tmp_path / "s2", "-q")
    assert r.exit_code == 0, r
    new = json.loads(r.stdout)["tracking"]["run_id"]
    assert new != first["tracking"]["run_id"]
    run = _client(monkeypatch, tmp_path / "s2").get_run(new)
    assert run.data.tags["pgan.resumed_from_run"] == first["tracking"]["run_id"]


# ---- TensorBoard ---------------------------------------------------------------------------------------------
def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_tensorboard_scalars_images_and_params(cli, tmp_path, digits8):
    import io

    from PIL import Image

    tb = tmp_path / "tb"
    summary, log, grids, out = _train(cli, digits8, tmp_path, "--arch", "wgan-gp", "--track", "tensorboard",
                                      "--track-dir", tb)
    assert summary["tracking"] == {"backend": "tensorboard", "dir": str(tb.resolve())}
    ea = _events(tb)
    recs = _records(log)
    for key in ("loss_d", "loss_g", "wasserstein", "gradient_penalty", "grad_norm_d", "epoch"):
        got = [(e.step, e.value) for e in ea.Scalars(key)]
        assert [s for s, _ in got] == [r["step"] for r in recs], key
        np.testing.assert_allclose([v for _, v in got], [r[key] for r in recs], rtol=1e-6, err_msg=key)  # float32
    images = ea.Images("samples")
    assert [e.step for e in images] == [3, 6]
    logged = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)))  # TensorBoard stores RGB
    grid = np.asarray(Image.open(grids / "step0000006.png").convert("L"))
    assert grid.std() > 0 and all(np.array_equal(logged[..., i], grid) for i in range(3))
    params = ea.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| arch | wgan-gp |" in params and "| steps | 6 |" in params
    ck = ea.Tensors("artifacts/checkpoint/text_summary")[0].tensor_proto.string_val[0].decode()
    assert _sha(out) in ck


def test_tensorboard_default_folder_and_resume(cli, tmp_path, digits8, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("train", digits8, "--steps", "4", "--log-every", "2", "--track", "tensorboard", "-o", "g.pt", *TINY)
    assert r.exit_code == 0, r
    folder = tmp_path / "runs" / "g"  # runs/<checkpoint name>
    assert [e.step for e in _events(folder).Scalars("loss_d")] == [2, 4]
    # the resumed run goes on in the folder its checkpoint records, though written to another file
    r = cli("train", digits8, "--resume", "g.pt", "--steps", "6", "--log-every", "2", "--track", "tensorboard",
            "-o", "h.pt", "-q")
    assert r.exit_code == 0, r
    assert [e.step for e in _events(folder).Scalars("loss_d")] == [2, 4, 6]
    assert not (tmp_path / "runs" / "h").exists()


def test_a_checkpoint_cannot_send_event_files_elsewhere(cli, tmp_path, digits8, monkeypatch):
    """The folder a checkpoint records is followed on resume only when it holds event files."""
    monkeypatch.chdir(tmp_path)
    assert cli("train", digits8, "--steps", "2", "--track", "tensorboard", "--track-dir", "tb", "-o", "g.pt",
               *TINY).exit_code == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    blob = torch.load("g.pt", weights_only=True)
    prov = json.loads(blob["provenance"])
    prov["tracking"]["dir"] = str(victim)
    blob["provenance"] = json.dumps(prov)
    torch.save(blob, "g.pt")
    r = cli("train", digits8, "--resume", "g.pt", "--steps", "4", "--track", "tensorboard", "-q")
    assert r.exit_code == 0, r
    assert sorted(os.listdir(victim)) == ["notes.txt"]
    assert [e.step for e in _events(tmp_path / "runs" / "g").Scalars("loss_d")] == [4]


# ---- the audit -----------------------------------------------------------------------------------------------
ODD = "my store $(touch pwned) 'q' #1 %20"


@pytest.mark.slow
def test_audit_logs_into_the_training_run(cli, tmp_path, digits_splits, monkeypatch):
    """The training run and the audit of its samples in one MLflow run, in a store whose name holds
    shell and URI characters; commands.sh quotes the --track options."""
    store = tmp_path / ODD
    out = tmp_path / "g.pt"
    r = cli("train", digits_splits["train"], "--steps", "4", "--track", "mlflow", "--track-uri", store, "-o", out,
            "--json", *TINY)
    assert r.exit_code == 0, r
    run_id = json.loads(r.stdout)["tracking"]["run_id"]
    syn = tmp_path / "syn.h5"
    assert cli("sample", out, "-n", "100", "-o", syn, "-q").exit_code == 0
    audit = tmp_path / "audit"
    r = run_pgan("audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"],
                 "--synthetic", syn, "--attacks", "dcr", "--bootstrap", "10", "--out-dir", audit, "--track",
                 "mlflow", "--track-uri", store, "--track-run", run_id, "--json", "-q", cwd=tmp_path)
    assert r.exit_code in (0, 1), r
    res = json.loads(r.stdout)
    assert res["tracking"]["run_id"] == run_id and not (tmp_path / "pwned").exists()
    summary = json.loads((audit / "summary.json").read_text())

    c = _client(monkeypatch, store)
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["steps"] == "4"  # the training run, still whole
    assert run.data.tags["pgan.audit.verdict"] == summary["verdict"] == res["verdict"]
    m = run.data.metrics
    assert m["audit.pass"] == (1.0 if summary["verdict"] == "pass" else 0.0)
    assert m["audit.privacy.max_black_box_auc"] == summary["privacy"]["max_black_box_auc"]
    assert m["audit.privacy.attacks.dcr.auc"] == summary["privacy"]["attacks"]["dcr"]["auc"]
    assert m["audit.fidelity.mmd.mmd2"] == summary["fidelity"]["mmd"]["mmd2"]
    assert m["audit.gates.total"] == len(summary["gates"])
    assert "loss_g" in m  # the training metrics beside them
    assert {a.path for a in c.list_artifacts(run_id, "audit")} == {"audit/report.html", "audit/summary.json"}
    got = Path(c.download_artifacts(run_id, "audit/summary.json", str(tmp_path / "dl")))
    assert _sha(got) == _sha(audit / "summary.json")

    header = [ln for ln in (audit / "commands.sh").read_text().splitlines() if ln.startswith("#   pgan audit ")]
    argv = shlex.split(header[0][len("#   "):])
    assert argv[argv.index("--track-uri") + 1] == str(store) and argv[argv.index("--track-run") + 1] == run_id


def test_audit_to_tensorboard(tmp_path):
    """log_audit with TensorBoard: the summary's figures as scalars, the verdict as text."""
    from pgan_cli.tracking import check_tracking, log_audit

    golden = json.loads((REPO / "tests" / "golden" / "audit.json").read_text())
    summary = golden["files"]["audit/summary.json"]["content"]
    out = tmp_path / "audit"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps(summary))
    spec = check_tracking("tensorboard", track_dir=tmp_path / "tb")
    rec = log_audit(spec, out, summary, settings={"seed": 0})
    assert rec["dir"] == str((tmp_path / "tb").resolve())
    ea = _events(tmp_path / "tb")
    assert ea.Scalars("audit.pass")[0].value == (1.0 if summary["verdict"] == "pass" else 0.0)
    assert ea.Scalars("audit.privacy.attacks.dcr.auc")[0].value == pytest.approx(
        summary["privacy"]["attacks"]["dcr"]["auc"], rel=1e-6)
    verdict = ea.Tensors("tags/pgan.audit.verdict/text_summary")[0].tensor_proto.string_val[0].decode()
    assert verdict == summary["verdict"]


# ---- hostile options -------------------------------------------------------------------------------------------
def test_missing_extra_is_one_line_naming_it(cli, tmp_path, digits8, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as if not installed
    out = tmp_path / "g.pt"
    r = cli("train", digits8, "--steps", "2", "--track", "mlflow", "-o", out, *TINY)
    assert_clean_error(r, "--track mlflow needs the 'mlflow' extra", "pip install 'pgan-cli[mlflow]'")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    r = cli("train", digits8, "--steps", "2", "--track", "tensorboard", "--track-dir", tmp_path / "tb", "-o", out,
            *TINY)
    assert_clean_error(r, "--track tensorboard needs the 'tensorboard' extra", "pgan-cli[tensorboard]")
    assert not out.exists() and not (tmp_path / "tb").exists()


def test_pgan_imports_without_the_tracking_libraries():
    code = ("import sys, json; import pgan_cli.cli.app, pgan_cli.tracking, pgan_cli.gan.training.callbacks, pgan_cli.audit; "
            "print(json.dumps(sorted(m for m in ('mlflow', 'tensorboard', 'torch.utils.tensorboard') "
            "if m in sys.modules)))")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []


@pytest.mark.parametrize("uri, needle", [
    ("http://localhost:5000", "not a local MLflow file store"),
    ("sqlite:///mlflow.db", "not a local MLflow file store"),
    ("file://otherhost/x", "names another host"),
    ("file:///tmp/a?b", "percent-encode"),
    ("line\nbreak", "control character"),
    ("", "empty"),
])
def test_bad_track_uri(cli, tmp_path, digits8, uri, needle):
    out = tmp_path / "g.pt"
    r = cli("train", digits8, "--steps", "2", "--track", "mlflow", "--track-uri", uri, "-o", out, *TINY)
    assert_clean_error(r, "--track-uri", needle)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


def test_track_uri_and_dir_that_are_files_or_foreign_folders(cli, tmp_path, digits8):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    out = tmp_path / "g.pt"
    for args, needles in (
            (["--track", "mlflow", "--track-uri", afile], ("--track-uri", "is a file")),
            (["--track", "mlflow", "--track-uri", afile.as_uri()], ("--track-uri", "is a file")),
            (["--track", "mlflow", "--track-uri", afile / "sub"], ("--track-uri", "is a file")),
            (["--track", "mlflow", "--track-uri", busy], ("--track-uri", "no MLflow store")),
            (["--track", "tensorboard", "--track-dir", afile], ("--track-dir",)),
            (["--track", "tensorboard", "--track-dir", afile / "sub"], ("--track-dir", "is a file")),
            (["--track", "none", "--track-uri", "x"], ("--track-uri is for --track mlflow",)),
            (["--track", "tensorboard", "--track-experiment", "x"], ("--track-experiment is for --track mlflow",)),
            (["--track", "mlflow", "--track-dir", tmp_path / "tb"], ("--track-dir is for --track tensorboard",)),
            (["--track", "wandb"], ("--track must be one of none, mlflow, tensorboard",)),
            (["--track", "mlflow", "--track-uri", tmp_path / "s", "--track-experiment", " "], ("--track-experiment",)),
    ):
        r = cli("train", digits8, "--steps", "2", "-o", out, *TINY, *args)
        assert_clean_error(r, *needles)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "busy"]
    assert afile.read_text() == "mine" and sorted(os.listdir(busy)) == ["notes.txt"]


def test_audit_bad_run_id_fails_before_any_work(cli, tmp_path, digits_splits, digits8, monkeypatch):
    store = tmp_path / "store"
    _, _, _, out = _train(cli, digits8, tmp_path, "--track", "mlflow", "--track-uri", store, steps=2)
    base = ["audit", "--members", digits_splits["train"], "--holdout", digits_splits["holdout"], "--synthetic",
            digits_splits["reference"], "--out-dir", tmp_path / "audit"]
    for args, needles in (
            (["--track", "mlflow", "--track-uri", store, "--track-run", "../../etc"],
             ("--track-run", "not an MLflow run ID")),
            (["--track", "mlflow", "--track-uri", store, "--track-run", "0" * 32 + "\n"],
             ("--track-run", "not an MLflow run ID")),
            (["--track", "mlflow", "--track-uri", store, "--track-run", "0" * 32], ("--track-run", "not a run in")),
            (["--track", "mlflow", "--track-uri", tmp_path / "nostore", "--track-run", "0" * 32],
             ("no MLflow store", "--track-uri")),
            (["--track", "tensorboard", "--track-run", "0" * 32], ("--track-run is for --track mlflow",)),
    ):
        assert_clean_error(cli(*base, *args), *needles)
    assert not (tmp_path / "audit").exists() and not (tmp_path / "nostore").exists()
    # a deleted run is refused too
    run_id = _ckpt_tracking(out)["run_id"]
    _client(monkeypatch, store).delete_run(run_id)
    assert_clean_error(cli(*base, "--track", "mlflow", "--track-uri", store, "--track-run", run_id), "is deleted")
    assert not (tmp_path / "audit").exists()


def test_a_tracking_failure_mid_run_keeps_the_checkpoint(cli, tmp_path, digits8, monkeypatch):
    from pgan_cli.tracking.mlflow_run import MlflowTracker

    def broken(self, metrics, step):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MlflowTracker, "log_metrics", broken)
    out = tmp_path / "g.pt"
    r = cli("train", digits8, "--steps", "4", "--log-every", "2", "--track", "mlflow", "--track-uri",
            tmp_path / "store", "-o", out, "--json", *TINY)
    assert r.exit_code == 0, r
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and "checkpoint" in warnings[0]
    assert "No space left" in json.loads(r.stdout)["tracking"]["error"]
    from pgan_cli.gan.checkpoint import read_checkpoint_file

    assert read_checkpoint_file(out)["progress"]["step"] == 4


# ---- values ----------------------------------------------------------------------------------------------------
def test_flatten_params_cuts_long_values_and_keeps_keys_valid():
    from pgan_cli.tracking import flatten_params, summary_figures

    flat = flatten_params({"a": {"b": 1, "c": [1, 2]}, "long": "x" * 100, "odd key!": True, "none": None}, limit=40)
    assert flat["a.b"] == "1" and flat["a.c"] == "[1, 2]" and flat["odd key_"] == "true" and flat["none"] == "null"
    assert len(flat["long"]) == 40 and flat["long"].endswith("... (100 characters)")
    figs = summary_figures({"x": {"y": 1.5, "z": True, "w": [1], "v": float("nan"), "format_version": 1}})
    assert figs == {"audit.x.y": 1.5}
