"""``rsgui-cli search INDEX POS... --combine [--not NEG...]``: one ranking for a set of examples,
checked against a brute-force reference; without --combine the files stay separate queries; the
feedback experiment end to end on tiny data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from rsgui.cli import main
from rsgui.codes import unpack_codes
from rsgui.index_store import HashIndex
from rsgui.services.feedback import DEFAULT_NEG_WEIGHT, SavedSearch


@pytest.fixture(scope="module")
def index_path(demo_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("idxset") / "demo32"
    assert main(["index", str(demo_archive), "--method", "spectral", "--bits", "32",
                 "--out", str(out)]) == 0  # fmt: skip
    return out


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _reference(index, pos, neg, rule, top):
    bits = unpack_codes(index.codes, index.meta.bits) > 0
    d = (bits[pos][:, None] != bits[None]).sum(-1)
    part = {"sum": d.sum(0), "min": d.min(0)}[rule].astype(np.float64)
    if neg:
        part = (part / len(pos) if rule == "sum" else part) - DEFAULT_NEG_WEIGHT * (
            bits[neg][:, None] != bits[None]
        ).sum(-1).mean(0)
    skip = set(pos) | set(neg)
    return [
        index.paths[i] for _, i in sorted((part[i], i) for i in range(len(index)) if i not in skip)
    ][:top]


def _files(demo_archive, cls, n, start=0):
    names = sorted(p.name for p in (demo_archive / cls).glob("*.tif"))[start : start + n]
    return [demo_archive / cls / name for name in names]


@pytest.mark.parametrize("rule", ["sum", "min"])
@pytest.mark.parametrize("with_not", [False, True])
def test_combine_ranks_once_for_the_set(index_path, demo_archive, capsys, rule, with_not):
    index = HashIndex.load(index_path)
    pos = _files(demo_archive, "Forest", 3)
    neg = _files(demo_archive, "River", 2) if with_not else []
    args = ["search", str(index_path), *map(str, pos), "--combine", "--rule", rule, "--top", "8"]
    if neg:
        args += ["--not", *map(str, neg)]
    capsys.readouterr()
    assert main(args) == 0
    rows = _rows(capsys.readouterr().out)
    assert [int(r["rank"]) for r in rows] == list(range(1, 9)), "one ranking, not one per file"
    got = [str(Path(r["path"]).relative_to(demo_archive)) for r in rows]
    at = [index.position_of(str(p.relative_to(demo_archive))) for p in pos]
    nat = [index.position_of(str(p.relative_to(demo_archive))) for p in neg]
    assert got == _reference(index, at, nat, rule, 8)


def test_without_combine_files_stay_separate_queries(index_path, demo_archive, capsys):
    pos = _files(demo_archive, "Forest", 2)
    capsys.readouterr()
    assert main(["search", str(index_path), *map(str, pos), "--top", "4"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert len(rows) == 8 and {r["query"] for r in rows} == {str(p) for p in pos}


def test_set_options_need_combine(index_path, demo_archive, capsys):
    pos = _files(demo_archive, "Forest", 1)
    assert main(["search", str(index_path), str(pos[0]), "--not", str(pos[0])]) == 2
    assert "need --combine" in capsys.readouterr().err


def test_class_filter_refine_and_saved_search(index_path, demo_archive, tmp_path, capsys):
    pos = _files(demo_archive, "Forest", 2)
    neg = _files(demo_archive, "River", 1)
    saved = tmp_path / "s.json"
    capsys.readouterr()
    assert main(["search", str(index_path), *map(str, pos), "--combine", "--not", str(neg[0]),
                 "--refine", "svm", "--class", "Forest", "--class", "Pasture", "--top", "30",
                 "--format", "json", "--save-search", str(saved)]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["label"] for r in rows} <= {"Forest", "Pasture"}
    s = SavedSearch.load(saved)
    assert (
        s.refine == "svm" and s.filters.classes == ("Forest", "Pasture") and len(s.positives) == 2
    )
    assert main(["search", str(index_path), str(pos[0]), "--combine", "--class", "Nope"]) == 2
    assert "not a class" in capsys.readouterr().err


def test_area_filter_on_the_command_line(index_path, demo_archive, capsys):
    from rsgui.archive import Archive

    archive = Archive.open(demo_archive)
    lon, lat = archive.records[0].georef.center_lonlat
    box = f"{lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}"
    pos = _files(demo_archive, "Forest", 1)
    capsys.readouterr()
    assert (
        main(["search", str(index_path), str(pos[0]), "--combine", "--bbox", box, "--top", "50"])
        == 0
    )
    rows = _rows(capsys.readouterr().out)
    assert 1 <= len(rows) < 49, "only tiles meeting the box"
    assert main(["search", str(index_path), str(pos[0]), "--combine", "--bbox", "1,2,3"]) == 2


def test_feedback_experiment_on_tiny_data(index_path, demo_archive, tmp_path, capsys):
    out = tmp_path / "fb"
    assert main(["experiment", "feedback", str(demo_archive), "--index", str(index_path),
                 "--out", str(out), "--queries-per-class", "2"]) == 0  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    table = res["results"]
    assert res["info"]["queries"] == 20 and set(table) >= {"single", "combine-sum", "logreg", "svm"}
    first = {s: v["map100"][0] for s, v in table.items()}
    assert len(set(first.values())) == 1, "round 0 is the single-example ranking for all"
    for v in table.values():
        assert len(v["p20"]) == 6 and all(0 <= x <= 1 for x in v["p20"] + v["map100"])
    assert "## P@20" in (out / "report.md").read_text()
    rows = list(csv.DictReader(io.StringIO((out / "feedback.csv").read_text())))
    assert len(rows) == 6 * len(table)
    assert all(t["tiles"] == 27_000 for t in res["timing"])
