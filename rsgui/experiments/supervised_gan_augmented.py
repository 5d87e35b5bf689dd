"""Protocol of the conditional-GAN + supervised deep hashing chapter (Tables 4.1, 4.3-4.5).

Split: ``per_class`` test tiles per class (100 in the method); every test tile queries the other
test tiles; everything else trains both the GANs and the hash networks. Three hash training sets
(real; real + cDCGAN tiles; real + ACGAN tiles) at each code length give MAP@100 and class-wise
MAP; the GANs are scored by FID / KID on Inception features and an IS-style score. Small
archives scale the protocol down (fewer test tiles, MAP over all other test tiles) and the report
says how.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from rsgui import ranking
from rsgui.progress import Progress, drive

QUICK = {  # minutes on a 2-core CPU: a smoke-scale run of the whole protocol
    "gan_steps": 200,
    "gan_width": 0.25,
    "gan_batch": 32,
    "n_generated": 200,
    "dh_steps": 400,
    "dh_lr": 3e-4,
    "ms10_steps": 200,
    "improved_steps": 100,
    "improved_bits": "mid",  # the improved network at the middle code length only
    "metric_tiles": 1000,
    "features": {"extractor": "inception-v3", "input_size": 139, "rgb_gain": 2.5},
    "is_style": True,
}
# The whole protocol on 26,000 tiles within 3 hours on 2 cores (stage times in the report)
CPU = {
    "gan_steps": 1500,
    "gan_width": 0.5,
    "gan_batch": 64,
    "n_generated": 5000,
    "dh_steps": 4000,
    "dh_lr": 3e-4,
    "ms10_steps": 2000,
    "improved_steps": 800,
    "improved_bits": "mid",
    "improved_sets": ("real",),  # 10 minutes each: GAN tiles are weighed on the method's network
    "metric_tiles": 5000,
    "is_size": 128,  # 3x faster than 224 px on 2 cores
    "features": {"extractor": "inception-v3", "input_size": 139, "rgb_gain": 2.5},
    "is_style": True,
}
THESIS = {
    "gan_steps": 100_000,
    "gan_width": 1.0,
    "gan_batch": 64,
    "n_generated": 5000,
    "dh_steps": 20_000,
    "dh_lr": 1e-4,
    "ms10_steps": 10_000,
    "improved_steps": 4000,
    "improved_bits": "all",
    "metric_tiles": 5000,
    "features": {"extractor": "inception-v3", "input_size": 299, "rgb_gain": 2.5},
}
PRESETS = {"quick": QUICK, "cpu": CPU, "thesis": THESIS}
SETS = ("real", "real+cdcgan", "real+acgan")
SET_NAMES = {
    "real": "Only real tiles",
    "real+cdcgan": "Real + cDCGAN tiles",
    "real+acgan": "Real + ACGAN tiles",
    "real-ms10": "Only real tiles, ten-band CNN (ms10)",
    "improved:real": "Improved network, only real tiles",
    "improved:real+cdcgan": "Improved network, real + cDCGAN tiles",
    "improved:real+acgan": "Improved network, real + ACGAN tiles",
    "improved:real-ms10": "Improved network, ten bands, real tiles",
    "spectral": "spectral (training-free)",
    "pretrained": "pretrained (training-free)",
}
METHOD_REFERENCE = {  # the method's published numbers, EuroSAT RGB, 27 000 tiles
    "map": {
        "real": (0.9338, 0.9357, 0.9334),
        "real+cdcgan": (0.9189, 0.9387, 0.9372),
        "real+acgan": (0.9217, 0.9404, 0.9313),
    },
    "is_fid": {"cdcgan": (2.3521, 188.9619), "acgan": (2.6371, 170.8508)},
    # Table 4.4, 32 bits: Ann. For. Her. High. Ind. Pas. Per. Res. Riv. Sea.
    "classwise": {
        "real": (0.9844, 0.9678, 0.9033, 0.8110, 0.9984, 0.9665, 0.8893, 0.9991, 0.8566, 0.9801),
        "real+cdcgan": (
            0.9519,
            0.9690,
            0.9123,
            0.8542,
            0.9676,
            0.9427,
            0.8854,
            0.9719,
            0.9415,
            0.9705,
        ),
        "real+acgan": (
            0.9591,
            0.9674,
            0.9015,
            0.8378,
            0.9895,
            0.9636,
            0.8995,
            0.9805,
            0.9140,
            0.9908,
        ),
    },  # fmt: skip
}
EUROSAT = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
    "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip


class _Log:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def split(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random test tiles of every class; the rest train."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        test.append(rng.choice(members, min(per_class, len(members) - 1), replace=False))
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.flatnonzero(labels >= 0), test_idx)
    return test_idx, train_idx


def test_per_class(counts: list[int]) -> int:
    """100 as in the method when classes are large; about a third of the smallest class else."""
    smallest = min(counts)
    return 100 if smallest >= 500 else max(1, min(100, round(smallest / 3)))


def hamming_map(codes: np.ndarray, labels: np.ndarray, k: int, classes) -> tuple[float, dict]:
    """Each code queries all the others (itself excluded): MAP@k and class-wise MAP@k."""
    from rsgui.metrics import classwise_map, map_at_k

    order = ranking.leave_one_out(codes, True, k)  # Hamming, ties in archive order
    rel = labels[order] == labels[:, None]
    names = [classes[i] for i in labels]
    return map_at_k(rel, k), classwise_map(rel, names, k)


def run(args: argparse.Namespace) -> int:
    import torch

    from rsgui.archive import Archive
    from rsgui.encoders.deephash import inception_features_cached_job
    from rsgui.encoders.registry import method as method_spec
    from rsgui.services.training import torch_device

    log = _Log()
    cfg = dict(PRESETS[getattr(args, "preset", None) or "quick"])
    cfg.update(getattr(args, "config", None) or {})  # programmatic overrides (tests)
    if getattr(args, "steps", None):
        cfg["gan_steps"] = cfg["dh_steps"] = cfg["ms10_steps"] = int(args.steps)
    bits_list = tuple(int(b) for b in (args.bits or "16,32,64").split(","))
    device = torch_device(getattr(args, "device", "auto"))
    seed = int(getattr(args, "seed", 0) or 0)
    if device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    (out / "models").mkdir(parents=True, exist_ok=True)

    arc = Archive.open(args.archive)
    if len(arc.classes) < 2:
        raise ValueError(
            f"{args.archive}: the protocol needs a labelled archive with two or more classes"
        )
    chosen = "features" in (getattr(args, "config", None) or {})
    if arc.normalisation.divisor <= 255 and not chosen:  # display-scaled 8-bit: no gain
        from rsgui.services.training import feature_settings

        gain = feature_settings(arc)["rgb_gain"]
        cfg = {**cfg, "features": {**cfg["features"], "rgb_gain": gain}}
    labels = arc.labels
    counts = [int((labels == c).sum()) for c in range(len(arc.classes))]
    per_class = test_per_class(counts)
    test_idx, train_idx = split(labels, per_class, seed)
    k = min(100, len(test_idx) - 1)
    log(
        f"{len(arc)} tiles, {len(arc.classes)} classes; {len(test_idx)} test, {len(train_idx)} train; MAP@{k}"
    )

    # ---- real tiles and their Inception features (computed once) ----
    rgb = arc.read(np.arange(len(arc)).tolist(), bands="rgb").pixels
    t0 = time.perf_counter()
    feats = drive(  # through the archive's feature cache, shared with training and indexing
        inception_features_cached_job(arc, cfg["features"], device, pixels=rgb),
        _every(log, "Inception features", 2000),
    )
    t_features = time.perf_counter() - t0
    log(f"real tile features ready ({t_features:.0f} s)")
    results: dict = {
        "archive": str(arc.root),
        "preset": getattr(args, "preset", "quick"),
        "config": cfg,
        "bits": list(bits_list),
        "classes": list(arc.classes),
        "n_test": len(test_idx),
        "n_train": len(train_idx),
        "test_per_class": per_class,
        "k": k,
        "device": str(device),
        "gan": {},
        "map": {},
        "classwise": {},
        "p10": {},
        "pr": {},
        "timings_s": {"features_real": t_features},
        "display_scaled": bool(arc.normalisation.divisor <= 255),
    }

    # ---- conditional GANs on the training tiles ----
    from training.cgan import CGANConfig
    from training.gan_metrics import (
        fid_from_features,
        is_style_score,
        kid_from_features,
    )
    from training.generate import generate, load
    from training.train_cgan import GANData, TrainConfig, train_cgan

    gain = float(cfg["features"]["rgb_gain"])
    train_rgb = rgb[train_idx]
    # Table 4.1 compares generated tiles with a fixed sample of the real training tiles
    n_metric = int(cfg.get("metric_tiles", 5000))
    is_size = int(cfg.get("is_size", 224))  # the IS-style classifier's input side
    ref_idx = np.sort(np.random.default_rng(seed).permutation(train_idx)[:n_metric])
    gen_sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    gan_hist: dict[str, list] = {}
    for method in ("cdcgan", "acgan"):
        t0 = time.perf_counter()
        ckpt = out / "models" / f"{method}.safetensors"
        data = GANData(
            train_rgb, labels[train_idx], tuple(arc.classes), ("B04", "B03", "B02"),
            arc.normalisation.to_dict(),
        )  # fmt: skip
        tc = TrainConfig(
            steps=cfg["gan_steps"], batch_size=cfg["gan_batch"], seed=seed, checkpoint_every=0
        )
        mc = CGANConfig(width=cfg["gan_width"], **method_spec(method).config)
        done = _finished(ckpt, cfg["gan_steps"])
        if not done:
            drive(train_cgan(data, ckpt, mc, tc, device), _every(log, method, 100))
        gen = load(ckpt, str(device))
        gan_hist[method] = gen.meta.get("history", [])
        n_gen = cfg["n_generated"]
        gx, gy, gf = _generated(gen, ckpt, arc.classes, n_gen, cfg["features"], seed, device)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        fid = fid_from_features(feats[ref_idx], gf[:n_metric])
        kid, kid_std = kid_from_features(feats[ref_idx], gf[:n_metric], n_subsets=50)
        is_m, is_s = (
            is_style_score(np.clip(gx[:n_metric] * gain, 0, 1), device=device, size=is_size)
            if cfg.get("is_style", True)
            else (float("nan"), float("nan"))
        )
        results["timings_s"][f"scores_{method}"] = time.perf_counter() - t0
        results["gan"][method] = {
            "steps": gen.meta["step"],
            "fid": fid,
            "kid": kid,
            "kid_std": kid_std,
            "is_style": is_m,
            "is_style_std": is_s,
            "n_generated": int(len(gx)),
            "per_class_fid": _per_class_fid(
                feats[train_idx], labels[train_idx], gf, gy, arc.classes
            ),
        }
        results["timings_s"][f"gan_{method}"] = t_train
        gen_sets[method] = (gx, gy, gf)
        _sample_grid(
            gen,
            arc.classes,
            train_rgb,
            labels[train_idx],
            gain,
            out / f"samples_{method}.png",
            seed,
            generate,
        )
        log(f"{method}: FID {fid:.1f}, KID {kid:.4f}, IS-style {is_m:.2f}")
    is_real = (
        is_style_score(np.clip(rgb[ref_idx] * gain, 0, 1), device=device, size=is_size)[0]
        if cfg.get("is_style", True)
        else float("nan")
    )
    results["gan"]["real"] = {
        "is_style": is_real,
        "fid": fid_from_features(feats[ref_idx], feats[test_idx]),
        "kid": kid_from_features(feats[ref_idx], feats[test_idx], n_subsets=50)[0],
        "n_generated": int(len(test_idx)),
    }
    results["n_metric_real"] = int(len(ref_idx))

    # ---- supervised deep hashing on the three training sets ----
    from training.train_deephash import (
        DeepHashData,
        hash_outputs,
        load_net,
        preset_config,
        train_deephash,
    )

    dh_hist: dict[str, list] = {}
    norm = arc.normalisation.to_dict()
    test_y = labels[test_idx]
    mid = 32 if 32 in bits_list else bits_list[len(bits_list) // 2]
    results["mid_bits"] = mid

    def score(row: str, bits: int, codes: np.ndarray, t0: float) -> None:
        m, cw, p10, pr = evaluate(codes, test_y, k, arc.classes)
        results["map"].setdefault(row, {})[bits] = m
        results["p10"].setdefault(row, {})[bits] = p10
        results["classwise"].setdefault(row, {})[bits] = cw
        if bits == mid:
            results["pr"][row] = pr
        results["timings_s"][f"{row} {bits}"] = time.perf_counter() - t0
        log(
            f"{row} {bits} bits: MAP@{k} {m:.4f}, P@10 {p10:.4f} ({time.perf_counter() - t0:.0f} s)"
        )

    def train_set(set_name: str, inputs: np.ndarray, gen_inputs_of) -> tuple:
        x, y, g = inputs, labels[train_idx], np.zeros(len(train_idx), bool)
        if set_name != "real":
            gy, gx = gen_inputs_of(set_name.split("+")[1])
            x, y = np.concatenate([x, gx]), np.concatenate([y, gy])
            g = np.concatenate([g, np.ones(len(gy), bool)])
        return x, y, g

    def fit(row: str, data: DeepHashData, bits: int, tc, test_inputs: np.ndarray) -> None:
        t0 = time.perf_counter()
        ckpt = (
            out
            / "models"
            / f"deephash_{row.replace('+', '_').replace(':', '_')}_{bits}.safetensors"
        )
        tc.seed, tc.checkpoint_every = seed, max(100, tc.steps // 8)
        if not _finished(ckpt, tc.steps):
            resume = ckpt if _resumable(ckpt, tc.steps) else None
            drive(
                train_deephash(data, ckpt, bits, tc, device, resume=resume), _every(log, row, 200)
            )
        net, meta = load_net(ckpt, device)
        codes = hash_outputs(net, test_inputs, device, batch_size=64) - 0.5
        dh_hist[f"{row} {bits}"] = meta.get("history", [])
        score(row, bits, codes, t0)

    rgb_names = ("B04", "B03", "B02")
    for set_name in SETS:  # the method's network on Inception features
        x, y, g = train_set(set_name, feats[train_idx], lambda m: (gen_sets[m][1], gen_sets[m][2]))
        data = DeepHashData(
            x, y, g, tuple(arc.classes), rgb_names, norm, "rgb", cfg["features"],
            None if set_name == "real" else f"{set_name.split('+')[1]}.safetensors",
        )  # fmt: skip
        for bits in bits_list:
            tc = preset_config(results["preset"], "thesis")
            tc.steps, tc.lr = cfg["dh_steps"], cfg["dh_lr"]
            fit(set_name, data, bits, tc, feats[test_idx])

    # ---- the improved network: the backbone fine-tuned on the tiles ----
    from training.backbone import installed

    if cfg.get("improved_steps") and installed("efficientnet-lite0"):
        imp_bits = bits_list if cfg.get("improved_bits") == "all" else (mid,)
        tiles16 = rgb.astype(np.float16)
        for set_name in cfg.get("improved_sets", SETS):
            x, y, g = train_set(set_name, tiles16[train_idx],
                                lambda m: (gen_sets[m][1], gen_sets[m][0].astype(np.float16)))  # fmt: skip
            data = DeepHashData(
                x, y, g, tuple(arc.classes), rgb_names, norm, "rgb", None,
                None if set_name == "real" else f"{set_name.split('+')[1]}.safetensors",
            )  # fmt: skip
            for bits in imp_bits if set_name == "real" else (mid,):
                tc = preset_config(results["preset"], "improved")
                tc.steps = cfg["improved_steps"]
                fit(f"improved:{set_name}", data, bits, tc, tiles16[test_idx])
        del tiles16

    # ---- beyond the method: all ten bands (archives that have them), real tiles only ----
    has_ms10 = all(b in arc.band_names for b in BAND_SETS_MS10)
    if cfg.get("ms10_steps") and has_ms10:
        ms = arc.read(np.arange(len(arc)).tolist(), bands="ms10")
        data = DeepHashData(
            ms.pixels[train_idx], labels[train_idx], np.zeros(len(train_idx), bool),
            tuple(arc.classes), tuple(ms.band_names), norm, "ms10", None,
        )  # fmt: skip
        tc = preset_config(results["preset"], "thesis")
        tc.steps, tc.lr, tc.model = cfg["ms10_steps"], cfg["dh_lr"], {"cnn_width": 16}
        fit("real-ms10", data, mid, tc, ms.pixels[test_idx])
        if cfg.get("improved_steps") and installed("efficientnet-lite0"):
            tc = preset_config(results["preset"], "improved")
            tc.steps = cfg["improved_steps"]
            fit("improved:real-ms10", data, mid, tc, ms.pixels[test_idx])

    # ---- the training-free methods, fitted on the training tiles ----
    _training_free(arc, train_idx, test_idx, bits_list, "ms10" if has_ms10 else "rgb", score, log)

    results["timings_s"]["total"] = time.perf_counter() - log.t0
    _curves(gan_hist, dh_hist, out / "training_curves.png", mid)
    _pr_figure(results["pr"], out / "pr_curves.png", mid, k)
    from rsgui.atomic import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=_json_default))
    atomic_write_text(out / "report.md", report(results, mid))
    log(f"report written to {out / 'report.md'}")
    return 0


BAND_SETS_MS10 = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def evaluate(codes: np.ndarray, labels: np.ndarray, k: int, classes) -> tuple:
    """Each code queries all the others: MAP@k, class-wise MAP@k, P@10 and the PR curve of the
    whole ranking (Hamming distance, ties in archive order)."""
    from rsgui.metrics import classwise_map, map_at_k, pr_curve

    order = ranking.leave_one_out(codes, True)  # (n, n - 1)
    rel = labels[order] == labels[:, None]
    names = [classes[i] for i in labels]
    n_rel = rel.sum(1)
    precision, recall = pr_curve(rel, n_rel, step=max(1, rel.shape[1] // 50))
    pr = {"precision": precision.tolist(), "recall": recall.tolist()}
    p10 = float(rel[:, : min(10, rel.shape[1])].mean())
    return map_at_k(rel, k), classwise_map(rel[:, :k], names, k), p10, pr


def _training_free(arc, train_idx, test_idx, bits_list, bands: str, score, log) -> None:
    """``spectral`` and ``pretrained`` fitted on the training tiles, codes of the test tiles."""
    from rsgui.encoders.pretrained import PretrainedEncoder
    from rsgui.encoders.spectral import SpectralEncoder
    from rsgui.errors import BackboneUnavailable
    from rsgui.feature_cache import FOLDER
    from rsgui.index_store import writable_index_dir
    from rsgui.subset import ArchiveSubset

    cache = writable_index_dir(arc.root) / FOLDER  # one backbone pass for every code length
    sub = ArchiveSubset(arc, train_idx)
    test = arc.read(np.asarray(test_idx).tolist(), bands=bands).pixels
    for bits in bits_list:
        t0 = time.perf_counter()
        enc = SpectralEncoder.fit(sub, bands, bits)
        score("spectral", bits, enc.encode(test), t0)
        t0 = time.perf_counter()
        try:
            enc = drive(PretrainedEncoder.fit_job(sub, bands, bits=bits, cache_dir=cache))
        except BackboneUnavailable as e:
            log(f"pretrained: skipped ({e})")
            continue
        score("pretrained", bits, enc.encode(test), t0)


def _resumable(ckpt: Path, steps: int) -> bool:
    """A checkpoint of an interrupted run of the same length: go on from it."""
    side = ckpt.with_suffix(".json")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return ckpt.is_file() and int(meta.get("total_steps", -1)) == steps > int(meta.get("step", 0))


def _generated(gen, ckpt: Path, classes, n: int, features: dict, seed: int, device):
    """Generated true-colour tiles, labels and their features; cached beside the GAN."""
    from rsgui.atomic import atomic_path
    from training.train_deephash import generated_tiles, inception_features

    key = json.dumps([gen.meta["step"], n, features, seed, list(classes)], sort_keys=True)
    cache = ckpt.with_name(ckpt.stem + "_generated.npz")
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return z["tiles"], z["labels"], z["features"]
        except (OSError, ValueError, KeyError):
            pass
    gx, gy = generated_tiles(gen, tuple(classes), n, ("B04", "B03", "B02"), seed)
    gf = inception_features(gx, features, device)
    with atomic_path(cache) as tmp:
        np.savez(tmp, tiles=gx, labels=gy, features=gf, key=np.array(key))
    return gx, gy, gf


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    return str(o)


def _every(log, name: str, n: int, seconds: float = 120.0):
    """Log every ``n`` steps, and at least every ``seconds``, with the rate and the ETA."""
    last = [time.perf_counter()]

    def cb(p: Progress) -> None:
        step, total = int(p.done), int(p.total or 0)
        now = time.perf_counter()
        if step % n == 0 or step == total or now - last[0] > seconds:
            last[0] = now
            losses = " ".join(f"{k}={v:.3f}" for k, v in p.values.items())
            eta = f" ETA {p.eta_s / 60:.1f} min" if p.eta_s == p.eta_s and p.eta_s else ""
            log(f"{name} {step}/{total} {p.rate or 0:.0f}/s{eta} {losses}")

    return cb


def _finished(ckpt: Path, steps: int) -> bool:
    """A model of an earlier run of the same protocol that is complete: reuse it."""
    side = ckpt.with_suffix(".json")
    if not (ckpt.is_file() and side.is_file()):
        return False
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return int(meta.get("step", -1)) == steps == int(meta.get("total_steps", -2))


def _per_class_fid(real_f, real_y, fake_f, fake_y, classes) -> dict:
    """FID per class; only meaningful for comparisons (few samples per class)."""
    from training.gan_metrics import fid_from_features

    out = {}
    for c, name in enumerate(classes):
        a, b = real_f[real_y == c], fake_f[fake_y == c]
        if len(a) >= 2 and len(b) >= 2:
            out[name] = fid_from_features(a, b)
    return out


def _sample_grid(gen, classes, real, real_y, gain, path: Path, seed, generate, n: int = 8) -> None:
    """Rows = classes: 3 real tiles | ``n`` generated tiles (true colour), one mosaic image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsgui.atomic import atomic_path

    s = real.shape[-1]
    pad = 2
    cols = 3 + n
    mosaic = np.ones((len(classes) * (s + pad), cols * (s + pad) + pad * 4, 3), np.float32)
    for r, name in enumerate(classes):
        reals = list(real[real_y == r][:3])
        tiles = [*reals, *([None] * (3 - len(reals))), *generate(gen, name, n, seed=seed)]
        for c, tile in enumerate(tiles):
            if tile is None:
                continue
            if tile.shape[-1] != s:
                tile = _resize(tile, s)
            y0, x0 = r * (s + pad), c * (s + pad) + (pad * 4 if c >= 3 else 0)
            mosaic[y0 : y0 + s, x0 : x0 + s] = np.clip(
                np.transpose(tile[:3], (1, 2, 0)) * gain, 0, 1
            )
    h, w = mosaic.shape[:2]
    fig, ax = plt.subplots(figsize=(w / 60 + 1.6, h / 60 + 0.5))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([(r + 0.5) * (s + pad) for r in range(len(classes))], list(classes), fontsize=7)
    ax.set_xticks(
        [1.5 * (s + pad), (3 + n / 2) * (s + pad) + pad * 4], ["real", "generated"], fontsize=7
    )
    ax.set_title(f"{gen.meta['method']} after {gen.meta['step']} steps", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.98, top=0.94, bottom=0.04)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _resize(tile: np.ndarray, s: int) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(tile))[None]
    return torch.nn.functional.interpolate(t, size=(s, s), mode="nearest")[0].numpy()


def _curves(gan_hist: dict, dh_hist: dict, path: Path, bits: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsgui.atomic import atomic_path

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, method in zip(axes[:2], ("cdcgan", "acgan"), strict=True):
        h = gan_hist.get(method, [])
        if h:
            steps = [e["step"] for e in h]
            for key in ("d_adv", "g_adv", "d_class", "g_class"):
                if key in h[0]:
                    ax.plot(steps, [e[key] for e in h], label=key)
        ax.set_title(f"{method} losses")
        ax.set_xlabel("step")
        if h:
            ax.legend(fontsize=7)
    for name, h in dh_hist.items():
        if h and name.endswith(f" {bits}") and "triplet" in h[0]:
            axes[2].plot([e["step"] for e in h], [e["triplet"] for e in h], label=name)
    axes[2].set_title(f"deep hashing triplet loss ({bits} bits)")
    axes[2].set_xlabel("step")
    if dh_hist:
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _pr_figure(pr: dict, path: Path, bits: int, k: int) -> None:
    """Precision against recall over the whole Hamming ranking of every test query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsgui.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for row, c in pr.items():
        style = "--" if row in ("spectral", "pretrained") else "-"
        ax.plot(c["recall"], c["precision"], style, label=SET_NAMES.get(row, row), lw=1.4)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision-recall, {bits} bits, each test tile querying the others")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _abbr(name: str) -> str:
    return name[:4] + "."


def _cell(v, best=False) -> str:
    if v is None:
        return "-"
    return f"**{v:.4f}**" if best else f"{v:.4f}"


def _get(d: dict, bits: int):
    return d.get(bits, d.get(str(bits)))


def _rows_table(r: dict, key: str, bits, with_method: bool) -> list[str]:
    """One row per trained or training-free model, a column per code length (the best bold)."""
    head = "| Model, training set | " + " | ".join(f"{b} bits" for b in bits)
    head += " | method (16/32/64 bits) |" if with_method else " |"
    L = [head, "| --- " * (len(bits) + 1 + with_method) + "|"]
    vals = [(v, row, b) for row, d in r[key].items() for b in bits if (v := _get(d, b)) is not None]
    best = max(vals) if vals else None
    for row, d in r[key].items():
        cells = [_cell(_get(d, b), best is not None and (_get(d, b), row, b) == best) for b in bits]
        ref = METHOD_REFERENCE["map"].get(row) if with_method else None
        tail = (
            (" | " + "/".join(f"{x:.4f}" for x in ref)) if ref else (" | " if with_method else "")
        )
        L.append(f"| {SET_NAMES.get(row, row)} | " + " | ".join(cells) + tail + " |")
    return L


def report(r: dict, mid: int) -> str:
    bits = r["bits"]
    k = r["k"]
    L = [f"# Conditional GANs + supervised deep hashing ({r['preset']} preset)", ""]
    L += [
        f"Archive: `{r['archive']}`, {len(r['classes'])} classes, device {r['device']}.",
        "",
        f"Protocol: {r['test_per_class']} test tiles per class ({r['n_test']} in all); each test tile "
        f"queries the other {r['n_test'] - 1} test tiles; the GANs and hash networks train on the "
        f"other {r['n_train']} tiles.",
    ]
    if r["test_per_class"] != 100:
        L += [
            "",
            f"**Scaled protocol.** The method uses 100 test tiles per class out of 27 000 tiles; this "
            f"archive is far smaller, so {r['test_per_class']} test tiles per class are used and MAP is "
            f"computed over the top {k} results (every other test tile), not over 100 of 999. "
            "The training sets are correspondingly small, so numbers are not directly comparable "
            "with the method's.",
        ]
    c = r["config"]
    source = (
        "display-scaled 8-bit images, as the EuroSAT RGB JPEGs the method used (no colour gain)"
        if r.get("display_scaled")
        else "the 12-bit Sentinel-2 bands instead of the EuroSAT RGB JPEGs (true colour brightened "
        f"by {c['features']['rgb_gain']} before Inception and EfficientNet)"
    )
    L += [
        "",
        f"Settings: GAN {c['gan_steps']} steps, width x{c['gan_width']}, batch {c['gan_batch']}; "
        f"{c['n_generated']} generated tiles per GAN (spread evenly over classes); the method's "
        f"hash network {c['dh_steps']} steps on Inception v3 features at "
        f"{c['features']['input_size']} px; the improved network {c.get('improved_steps', 0)} "
        "steps of 64 tiles.",
        "",
        f"Differences from the method: tiles come from {source}; the GANs see each band divided "
        "by its 99.5th percentile and random flips/transposes of the real tiles; the hash network "
        "z-scores its input features, uses dropout 0.5 and all (anchor, positive, negative) "
        "triples of the method's 64 + 32 batch; alpha = bits/4, beta = 0.01, gamma = 1 (not given "
        "by the method).",
        "",
        "The improved network (`--variant improved`, the default of `rsgui-cli train --method "
        "deephash`) fine-tunes the shipped EfficientNet-Lite0 on the tiles at their own 64 px, "
        "with a branch for every band's mean and spread, and pulls each tile's code to a hash "
        "centre of its class (Hadamard rows, 16 bits apart at 32 bits); random flips and "
        "transposes; AdamW, warm-up and cosine decay.",
        "",
        "## Generated tile quality (Table 4.1)",
        "",
        "| Model | IS-style score (EfficientNet-Lite0) | FID | KID | tiles | method: IS / FID |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"cdcgan": "Conditional DCGAN", "acgan": "ACGAN", "real": "Real test tiles (reference)"}
    for m in ("cdcgan", "acgan", "real"):
        g = r["gan"].get(m)
        if g:
            ref = METHOD_REFERENCE["is_fid"].get(m)
            refs = f"{ref[0]:.2f} / {ref[1]:.1f}" if ref else "-"
            L.append(
                f"| {names[m]} | {g['is_style']:.3f} | {g['fid']:.1f} | {g['kid']:.4f} | "
                f"{g['n_generated']} | {refs} |"
            )
    n_ref = r.get("n_metric_real", r["n_train"])
    L += [
        "",
        f"FID and KID compare each set with {n_ref} real training tiles on 2048-d Inception v3 "
        f"pool features at {c['features']['input_size']} px (the method: 299 px). The IS-style "
        f"score uses an ImageNet EfficientNet-Lite0 classifier at {c.get('is_size', 224)} px "
        "instead of Inception, so it is not "
        "comparable with published Inception Scores; compare the rows with each other. FID of a "
        "few hundred tiles is strongly biased upwards; prefer KID there.",
        "",
        f"## MAP@{k} (Table 4.3)",
        "",
        *_rows_table(r, "map", bits, True),
        "",
        "## P@10 (how many of the first 10 results share the query's class)",
        "",
        *_rows_table(r, "p10", bits, False),
        "",
        f"## Class-wise MAP@{k} at {mid} bits (Table 4.4) and change against real only (Table 4.5)",
        "",
    ]
    classes = r["classes"]
    L.append("| Model, training set | " + " | ".join(_abbr(x) for x in classes) + " | ALL |")
    L.append("| --- " * (len(classes) + 2) + "|")
    method_rows = METHOD_REFERENCE["classwise"] if tuple(classes) == EUROSAT else {}
    for s, d in r["classwise"].items():
        cw = _get(d, mid)
        if cw is None:
            continue
        allv = _get(r["map"][s], mid)
        L.append(
            f"| {SET_NAMES.get(s, s)} | "
            + " | ".join(f"{cw.get(x, 0):.4f}" for x in classes)
            + f" | {allv:.4f} |"
        )
    for s, vals in method_rows.items():
        ref = METHOD_REFERENCE["map"][s][1]
        L.append(
            f"| method: {SET_NAMES[s]} | "
            + " | ".join(f"{v:.4f}" for v in vals)
            + f" | {ref:.4f} |"
        )
    L.append("")
    L.append("| Change against real only | " + " | ".join(_abbr(x) for x in classes) + " | ALL |")
    L.append("| --- " * (len(classes) + 2) + "|")
    for prefix in ("", "improved:"):
        base = _get(r["classwise"].get(prefix + "real", {}), mid) or {}
        for s in SETS[1:]:
            cw = _get(r["classwise"].get(prefix + s, {}), mid)
            if cw is None or not base:
                continue
            ch = [cw.get(x, 0) - base.get(x, 0) for x in classes]
            tot = _get(r["map"][prefix + s], mid) - _get(r["map"][prefix + "real"], mid)
            L.append(
                f"| {SET_NAMES[prefix + s]} | "
                + " | ".join(f"{v:+.4f}" for v in ch)
                + f" | {tot:+.4f} |"
            )
    for s in SETS[1:]:
        if s in method_rows:
            ch = np.subtract(method_rows[s], method_rows["real"])
            tot = METHOD_REFERENCE["map"][s][1] - METHOD_REFERENCE["map"]["real"][1]
            L.append(
                f"| method: {SET_NAMES[s]} | "
                + " | ".join(f"{v:+.4f}" for v in ch)
                + f" | {tot:+.4f} |"
            )
    base = _get(r["classwise"].get("real", {}), mid) or {}
    hard = [x for x in ("Highway", "River") if x in classes]
    if hard and base:
        L += ["", "### The hardest classes (Table 4.5's claim)", ""]
        for x in hard:
            parts = []
            for s in (*SETS, "real-ms10", *(f"improved:{t}" for t in SETS)):
                cw = _get(r["classwise"].get(s, {}), mid)
                if cw:
                    parts.append(f"{SET_NAMES[s].lower()} {cw.get(x, 0):.3f}")
            L.append(f"- {x}: " + "; ".join(parts))
        ranked = sorted(classes, key=lambda x: base.get(x, 0))
        L.append(f"- Lowest classes when trained on real tiles only: {', '.join(ranked[:3])}.")
    L += [
        "",
        "## Figures",
        "",
        f"- `pr_curves.png`: precision against recall at {mid} bits over the whole ranking of "
        "each test query, every model and the training-free methods (the method gives no PR "
        "curve in this chapter; its Figures 4.7 and 4.8 show retrieved tiles).",
        "- `samples_cdcgan.png`, `samples_acgan.png`: 3 real + 8 generated tiles per class, true "
        "colour (the method's Figure 4.5).",
        "- `training_curves.png`: GAN losses (the method's Figure 4.6) and the triplet loss.",
        "- `results.json`: every number above, per-class FID, PR points, timings; `models/`: all "
        "checkpoints.",
        "",
        "## Time of each stage",
        "",
        "| stage | minutes |",
        "| --- | --- |",
    ]
    L += [f"| {k_} | {v / 60:.1f} |" for k_, v in r["timings_s"].items()]
    return "\n".join(L) + "\n"
