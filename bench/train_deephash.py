"""Speed of supervised deep hashing: training images/s of both networks, feature tiles/s.

    python bench/train_deephash.py [--steps 20] [--bits 32] [--threads 2] [--tiles 2000]

For each network the project's training loop (:func:`training.train_deephash.train_deephash`:
batch drawing, checks, history, progress) runs ``--steps`` steps on random data, and a plain
PyTorch loop of the same network, batch size, optimiser and losses runs as many; the ratio line
``<network>_loop_vs_plain=X`` says what the project's loop costs on top. The networks:

- ``thesis``: the method's three dense layers on 2048-d Inception features, 64 + 32 tiles of two
  classes per step, all-triplet + binary + balance loss;
- ``improved``: EfficientNet-Lite0 fine-tuned on 64 px RGB tiles, 64 random tiles per step,
  centre + quantisation loss.

Feature extraction: frozen Inception v3 at 139 px (the method's features, cpu preset) and
EfficientNet-Lite0 at 96 px (the ``pretrained`` method), tiles/s over ``--tiles`` tiles.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch


def project_loop(data, bits: int, cfg) -> float:
    """Images/s of ``train_deephash`` after two warm-up steps."""
    from training.train_deephash import train_deephash

    with tempfile.TemporaryDirectory() as tmp:
        job = train_deephash(data, f"{tmp}/m.safetensors", bits, cfg)
        next(job), next(job)
        t = time.perf_counter()
        for _ in range(cfg.steps - 2):
            next(job)
        dt = time.perf_counter() - t
        job.close()
    batch = cfg.batch if cfg.variant == "improved" else cfg.batch_pos + cfg.batch_neg
    return (cfg.steps - 2) * batch / dt


def plain_loop(data, bits: int, cfg) -> float:
    """The same network, batch, optimiser and losses in the plainest PyTorch loop."""
    from training.deephash import balance_loss, binary_loss, triplet_loss_all
    from training.deephash_improved import centre_loss, hash_centres, quantisation_loss
    from training.train_deephash import build_net, model_config

    torch.manual_seed(0)
    improved = cfg.variant == "improved"
    net = build_net(model_config(data, bits, cfg), pretrained=improved).train()
    x = torch.from_numpy(data.inputs)
    y = torch.from_numpy(data.labels)
    if improved:
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        centres = torch.from_numpy(hash_centres(len(data.classes), bits))
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    by_class = [torch.nonzero(y == c).flatten() for c in range(len(data.classes))]
    margin = cfg.margin_frac * bits

    def step():
        if improved:
            idx = torch.randint(0, len(x), (cfg.batch,))
            u = net.codes(x[idx].float())
            loss = centre_loss(u, centres[y[idx]]) + cfg.q_weight * quantisation_loss(u)
        else:
            a, b = torch.randperm(len(by_class))[:2].tolist()
            pa = by_class[a][torch.randint(0, len(by_class[a]), (cfg.batch_pos,))]
            pb = by_class[b][torch.randint(0, len(by_class[b]), (cfg.batch_neg,))]
            f = net(x[torch.cat([pa, pb])])
            loss = triplet_loss_all(f[: cfg.batch_pos], f[cfg.batch_pos :], margin)
            loss = loss + cfg.beta * binary_loss(f) + cfg.gamma * balance_loss(f)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(), step()
    t = time.perf_counter()
    for _ in range(cfg.steps - 2):
        step()
    dt = time.perf_counter() - t
    batch = cfg.batch if improved else cfg.batch_pos + cfg.batch_neg
    return (cfg.steps - 2) * batch / dt


def feature_rates(n: int) -> list[tuple[str, float]]:
    from rsgui.progress import drive
    from training.backbone import features_job, installed, load_backbone

    rgb = np.random.default_rng(0).random((n, 3, 64, 64), dtype=np.float32)
    rows = []
    for name, size in (("inception-v3", 139), ("efficientnet-lite0", 96)):
        if not installed(name):
            print(f"{name}: not installed, skipped")
            continue
        net = load_backbone(name, size)
        drive(features_job(net, rgb[:64], batch_size=32))  # warm-up
        t = time.perf_counter()
        drive(features_job(net, rgb, batch_size=32))
        rows.append((f"{name} at {size} px", n / (time.perf_counter() - t)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiles", type=int, default=2000, help="tiles for the feature extraction rate")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from training.train_deephash import DeepHashData, preset_config

    rng = np.random.default_rng(0)
    n, classes = 2000, tuple(f"class{i}" for i in range(10))
    labels = np.arange(n) % 10
    rgb = ("B04", "B03", "B02")
    norm = {"clip": 255.0, "divisor": 255.0}
    feats = DeepHashData(rng.normal(size=(n, 2048)).astype(np.float32), labels,
                         np.zeros(n, bool), classes, rgb, norm, "rgb", {"input_size": 139})  # fmt: skip
    tiles = DeepHashData(rng.random((n, 3, 64, 64), dtype=np.float32).astype(np.float16),
                         labels, np.zeros(n, bool), classes, rgb, norm, "rgb", None)  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.bits} bits, "
          f"{args.steps} steps")  # fmt: skip
    print("| network | rsgui loop, images/s | plain PyTorch loop, images/s | ratio |")
    print("| --- | --- | --- | --- |")
    ratios = []
    for variant, data in (("thesis", feats), ("improved", tiles)):
        cfg = preset_config("cpu", variant)
        cfg.steps, cfg.checkpoint_every = args.steps, 0
        ours, plain = project_loop(data, args.bits, cfg), plain_loop(data, args.bits, cfg)
        print(f"| {variant} | {ours:.0f} | {plain:.0f} | {ours / plain:.2f} |")
        ratios.append(f"{variant}_loop_vs_plain={ours / plain:.2f}")
    print()
    print("| frozen feature extractor | tiles/s |")
    print("| --- | --- |")
    for name, rate in feature_rates(args.tiles):
        print(f"| {name} | {rate:.0f} |")
    print(" ".join(ratios))


if __name__ == "__main__":
    main()
