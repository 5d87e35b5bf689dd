"""Crash test: ``rsgui-cli index`` and ``rsgui-cli train`` killed with SIGKILL at random points,
between the two renames of a pair included, and two writers at once. Afterwards every index and
checkpoint on disk loads, complete and consistent: the old one or the new one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rsgui.index_store import HashIndex

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

REPO = Path(__file__).resolve().parents[1]

# The child: the command line, with the light UAHM preset of tests/test_train_uahm.py.
CHILD = r"""
import sys
import training.train_uahm as tu
real = tu.preset_config
def light(*a, **kw):
    model, s, ssm = real(*a, **kw)
    model.width, model.hidden, ssm.features = 0.125, 32, "local"
    return model, s, ssm
tu.preset_config = light
from rsgui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(pause: float | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("RSGUI_TEST_PAUSE_BETWEEN_RENAMES", None)
    if pause is not None:
        env["RSGUI_TEST_PAUSE_BETWEEN_RENAMES"] = str(pause)
    return env


def _start(args: list[str], pause: float | None = None) -> subprocess.Popen:
    # training needs the light preset patched in; indexing runs the plain command (no torch)
    cmd = ["-c", CHILD] if args[0] == "train" else ["-m", "rsgui.cli"]
    return subprocess.Popen(
        [sys.executable, *cmd, *args],
        env=_env(pause),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when_paused(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait for the child to say it is between its two renames, then SIGKILL it there."""
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    os.set_blocking(fd, False)
    seen = b""
    while time.monotonic() < deadline:
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            pass
        if b"RSGUI_TEST_PAUSED" in seen:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(f"the child ended (rc {proc.returncode}) before pausing: {seen}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("the child never reached the pause between the renames")


def _kill_at(proc: subprocess.Popen, delay: float) -> None:
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _check_index(out: Path, allowed: set[bytes]) -> bytes | None:
    """The index at ``out`` loads whole, and its codes are one of the ``allowed`` writes."""
    if not out.with_suffix(".npz").exists() and not out.with_suffix(".json").exists():
        return None
    index = HashIndex.load(out)
    assert len(index) == 20 and index.meta.method == "spectral"
    key = index.codes.tobytes()
    assert not allowed or key in allowed, "codes of no complete write"
    return key


@pytest.fixture(scope="module")
def arc(tmp_path_factory):
    from rsgui.demo import make_demo_archive

    return make_demo_archive(tmp_path_factory.mktemp("crash") / "arc", n_per_class=2, size=16)


def _index_args(arc: Path, out: Path, bits: int) -> list[str]:
    return ["index", str(arc), "--method", "spectral", "--bits", str(bits), "--out", str(out)]


def test_index_killed_anywhere_leaves_old_or_new(arc, tmp_path):
    out = tmp_path / "idx"
    rng = random.Random(12)
    # two complete writes with different settings give the two codes that may be on disk
    ref = {}
    for bits in (16, 24):
        p = _start(_index_args(arc, tmp_path / f"ref{bits}", bits))
        assert p.wait(60) == 0, p.stderr.read()
        ref[bits] = HashIndex.load(tmp_path / f"ref{bits}").codes.tobytes()
    p = _start(_index_args(arc, out, 16))
    assert p.wait(60) == 0
    on_disk = _check_index(out, {ref[16]})
    kills = 0
    for k in range(10):
        bits = (16, 24)[k % 2]
        if k % 3 == 2:  # exactly between the renames of the .npz and the .json
            p = _start(_index_args(arc, out, bits), pause=30)
            _kill_when_paused(p)
        else:
            p = _start(_index_args(arc, out, bits))
            _kill_at(p, rng.uniform(0.05, 0.8))
        kills += p.returncode == -signal.SIGKILL
        got = _check_index(out, set(ref.values()))
        assert got is not None
        if p.returncode == 0:
            assert got == ref[bits]
        elif got != on_disk:  # killed after its first rename: the new index, finished on load
            assert got == ref[bits]
        on_disk = got
    assert kills >= 4
    leftovers = [f.name for f in tmp_path.iterdir() if f.name.startswith(".idx.json.")]
    assert leftovers == [], "a pending half left after it was resolved"


def test_two_index_writers_never_mix(arc, tmp_path):
    out = tmp_path / "idx"
    ref = {}
    for bits in (16, 24):
        p = _start(_index_args(arc, tmp_path / f"ref{bits}", bits))
        assert p.wait(60) == 0
        ref[bits] = HashIndex.load(tmp_path / f"ref{bits}").codes.tobytes()
    for _ in range(2):
        # the first is held between its renames while the second wants to write
        a = _start(_index_args(arc, out, 16), pause=1.5)
        b = _start(_index_args(arc, out, 24))
        assert a.wait(60) == 0 and b.wait(60) == 0, (a.stderr.read(), b.stderr.read())
        _check_index(out, set(ref.values()))


def _train_args(arc: Path, out: Path, steps: int, resume: bool = False) -> list[str]:
    args = ["train", str(arc), "--method", "uahm", "--out", str(out), "--bits", "8",
            "--steps", str(steps), "--device", "cpu", "--batch-size", "8",
            "--checkpoint-every", "1"]  # fmt: skip
    return args + (["--resume", str(out)] if resume else [])


def _check_checkpoint(path: Path) -> int | None:
    """The checkpoint loads whole (weights and sidecar of one write); returns its step."""
    from training.checkpoint import load_checkpoint, weights_pair_id

    if not path.exists() and not path.with_suffix(".json").exists():
        return None
    tensors, meta = load_checkpoint(path)
    assert meta["pair_id"] == weights_pair_id(path)
    assert all(np.isfinite(t.float().numpy()).all() for t in tensors.values())
    return int(meta["step"])


def test_train_killed_anywhere_leaves_a_whole_checkpoint(arc, tmp_path):
    out = tmp_path / "m.safetensors"
    p = _start(_train_args(arc, out, 2))
    assert p.wait(120) == 0, p.stderr.read()
    step = _check_checkpoint(out)
    assert step == 2
    # killed between the renames of the weights and the sidecar of a checkpoint
    p = _start(_train_args(arc, out, 6, resume=True), pause=30)
    _kill_when_paused(p)
    after = _check_checkpoint(out)
    assert after in (step, step + 1)  # the old checkpoint, or the new one finished on load
    # killed at random points (startup, similarity matrix, training steps, writing)
    rng = random.Random(3)
    for _ in range(1):
        p = _start(_train_args(arc, out, 12, resume=True))
        _kill_at(p, rng.uniform(2.0, 5.0))
        now = _check_checkpoint(out)
        assert now is not None and now >= after
        after = now
    # and it still resumes to the end
    p = _start(_train_args(arc, out, after + 1, resume=True))
    assert p.wait(120) == 0, p.stderr.read()
    assert _check_checkpoint(out) == after + 1
