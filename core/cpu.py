"""The CPU a model runs on: its name and the instruction-set flags that decide which INT8 kernels run.

Why it matters: onnxruntime picks its integer kernels by these flags. x86 without VNNI sums pairs of
uint8 × int8 products into a saturating int16; VNNI, AMX and ARM's dot products accumulate in int32. A
bundle's figures, a latency or a parity failure mean little without them, so the agent's heartbeat,
``footfall doctor`` and the export reports all print them.
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from footfall.core.wire import CpuInfo

# The flags that change integer arithmetic or its speed, in /proc/cpuinfo's spelling (x86 "flags",
# ARM "Features": asimddp is ARM's int8 dot product, i8mm its int8 matrix multiply).
RELEVANT_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)
# Any of these makes a uint8 × int8 product accumulate in int32 (no int16 pair sums).
INT32_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


def _cpuinfo(path: Path) -> tuple[str, set[str]]:
    name, flags = "", set[str]()
    try:
        text = path.read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return name, flags


@cache
def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str, tuple[str, ...]]:
    """(model name, machine architecture, relevant flags present) of this machine."""
    name, flags = _cpuinfo(cpuinfo)
    return (
        name or platform.processor() or "unknown",
        platform.machine() or "unknown",
        tuple(flag for flag in RELEVANT_FLAGS if flag in flags),
    )


def cpu_name() -> str:
    return cpu_info()[0]


def describe_cpu() -> str:
    """One line for logs and reports, e.g. ``AMD EPYC (x86_64; avx2 avx512_vnni)``."""
    name, arch, flags = cpu_info()
    return f"{name} ({arch}; {' '.join(flags) or 'no relevant flags'})"


def this_cpu() -> CpuInfo:
    """This machine's CPU as the agent's heartbeat reports it."""
    from footfall.core.wire import CpuInfo

    model, arch, flags = cpu_info()
    return CpuInfo(model=model[:128], arch=arch[:32], flags=list(flags))


def has_int32_dot_product(flags: tuple[str, ...]) -> bool:
    return bool(INT32_DOT_FLAGS.intersection(flags))
