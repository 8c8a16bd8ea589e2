"""What an attacker or a careless operator tried against main (issue 42),
each now a test: numbers near 2^63 in every numeric field of every
endpoint, unified and through the PD router; a transfer port that must
spend nothing on a peer before it proved the key; a router whose circuit
must close once a killed decode is back; bodies that were accepted with
200 or answered with the wrong label; SIGTERM that drains; probes past the
connection cap. Real processes on 127.0.0.1; every wait is bounded."""
import concurrent.futures
import json
import signal
import socket
import struct
import threading
import time

import pytest
import requests

import wire_helpers as wire
from conftest import FIXTURES, Server, read_response, reference, wait_until
from pd_helpers import PDPair, free_port
from router_helpers import RouterProcess

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
KEY_ENV = {"PDSERVE_DISAGGREGATION_AUTH_KEY": "test deployment secret, 32 bytes!"}
GREEDY = {"max_new_tokens": 2, "temperature": 0, "ignore_eos": True}

# 1. Every numeric field of every endpoint, with values chosen to overflow, truncate or confuse.

# Raw JSON literals: spliced into the body text, so NaN and 1e999 reach the server as sent.
HOSTILE_NUMBERS = [str(-2 ** 63), str(2 ** 63 - 1), "-1", "0", str(2 ** 31), str(2 ** 53), str(2 ** 64), "1.5", "-0.5",
                   "1e999", "-1e999", "NaN", "Infinity", '"NaN"', "9" * 400, '"' + "9" * 100_000 + '"', "true", "[]"]

# (endpoint, base body, path of the numeric field inside it); a list index for arrays, "*" for a logit_bias value.
GENERATE = {"input_ids": [5, 6, 7], "sampling_params": dict(GREEDY)}
COMPLETION = {"model": "qwen-tiny", "prompt": [5, 6, 7], "max_tokens": 2, "temperature": 0}
CHAT = {"model": "qwen-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0}
PROFILE = {"output_dir": "/tmp/pdserve-adversarial-profiles"}
SAMPLING = ["temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty", "presence_penalty", "seed"]
NUMERIC_FIELDS = (
    [("/generate", GENERATE, ("sampling_params", f)) for f in
     SAMPLING + ["max_new_tokens", "min_new_tokens", "n"]]
    + [("/generate", {**GENERATE, "sampling_params": {**GREEDY, "stop_token_ids": [0]}}, ("sampling_params", "stop_token_ids", 0)),
       ("/generate", {**GENERATE, "sampling_params": {**GREEDY, "logit_bias": {"5": 0}}}, ("sampling_params", "logit_bias", "5")),
       ("/generate", {**GENERATE, "return_logprob": True}, ("top_logprobs_num",)),
       ("/generate", {**GENERATE, "return_logprob": True}, ("logprob_start_len",)),
       ("/generate", GENERATE, ("input_ids", 0)),
       ("/generate", GENERATE, ("priority",))]
    + [("/v1/completions", COMPLETION, (f,)) for f in SAMPLING + ["max_tokens", "min_tokens", "n", "best_of", "logprobs", "priority"]]
    + [("/v1/completions", {**COMPLETION, "stop_token_ids": [0]}, ("stop_token_ids", 0)),
       ("/v1/completions", COMPLETION, ("prompt", 0))]
    + [("/v1/chat/completions", CHAT, (f,)) for f in SAMPLING + ["max_tokens", "max_completion_tokens", "min_tokens", "n", "priority"]]
    + [("/v1/chat/completions", {**CHAT, "logprobs": True}, ("top_logprobs",)),
       ("/v1/chat/completions", {**CHAT, "logit_bias": {"5": 0}}, ("logit_bias", "5"))]
    + [("/start_profile", {**PROFILE, "num_steps": 1}, ("start_step",)), ("/start_profile", PROFILE, ("num_steps",))]
)
MARK = "__hostile_value__"


def hostile_body(base, path, literal):
    body = json.loads(json.dumps(base))
    target = body
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    target[path[-1]] = MARK
    return json.dumps(body).replace(f'"{MARK}"', literal).encode()


def send_every_hostile_number(url, fields=NUMERIC_FIELDS):
    """Sends each value into each field; returns the failures (anything but a 4xx JSON error naming the field, or a
    200 with a result), and how many requests were sent."""
    cases = [(endpoint, base, path, literal) for endpoint, base, path in fields for literal in HOSTILE_NUMBERS]

    def one(case):
        endpoint, base, path, literal = case
        try:
            r = requests.post(url + endpoint, data=hostile_body(base, path, literal), headers={"Content-Type": "application/json"}, timeout=60)
        except requests.RequestException as error:
            return f"{endpoint} {path}={literal[:20]}: {error}"
        field = next(p for p in reversed(path) if isinstance(p, str) and p != "5")
        if r.status_code == 200:
            if endpoint == "/start_profile":
                return None
            reply = r.json()
            return None if ("choices" in reply or "output_ids" in reply or isinstance(reply, list)) else f"{endpoint} {path}: 200 {r.text[:200]}"
        if r.status_code == 413:
            return None  # a body past the endpoint's size limit: refused before any field is read
        if 400 <= r.status_code < 500:
            message = r.json()["error"]["message"]
            if field in message or "valid JSON" in message or (field == "input_ids" or field == "prompt"):
                return None
            return f"{endpoint} {path}={literal[:20]}: {r.status_code} does not name '{field}': {message}"
        return f"{endpoint} {path}={literal[:20]}: {r.status_code} {r.text[:200]}"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return [f for f in pool.map(one, cases) if f], len(cases)


def test_every_numeric_field_of_every_endpoint_survives_hostile_numbers(started):
    server = Server(*MODEL)
    started(server)
    failures, count = send_every_hostile_number(server.url)
    assert not failures, f"{len(failures)} of {count}:\n" + "\n".join(failures[:40])
    assert server.proc.poll() is None
    ref = reference("qwen2-fp32")
    ok = server.post("/generate", {"input_ids": ref["prompts"][0], "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}})
    assert ok.status_code == 200 and ok.json()["output_ids"] == ref["greedy"][0][:8]
    server.assert_pool_whole()


# The router's own numeric field: a prefill's bootstrap port when a worker is added at run time.
ROUTER_FIELDS = [("/workers", {"url": "http://127.0.0.1:9", "mode": "prefill"}, ("bootstrap_port",))]


def test_hostile_numbers_through_the_pd_router_leave_both_halves_serving(started):
    pair = PDPair(prefill_args=("--served-model-name", "qwen-tiny"), decode_args=("--served-model-name", "qwen-tiny"))
    started(pair)
    router = RouterProcess("--pd-disaggregation", "--prefill", pair.prefill.url, str(pair.bootstrap_port), "--decode", pair.decode.url)
    started(router)
    failures, count = send_every_hostile_number(router.url, NUMERIC_FIELDS + ROUTER_FIELDS)
    assert set(router.workers()) == {pair.prefill.url, pair.decode.url}, "a hostile /workers body added a worker"
    assert not failures, f"{len(failures)} of {count}:\n" + "\n".join(failures[:40])
    assert pair.prefill.proc.poll() is None and pair.decode.proc.poll() is None and router.proc.poll() is None
    ref = reference("qwen2-fp32")
    ok = router.post("/generate", {"input_ids": ref["prompts"][1], "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}})
    assert ok.status_code == 200 and ok.json()["output_ids"] == ref["greedy"][1][:8]
    pair.assert_pools_whole()


# 5 and 6. Bodies that were accepted, and errors that were mislabelled.

REFUSED = [
    ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": "x"}, "stream_options"),
    ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True, "bogus": 1}}, "stream_options.bogus"),
    ("/v1/completions", {**COMPLETION, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ("/v1/chat/completions", {**CHAT, "user": 5}, "user"),
    ("/v1/completions", {**COMPLETION, "user": ["a"]}, "user"),
    ("/v1/chat/completions", {**CHAT, "chat_template_kwargs": "x"}, "chat_template_kwargs"),
    ("/v1/completions", {**COMPLETION, "logprobs": True}, "logprobs"),
    ("/v1/completions", {**COMPLETION, "stop_token_ids": [2 ** 40]}, "stop_token_ids"),
    ("/v1/completions", {**COMPLETION, "stop_token_ids": [100_000]}, "stop_token_ids"),
    ("/generate", {**GENERATE, "sampling_params": {**GREEDY, "stop_token_ids": [616]}}, "stop_token_ids"),
    ("/generate", {**GENERATE, "return_logprob": True, "logprob_start_len": 2 ** 63 - 1}, "logprob_start_len"),
    ("/generate", {**GENERATE, "return_logprob": True, "logprob_start_len": -2 ** 63}, "logprob_start_len"),
    ("/generate", {**GENERATE, "sampling_params": {**GREEDY, "max_new_tokens": 2 ** 63 - 1}}, "max_new_tokens"),
]


@pytest.fixture(scope="module")
def server():
    server = Server(*MODEL)
    yield server
    server.stop()


@pytest.mark.parametrize("endpoint,body,field", REFUSED, ids=[f"{e}-{f}" for e, _, f in REFUSED])
def test_listed_bodies_are_refused_naming_the_field(server, endpoint, body, field):
    r = server.post(endpoint, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert field in error["message"] and error["type"] == "invalid_request_error", error


def test_a_compressed_body_is_415_not_a_json_error(server):
    r = requests.post(server.url + "/generate", data=json.dumps(GENERATE).encode(), timeout=30,
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 415 and "Content-Encoding" in r.json()["error"]["message"], r.text
    plain = requests.post(server.url + "/generate", data=json.dumps(GENERATE).encode(), timeout=30,
                          headers={"Content-Type": "application/json", "Content-Encoding": "identity"})
    assert plain.status_code == 200, plain.text


def test_a_malformed_chunk_size_is_a_bad_request_not_a_disconnect(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\n{\"tex\r\nzz\r\n")
    answer = read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"client_disconnected" not in answer and b"invalid_request_error" in answer, answer[:500]


def test_a_bootstrap_registration_over_a_mebibyte_is_413(started):
    bootstrap_port = free_port()
    prefill = Server(*MODEL, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port))
    started(prefill)
    r = requests.put(f"http://127.0.0.1:{bootstrap_port}/route", data=b"{" + b" " * (2 << 20) + b"}", timeout=30,
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert requests.get(f"http://127.0.0.1:{bootstrap_port}/health", timeout=10).status_code == 200


# 2 and 3. The transfer port spends nothing sizeable before the key is proved.

def rss_mb(server):
    status = open(f"/proc/{server.proc.pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def transfer_port(pair):
    return int(pair.prefill.get("/get_server_info").json()["disaggregation_transfer_port"])


def test_header_only_connections_cost_the_prefill_no_memory(started):
    pair = PDPair(prefill_args=(), decode_args=(), env=KEY_ENV)
    started(pair)
    port = transfer_port(pair)
    before = rss_mb(pair.prefill)
    sockets = []
    try:
        for i in range(255):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            # A hello that announces 16 MiB, or the 1 MiB a handshake frame may hold, and sends none of it.
            length = 16 << 20 if i % 2 else (1 << 20)
            sock.sendall(b"PDKV" + struct.pack("<HHQ", wire.VERSION, wire.HELLO, length))
            sockets.append(sock)
        time.sleep(1.5)
        grown = rss_mb(pair.prefill) - before
        assert grown < 64, f"the prefill grew {grown:.0f} MB for 255 header-only connections"
    finally:
        for sock in sockets:
            sock.close()
    assert rss_mb(pair.prefill) - before < 64
    ref = reference("qwen2-fp32")
    body = pair.bootstrap({"input_ids": ref["prompts"][2], "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}})
    decode, prefill = pair.post("/generate", body)
    assert decode.status_code == 200 and decode.json()["output_ids"] == ref["greedy"][2][:8], decode.text
    pair.assert_pools_whole()


@pytest.mark.parametrize("keyed", [True, False], ids=["key", "no-key"])
def test_a_reconnecting_flood_does_not_keep_a_real_decode_from_pairing(keyed, started):
    pair = PDPair(env=KEY_ENV if keyed else None)
    started(pair)
    port = transfer_port(pair)
    stop = threading.Event()
    opened = [0]

    def flood():
        held = []
        while not stop.is_set():
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                opened[0] += 1
            except OSError:
                time.sleep(0.01)
            if len(held) > 150:
                held.pop(0).close()
        for sock in held:
            sock.close()

    threads = [threading.Thread(target=flood) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: opened[0] > 600, timeout=30, what="the flood to hold the port")
        ref = reference("qwen2-fp32")
        body = pair.bootstrap({"input_ids": ref["prompts"][3], "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}})
        decode, _ = pair.post("/generate", body)
        assert decode.status_code == 200, decode.text
        assert decode.json()["output_ids"] == ref["greedy"][3][:8]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    pair.assert_pools_whole()


# 4. A killed decode that comes back is used again at once.

def test_a_decode_killed_mid_stream_is_used_again_once_it_is_back(started):
    long_context = ("--context-length", "20000")
    pair = PDPair(prefill_args=long_context, decode_args=long_context)
    started(pair)
    router = RouterProcess("--pd-disaggregation", "--prefill", pair.prefill.url, str(pair.bootstrap_port), "--decode", pair.decode.url,
                           "--cb-failure-threshold", "3", "--cb-timeout-duration-secs", "60", "--retry-max-retries", "1",
                           "--retry-initial-backoff-ms", "1")
    started(router)
    decode_url, decode_port = pair.decode.url, pair.decode.port
    long = {"input_ids": [5] * 20, "sampling_params": {"max_new_tokens": 10000, "temperature": 0, "ignore_eos": True}, "stream": True}

    def stream():
        try:
            with requests.post(router.url + "/generate", json=long, stream=True, timeout=60) as r:
                for _ in r.iter_lines():
                    pass
        except requests.RequestException:
            pass

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        streams = [pool.submit(stream) for _ in range(20)]
        wait_until(lambda: pair.decode.state("num_running_reqs") > 0, timeout=30, what="streams decoding")
        pair.decode.stop(signal.SIGKILL)
        for _ in range(6):
            router.post("/generate", {"input_ids": [5, 6], "sampling_params": GREEDY})
        for future in streams:
            future.result(60)
    router.wait_for(lambda: router.workers()[decode_url]["circuit_state"] == "open", what="the decode's circuit to open")
    # The same flags on the same port: a restart.
    pair.decode = Server(*pair._decode_command, "--port", str(decode_port), env=pair._env)
    wait_until(lambda: pair.decode.get("/readiness").status_code == 200, timeout=30, what="the new decode to be ready")
    ready_at = time.monotonic()
    while True:
        r = router.post("/generate", {"input_ids": [5, 6, 7], "sampling_params": GREEDY})
        if r.status_code == 200:
            break
        assert time.monotonic() - ready_at < 5, f"still {r.status_code} {r.text[:200]} {time.monotonic() - ready_at:.1f} s after the decode was ready"
        time.sleep(0.1)
    assert router.workers()[decode_url]["circuit_state"] == "closed"
    pair.assert_pools_whole()


# 7. SIGTERM drains as README says.

def test_sigterm_answers_new_requests_with_a_retryable_503_while_admitted_ones_finish():
    server = Server(*MODEL, "--shutdown-timeout", "60", "--context-length", "20000")
    result = {}

    def run():
        result["r"] = server.post("/generate", {"input_ids": [5] * 8, "sampling_params": {"max_new_tokens": 2000, "temperature": 0, "ignore_eos": True}})

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: server.state("num_running_reqs") > 0, timeout=30, what="the long request to run")
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    refused = server.post("/generate", {"input_ids": [5, 6], "sampling_params": GREEDY})
    assert refused.status_code == 503 and refused.headers.get("Retry-After"), refused.text
    assert server.get("/readiness").status_code == 503
    thread.join(120)
    assert result["r"].status_code == 200 and len(result["r"].json()["output_ids"]) == 2000
    assert server.stop(timeout=30) == 0
