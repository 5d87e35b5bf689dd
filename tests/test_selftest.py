"""``rsgui --self-test``: the whole run from source, and each check's ability to fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rsgui.app import selftest
from rsgui.services.search import QueryTile, SearchResult, SearchResults

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_self_test_passes_from_source(tmp_path):
    """The real command, in its own process (it redirects settings and starts Qt)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RSGUI_SELFTEST_DIR=str(tmp_path))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "rsgui.app.main", "--self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = [line for line in out.splitlines() if line.startswith("self-test: ")]
    # a header, one line per step, a summary
    assert len(lines) == len(selftest.STEPS) + 2, out
    assert all(line.endswith(")") and " ... ok (" in line for line in lines[1:-1]), out
    assert "demo archive 60 tiles" in out
    assert "itself at rank 1, distance 0" in out
    assert lines[-1].startswith(f"self-test: all {len(selftest.STEPS)} steps passed")
    assert (tmp_path / "selftest-plot.png").stat().st_size > 0
    if "main window shown" in out:
        assert (tmp_path / "selftest-window.png").stat().st_size > 0


def _ok(ctx):
    return "first fine"


def _fails_check(ctx):
    raise selftest.SelfTestError("the demo archive has no readable tiles")


def _crashes(ctx):
    raise ModuleNotFoundError("No module named 'rasterio._io'")


def _never(ctx):
    raise AssertionError("a step after a failure must not run")


@pytest.mark.parametrize(
    ("steps", "rc", "expected"),
    [
        ([("a", _ok), ("b", _ok)], 0, "self-test: all 2 steps passed"),
        (
            [("a", _ok), ("archive", _fails_check), ("c", _never)],
            1,
            "self-test: archive ... FAILED",
        ),
        ([("import", _crashes), ("c", _never)], 1, "ModuleNotFoundError: No module named"),
    ],
)
def test_run_reports_each_step_and_stops_at_first_failure(
    monkeypatch, capsys, tmp_path, steps, rc, expected
):
    monkeypatch.setattr(selftest, "STEPS", steps)
    monkeypatch.setattr(selftest, "_isolate_user_folders", lambda root: None)
    assert selftest.run(tmp_path) == rc
    out = capsys.readouterr().out
    assert expected in out
    assert "self-test: first fine ... ok (" in out or steps[0][1] is _crashes
    if rc:
        assert out.strip().splitlines()[-1].startswith("self-test: FAILED at step")


def test_run_cleans_its_temporary_folder_and_restores_the_environment(monkeypatch):
    seen = {}

    def remember(ctx):
        seen["dir"] = ctx.workdir
        seen["data"] = os.environ.get("RSGUI_DATA_DIR")
        (ctx.workdir / "x.png").write_bytes(b"x")
        return "remembered"

    monkeypatch.delenv("RSGUI_SELFTEST_DIR", raising=False)
    monkeypatch.setenv("RSGUI_DATA_DIR", "/somewhere/else")
    monkeypatch.setattr(selftest, "_isolate_settings", lambda root: None)  # process-wide in Qt
    monkeypatch.setattr(selftest, "STEPS", [("remember", remember)])
    assert selftest.run() == 0
    assert not seen["dir"].exists()
    assert seen["data"] == str(seen["dir"] / "rsgui_data_dir")  # redirected while running
    assert os.environ["RSGUI_DATA_DIR"] == "/somewhere/else"  # and restored


def _fake_query_ctx(n_classes=3, per_class=4):
    records = [
        SimpleNamespace(index=i, path=f"c{i // per_class}/t{i}.tif", label=f"c{i // per_class}")
        for i in range(n_classes * per_class)
    ]
    archive = SimpleNamespace(root="/arch", records=records)
    return SimpleNamespace(archive=archive, index=object(), workdir=None)


def _results(ctx, first_path=None, first_distance=0, same_class=5):
    """Top-5 results per query file (named by its tile): its archive twin first, then
    ``same_class - 1`` of its class."""
    out = {}
    records = ctx.archive.records
    for rec in records:
        if rec.index % 4:  # queries are the first tile of each class
            continue
        others_same = [r for r in records if r.label == rec.label and r is not rec]
        others_diff = [r for r in records if r.label != rec.label]
        ranked = [rec, *others_same[: same_class - 1], *others_diff][:5]
        rows = []
        for rank, r in enumerate(ranked, start=1):
            path, dist = f"/arch/{r.path}", rank - 1
            if rank == 1:
                path, dist = first_path or path, first_distance
            rows.append(SearchResult(rec.path, rank, path, dist, r.label))
        out[rec.path] = rows
    return out


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("good", None),
        ("other_first", "expected the query itself"),
        ("nonzero", "at distance 3"),
        ("mixed", "share the query's class"),
    ],
)
def test_query_check_fails_on_a_wrong_ranking(monkeypatch, tmp_path, kind, message):
    import rsgui.services.search

    ctx = _fake_query_ctx()
    ctx.workdir = tmp_path
    for rec in ctx.archive.records:  # the query files the step copies already exist
        (tmp_path / "queries" / rec.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "queries" / rec.path).write_bytes(b"tile")
    found = {
        "good": lambda: _results(ctx),
        "other_first": lambda: _results(ctx, first_path="/arch/c9/elsewhere.tif"),
        "nonzero": lambda: _results(ctx, first_distance=3),
        "mixed": lambda: _results(ctx, same_class=2),
    }[kind]()

    def fake_search(index, path, k):
        key = Path(path).relative_to(tmp_path / "queries").as_posix()
        return SearchResults(
            QueryTile(Path(path)), None, None, "spectral", 64, "binary", found[key]
        )

    monkeypatch.setattr(rsgui.services.search, "search", fake_search)
    if message is None:
        assert "top-5 same class" in selftest.step_query(ctx)
    else:
        with pytest.raises(selftest.SelfTestError, match=message):
            selftest.step_query(ctx)
