"""Distance-based privacy metrics of a synthetic set (DCR, NNDR, NNAA, authenticity, C_T, near-copies)."""
