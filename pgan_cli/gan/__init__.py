"""The generator side of pgan: the networks (:mod:`.models`), their training (:mod:`.training`, with
DP-SGD and the audit canaries of :mod:`.canaries`), checkpoints (:mod:`.checkpoint`) and sampling
(:mod:`.sampling`). Nothing here imports the measuring side (attacks, metrics, report)."""
