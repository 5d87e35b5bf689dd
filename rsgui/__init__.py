"""rsgui: content-based retrieval of multispectral satellite tiles with learned binary hash codes."""

__version__ = "0.1.0"
