"""Property test: random bytes, random TIFF tags and random JSON fed to the archive reader, the
index loader and the model loader. Every outcome is a result or one clean error (an rsgui error
naming the file, on one line), never another exception, a hang (a deadline per example) or a
write outside the example's folder (the folders around it are snapshotted and compared)."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rsgui.errors import RsguiError

torch.set_num_threads(1)

SETTINGS = dict(
    deadline=5000,  # ms; generous on two shared cores, far below a hang
    database=None,  # no .hypothesis folder written beside the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: a failure is reproducible
)

# ----------------------------------------------------------------------------- the sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """(base folder, snapshot function): each example works in a fresh folder below ``base``;
    the user cache is pointed inside it too, so any write outside shows as a changed listing."""
    base = tmp_path_factory.mktemp("hostile")
    old = os.environ.get("RSGUI_CACHE_DIR")
    os.environ["RSGUI_CACHE_DIR"] = str(base / "user-cache")
    # this session's temporary folders, the examples' own base folder (siblings of each
    # example) and the redirected user cache (the archives are writable, so it stays empty);
    # folders shared with other programs (/tmp, the repository) would make the check flaky
    watched = [base.parent, base, base / "user-cache"]

    def snapshot():
        out = {}
        for folder in watched:
            try:
                out[str(folder)] = sorted(os.listdir(folder))
            except OSError:
                out[str(folder)] = None
        return out

    yield base, snapshot
    if old is None:
        os.environ.pop("RSGUI_CACHE_DIR", None)
    else:
        os.environ["RSGUI_CACHE_DIR"] = old


def _run_contained(sandbox, fn):
    """Run ``fn(folder)`` in a fresh folder; a clean RsguiError is fine, anything else fails.
    Returns fn's result or the error. The folders around the example must not change."""
    base, snapshot = sandbox
    folder = Path(tempfile.mkdtemp(dir=base))
    before = snapshot()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn(folder)
    except RsguiError as e:
        text = str(e)
        assert "\n" not in text and text, text  # one line meant for the user
        result = e
    event(type(result).__name__)  # --hypothesis-show-statistics: how far the inputs got
    after = snapshot()
    for key, names in before.items():
        new = set(after[key] or ()) - set(names or ())
        assert not new, f"written outside the example's folder, in {key}: {sorted(new)}"
    return result


# ----------------------------------------------------------------------------- archives

TIFF_TAGS = [254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 322, 323, 324, 325, 339,
             33550, 33922, 34264, 34735, 42112, 42113]  # fmt: skip


def _valid_tile() -> bytes:
    import rasterio
    from rasterio.io import MemoryFile

    data = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with MemoryFile() as mem:
            with (
                rasterio.Env(GDAL_PAM_ENABLED="NO"),
                mem.open(driver="GTiff", dtype="uint16", count=3, height=16, width=16) as dst,
            ):
                dst.write(data)
            return bytes(mem.read())


VALID_TILE = _valid_tile()

ifd_entry = st.tuples(
    st.one_of(st.sampled_from(TIFF_TAGS), st.integers(0, 65535)),
    st.integers(0, 17),  # field type (some unknown)
    st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)),  # count
    st.one_of(st.integers(0, 4096), st.integers(0, 2**32 - 1)),  # value or offset
)


@st.composite
def random_tiff(draw) -> bytes:
    """A classic TIFF header, one IFD of random entries, then random bytes."""
    order = draw(st.sampled_from(["<", ">"]))
    entries = draw(st.lists(ifd_entry, max_size=14))
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8)
    ifd = struct.pack(order + "H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack(order + "HHII", tag, typ, count, value)
    ifd += struct.pack(order + "I", draw(st.sampled_from([0, 8, 2**32 - 1])))
    return head + ifd + draw(st.binary(max_size=2048))


@st.composite
def mutated_tile(draw) -> bytes:
    """A valid GeoTIFF with a few header bytes changed, or cut short."""
    data = bytearray(VALID_TILE)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, min(len(data), 512) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


raster_bytes = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda b: b"II*\x00" + b, st.binary(max_size=512)),
    st.builds(lambda b: b"\x89PNG\r\n\x1a\n" + b, st.binary(max_size=256)),
    st.builds(lambda b: b"\xff\xd8\xff" + b, st.binary(max_size=256)),
    random_tiff(),
    mutated_tile(),
)


def _open_and_read(folder: Path, name: str, data: bytes):
    from rsgui.archive import Archive

    (folder / "A").mkdir()
    (folder / "A" / name).write_bytes(data)
    (folder / "B").mkdir()
    (folder / "B" / "good.tif").write_bytes(VALID_TILE)
    arc = Archive.open(folder)
    assert len(arc) + len(arc.problems) >= 1
    for i in range(len(arc)):
        batch = arc.read([i])
        assert np.isfinite(batch.pixels).all()
    return arc


@settings(max_examples=80, **SETTINGS)
@given(data=raster_bytes, name=st.sampled_from(["t.tif", "t.tiff", "t.png", "t.jpg"]))
def test_archive_reader_survives_any_file(sandbox, data, name):
    _run_contained(sandbox, lambda folder: _open_and_read(folder, name, data))


# ----------------------------------------------------------------------------- JSON


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def fuzzed_object(draw, base: dict) -> dict:
    """``base`` with some keys replaced by random JSON values, some removed."""
    out = json.loads(json.dumps(base))
    keys = sorted(out)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        if draw(st.booleans()):
            out[key] = draw(json_values)
        else:
            del out[key]
    if draw(st.booleans()):
        section = draw(st.sampled_from(keys))
        if isinstance(out.get(section), dict) and out[section]:
            sub = draw(st.sampled_from(sorted(out[section])))
            out[section][sub] = draw(json_values)
    return out


def json_text(base: dict):
    return st.one_of(
        st.builds(json.dumps, fuzzed_object(base)),
        st.builds(json.dumps, json_values),
        st.text(max_size=64),
        st.just("[" * 5000),
    )


# ----------------------------------------------------------------------------- indexes


def _index_files():
    """A real spectral index of four small tiles (its arrays rebuild the encoder)."""

    with tempfile.TemporaryDirectory() as tmp:
        return _spectral_index_in(Path(tmp))


def _spectral_index_in(folder: Path):
    from rsgui.archive import Archive
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    for i, cls in enumerate(["A", "A", "B", "B"]):
        (folder / cls).mkdir(exist_ok=True)
        data = bytearray(VALID_TILE)
        tail = len(data) - 3 * 16 * 16 * 2  # pixels last: scale them per tile
        px = np.frombuffer(bytes(data[tail:]), "<u2") * (i + 1)
        data[tail:] = px.astype("<u2").tobytes()
        (folder / cls / f"t{i}.tif").write_bytes(bytes(data))
    arc = Archive.open(folder, use_cache=False)
    assert len(arc) == 4, arc.problems
    npz = drive(index_job(arc, "spectral", folder / "idx", bands="all", bits=8)).path
    return npz.read_bytes(), json.loads(npz.with_suffix(".json").read_text())


INDEX_NPZ, INDEX_META = _index_files()


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


arrays_strategy = st.dictionaries(
    st.sampled_from(["codes", "paths", "labels", "has_label", "features", "extra__x"]),
    st.one_of(
        st.builds(lambda n, m: np.zeros((n, m), np.uint8), st.integers(0, 5), st.integers(0, 5)),
        st.builds(lambda n: np.array(["x"] * n), st.integers(0, 5)),
        st.builds(lambda n: np.ones(n, bool), st.integers(0, 5)),
        st.builds(lambda v: np.full((4, 16), v, np.float32),
                  st.floats(allow_nan=True, allow_infinity=True, width=32)),
    ),
    max_size=6,
)  # fmt: skip


@st.composite
def mutated_npz(draw) -> bytes:
    data = bytearray(INDEX_NPZ)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    return bytes(data)


npz_bytes = st.one_of(
    st.just(INDEX_NPZ), st.binary(max_size=256), st.builds(_npz, arrays_strategy), mutated_npz()
)


def pairs(valid_bytes: bytes, valid_meta: dict, any_bytes, mutated):
    """(file bytes, JSON text): half the time one half is intact, so the other one's damage is
    met by the checks deep in the loader rather than the first ones."""
    return st.one_of(
        st.tuples(st.just(valid_bytes), st.builds(json.dumps, fuzzed_object(valid_meta))),
        st.tuples(mutated, st.just(json.dumps(valid_meta))),
        st.tuples(any_bytes, json_text(valid_meta)),
    )


@settings(max_examples=80, **SETTINGS)
@given(pair=pairs(INDEX_NPZ, INDEX_META, npz_bytes, mutated_npz()))
def test_index_loader_survives_any_pair(sandbox, pair):
    npz, meta = pair

    from rsgui.index_store import HashIndex
    from rsgui.services.search import encode_query, encoder_for_index
    from rsgui.tiles import TileBatch

    def load(folder: Path):
        (folder / "idx.npz").write_bytes(npz)
        (folder / "idx.json").write_text(meta)
        index = HashIndex.load(folder / "idx")
        if index.features is not None:
            assert np.isfinite(index.features).all()
        try:  # what a search does next: rebuild the encoder from the index, encode a query
            encoder = encoder_for_index(index)
        except FileNotFoundError as e:  # a trained method's model file: named in the message
            assert "model file" in str(e)
            return index
        h, w = getattr(encoder, "tile_shape", (16, 16))
        bands = tuple(index.meta.band_names)
        batch = TileBatch(np.full((1, len(bands), h, w), 0.3, np.float32), bands, [])
        codes = encode_query(index, batch, encoder)
        assert codes.shape == (1, index.meta.bits) and np.isfinite(codes).all()
        return index

    _run_contained(sandbox, load)


# ----------------------------------------------------------------------------- model files


def _model_files():
    with tempfile.TemporaryDirectory() as tmp:
        return _model_in(Path(tmp))


def _model_in(folder: Path):
    from rsgui.progress import drive
    from training.train_uahm import TrainSettings, train
    from training.uahm import UAHMConfig

    tiles = np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32)
    cfg = UAHMConfig(method="gan-rgb", bits=8, channels=3, image_size=16, width=0.125, hidden=16,
                     binary=False)  # fmt: skip
    meta = {"band_names": ["B04", "B03", "B02"], "normalisation": {"clip": 255, "divisor": 255}}
    path = drive(train(cfg, TrainSettings(steps=1, batch_size=4), tiles, out=folder / "m",
                       meta=meta))  # fmt: skip
    return path.read_bytes(), json.loads(path.with_suffix(".json").read_text())


MODEL_BYTES, MODEL_META = _model_files()


@st.composite
def mutated_safetensors(draw) -> bytes:
    """The model file with bytes changed in its JSON header (shapes, dtypes, offsets) or its
    8-byte length, or cut short."""
    data = bytearray(MODEL_BYTES)
    (n,) = struct.unpack("<Q", data[:8])
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, min(n + 8, len(data)) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


model_bytes = st.one_of(
    st.just(MODEL_BYTES),
    st.binary(max_size=256),
    st.builds(lambda n, b: struct.pack("<Q", n) + b, st.integers(0, 2**64 - 1),
              st.binary(max_size=128)),
    mutated_safetensors(),
)  # fmt: skip


@settings(max_examples=60, **SETTINGS)
@given(pair=pairs(MODEL_BYTES, MODEL_META, model_bytes, mutated_safetensors()))
def test_model_loader_survives_any_pair(sandbox, pair):
    model, meta = pair

    from rsgui.encoders import load_trained_encoder

    def load(folder: Path):
        (folder / "m.safetensors").write_bytes(model)
        (folder / "m.json").write_text(meta)
        enc = load_trained_encoder(folder / "m.safetensors")
        codes = enc.encode(np.random.default_rng(0).random((2, len(enc.band_names), 16, 16),
                                                             dtype=np.float32))  # fmt: skip
        assert codes.shape == (2, enc.bits)
        return enc

    _run_contained(sandbox, load)
