"""``rsgui-cli train --method cdcgan|acgan|deephash``: conditional GANs and supervised deep hashing.

Ctrl-C once stops at the next step and writes a checkpoint that ``--resume`` continues from.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading


@contextlib.contextmanager
def _interrupt_flag():
    """A cancel callable that turns true on the first Ctrl-C (the second one aborts)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, old)


def _note(p: dict) -> str:
    losses = " ".join(f"{k}={v:.3f}" for k, v in list(p["losses"].items())[:4])
    return f"{p['images_per_s']:.0f} img/s {losses}"


def run(args: argparse.Namespace) -> int:
    if args.method == "deephash":
        return _run_deephash(args)
    return _run_gan(args)


def _run_gan(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import ProgressBar
    from training.cgan import CGANConfig
    from training.device import pick_device
    from training.train_cgan import PRESETS, TrainConfig, load_gan_data, train_cgan

    device = pick_device(getattr(args, "device", "auto"))
    preset = PRESETS[args.preset or "quick"]
    bands = args.bands or "rgb"
    if bands not in ("rgb", "ms10"):
        raise ValueError(f"a conditional GAN trains on --bands rgb or ms10, not {bands!r}")
    data = load_gan_data(args.archive, bands=bands)
    model_cfg = CGANConfig(method=args.method, **preset["model"])
    tc = TrainConfig(**preset["train"])
    tc.seed = args.seed
    if args.steps is not None:
        tc.steps = args.steps
    if args.batch_size is not None:
        tc.batch_size = args.batch_size
    if args.checkpoint_every is not None:
        tc.checkpoint_every = args.checkpoint_every
    print(
        f"{args.method}: {len(data.labels)} tiles, {len(data.classes)} classes, bands "
        f"{','.join(data.band_names)}, {tc.steps} steps on {device}",
        file=sys.stderr,
    )
    with _interrupt_flag() as cancel, ProgressBar(args.method) as bar:
        it = train_cgan(data, args.out, model_cfg, tc, device, resume=args.resume, cancel=cancel)
        path = _drive(it, bar)
        stopped = cancel()
    print(f"{'stopped; ' if stopped else ''}checkpoint written to {path}", file=sys.stderr)
    return 0


def _drive(it, bar) -> object:
    while True:
        try:
            p = next(it)
        except StopIteration as stop:
            return stop.value
        bar(p["step"], p["total"], _note(p))


def _run_deephash(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import ProgressBar
    from training.device import pick_device
    from training.train_deephash import PRESETS, DeepHashTrainConfig, prepare_data, train_deephash

    device = pick_device(getattr(args, "device", "auto"))
    bands = args.bands or "rgb"
    if bands not in ("rgb", "ms10"):
        raise ValueError(f"deep hashing takes --bands rgb or ms10, not {bands!r}")
    tc = DeepHashTrainConfig(**PRESETS[args.preset or "quick"])
    tc.seed = args.seed
    if args.steps is not None:
        tc.steps = args.steps
    if args.batch_size is not None:  # the method's 2:1 split of anchor-class and other tiles
        if args.batch_size < 3:
            raise ValueError("deep hashing needs --batch-size of at least 3")
        tc.batch_pos = max(2, round(args.batch_size * 2 / 3))
        tc.batch_neg = args.batch_size - tc.batch_pos
    if args.checkpoint_every is not None:
        tc.checkpoint_every = args.checkpoint_every
    n_gen = args.n_generated if args.n_generated is not None else (5000 if args.augment else 0)
    if n_gen and not args.augment:
        raise ValueError("--n-generated needs --augment GAN_CHECKPOINT")
    with ProgressBar("features") as bar:
        data = prepare_data(
            args.archive,
            bands=bands,
            out=args.out,
            augment=args.augment,
            n_generated=n_gen,
            seed=args.seed,
            device=device,
            progress=bar,
        )
    print(
        f"deephash: {data.n_real} real + {data.n_generated} generated tiles, {args.bits} bits, "
        f"bands {bands}, {tc.steps} steps on {device}",
        file=sys.stderr,
    )
    with _interrupt_flag() as cancel, ProgressBar("deephash") as bar:
        it = train_deephash(
            data, args.out, args.bits, tc, device, resume=args.resume, cancel=cancel
        )
        path = _drive(it, bar)
        stopped = cancel()
    print(f"{'stopped; ' if stopped else ''}checkpoint written to {path}", file=sys.stderr)
    return 0
