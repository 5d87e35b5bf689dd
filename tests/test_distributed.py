"""Indexing on a Dask LocalCluster: the same bytes as in-process, nothing lost when a worker dies,
incremental updates equal to full rebuilds, cancel stops the cluster's tasks."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

from rsgui.archive import Archive  # noqa: E402
from rsgui.progress import drive  # noqa: E402
from rsgui.services.distributed import distributed_index_job  # noqa: E402
from rsgui.services.indexing import build_index, index_job  # noqa: E402
from rsgui.shards import ShardedIndex, write_index  # noqa: E402

BATCH = 8


@pytest.fixture(scope="module")
def client():
    """Two workers as threads of this process: starts in a fraction of a second."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=":0", silence_logs=40)  # fmt: skip
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def archive(demo_archive):
    return Archive.open(demo_archive)


def _same(index: ShardedIndex, ref) -> None:
    h = index.to_hash_index()
    np.testing.assert_array_equal(h.codes, ref.codes)
    assert h.paths == ref.paths and h.labels == ref.labels
    assert sorted(h.extra_arrays) == sorted(ref.extra_arrays)
    for k, v in ref.extra_arrays.items():
        np.testing.assert_array_equal(h.extra_arrays[k], v)


@pytest.mark.parametrize("chunk_tiles", [BATCH, 3 * BATCH, 1000])
def test_cluster_index_equals_the_in_process_index_byte_for_byte(
    tmp_path, archive, client, chunk_tiles
):
    ref = drive(index_job(archive, "spectral", tmp_path / "ref", batch_size=BATCH)).index
    res = drive(distributed_index_job(archive, "spectral", tmp_path / "dist", batch_size=BATCH,
                                      client=client, chunk_tiles=chunk_tiles, shard_rows=25))  # fmt: skip
    assert (res.n_tiles, res.encoded, res.reused, res.workers) == (60, 60, 0, 2)
    _same(res.index, ref)
    local = ShardedIndex.open(write_index(tmp_path / "local", ref, shard_rows=25))
    for a, b in zip(local.shards, res.index.shards, strict=True):
        assert (tmp_path / "local" / a.entry["codes"]).read_bytes() == (
            tmp_path / "dist" / b.entry["codes"]
        ).read_bytes()
    assert not (tmp_path / "dist" / ".chunks").exists()


def test_runs_sharing_a_cluster_keep_their_own_encoder_and_archive(tmp_path, archive, client):
    refs = {b: drive(index_job(archive, "spectral", tmp_path / f"ref{b}", bits=b,
                               batch_size=BATCH)).index for b in (16, 32)}  # fmt: skip
    first = distributed_index_job(archive, "spectral", tmp_path / "a", bits=16, batch_size=BATCH,
                                  client=client, chunk_tiles=BATCH)  # fmt: skip
    next(first)  # fitted and submitted, not yet gathered
    while True:
        p = next(first)
        if p.stage == "encode" and p.total:
            break
    second = drive(distributed_index_job(archive, "spectral", tmp_path / "b", bits=32,
                                         batch_size=BATCH, client=client, chunk_tiles=BATCH))  # fmt: skip
    done = drive(first)
    _same(second.index, refs[32])
    _same(done.index, refs[16])
    # nothing was scattered under the plain names of its fields
    assert not {"encoder", "root", "payload", "fingerprint"} & set(client.has_what().get(
        next(iter(client.has_what())), ()))  # fmt: skip


def test_a_killed_worker_loses_nothing(tmp_path, archive):
    """Worker processes; one is killed as soon as tasks run: its chunks run elsewhere."""
    from dask.distributed import Client, LocalCluster

    ref = drive(index_job(archive, "spectral", tmp_path / "ref", batch_size=4)).index
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=50)  # fmt: skip
    c = Client(cluster)
    try:
        pids = c.run(os.getpid)
        job = distributed_index_job(archive, "spectral", tmp_path / "dist", batch_size=4,
                                    client=c, chunk_tiles=4)  # fmt: skip
        killed, seen = False, []
        try:
            while True:
                p = next(job)
                seen.append(p)
                if p.stage == "encode" and not killed and "worker" in p.note:
                    os.kill(next(iter(pids.values())), signal.SIGKILL)
                    killed = True
        except StopIteration as stop:
            res = stop.value
        assert killed
        done = [p.done for p in seen if p.stage == "encode"]
        assert done == sorted(done) and max(done) == 60  # counted once each, never beyond
        _same(res.index, ref)
    finally:
        c.close()
        cluster.close()


def test_incremental_update_equals_a_full_rebuild(tmp_path, demo_archive, client):
    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root, ignore=shutil.ignore_patterns(".rsgui*"))
    extra = sorted(root.glob("River/*.tif"))
    held = tmp_path / "held"
    held.mkdir()
    for p in extra[:3]:
        shutil.move(p, held / p.name)
    first = drive(distributed_index_job(Archive.open(root), "spectral", tmp_path / "idx",
                                        batch_size=BATCH, client=client))  # fmt: skip
    assert first.encoded == 57
    for p in held.iterdir():  # three tiles added, two removed, one changed
        shutil.move(p, root / "River" / p.name)
    removed = sorted(root.glob("Forest/*.tif"))[:2]
    for p in removed:
        p.unlink()
    changed = sorted(root.glob("Pasture/*.tif"))[0]
    changed.write_bytes(next(iter(sorted(root.glob("SeaLake/*.tif")))).read_bytes())
    archive = Archive.open(root)
    res = drive(distributed_index_job(archive, "spectral", tmp_path / "idx", batch_size=BATCH,
                                      client=client))  # fmt: skip
    assert (res.encoded, res.removed, res.n_tiles) == (4, 3, 58)
    again = drive(distributed_index_job(archive, "spectral", tmp_path / "idx", batch_size=BATCH,
                                        client=client))  # fmt: skip
    assert (again.encoded, again.reused, again.index.id) == (0, 58, res.index.id)  # untouched
    from rsgui.services.search import encoder_for_index

    encoder = encoder_for_index(first.index)  # the update keeps the fitted encoder
    _same(res.index, build_index(archive, encoder, batch_size=BATCH))


def test_cancel_cancels_the_tasks_and_leaves_no_index(tmp_path, archive, client):
    job = distributed_index_job(archive, "spectral", tmp_path / "idx", batch_size=4,
                                client=client, chunk_tiles=4)  # fmt: skip
    for p in job:
        if p.stage == "encode" and "worker" in p.note:
            break
    job.close()
    assert not (tmp_path / "idx" / "manifest.json").exists()
    import time

    def ours(dask_scheduler):
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("rsgui-encode")]

    deadline = time.monotonic() + 10
    while client.run_on_scheduler(ours) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.run_on_scheduler(ours) == []  # the scheduler forgot every task of the job
    res = drive(distributed_index_job(archive, "spectral", tmp_path / "idx", batch_size=4,
                                      client=client, chunk_tiles=4))  # fmt: skip
    assert res.n_tiles == 60 and res.encoded == 60


def test_cli_index_on_an_embedded_cluster(tmp_path, demo_archive, capsys):
    from rsgui.cli import main

    out = tmp_path / "idx"
    assert main(["index", str(demo_archive), "--method", "spectral", "--out", str(out),
                 "--workers", "1", "--batch-size", "16"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "60 encoded" in text and "1 worker" in text
    ref = drive(index_job(Archive.open(demo_archive), "spectral", tmp_path / "ref",
                          batch_size=16)).index  # fmt: skip
    _same(ShardedIndex.open(out), ref)


@pytest.mark.parametrize("args,message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give one"),
])  # fmt: skip
def test_cli_refuses_bad_cluster_options(tmp_path, demo_archive, capsys, args, message):
    from rsgui.cli import main

    base = ["index", str(demo_archive), "--method", "spectral", "--out", str(tmp_path / "i")]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err


def test_the_application_build_lands_where_the_indexes_are_found(
    tmp_path, demo_archive, client, monkeypatch
):
    from rsgui.index_store import scan_indexes
    from rsgui.services import distributed
    from rsgui.shards import open_index

    root = tmp_path / "archive"
    shutil.copytree(demo_archive, root, ignore=shutil.ignore_patterns(".rsgui*"))
    asked = []
    monkeypatch.setattr(
        distributed, "connect", lambda *a, **k: (asked.append(a), (client, None))[1]
    )
    archive = Archive.open(root)
    res = drive(distributed.cluster_spectral_index_job(archive, 32, "tcp://example:8786"))
    assert asked and asked[0][0] == "tcp://example:8786"
    entries = scan_indexes(root)
    assert [e.path for e in entries] == [res.path] and entries[0].n == 60 and entries[0].bits == 32
    assert isinstance(open_index(entries[0].path), ShardedIndex)


def test_a_trained_model_is_sent_as_its_file_bytes(tmp_path, demo_archive, client, light_uahm):
    pytest.importorskip("torch")
    from rsgui.cli import main
    from rsgui.services import distributed

    model = tmp_path / "u.safetensors"
    assert main(["train", str(demo_archive), "--method", "uahm", "--bits", "8", "--steps", "2",
                 "--batch-size", "8", "--device", "cpu", "--out", str(model)]) == 0  # fmt: skip
    archive = Archive.open(demo_archive)
    ref = drive(index_job(archive, "uahm", tmp_path / "ref", model=model, batch_size=BATCH)).index
    distributed._worker_encoders.clear()
    res = drive(distributed_index_job(archive, "uahm", tmp_path / "dist", model=model,
                                      batch_size=BATCH, client=client))  # fmt: skip
    assert len(distributed._worker_encoders) == 1  # loaded from the bytes, once for both workers
    assert res.index.meta.encoder["model_path"] == str(model.resolve())
    _same(res.index, ref)
