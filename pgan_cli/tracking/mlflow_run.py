"""The MLflow backend of :mod:`pgan_cli.tracking`: a run in a local file store, written by
``MlflowClient`` with no server (docs/train.md, "Tracking")."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

from pgan_cli.errors import InputError
from pgan_cli.params import OptionError
from pgan_cli.tracking import (FALLBACK_PARAM_VALUE, MAX_KEY, MAX_TAG_VALUE, RUN_ID, Tracker, TrackSpec, _key,
                               _mlflow, _why, flatten_params)


class MlflowTracker(Tracker):
    """A run in an MLflow file store, through ``MlflowClient`` (no active-run global state)."""

    backend = "mlflow"

    def __init__(self, spec: TrackSpec):
        super().__init__(spec)
        self.run_id: str | None = spec.run_id
        self.experiment_id: str | None = None
        self.owned = False    # whether end() closes the run (a run pgan opened or reopened)
        self.reopened = False
        self.resumed_from: str | None = None

    @contextmanager
    def _client(self):
        with _mlflow(self.spec.uri) as (client, errors):
            try:
                yield client
            except errors as e:
                raise InputError(f"MLflow ({self.spec.uri}): {_why(e)}") from None

    def start(self, name, tags=None, *, resume=None, step=0):
        with self._client() as c:
            if self.run_id is not None:  # log into an existing run (checked by check_tracking)
                self.experiment_id = c.get_run(self.run_id).info.experiment_id
                return
            prev = resume if isinstance(resume, dict) and resume.get("backend") == "mlflow" else None
            if prev is not None and self._reopen(c, prev):
                return
            exp = c.get_experiment_by_name(self.spec.experiment)
            if exp is None:
                try:
                    self.experiment_id = c.create_experiment(self.spec.experiment)
                except Exception:  # made meanwhile by another process
                    exp = c.get_experiment_by_name(self.spec.experiment)
                    if exp is None:
                        raise
            if exp is not None:
                if exp.lifecycle_stage != "active":
                    raise OptionError(f"$track_experiment {OptionError.literal(self.spec.experiment)!r} is deleted "
                                      f"in {OptionError.literal(self.spec.uri)}", "track_experiment")
                self.experiment_id = exp.experiment_id
            run_tags = dict(tags or {})
            if prev is not None and isinstance(prev.get("run_id"), str):
                run_tags["pgan.resumed_from_run"] = prev["run_id"][:MAX_KEY]
            self.run_id = c.create_run(self.experiment_id, run_name=name, tags=run_tags).info.run_id
            self.owned = True

    def _reopen(self, c, prev: dict[str, Any]) -> bool:
        """Continue the run a resumed checkpoint logged to, when it is in this store and not deleted."""
        run_id = prev.get("run_id")
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or prev.get("store") != str(self.spec.store):
            self.resumed_from = run_id if isinstance(run_id, str) else None
            return False
        try:
            run = c.get_run(run_id)
        except Exception:
            self.resumed_from = run_id
            return False
        if run.info.lifecycle_stage != "active":
            self.resumed_from = run_id
            return False
        self.run_id, self.experiment_id = run_id, run.info.experiment_id
        c.update_run(run_id, status="RUNNING")
        self.owned = self.reopened = True
        return True

    def log_params(self, params):
        from mlflow.entities import Param, RunTag

        flat = flatten_params(params, limit=_param_limit())
        with self._client() as c:
            have = c.get_run(self.run_id).data.params if self.reopened or self.spec.run_id else {}
            new = [Param(k, v) for k, v in flat.items() if k not in have]
            # MLflow params are write-once: a value that changed (a resumed run's new --epochs or
            # --steps) is kept as the tag pgan.param.KEY, the param keeps the run's first value
            changed = [RunTag(_key(f"pgan.param.{k}"), v[:MAX_TAG_VALUE]) for k, v in flat.items()
                       if k in have and have[k] != v]
            for i in range(0, len(new), 100):
                c.log_batch(self.run_id, params=new[i:i + 100])
            for i in range(0, len(changed), 100):
                c.log_batch(self.run_id, tags=changed[i:i + 100])

    def log_metrics(self, metrics, step):
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [Metric(_key(k), float(v), ts, int(step)) for k, v in metrics.items()]
        with self._client() as c:
            for i in range(0, len(batch), 1000):
                c.log_batch(self.run_id, metrics=batch[i:i + 1000])

    def log_image(self, path, step, tag="samples"):
        self.log_artifact(path, tag)

    def log_artifact(self, path, folder=None):
        with self._client() as c:
            c.log_artifact(self.run_id, str(path), folder)

    def set_tags(self, tags):
        from mlflow.entities import RunTag

        with self._client() as c:
            c.log_batch(self.run_id, tags=[RunTag(_key(k), str(v)[:MAX_TAG_VALUE]) for k, v in tags.items()])

    def end(self, status="FINISHED"):
        if self.owned and self.run_id is not None:
            with self._client() as c:
                c.set_terminated(self.run_id, status)
            self.owned = False

    def record(self):
        return {"backend": "mlflow", "uri": self.spec.uri, "store": str(self.spec.store),
                "experiment": self.spec.experiment, "experiment_id": self.experiment_id, "run_id": self.run_id}


def _param_limit() -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        return int(MAX_PARAM_VAL_LENGTH)
    except (ImportError, AttributeError, TypeError, ValueError):
        return FALLBACK_PARAM_VALUE
