"""The chapter-5 protocol end to end on a tiny archive with tiny networks."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import torch
import torch.nn as nn

from rsgui import ranking
from rsgui.experiments import unsupervised_adversarial as experiment

torch.set_num_threads(1)


def test_split_proportions():
    labels = np.repeat(np.arange(3), [30, 9, 3000])
    q, a, t = experiment.split(labels, seed=0)
    assert not set(q) & set(a) and set(t) <= set(a) and len(q) + len(a) == len(labels)
    counts = lambda idx: np.bincount(labels[idx], minlength=3).tolist()  # noqa: E731
    assert counts(q) == [10, 3, 100]  # a third of small classes, at most 100
    assert counts(t) == [20, 6, 500]  # at most 500 of the archive part


def test_rank_binary_and_float():
    db = np.array([[1, 1], [-1, -1], [1, -1]], np.float32)
    q = np.array([[0.9, 0.2]], np.float32)
    assert ranking.rank(q, db, binary=True).tolist() == [[0, 2, 1]]
    assert ranking.rank(q, db, binary=False).tolist() == [[0, 2, 1]]


@pytest.fixture
def tiny_everything(monkeypatch):
    import training.inception as inc
    import training.train_uahm as tu

    real = tu.preset_config

    def light(*a, **kw):
        model, s, ssm = real(*a, **kw)
        model.width, model.hidden = 0.125, 32
        s.batch_size = 8
        return model, s, ssm

    def fake_inception(weights_path=None, device="cpu", input_size=None):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten())  # fmt: skip
        return inc.InceptionFeatures(net, input_size=None)

    monkeypatch.setattr(tu, "preset_config", light)
    monkeypatch.setattr(inc, "load_inception", fake_inception)


@pytest.mark.parametrize(
    ("bands", "expected", "absent"),
    [
        (None, ("gan-rgb (non-bin)", "gan-ms (non-bin)", "uahm (bin)", "uahm-improved (bin)",
                "dhnn-ms (bin)", "spectral (bin)", "pretrained (bin)"), ()),
        ("rgb", ("gan-rgb (non-bin)", "uahm (bin)", "uahm-improved (bin)", "dhnn-ms (bin)",
                 "spectral (bin)", "pretrained (bin)"), ("gan-ms (non-bin)",)),
    ],
)  # fmt: skip
def test_ch5_quick_run_writes_everything(tmp_path, demo_archive, tiny_everything, bands,
                                         expected, absent):  # fmt: skip
    pytest.importorskip("efficientnet_lite_pytorch")
    out = tmp_path / "ch5"
    args = argparse.Namespace(archive=str(demo_archive), out=str(out), preset="quick", steps=2,
                              bits="8", device="cpu", seed=0, bands=bands)  # fmt: skip
    assert experiment.run(args) == 0
    for name in ("map.csv", "precision.csv", "classwise.csv", "ssm.csv", "pr.csv", "pr.png",
                 "report.md", "results.json"):  # fmt: skip
        assert (out / name).is_file(), name
    rows = list(csv.reader((out / "map.csv").open()))
    models = [r[0] for r in rows[1:]]
    assert set(expected) <= set(models) and not set(absent) & set(models)
    assert list((out / "features").glob("*.npz"))  # backbone vectors kept for a second run
    assert all(0 <= float(v) <= 1 for r in rows[1:] for v in r[1:])
    ssm_rows = [r[0] for r in csv.reader((out / "ssm.csv").open())][1:]
    assert ssm_rows[:4] == ["inception", "raw", "local", "fused"]
    report = (out / "report.md").read_text()
    assert "MAP@100" in report and "Precision@20" in report
    assert not list(out.rglob("*.tmp*"))  # atomic writes left nothing behind


def test_ch5_refuses_other_band_sets(tmp_path, demo_archive):
    args = argparse.Namespace(archive=str(demo_archive), out=str(tmp_path), preset="quick",
                              steps=1, bits="8", device="cpu", seed=0, bands="all")  # fmt: skip
    with pytest.raises(ValueError, match="ms10 or rgb"):
        experiment.run(args)
