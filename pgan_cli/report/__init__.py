"""The audit report: load the results of the measuring commands, gate on them, render HTML.

- :mod:`pgan_cli.report.results`: read result files (attack, mmd, fidelity, utility JSON, a
  training log, knn and scores HDF5), each recognised by its format stamp;
- :mod:`pgan_cli.report.summary`: build the nested summary
  (``privacy.attacks.dcr.auc``, ``fidelity.mmd.p_value``, ``utility.tstr.balanced_accuracy``...);
- :mod:`pgan_cli.report.gates`: parse and evaluate gates (``privacy.attacks.dcr.auc <= 0.6``) and
  the ``default`` / ``strict`` presets; the verdict;
- :mod:`pgan_cli.report.measure` and :mod:`pgan_cli.report.html`: what the page measures, and the
  self-contained HTML page (figures embedded as PNG data URIs);
- :mod:`pgan_cli.report.curve`: the privacy-utility curve over several audits.

``pgan audit`` (:mod:`pgan_cli.audit`) runs every measuring step and then this report.
"""
