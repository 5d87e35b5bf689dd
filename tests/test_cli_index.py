"""``rsgui-cli index | search | evaluate`` end to end, and the refusals users will meet."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rsgui.bands import BAND_SETS, Normalisation
from rsgui.cli import main
from rsgui.services.search import RESULT_COLUMNS


@pytest.fixture(scope="module")
def spectral_index(demo_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "demo_ms10"
    assert (
        main(
            ["index", str(demo_archive), "--method", "spectral", "--bits", "32", "--out", str(out)]
        )
        == 0
    )
    return out


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_index_writes_both_files(spectral_index):
    assert spectral_index.with_name("demo_ms10.npz").is_file()
    meta = json.loads(spectral_index.with_name("demo_ms10.json").read_text())
    assert meta["method"] == "spectral" and meta["bits"] == 32
    assert meta["band_names"] == list(BAND_SETS["ms10"])


def test_search_csv_leaves_an_archive_query_out(spectral_index, demo_archive, capsys):
    queries = [
        demo_archive / "Forest" / p
        for p in sorted(p.name for p in (demo_archive / "Forest").glob("*.tif"))[:2]
    ]
    capsys.readouterr()
    assert main(["search", str(spectral_index), *map(str, queries), "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ",".join(RESULT_COLUMNS)
    rows = _rows(text)
    assert len(rows) == 10
    for q in queries:
        mine = [r for r in rows if r["query"] == str(q)]
        assert [int(r["rank"]) for r in mine] == [1, 2, 3, 4, 5]
        assert all(Path(r["path"]).name != q.name for r in mine), "the query tile is left out"
        assert [int(r["distance"]) for r in mine] == sorted(int(r["distance"]) for r in mine)
        assert all(r["correct"] == str(int(r["label"] == "Forest")) for r in mine)
        assert all(-180 <= float(r["lon"]) <= 180 and -90 <= float(r["lat"]) <= 90 for r in mine)
    assert sum(r["label"] == "Forest" for r in rows) >= 6  # same class mostly


def test_search_json_to_file_and_outside_query(spectral_index, demo_archive, tmp_path):
    src = next((demo_archive / "SeaLake").glob("*.tif"))
    outside = tmp_path / "elsewhere" / "my_query.tif"
    outside.parent.mkdir()
    shutil.copy(src, outside)
    out = tmp_path / "res.json"
    assert (
        main(
            [
                "search",
                str(spectral_index),
                str(outside),
                "--top",
                "3",
                "--format",
                "json",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["query"] == str(outside)
    assert rows[0]["distance"] == 0  # same pixels as an archive tile
    assert tuple(rows[0]) == RESULT_COLUMNS


def test_evaluate_prints_figures_and_pr_csv(spectral_index, tmp_path, capsys):
    pr = tmp_path / "pr.csv"
    capsys.readouterr()
    assert (
        main(["evaluate", str(spectral_index), "--k", "20,50", "--n", "5", "--pr-csv", str(pr)])
        == 0
    )
    out = capsys.readouterr().out
    assert "| MAP@20 |" in out and "| MAP@50 |" in out and "| P@5 |" in out
    assert "| SeaLake | 6 |" in out
    map20 = float(out.split("| MAP@20 |")[1].split("|")[0])
    assert map20 > 0.5
    pts = _rows(pr.read_text())
    assert pts[-1]["retrieved"] == "59" and float(pts[-1]["recall"]) == pytest.approx(1.0)


def test_evaluate_query_list(spectral_index, demo_archive, tmp_path, capsys):
    lst = tmp_path / "q.txt"
    lst.write_text(
        "# two tiles\nForest/"
        + next((demo_archive / "Forest").glob("*.tif")).name
        + "\n"
        + str(next((demo_archive / "River").glob("*.tif")))
        + "\n"
    )
    capsys.readouterr()
    assert main(["evaluate", str(spectral_index), "--queries", str(lst)]) == 0
    assert "2 queries against 59 tiles" in capsys.readouterr().out
    lst.write_text("Forest/not_there.tif\n")
    assert main(["evaluate", str(spectral_index), "--queries", str(lst)]) == 2
    assert "not_there.tif" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "message"),
    [("four_bands", "4 bands"), ("not_raster", "query.tif"), ("missing", "missing.tif"),
     ("wrong_size", "32x32")],
)  # fmt: skip
def test_search_refuses_unusable_queries(
    spectral_index, tmp_path, write_tile, capsys, kind, message
):
    q = tmp_path / ("missing.tif" if kind == "missing" else "query.tif")
    if kind == "four_bands":
        write_tile(q, bands=4)
    elif kind == "not_raster":
        q.write_text("this is not an image\n")
    elif kind == "wrong_size":
        write_tile(q, size=32)
    capsys.readouterr()
    assert main(["search", str(spectral_index), str(q)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rsgui-cli: error:") and message in err and str(q.name) in err
    assert len(err.splitlines()) == 1


def test_index_refusals(demo_archive, tmp_path, capsys):
    out = str(tmp_path / "x")
    cases = [
        (["--method", "spectral", "--model", "m.safetensors"], "no --model"),
        (["--method", "uahm"], "needs --model"),
        (["--method", "spectral", "--bands", "nir"], "unknown band set"),
        (["--method", "spectral", "--bits", "0"], "--bits"),
    ]
    for extra, msg in cases:
        capsys.readouterr()
        assert main(["index", str(demo_archive), *extra, "--out", out]) == 2
        assert msg in capsys.readouterr().err
    assert main(["index", str(tmp_path / "nowhere"), "--method", "spectral", "--out", out]) == 2
    assert not (tmp_path / "x.npz").exists()


class _FakeTrained:
    """A stand-in for a trained model: a fixed random projection of band means."""

    method = "deephash"
    kind = "binary"
    band_names = BAND_SETS["ms10"]
    bits = 16
    normalisation = Normalisation()

    def encode(self, pixels):
        w = np.random.default_rng(0).standard_normal((pixels.shape[1], self.bits))
        return (pixels.mean(axis=(2, 3)) - 0.2) @ w

    def describe(self):
        return {"model_path": "relative.safetensors", "steps": 1}


def test_trained_method_bands_and_bits_come_from_the_model(
    demo_archive, tmp_path, monkeypatch, capsys
):
    import rsgui.encoders

    model = tmp_path / "model.safetensors"
    model.write_bytes(b"fake")
    monkeypatch.setattr(
        rsgui.encoders, "load_trained_encoder", lambda path, method=None: _FakeTrained()
    )
    base = ["index", str(demo_archive), "--method", "deephash", "--model", str(model)]
    out = tmp_path / "trained"
    capsys.readouterr()
    assert main([*base, "--bits", "32", "--out", str(out)]) == 2
    assert "16-bit" in capsys.readouterr().err
    assert main([*base, "--bands", "rgb", "--out", str(out)]) == 2
    assert "ms10" in capsys.readouterr().err
    assert main([*base, "--bands", "ms10", "--out", str(out)]) == 0
    meta = json.loads(out.with_name("trained.json").read_text())
    assert meta["bits"] == 16 and meta["encoder"]["model_path"] == str(model.resolve())
    q = next((demo_archive / "Highway").glob("*.tif"))
    outside = tmp_path / "query" / q.name  # a copy: not a tile of the archive, finds its twin
    outside.parent.mkdir()
    shutil.copy(q, outside)
    capsys.readouterr()
    assert main(["search", str(out), str(outside), "--top", "60"]) == 0
    rows = _rows(capsys.readouterr().out)
    twin = [r for r in rows if r["path"] == str(demo_archive.resolve() / "Highway" / q.name)]
    assert rows[0]["distance"] == "0" and twin[0]["distance"] == "0"


@pytest.mark.realdata
def test_real_subset_index_and_evaluate(real_archive, tmp_path, capsys):
    out = tmp_path / "real"
    assert (
        main(
            [
                "index",
                str(real_archive),
                "--method",
                "spectral",
                "--bands",
                "ms10",
                "--bits",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "311 queries against 310 tiles" in text
    map20 = float(text.split("| MAP@20 |")[1].split("|")[0])
    assert map20 > 0.55  # measured 0.66; chance is about 0.1
