"""The stamp of every file pgan writes, and the one table readers dispatch on.

Every output carries ``format`` (what it is) and ``format_version`` (its layout): a JSON key
pair for JSON results, root attributes for HDF5 files, entries of the checkpoint dictionary.
Readers look at the stamp, never at which keys happen to be present, and refuse a file whose
stamp they do not know with one line. Each format has one module that writes and reads it:

- dataset ``.h5`` (``kind`` and ``format_version`` attributes): :mod:`pgan_cli.dataset`;
- ``pgan-checkpoint``, the checkpoint ``.pt``: :mod:`pgan_cli.gan.checkpoint`;
- ``pgan-embedding``, an embedding model ``.npz``: :mod:`pgan_cli.embeddings.base`;
- ``pgan-embedded-set``, the JSON sidecar beside an embedded set's ``.npy``: :mod:`pgan_cli.embeddings.api`;
- ``pgan-knn``, ``pgan knn -o knn.h5``: :mod:`pgan_cli.neighbors.files`;
- ``pgan-clusters``, ``pgan cluster -o clusters.h5``: :mod:`pgan_cli.metrics.clustering`;
- ``pgan-attack`` (``pgan attack --json``, keys in :mod:`pgan_cli.attacks.keys`) and
  ``pgan-attack-scores`` (``--scores``): :mod:`pgan_cli.attacks.suite`;
- ``pgan-mmd``, ``pgan-fidelity``, ``pgan-utility``: :mod:`pgan_cli.metrics.mmd`,
  :mod:`pgan_cli.metrics.fidelity`, :mod:`pgan_cli.metrics.utility`;
- ``pgan-dp-audit``, ``pgan dp-audit --json``: :mod:`pgan_cli.privacy.one_run_audit`;
- ``pgan-summary``, ``summary.json``: :mod:`pgan_cli.report.summary` (read by
  :mod:`pgan_cli.report.results` with the other results);
- the training log (JSON lines whose records hold ``step``): :mod:`pgan_cli.gan.training.callbacks`;
- ``pgan-shadow-run``, the manifest of one shadow generator in ``pgan attack --shadow-dir``:
  :mod:`pgan_cli.attacks.shadow`.

See ``docs/FORMAT.md``.
"""

from __future__ import annotations

from typing import Any

from pgan_cli.errors import FormatError

ATTACK = "pgan-attack"
ATTACK_SCORES = "pgan-attack-scores"
MMD = "pgan-mmd"
FIDELITY = "pgan-fidelity"
UTILITY = "pgan-utility"
SUMMARY = "pgan-summary"
DP_AUDIT = "pgan-dp-audit"
KNN = "pgan-knn"
CLUSTERS = "pgan-clusters"
CHECKPOINT = "pgan-checkpoint"
EMBEDDING_MODEL = "pgan-embedding"
EMBEDDED_SET = "pgan-embedded-set"  # the JSON sidecar of an embedded set's NPY file
SHADOW_RUN = "pgan-shadow-run"  # shadow.json beside one shadow generator (pgan attack --shadow-dir)
RESULT_VERSION = 1  # the layout version of the JSON results above

JSON_RESULTS = (ATTACK, MMD, FIDELITY, UTILITY, SUMMARY, DP_AUDIT)
# the words of summary.json's "verdict" (docs/report.md), read by the report, the audit and tracking
VERDICT_PASS, VERDICT_FAIL, VERDICT_NONE = "pass", "fail", "no gates"
KEY_FORMAT, KEY_FORMAT_VERSION = "format", "format_version"


def stamped(fmt: str, result: dict[str, Any], version: int = RESULT_VERSION) -> dict[str, Any]:
    """``result`` with its stamp first: ``{"format": fmt, "format_version": version, ...}``."""
    return {KEY_FORMAT: fmt, KEY_FORMAT_VERSION: version,
            **{k: v for k, v in result.items() if k not in (KEY_FORMAT, KEY_FORMAT_VERSION)}}


def stamp_of(data: Any, where: str, known: tuple[str, ...] = JSON_RESULTS) -> str:
    """The format of a parsed JSON result, or a :class:`FormatError` naming ``where``."""
    fmt = data.get(KEY_FORMAT) if isinstance(data, dict) else None
    if fmt not in known:
        what = f"'format': {fmt!r}" if fmt is not None else "no 'format' stamp"
        raise FormatError(f"{where} is not a pgan result ({what}); pgan reads the --json output of "
                          f"pgan attack, mmd, fidelity, utility or dp-audit and summary.json (written by this pgan: "
                          f"re-run the command that made it)")
    version = data.get(KEY_FORMAT_VERSION)
    if version != RESULT_VERSION:
        raise FormatError(f"{where}: {fmt} format_version {version!r} is not {RESULT_VERSION}, the one this "
                          f"pgan reads; re-run the command that made it")
    return fmt
