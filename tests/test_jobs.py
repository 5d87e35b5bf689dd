"""The application's jobs run headless: training dispatch, pause/cancel, generation, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from rsgui.app import jobs  # noqa: E402
from rsgui.encoders import ALL_METHODS, ModelFileError  # noqa: E402

TINY = {"model": {"width": 0.125, "image_size": 16}}  # a generator that trains in a second


def tiny_gan(archive, out, steps=3, method="cdcgan", bands="rgb", **kw) -> jobs.TrainingResult:
    it = jobs.training_job(archive, method, out, bands=bands, steps=steps, batch_size=8,
                           options=TINY, **kw)  # fmt: skip
    return jobs.run_to_end(it)


@pytest.fixture(scope="module")
def gan(demo_archive, tmp_path_factory) -> Path:
    return tiny_gan(demo_archive, tmp_path_factory.mktemp("gan") / "g.safetensors").path


@pytest.fixture(scope="module")
def spectral_index(demo_archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "spectral-16.npz"
    it = jobs.training_job(demo_archive, "spectral", out, bands="ms10", bits=16)
    return jobs.run_to_end(it).path


@pytest.mark.parametrize("method", [*ALL_METHODS, "cdcgan", "acgan"])
def test_every_method_is_offered(method):
    spec = jobs.METHODS[method]
    assert spec.default_bands in spec.band_sets
    assert spec.retrieval != spec.generator


@pytest.mark.parametrize(
    ("method", "kw", "message"),
    [
        ("nope", {}, "unknown method"),
        ("gan-rgb", {"bands": "ms10"}, "band sets rgb"),
        ("cdcgan", {"preset": "huge"}, "unknown preset"),
    ],
)
def test_training_job_refuses_bad_settings(tmp_path, method, kw, message):
    with pytest.raises(jobs.JobError, match=message):
        jobs.run_to_end(jobs.training_job(tmp_path, method, tmp_path / "m.safetensors", **kw))


@pytest.mark.parametrize("method", ["cdcgan", "acgan"])
def test_cgan_training_reports_steps_and_writes_checkpoint(demo_archive, tmp_path, method):
    events: list[dict] = []
    out = tmp_path / f"{method}.safetensors"
    it = jobs.training_job(demo_archive, method, out, steps=2, batch_size=8, options=TINY)
    result = jobs.run_to_end(it, events.append)
    steps = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in steps] == [1, 2]
    assert all(e["losses"] and "images_per_s" in e and "eta_s" in e for e in steps)
    assert result.path == out and not result.cancelled
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["method"] == method and meta["step"] == 2
    assert [c.path for c in jobs.list_checkpoints(tmp_path)] == [out]


def test_cancel_stops_and_keeps_a_loadable_checkpoint(demo_archive, tmp_path):
    from training.checkpoint import load_checkpoint

    seen: list[dict] = []
    out = tmp_path / "c.safetensors"
    it = jobs.training_job(demo_archive, "cdcgan", out, steps=50, batch_size=8, options=TINY,
                           cancel=lambda: len(seen) >= 2)  # fmt: skip
    result = jobs.run_to_end(it, lambda e: seen.append(e) if e["event"] == "progress" else None)
    assert result.cancelled and len(seen) == 2
    _, meta = load_checkpoint(out, "cdcgan")
    assert meta["step"] == 2 and meta["total_steps"] == 50


def test_pause_waits_between_steps_then_resumes():
    def steps():
        for i in range(1, 4):
            yield {"step": i, "total": 3, "losses": {"l": float(i)}}
        return "done"

    calls = iter([False, True, True, True, False, False, False])
    events: list[dict] = []
    value = jobs.run_to_end(
        jobs.controlled(steps(), pause=lambda: next(calls), poll_s=0), events.append
    )
    assert value == "done"
    assert [e["event"] for e in events] == ["progress", "paused", "resumed", "progress", "progress"]
    assert events[1]["step"] == 1 and events[2]["step"] == 1


def test_cancel_while_paused_stops_waiting():
    def steps():
        yield {"step": 1, "total": 9}
        return "stopped"

    cancelled = iter([False, True, True, True])
    it = jobs.controlled(
        steps(), cancel=lambda: next(cancelled, True), pause=lambda: True, poll_s=0
    )
    assert jobs.run_to_end(it) == "stopped"


def test_generation_is_reproducible_and_per_class(gan, demo_archive):
    from rsgui.archive import Archive

    classes = Archive.open(demo_archive).classes
    a = jobs.run_to_end(jobs.generation_job(gan, classes[0], n=5, seed=3))
    b = jobs.run_to_end(jobs.generation_job(gan, classes[0], n=5, seed=3))
    c = jobs.run_to_end(jobs.generation_job(gan, classes[0], n=5, seed=4))
    assert a.pixels.shape == (5, 3, 16, 16) and a.band_names == ("B04", "B03", "B02")
    assert np.array_equal(a.pixels, b.pixels) and not np.array_equal(a.pixels, c.pixels)
    assert 0.0 <= a.pixels.min() and a.pixels.max() <= 1.0
    with pytest.raises(jobs.JobError, match="no class 'Moon'"):
        jobs.run_to_end(jobs.generation_job(gan, "Moon", n=1))


def test_interpolation_ends_at_the_two_seeds(gan, demo_archive):
    from rsgui.archive import Archive

    cls = Archive.open(demo_archive).classes[2]
    f = jobs.run_to_end(jobs.interpolation_job(gan, cls, 3, 8, frames=5))
    a = jobs.run_to_end(jobs.generation_job(gan, cls, n=1, seed=3))
    b = jobs.run_to_end(jobs.generation_job(gan, cls, n=1, seed=8))
    assert f.pixels.shape[0] == 5
    np.testing.assert_allclose(f.pixels[0], a.pixels[0], atol=1e-5)
    np.testing.assert_allclose(f.pixels[-1], b.pixels[0], atol=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a model", "settings file"), (None, "no such model file")],
)
def test_bad_checkpoint_is_refused_with_its_name(tmp_path, content, message):
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as err:
        jobs.read_model_info(path)
    assert "broken" in str(err.value)


def test_a_hashing_checkpoint_is_not_a_generator(tmp_path):
    from training.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "h.safetensors", {"w": torch.zeros(2)},
                           {"method": "deephash", "band_names": ["B04"], "bits": 8,
                            "normalisation": {"clip": 1, "divisor": 1}})  # fmt: skip
    with pytest.raises(ModelFileError, match="h.safetensors.*not a conditional GAN"):
        jobs.read_model_info(path)


def test_saved_samples_form_a_labelled_archive(gan, demo_archive, tmp_path):
    import rasterio

    from rsgui.archive import Archive

    cls = Archive.open(demo_archive).classes[1]
    s = jobs.run_to_end(jobs.generation_job(gan, cls, n=3, seed=1))
    paths = jobs.save_samples(s, tmp_path / "extra")
    assert len(paths) == 3 and all(p.parent.name == cls for p in paths)
    with rasterio.open(paths[0]) as src:
        assert src.descriptions == ("B04", "B03", "B02") and src.dtypes[0] == "uint16"
        np.testing.assert_allclose(src.read() / 4095.0, s.pixels[0], atol=1 / 4095)
    arc = Archive.open(tmp_path / "extra", band_names=["B04", "B03", "B02"])
    assert arc.classes == (cls,) and len(arc) == 3


def test_evaluation_job_matches_rsgui_evaluation(spectral_index):
    from rsgui.evaluation import evaluate
    from rsgui.index import HashIndex

    (summary,) = jobs.run_to_end(jobs.evaluation_job([spectral_index], k=(5, 20), n=(5,)))
    direct = evaluate(HashIndex.load(spectral_index), k=(5, 20), n=(5,))
    assert summary.evaluation.map_retrieved == direct.map_retrieved
    assert summary.evaluation.precision == direct.precision
    np.testing.assert_allclose(summary.evaluation.pr_precision, direct.pr_precision)
    assert summary.name == "spectral-16" and "16 bits" in summary.label


def test_evaluation_job_names_a_bad_file(tmp_path):
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(jobs.JobError, match="junk"):
        jobs.run_to_end(jobs.evaluation_job([bad]))


def test_list_checkpoints_skips_temporary_and_broken(tmp_path, gan):
    import shutil

    shutil.copy(gan, tmp_path / "a.safetensors")
    shutil.copy(gan.with_suffix(".json"), tmp_path / "a.json")
    (tmp_path / ".a.safetensors.x.tmp.safetensors").write_bytes(b"")
    (tmp_path / "b.safetensors").write_bytes(b"")
    (tmp_path / "b.json").write_text("{broken")
    assert [c.path.name for c in jobs.list_checkpoints(tmp_path)] == ["a.safetensors"]
    assert jobs.list_checkpoints(tmp_path / "missing") == []


def test_threaded_steps_relays_progress_and_errors():
    def work(n, progress=None, cancel=None):
        for i in range(n):
            progress(i + 1, n, "x")
        if n == 0:
            raise ValueError("nothing to do")
        return n * 10

    events: list[dict] = []
    assert jobs.run_to_end(jobs.threaded_steps(work, 3), events.append) == 30
    assert [e["step"] for e in events] == [1, 2, 3]
    with pytest.raises(ValueError, match="nothing to do"):
        jobs.run_to_end(jobs.threaded_steps(work, 0))


def test_devices_always_offer_the_cpu_last():
    from rsgui.app.devices import list_devices

    devices = list_devices()
    assert devices[-1].id == "cpu"
    assert all(d.id.startswith("cuda:") for d in devices[:-1])
    assert len(devices) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)


@pytest.mark.parametrize("method", ["gan-ms", "dhnn-ms"])
def test_unsupervised_methods_train_report_map_and_index(demo_archive, tmp_path, method):
    events: list[dict] = []
    out = tmp_path / f"{method}.safetensors"
    it = jobs.training_job(demo_archive, method, out, bits=16, steps=2, batch_size=8)
    result = jobs.run_to_end(it, events.append)
    steps = [e for e in events if e["event"] == "progress" and e["losses"]]
    assert [e["step"] for e in steps] == [1, 2]
    assert any("map" in e for e in steps)  # labelled archive: MAP measured while training
    assert result.path == out and out.is_file()
    indexed = jobs.run_to_end(jobs.index_job(demo_archive, out, tmp_path / "i.npz"))
    assert indexed.method == method and indexed.n_tiles == 60 and indexed.path.is_file()
