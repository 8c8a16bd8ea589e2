"""Where PD instances listen and what they advertise: IPv6 and wildcard
binds, the PDSERVE_HOST_IP override, binds that cannot be honoured, and the
shm pool file's life (random name, removed at shutdown, stale ones swept)."""
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import BIN, FIXTURES, Server, reference
from pd_helpers import free_port

MODEL = "qwen2-fp32"
COMMON = ("--model-path", str(FIXTURES / MODEL))


class AnyHostServer(Server):
    """A `pdserve serve` bound to any host (the log line shows that host, not 127.0.0.1)."""

    ready_pattern = r"serving \S+ on http://\S*:(\d+)\n"

    def __init__(self, *args, url_host, env=None):
        super().__init__(*args, env=env)
        self.url = f"http://{url_host}:{self.port}"


def greedy(prompt, **fields):
    return {"input_ids": prompt, "sampling_params": {"max_new_tokens": 10, "temperature": 0, "ignore_eos": True}, **fields}


def pd_generate(prefill, decode, body):
    """Both halves in parallel, as a router sends them; the decode's answer."""
    import threading
    holder = {}
    thread = threading.Thread(target=lambda: holder.setdefault("p", requests.post(prefill.url + "/generate", json=body, timeout=60)))
    thread.start()
    answer = requests.post(decode.url + "/generate", json=body, timeout=60)
    thread.join(60)
    assert holder["p"].status_code == 200, holder["p"].text
    return answer


def ipv6_loopback_available():
    try:
        import socket
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback_available(), reason="this machine has no IPv6 loopback")
def test_pd_over_ipv6_with_a_wildcard_prefill():
    bootstrap = free_port()
    unified = Server(*COMMON)
    prefill = AnyHostServer(*COMMON, "--host", "::", "--disaggregation-mode", "prefill",
                            "--disaggregation-bootstrap-port", str(bootstrap), url_host="[::1]", env={"PDSERVE_HOST_IP": ""})
    decode = AnyHostServer(*COMMON, "--host", "::1", "--disaggregation-mode", "decode", url_host="[::1]")
    try:
        # A wildcard prefill advertises the address each lookup arrived on: never a loopback it was not reached by.
        over_v6 = requests.get(f"http://[::1]:{bootstrap}/route?engine_rank=0&target_dp_group=0", timeout=10).json()
        assert over_v6["rank_ip"] == "::1"
        over_v4 = requests.get(f"http://127.0.0.1:{bootstrap}/route?engine_rank=0&target_dp_group=0", timeout=10).json()
        assert over_v4["rank_ip"] == "127.0.0.1"
        for index in [3, 13]:
            prompt = reference(MODEL)["prompts"][index]
            expected = unified.post("/generate", greedy(prompt)).json()["output_ids"]
            body = greedy(prompt, bootstrap_host="::1", bootstrap_port=bootstrap, bootstrap_room=int.from_bytes(os.urandom(7), "little"))
            answer = pd_generate(prefill, decode, body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["output_ids"] == expected
        decode.assert_pool_whole()
        prefill.assert_pool_whole()
    finally:
        for server in (decode, prefill, unified):
            server.stop()


def test_host_ip_override_is_what_the_route_advertises():
    bootstrap = free_port()
    prefill = Server(*COMMON, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap),
                     env={"PDSERVE_HOST_IP": "127.0.0.7"})
    try:
        route = requests.get(f"http://127.0.0.1:{bootstrap}/route?engine_rank=0&target_dp_group=0", timeout=10).json()
        assert route["rank_ip"] == "127.0.0.7"
    finally:
        prefill.stop()


def run_to_exit(*args, env=None):
    return subprocess.run([BIN, "serve", "--port", "0", *COMMON, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_a_bootstrap_port_in_use_stops_start_up_before_serving():
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit("--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(port))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"--disaggregation-bootstrap-port {port}" in output and "in use" in output
    assert "serving" not in output, "announced readiness before failing"


def test_an_unresolvable_host_stops_start_up():
    result = run_to_exit("--disaggregation-mode", "prefill", "--host", "no-such-host.invalid")
    assert result.returncode != 0
    assert "cannot listen on no-such-host.invalid" in result.stdout + result.stderr


def test_shm_pool_file_is_removed_at_shutdown_and_stale_ones_are_swept():
    dead = 4_000_000  # above the default pid_max: no process has it
    stale = f"/dev/shm/pdserve-kv-{dead}-deadbeef"
    with open(stale, "wb") as f:
        f.write(b"\0" * 64)
    decode = Server(*COMMON, "--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "shm", "--max-total-tokens", "4096")
    try:
        match = re.search(r"into (/dev/shm/pdserve-kv-\d+-[0-9a-f]+)", decode.output())
        assert match, decode.output()
        path = match.group(1)
        assert os.path.exists(path)
        assert (os.stat(path).st_mode & 0o777) == 0o600
        assert not os.path.exists(stale), "a pool file of a dead instance was left behind"
    finally:
        assert decode.stop() == 0
    assert not os.path.exists(path), "the decode's shm pool file outlived a clean stop"
