"""The CPU flags that decide onnxruntime's integer kernels, read from /proc/cpuinfo on x86 and ARM."""

from __future__ import annotations

from pathlib import Path

from footfall.core.cpu import cpu_info, has_int32_dot_product

X86_NO_VNNI = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
ARM_DOTPROD = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes asimddp i8mm\nCPU part\t: 0xd0c\n"


def test_x86_without_vnni_has_no_int32_dot_product(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(X86_NO_VNNI)
    name, _, flags = cpu_info(tmp_path / "cpuinfo")
    assert name == "AMD EPYC 7B12" and flags == ("avx2",)
    assert not has_int32_dot_product(flags)


def test_arm_dot_product_flags_are_read_from_features(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(ARM_DOTPROD)
    _, _, flags = cpu_info(tmp_path / "cpuinfo")
    assert flags == ("asimd", "asimddp", "i8mm") and has_int32_dot_product(flags)


def test_unreadable_cpuinfo_still_names_something(tmp_path: Path) -> None:
    name, arch, flags = cpu_info(tmp_path / "missing")
    assert name and arch and flags == ()
