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
    "features": {"extractor": "inception-v3", "input_size": 299, "rgb_gain": 2.5},
}
PRESETS = {"quick": QUICK, "thesis": THESIS}
SETS = ("real", "real+cdcgan", "real+acgan")
SET_NAMES = {
    "real": "Only real tiles",
    "real+cdcgan": "Real + cDCGAN tiles",
    "real+acgan": "Real + ACGAN tiles",
    "real-ms10": "Only real tiles, ten-band CNN (ms10)",
}
METHOD_REFERENCE = {  # the method's published numbers, EuroSAT RGB, 27 000 tiles
    "map": {
        "real": (0.9338, 0.9357, 0.9334),
        "real+cdcgan": (0.9189, 0.9387, 0.9372),
        "real+acgan": (0.9217, 0.9404, 0.9313),
    },
    "is_fid": {"cdcgan": (2.3521, 188.9619), "acgan": (2.6371, 170.8508)},
}


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
    from rsgui.encoders.registry import method as method_spec
    from rsgui.services.training import cached_features, torch_device

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
    paths = [r.path for r in arc.records]
    feats = drive(cached_features(rgb, paths, cfg["features"], out / "features_real", device))
    log("real tile features ready")
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
        "timings_s": {},
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
        fid = fid_from_features(feats[train_idx], gf)
        kid, kid_std = kid_from_features(feats[train_idx], gf, n_subsets=50)
        is_m, is_s = (
            is_style_score(np.clip(gx * gain, 0, 1), device=device)
            if cfg.get("is_style", True)
            else (float("nan"), float("nan"))
        )
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
        is_style_score(np.clip(train_rgb * gain, 0, 1), device=device)[0]
        if cfg.get("is_style", True)
        else float("nan")
    )
    results["gan"]["real"] = {
        "is_style": is_real,
        "fid": fid_from_features(feats[train_idx], feats[test_idx]),
        "kid": kid_from_features(feats[train_idx], feats[test_idx], n_subsets=50)[0],
        "n_generated": int(len(test_idx)),
    }

    # ---- supervised deep hashing on the three training sets ----
    from training.train_deephash import (
        DeepHashData,
        DeepHashTrainConfig,
        hash_outputs,
        load_net,
        train_deephash,
    )

    dh_hist: dict[str, list] = {}
    norm = arc.normalisation.to_dict()
    for set_name in SETS:
        x, y, g = feats[train_idx], labels[train_idx], np.zeros(len(train_idx), bool)
        if set_name != "real":
            gx, gy, gf = gen_sets[set_name.split("+")[1]]
            x, y = np.concatenate([x, gf]), np.concatenate([y, gy])
            g = np.concatenate([g, np.ones(len(gy), bool)])
        data = DeepHashData(
            x, y, g, tuple(arc.classes), ("B04", "B03", "B02"), norm, "rgb", cfg["features"],
            None if set_name == "real" else f"{set_name.split('+')[1]}.safetensors",
        )  # fmt: skip
        for bits in bits_list:
            t0 = time.perf_counter()
            ckpt = out / "models" / f"deephash_{set_name.replace('+', '_')}_{bits}.safetensors"
            tc = DeepHashTrainConfig(
                steps=cfg["dh_steps"], lr=cfg["dh_lr"], seed=seed, checkpoint_every=0
            )
            if not _finished(ckpt, cfg["dh_steps"]):
                drive(train_deephash(data, ckpt, bits, tc, device))
            net, meta = load_net(ckpt, device)
            codes = hash_outputs(net, feats[test_idx], device) - 0.5
            m, cw = hamming_map(codes, labels[test_idx], k, arc.classes)
            results["map"].setdefault(set_name, {})[bits] = m
            results["classwise"].setdefault(set_name, {})[bits] = cw
            results["timings_s"][f"deephash_{set_name}_{bits}"] = time.perf_counter() - t0
            dh_hist[f"{set_name} {bits}"] = meta.get("history", [])
            log(f"deephash {set_name} {bits} bits: MAP@{k} {m:.4f}")

    # ---- beyond the method: ten bands through a small CNN, real tiles only ----
    mid = 32 if 32 in bits_list else bits_list[len(bits_list) // 2]
    if cfg.get("ms10_steps"):
        t0 = time.perf_counter()
        ms = arc.read(np.arange(len(arc)).tolist(), bands="ms10")
        data = DeepHashData(
            ms.pixels[train_idx], labels[train_idx], np.zeros(len(train_idx), bool),
            tuple(arc.classes), tuple(ms.band_names), norm, "ms10", None,
        )  # fmt: skip
        ckpt = out / "models" / f"deephash_ms10_{mid}.safetensors"
        tc = DeepHashTrainConfig(
            steps=cfg["ms10_steps"],
            lr=cfg["dh_lr"],
            seed=seed,
            checkpoint_every=0,
            model={"cnn_width": 16},
        )
        if not _finished(ckpt, cfg["ms10_steps"]):
            drive(train_deephash(data, ckpt, mid, tc, device))
        net, meta = load_net(ckpt, device)
        codes = hash_outputs(net, ms.pixels[test_idx], device, batch_size=64) - 0.5
        m, cw = hamming_map(codes, labels[test_idx], k, arc.classes)
        results["map"]["real-ms10"] = {mid: m}
        results["classwise"]["real-ms10"] = {mid: cw}
        results["timings_s"][f"deephash_ms10_{mid}"] = time.perf_counter() - t0
        log(f"deephash ms10 CNN {mid} bits: MAP@{k} {m:.4f}")

    results["timings_s"]["total"] = time.perf_counter() - log.t0
    _curves(gan_hist, dh_hist, out / "training_curves.png", mid)
    from rsgui.atomic import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=_json_default))
    atomic_write_text(out / "report.md", report(results, mid))
    log(f"report written to {out / 'report.md'}")
    return 0


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


def _every(log, name: str, n: int):
    def cb(p: Progress) -> None:
        step, total = int(p.done), int(p.total or 0)
        if step % n == 0 or step == total:
            losses = " ".join(f"{k}={v:.3f}" for k, v in p.values.items())
            log(f"{name} step {step}/{total} {p.rate or 0:.0f} img/s {losses}")

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
        if h and name.endswith(f" {bits}"):
            axes[2].plot([e["step"] for e in h], [e["triplet"] for e in h], label=name)
    axes[2].set_title(f"deep hashing triplet loss ({bits} bits)")
    axes[2].set_xlabel("step")
    if dh_hist:
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _abbr(name: str) -> str:
    return name[:4] + "."


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
    L += [
        "",
        f"Settings: GAN {c['gan_steps']} steps, width x{c['gan_width']}, batch {c['gan_batch']}; "
        f"{c['n_generated']} generated tiles per GAN (spread evenly over classes); deep hashing "
        f"{c['dh_steps']} steps; Inception v3 features at {c['features']['input_size']} px of "
        f"true colour times {c['features']['rgb_gain']}.",
        "",
        "Differences from the method: the 12-bit Sentinel-2 bands replace the EuroSAT RGB JPEGs "
        "(true colour is brightened by the factor above before Inception and EfficientNet); the "
        "GANs see each band divided by its 99.5th percentile and random flips/transposes of the "
        "real tiles; the hash network z-scores its input features, uses dropout 0.5 and all "
        "(anchor, positive, negative) triples of the method's 64 + 32 batch; alpha = bits/4, "
        "beta = 0.01, gamma = 1 (not given by the method).",
        "",
        "## Generated tile quality (Table 4.1)",
        "",
        "| Model | IS-style score (EfficientNet-Lite0) | FID | KID | tiles |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {"cdcgan": "Conditional DCGAN", "acgan": "ACGAN", "real": "Real test tiles (reference)"}
    for m in ("cdcgan", "acgan", "real"):
        g = r["gan"].get(m)
        if g:
            L.append(
                f"| {names[m]} | {g['is_style']:.3f} | {g['fid']:.1f} | {g['kid']:.4f} | {g['n_generated']} |"
            )
    L += [
        "",
        "FID and KID compare each set with the training tiles on 2048-d Inception v3 pool features. "
        "The IS-style score uses an ImageNet EfficientNet-Lite0 classifier instead of Inception, so "
        "it is not comparable with published Inception Scores (the method reports IS 2.35 / 2.64 and "
        "FID 189 / 171 for cDCGAN / ACGAN on 5000 tiles). FID on a few hundred tiles is strongly "
        "biased upwards (2048-d covariances); compare the rows with each other, and prefer KID.",
        "",
        f"## MAP@{k} (Table 4.3)",
        "",
        "| Training set | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "| --- | " + " | ".join("---" for _ in bits) + " |",
    ]
    best = max((v, s, b) for s, d in r["map"].items() for b, v in d.items())
    for s, d in r["map"].items():
        cells = []
        for b in bits:
            v = d.get(b, d.get(str(b)))
            cells.append(
                "-" if v is None else (f"**{v:.4f}**" if (v, s, b) == best else f"{v:.4f}")
            )
        L.append(f"| {SET_NAMES[s]} | " + " | ".join(cells) + " |")
    L += [
        "",
        "Method (EuroSAT RGB, 27 000 tiles, MAP@100): real 0.9338/0.9357/0.9334, +cDCGAN "
        "0.9189/0.9387/0.9372, +ACGAN 0.9217/0.9404/0.9313 at 16/32/64 bits.",
        "",
        f"## Class-wise MAP@{k} at {mid} bits (Table 4.4) and change against real only (Table 4.5)",
        "",
    ]
    classes = r["classes"]
    L.append("| Training set | " + " | ".join(_abbr(x) for x in classes) + " | ALL |")
    L.append("| --- " * (len(classes) + 2) + "|")
    base = r["classwise"].get("real", {}).get(mid, {})
    for s, d in r["classwise"].items():
        cw = d.get(mid)
        if cw is None:
            continue
        allv = r["map"][s][mid]
        L.append(
            f"| {SET_NAMES[s]} | "
            + " | ".join(f"{cw.get(x, 0):.4f}" for x in classes)
            + f" | {allv:.4f} |"
        )
    L.append("")
    L.append("| Change | " + " | ".join(_abbr(x) for x in classes) + " | ALL |")
    L.append("| --- " * (len(classes) + 2) + "|")
    for s, d in r["classwise"].items():
        cw = d.get(mid)
        if s == "real" or cw is None or not base:
            continue
        ch = [cw.get(x, 0) - base.get(x, 0) for x in classes]
        tot = r["map"][s][mid] - r["map"]["real"][mid]
        L.append(f"| {SET_NAMES[s]} | " + " | ".join(f"{v:+.4f}" for v in ch) + f" | {tot:+.4f} |")
    hard = [x for x in ("Highway", "River") if x in classes]
    if hard and base:
        L += ["", "### The hardest classes", ""]
        for x in hard:
            parts = [f"real {base.get(x, 0):.3f}"]
            for s in ("real+cdcgan", "real+acgan", "real-ms10"):
                cw = r["classwise"].get(s, {}).get(mid)
                if cw:
                    parts.append(f"{SET_NAMES[s].lower()} {cw.get(x, 0):.3f}")
            L.append(f"- {x}: " + ", ".join(parts))
        ranked = sorted(classes, key=lambda x: base.get(x, 0))
        L.append(f"- Lowest classes when trained on real tiles only: {', '.join(ranked[:3])}.")
    L += [
        "",
        "## Files",
        "",
        "- `samples_cdcgan.png`, `samples_acgan.png`: 3 real + 8 generated tiles per class (true colour).",
        "- `training_curves.png`: GAN losses and deep-hashing triplet loss.",
        "- `results.json`: every number above, per-class FID, timings; `models/`: all checkpoints.",
        "",
        "## Timings (s)",
        "",
    ]
    L += [f"- {k_}: {v:.1f}" for k_, v in r["timings_s"].items()]
    return "\n".join(L) + "\n"
