"""`pdserve router --pd-disaggregation`.

Real PD needs prefill and decode instances; until `pdserve serve
--disaggregation-mode prefill|decode` starts, the end-to-end PD tests skip
and say why. What the router itself does in PD mode is checked with
stand-ins: a real unified instance as the decode half (it ignores the
bootstrap fields) and a scripted fake as the prefill half (it records what
it got, and answers late or fails on demand). That proves the fan-out, the
injected fields, the ordering and the orphan aborts — not PD itself.
"""
import json
import socket
import threading
import time

import pytest
import requests

from conftest import FIXTURES, Server, assert_raw_and_escaped_bom_agree
from router_helpers import FakeWorker, RouterProcess, free_port, health_only, metric, pd_mode_refusal

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
GREEDY = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}
PREFILL_LOGPROBS = [[None, 900, None], [-0.25, 901, None]]
PREFILL_PHASES = {"prefill_bootstrap_wait": 0.25, "kv_transfer": 0.5, "kv_transfer_bytes": 4096}


_refusal = pd_mode_refusal()
needs_pd_instances = pytest.mark.skipif(_refusal is not None, reason=f"PD instances are not available: {_refusal}")


class FakePrefill:
    """Answers /generate after `delay` seconds like a prefill (JSON or SSE), with fixed prompt logprobs and
    phases. A stream may take `tail` more seconds between its head and its end, or break off there."""

    def __init__(self, delay=0.0, status=200, tail=0.0, breaks=False):
        self.finished_at = []

        def script(handler, path, body):
            if path == "/health":
                return handler.reply(200, {})
            if path == "/abort_request":
                return handler.reply(200, {"aborted": 0})
            time.sleep(delay)
            if status != 200:
                self.finished_at.append(time.monotonic())
                return handler.reply(status, {"error": {"message": "prefill broke", "type": "internal_error", "code": status}})
            items = len(body["text"]) if isinstance(body.get("text"), list) else 1
            results = [{"text": "", "output_ids": [1], "meta_info": {"id": "p", "input_token_logprobs": PREFILL_LOGPROBS}}
                       for _ in range(items)]
            if body.get("stream"):
                handler.sse_head()
                time.sleep(tail)
                if breaks:
                    self.finished_at.append(time.monotonic())
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    return
                for i, r in enumerate(results):
                    final = {**r, "meta_info": {**r["meta_info"], "phases": PREFILL_PHASES}}
                    handler.sse_event({**final, "index": i} if items > 1 else final)
                self.finished_at.append(time.monotonic())
                handler.sse_end()
            else:
                self.finished_at.append(time.monotonic())
                handler.reply(200, results if items > 1 else results[0])

        self.fake = FakeWorker(script)
        self.bootstrap = FakeWorker(health_only)
        self.url = self.fake.url

    def stop(self):
        self.fake.stop()
        self.bootstrap.stop()


@pytest.fixture(scope="module")
def decode():
    server = Server(*MODEL)
    yield server
    server.stop()


def pd_router(prefill_url, bootstrap_port, decode_url, *extra):
    return RouterProcess("--pd-disaggregation", "--prefill", prefill_url, str(bootstrap_port), "--decode", decode_url,
                         "--policy", "round_robin", "--retry-initial-backoff-ms", "1", *extra)


def test_unified_generate_accepts_bootstrap_fields(decode):
    body = {"text": "hi", "sampling_params": GREEDY, "bootstrap_host": "127.0.0.1", "bootstrap_port": None, "bootstrap_room": 12345, "rid": "r-1"}
    response = decode.post("/generate", body)
    assert response.status_code == 200, response.text
    assert response.json()["meta_info"]["id"] == "r-1"


def test_pd_fan_out_sends_the_same_body_with_bootstrap_fields(decode, started):
    prefill = FakePrefill(delay=0.6)
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url)
    started(router)
    body = {"text": "The capital of France is", "sampling_params": GREEDY}
    sent_at = time.monotonic()
    response = router.post("/generate", body)
    answered_at = time.monotonic()
    assert response.status_code == 200, response.text
    direct = decode.post("/generate", body).json()
    assert response.json()["output_ids"] == direct["output_ids"] and response.json()["text"] == direct["text"]

    [got] = prefill.fake.received("/generate")
    assert got["text"] == body["text"] and got["sampling_params"] == GREEDY
    assert got["bootstrap_host"] == "127.0.0.1" and got["bootstrap_port"] == prefill.bootstrap.port
    assert isinstance(got["bootstrap_room"], int) and 0 <= got["bootstrap_room"] < 2 ** 63
    assert isinstance(got["rid"], str) and got["rid"]
    # The decode's answer is held until the prefill's body was read in full.
    assert answered_at >= prefill.finished_at[0] and answered_at - sent_at >= 0.6

    # OpenAI bodies get the same fields (and a rid); the instance's OpenAI handlers ignore them.
    chat = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 6, "temperature": 0}
    response = router.post("/v1/chat/completions", chat)
    assert response.status_code == 200, response.text
    assert response.json()["choices"] == decode.post("/v1/chat/completions", chat).json()["choices"]
    got = prefill.fake.received("/v1/chat/completions")[0]
    assert got["messages"] == chat["messages"] and isinstance(got["rid"], str) and isinstance(got["bootstrap_room"], int)


def test_pd_batch_gets_one_bootstrap_entry_per_item_and_logprobs_merge(decode, started):
    prefill = FakePrefill()
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url)
    started(router)
    body = {"text": ["first prompt", "second prompt"], "sampling_params": GREEDY, "return_logprob": True}
    response = router.post("/generate", body)
    assert response.status_code == 200, response.text
    [got] = prefill.fake.received("/generate")
    assert got["bootstrap_host"] == ["127.0.0.1"] * 2 and got["bootstrap_port"] == [prefill.bootstrap.port] * 2
    assert len(set(got["bootstrap_room"])) == 2 and len(got["rid"]) == 2
    direct = decode.post("/generate", body).json()
    for merged, plain in zip(response.json(), direct):
        assert merged["meta_info"]["input_token_logprobs"] == PREFILL_LOGPROBS + plain["meta_info"]["input_token_logprobs"]
        assert merged["output_ids"] == plain["output_ids"]


def streamed_events(url, body):
    """(seconds until the first event, every event) of a stream."""
    sent = time.monotonic()
    with requests.post(url + "/generate", json=body, stream=True, timeout=60) as response:
        assert response.status_code == 200, response.text
        events, first_at = [], None
        for line in response.iter_lines():
            if line:
                first_at = first_at or time.monotonic()
                events.append(line)
    return first_at - sent, events


def test_pd_stream_is_relayed_before_the_prefill_ends_and_gets_its_phases_last(decode, started):
    prefill = FakePrefill(tail=1.0)
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url)
    started(router)
    sent = time.monotonic()
    first_after, events = streamed_events(router.url, {"text": "Stream at once", "sampling_params": GREEDY, "stream": True})
    # The decode's tokens flowed while the prefill was still answering; its phases joined the final event.
    assert sent + first_after < prefill.finished_at[0] and first_after < 0.8
    assert events[-1] == b"data: [DONE]"
    final = json.loads(events[-2][len(b"data: "):])
    phases = final["meta_info"]["phases"]
    assert {k: phases[k] for k in PREFILL_PHASES} == PREFILL_PHASES and "decode" in phases
    assert all("phases" not in json.loads(e[len(b"data: "):])["meta_info"] for e in events[:-2])


def test_pd_prefill_breaking_off_after_the_stream_started_ends_it_with_an_error_event(decode, started):
    prefill = FakePrefill(tail=0.5, breaks=True)
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url)
    started(router)
    _, events = streamed_events(router.url, {"text": "Then the prefill dies", "sampling_params": GREEDY, "stream": True})
    assert events[-1] == b"data: [DONE]"
    error = json.loads(events[-2][len(b"data: "):])["error"]
    assert error["code"] in (502, 504) and prefill.url in error["message"], error
    assert json.loads(events[0][len(b"data: "):])["text"] is not None  # tokens came first
    # A second request still finds the pair (the break counts against the prefill, not the decode).
    assert router.workers()[decode.url]["healthy"] is True


def test_pd_stream_starts_after_the_prefill_and_carries_its_logprobs_first(decode, started):
    prefill = FakePrefill(delay=0.5)
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url, "--prefill-policy", "random", "--decode-policy", "power_of_two")
    started(router)
    body = {"text": "Stream through PD", "sampling_params": GREEDY, "stream": True, "return_logprob": True}
    with requests.post(router.url + "/generate", json=body, stream=True, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        first_at = time.monotonic()
        rest = [line for line in lines if line]
    assert first_at >= prefill.finished_at[0]
    first_event = json.loads(first[len(b"data: "):])
    assert first_event["meta_info"]["input_token_logprobs"][:2] == PREFILL_LOGPROBS
    assert rest[-1] == b"data: [DONE]"
    later = json.loads(rest[-2][len(b"data: "):])
    assert later["meta_info"]["input_token_logprobs"][:2] != PREFILL_LOGPROBS  # only the first chunk is merged


def test_pd_prefill_failure_aborts_the_decode_half_and_retries_on_a_new_pair(started):
    prefill = FakePrefill(delay=0.3, status=500)
    started(prefill)
    good = FakePrefill()
    started(good)
    decode_aborts = []

    def waiting_decode(handler, path, body):
        if path == "/health":
            return handler.reply(200, {})
        if path == "/abort_request":
            decode_aborts.append(body["rid"])
            return handler.reply(200, {"aborted": 1})
        # A decode waits for the KV cache; answer once the good prefill's pair completes.
        time.sleep(0.8)
        handler.reply(200, {"text": "decoded", "output_ids": [7], "meta_info": {"id": body["rid"]}})

    decode = FakeWorker(waiting_decode)
    started(decode)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(prefill.bootstrap.port),
                           "--prefill", good.url, str(good.bootstrap.port), "--decode", decode.url,
                           "--prefill-policy", "round_robin", "--retry-initial-backoff-ms", "1", "--cb-failure-threshold", "1")
    started(router)
    response = router.post("/generate", {"text": "retry me", "rid": "client-rid-1"})
    assert response.status_code == 200 and response.json()["text"] == "decoded", response.text
    # The first pair's decode was told to stop by the client's rid.
    deadline = time.monotonic() + 5
    while not decode_aborts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert decode_aborts == ["client-rid-1"]
    assert len(prefill.fake.received("/generate")) == 1 and len(good.fake.received("/generate")) == 1
    assert all(b["rid"] == "client-rid-1" for b in decode.received("/generate"))
    assert router.workers()[prefill.url]["circuit_state"] == "open"
    metrics = router.get("/metrics").text
    assert metric(metrics, "pdserve_router:orphan_aborts_total", role="decode") == 1
    assert metric(metrics, "pdserve_router:retries_total", route="/generate") == 1


def test_pd_orphan_abort_stops_a_real_instance(started):
    # A non-streamed request keeps running on an instance after its connection
    # closes (the HTTP server does not read while it computes), so only the
    # router's /abort_request by rid can stop the decode half here.
    decode = Server(*MODEL, "--context-length", "20000")
    started(decode)
    prefill = FakePrefill(delay=0.5, status=500)
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url, "--retry-max-retries", "1")
    started(router)
    long_run = {"text": "keep going", "sampling_params": {"max_new_tokens": 15000, "ignore_eos": True, "temperature": 0}}
    response = router.post("/generate", long_run)
    assert response.status_code == 500 and response.json()["error"]["message"] == "prefill broke"
    deadline = time.monotonic() + 5
    while decode.get("/get_load").json()[0]["num_reqs"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert decode.get("/get_load").json()[0]["num_reqs"] == 0, "the decode half kept running after its prefill failed"
    decode.assert_pool_whole()


def test_pd_decode_failure_aborts_the_waiting_prefill(started):
    prefill_aborts = []
    release = threading.Event()

    def waiting_prefill(handler, path, body):
        if path == "/health":
            return handler.reply(200, {})
        if path == "/abort_request":
            prefill_aborts.append(body["rid"])
            release.set()
            return handler.reply(200, {"aborted": 1})
        release.wait(10)  # a prefill waits for its decode to register
        handler.reply(500, {"error": {"message": "aborted", "type": "internal_error", "code": 500}})

    prefill = FakeWorker(waiting_prefill)
    bootstrap = FakeWorker(health_only)
    decode = FakeWorker(lambda h, path, body: h.reply(200, {}) if path == "/health"
                        else h.reply(503, {"error": {"message": "decode is out of KV pages", "type": "server_overloaded", "code": 503}}))
    for thing in (prefill, bootstrap, decode):
        started(thing)
    router = pd_router(prefill.url, bootstrap.port, decode.url, "--retry-max-retries", "1")
    started(router)
    started_at = time.monotonic()
    response = router.post("/generate", {"text": "x"})
    assert response.status_code == 503 and response.json()["error"]["message"] == "decode is out of KV pages"
    assert time.monotonic() - started_at < 5  # not held until the prefill gives up
    # Both halves were sent at once. Either the router cancelled its prefill
    # request before it left (the prefill never saw it), or the prefill has
    # it and must be told to abort that very rid.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (prefill.received("/generate") and prefill_aborts):
        time.sleep(0.05)
    sent = prefill.received("/generate")
    if sent:
        assert prefill_aborts == [sent[0]["rid"]]


def test_pd_client_error_is_returned_and_opens_no_circuit(decode, started):
    prefill = FakePrefill()
    started(prefill)
    router = pd_router(prefill.url, prefill.bootstrap.port, decode.url, "--cb-failure-threshold", "1")
    started(router)
    for _ in range(3):
        response = router.post("/generate", {"text": "x", "sampling_params": {"max_new_tokens": -2}})
        assert response.status_code == 400 and "max_new_tokens" in response.json()["error"]["message"]
    assert all(w["circuit_state"] == "closed" for w in router.workers().values())
    assert router.post("/generate", "not an object").status_code == 400


def test_prefill_is_ready_only_when_its_bootstrap_server_answers(decode, started):
    prefill = FakeWorker(lambda h, path, body: h.reply(200, {}))
    started(prefill)
    bootstrap_port = free_port()
    router = pd_router(prefill.url, bootstrap_port, decode.url, "--worker-startup-timeout-secs", "1", "--worker-startup-check-interval", "0.2")
    started(router)
    state = router.workers()[prefill.url]
    assert state["healthy"] is False and "bootstrap" in state["last_error"] and state["bootstrap_port"] == bootstrap_port
    response = router.post("/generate", {"text": "x"})
    assert response.status_code == 503 and response.json()["error"]["type"] == "no_available_workers"
    assert prefill.received("/generate") == []
    bootstrap = FakeWorker(health_only, port=bootstrap_port)
    started(bootstrap)
    router.wait_for(lambda: router.workers()[prefill.url]["healthy"], what="prefill ready after its bootstrap server came up")


def test_pd_workers_api_takes_roles(decode, started):
    prefill = FakePrefill()
    started(prefill)
    router = RouterProcess("--pd-disaggregation", "--decode", decode.url)
    started(router)
    assert router.post("/generate", {"text": "x"}).json()["error"]["type"] == "no_available_workers"
    added = router.post("/workers", {"url": prefill.url, "mode": "prefill", "bootstrap_port": prefill.bootstrap.port})
    assert added.status_code == 201 and added.json()["healthy"] is True, added.text
    assert router.post("/workers", {"url": "http://127.0.0.1:9", "mode": "regular"}).status_code == 400
    assert router.post("/generate", {"text": "now paired", "sampling_params": GREEDY}).status_code == 200


@needs_pd_instances
def test_real_pd_outputs_equal_unified(decode, started):
    bootstrap_port = free_port()
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port),
                     "--disaggregation-transfer-backend", "tcp")
    started(prefill)
    decode_pd = Server(*MODEL, "--disaggregation-mode", "decode", "--disaggregation-transfer-backend", "tcp")
    started(decode_pd)
    router = pd_router(prefill.url, bootstrap_port, decode_pd.url)
    started(router)
    for body in [{"text": "The capital of France is", "sampling_params": GREEDY},
                 {"text": ["one", "two"], "sampling_params": GREEDY, "return_logprob": True}]:
        via_pd = router.post("/generate", body)
        assert via_pd.status_code == 200, via_pd.text
        unified = decode.post("/generate", body).json()
        got = via_pd.json() if isinstance(via_pd.json(), list) else [via_pd.json()]
        want = unified if isinstance(unified, list) else [unified]
        assert [g["output_ids"] for g in got] == [w["output_ids"] for w in want]
    # The router parses and rewrites every PD body: a raw U+FEFF must survive it.
    assert_raw_and_escaped_bom_agree(router.url)
    # Information comes from a prefill, as sglang-router asks its first prefill.
    for path in ["/get_model_info", "/get_server_info"]:
        assert router.get(path).json()["disaggregation_mode"] == "prefill"
    assert router.get("/v1/models").json()["data"][0]["id"] == "qwen-tiny"
