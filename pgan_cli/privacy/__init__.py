"""Differential privacy: local DP of inputs (:mod:`.ldp`), DP-SGD training (:mod:`.dpsgd`) and the
privacy-utility curve (:mod:`.curve`)."""
