"""What a command wrote: every file it made or changed, one path a line on standard output.

Commands that write files (``train``, ``index``, ``generate``, ``search --out``,
``make-demo-archive``, ``experiment``) print the path of each file they wrote, nothing else, on
stdout, so a script can take them as they are (``MODEL=$(rsgui-cli train ... | head -1)``);
their summary and progress go to stderr. The files are found by comparing the output place
before and after the command (new inode, size or modification time), so a cache or sidecar that
a service writes beside the output is named too. Hidden files (caches, markers) are left out.

Output names are never changed silently: a checkpoint is ``NAME.safetensors`` (a name without a
suffix gets it), any other suffix is refused with a message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rsgui.cli.common import CliError

Stat = tuple[int, int, int]  # inode, size, mtime_ns


def checkpoint_path(out: str | os.PathLike, option: str = "--out") -> Path:
    """``out`` as a checkpoint path: ``.safetensors`` kept, added to a name without a suffix;
    any other suffix (``model.ckpt``, ``model.pt``) refused, since the file would be a
    safetensors file under another name (or renamed behind the user's back)."""
    p = Path(out)
    if p.suffix.lower() == ".safetensors":
        return p
    if p.suffix == "":
        return p.with_name(p.name + ".safetensors")
    raise CliError(
        f"{option} {out}: a checkpoint is a .safetensors file (with a .json settings file "
        f"beside it); use {option} {p.with_suffix('.safetensors')}"
    )


def _walk(folder: Path, out: dict[Path, Stat]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                _walk(Path(e.path), out)
            elif e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                out[Path(e.path)] = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            continue


class Outputs:
    """The files under an output place, to tell afterwards which ones the command wrote.

    ``Outputs.folder(DIR)``: every file below DIR. ``Outputs.stem(PATH)``: PATH itself and its
    siblings named ``PATH.*`` or ``PATH_*`` (a checkpoint's sidecar and caches, an index's two
    halves, a generated-tiles folder), folders among them with all their files."""

    def __init__(self, base: Path, prefix: str | None) -> None:
        self.base = base
        self.prefix = prefix  # None: the whole folder
        self.before = self._scan()

    @classmethod
    def folder(cls, path: str | os.PathLike) -> Outputs:
        return cls(Path(path), None)

    @classmethod
    def stem(cls, path: str | os.PathLike) -> Outputs:
        p = Path(path)
        for suffix in (".safetensors", ".npz", ".json"):
            if p.suffix.lower() == suffix:
                p = p.with_suffix("")
        return cls(p.parent, p.name)

    def _mine(self, name: str) -> bool:
        pre = self.prefix
        return pre is None or name == pre or name.startswith((pre + ".", pre + "_"))

    def _scan(self) -> dict[Path, Stat]:
        found: dict[Path, Stat] = {}
        if self.prefix is None:
            _walk(self.base, found)
            return found
        try:
            entries = list(os.scandir(self.base))
        except OSError:
            return found
        for e in entries:
            if not self._mine(e.name):
                continue
            try:
                if e.is_dir():
                    _walk(Path(e.path), found)
                elif e.is_file():
                    st = e.stat()
                    found[Path(e.path)] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                continue
        return found

    def written(self) -> list[Path]:
        """Files that are new or changed since this object was made, in path order."""
        after = self._scan()
        return sorted(p for p, st in after.items() if self.before.get(p) != st)

    def print(self, file=None) -> list[Path]:
        """Print each written file's path, one a line (stdout by default); returns them."""
        paths = self.written()
        out = file or sys.stdout
        for p in paths:
            print(p, file=out)
        out.flush()
        return paths
