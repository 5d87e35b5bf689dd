"""Checkpoints: safetensors weights plus a JSON sidecar, both written atomically.

Model files are data, never code: nothing here unpickles. A file that is not a safetensors
checkpoint of ours is refused with a message naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rsgui.atomic import atomic_path, atomic_write_text
from rsgui.errors import ModelFileError

FORMAT = "rsgui-checkpoint"
FORMAT_VERSION = 1


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.safetensors`` -> ``model.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` to ``path`` (safetensors) and ``meta`` to its JSON sidecar.

    The weights are renamed into place first and the sidecar last, so a reader that finds a
    sidecar always finds the weights it describes.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    full_meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic_write_text(sidecar_path(path), json.dumps(full_meta, indent=2, default=str))
    return path


def load_checkpoint(
    path: str | os.PathLike, expected_method: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read weights and sidecar; raise :class:`ModelFileError` with the file name on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing its settings file {side.name}") from None
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{side}: unreadable settings ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{side}: not an rsgui checkpoint settings file")
    if expected_method is not None and meta.get("method") != expected_method:
        raise ModelFileError(
            f"{path}: a {meta.get('method')!r} model, but method {expected_method!r} was asked for"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: not a safetensors model file ({e})") from None
    return tensors, meta
