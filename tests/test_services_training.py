"""The training service: one job for every method, the same for the command line and the panel;
its refusals, progress, cancel (a closed job keeps a resumable checkpoint) and checkpoint list."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from rsgui.encoders.registry import METHODS  # noqa: E402
from rsgui.errors import JobError  # noqa: E402
from rsgui.progress import drive  # noqa: E402
from rsgui.services.training import (  # noqa: E402
    DEFAULT_N_GENERATED,
    TrainingResult,
    list_checkpoints,
    plan_deephash,
    train_job,
)

TINY = {"width": 0.125, "image_size": 16}  # a generator that trains in a second


def tiny_gan(archive, out, steps=3, method="cdcgan", bands="rgb", **kw) -> TrainingResult:
    job = train_job(archive, method, out, bands=bands, steps=steps, batch_size=8, device="cpu",
                    model=TINY, **kw)  # fmt: skip
    return drive(job)


@pytest.fixture(scope="module")
def gan(demo_archive, tmp_path_factory):
    return tiny_gan(demo_archive, tmp_path_factory.mktemp("gan") / "g.safetensors").path


@pytest.mark.parametrize(
    ("method", "kw", "message"),
    [
        ("nope", {}, "unknown method"),
        ("gan-rgb", {"bands": "ms10"}, "band sets rgb"),
        ("cdcgan", {"preset": "huge"}, "unknown preset"),
        ("uahm", {"augment": "g.safetensors"}, "deephash"),
    ],
)
def test_train_job_refuses_bad_settings(tmp_path, demo_archive, method, kw, message):
    with pytest.raises(JobError, match=message):
        drive(train_job(demo_archive, method, tmp_path / "m.safetensors", **kw))


@pytest.mark.parametrize("method", ["cdcgan", "acgan"])
def test_cgan_training_reports_steps_and_writes_checkpoint(demo_archive, tmp_path, method):
    seen = []
    out = tmp_path / f"{method}.safetensors"
    job = train_job(demo_archive, method, out, steps=2, batch_size=8, device="cpu", model=TINY)
    result = drive(job, seen.append)
    steps = [p for p in seen if p.stage == "train"]
    assert [p.done for p in steps] == [1, 2]
    assert all(p.values and p.rate is not None and p.eta_s is not None for p in steps)
    assert result.path == out and not result.cancelled and result.step == 2
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["method"] == method and meta["step"] == 2
    assert [c.path for c in list_checkpoints(tmp_path)] == [out]


def test_closing_the_job_keeps_a_resumable_checkpoint(demo_archive, tmp_path):
    from training.checkpoint import load_checkpoint

    out = tmp_path / "c.safetensors"
    job = train_job(demo_archive, "cdcgan", out, steps=50, batch_size=8, device="cpu", model=TINY)
    while (p := next(job)).stage != "train" or p.done < 2:
        pass
    job.close()  # the consumer cancels after two training steps
    _, meta = load_checkpoint(out, "cdcgan")
    assert meta["step"] == 2 and meta["total_steps"] == 50
    resumed = drive(train_job(demo_archive, "cdcgan", out, steps=4, batch_size=8, device="cpu",
                              model=TINY, resume=out))  # fmt: skip
    assert resumed.step == 4


def test_list_checkpoints_skips_temporary_and_broken(tmp_path, gan):
    shutil.copy(gan, tmp_path / "a.safetensors")
    shutil.copy(gan.with_suffix(".json"), tmp_path / "a.json")
    (tmp_path / ".a.safetensors.x.tmp.safetensors").write_bytes(b"")
    (tmp_path / "b.safetensors").write_bytes(b"")
    (tmp_path / "b.json").write_text("{broken")
    assert [c.path.name for c in list_checkpoints(tmp_path)] == ["a.safetensors"]
    assert list_checkpoints(tmp_path / "missing") == []


@pytest.mark.parametrize("method", ["gan-ms", "dhnn-ms"])
def test_unsupervised_methods_train_report_map_and_index(demo_archive, tmp_path, method):
    from rsgui.archive import Archive
    from rsgui.services.indexing import index_job

    seen = []
    out = tmp_path / f"{method}.safetensors"
    job = train_job(demo_archive, method, out, bits=16, steps=2, batch_size=8, device="cpu")
    result = drive(job, seen.append)
    steps = [p for p in seen if p.stage == "train"]
    assert [p.done for p in steps] == [1, 2]
    assert any("map" in p.values for p in steps)  # labelled archive: MAP measured while training
    assert result.path == out and out.is_file() and "map@20" in result.metrics
    indexed = drive(index_job(Archive.open(demo_archive), method, tmp_path / "i.npz", model=out))
    assert indexed.method == method and indexed.n_tiles == 60 and indexed.path.is_file()


def test_spectral_writes_an_index(demo_archive, tmp_path):
    result = drive(train_job(demo_archive, "spectral", tmp_path / "s.npz", bands="ms10", bits=16))
    assert result.is_index and result.path.is_file() and result.method == "spectral"


def test_one_plan_for_deep_hashing():
    """The batch split and the generated-tile count are the service's, whoever calls it."""
    cfg = plan_deephash("quick", batch_size=10)
    assert (cfg.batch_pos, cfg.batch_neg) == (7, 3)
    with pytest.raises(JobError, match="at least 3"):
        plan_deephash("quick", batch_size=2)
    assert DEFAULT_N_GENERATED == 5000


def test_generated_tiles_need_a_gan(demo_archive, tmp_path):
    with pytest.raises(JobError, match="conditional GAN"):
        drive(train_job(demo_archive, "deephash", tmp_path / "d.safetensors", n_generated=10))


def test_every_trained_method_has_a_plan():
    from rsgui.services import training

    families = {m.family for m in METHODS.values() if m.trained}
    assert families == {"uahm", "cgan", "deephash"}
    for family in families:
        assert hasattr(training, f"_{family}_job")


def test_a_gan_resumed_on_another_archive_is_refused(gan, demo_archive, tmp_path):
    """Every family records the archive it trained on; a resume elsewhere names both."""
    meta = json.loads(gan.with_suffix(".json").read_text())
    assert meta["archive_root"] == str(demo_archive)
    other = tmp_path / "other"
    shutil.copytree(demo_archive, other)
    with pytest.raises(JobError, match="trained on archive") as e:
        tiny_gan(other, tmp_path / "g2.safetensors", steps=4, resume=gan)
    assert str(demo_archive) in str(e.value) and str(other) in str(e.value)


@pytest.mark.parametrize(("divisor", "gain"), [(255.0, 1.0), (4095.0, 2.5)])
def test_inception_gain_follows_the_archive_scaling(divisor, gain):
    from types import SimpleNamespace

    from rsgui.bands import Normalisation
    from rsgui.services.training import feature_settings

    arc = SimpleNamespace(normalisation=Normalisation(divisor, divisor))
    assert feature_settings(arc)["rgb_gain"] == gain
    assert feature_settings(arc, {"input_size": 96, "rgb_gain": 3.0})["rgb_gain"] == 3.0
