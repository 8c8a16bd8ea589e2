"""Start-up of the optional transfer engines: a missing, wrong or unusable
engine stops start-up with a message that says what to do; SGLang's names
for the engines this build lacks are refused by name."""
import os
import subprocess

import pytest

from conftest import BIN, FIXTURES, TRANSFER_BACKENDS

COMMON = ["serve", "--port", "0", "--model-path", str(FIXTURES / "qwen2-fp32"), "--max-total-tokens", "4096"]


def start(*args, env=None):
    return subprocess.run([BIN, *COMMON, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "UCX_NET_DEVICES": "lo", **(env or {})})


def test_a_missing_nixl_library_names_the_install_command():
    result = start("--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl",
                   env={"PDSERVE_NIXL_LIB": "/nonexistent/libnixl_capi.so"})
    assert result.returncode != 0
    assert "PDSERVE_NIXL_LIB=/nonexistent/libnixl_capi.so: no such file" in result.stderr


def test_a_library_that_is_not_nixl_is_refused_by_symbol():
    libc = next(p for p in ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"] if os.path.exists(p))
    result = start("--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl", env={"PDSERVE_NIXL_LIB": libc})
    assert result.returncode != 0
    assert "does not export nixl_capi_" in result.stderr


@pytest.mark.skipif("nixl" not in TRANSFER_BACKENDS, reason="the nixl-cu12 wheel is not installed")
def test_libfabric_is_refused_clearly_where_its_plugin_cannot_load():
    result = start("--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl",
                   env={"PDSERVE_DISAGGREGATION_NIXL_BACKEND": "LIBFABRIC"})
    assert result.returncode != 0
    assert "LIBFABRIC" in result.stderr and "cannot" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["mooncake", "ascend"])
def test_engines_this_build_lacks_are_refused_by_name(name):
    result = start("--disaggregation-mode", "prefill", "--disaggregation-transfer-backend", name)
    assert result.returncode != 0
    assert f"--disaggregation-transfer-backend {name}: this backend is not built yet" in result.stderr
