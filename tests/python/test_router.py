"""`pdserve router` in plain load-balancing mode in front of real
`pdserve serve` instances (and scripted fakes where a failure must be
produced on demand): outputs, policies, the /workers API, retries, the
circuit breaker, streaming, errors."""
import json
import signal
import socket
import time

import pytest
import requests

from conftest import FIXTURES, Server
from router_helpers import FakeWorker, RouterProcess, metric, served_generate_count

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
GREEDY = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def workers():
    pair = [Server(*MODEL), Server(*MODEL)]
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture
def router_for(workers):
    started = []

    def start(*args):
        router = RouterProcess(*args)
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


def plain(workers, policy="round_robin", *extra):
    return ["--worker-urls", *(w.url for w in workers), "--policy", policy, "--health-check-interval-secs", "1", *extra]


def strip_volatile(obj):
    """Drops ids, timestamps and latencies, which differ between any two calls."""
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in {"id", "created", "e2e_latency", "phases"}}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


def error_of(response):
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    assert body["error"]["code"] == response.status_code
    return body["error"]


def test_outputs_equal_calling_an_instance_directly(workers, router_for):
    router = router_for(*plain(workers))
    direct = workers[0]
    requests_ = [
        ("/generate", {"text": "The capital of France is", "sampling_params": GREEDY}),
        ("/generate", {"input_ids": [[5, 6, 7], [8, 9]], "sampling_params": GREEDY}),
        ("/generate", {"text": "logprobs", "sampling_params": GREEDY, "return_logprob": True, "top_logprobs_num": 2}),
        ("/v1/completions", {"model": "qwen-tiny", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}),
        ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 8, "temperature": 0}),
    ]
    for path, body in requests_:
        for _ in range(2):  # both workers under round_robin
            via_router = router.post(path, body)
            assert via_router.status_code == 200, via_router.text
            assert strip_volatile(via_router.json()) == strip_volatile(direct.post(path, body).json()), path


def test_round_robin_alternates(workers, router_for):
    router = router_for(*plain(workers, "round_robin"))
    before = [served_generate_count(w) for w in workers]
    seen = []
    for i in range(6):
        assert router.post("/generate", {"text": f"rr {i}", "sampling_params": GREEDY}).status_code == 200
        after = [served_generate_count(w) for w in workers]
        seen.append(0 if after[0] > before[0] else 1)
        before = after
    assert seen in ([0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0]), seen


@pytest.mark.parametrize("policy", ["random", "power_of_two", "cache_aware"])
def test_policies_spread_load(workers, router_for, policy):
    router = router_for(*plain(workers, policy))
    before = [served_generate_count(w) for w in workers]
    for i in range(24):
        # Unrelated prompts: cache_aware sends each new one where less is cached.
        text = f"{i} " + chr(ord("a") + i % 26) * 40
        assert router.post("/generate", {"text": text, "sampling_params": {"max_new_tokens": 1}}).status_code == 200
    counts = [served_generate_count(w) - b for w, b in zip(workers, before)]
    assert sum(counts) == 24 and min(counts) >= 2, counts


def test_cache_aware_keeps_a_shared_prefix_on_one_worker(workers, router_for):
    router = router_for(*plain(workers, "cache_aware"))
    system = "You are a terse assistant who answers in one word. " * 4
    before = [served_generate_count(w) for w in workers]
    for i in range(8):
        assert router.post("/generate", {"text": system + f"Question {i}?", "sampling_params": {"max_new_tokens": 1}}).status_code == 200
    counts = [served_generate_count(w) - b for w, b in zip(workers, before)]
    assert sorted(counts) == [0, 8], counts


def test_workers_can_be_added_and_removed_at_run_time(workers, router_for):
    router = router_for("--worker-urls", workers[0].url, "--policy", "round_robin")
    assert list(router.workers()) == [workers[0].url]

    added = router.post("/workers", {"url": workers[1].url, "mode": "regular"})
    assert added.status_code == 201, added.text
    assert added.json()["healthy"] is True and added.json()["url"] == workers[1].url
    assert router.post("/workers", {"url": workers[1].url}).status_code == 409
    assert "plain mode" in error_of(router.post("/workers", {"url": "http://127.0.0.1:1", "mode": "prefill"}))["message"]
    assert router.post("/workers", {"mode": "regular"}).status_code == 400

    before = served_generate_count(workers[1])
    for i in range(4):
        assert router.post("/generate", {"text": f"add {i}", "sampling_params": {"max_new_tokens": 1}}).status_code == 200
    assert served_generate_count(workers[1]) - before == 2

    removed = requests.delete(router.url + "/workers", params={"url": workers[1].url}, timeout=10)
    assert removed.status_code == 200 and removed.json()["removed"] == workers[1].url
    before = served_generate_count(workers[1])
    for i in range(3):
        assert router.post("/generate", {"text": f"rm {i}", "sampling_params": {"max_new_tokens": 1}}).status_code == 200
    assert served_generate_count(workers[1]) == before
    gone = requests.delete(router.url + "/workers", json={"url": workers[1].url}, timeout=10)
    assert gone.status_code == 404 and error_of(gone)["type"] == "not_found"


def test_killed_worker_is_retried_around_and_marked_unhealthy(router_for):
    pair = [Server(*MODEL), Server(*MODEL)]
    try:
        router = router_for(*plain(pair, "round_robin", "--health-check-interval-secs", "30"))
        pair[1].proc.send_signal(signal.SIGKILL)
        pair[1].proc.wait(10)
        for i in range(6):
            response = router.post("/generate", {"text": f"still here {i}", "sampling_params": GREEDY})
            assert response.status_code == 200, response.text
        dead = router.workers()[pair[1].url]
        assert dead["healthy"] is False and dead["last_error"], dead
        assert router.workers()[pair[0].url]["healthy"] is True
        assert metric(router.get("/metrics").text, "pdserve_router:retries_total", route="/generate") >= 1
    finally:
        for server in pair:
            server.stop()


def test_client_errors_never_open_the_circuit(workers, router_for):
    router = router_for(*plain(workers[:1], "round_robin", "--cb-failure-threshold", "2"))
    for _ in range(6):
        response = router.post("/generate", {"text": "x", "sampling_params": {"max_new_tokens": -1}})
        assert response.status_code == 400 and "max_new_tokens" in error_of(response)["message"]
    state = router.workers()[workers[0].url]
    assert state["circuit_state"] == "closed" and state["consecutive_failures"] == 0
    assert router.post("/generate", {"text": "fine", "sampling_params": GREEDY}).status_code == 200


def test_server_errors_open_the_circuit_and_requests_go_elsewhere(workers, router_for):
    def broken(handler, path, body):
        if path == "/health":
            handler.reply(200, {})
        else:
            handler.reply(500, {"error": {"message": "boom", "type": "internal_error", "code": 500}})

    fake = FakeWorker(broken)
    try:
        router = router_for("--worker-urls", fake.url, workers[0].url, "--policy", "round_robin",
                            "--cb-failure-threshold", "2", "--cb-timeout-duration-secs", "60", "--retry-initial-backoff-ms", "1")
        for i in range(6):
            response = router.post("/generate", {"text": f"cb {i}", "sampling_params": GREEDY})
            assert response.status_code == 200, response.text
        assert router.workers()[fake.url]["circuit_state"] == "open"
        # Once open, the broken worker gets nothing more.
        seen = len(fake.received("/generate"))
        assert seen == 2
        for i in range(3):
            assert router.post("/generate", {"text": f"after {i}", "sampling_params": GREEDY}).status_code == 200
        assert len(fake.received("/generate")) == seen
        metrics = router.get("/metrics").text
        assert metric(metrics, "pdserve_router:worker_circuit_state", worker=fake.url) == 1
        assert metric(metrics, "pdserve_router:worker_requests_total", worker=fake.url, status="500") == 2
    finally:
        fake.stop()


def test_last_server_error_is_passed_on_when_every_attempt_fails(router_for):
    fake = FakeWorker(lambda h, path, body: h.reply(200, {}) if path == "/health"
                      else h.reply(503, {"error": {"message": "overloaded", "type": "server_overloaded", "code": 503}}))
    try:
        router = router_for("--worker-urls", fake.url, "--retry-max-retries", "3", "--retry-initial-backoff-ms", "1")
        response = router.post("/generate", {"text": "x"})
        assert response.status_code == 503 and error_of(response)["message"] == "overloaded"
        assert len(fake.received("/generate")) == 3
    finally:
        fake.stop()


def test_streaming_passes_through(workers, router_for):
    router = router_for(*plain(workers))
    body = {"text": "Stream me", "sampling_params": GREEDY, "stream": True}
    with requests.post(router.url + "/generate", json=body, stream=True, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == b"data: [DONE]" and len(events) >= 3
    final = json.loads(events[-2][len(b"data: "):])
    direct = workers[0].post("/generate", {**body, "stream": False}).json()
    assert final["output_ids"] == direct["output_ids"] and final["text"] == direct["text"]


def test_a_stream_that_breaks_ends_with_an_sse_error_event(router_for):
    def breaks(handler, path, body):
        if path == "/health":
            return handler.reply(200, {})
        handler.sse_head()
        handler.sse_event({"text": "partial", "meta_info": {}})
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(2)  # gone without the terminating chunk

    fake = FakeWorker(breaks)
    try:
        router = router_for("--worker-urls", fake.url)
        with requests.post(router.url + "/generate", json={"text": "x", "stream": True}, stream=True, timeout=30) as response:
            assert response.status_code == 200
            events = [line for line in response.iter_lines() if line]
        assert events[0].startswith(b"data: {") and b"partial" in events[0]
        error = json.loads(events[-2][len(b"data: "):])["error"]
        assert error["type"] == "upstream_error" and events[-1] == b"data: [DONE]"
    finally:
        fake.stop()


def test_errors_are_json(router_for):
    router = router_for("--api-key", "sesame")
    assert router.get("/health").status_code == 200  # no key needed
    assert error_of(router.post("/generate", {"text": "x"}))["type"] == "authentication_error"
    auth = {"Authorization": "Bearer sesame"}
    response = router.post("/generate", {"text": "x"}, headers=auth)
    assert response.status_code == 503 and error_of(response)["type"] == "no_available_workers"
    response = requests.get(router.url + "/nowhere", headers=auth, timeout=10)
    assert response.status_code == 404 and error_of(response)["type"] == "not_found"


def test_api_key_is_checked_and_the_clients_header_forwarded(router_for):
    fake = FakeWorker(lambda h, path, body: h.reply(200, {"text": "ok", "output_ids": [], "meta_info": {}}))
    try:
        router = router_for("--worker-urls", fake.url, "--api-key", "sesame")
        assert router.post("/generate", {"text": "x"}).status_code == 401
        assert router.post("/generate", {"text": "x"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert router.post("/generate", {"text": "x"}, headers={"Authorization": "Bearer sesame"}).status_code == 200
        assert fake.headers_of("/generate")[-1]["Authorization"] == "Bearer sesame"
    finally:
        fake.stop()


def test_information_endpoints(workers, router_for):
    router = router_for(*plain(workers))
    assert router.get("/v1/models").json()["data"][0]["id"] == "qwen-tiny"
    assert router.get("/get_model_info").json()["served_model_name"] == "qwen-tiny"
    assert "kv_pool" in router.get("/get_server_info").json()
    load = router.get("/get_load").json()
    assert sorted(rank["worker"] for rank in load) == sorted(w.url for w in workers) and all("num_tokens" in r for r in load)
    flushed = router.post("/flush_cache")
    assert flushed.status_code == 200 and sorted(flushed.json()["succeeded"]) == sorted(w.url for w in workers)
    assert router.get("/health_generate").status_code == 200
    assert router.post("/abort_request", {"rid": "nothing-by-this-name"}).status_code == 200
    router.post("/generate", {"text": "count me", "sampling_params": {"max_new_tokens": 1}})
    metrics = router.get("/metrics").text
    for name in ["pdserve_router:requests_total", "pdserve_router:request_duration_seconds_bucket", "pdserve_router:worker_requests_total",
                 "pdserve_router:worker_healthy", "pdserve_router:worker_circuit_state", "pdserve_router:worker_load"]:
        assert name in metrics
    assert metric(metrics, "pdserve_router:requests_total", route="/generate", status="200") >= 1


def test_a_streaming_client_that_leaves_aborts_the_request_on_the_worker(router_for):
    worker = Server(*MODEL, "--context-length", "20000")
    try:
        router = router_for("--worker-urls", worker.url)
        payload = json.dumps({"text": "go on", "stream": True,
                              "sampling_params": {"max_new_tokens": 19000, "ignore_eos": True, "temperature": 0}}).encode()
        sock = socket.create_connection(("127.0.0.1", router.port), timeout=30)
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        seen = b""
        while seen.count(b"data:") < 2:
            chunk = sock.recv(65536)
            assert chunk, "the router closed the stream early"
            seen += chunk
        sock.close()
        deadline = time.monotonic() + 10
        while worker.get("/get_load").json()[0]["num_reqs"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.get("/get_load").json()[0]["num_reqs"] == 0, "the request kept running after its client left"
        worker.assert_pool_whole()
    finally:
        worker.stop()


def test_command_line_explains_and_checks_its_flags():
    import subprocess

    from conftest import BIN
    text = subprocess.run([BIN, "router", "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag in ["--worker-urls", "--pd-disaggregation", "--prefill", "--decode", "--policy", "--prefill-policy", "--decode-policy",
                 "--api-key", "--log-level", "--health-check-interval-secs", "--request-timeout-secs", "--retry-max-retries",
                 "--max-retries", "--cb-failure-threshold", "--cache-threshold", "--balance-abs-threshold", "--balance-rel-threshold"]:
        assert flag in text, flag
    for bad in [["--prefill", "http://127.0.0.1:1"], ["--policy", "fastest"], ["--pd-disaggregation", "--worker-urls", "http://127.0.0.1:1"],
                ["--pd-disaggregation", "--prefill", "8998"], ["--worker-urls", "not a url"]]:
        proc = subprocess.run([BIN, "router", "--port", "0", *bad], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and "error" in (proc.stderr + proc.stdout).lower(), bad
