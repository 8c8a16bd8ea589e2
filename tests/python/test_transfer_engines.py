"""Start-up of the optional transfer engines: a missing, wrong or unusable
engine stops start-up with a message that says what to do; SGLang's names
for the engines this build lacks are refused by name."""
import os
import subprocess

import pytest

from conftest import BIN, FIXTURES, TRANSFER_BACKENDS, Server, reference
from pd_helpers import PDPair

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


LIBC = next(p for p in ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"] if os.path.exists(p))


def fake_mooncake_site(tmp_path, version, engine=LIBC):
    """A site-packages holding a mooncake/engine.so (a link to `engine`) and a dist-info of `version`."""
    (tmp_path / "mooncake").mkdir()
    (tmp_path / "mooncake" / "engine.so").symlink_to(engine)
    info = tmp_path / f"mooncake_transfer_engine_non_cuda-{version}.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_35_x86_64\n")
    return str(tmp_path / "mooncake" / "engine.so")


def start_mooncake(mode="decode", env=None):
    return start("--disaggregation-mode", mode, "--disaggregation-transfer-backend", "mooncake", env=env)


def test_a_missing_mooncake_library_names_the_install_command():
    result = start_mooncake(env={"PDSERVE_MOONCAKE_LIB": "/nonexistent/engine.so"})
    assert result.returncode != 0
    assert "PDSERVE_MOONCAKE_LIB=/nonexistent/engine.so: no such file" in result.stderr
    assert "pip install --no-deps mooncake-transfer-engine-non-cuda==0.3.13.post1" in result.stderr


def test_a_mooncake_engine_of_unknown_build_is_refused():
    result = start_mooncake(env={"PDSERVE_MOONCAKE_LIB": LIBC})
    assert result.returncode != 0
    assert "cannot tell which Mooncake build" in result.stderr, result.stderr


def test_another_mooncake_version_is_refused_by_version(tmp_path):
    result = start_mooncake(env={"PDSERVE_MOONCAKE_LIB": fake_mooncake_site(tmp_path, "0.3.14")})
    assert result.returncode != 0
    assert "Mooncake 0.3.14 is installed" in result.stderr and "0.3.13.post1 only" in result.stderr, result.stderr


def test_a_library_that_is_not_mooncake_is_refused_by_symbol(tmp_path):
    result = start_mooncake(env={"PDSERVE_MOONCAKE_LIB": fake_mooncake_site(tmp_path, "0.3.13.post1")})
    assert result.returncode != 0
    assert "does not export _ZN8mooncake" in result.stderr, result.stderr


@pytest.mark.parametrize("variable, value, expected", [
    ("SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "NVLINK", "Mooncake's NVLINK pool needs the KV cache in GPU memory"),
    ("SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "INTRA_NODE_NVLINK", "Mooncake's INTRA_NODE_NVLINK pool needs"),
    ("SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "HBM", "SGLANG_MOONCAKE_CUSTOM_MEM_POOL"),
    ("MC_FORCE_MNNVL", "1", "MC_FORCE_MNNVL=1: multi-node NVLink needs the KV cache in GPU memory"),
])
def test_gpu_only_mooncake_settings_are_refused(variable, value, expected):
    result = start_mooncake(mode="prefill", env={variable: value})
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["ascend", "mori"])
def test_engines_this_build_lacks_are_refused_by_name(name):
    result = start("--disaggregation-mode", "prefill", "--disaggregation-transfer-backend", name)
    assert result.returncode != 0
    assert f"--disaggregation-transfer-backend {name}: this backend is not built yet" in result.stderr


# Mooncake's own C API needs a source build of Mooncake (no wheel ships it);
# point PDSERVE_TEST_MOONCAKE_C_API at the libtransfer_engine.so it made.
MOONCAKE_C_API = os.environ.get("PDSERVE_TEST_MOONCAKE_C_API")
needs_mooncake_c_api = pytest.mark.skipif(not MOONCAKE_C_API, reason="set PDSERVE_TEST_MOONCAKE_C_API to a source-built libtransfer_engine.so")


@needs_mooncake_c_api
def test_mooncake_through_its_own_c_api_decodes_like_unified():
    env = {"PDSERVE_MOONCAKE_LIB": MOONCAKE_C_API}
    body = lambda prompt: {"input_ids": prompt, "sampling_params": {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}}
    unified = Server("--model-path", str(FIXTURES / "qwen2-fp32"))
    pd = PDPair("qwen2-fp32", backend="mooncake", env=env)
    try:
        for prompt in reference("qwen2-fp32")["prompts"][:6]:
            decode, prefill = pd.post("/generate", pd.bootstrap(body(prompt)))
            assert decode.status_code == 200 and prefill.status_code == 200, decode.text
            assert decode.json()["output_ids"] == unified.post("/generate", body(prompt)).json()["output_ids"]
        pd.assert_pools_whole()
    finally:
        pd.stop()
        unified.stop()


@needs_mooncake_c_api
def test_mooncake_c_api_refuses_a_device_filter_it_cannot_apply():
    result = start("--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "mooncake",
                   "--disaggregation-ib-device", "mlx5_0", env={"PDSERVE_MOONCAKE_LIB": MOONCAKE_C_API})
    assert result.returncode != 0
    assert "takes no RDMA device filter" in result.stderr, result.stderr


@pytest.mark.skipif("nixl" not in TRANSFER_BACKENDS, reason="the nixl-cu12 wheel is not installed")
def test_nixl_on_a_specific_host_listens_only_there():
    """UCX listens on every interface unless told; a decode on --host 127.0.0.1 keeps UCX on loopback too."""
    if "UCX_NET_DEVICES" in os.environ:
        pytest.skip("UCX_NET_DEVICES is set for this run")
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--host", "127.0.0.1",
                    "--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl")
    try:
        listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout.splitlines()
        mine = [line.split()[3] for line in listening if f"pid={server.proc.pid}," in line]
        assert len(mine) >= 2, listening  # HTTP and UCX at least
        assert all(address.startswith("127.0.0.1:") for address in mine), mine
    finally:
        server.stop()


@pytest.mark.skipif("nixl" not in TRANSFER_BACKENDS, reason="the nixl-cu12 wheel is not installed")
def test_nixl_refuses_an_rdma_device_it_does_not_have():
    result = start("--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "nixl",
                   "--disaggregation-ib-device", "mlx5_97")
    assert result.returncode != 0
    assert "--disaggregation-ib-device mlx5_97: UCX has no such RDMA device here" in result.stderr, result.stderr
