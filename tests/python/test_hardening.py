"""What an operator meets in the first week (issue: hardening): overload that
must not become an outage, keep-alive connections that must not grow, the
probes orchestrators poll, a router that cannot bind, and draining an
instance under load. Real instances and routers on 127.0.0.1; scripted fake
workers only where a worker must answer something on demand. Every wait is
bounded."""
import concurrent.futures
import hashlib
import hmac
import json
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests

import wire_helpers as wire
from conftest import BIN, FIXTURES, Server, read_response, reference, wait_until
from pd_helpers import PDPair, free_port
from router_helpers import FakeWorker, RouterProcess, metric

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
SHORT = {"max_new_tokens": 4, "temperature": 0, "ignore_eos": True}


def overloaded_worker(status=503, retry_after="7"):
    """A fake that is healthy but full; `fake.full = False` makes it serve."""
    def script(handler, path, body):
        if path == "/health":
            handler.reply(200, {})
        elif fake.full:
            handler.send_response(status)
            data = b'{"error": {"message": "full", "type": "server_overloaded", "code": %d}}' % status
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Retry-After", retry_after)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        else:
            handler.reply(200, {"text": "served", "meta_info": {"id": "x", "finish_reason": {"type": "length"}}})

    fake = FakeWorker(script)
    fake.full = True
    return fake


# 1. Overload is not a failure: no breaker opens, Retry-After reaches the client.

@pytest.mark.parametrize("status", [503, 429])
def test_an_overloaded_worker_never_opens_its_circuit_and_its_retry_after_reaches_the_client(status, started):
    fake = overloaded_worker(status)
    started(fake)
    router = RouterProcess("--worker-urls", fake.url, "--cb-failure-threshold", "2", "--cb-timeout-duration-secs", "60",
                           "--retry-initial-backoff-ms", "1", "--health-check-interval-secs", "1")
    started(router)
    for i in range(6):
        response = router.post("/generate", {"text": f"busy {i}"})
        assert response.status_code == status, response.text
        assert response.headers.get("Retry-After") == "7"
        assert response.json()["error"]["type"] == "server_overloaded"
    # Each request asked the full worker once: it is not retried on the worker that said it is full.
    assert len(fake.received("/generate")) == 6
    state = router.workers()[fake.url]
    assert state["circuit_state"] == "closed" and state["consecutive_failures"] == 0, state
    fake.full = False
    assert router.post("/generate", {"text": "now"}).status_code == 200


def test_an_overloaded_worker_sends_its_requests_to_one_with_capacity(started):
    fake = overloaded_worker()
    started(fake)
    real = Server(*MODEL)
    started(real)
    router = RouterProcess("--worker-urls", fake.url, real.url, "--policy", "round_robin", "--cb-failure-threshold", "2",
                           "--retry-initial-backoff-ms", "1")
    started(router)
    for i in range(6):
        response = router.post("/generate", {"text": f"spill {i}", "sampling_params": SHORT})
        assert response.status_code == 200, response.text
    assert router.workers()[fake.url]["circuit_state"] == "closed"


def burst(url, count, concurrency, body):
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(requests.post, url + "/generate", json=body, timeout=120) for _ in range(count)]
        return [f.result() for f in futures]


def assert_served_at_once_after_a_burst(router, worker_urls):
    replies = burst(router.url, 60, 30, {"text": "burst", "sampling_params": {**SHORT, "max_new_tokens": 16}})
    statuses = {r.status_code for r in replies}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses, "the burst should overflow capacity"
    assert all(r.headers.get("Retry-After") for r in replies if r.status_code == 503)
    assert all(r.json()["error"]["type"] == "server_overloaded" for r in replies if r.status_code == 503)
    # The idle cluster serves the very next request (it was a 30 s outage when overload opened the breaker).
    started_at = time.monotonic()
    response = router.post("/generate", {"text": "after the burst", "sampling_params": SHORT})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started_at < 5
    workers = router.workers()
    for url in worker_urls:
        assert workers[url]["circuit_state"] == "closed", workers[url]


def test_a_burst_beyond_capacity_is_not_an_outage(started):
    server = Server(*MODEL, "--max-running-requests", "2", "--max-queued-requests", "2")
    started(server)
    router = RouterProcess("--worker-urls", server.url, "--cb-failure-threshold", "3", "--cb-timeout-duration-secs", "60",
                           "--retry-initial-backoff-ms", "1")
    started(router)
    assert_served_at_once_after_a_burst(router, [server.url])
    server.assert_pool_whole()


def test_a_pd_burst_beyond_capacity_is_not_an_outage(started):
    bootstrap_port = free_port()
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port),
                     "--max-running-requests", "2", "--max-queued-requests", "2")
    started(prefill)
    decode = Server(*MODEL, "--disaggregation-mode", "decode", "--max-running-requests", "2", "--max-queued-requests", "2")
    started(decode)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(bootstrap_port), "--decode", decode.url,
                           "--cb-failure-threshold", "3", "--cb-timeout-duration-secs", "60", "--retry-initial-backoff-ms", "1")
    started(router)
    assert_served_at_once_after_a_burst(router, [prefill.url, decode.url])
    for server in (prefill, decode):
        server.assert_pool_whole()


# 4. Keep-alive connections hold nothing per finished request.

def test_a_keep_alive_connection_keeps_no_watch_of_finished_requests(started):
    server = Server(*MODEL, "--context-length", "20000")
    started(server)
    with requests.Session() as session:
        for i in range(200):
            assert session.post(server.url + "/generate", json={"text": f"k{i}", "sampling_params": {"max_new_tokens": 1}},
                                timeout=30).status_code == 200
        text = session.get(server.url + "/metrics", timeout=30).text
        assert "pdserve:http_requests_watched" in text and "pdserve:http_connections_open" in text
        assert metric(text, "pdserve:http_requests_watched") == 0
        assert metric(text, "pdserve:http_connections_open") >= 1
        # A running request is watched, and a client that leaves aborts it.
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        body = b'{"text": "hold", "sampling_params": {"max_new_tokens": 15000, "ignore_eos": true}}'
        holder.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 10
        while metric(session.get(server.url + "/metrics", timeout=30).text, "pdserve:http_requests_watched") != 1:
            assert time.monotonic() < deadline, "the running request is not watched"
            time.sleep(0.02)
        holder.close()
        deadline = time.monotonic() + 10
        while server.state("num_running_reqs") != 0 or metric(session.get(server.url + "/metrics", timeout=30).text, "pdserve:http_requests_watched") != 0:
            assert time.monotonic() < deadline, "the disconnected request was not aborted"
            time.sleep(0.02)
    server.assert_pool_whole()


# 5. Probes, and a router that binds before it announces anything.

def test_instance_probes_answer_without_the_api_key(started):
    server = Server(*MODEL, "--api-key", "sekret")
    started(server)
    assert server.get("/liveness").status_code == 200
    ready = server.get("/readiness")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert server.get("/get_load").status_code == 401


def test_router_readiness_needs_a_healthy_worker_of_every_role(started):
    fake = FakeWorker(lambda h, path, body: h.reply(200, {}))
    started(fake)
    down = f"http://127.0.0.1:{free_port()}"
    plain = RouterProcess("--worker-urls", down, "--worker-startup-timeout-secs", "1")
    started(plain)
    assert plain.get("/liveness").status_code == 200
    refused = plain.get("/readiness")
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "not_ready"
    assert plain.post("/workers", {"url": fake.url}).status_code in (200, 201)
    plain.wait_for(lambda: plain.get("/readiness").status_code == 200, what="readiness with a healthy worker")

    # PD: a healthy prefill (its bootstrap server answering) is not enough without a decode.
    pd = RouterProcess("--pd-disaggregation", "--prefill", fake.url, str(fake.port), "--decode", down,
                       "--worker-startup-timeout-secs", "1")
    started(pd)
    body = pd.get("/readiness")
    assert body.status_code == 503 and "decode" in body.json()["error"]["message"], body.text


def test_router_on_a_busy_port_exits_before_checking_any_worker(started):
    fake = FakeWorker(lambda h, path, body: h.reply(200, {}))
    started(fake)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        proc = subprocess.run([BIN, "router", "--port", str(busy.getsockname()[1]), "--worker-urls", fake.url],
                              capture_output=True, text=True, timeout=30)
    finally:
        busy.close()
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "worker ready" not in output and not fake.received("/health", method="GET"), output


# 6. Draining a decode instance under load loses no request.

def test_draining_one_of_two_decodes_under_load_fails_no_request(started):
    bootstrap_port = free_port()
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port))
    started(prefill)
    decodes = [Server(*MODEL, "--disaggregation-mode", "decode") for _ in range(2)]
    for decode in decodes:
        started(decode)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(bootstrap_port),
                           "--decode", decodes[0].url, "--decode", decodes[1].url, "--policy", "round_robin",
                           "--health-check-interval-secs", "1", "--retry-initial-backoff-ms", "1")
    started(router)
    stop = threading.Event()
    results = []

    def client(index):
        i = 0
        while not stop.is_set():
            response = requests.post(router.url + "/generate", json={"text": f"load {index} {i}", "sampling_params": {**SHORT, "max_new_tokens": 12}}, timeout=60)
            results.append((response.status_code, response.text[:200]))
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        drained = decodes[0].post("/drain")
        assert drained.status_code == 200 and drained.json()["status"] == "draining"
        assert decodes[0].get("/readiness").status_code == 503 and decodes[0].get("/health").status_code == 503
        assert decodes[0].get("/liveness").status_code == 200
        router.wait_for(lambda: not router.workers()[decodes[0].url]["healthy"], timeout=15, what="the router to stop using the drained decode")
        served_before = decodes[0].state("num_running_reqs")
        count_then = len(results)
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    assert len(results) > count_then > 0
    # The drained decode finished what it had and took nothing new.
    assert served_before == 0 or decodes[0].state("num_running_reqs") == 0
    direct = decodes[0].post("/generate", {"text": "new", "sampling_params": SHORT, "bootstrap_host": "127.0.0.1",
                                           "bootstrap_port": bootstrap_port, "bootstrap_room": 7})
    assert direct.status_code == 503 and direct.headers.get("Retry-After")
    for server in [prefill, *decodes]:
        server.assert_pool_whole()


# 7 (in part). The bootstrap server takes only ranks inside their group sizes.

@pytest.mark.parametrize("ranks", [{"tp_rank": -1}, {"tp_rank": 2, "tp_size": 2}, {"tp_size": 2 ** 62}, {"dp_size": 0},
                                   {"engine_rank": True}, {"pp_rank": 1.5, "pp_size": 2}])
def test_bootstrap_registration_refuses_impossible_ranks(ranks, started):
    bootstrap_port = free_port()
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port))
    started(prefill)
    url = f"http://127.0.0.1:{bootstrap_port}/route"
    lookup = url + "?engine_rank=0&target_dp_group=0"
    good = requests.get(lookup, timeout=10).json()
    route = {"rank_ip": "127.0.0.1", "rank_port": 1, **{k: good[k] for k in ("page_size", "num_layers", "kv_width", "kv_dtype", "model", "transfer_backend")}}
    refused = requests.put(url, json={**route, **ranks}, timeout=10)
    assert refused.status_code == 400, refused.text
    # The real rank 0 is untouched.
    assert requests.get(lookup, timeout=10).json()["rank_port"] == good["rank_port"]


# 7. The shared PD key: only instances that hold it exchange KV, register ranks or answer lookups.

KEY = "test deployment secret, 32 bytes!"
OTHER_KEY = "another deployment's secret key.."


def tag(key, purpose, *parts):
    """ChannelKey.tag: HMAC-SHA256 over the purpose and each part, every one prefixed by its u64 length."""
    mac = hmac.new(key.encode(), digestmod=hashlib.sha256)
    for part in (purpose.encode(), *parts):
        mac.update(struct.pack("<Q", len(part)) + part)
    return mac.hexdigest()


def keyed(key):
    return {"PDSERVE_DISAGGREGATION_AUTH_KEY": key} if key else {}


def pd_generate(pd, prompt, room=None, decode_url=None):
    body = {"input_ids": prompt, "sampling_params": {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}}
    body = pd.bootstrap(body)
    if room is not None:
        body["bootstrap_room"] = room
    return pd.post("/generate", body) if decode_url is None else (requests.post(decode_url + "/generate", json=body, timeout=60), None)


def test_a_keyed_pair_serves_and_its_bootstrap_server_signs_and_checks(started):
    pd = PDPair(env=keyed(KEY))
    started(pd)
    ref = reference("qwen2-fp32")
    decode, prefill = pd_generate(pd, ref["prompts"][13])
    assert decode.status_code == 200 and prefill.status_code == 200, decode.text
    assert decode.json()["output_ids"] == ref["greedy"][13][:12]
    base = f"http://127.0.0.1:{pd.bootstrap_port}"
    # A lookup with a nonce is answered with a tag over the nonce, target, status and body.
    nonce = bytes(range(16))
    target = "/route?engine_rank=0&target_dp_group=0"
    answer = requests.get(base + target, headers={"X-PDServe-Nonce": nonce.hex()}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["X-PDServe-Signature"] == tag(KEY, "bootstrap reply", nonce, target.encode(), b"200", answer.content)
    # Registrations need a fresh tag under the key.
    route = {"rank_ip": "127.0.0.1", "rank_port": 1, **{k: answer.json()[k] for k in ("page_size", "num_layers", "kv_width", "kv_dtype", "model", "transfer_backend")}}
    body = json.dumps(route).encode()
    now = str(int(time.time()))
    for signature, why in [(None, "needs"), (now + "." + tag(OTHER_KEY, "bootstrap registration", now.encode(), body), "does not match"),
                           (str(int(time.time()) - 3600) + "." + tag(KEY, "bootstrap registration", str(int(time.time()) - 3600).encode(), body), "old")]:
        headers = {"Content-Type": "application/json", **({"X-PDServe-Signature": signature} if signature else {})}
        refused = requests.put(base + "/route", data=body, headers=headers, timeout=10)
        assert refused.status_code == 401 and why in refused.json()["error"]["message"], refused.text
    # Rank 0 still points at the real transfer port: the next request is served.
    assert requests.get(base + target, timeout=10).json()["rank_port"] != 1
    decode, _ = pd_generate(pd, ref["prompts"][2])
    assert decode.json()["output_ids"] == ref["greedy"][2][:12]
    signature = now + "." + tag(KEY, "bootstrap registration", now.encode(), body)
    accepted = requests.put(base + "/route", data=body, headers={"Content-Type": "application/json", "X-PDServe-Signature": signature}, timeout=10)
    assert accepted.status_code == 200, accepted.text
    pd.assert_pools_whole()


@pytest.mark.parametrize("prefill_key,decode_key", [(KEY, None), (None, KEY), (KEY, OTHER_KEY)],
                         ids=["prefill-only", "decode-only", "different"])
def test_instances_whose_keys_differ_never_exchange_kv(prefill_key, decode_key, started):
    bootstrap_port = free_port()
    timeouts = {"PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "2", "PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "10"}
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port),
                     env=timeouts | keyed(prefill_key))
    started(prefill)
    decode = Server(*MODEL, "--disaggregation-mode", "decode", env=timeouts | keyed(decode_key))
    started(decode)
    body = {"input_ids": [5] * 40, "sampling_params": SHORT, "bootstrap_host": "127.0.0.1", "bootstrap_port": bootstrap_port,
            "bootstrap_room": 12345}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        prefill_half = pool.submit(requests.post, prefill.url + "/generate", json=body, timeout=60)
        decode_half = requests.post(decode.url + "/generate", json=body, timeout=60)
    assert decode_half.status_code == 502, decode_half.text
    assert "--disaggregation-auth-key" in decode_half.json()["error"]["message"]
    assert prefill_half.result().status_code == 504
    prefill.assert_pool_whole()
    decode.assert_pool_whole()


def test_a_keyed_decode_loads_nothing_from_a_listener_that_lacks_the_key(started):
    """bootstrap_host/port of any listener: a plain HTTP server, or a prefill without the key."""
    decode = Server(*MODEL, "--disaggregation-mode", "decode", env=keyed(KEY))
    started(decode)
    stranger = PDPair()
    started(stranger)
    for port in [stranger.prefill.port, stranger.bootstrap_port]:
        body = {"input_ids": [5] * 40, "sampling_params": SHORT, "bootstrap_host": "127.0.0.1", "bootstrap_port": port, "bootstrap_room": 7}
        answer = requests.post(decode.url + "/generate", json=body, timeout=60)
        assert answer.status_code == 502, answer.text
        assert "--disaggregation-auth-key" in answer.json()["error"]["message"] or "not a prefill bootstrap server" in answer.json()["error"]["message"]
    decode.assert_pool_whole()


# 3. The prefill's transfer port: a bounded number of connections, each with a bounded handshake.

def threads_of(server):
    status = open(f"/proc/{server.proc.pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def read_until_closed(sock):
    """Reads a connection to its end: b"" if it carried nothing, else the first frame's type."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return b"" if not data else wire.frame_type(data)


def test_the_transfer_port_bounds_connections_handshakes_and_unknown_rooms(started):
    pd = PDPair()
    started(pd)
    port = int(pd.prefill.get("/get_server_info").json()["disaggregation_transfer_port"])
    baseline = threads_of(pd.prefill)
    sockets = []
    try:
        for _ in range(300):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        # At most 64 handshakes are open: each new connection drops the oldest (closed,
        # perhaps after its challenge), so the newest 64 are the ones left waiting.
        for sock in sockets[:-64]:
            sock.settimeout(10)
            assert read_until_closed(sock) in (b"", wire.CHALLENGE), "an old handshake should have been dropped"
        # The dropped ones' threads end as their reads fail.
        wait_until(lambda: threads_of(pd.prefill) <= baseline + 64 + 8, timeout=10, what="at most 64 handshake threads")
        for sock in sockets[-64:]:
            kind, _ = wire.read_frame(sock)
            assert kind == wire.CHALLENGE
        # None of them says hello: each is closed when its handshake time runs out.
        for sock in sockets[-64:]:
            sock.settimeout(20)
            assert sock.recv(1) == b""
        wait_until(lambda: threads_of(pd.prefill) <= baseline + 8, timeout=10, what="the link threads to end")
    finally:
        for sock in sockets:
            sock.close()
    # A paired decode that lists more pages than the pool has for a room not here yet is refused at once.
    route = requests.get(f"http://127.0.0.1:{pd.bootstrap_port}/route?engine_rank=0&target_dp_group=0", timeout=10).json()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        kind, _ = wire.read_frame(sock)
        assert kind == wire.CHALLENGE
        sock.sendall(wire.hello("decode", route["num_layers"], route["page_size"], route["kv_width"], route["model"]))
        kind, _ = wire.read_frame(sock)
        assert kind == wire.HELLO
        pages = 1_000_000
        sock.sendall(wire.frame(wire.TRANSFER_REQUEST, struct.pack("<QIII", 99, 16 * pages, 0, pages) + bytes(4 * pages)))
        kind, payload = wire.read_frame(sock)
        assert kind == wire.STATUS and payload[8] == 0 and b"more than any prompt" in payload, payload
    # Real requests are unaffected.
    ref = reference("qwen2-fp32")
    decode, _ = pd_generate(pd, ref["prompts"][9])
    assert decode.json()["output_ids"] == ref["greedy"][9][:12]
    pd.assert_pools_whole()


# 11. Bodies that are wrong get a 400 naming the field; sampling fields are implemented or refused.

@pytest.fixture(scope="module")
def eos_server():
    # One KV head; EOS 1 (config.json) and 0 (generation_config.json only).
    server = Server("--model-path", str(FIXTURES / "llama-mqa-eos-fp32"), "--served-model-name", "mqa")
    yield server
    server.stop()


WRONG_BODIES = [
    ("/generate", {"input_ids": "abc"}, "input_ids"),
    ("/generate", {"input_ids": ["abc"]}, "input_ids"),
    ("/generate", {"text": [1, 2]}, "text"),
    ("/generate", {"text": ["a", [1]]}, "text"),
    ("/generate", {"text": "a", "input_ids": [1, 2]}, "input_ids"),
    ("/generate", {"text": "a", "sampling_params": {"min_new_tokens": -1}}, "min_new_tokens"),
    ("/generate", {"text": "a", "sampling_params": {"min_new_tokens": 5, "max_new_tokens": 2}}, "min_new_tokens"),
    ("/generate", {"text": "a", "sampling_params": {"bogus": 1}}, "sampling_params.bogus"),
    ("/generate", {"text": "a", "sampling_params": {"stream_interval": 2}}, "stream_interval"),
    ("/generate", {"text": "a", "stream_interval": 2}, "stream_interval"),
    ("/generate", {"text": "a", "bogus": 1}, "bogus"),
    ("/generate", {"text": "a", "return_hidden_states": True}, "return_hidden_states"),
    ("/generate", {"text": "a", "log_metrics": "yes"}, "log_metrics"),
    ("/generate", {"text": "a", "sampling_params": {"logit_bias": {"abc": 1}}}, "logit_bias"),
    ("/generate", {"text": "a", "sampling_params": {"logit_bias": {"5": 1000}}}, "logit_bias"),
    ("/generate", {"text": "a", "sampling_params": {"logit_bias": {"999999": 1}}}, "logit_bias"),
    ("/v1/completions", {"model": "mqa", "prompt": "a", "bogus": 1}, "bogus"),
    ("/v1/completions", {"model": "mqa", "prompt": "a", "min_tokens": -1}, "min_tokens"),
    ("/v1/chat/completions", {"model": "mqa", "messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ("/v1/chat/completions", {"model": "mqa", "messages": [{"role": "user"}]}, "content"),
    ("/v1/chat/completions", {"model": "mqa", "messages": [{"role": "user", "content": None}]}, "content"),
    ("/v1/chat/completions", {"model": "mqa", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ("/v1/chat/completions", {"model": "mqa", "messages": [{"role": "user", "content": "x"}], "bogus": True}, "bogus"),
]


@pytest.mark.parametrize("path,body,named", WRONG_BODIES, ids=[f"{p}-{n}-{i}" for i, (p, _, n) in enumerate(WRONG_BODIES)])
def test_a_wrong_body_is_a_400_that_names_the_field(request, path, body, named):
    # The MQA fixture has no chat template; chat bodies go to the Qwen fixture, which has one.
    server = request.getfixturevalue("qwen_server" if "chat" in path else "eos_server")
    if "chat" in path:
        body = {**body, "model": "qwen-tiny"}
    response = server.post(path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert named in error["message"] or named in (error["param"] or ""), error
    server.assert_pool_whole()


def test_fields_filled_in_with_their_defaults_are_accepted(qwen_server):
    # What smg (sglang-router) sends on every request: features off, logging flags on.
    smg = {"model": None, "return_text_in_logprobs": False, "stream": False, "log_metrics": True, "return_hidden_states": False,
           "background": False, "no_logs": False, "return_bytes": False, "return_entropy": False}
    assert qwen_server.post("/generate", {"text": "a", "sampling_params": {"max_new_tokens": 2}, **smg}).status_code == 200
    chat = {"messages": [{"role": "user", "content": "hi"}], "model": "qwen-tiny", "logprobs": False, "max_completion_tokens": 2,
            "no_stop_trim": False, "ignore_eos": False, "continue_final_message": False, "skip_special_tokens": True,
            "separate_reasoning": True, "stream_reasoning": True, "return_hidden_states": False, "response_format": {"type": "text"},
            "tool_choice": "none", "parallel_tool_calls": True, "user": "u-1"}
    assert qwen_server.post("/v1/chat/completions", chat).status_code == 200
    completions = {"model": "qwen-tiny", "prompt": ["a", "b"], "max_tokens": 2, "echo": False, "no_stop_trim": False,
                   "return_hidden_states": False, "stream_options": None}
    assert qwen_server.post("/v1/completions", completions).status_code == 200


def generate_ids(server, prompt, **sampling):
    response = server.post("/generate", {"input_ids": prompt, "sampling_params": {"temperature": 0, "max_new_tokens": 12, **sampling}})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_tiny_temperature_is_greedy(eos_server):
    prompt = reference_prompt(2)
    greedy = generate_ids(eos_server, prompt, ignore_eos=True)["output_ids"]
    for temperature in (1e-38, 1e-6):
        assert generate_ids(eos_server, prompt, ignore_eos=True, temperature=temperature)["output_ids"] == greedy


def json_reference():
    return json.loads((FIXTURES / "llama-mqa-eos-fp32" / "reference.json").read_text())


def reference_prompt(index):
    return json_reference()["prompts"][index]


def test_eos_from_generation_config_and_min_new_tokens(eos_server):
    reference = json_reference()
    for index in (1, 2):  # stops at EOS 1 and at EOS 0 (listed only in generation_config.json)
        expected = reference["greedy_eos"][index]
        reply = generate_ids(eos_server, reference["prompts"][index])
        assert reply["output_ids"] == expected and reply["meta_info"]["finish_reason"]["type"] == "stop"
        # min_new_tokens holds EOS back: at least that many tokens, none of them an EOS before the minimum.
        held = generate_ids(eos_server, reference["prompts"][index], min_new_tokens=len(expected) + 3)["output_ids"]
        assert len(held) >= len(expected) + 3
        assert not set(held[:len(expected) + 3]) & {0, 1}
        assert held[:len(expected) - 1] == expected[:-1]
    # min_tokens is the OpenAI-style spelling.
    completion = eos_server.post("/v1/completions", {"model": "mqa", "prompt": reference["prompts"][1], "max_tokens": 12,
                                                     "temperature": 0, "min_tokens": 6}).json()
    assert completion["usage"]["completion_tokens"] >= 6


def test_logit_bias_steers_sampling_but_not_the_reported_logprobs(eos_server):
    prompt = reference_prompt(3)
    reply = eos_server.post("/generate", {"input_ids": prompt, "return_logprob": True, "sampling_params": {
        "temperature": 0, "max_new_tokens": 4, "ignore_eos": True, "logit_bias": {"77": 100}}}).json()
    assert reply["output_ids"] == [77, 77, 77, 77]
    plain = eos_server.post("/generate", {"input_ids": prompt, "return_logprob": True, "sampling_params": {
        "temperature": 0, "max_new_tokens": 1, "ignore_eos": True, "logit_bias": {"77": -100}}}).json()
    assert plain["output_ids"] != [77]
    # Logprobs are the model's: a forced token is not reported as certain.
    assert reply["meta_info"]["output_token_logprobs"][0][0] < -0.01


def test_no_stop_trim_keeps_the_stop_string(qwen_server):
    body = {"text": "The capital of France is", "sampling_params": {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}}
    full = qwen_server.post("/generate", body).json()["text"]
    # A three-character stop string whose first occurrence is well inside the text.
    at = next(k for k in range(3, len(full) - 3) if full.index(full[k:k + 3]) == k and full[k:k + 3].strip())
    stop = full[at:at + 3]
    trimmed = qwen_server.post("/generate", {**body, "sampling_params": {**body["sampling_params"], "stop": stop}}).json()
    kept = qwen_server.post("/generate", {**body, "sampling_params": {**body["sampling_params"], "stop": stop, "no_stop_trim": True}}).json()
    assert trimmed["text"] == full[:at]
    assert kept["text"] == full[:at + 3]
    assert trimmed["meta_info"]["finish_reason"] == kept["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop}


def test_a_client_that_leaves_mid_body_is_logged_as_gone_not_as_too_large(qwen_server):
    sock = socket.create_connection(("127.0.0.1", qwen_server.port), timeout=10)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text\": ")
    sock.close()
    deadline = time.monotonic() + 10
    while "client_disconnected" not in qwen_server.output():
        assert time.monotonic() < deadline, qwen_server.output()[-2000:]
        time.sleep(0.05)
    assert "exceeds" not in qwen_server.output()


# 2. Connections are bounded: idle and half-sent ones are closed, stalled bodies time out, a cap refuses cleanly.

def closed_within(sock, seconds):
    """True when the server closes `sock` (or answers and closes) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("command", ["serve", "router"])
def test_idle_and_half_sent_requests_are_closed_and_stalled_bodies_time_out(command, started):
    limits = ["--http-idle-timeout", "3", "--http-body-timeout", "1"]
    if command == "serve":
        target = Server(*MODEL, *limits)
    else:
        worker = FakeWorker(lambda h, path, body: h.reply(200, {}))
        started(worker)
        target = RouterProcess("--worker-urls", worker.url, *limits)
    started(target)
    idle = socket.create_connection(("127.0.0.1", target.port))
    half = socket.create_connection(("127.0.0.1", target.port))
    half.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-")
    assert closed_within(idle, 8) and closed_within(half, 8)
    for stalled in [b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\": ",
                    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7fffffff\r\n{\"te"]:
        sock = socket.create_connection(("127.0.0.1", target.port))
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\n" + stalled)
        started_at = time.monotonic()
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert b'"request_timeout"' in answer and time.monotonic() - started_at < 8
        sock.close()
    # A chunk size past 2^64 is a protocol error, not a wait.
    sock = socket.create_connection(("127.0.0.1", target.port))
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc")
    assert closed_within(sock, 8)
    assert target.get("/health").status_code == 200


@pytest.mark.parametrize("command", ["serve", "router"])
def test_connections_beyond_the_limit_get_a_clean_503(command, started):
    if command == "serve":
        target = Server(*MODEL, "--max-connections", "4")
    else:
        worker = FakeWorker(lambda h, path, body: h.reply(200, {}))
        started(worker)
        target = RouterProcess("--worker-urls", worker.url, "--max-connections", "4")
    started(target)
    held = [socket.create_connection(("127.0.0.1", target.port)) for _ in range(4)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", target.port))
    extra.sendall(b"GET /get_load HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = read_response(extra, 5)
    assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer and b"Retry-After: 1" in answer, answer[:300]
    # Probes are still answered: an orchestrator must not restart an instance because clients hold every connection.
    for probe in ["/health", "/liveness", "/readiness?verbose=1"]:
        extra = socket.create_connection(("127.0.0.1", target.port))
        extra.sendall(f"GET {probe} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = read_response(extra, 5)
        assert answer.startswith(b"HTTP/1.1 200"), (probe, answer[:300])
        extra.close()
    # One past the limit that sends nothing is closed within the grace second, not held to the idle timeout.
    silent = socket.create_connection(("127.0.0.1", target.port))
    assert closed_within(silent, 5)
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            if requests.get(target.url + "/health", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the server did not accept again once connections closed"
        time.sleep(0.1)


@pytest.mark.parametrize("command", ["serve", "router"])
@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
                                     b"POST /generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
def test_requests_the_parser_cannot_read_get_a_json_400(command, garbage, started):
    if command == "serve":
        target = Server(*MODEL)
    else:
        worker = FakeWorker(lambda h, path, body: h.reply(200, {}))
        started(worker)
        target = RouterProcess("--worker-urls", worker.url)
    started(target)
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(garbage)
        answer = read_response(sock, 10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, answer[:300]
    # A broken chunk arrives while the request is being read: the handler's body error says so.
    message = json.loads(body)["error"]["message"]
    assert "not valid HTTP/1.1" in message or (b"chunked" in garbage and "chunk" in message), message
    assert requests.get(target.url + "/health", timeout=5).status_code == 200
