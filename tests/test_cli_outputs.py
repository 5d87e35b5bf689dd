"""Every command that writes files prints each path on stdout, and no output is renamed silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsgui.cli import main
from rsgui.cli.common import CliError
from rsgui.cli.outputs import Outputs, checkpoint_path


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("m.safetensors", "m.safetensors"), ("models/m", "models/m.safetensors"),
     ("m.SAFETENSORS", "m.SAFETENSORS")],
)  # fmt: skip
def test_checkpoint_suffix_kept_or_added(given, expected):
    assert checkpoint_path(given) == Path(expected)


@pytest.mark.parametrize("given", ["model.ckpt", "model.pt", "m.v2"])
def test_checkpoint_with_another_suffix_is_refused(given):
    with pytest.raises(CliError, match=r"\.safetensors"):
        checkpoint_path(given)


def test_train_refuses_a_wrong_suffix_before_any_work(demo_archive, tmp_path, capsys):
    out = tmp_path / "model.ckpt"
    rc = main(["train", str(demo_archive), "--method", "uahm", "--out", str(out), "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "model.ckpt" in err and "model.safetensors" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing renamed


def test_outputs_stem_and_folder(tmp_path):
    (tmp_path / "other.json").write_text("x")
    (tmp_path / "m.json").write_text("old")
    stem, folder = Outputs.stem(tmp_path / "m.safetensors"), Outputs.folder(tmp_path)
    (tmp_path / "m.safetensors").write_text("new")
    (tmp_path / "m.json").write_text("changed")
    (tmp_path / "m_generated").mkdir()
    (tmp_path / "m_generated" / "t.tif").write_text("t")
    (tmp_path / "mx.json").write_text("not ours")
    (tmp_path / ".cache").write_text("hidden")
    mine = [tmp_path / n for n in ("m.json", "m.safetensors", "m_generated/t.tif")]
    assert stem.written() == mine
    assert folder.written() == sorted([*mine, tmp_path / "mx.json"])


def test_index_and_search_print_the_files_written(demo_archive, tmp_path, capsys):
    out = tmp_path / "idx" / "spec"
    capsys.readouterr()
    assert main(["index", str(demo_archive), "--method", "spectral", "--bits", "16",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = _lines(capsys.readouterr().out)
    assert printed == [str(out) + ".json", str(out) + ".npz"]
    assert all(Path(p).is_file() for p in printed)

    query = next(demo_archive.glob("Forest/*.tif"))
    res = tmp_path / "res.json"
    assert main(["search", str(out), str(query), "--top", "3", "--out", str(res)]) == 0
    assert _lines(capsys.readouterr().out) == [str(res)]
    assert res.read_text().lstrip().startswith(("{", "["))  # the suffix chose json


@pytest.mark.parametrize(
    ("fmt", "name", "message"),
    [("csv", "r.json", "suffix says json"), ("json", "r.csv", "suffix says csv"),
     (None, "r.geojson", "GeoJSON")],
)  # fmt: skip
def test_search_refuses_a_suffix_of_another_format(
    demo_archive, tmp_path, capsys, fmt, name, message
):
    out = tmp_path / "idx"
    assert main(["index", str(demo_archive), "--method", "spectral", "--bits", "8",
                 "--out", str(out)]) == 0  # fmt: skip
    query = next(demo_archive.glob("River/*.tif"))
    args = ["search", str(out), str(query), "--out", str(tmp_path / name)]
    capsys.readouterr()
    assert main(args + (["--format", fmt] if fmt else [])) == 2
    assert message in capsys.readouterr().err and not (tmp_path / name).exists()


def test_make_demo_archive_prints_its_files(tmp_path, capsys):
    root = tmp_path / "demo"
    assert main(["make-demo-archive", str(root), "--per-class", "1", "--size", "8"]) == 0
    printed = _lines(capsys.readouterr().out)
    tiles = sorted(str(p) for p in root.rglob("*.tif"))
    assert len(tiles) == 10 and sorted(printed) == tiles
    assert main(["make-demo-archive", str(root), "--per-class", "1", "--size", "8"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "reused" in captured.err  # nothing written the second time
