"""Prefill/decode disaggregation end to end: outputs equal the unified
engine's token for token over tcp and shm, and every fault ends in a clear
error with both KV pools whole again."""
import json
import os
import signal
import socket
import struct
import threading
import time

import openai
import pytest
import requests

import wire_helpers as wire
from conftest import FIXTURES, TRANSFER_BACKENDS, Server, post_raw, reference, wait_until
from pd_helpers import PDPair

MODEL = "qwen2-fp32"
NAME = str(FIXTURES / MODEL)
SHORT_TIMEOUTS = {"PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "2", "PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "3",
                  "PDSERVE_DISAGGREGATION_HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def unified():
    server = Server("--model-path", str(FIXTURES / MODEL))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=TRANSFER_BACKENDS)
def pair(request):
    # Small prefill chunks so long prompts cross several chunks and partial pages.
    pd = PDPair(MODEL, backend=request.param, prefill_args=("--chunked-prefill-size", "48"), env=SHORT_TIMEOUTS)
    yield pd
    pd.stop()


def assert_pd_error(response, status, *words):
    """A PD failure is a JSON error with a 5xx that says what failed, never a 200."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    for word in words:
        assert word in error["message"], error
    return error


def greedy_body(prompt, n=12, **extra):
    return {"input_ids": prompt, "sampling_params": {"max_new_tokens": n, "temperature": 0, "ignore_eos": True}, **extra}


@pytest.mark.parametrize("index", [0, 2, 6, 8, 13, 17, 19, 21, 27])
def test_generate_matches_unified(pair, unified, index):
    prompt = reference(MODEL)["prompts"][index]
    expected = unified.post("/generate", greedy_body(prompt)).json()
    decode, prefill = pair.post("/generate", pair.bootstrap(greedy_body(prompt)))
    assert decode.status_code == 200, decode.text
    assert prefill.status_code == 200 and len(prefill.json()["output_ids"]) == 1
    assert decode.json()["output_ids"] == expected["output_ids"]
    assert decode.json()["text"] == expected["text"]


def test_batch_and_concurrency(pair, unified):
    prompts = reference(MODEL)["prompts"][10:18]
    expected = [unified.post("/generate", greedy_body(p)).json()["output_ids"] for p in prompts]
    batch_decode, _ = pair.post("/generate", pair.bootstrap(greedy_body(prompts[:3]), count=3))
    assert [r["output_ids"] for r in batch_decode.json()] == expected[:3]
    results = [None] * len(prompts)

    def one(i):
        results[i] = pair.post("/generate", pair.bootstrap(greedy_body(prompts[i])))[0].json()["output_ids"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == expected
    pair.assert_pools_whole()


def test_streaming_generate(pair, unified):
    prompt = reference(MODEL)["prompts"][20]
    expected = unified.post("/generate", greedy_body(prompt, 20)).json()["text"]
    body = pair.bootstrap(greedy_body(prompt, 20, stream=True))
    holder = {}
    thread = threading.Thread(target=lambda: holder.setdefault("p", requests.post(pair.prefill.url + "/generate", json=body, timeout=60)))
    thread.start()
    last = None
    with requests.post(pair.decode.url + "/generate", json=body, stream=True, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                last = json.loads(line[6:])
    thread.join(60)
    assert last["text"] == expected and last["meta_info"]["finish_reason"]["type"] == "length"


def test_openai_endpoints_through_pd(pair, unified):
    ref = reference(MODEL)
    client = openai.OpenAI(base_url=pair.decode.url + "/v1", api_key="x", max_retries=0)
    direct = openai.OpenAI(base_url=unified.url + "/v1", api_key="x", max_retries=0)
    prompt = ref["prompts"][14]
    expected = direct.completions.create(model=NAME, prompt=prompt, max_tokens=10, temperature=0, extra_body={"ignore_eos": True}).choices[0].text
    fields = pair.bootstrap({})
    threading.Thread(target=lambda: requests.post(pair.prefill.url + "/v1/completions", json={
        "prompt": prompt, "max_tokens": 10, "temperature": 0, "ignore_eos": True, **fields}, timeout=60)).start()
    out = client.completions.create(model=NAME, prompt=prompt, max_tokens=10, temperature=0, extra_body={"ignore_eos": True, **fields})
    assert out.choices[0].text == expected

    messages = [{"role": "user", "content": "Say something about tea."}]
    expected_chat = direct.chat.completions.create(model=NAME, messages=messages, max_tokens=8, temperature=0).choices[0].message.content
    fields = pair.bootstrap({})
    threading.Thread(target=lambda: requests.post(pair.prefill.url + "/v1/chat/completions", json={
        "messages": messages, "max_tokens": 8, "temperature": 0, **fields}, timeout=60)).start()
    text = ""
    for chunk in client.chat.completions.create(model=NAME, messages=messages, max_tokens=8, temperature=0, stream=True, extra_body=fields):
        for choice in chunk.choices:
            text += choice.delta.content or ""
    assert text == expected_chat


def test_requests_without_bootstrap_are_refused(pair):
    response = requests.post(pair.decode.url + "/generate", json={"text": "hi"}, timeout=10)
    assert response.status_code == 400 and "bootstrap" in response.json()["error"]["message"]


# --- faults -----------------------------------------------------------------

def test_decode_room_never_served_times_out(pair):
    body = pair.bootstrap(greedy_body([5, 6, 7, 8] * 10))
    started = time.monotonic()
    response = requests.post(pair.decode.url + "/generate", json=body, timeout=30)
    assert_pd_error(response, 504, "timeout")
    assert time.monotonic() - started < 15
    pair.assert_pools_whole()


def test_prefill_room_never_registered_times_out(pair):
    body = pair.bootstrap(greedy_body([9, 8, 7] * 10))
    response = requests.post(pair.prefill.url + "/generate", json=body, timeout=30)
    assert_pd_error(response, 504, "bootstrap timeout")
    pair.assert_pools_whole()


def test_abort_in_bootstrap_queue(pair):
    body = pair.bootstrap(greedy_body([4, 4, 4, 4] * 8, rid="waiting-prefill"))
    holder = {}
    thread = threading.Thread(target=lambda: holder.setdefault("r", requests.post(pair.prefill.url + "/generate", json=body, timeout=30)))
    thread.start()
    deadline = time.monotonic() + 5
    while requests.post(pair.prefill.url + "/abort_request", json={"rid": "waiting-prefill"}).json()["aborted"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    thread.join(30)
    assert holder["r"].json()["meta_info"]["finish_reason"]["type"] == "abort"
    pair.assert_pools_whole()


def test_disconnect_while_decoding(pair):
    prompt = reference(MODEL)["prompts"][5]
    body = pair.bootstrap({"input_ids": prompt, "stream": True, "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}})
    threading.Thread(target=lambda: requests.post(pair.prefill.url + "/generate", json=body, timeout=60)).start()
    sock = post_raw(pair.decode.port, "/generate", body)
    seen = b""
    while seen.count(b"data:") < 3:
        chunk = sock.recv(65536)
        assert chunk
        seen += chunk
    sock.close()
    pair.assert_pools_whole()


def test_disconnect_while_waiting_for_kv(pair):
    # Only the decode half: it waits for KV that will not come; the client leaves.
    body = pair.bootstrap({"input_ids": [3] * 40, "sampling_params": {"max_new_tokens": 4}})
    sock = post_raw(pair.decode.port, "/generate", body)
    wait_until(lambda: pair.decode.state("num_transferring_reqs") > 0, timeout=5, what="num_transferring_reqs > 0")
    sock.close()
    wait_until(lambda: pair.decode.state("num_transferring_reqs") == 0, timeout=5, what="the parked request outlived its client")
    pair.assert_pools_whole()


@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
def test_killed_prefill_fails_waiting_rooms_at_once(backend):
    pd = PDPair(MODEL, backend=backend, env=SHORT_TIMEOUTS | {"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "60"})
    try:
        # Warm the link so the decode holds a connection to this prefill.
        warm, _ = pd.post("/generate", pd.bootstrap(greedy_body([1, 2, 3, 4], 2)))
        assert warm.status_code == 200
        body = pd.bootstrap(greedy_body([7] * 50))
        holder = {}
        thread = threading.Thread(target=lambda: holder.setdefault("r", requests.post(pd.decode.url + "/generate", json=body, timeout=60)))
        thread.start()
        wait_until(lambda: pd.decode.state("num_transferring_reqs") > 0, timeout=5, what="num_transferring_reqs > 0")
        started = time.monotonic()
        pd.prefill.proc.send_signal(signal.SIGKILL)
        thread.join(30)
        assert_pd_error(holder["r"], 502, "prefill")
        assert time.monotonic() - started < 10, "waited for the timeout instead of noticing the dead prefill"
        pd.decode.assert_pool_whole()
        # A new request to the dead prefill fails clearly too.
        again = requests.post(pd.decode.url + "/generate", json=pd.bootstrap(greedy_body([1, 2, 3])), timeout=30)
        assert_pd_error(again, 502, "unreachable")
        pd.decode.assert_pool_whole()
    finally:
        pd.stop()


def test_layout_mismatch_is_refused():
    pd = PDPair(MODEL, prefill_args=("--page-size", "16"), decode_args=("--page-size", "32"), env=SHORT_TIMEOUTS)
    try:
        decode, prefill = pd.post("/generate", pd.bootstrap(greedy_body([1, 2, 3, 4, 5])))
        assert_pd_error(decode, 502, "page size")
        assert_pd_error(prefill, 504, "bootstrap timeout")
        pd.assert_pools_whole()
    finally:
        pd.stop()


# --- protocol robustness -----------------------------------------------------

def hello(layout):
    return wire.hello("decode", layout["layers"], layout["page_size"], layout["width"], layout["model"])


def test_malformed_frames_do_not_disturb_other_rooms(pair, unified):
    if pair.prefill.get("/get_server_info").json()["disaggregation_transfer_backend"] != "tcp":
        pytest.skip("one backend is enough for the wire tests")
    info = pair.prefill.get("/get_server_info").json()
    port = int(info["disaggregation_transfer_port"])
    route = requests.get(f"http://127.0.0.1:{pair.bootstrap_port}/route", timeout=5).json()
    attacks = [
        b"GET / HTTP/1.1\r\n\r\n",                                   # not a frame at all
        wire.frame(1, b"\x01\x02")[:10],                                  # truncated header
        wire.frame(9, struct.pack("<Q", 1), version=99),                  # unknown version
        wire.frame(2, struct.pack("<QII", 1, 2, 0) + struct.pack("<I", 1000)),  # lies about its page count, before hello
        wire.frame(7, b"\xff" * 64, length=1 << 40),                      # absurd length
    ]
    for attack in attacks:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(attack)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    layout = {"layers": 3, "page_size": route["page_size"], "width": 36, "model": route["model"]}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(hello(layout))
        header = s.recv(16)
        assert header[:4] == b"PDKV" and struct.unpack("<H", header[6:8])[0] == wire.CHALLENGE
        # A well-formed session that then sends an unknown frame type and a wrong-room abort.
        s.sendall(wire.frame(42, b"whatever") + wire.frame(7, struct.pack("<Q", 999) + struct.pack("<I", 3) + b"bye"))
    # Real requests are unaffected.
    prompt = reference(MODEL)["prompts"][9]
    expected = unified.post("/generate", greedy_body(prompt)).json()["output_ids"]
    decode, _ = pair.post("/generate", pair.bootstrap(greedy_body(prompt)))
    assert decode.json()["output_ids"] == expected
    pair.assert_pools_whole()


def test_bootstrap_server_rejects_bad_input(pair):
    base = f"http://127.0.0.1:{pair.bootstrap_port}"
    assert requests.get(base + "/health", timeout=5).status_code == 200
    bad = requests.put(base + "/route", data=b"{not json", timeout=5)
    assert bad.status_code == 400 and "error" in bad.json()
    incomplete = requests.put(base + "/route", json={"rank_ip": "127.0.0.1"}, timeout=5)
    assert incomplete.status_code == 400
    assert requests.get(base + "/route?engine_rank=5&target_dp_group=0", timeout=5).status_code == 404
    info = requests.get(base + "/route?engine_rank=-1&target_dp_group=-1", timeout=5).json()
    assert info["prefill_tp_size"] == 1 and info["page_size"] == 16


@pytest.mark.parametrize("backend", [b for b in TRANSFER_BACKENDS if b != "shm"])
@pytest.mark.parametrize("model", ["llama3-bf16", "llama2-fp32-sharded", "qwen3-bf16", "mistral-fp16", "gpt2tok-llama-fp32"])
def test_every_fixture_matches_unified_through_pd(model, backend):
    """The other oracle fixtures (qwen2 is covered above): long prompts over several chunks."""
    unified = Server("--model-path", str(FIXTURES / model))
    pd = PDPair(model, backend=backend, prefill_args=("--chunked-prefill-size", "40"))
    try:
        ref = reference(model)
        for index in [1, 16, 20, len(ref["prompts"]) - 1]:
            prompt = ref["prompts"][index]
            expected = unified.post("/generate", greedy_body(prompt)).json()["output_ids"]
            decode, _ = pd.post("/generate", pd.bootstrap(greedy_body(prompt)))
            assert decode.json()["output_ids"] == expected, f"{model} prompt {index}"
        pd.assert_pools_whole()
    finally:
        pd.stop()
        unified.stop()


def test_frozen_prefill_is_declared_dead_by_heartbeats():
    """SIGSTOP keeps the transfer connection open but stops answering: only heartbeats can tell."""
    pd = PDPair(MODEL, env=SHORT_TIMEOUTS | {"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "60"})
    try:
        warm, _ = pd.post("/generate", pd.bootstrap(greedy_body([1, 2, 3, 4], 2)))
        assert warm.status_code == 200
        holder = {}
        body = pd.bootstrap(greedy_body([7] * 50))
        thread = threading.Thread(target=lambda: holder.setdefault("r", requests.post(pd.decode.url + "/generate", json=body, timeout=60)))
        thread.start()
        wait_until(lambda: pd.decode.state("num_transferring_reqs") > 0, timeout=5, what="num_transferring_reqs > 0")
        pd.prefill.proc.send_signal(signal.SIGSTOP)
        try:
            thread.join(30)
            assert_pd_error(holder["r"], 502, "missed 2 heartbeats")
            pd.decode.assert_pool_whole()
        finally:
            pd.prefill.proc.send_signal(signal.SIGCONT)
    finally:
        pd.stop()


def slow_transfer_pair(backend):
    """A pair whose prefill sends a 6,000-token prompt in 8-token chunks: KV keeps flowing for a while."""
    return PDPair("qwen2-fp32", backend=backend, prefill_args=("--chunked-prefill-size", "8", "--context-length", "8000"),
                  decode_args=("--context-length", "8000"), env=SHORT_TIMEOUTS | {"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "60"})


def kill_mid_transfer(pd, victim):
    """Sends both halves of the long prompt, kills `victim` ("prefill" or "decode") a few chunks in; both answers."""
    body = pd.bootstrap(greedy_body([(i * 7) % 500 + 3 for i in range(6000)], 4))
    holder = {}
    def send(half, server):
        holder[half] = _swallow(lambda: requests.post(server.url + "/generate", json=body, timeout=60))

    threads = [threading.Thread(target=send, args=(half, server)) for half, server in (("decode", pd.decode), ("prefill", pd.prefill))]
    for t in threads:
        t.start()
    wait_until(lambda: pd.prefill.state("num_running_reqs") > 0, timeout=20, what="the prefill to start")
    time.sleep(0.2)  # a few chunks have gone out
    getattr(pd, victim).proc.send_signal(signal.SIGKILL)
    for t in threads:
        t.join(60)
    return holder


@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
def test_prefill_killed_mid_transfer(backend):
    pd = slow_transfer_pair(backend)
    try:
        assert_pd_error(kill_mid_transfer(pd, "prefill")["decode"], 502, "prefill")
        pd.decode.assert_pool_whole()
    finally:
        pd.stop()


@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
def test_decode_killed_mid_transfer(backend):
    """The prefill's answer is a 5xx, and its pool comes back whole."""
    pd = slow_transfer_pair(backend)
    try:
        assert_pd_error(kill_mid_transfer(pd, "decode")["prefill"], 502)
        pd.prefill.assert_pool_whole()
    finally:
        pd.stop()


@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
def test_a_restarted_decode_gets_a_fresh_handshake(backend, unified):
    """A decode killed and started again (a new pool, a new engine endpoint)
    meets the same prefill with a new handshake: its KV lands in the new pool,
    and nothing the prefill kept for the dead one leaks."""
    pd = PDPair(MODEL, backend=backend, env=SHORT_TIMEOUTS)
    try:
        for prompt in reference(MODEL)["prompts"][3:5]:
            expected = unified.post("/generate", greedy_body(prompt)).json()["output_ids"]
            decode, prefill = pd.post("/generate", pd.bootstrap(greedy_body(prompt)))
            assert decode.status_code == 200 and prefill.status_code == 200, decode.text
            assert decode.json()["output_ids"] == expected
            pd.restart_decode()
        pd.assert_pools_whole()
    finally:
        pd.stop()


def _swallow(call):
    try:
        return call()
    except requests.RequestException as error:
        return error


@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
@pytest.mark.parametrize("end", ["waiting_timeout", "client_leaves"])
def test_a_failing_room_never_disturbs_a_neighbour(backend, end):
    """Defect 1 of the PD-core issue: a long prompt whose decode half ends
    (timeout, or its client leaves) while the prefill is still sending it,
    next to a request decoding 1,500 greedy tokens. The pages the failed room
    gives back are the next ones the neighbour grows into (the allocator is
    LIFO), so a late write would show in the neighbour's tokens."""
    env = SHORT_TIMEOUTS | {"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "1" if end == "waiting_timeout" else "60"}
    long_context = ("--context-length", "8000")
    unified = Server("--model-path", NAME, *long_context)
    pd = PDPair(MODEL, backend=backend, prefill_args=("--chunked-prefill-size", "4", *long_context),
                decode_args=(*long_context, "--max-total-tokens", "12000"), env=env)
    try:
        neighbour = greedy_body(reference(MODEL)["prompts"][9], 1500)
        expected = unified.post("/generate", neighbour).json()["output_ids"]
        holder = {}
        thread = threading.Thread(target=lambda: holder.setdefault("n", pd.post("/generate", pd.bootstrap(neighbour), timeout=120)))
        thread.start()
        wait_until(lambda: pd.decode.state("num_running_reqs") > 0, timeout=20, what="the neighbour to decode")
        victim = pd.bootstrap(greedy_body([(i * 7) % 500 + 3 for i in range(6000)], 4))
        prefill_half = threading.Thread(target=lambda: holder.setdefault("p", _swallow(lambda: requests.post(pd.prefill.url + "/generate", json=victim, timeout=120))))
        prefill_half.start()
        if end == "waiting_timeout":
            response = requests.post(pd.decode.url + "/generate", json=victim, timeout=60)
            assert response.status_code in (200, 504), response.text
        else:
            sock = post_raw(pd.decode.port, "/generate", victim)
            wait_until(lambda: pd.prefill.state("num_running_reqs") > 0, timeout=20, what="the victim's prefill to start")
            time.sleep(0.3)
            sock.close()
        thread.join(120)
        prefill_half.join(120)
        decoded, _ = holder["n"]
        assert decoded.status_code == 200, decoded.text
        assert decoded.json()["output_ids"] == expected
        pd.assert_pools_whole()
    finally:
        pd.stop()
        unified.stop()


def test_parallel_samples_through_pd_get_a_room_each(pair, unified):
    """n > 1: every sample is its own room (scalar room → room + i, as SGLang expands it)."""
    messages = [{"role": "user", "content": "Name two colours."}]
    body = {"messages": messages, "max_tokens": 8, "temperature": 0, "n": 2}
    expected = [c["message"]["content"] for c in unified.post("/v1/chat/completions", body).json()["choices"]]
    decode, prefill = pair.post("/v1/chat/completions", pair.bootstrap(body))
    assert decode.status_code == 200 and prefill.status_code == 200, (decode.text, prefill.text)
    assert [c["message"]["content"] for c in decode.json()["choices"]] == expected
    # A list must name one room per sample.
    short = pair.bootstrap(body, count=1)
    refused = requests.post(pair.decode.url + "/v1/chat/completions", json=short, timeout=30)
    assert refused.status_code == 400 and "entries for 2 inputs" in refused.json()["error"]["message"]
    pair.assert_pools_whole()



@pytest.mark.parametrize("reserved", [512, 0])
def test_decode_admission_reserves_output_room(unified, reserved):
    """A decode with a small pool admits a request only while every request
    decoding there keeps room for its next --num-reserved-decode-tokens
    output tokens: admitting never forces a retraction, and outputs equal
    unified serving. Reserving nothing (one page each) retracts."""
    pd = PDPair(MODEL, prefill_args=("--page-size", "8"),
                decode_args=("--max-total-tokens", "320", "--page-size", "8", "--num-reserved-decode-tokens", str(reserved)),
                env=SHORT_TIMEOUTS)
    try:
        prompts = [list(range(100 + 9 * i, 124 + 9 * i)) for i in range(8)]
        expected = [unified.post("/generate", greedy_body(p, n=64)).json()["output_ids"] for p in prompts]
        results = [None] * len(prompts)

        def one(i):
            decode, _ = pd.post("/generate", pd.bootstrap(greedy_body(prompts[i], n=64)), timeout=120)
            results[i] = decode.json().get("output_ids", decode.text)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == expected
        retracted = pd.decode.get("/get_server_info").json()["internal_states"][0]["num_retracted_reqs"]
        if reserved:
            assert retracted == 0
        else:
            assert retracted > 0, "the pool was big enough that nothing needed the reserve"
        pd.assert_pools_whole()
    finally:
        pd.stop()
