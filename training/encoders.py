"""Dispatch a checkpoint to the encoder of the method that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

from rsgui.encoders import Encoder, ModelFileError
from training.checkpoint import sidecar_path


def encoder_from_checkpoint(path: Path, expected_method: str | None = None) -> Encoder:
    side = sidecar_path(path)
    try:
        method = json.loads(side.read_text(encoding="utf-8")).get("method")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing its settings file {side.name}") from None
    except (OSError, ValueError, AttributeError) as e:
        raise ModelFileError(f"{side}: unreadable settings ({e})") from None
    if expected_method is not None and method != expected_method:
        raise ModelFileError(
            f"{path}: a {method!r} model, but method {expected_method!r} was asked for"
        )
    if method in ("uahm", "dhnn-ms", "gan-rgb", "gan-ms"):
        from training.uahm_encoder import load_encoder
    elif method == "deephash":
        from training.deephash_encoder import load_encoder
    else:
        raise ModelFileError(f"{path}: a {method!r} model cannot encode tiles for retrieval")
    return load_encoder(path)
