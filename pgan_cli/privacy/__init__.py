"""Privacy of a release: distance-based metrics (``distances``: DCR, NNDR, NNAA, authenticity, C_T,
near-copies), DP-SGD training (``dpsgd``), local DP of records (``ldp``) and the privacy-utility
curve (``curve``)."""
