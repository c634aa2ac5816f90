"""GAN training: losses (:mod:`.losses`), the trainer (:mod:`.loop`), its callbacks (:mod:`.callbacks`),
DP-SGD (:mod:`.dpsgd`) and augmentation (:mod:`.augment`)."""
