"""Speed of unsupervised adversarial hashing: training images/s and encoding tiles/s.

    python bench/train_uahm.py [--bits 64] [--width 1.0] [--batch 64] [--steps 3] [--threads 2]

Reference, measured in the same run on the same batches: one forward + backward + Adam step of
the discriminator alone on real tiles (what a plain supervised hashing network costs, i.e.
dhnn-ms). The ratio line says what the adversarial part (the generator and the discriminator's
passes over generated tiles) multiplies the cost by. Runs on CPU, and on CUDA when present.

The improved variant (a hash network on 1,334-value feature vectors, ``--feature-tiles`` of
them with a kNN graph): the project's training loop (partner sampling, the similarity block,
checks, progress) against a plain PyTorch loop of the same network, batch and losses on
random batches, ``feature_loop_vs_plain=X``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def timed(fn, steps: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, kernel choice)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def bench(device: torch.device, args) -> list[tuple[str, float]]:
    from training.losses import discriminator_loss
    from training.ssm import SSM
    from training.train_uahm import TrainSettings, _step
    from training.uahm import UAHMConfig, build, sample_noise

    cfg = UAHMConfig(method="uahm", bits=args.bits, channels=10, width=args.width)
    dh = UAHMConfig(
        method="dhnn-ms", bits=args.bits, channels=10, width=args.width, adversarial=False
    )
    g, d = build(cfg)
    _, d2 = build(dh)
    g.to(device).train()
    d.to(device).train()
    d2.to(device).train()
    opt_g = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_d2 = torch.optim.Adam(d2.parameters(), 1e-4, betas=(0.5, 0.999))
    b = args.batch
    x = torch.rand(b, 10, 64, 64, device=device) * 2 - 1
    s = torch.from_numpy(SSM(np.packbits(np.eye(b, dtype=bool), axis=1), b).dense()).to(device)
    z = sample_noise(b, args.bits, torch.Generator().manual_seed(0), device)
    st = TrainSettings()

    def full_step():
        _step(d, g, opt_d, opt_g, x, z, s, st, cfg)

    def d_only():
        _, h = d2(x)
        loss, _ = discriminator_loss(None, None, h, s)
        opt_d2.zero_grad()
        loss.backward()
        opt_d2.step()

    t_full = timed(full_step, args.steps, device)
    t_ref = timed(d_only, args.steps, device)
    d.eval()
    xe = torch.rand(256, 10, 64, 64, device=device) * 2 - 1

    @torch.no_grad()
    def enc():
        d(xe)

    t_enc = timed(enc, args.steps, device)
    return [
        ("uahm training step (G + D)", b / t_full),
        ("reference: D forward+backward alone", b / t_ref),
        ("encoding (D forward, eval, batch 256)", 256 / t_enc),
    ]


def bench_features(args) -> tuple[float, float]:
    """(images/s of the project's loop, images/s of a plain loop) for the feature model."""
    from rsgui.progress import drive
    from training.losses import binary_loss, likelihood_loss
    from training.ssm import knn_graph_job
    from training.train_uahm import preset_config, train
    from training.uahm import build

    n, dim = args.feature_tiles, 1334
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    ssm = drive(knn_graph_job(x, 20))
    cfg, st, _ = preset_config(
        "uahm", "cpu", n, bits=args.bits, channels=3, variant="improved", feature_dim=dim
    )
    st.steps, st.checkpoint_every = args.feature_steps, 0
    t0 = time.perf_counter()
    drive(train(cfg, st, x, ssm))
    ours = st.steps * st.batch_size / (time.perf_counter() - t0)

    _, d = build(cfg)
    opt = torch.optim.Adam(d.parameters(), st.lr, betas=(st.beta1, st.beta2))
    xt = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(st.steps):
        idx = torch.randint(n, (st.batch_size,), generator=gen)
        s = torch.from_numpy(ssm.block(idx.numpy()))
        _, h = d(xt[idx])
        loss = st.w_binary * binary_loss(h) + st.w_semantic * likelihood_loss(
            h, s, st.positive_weight
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain = st.steps * st.batch_size / (time.perf_counter() - t0)
    return ours, plain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--width", type=float, default=1.0, help="1.0 = the method's networks")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--feature-tiles", type=int, default=26000)
    p.add_argument("--feature-steps", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"UAHM {args.bits} bits, width {args.width}, batch {args.batch}, 64x64x10 tiles, "
          f"{args.threads} CPU threads")  # fmt: skip
    print("| device | measure | images/s |\n| --- | --- | ---: |")
    for dev in devices:
        rows = bench(dev, args)
        for name, rate in rows:
            print(f"| {dev.type} | {name} | {rate:.1f} |")
        print(f"{dev.type}: a uahm step costs {rows[1][1] / rows[0][1]:.2f}x the reference "
              f"(D forward+backward alone); encoding runs {rows[2][1] / rows[0][1]:.0f}x faster "
              "than training")  # fmt: skip
    ours, plain = bench_features(args)
    print(f"\nimproved variant on {args.feature_tiles} feature vectors, batch 256, cpu:")
    print("| loop | images/s |\n| --- | ---: |")
    print(
        f"| rsgui training loop | {ours:.0f} |\n| plain PyTorch loop, same network | {plain:.0f} |"
    )
    print(f"feature_loop_vs_plain={ours / plain:.2f}")


if __name__ == "__main__":
    main()
