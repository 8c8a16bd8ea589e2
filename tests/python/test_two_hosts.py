"""PD across two real hosts (DESIGN.md §6): the prefill runs in network
namespace A, the decode and the router in namespace B, joined by a veth
pair with addresses of a private test range. Greedy outputs through
PDServe's router and through the real sglang-router equal a unified
instance's (root namespace, 127.0.0.1) token for token, and both KV pools
return whole.

Two prefill bindings: `--host 0.0.0.0` (the case that matters: the prefill
must then advertise to decoders an address they can reach, never loopback)
and `--host <A's address>`.

Requests are made from inside namespace B (netns_helpers.ns_http); only the
two namespace addresses are ever targeted. Needs root and iproute2
(`ip netns`); skipped otherwise.
"""
import ipaddress
import json
import subprocess
import sys
import time

import pytest

from conftest import BIN, FIXTURES, TRANSFER_BACKENDS, Server, reference
from netns_helpers import NetnsUnavailable, TwoHosts, ns_http
from router_helpers import sglang_router_available

MODEL = "qwen2-fp32"
SERVED = "qwen-tiny"
# Every namespace is new and private to this run, so fixed ports are free in it.
PREFILL_PORT, BOOTSTRAP_PORT = 30000, 8998          # in A
DECODE_PORT, OUR_ROUTER_PORT = 30001, 30100         # in B
THEIR_ROUTER_PORT, THEIR_METRICS_PORT = 30200, 30300
# A broken transfer surfaces as an error within about 20 s, not after the 300 s defaults.
# The advertised-address override is left unset: the default is what is tested.
PD_ENV = {"PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "20", "PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "20",
          "PDSERVE_HOST_IP": None, "SGLANG_HOST_IP": None}
SERVE_READY = r"serving \S+ on http://[^\s/]+:(\d+)"
INDICES = [0, 3, 6, 13, 21, 27]      # short to long prompts (27 spans several pages)
GREEDY = {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}
COMPLETION = {"model": SERVED, "prompt": "The capital of France is", "max_tokens": 12, "temperature": 0}


def generate_body(prompt):
    return {"input_ids": prompt, "sampling_params": GREEDY}


@pytest.fixture(scope="module")
def expected():
    """What a unified instance in the root namespace answers."""
    server = Server("--model-path", str(FIXTURES / MODEL), "--served-model-name", SERVED)
    try:
        prompts = reference(MODEL)["prompts"]
        single = {}
        for i in INDICES:
            answer = server.post("/generate", generate_body(prompts[i]))
            assert answer.status_code == 200, answer.text
            single[i] = answer.json()
        batch = server.post("/generate", generate_body([prompts[i] for i in INDICES[:3]]))
        completion = server.post("/v1/completions", COMPLETION)
        assert batch.status_code == 200 and completion.status_code == 200, (batch.text, completion.text)
        answers = {"single": single, "batch": batch.json(), "completion": completion.json()}
    finally:
        server.stop()
    return answers


class Cluster:
    """Namespaces A (prefill) and B (decode, routers) with their URLs."""

    def __init__(self, hosts, prefill_host, backend):
        self.hosts = hosts
        common = ["serve", "--model-path", str(FIXTURES / MODEL), "--served-model-name", SERVED, "--threads", "1",
                  "--disaggregation-transfer-backend", backend]
        # NIXL's UCX uses each namespace's own veth (its wire-up and its data path cross the "network").
        env_a = PD_ENV | ({"UCX_NET_DEVICES": hosts.veth_a} if backend == "nixl" else {})
        env_b = PD_ENV | ({"UCX_NET_DEVICES": hosts.veth_b} if backend == "nixl" else {})
        self.prefill = hosts.start(hosts.a, BIN, *common, "--host", prefill_host, "--port", PREFILL_PORT,
                                   "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", BOOTSTRAP_PORT,
                                   ready_pattern=SERVE_READY, name="prefill-ns", env=env_a)
        self.decode = hosts.start(hosts.b, BIN, *common, "--host", "0.0.0.0", "--port", DECODE_PORT,
                                  "--disaggregation-mode", "decode", ready_pattern=SERVE_READY, name="decode-ns", env=env_b)
        self.prefill_url = f"http://{hosts.ip_a}:{PREFILL_PORT}"
        self.decode_url = f"http://{hosts.ip_b}:{DECODE_PORT}"
        self.pd_args = ["--pd-disaggregation", "--prefill", self.prefill_url, str(BOOTSTRAP_PORT), "--decode", self.decode_url]

    def http(self, method, url, body=None, timeout=60):
        """A request made from namespace B (where the routers and the decode are)."""
        return ns_http(self.hosts, self.hosts.b, method, url, body, timeout)

    def logs(self, *extra):
        parts = [(p.name, p) for p in (self.prefill, self.decode, *extra) if p is not None]
        return "\n".join(f"--- {name} log (tail) ---\n{p.output()[-3000:]}" for name, p in parts)

    def assert_pools_whole(self, timeout=15):
        for name, url in (("prefill", self.prefill_url), ("decode", self.decode_url)):
            deadline = time.monotonic() + timeout
            while True:
                self.http("POST", url + "/flush_cache", {})
                status, info = self.http("GET", url + "/get_server_info")
                assert status == 200, (name, info)
                pool = info["kv_pool"]
                if pool["free_pages"] == pool["total_pages"]:
                    break
                assert time.monotonic() < deadline, f"{name} KV pages leaked: {pool}\n{self.logs()}"
                time.sleep(0.1)


@pytest.fixture(scope="module", params=[("0.0.0.0", "tcp"), ("namespace-address", "tcp")]
                + [("0.0.0.0", b) for b in TRANSFER_BACKENDS if b not in ("tcp", "shm")], ids=lambda p: "-".join(p))
def cluster(request):
    bind, backend = request.param
    try:
        hosts = TwoHosts()
    except NetnsUnavailable as error:
        pytest.skip(f"two hosts need network namespaces: {error}")
    try:
        yield Cluster(hosts, "0.0.0.0" if bind == "0.0.0.0" else hosts.ip_a, backend)
    finally:
        hosts.close()


def assert_answers_like_unified(cluster, router_url, expected, router=None):
    prompts = reference(MODEL)["prompts"]
    for i in INDICES:
        status, body = cluster.http("POST", router_url + "/generate", generate_body(prompts[i]))
        assert status == 200, f"prompt {i}: {status} {body}\n{cluster.logs(router)}"
        want = expected["single"][i]
        assert body["output_ids"] == want["output_ids"], f"prompt {i}"
        assert body["text"] == want["text"], f"prompt {i}"
    status, body = cluster.http("POST", router_url + "/generate", generate_body([prompts[i] for i in INDICES[:3]]))
    assert status == 200, f"batch: {status} {body}\n{cluster.logs(router)}"
    assert [r["output_ids"] for r in body] == [r["output_ids"] for r in expected["batch"]]
    status, body = cluster.http("POST", router_url + "/v1/completions", COMPLETION)
    assert status == 200, f"completion: {status} {body}\n{cluster.logs(router)}"
    want = expected["completion"]
    assert [(c["text"], c["finish_reason"]) for c in body["choices"]] == [(c["text"], c["finish_reason"]) for c in want["choices"]]
    assert body["usage"] == want["usage"]


# Run in the decode's namespace: resolves the advertised address there and
# opens a TCP connection to it (closed at once; the prefill drops it).
_REACH = """
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    resolved = sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
except OSError as e:
    print(json.dumps({"resolved": [], "error": f"getaddrinfo: {e}"}))
    sys.exit(0)
try:
    socket.create_connection((host, port), timeout=5).close()
    error = None
except OSError as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"resolved": resolved, "error": error}))
"""


def test_prefill_advertises_an_address_the_decode_host_reaches(cluster):
    # The lookup a decode makes (SGLang's query names) for the prefill rank it reads from.
    status, route = cluster.http("GET", f"http://{cluster.hosts.ip_a}:{BOOTSTRAP_PORT}/route?engine_rank=0&target_dp_group=0")
    assert status == 200, route
    address, port = route["rank_ip"], route["rank_port"]
    probe = subprocess.run(cluster.hosts.argv(cluster.hosts.b, sys.executable, "-I", "-c", _REACH, address, port),
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
    reach = json.loads(probe.stdout)
    loopback = [a for a in reach["resolved"] if ipaddress.ip_address(a.split("%")[0]).is_loopback]
    assert reach["resolved"] and not loopback, f"prefill advertises rank_ip {address!r} ({reach}), which a decode on another host cannot reach"
    assert reach["error"] is None, f"the decode host cannot connect to the advertised {address}:{port}: {reach['error']}"


def test_pdserve_router_across_two_hosts(cluster, expected):
    router = cluster.hosts.start(cluster.hosts.b, BIN, "router", "--host", cluster.hosts.ip_b,
                                 "--port", OUR_ROUTER_PORT, *cluster.pd_args,
                                 ready_pattern=r"ready on http://[^\s/]+:(\d+)", name="router-ns", ready_timeout=60)
    try:
        assert_answers_like_unified(cluster, f"http://{cluster.hosts.ip_b}:{OUR_ROUTER_PORT}", expected, router)
        cluster.assert_pools_whole()
    finally:
        router.stop()


@pytest.mark.skipif(not sglang_router_available(), reason="sglang-router is not installed (pip install sglang-router==0.3.2)")
def test_sglang_router_across_two_hosts(cluster, expected):
    router = cluster.hosts.start(
        cluster.hosts.b, sys.executable, "-m", "sglang_router.launch_router", "--host", cluster.hosts.ip_b,
        "--port", THEIR_ROUTER_PORT, "--prometheus-port", THEIR_METRICS_PORT, "--worker-startup-check-interval", "1",
        *cluster.pd_args, ready_pattern=r"", name="sglang-router-ns", env={"HF_HUB_OFFLINE": "1", "NO_COLOR": "1"})
    url = f"http://{cluster.hosts.ip_b}:{THEIR_ROUTER_PORT}"
    try:
        # It reports ready before its workers are registered: ready means a tiny request is routed.
        probe = {"input_ids": [5, 6], "sampling_params": {"max_new_tokens": 1, "temperature": 0}}
        deadline = time.monotonic() + 60
        while True:
            assert router.alive(), f"sglang-router exited:\n{router.output()[-4000:]}"
            status, body = cluster.http("POST", url + "/generate", probe, timeout=30)
            if status == 200:
                break
            # Not listening yet (refused) or no worker registered yet (503): wait. Anything else is
            # an answer (a timeout too: it retries a failing PD request for longer than 30 s).
            not_yet = status == 503 or (status is None and ("refused" in body or "reset" in body))
            assert not_yet, f"sglang-router's first request failed: {status} {body}\n{cluster.logs(router)}"
            assert time.monotonic() < deadline, f"sglang-router did not route a request within 60 s: {status} {body}\n{cluster.logs(router)}"
            time.sleep(0.5)
        assert_answers_like_unified(cluster, url, expected, router)
        cluster.assert_pools_whole()
    finally:
        router.stop()
