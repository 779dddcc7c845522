"""The chapters' numbers come from small training runs whose last digits depend on the vector
kernels that torch's three kernel libraries pick (ATen, MKL and oneDNN, which computes the exact
GELU); the Makefile pins all three to their AVX2 versions so that the sentences the book checks
hold on every x86 processor with AVX2. Under ``make test`` the pin must be in effect, in this
process and in a kernel's (a chapter runs in a subprocess that inherits it)."""
import os
import platform
import subprocess
import sys

import pytest
import torch

UNDER_MAKE = bool(os.environ.get("BOOK_HTML"))  # set by `make test`
X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.skipif(not UNDER_MAKE, reason="the pin is set by the Makefile")
def test_make_pins_the_vector_kernels():
    assert os.environ.get("ATEN_CPU_CAPABILITY") == "avx2"
    assert os.environ.get("MKL_CBWR") == "AVX2"
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") == "AVX2"
    if X86:
        assert torch.backends.cpu.get_cpu_capability() == "AVX2"


@pytest.mark.skipif(not X86, reason="the AVX2 kernels exist on x86 only")
def test_torch_reads_the_setting_in_a_child_process():
    """A chapter's kernel is a child process: started with the setting, it uses those kernels."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"

    def capability(setting):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=setting)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    assert capability("avx2") == "AVX2"
    assert capability("default") == "DEFAULT"


def onednn_gelu_report(env: dict) -> list[str]:
    """oneDNN's own report (its verbose mode) of the instruction set it dispatches to and of the
    kernel that ran, from a child process computing the exact GELU under ``env``."""
    code = "import torch; torch.nn.functional.gelu(torch.randn(64, 64))"
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, ONEDNN_VERBOSE="1"),
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if ",isa:" in line or ",eltwise," in line]


@pytest.mark.skipif(not (UNDER_MAKE and X86), reason="the pin is set by the Makefile, on x86")
def test_the_exact_gelu_runs_on_onednn_avx2_kernel_under_make():
    """torch computes the exact GELU's forward pass with oneDNN, which picks its instruction set
    for itself (AVX-512 where there is one) unless ONEDNN_MAX_CPU_ISA caps it: the pin reaches it
    in a child process, as it does a chapter's kernel."""
    report = onednn_gelu_report(dict(os.environ))
    isa = [line for line in report if ",isa:" in line]
    assert isa and isa[0].rstrip().endswith("isa:Intel AVX2"), report
    assert any("eltwise" in line and "gelu_erf" in line for line in report), report
