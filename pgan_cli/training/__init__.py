"""GAN training: losses (:mod:`.losses`), the trainer (:mod:`.loop`) and augmentation (:mod:`.augment`)."""
