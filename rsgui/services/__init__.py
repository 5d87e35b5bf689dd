"""The services: the one path from files to results that the GUI, ``rsgui-cli`` and the
experiments all call, so none of them holds a copy of this logic.

``indexing`` builds an index; ``search`` reads and encodes a query and writes results;
``evaluation`` evaluates an index; ``training`` makes one plan per method family from a preset and
overrides and trains it; ``similarity`` computes the label-free similarity matrix of archive
tiles; ``generation`` samples conditional GANs and writes their tiles. Long work is a job
(:mod:`rsgui.progress`): a generator that yields progress and is cancelled by closing it.
"""
