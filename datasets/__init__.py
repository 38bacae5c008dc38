"""Data: the dataset registry, the file formats, transforms that carry the intrinsics along,
folder datasets, the dataset check, the DataModule and the built-in synthetic generator.

Import the modules themselves (``datasets.formats``, ``datasets.registry``, …): this package
re-exports nothing, so that importing the light ones never loads PyTorch Lightning.
"""
