"""Reproductions of the method's experimental protocols, writing tables, plots and a report.

``supervised_gan_augmented`` (``rsgui-cli experiment thesis-ch4``): conditional GANs and
supervised deep hashing on real and generated tiles; ``unsupervised_adversarial``
(``thesis-ch5``): unsupervised adversarial hashing against the training-free baseline. Both call
the services and ``training/``, and rank codes with :mod:`rsgui.ranking`.
"""
