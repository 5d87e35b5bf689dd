"""``rsgui-cli experiment thesis-ch5``: the unsupervised adversarial hashing protocol.

Split (the method's Table 5.3): per class, 100 query tiles and the rest as the archive; 500 tiles
per class of the archive form the training set. On a smaller archive the query share is capped at
a third of each class (``min(100, ceil(n_class / 3))``) and the training set takes
``min(500, archive tiles of the class)``, so every class keeps queries, archive and training
tiles (311 tiles: about 10 queries and all ~20 archive tiles per class for training).

Trains gan-rgb, gan-ms, uahm (the method's variant, and the improved one) and dhnn-ms at each
code length (the improved UAHM is a hash network on the frozen ``pretrained`` vectors of the
tiles, trained with their kNN graph, when the backbone is installed;
:func:`training.train_uahm.preset_config`), plus the two training-free methods (``spectral`` and ``pretrained``) fitted on the
archive part only. ``--bands rgb`` runs the protocol on the true-colour bands (an RGB archive
such as EuroSAT's JPEG release): DHNN and UAHM see three bands and GAN-MS is left out. The
pretrained method's backbone vectors are kept in ``--out``/features, so a second run reuses
them. Then it writes to
``--out``: ``map.csv`` (MAP@100), ``precision.csv`` (P@20), ``classwise.csv`` (class-wise
MAP@100 at the longest code), ``ssm.csv`` (similarity matrix accuracy / IoU, Table 5.6),
``pr.csv`` + ``pr.png`` (precision-recall), ``results.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from rsgui import ranking
from rsgui.atomic import atomic_path, atomic_write_text
from rsgui.progress import Progress, drive
from rsgui.subset import ArchiveSubset

DEFAULT_BITS = (32, 64, 128)
# the method's figures (MAP@100 / P@20 on 27,000 EuroSAT MS tiles) for the report
THESIS_MAP = {
    "dhnn-ms": (0.2752, 0.2842, 0.2720), "gan-rgb": (0.5184, 0.5287, 0.5480),
    "gan-ms": (0.5655, 0.5915, 0.6002), "uahm": (0.6470, 0.6556, 0.6785),
}  # fmt: skip
THESIS_SSM = {"inception": (0.8899, 0.1626), "raw": (0.8884, 0.0853),
              "local": (0.8894, 0.1071), "fused": (0.8948, 0.1628)}  # fmt: skip
# (row name, method, variant, band set); "bands": the experiment's band set (--bands)
MODELS = (
    ("gan-rgb", "gan-rgb", "thesis", "rgb"),
    ("gan-ms", "gan-ms", "thesis", "ms10"),
    ("dhnn-ms", "dhnn-ms", "thesis", "bands"),
    ("uahm", "uahm", "thesis", "bands"),
    ("uahm-improved", "uahm", "improved", "bands"),
)


def models_for(bands: str) -> list[tuple[str, str, str, str]]:
    """The models of the protocol on ``bands`` (ms10, or rgb for an RGB archive, where the
    ten-band GAN-MS has no input and DHNN and UAHM see the three bands)."""
    out = []
    for row, method, variant, bandset in MODELS:
        if bands == "rgb" and bandset == "ms10":
            continue
        out.append((row, method, variant, bands if bandset == "bands" else bandset))
    return out


QUICK_STEPS = 100  # per model in the quick preset (15 models)


def split(labels: np.ndarray, seed: int, n_query: int = 100, n_train: int = 500):
    """(query, archive, train) record positions, train within archive (see module doc)."""
    rng = np.random.default_rng(seed)
    q, a, t = [], [], []
    for c in np.unique(labels[labels >= 0]):
        idx = rng.permutation(np.flatnonzero(labels == c))
        nq = min(n_query, math.ceil(len(idx) / 3))
        arch = idx[nq:]
        q.append(idx[:nq])
        a.append(arch)
        t.append(arch[: min(n_train, len(arch))])
    return tuple(np.sort(np.concatenate(x)) for x in (q, a, t))


def scores(order, q_labels, db_labels, classes, k=100, n=20, pr_step=None) -> dict:
    from rsgui import metrics

    rel = db_labels[order] == q_labels[:, None]  # (Q, N)
    n_rel = np.array([(db_labels == c).sum() for c in q_labels])
    step = pr_step or min(500, max(1, order.shape[1] // 20))
    prec, rec = metrics.pr_curve(rel, n_rel, step)
    cw = metrics.classwise_map(rel[:, :k], [classes[c] for c in q_labels], k, n_rel)
    return {
        "map": metrics.map_at_k(rel[:, :k], k, n_rel),
        "p": metrics.precision_at_n(rel[:, :n], n),
        "classwise": cw,
        "pr_cut": metrics.pr_cut_points(order.shape[1], step).tolist(),
        "pr_precision": prec.tolist(),
        "pr_recall": rec.tolist(),
    }


def run(args: argparse.Namespace) -> int:
    from rsgui.archive import Archive
    from rsgui.bands import BAND_SETS, resolve_band_set
    from rsgui.cli.progress import ProgressBar
    from rsgui.encoders.registry import method as method_spec
    from rsgui.services.similarity import archive_features
    from rsgui.services.training import read_tiles, torch_device
    from training.ssm import (
        SSMConfig,
        accuracy_iou,
        build_ssm,
        combine,
        knn_graph_job,
        pair_precision,
        resolve_k,
    )
    from training.train_uahm import encode, load_networks, preset_config, train

    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch_device(args.device)
    bits_list = (
        tuple(int(b) for b in str(args.bits).split(",") if b.strip()) if args.bits else DEFAULT_BITS
    )
    archive = Archive.open(args.archive)
    if not archive.classes or (archive.labels < 0).any():
        raise ValueError(f"{archive.root}: the protocol needs a labelled archive (class folders)")
    has_ms = all(b in archive.band_names for b in BAND_SETS["ms10"])
    bands = getattr(args, "bands", None) or ("ms10" if has_ms else "rgb")
    if bands not in ("ms10", "rgb"):
        raise ValueError(f"thesis-ch5 runs on --bands ms10 or rgb, not {bands!r}")
    resolve_band_set(bands, archive.band_names)  # names the missing bands
    labels = archive.labels
    q_idx, a_idx, t_idx = split(labels, args.seed)
    classes = archive.classes
    log = []

    def say(msg: str) -> None:
        log.append(msg)
        print(msg, file=sys.stderr)

    say(f"split: {len(q_idx)} queries, {len(a_idx)} archive, {len(t_idx)} training tiles")

    # ---- similarity matrices on the training set (shared by uahm / dhnn-ms at every length)
    tl = labels[t_idx]
    ssm_rows, ssms = [], {}
    _, _, base = preset_config("uahm", args.preset, len(t_idx), variant="thesis")
    base.spectral_bands = bands
    with ProgressBar("features") as bar:
        parts = drive(archive_features(archive, t_idx, base, device), _bar(bar))
        raw = drive(
            archive_features(
                archive, t_idx, SSMConfig(features="raw", spectral_bands=bands), device
            )  # fmt: skip
        )
        raw = raw["spectral"]
    _, _, improved_ssm_cfg = preset_config("uahm", args.preset, len(t_idx), variant="improved")
    improved_ssm_cfg.spectral_bands = bands
    parts_imp = parts
    if improved_ssm_cfg.to_dict() != base.to_dict():  # same features: reuse them
        with ProgressBar("features (improved)") as bar:
            parts_imp = drive(archive_features(archive, t_idx, improved_ssm_cfg, device),
                              _bar(bar))  # fmt: skip
    k1, k2 = resolve_k(len(t_idx), base)
    for name, cfg, p in (
        ("inception", SSMConfig(features="inception"), parts),
        ("raw", SSMConfig(features="raw"), {"spectral": raw}),
        ("local", SSMConfig(features="local"), parts),
        ("fused", base, parts),
        ("fused-improved", improved_ssm_cfg, parts_imp),
    ):
        if name == "fused-improved" and improved_ssm_cfg.to_dict() == base.to_dict():
            ssms[name] = ssms["fused"]  # the improved variant keeps the method's matrix
            continue
        ssm = build_ssm(combine(p, cfg), k1, k2, device)
        acc, iou = accuracy_iou(ssm, tl)
        ssms[name] = ssm
        ssm_rows.append({"features": name, "accuracy": acc, "iou": iou, "density": ssm.density()})
    say(
        f"SSM K1={k1} K2={k2}: "
        + ", ".join(f"{r['features']} IoU {r['iou']:.3f}" for r in ssm_rows)
    )

    # ---- models
    results: dict[str, dict[int, dict]] = {}
    timings: dict[str, float] = {}
    normalisation = archive.normalisation.to_dict()
    tiles_cache: dict[str, tuple] = {}
    models = models_for(bands)
    for bandset in dict.fromkeys(b for *_, b in models):
        names = resolve_band_set(bandset, archive.band_names)
        tiles_cache[bandset] = (
            names,
            drive(read_tiles(archive, t_idx, names)),
            drive(read_tiles(archive, q_idx, names)),
            drive(read_tiles(archive, a_idx, names)),
        )
    pretrained = _pretrained_features(archive, a_idx, q_idx, bands, out, say, timings)
    on_features = None  # the improved variant's inputs: standardised pretrained vectors
    if pretrained is not None:
        std = pretrained[0].fit_on_features(pretrained[2], 1)  # standardised on the archive part
        xa, xq = std.standardise(pretrained[2]), std.standardise(pretrained[1])
        xt = xa[np.searchsorted(a_idx, t_idx)]  # the training tiles lie in the archive part
        on_features = (xt, xq, xa)
        _, _, knn_cfg = preset_config("uahm", args.preset, len(t_idx), variant="improved",
                                      feature_dim=xt.shape[1])  # fmt: skip
        t0 = time.perf_counter()
        ssm = drive(knn_graph_job(xt, resolve_k(len(t_idx), knn_cfg)[0], device))
        timings["ssm-knn"] = time.perf_counter() - t0
        acc, iou = accuracy_iou(ssm, tl)
        say(
            f"pretrained kNN graph: {pair_precision(ssm, tl):.3f} of its similar pairs share a class"
        )
        ssms["pretrained-knn"] = ssm
        ssm_rows.append({"features": f"pretrained kNN (K = {ssm.info['k1']})", "accuracy": acc,
                         "iou": iou, "density": ssm.density()})  # fmt: skip
        say(f"SSM pretrained kNN K={ssm.info['k1']}: IoU {iou:.3f}")
    from rsgui.encoders.spectral import SpectralEncoder

    for bits in bits_list:
        for row, method, variant, bandset in models:
            names, train_x, q_x, a_x = tiles_cache[bandset]
            feature_dim = on_features[0].shape[1] if on_features and variant == "improved" else 0
            model_cfg, settings, _ = preset_config(
                method, args.preset, len(t_idx), bits=bits, channels=len(names),
                image_size=archive.tile_shape[0], variant=variant, feature_dim=feature_dim,
                **method_spec(method).config,
            )  # fmt: skip
            settings.seed = args.seed
            settings.checkpoint_every = 0
            if model_cfg.input == "features":  # its own step counts: a step costs ~15 ms
                train_x, q_x, a_x = on_features
                settings.steps = args.steps or settings.steps
            else:
                settings.steps = args.steps or (
                    QUICK_STEPS if args.preset == "quick" else settings.steps
                )
            ssm = None
            if model_cfg.input == "features":
                ssm = ssms["pretrained-knn"]
            elif model_cfg.binary:
                ssm = ssms["fused-improved" if variant == "improved" else "fused"]
            t0 = time.perf_counter()
            ckpt = out / "models" / f"{row}-{bits}.safetensors"
            meta = {"band_names": list(names), "normalisation": normalisation, "protocol": "ch5"}
            with ProgressBar(f"{row} {bits} bits") as bar:
                job = train(model_cfg, settings, train_x, ssm, out=ckpt, meta=meta, device=device)
                drive(job, _bar(bar))
            _, _, d, _ = load_networks(ckpt, device=device)
            qc, ac = encode(d, q_x, device), encode(d, a_x, device)
            timings[f"{row}-{bits}"] = time.perf_counter() - t0
            order = ranking.rank(qc, ac, model_cfg.binary)
            res = scores(order, labels[q_idx], labels[a_idx], classes)
            results.setdefault(row + (" (bin)" if model_cfg.binary else " (non-bin)"), {})[bits] = (
                res
            )
            if model_cfg.binary:  # the method also reports the tanh outputs by cosine
                order = ranking.rank(qc, ac, False)
                res2 = scores(order, labels[q_idx], labels[a_idx], classes)
                results.setdefault(row + " (non-bin)", {})[bits] = res2
            say(f"{row} {bits} bits: MAP@100 {res['map']:.4f} P@20 {res['p']:.4f} "
                f"({timings[f'{row}-{bits}']:.0f} s)")  # fmt: skip
        # the training-free baselines, fitted on the archive part only (queries never seen)
        _, _, q_x, a_x = tiles_cache[bands]
        sub = ArchiveSubset(archive, a_idx)
        t0 = time.perf_counter()
        enc = SpectralEncoder.fit(sub, bands, bits)
        qc, ac = enc.encode(q_x.astype(np.float32)), enc.encode(a_x.astype(np.float32))
        timings[f"spectral-{bits}"] = time.perf_counter() - t0
        res = scores(ranking.rank(qc, ac, True), labels[q_idx], labels[a_idx], classes)
        results.setdefault("spectral (bin)", {})[bits] = res
        say(f"spectral {bits} bits: MAP@100 {res['map']:.4f} P@20 {res['p']:.4f}")
        if pretrained is not None:
            t0 = time.perf_counter()
            fitted = pretrained[0].fit_on_features(pretrained[2], bits)
            qc = fitted.projection.transform(fitted.standardise(pretrained[1]))
            ac = fitted.projection.transform(fitted.standardise(pretrained[2]))
            timings[f"pretrained-{bits}"] = time.perf_counter() - t0
            res = scores(ranking.rank(qc, ac, True), labels[q_idx], labels[a_idx], classes)
            results.setdefault("pretrained (bin)", {})[bits] = res
            say(f"pretrained {bits} bits: MAP@100 {res['map']:.4f} P@20 {res['p']:.4f}")

    total_s = time.perf_counter() - t_start
    _write_outputs(out, results, ssm_rows, bits_list, classes, args, k1, k2,
                   (len(q_idx), len(a_idx), len(t_idx)), timings, total_s)  # fmt: skip
    print(f"thesis-ch5 results in {out} ({total_s:.0f} s)")
    return 0


def _bar(bar):
    """A Progress consumer drawing ``bar``."""

    def show(p: Progress) -> None:
        bar(int(p.done), None if p.total is None else int(p.total))

    return show


def _pretrained_features(archive, a_idx, q_idx, bands, out, say, timings):
    """(encoder with band limits of the archive part, query features, archive features) of the
    training-free ``pretrained`` method, backbone vectors cached under ``out/features`` (a
    second run reuses them); None when its backbone is not installed."""
    from rsgui.encoders.pretrained import PretrainedEncoder, archive_features_job
    from rsgui.errors import BackboneUnavailable
    from rsgui.progress import drive

    t0 = time.perf_counter()
    try:
        probe = drive(PretrainedEncoder.fit_job(ArchiveSubset(archive, a_idx), bands, bits=1,
                                                cache_dir=out / "features"))  # fmt: skip
    except BackboneUnavailable as e:
        say(f"pretrained: skipped ({e})")
        return None
    raw_a = probe._last_features[1]
    raw_q = drive(archive_features_job(probe, ArchiveSubset(archive, q_idx)))
    timings["pretrained-features"] = time.perf_counter() - t0
    say(
        f"pretrained features of {len(a_idx) + len(q_idx)} tiles: {timings['pretrained-features']:.0f} s"
    )
    return probe, raw_q, raw_a


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _write_outputs(out, results, ssm_rows, bits_list, classes, args, k1, k2, sizes, timings, total):
    names = list(results)
    map_rows = [[n] + [f"{results[n][b]['map']:.4f}" for b in bits_list] for n in names]
    p_rows = [[n] + [f"{results[n][b]['p']:.4f}" for b in bits_list] for n in names]
    atomic_write_text(out / "map.csv", _csv([["model", *bits_list], *map_rows]))
    atomic_write_text(out / "precision.csv", _csv([["model", *bits_list], *p_rows]))
    top = max(bits_list)
    cw_rows = [
        [n] + [f"{results[n][top]['classwise'].get(c, 0):.4f}" for c in classes] for n in names
    ]
    atomic_write_text(out / "classwise.csv", _csv([["model", *classes], *cw_rows]))
    ssm_table = [[r["features"], f"{r['accuracy']:.4f}", f"{r['iou']:.4f}", f"{r['density']:.4f}"]
                 for r in ssm_rows]  # fmt: skip
    atomic_write_text(
        out / "ssm.csv", _csv([["features", "accuracy", "iou", "density"], *ssm_table])
    )
    pr = [["model", "bits", "retrieved", "precision", "recall"]]
    for n in names:
        for b in bits_list:
            r = results[n][b]
            for c, p, rc in zip(r["pr_cut"], r["pr_precision"], r["pr_recall"], strict=True):
                pr.append([n, b, c, f"{p:.6f}", f"{rc:.6f}"])
    atomic_write_text(out / "pr.csv", _csv(pr))
    _plot_pr(out / "pr.png", results, bits_list)
    atomic_write_text(
        out / "results.json",
        json.dumps({"results": {n: {str(b): v for b, v in r.items()} for n, r in results.items()},
                    "ssm": ssm_rows, "timings_s": timings, "total_s": total}, indent=1),
    )  # fmt: skip
    nq, na, nt = sizes
    thesis_rows = [[m] + [f"{v:.4f}" for v in vals] for m, vals in THESIS_MAP.items()]
    report = f"""# Unsupervised adversarial hashing: retrieval experiment

Archive `{args.archive}`: {nq} query tiles, {na} archive tiles, {nt} training tiles (taken from
the archive). Per class: min(100, ceil(n/3)) queries, the rest archive, min(500, archive) training
tiles. Preset `{args.preset}`, seed {args.seed}, {total:.0f} s in all. Each query ranks the whole
archive: binary codes by Hamming distance of their signs, float features by cosine; ties keep
archive order. "(non-bin)" rows of hashing models rank their tanh outputs by cosine.
gan-*, dhnn-ms and uahm are the thesis' variants, trained on pixels; uahm-improved is a hash
network on the frozen `pretrained` vectors of the tiles trained with their kNN graph (no labels),
or the pixel model with partner sampling where the backbone is not installed; spectral and
pretrained are fitted on the archive part without training.

## MAP@100

{_table(["model", *map(str, bits_list)], map_rows)}

## Precision@20

{_table(["model", *map(str, bits_list)], p_rows)}

## Class-wise MAP@100 at {top} bits

{_table(["model", *classes], cw_rows)}

## Similarity matrix of the training set (K1 = {k1}, K2 = {k2})

{_table(["features", "accuracy", "IoU", "similar pairs"], ssm_table)}

Accuracy counts the diagonal (the method's eq. 5.16, N^2 entries). For reference, the method's
Table 5.6 on 5,000 tiles (accuracy / IoU): {", ".join(f"{k} {a:.4f} / {i:.4f}" for k, (a, i) in THESIS_SSM.items())}.

## The method's figures (MAP@100, 27,000 tiles, binary codes for uahm and dhnn-ms)

{_table(["model", "32", "64", "128"], thesis_rows)}

Precision-recall curves: `pr.png`, `pr.csv`. Training time per model (s):
{", ".join(f"{k} {v:.0f}" for k, v in timings.items())}.
"""
    atomic_write_text(out / "report.md", report)


def _plot_pr(path: Path, results: dict, bits_list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(bits_list), figsize=(4.5 * len(bits_list), 4), squeeze=False)
    for ax, b in zip(axes[0], bits_list, strict=True):
        for n, r in results.items():
            if "non-bin" in n and not n.startswith("gan"):
                continue
            ax.plot(r[b]["pr_recall"], r[b]["pr_precision"], marker=".", label=n)
        ax.set_title(f"{b} bits")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
