"""The one list of methods: what each is called, its family, its codes and what it needs.

The command line, the training panel, the index builder and the model loader all read this table;
nothing else lists methods. ``training/`` does not see it: a trainer takes a config built from a
method's ``config`` overrides by the training service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["spectral", "pretrained", "uahm", "cgan", "deephash"]


@dataclass(frozen=True)
class MethodSpec:
    key: str  # the name used by the command line, in checkpoints and in indexes
    label: str  # what the user reads
    family: Family
    band_sets: tuple[str, ...]
    default_bands: str
    codes: Literal["binary", "float", "none"] = "binary"  # none: a generator, makes no codes
    uses_bits: bool = True
    needs_labels: bool = False
    trained: bool = True
    config: dict[str, Any] = field(default_factory=dict)  # family config overrides

    @property
    def retrieval(self) -> bool:
        """A finished run (or the method itself) can index an archive."""
        return self.codes != "none"

    @property
    def generator(self) -> bool:
        """A finished run makes class-conditioned tiles (the samples panel)."""
        return self.family == "cgan"


METHODS: dict[str, MethodSpec] = {
    m.key: m
    for m in (
        MethodSpec("spectral", "Spectral features + ITQ (no training)", "spectral",
                   ("ms10", "rgb", "all"), "ms10", trained=False),
        MethodSpec("pretrained", "ImageNet backbone + band statistics + ITQ (no training)",
                   "pretrained", ("ms10", "rgb", "all"), "ms10", trained=False),
        MethodSpec("uahm", "UAHM", "uahm", ("ms10", "rgb"), "ms10",
                   config={"adversarial": True, "binary": True}),
        MethodSpec("gan-ms", "GAN-MS", "uahm", ("ms10",), "ms10", codes="float",
                   config={"adversarial": True, "binary": False}),
        MethodSpec("gan-rgb", "GAN-RGB", "uahm", ("rgb",), "rgb", codes="float",
                   config={"adversarial": True, "binary": False}),
        MethodSpec("dhnn-ms", "DHNN-MS", "uahm", ("ms10",), "ms10",
                   config={"adversarial": False, "binary": True}),
        MethodSpec("cdcgan", "Conditional DCGAN", "cgan", ("rgb", "ms10"), "rgb", codes="none",
                   uses_bits=False, needs_labels=True, config={"kind": "cdcgan"}),
        MethodSpec("acgan", "ACGAN", "cgan", ("rgb", "ms10"), "rgb", codes="none",
                   uses_bits=False, needs_labels=True, config={"kind": "acgan"}),
        MethodSpec("deephash", "Deep hashing", "deephash", ("rgb", "ms10"), "rgb",
                   needs_labels=True),
    )
}  # fmt: skip

PRESETS: tuple[str, ...] = ("quick", "cpu", "thesis")  # cpu: sized for two CPU cores


def method(key: str) -> MethodSpec:
    """The spec of ``key``; a ValueError naming the known methods otherwise."""
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown method {key!r}; known: {', '.join(METHODS)}") from None


def methods_of(family: Family) -> tuple[str, ...]:
    return tuple(k for k, m in METHODS.items() if m.family == family)


def retrieval_methods() -> tuple[str, ...]:
    return tuple(k for k, m in METHODS.items() if m.retrieval)


def installed(key: str) -> bool:
    """Whether ``key`` can run here: a pretrained backbone needs its weights package."""
    spec = method(key)
    if spec.family == "pretrained":
        from rsgui.encoders.pretrained import backbone_installed

        return backbone_installed()
    return True


def trained_retrieval_methods() -> tuple[str, ...]:
    return tuple(k for k, m in METHODS.items() if m.retrieval and m.trained)
