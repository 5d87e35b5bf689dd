"""``rsgui-cli train``: one command for every trainable method (the registry's), one service.

The archive is read, the method's plan made and the model trained by
:func:`rsgui.services.training.train_job`, exactly as the application's training panel does.
Ctrl-C once stops at the next step and writes a checkpoint that ``--resume`` continues from;
a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from rsgui.cli.common import CliError
from rsgui.cli.progress import ProgressBar
from rsgui.encoders.registry import METHODS, PRESETS
from rsgui.errors import JobError
from rsgui.progress import Progress


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a hashing model or a conditional GAN on an archive")
    p.add_argument("archive", help="archive folder")
    p.add_argument("--method", required=True,
                   choices=sorted(k for k, m in METHODS.items() if m.trained))  # fmt: skip
    p.add_argument(
        "--out",
        required=True,
        help="checkpoint file to write: NAME.safetensors (NAME alone gets the suffix; another "
        "suffix is refused). Every file written is printed on stdout, one path a line",
    )
    p.add_argument("--bits", type=int, default=64, help="code length (hashing methods)")
    p.add_argument("--bands", default=None, help="band set: rgb | ms10 | all (default per method)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the preset)")
    p.add_argument("--preset", choices=list(PRESETS), default="quick")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    p.add_argument("--augment", default=None, help="deephash: conditional GAN checkpoint")
    p.add_argument(
        "--n-generated", type=int, default=None,
        help="deephash: generated tiles added (default 5000 with --augment); uahm, gan-*: "
        "tiles of the trained generator written beside the model",
    )  # fmt: skip
    p.add_argument(
        "--variant",
        choices=["thesis", "improved"],
        default=None,
        help="uahm/dhnn-ms/deephash: the method's own networks and losses, or the improved ones "
        "(uahm: a hash network on the frozen pretrained vectors with their kNN graph; deephash: "
        "the shipped EfficientNet-Lite0 fine-tuned on the tiles towards class hash centres; both "
        "when the backbone is installed); default improved with --preset quick or cpu, thesis "
        "with --preset thesis",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.set_defaults(func=run)


@contextlib.contextmanager
def _interrupt_flag():
    """A flag that turns true on the first Ctrl-C (the second one aborts)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


class _StageBars:
    """One progress bar per stage of the job (reading, features, similarity, training...)."""

    def __init__(self, method: str):
        self.method = method
        self.stage: str | None = None
        self.bar: ProgressBar | None = None

    def __call__(self, p: Progress) -> None:
        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            self.bar = ProgressBar(f"train {self.method}" if p.stage == "train" else p.stage)
        note = p.note
        if p.stage == "train":
            losses = " ".join(f"{k} {v:.3f}" for k, v in list(p.values.items())[:5])
            note = f"{p.rate or 0:.0f} img/s {losses}"
        self.bar(int(p.done), None if p.total is None else int(p.total), note)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    from rsgui.cli.outputs import Outputs, checkpoint_path
    from rsgui.services.training import train_job

    out = checkpoint_path(args.out)  # never renamed silently: a wrong suffix is refused
    written = Outputs.stem(out)
    job = train_job(
        args.archive, args.method, out, bands=args.bands, bits=args.bits, steps=args.steps,
        preset=args.preset, device=args.device, seed=args.seed, batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every, resume=args.resume,
        variant=getattr(args, "variant", None), augment=args.augment,
        n_generated=args.n_generated, amp=bool(getattr(args, "amp", False)),
    )  # fmt: skip
    bars = _StageBars(args.method)
    result = None
    try:
        with _interrupt_flag() as stop:
            while True:
                try:
                    bars(next(job))
                except StopIteration as end:
                    result = end.value
                    break
                if stop.is_set():
                    break
    except JobError as e:
        raise CliError(str(e)) from None
    finally:
        job.close()  # a stopped trainer writes its checkpoint here
        bars.close()
    if result is None:
        print(f"stopped; checkpoint written to {out}", file=sys.stderr)
        written.print()
        return 130
    msg = f"{args.method}: {result.step} steps, model {result.path}"
    found = {k: v for k, v in result.metrics.items() if k.startswith("map@")}
    for name, value in found.items():
        msg += f"; {name.upper()} {value:.4f} ({result.eval})"
    print(msg, file=sys.stderr)
    if args.n_generated and METHODS[args.method].family == "uahm":
        folder = Path(result.path).with_name(Path(result.path).stem + "_generated")
        if folder.is_dir():
            print(f"{args.n_generated} generated tiles in {folder}", file=sys.stderr)
    written.print()  # stdout: the path of every file written, one a line
    return 0
