"""Every error type of rsgui, in one place at the bottom of the layers.

Any layer can raise or catch these without importing the layer that usually raises them, which is
what keeps the import graph free of cycles. Messages are one line and name the file at fault.
"""

from __future__ import annotations

import os


class RsguiError(Exception):
    """Base of the errors that carry a message meant for the user as it is."""


class Cancelled(RsguiError):
    """The user stopped a long job between two of its steps."""


class MissingBandsError(RsguiError, ValueError):
    """A band set asks for bands the archive or the tile does not have."""


class TileReadError(RsguiError, ValueError):
    """A tile file that cannot be read as a tile; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ModelFileError(RsguiError, ValueError):
    """A model file that cannot be used: not a checkpoint, another method or band set, corrupt."""


class IndexFileError(RsguiError, ValueError):
    """An index file that cannot be read: missing half, corrupt, another format."""


class IndexMismatchError(RsguiError, ValueError):
    """A query made with another method, band set or code length than the index."""


class JobError(RsguiError):
    """A job that cannot run as asked (bad settings for this archive); shown as it is."""


class BackboneUnavailable(RsguiError):
    """A pretrained network whose weights are not installed."""


class UnsafeNameError(RsguiError, ValueError):
    """A name or path read from a file that would lead outside the folder it belongs in."""


class SavedSearchError(RsguiError, ValueError):
    """A saved-search file that cannot be used: not one, damaged, too large or out of range."""


class FileBusyError(RsguiError, OSError):
    """Another program is writing the same output file (its lock is held)."""


class StaleIndexError(RsguiError, ValueError):
    """An index whose archive changed since it was built, where that cannot be ignored."""


class TrainingDiverged(JobError):
    """A training step gave a NaN or infinite loss (or would save such weights): the run stops
    and nothing non-finite is written."""
