"""PD requests the server could not serve are errors, not 200s, and batched
inputs through PD get one room each.

- A decode request whose KV never comes (its prefill half is never sent)
  answers 504 `pd_timeout` JSON on every generation endpoint, streamed or
  not: nothing was sent yet, so a stream gets the status too. A failure
  after a stream started is one SSE error event, then `[DONE]`.
- A scalar `bootstrap_room` for N inputs means rooms room..room+N-1 on both
  halves (SGLang's rule), so a batch through PD equals unified outputs.
- Batched `/v1/completions` through `pdserve router` and the real
  sglang-router equal the unified server's, prompt by prompt.
- The router retries a 502/504 from a decode half on a new pair.

Every case leaves both KV pools whole. Short waiting/bootstrap timeouts make
a failure take seconds, not the 300 s default.
"""
import json
import random
import threading
import time

import pytest
import requests

from conftest import FIXTURES, Server
from pd_helpers import PDPair
from router_helpers import (FakeWorker, RouterProcess, SGLangRouterProcess, health_only, pd_mode_refusal,
                            sglang_router_available)

MODEL = "qwen2-fp32"
NAME = "qwen-tiny"
SERVED = ("--served-model-name", NAME)
WAITING_TIMEOUT = 5
SHORT_TIMEOUTS = {"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": str(WAITING_TIMEOUT),
                  "PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT": str(WAITING_TIMEOUT)}
PROMPTS = ["The capital of France is", "Once upon a time, in a land far away,", "1, 2, 3, 4,"]
GREEDY = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}
OPENAI_GREEDY = {"max_tokens": 8, "temperature": 0, "ignore_eos": True}
# A bounded wait for anything that should fail after the waiting timeout.
FAILS_WITHIN = WAITING_TIMEOUT + 15

_refusal = pd_mode_refusal()
needs_pd_instances = pytest.mark.skipif(_refusal is not None, reason=f"PD instances are not available: {_refusal}")


@pytest.fixture(scope="module")
def unified():
    server = Server("--model-path", str(FIXTURES / MODEL), *SERVED)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pd():
    if _refusal is not None:
        pytest.skip(f"PD instances are not available: {_refusal}")
    pair = PDPair(MODEL, prefill_args=SERVED, decode_args=SERVED, env=SHORT_TIMEOUTS)
    yield pair
    pair.stop()


def new_room():
    return random.getrandbits(62)


def decode_only_fields(pd, room):
    """Bootstrap fields naming the real prefill, for a room whose prefill half is never sent."""
    return {"bootstrap_host": "127.0.0.1", "bootstrap_port": pd.bootstrap_port, "bootstrap_room": room}


def sse_events(response):
    return [line[len(b"data: "):] for line in response.iter_lines() if line.startswith(b"data: ")]


def assert_pd_timeout(status, content_type, payload, room):
    assert status == 504, (status, payload)
    assert content_type.startswith("application/json"), content_type
    error = json.loads(payload)["error"]
    assert error["type"] == "pd_timeout" and error["code"] == 504, error
    assert str(room) in error["message"], error


def unified_completion_texts(unified, prompts):
    return [unified.post("/v1/completions", {"model": NAME, "prompt": p, **OPENAI_GREEDY}).json()["choices"][0]["text"]
            for p in prompts]


# --- failures before any output: a 5xx JSON error ------------------------------

ENDPOINTS = [
    ("/generate", {"text": "Never served", "sampling_params": GREEDY}),
    ("/v1/completions", {"model": NAME, "prompt": "Never served", **OPENAI_GREEDY}),
    ("/v1/chat/completions", {"model": NAME, "messages": [{"role": "user", "content": "Never served"}], **OPENAI_GREEDY}),
]


@needs_pd_instances
def test_decode_whose_kv_never_comes_answers_504_on_every_endpoint(pd):
    # All six requests wait out the same timeout at once.
    cases = [(path, body, stream) for path, body in ENDPOINTS for stream in (False, True)]
    results = [None] * len(cases)
    rooms = [new_room() for _ in cases]

    def one(i):
        path, body, stream = cases[i]
        with requests.post(pd.decode.url + path, json={**body, **decode_only_fields(pd, rooms[i]), "stream": stream},
                           stream=stream, timeout=FAILS_WITHIN) as response:
            results[i] = (response.status_code, response.headers.get("content-type", ""), response.content)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(FAILS_WITHIN + 5)
    assert time.monotonic() - started < FAILS_WITHIN
    for (path, _, stream), result, room in zip(cases, results, rooms):
        assert result is not None, (path, stream)
        assert_pd_timeout(*result, room)
    pd.assert_pools_whole()


@needs_pd_instances
def test_one_failed_input_fails_the_whole_batch(pd):
    # Input 0's prefill half is sent, input 1's never is: the answer is the error, not a half-filled 200.
    rooms = [new_room(), new_room()]
    fields = {"bootstrap_host": ["127.0.0.1"] * 2, "bootstrap_port": [pd.bootstrap_port] * 2, "bootstrap_room": rooms}
    body = {"text": PROMPTS[:2], "sampling_params": GREEDY}
    prefill = threading.Thread(target=lambda: requests.post(pd.prefill.url + "/generate", timeout=FAILS_WITHIN, json={
        "text": PROMPTS[0], "sampling_params": GREEDY, **decode_only_fields(pd, rooms[0])}))
    prefill.start()
    response = requests.post(pd.decode.url + "/generate", json={**body, **fields}, timeout=FAILS_WITHIN)
    prefill.join(FAILS_WITHIN)
    assert_pd_timeout(response.status_code, response.headers["content-type"], response.content, rooms[1])
    pd.assert_pools_whole()


@needs_pd_instances
def test_failure_after_the_stream_started_is_an_sse_error_event(pd, unified):
    # Input 0 is served and streams its tokens; input 1 times out afterwards.
    rooms = [new_room(), new_room()]
    fields = {"bootstrap_host": ["127.0.0.1"] * 2, "bootstrap_port": [pd.bootstrap_port] * 2, "bootstrap_room": rooms}
    prefill = threading.Thread(target=lambda: requests.post(pd.prefill.url + "/v1/completions", timeout=FAILS_WITHIN, json={
        "model": NAME, "prompt": PROMPTS[0], **OPENAI_GREEDY, **decode_only_fields(pd, rooms[0])}))
    prefill.start()
    body = {"model": NAME, "prompt": PROMPTS[:2], **OPENAI_GREEDY, "stream": True, **fields}
    with requests.post(pd.decode.url + "/v1/completions", json=body, stream=True, timeout=FAILS_WITHIN) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    prefill.join(FAILS_WITHIN)
    assert events[-1] == b"[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["type"] == "pd_timeout" and error["code"] == 504 and str(rooms[1]) in error["message"], error
    chunks = [json.loads(e) for e in events[:-2]]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"] and c["choices"][0]["index"] == 0)
    assert text == unified_completion_texts(unified, PROMPTS[:1])[0]
    pd.assert_pools_whole()


# --- batches: one room per input ----------------------------------------------

@needs_pd_instances
def test_scalar_room_for_a_batch_means_room_plus_index_on_both_halves(pd, unified):
    body = {"text": PROMPTS, "sampling_params": GREEDY, **decode_only_fields(pd, new_room())}
    decode, prefill = pd.post("/generate", body, timeout=FAILS_WITHIN)
    assert decode.status_code == 200, decode.text
    assert prefill.status_code == 200, prefill.text
    expected = unified.post("/generate", {"text": PROMPTS, "sampling_params": GREEDY}).json()
    assert [r["output_ids"] for r in decode.json()] == [r["output_ids"] for r in expected]
    pd.assert_pools_whole()


@needs_pd_instances
@pytest.mark.parametrize("stream", [False, True])
def test_batched_completions_through_pdserve_router_equal_unified(pd, unified, started, stream):
    router = RouterProcess("--pd-disaggregation", "--prefill", pd.prefill.url, str(pd.bootstrap_port), "--decode", pd.decode.url)
    started(router)
    body = {"model": NAME, "prompt": PROMPTS, **OPENAI_GREEDY}
    expected = unified_completion_texts(unified, PROMPTS)
    if stream:
        texts = [""] * len(PROMPTS)
        with requests.post(router.url + "/v1/completions", json={**body, "stream": True}, stream=True, timeout=FAILS_WITHIN) as response:
            assert response.status_code == 200
            events = sse_events(response)
        assert events[-1] == b"[DONE]"
        for event in events[:-1]:
            for choice in json.loads(event)["choices"]:
                texts[choice["index"]] += choice["text"]
        assert texts == expected
    else:
        response = requests.post(router.url + "/v1/completions", json=body, timeout=FAILS_WITHIN)
        assert response.status_code == 200, response.text
        choices = sorted(response.json()["choices"], key=lambda c: c["index"])
        assert [c["text"] for c in choices] == expected
        assert response.json()["usage"]["completion_tokens"] == 8 * len(PROMPTS)
    pd.assert_pools_whole()


@needs_pd_instances
@pytest.mark.skipif(not sglang_router_available(), reason="sglang-router is not installed (pip install sglang-router==0.3.2)")
def test_batched_completions_through_sglang_router_equal_unified(pd, unified, started):
    router = SGLangRouterProcess("--pd-disaggregation", "--prefill", pd.prefill.url, str(pd.bootstrap_port), "--decode", pd.decode.url)
    started(router)
    response = requests.post(router.url + "/v1/completions", json={"model": NAME, "prompt": PROMPTS, **OPENAI_GREEDY},
                             timeout=FAILS_WITHIN)
    assert response.status_code == 200, response.text
    choices = sorted(response.json()["choices"], key=lambda c: c["index"])
    assert [c["text"] for c in choices] == unified_completion_texts(unified, PROMPTS)
    pd.assert_pools_whole()


# --- the router retries a failing half's 5xx ----------------------------------

def fake_prefill():
    def script(handler, path, body):
        if not path.startswith(("/generate", "/v1/")):
            return handler.reply(200, {"aborted": 0} if path == "/abort_request" else {})
        handler.reply(200, {"text": "", "output_ids": [1], "meta_info": {"id": body.get("rid")}})
    return FakeWorker(script)


@pytest.mark.parametrize("status,kind", [(502, "pd_transfer_failed"), (504, "pd_timeout")])
def test_router_retries_a_decode_5xx_after_the_prefill_answered(started, status, kind):
    prefill, bootstrap = fake_prefill(), FakeWorker(health_only)
    lock = threading.Lock()
    failures_left = [1]

    def decode_script(handler, path, body):
        if path != "/generate":
            return handler.reply(200, {"aborted": 0} if path == "/abort_request" else {})
        time.sleep(0.2)  # answers after the prefill did
        with lock:
            fail = failures_left[0] > 0
            failures_left[0] -= 1
        if fail:
            return handler.reply(status, {"error": {"message": f"room {body['bootstrap_room']} broke", "type": kind,
                                                    "param": None, "code": status}})
        handler.reply(200, {"text": "decoded", "output_ids": [7], "meta_info": {"id": body["rid"]}})

    decodes = [FakeWorker(decode_script), FakeWorker(decode_script)]
    for thing in (prefill, bootstrap, *decodes):
        started(thing)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(bootstrap.port),
                           "--decode", decodes[0].url, "--decode", decodes[1].url, "--decode-policy", "round_robin",
                           "--retry-initial-backoff-ms", "1")
    started(router)
    response = router.post("/generate", {"text": "retry me", "rid": "client-rid"})
    assert response.status_code == 200 and response.json()["text"] == "decoded", response.text
    tried = [d.received("/generate") for d in decodes]
    assert sorted(len(t) for t in tried) == [1, 1], "the retry went to the other decode"
    rooms = [t[0]["bootstrap_room"] for t in tried]
    assert rooms[0] != rooms[1], "a retry gets a new room"
    assert sorted(b["bootstrap_room"] for b in prefill.received("/generate")) == sorted(rooms)
    assert all(b["rid"] == "client-rid" for t in tried for b in t)


def test_router_passes_a_pd_failure_through_when_every_attempt_fails(started):
    prefill, bootstrap = fake_prefill(), FakeWorker(health_only)

    def decode_script(handler, path, body):
        if not path.startswith("/v1/"):
            return handler.reply(200, {})
        time.sleep(0.3)  # the prefill has answered: nothing to abort
        handler.reply(502, {"error": {"message": "peer lost for room 7", "type": "pd_peer_lost", "param": None, "code": 502}})

    decode = FakeWorker(decode_script)
    for thing in (prefill, bootstrap, decode):
        started(thing)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(bootstrap.port), "--decode", decode.url,
                           "--retry-initial-backoff-ms", "1", "--retry-max-retries", "3")
    started(router)
    response = router.post("/v1/completions", {"model": NAME, "prompt": ["a", "b"], "max_tokens": 2})
    assert response.status_code == 502 and response.json()["error"]["type"] == "pd_peer_lost", response.text
    # Each attempt (the only pair is tried again) sent both halves a batched
    # completion with one room per prompt, new rooms every time, and one rid.
    sent = prefill.received("/v1/completions")
    assert len(sent) == len(decode.received("/v1/completions")) == 3
    rooms = [room for body in sent for room in body["bootstrap_room"]]
    assert all(len(body["bootstrap_room"]) == 2 for body in sent) and len(set(rooms)) == len(rooms)
    assert len({body["rid"] for body in sent}) == 1 and isinstance(sent[0]["rid"], str)
