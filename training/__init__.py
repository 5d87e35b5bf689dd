"""Models, losses and training loops: torch only, no Qt, no archive reading.

Arrays and settings in, checkpoints out. From rsgui this layer uses only the error types, the
progress protocol, band names and the atomic writer; the services (``rsgui.services.training``,
``rsgui.services.similarity``, ``rsgui.services.generation``) read the tiles, build the plans and
rank codes for the MAP shown while training.

- ``common``: what every trainer shares (config mixin, optimiser state, prefixes, augmentation,
  progress); ``checkpoint``: safetensors + JSON sidecar files.
- ``uahm`` / ``train_uahm`` / ``losses`` / ``ssm``: unsupervised adversarial hashing and its
  label-free similarity matrix.
- ``cgan`` / ``train_cgan`` / ``generate``: conditional GANs and their samples.
- ``deephash`` / ``train_deephash``: supervised deep hashing.
- ``inception`` / ``gan_metrics``: offline Inception v3 features, FID / KID / IS-style scores.
"""
