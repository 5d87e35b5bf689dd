"""Write files atomically so a crash or a cancel never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was.
    ``suffix`` defaults to the target's own suffix, for writers that pick a format by extension.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=".tmp" + (target.suffix if suffix is None else suffix),
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


# -- one writer at a time ------------------------------------------------------------------------

LOCK_TIMEOUT_S = float(os.environ.get("RSGUI_LOCK_TIMEOUT", "60"))


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside it (hidden, so no listing shows it)."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def locked(
    target: str | os.PathLike, shared: bool = False, timeout: float | None = None
) -> Iterator[bool]:
    """Hold the lock of ``target`` (``fcntl.flock`` on :func:`lock_path`) while the block runs.

    Writers take it exclusively around writing every file of one output, so two programs writing
    the same index or checkpoint take turns instead of mixing halves; readers may take it
    ``shared`` to wait for a writer to finish. A writer waits up to ``timeout`` seconds
    (``RSGUI_LOCK_TIMEOUT``, default 60), then raises :class:`rsgui.errors.FileBusyError`.
    The lock file is removed when the writer is done (a waiter that finds its lock file
    replaced takes the new one). Yields False when there is nothing to wait for (a reader and
    no writer) or no lock can be made (a read-only folder: nobody writes there)."""
    import fcntl
    import time

    from rsgui.errors import FileBusyError

    target = Path(target)
    path = lock_path(target)
    limit = LOCK_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + limit
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    if not shared:
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            flags = os.O_RDONLY if shared else os.O_RDWR | os.O_CREAT
            fd = os.open(path, flags | os.O_CLOEXEC, _FILE_MODE)
        except OSError:
            yield False  # nothing to wait for, or a folder nobody can write a lock into
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise FileBusyError(
                            f"{target}: another program is writing it (lock {path.name} held "
                            f"for over {limit:g} s); try again when it has finished"
                        ) from None
                    time.sleep(0.02)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:  # the writer before us removed it: start over
                os.close(fd)
                if shared:
                    yield False
                    return
                continue
        except BaseException:
            os.close(fd)
            raise
        try:
            yield True
        finally:
            if not shared:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            os.close(fd)  # releases the lock
        return


def new_pair_id() -> str:
    """A random id written into both halves of a two-file output (index, checkpoint), so a
    reader can tell two halves of one write from halves of two."""
    import uuid

    return uuid.uuid4().hex


# -- two files that belong together ---------------------------------------------------------------


_PAIR_ID = re.compile(r"[0-9a-f]{32}")


def pending_path(second: str | os.PathLike, pair_id: str) -> Path:
    """Where the second half of a pair waits while the first is renamed into place."""
    second = Path(second)
    return second.with_name(f".{second.name}.{pair_id}.pending")


def _pause_between_renames() -> None:
    """Test hook of the crash test: ``RSGUI_TEST_PAUSE_BETWEEN_RENAMES=SECONDS`` sleeps between
    the two renames of a pair (and says so on standard error) so a kill can land exactly there."""
    pause = os.environ.get("RSGUI_TEST_PAUSE_BETWEEN_RENAMES")
    if pause:
        import sys
        import time

        print("RSGUI_TEST_PAUSED", file=sys.stderr, flush=True)
        time.sleep(float(pause))


def save_pair(first: Path, write_first, second: Path, second_text: str, pair_id: str) -> None:
    """Write two files of one output (an index's ``.npz`` and ``.json``, a checkpoint and its
    sidecar), both carrying ``pair_id``, so that whatever kills the program the pair on disk is
    the old one or the new one:

    1. under the output's lock (:func:`locked`; a second writer waits its turn),
    2. the second half is written in full beside its target (:func:`pending_path`),
    3. the first half is written and renamed into place,
    4. the pending second half is renamed into place.

    A kill between 3 and 4 leaves the new first half with the old second half and the new second
    half pending: :func:`resolve_pair` finishes the swap when either is read next."""
    with locked(first):
        pend = pending_path(second, pair_id)
        atomic_write_text(pend, second_text)
        try:
            with atomic_path(first) as tmp:
                write_first(tmp)
        except BaseException:
            with contextlib.suppress(OSError):
                pend.unlink()
            raise
        _pause_between_renames()
        os.replace(pend, second)
        for stale in second.parent.glob(f".{second.name}.*.pending"):
            with contextlib.suppress(OSError):
                stale.unlink()  # of writers killed before their first rename


def resolve_pair(first: Path, second: Path, first_id: str | None) -> Path | None:
    """Finish the swap a killed writer left half done: when the second half written for
    ``first_id`` is still pending, rename it into place. Returns the file to read the second half
    from now (``second``, or the pending file where the folder cannot be written), None when
    nothing is pending for that id."""
    if not isinstance(first_id, str) or not _PAIR_ID.fullmatch(first_id):
        return None  # no id, or not one this program writes (a hostile file): nothing to finish
    pend = pending_path(second, first_id)
    if not pend.is_file():
        return None
    with contextlib.suppress(OSError), locked(first, timeout=5.0):  # a live writer finishes first
        if pend.is_file():
            os.replace(pend, second)
    return pend if pend.is_file() else second
