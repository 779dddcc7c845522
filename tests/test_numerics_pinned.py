"""The chapters' numbers come from small training runs whose last digits depend on the vector
kernels torch and MKL pick; the Makefile pins both to their AVX2 versions so that the sentences the
book checks hold on every x86 processor with AVX2. Under ``make test`` the pin must be in effect,
in this process and in a kernel's (a chapter runs in a subprocess that inherits it)."""
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
