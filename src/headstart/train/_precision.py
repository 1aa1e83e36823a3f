"""Numeric precision of end-to-end training: fp32, or bf16 autocast where it pays.

``precision="auto"`` (the default of every method that trains the backbone) picks bf16
autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``: matrix products and
convolutions in bf16, reductions, the loss and the optimizer's state in fp32) only when
both hold:

1. the CPU multiplies bf16 natively: ``amx_bf16`` or ``avx512_bf16`` among its flags
   (``/proc/cpuinfo``). Elsewhere bf16 is emulated: on an AVX2 machine a 256^2 bf16 GEMM
   runs at about 0.3 GFLOP/s against about 150 in fp32 (``bench/throughput.py``), so it
   is never tried;
2. a measured probe says it is faster: one forward + backward pass of the stage's model
   on one batch, in each precision (each run twice, the second timed); bf16 is kept when
   its step takes at most :data:`BF16_MARGIN` of the fp32 step's time.

``"fp32"`` and ``"bf16"`` force one (a forced bf16 on a CPU without native support runs,
slowly, with a note). The choice and its reason go into the run's notes (``metrics.json``,
the report).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from headstart.cache._engine import cpu_flags

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MARGIN = 0.9


def check_precision(value: str) -> bool:
    return value in PRECISIONS


def native_bf16_flag(flags: Iterable[str] | None = None) -> str | None:
    """The CPU flag that makes bf16 native (``amx_bf16`` first), or ``None``."""
    have = cpu_flags() if flags is None else frozenset(flags)
    return next((f for f in NATIVE_BF16_FLAGS if f in have), None)


@dataclass(frozen=True)
class PrecisionChoice:
    """What end-to-end training ran in: ``used`` (``fp32`` or ``bf16``) for ``requested``,
    and why; ``seconds``: the probe's timed step per precision (empty when not probed)."""

    requested: str
    used: str
    reason: str
    seconds: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "used": self.used,
            "reason": self.reason,
            "probe_seconds": dict(self.seconds),
        }

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context a training step runs its forward pass (and loss) in."""
        if self.used == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def choose_precision(
    requested: str,
    step: Callable[[bool], float] | None = None,
    flags: Iterable[str] | None = None,
    capability: str | None = None,
) -> PrecisionChoice:
    """Resolve ``requested`` (module docstring). ``step(bf16)`` runs one timed probe step
    and returns its seconds (called only under ``auto`` on a native-bf16 CPU); ``flags``
    and ``capability`` default to this CPU's (``/proc/cpuinfo``,
    ``torch.backends.cpu.get_cpu_capability()``)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    cap = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    native = native_bf16_flag(flags)
    if requested == "fp32":
        return PrecisionChoice("fp32", "fp32", "fp32 asked for")
    if requested == "bf16":
        why = (
            f"bf16 asked for (native: {native})"
            if native
            else (
                f"bf16 asked for; this CPU has no native bf16 (torch capability {cap}, no "
                f"{' / '.join(NATIVE_BF16_FLAGS)} flag): emulated, much slower than fp32"
            )
        )
        return PrecisionChoice("bf16", "bf16", why)
    if native is None:
        return PrecisionChoice(
            "auto",
            "fp32",
            f"auto: fp32, this CPU has no native bf16 (torch capability {cap}, no "
            f"{' / '.join(NATIVE_BF16_FLAGS)} flag)",
        )
    if step is None:
        return PrecisionChoice("auto", "fp32", f"auto: fp32, native {native} but nothing to probe")
    fp32, bf16 = step(False), step(True)
    seconds = (("fp32", fp32), ("bf16", bf16))
    if bf16 <= BF16_MARGIN * fp32:
        why = f"auto: bf16 (native {native}; probe step {bf16:.3f} s vs {fp32:.3f} s in fp32)"
        return PrecisionChoice("auto", "bf16", why, seconds)
    why = (
        f"auto: fp32 (native {native}, but the bf16 probe step took {bf16:.3f} s vs "
        f"{fp32:.3f} s in fp32, not under {BF16_MARGIN:.0%})"
    )
    return PrecisionChoice("auto", "fp32", why, seconds)


__all__ = [
    "BF16_MARGIN",
    "PRECISIONS",
    "PrecisionChoice",
    "check_precision",
    "choose_precision",
    "native_bf16_flag",
]
