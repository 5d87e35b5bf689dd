"""The chapter-4 protocol end to end on a tiny archive with tiny settings."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from rsgui.experiments import supervised_gan_augmented as experiment

torch.set_num_threads(1)


def test_split_and_scaling():
    labels = np.repeat(np.arange(3), [30, 27, 33])
    test, train = experiment.split(labels, 9, seed=0)
    assert len(test) == 27 and len(np.intersect1d(test, train)) == 0
    assert len(test) + len(train) == len(labels)
    assert [int((labels[test] == c).sum()) for c in range(3)] == [9, 9, 9]
    assert experiment.test_per_class([2700, 3000]) == 100
    assert experiment.test_per_class([33, 27, 30]) == 9
    assert experiment.test_per_class([3, 4]) == 1


def test_hamming_map_perfect_and_classwise():
    codes = np.array([[1, 1], [1, 1], [-1, -1], [-1, -1]], float) * 0.4
    labels = np.array([0, 0, 1, 1])
    m, cw = experiment.hamming_map(codes, labels, 3, ("A", "B"))
    assert m == pytest.approx(1.0) and cw == {"A": 1.0, "B": 1.0}
    bad = np.array([[1, 1], [-1, -1], [1, 1], [-1, -1]], float)
    assert experiment.hamming_map(bad, labels, 1, ("A", "B"))[0] == 0.0


@pytest.fixture(scope="module")
def tiny_features(tmp_path_factory) -> str:
    class Tiny(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(2, 3))
            return torch.cat([m, x.std(dim=(2, 3)), m * m], dim=1)

    path = tmp_path_factory.mktemp("f") / "tiny.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    return str(path)


def test_protocol_writes_tables_and_figures(demo_archive, tmp_path, tiny_features):
    out = tmp_path / "ch4"
    args = argparse.Namespace(
        name="thesis-ch4", archive=str(demo_archive), out=str(out), preset="quick", steps=None,
        bits="8,16", device="cpu", seed=0,
        config={
            "gan_steps": 2, "gan_width": 0.125, "gan_batch": 8, "n_generated": 20, "dh_steps": 3,
            "ms10_steps": 2, "is_style": False, "improved_steps": 2, "metric_tiles": 30,
            "features": {"weights": tiny_features, "input_size": 75, "rgb_gain": 1.0},
        },
    )  # fmt: skip
    assert experiment.run(args) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["test_per_class"] == 2 and r["n_test"] == 20 and r["k"] == 19
    trained = {"real", "real+cdcgan", "real+acgan", "real-ms10"}
    improved = {"improved:real", "improved:real+cdcgan", "improved:real+acgan"}
    assert set(r["map"]) == trained | improved | {"improved:real-ms10", "spectral", "pretrained"}
    assert set(r["map"]["real"]) == set(r["map"]["spectral"]) == {"8", "16"}
    assert set(r["map"]["improved:real"]) == {"16"}  # the improved network at the middle length
    assert all(0 <= v <= 1 for key in ("map", "p10") for d in r[key].values() for v in d.values())
    pr = r["pr"]["improved:real"]
    assert len(pr["precision"]) == len(pr["recall"]) and pr["recall"][-1] == pytest.approx(1.0)
    assert r["n_metric_real"] == 30
    assert r["gan"]["acgan"]["n_generated"] == 20 and r["gan"]["cdcgan"]["fid"] >= 0
    figures = ("samples_cdcgan.png", "samples_acgan.png", "training_curves.png", "pr_curves.png")
    for f in ("report.md", *figures):
        assert (out / f).stat().st_size > 0
    text = (out / "report.md").read_text()
    assert "Scaled protocol" in text and "IS-style score (EfficientNet-Lite0)" in text
    assert "Highway" in text and "River" in text
    assert "Improved network, only real tiles" in text and "spectral (training-free)" in text
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]

    # a second run (after a kill, or another day) reuses every finished stage
    models = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.safetensors")}
    assert experiment.run(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "models").glob("*.safetensors")} == models
