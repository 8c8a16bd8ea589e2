"""Bad input gets a clear JSON error and loses nothing; disconnects free
pages at once; overload answers 503; SIGTERM drains and exits 0."""
import json
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import FIXTURES, Server, post_raw, reference, wait_until


def error_of(response):
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"}
    assert body["error"]["code"] == response.status_code
    return body["error"]


def raw_post(server, path, data, content_type="application/json"):
    return requests.post(server.url + path, data=data, headers={"Content-Type": content_type}, timeout=30)


BAD_REQUESTS = [
    ("/v1/completions", b'{"prompt": "hi", "max_tokens": ', 400, "not valid JSON"),
    ("/v1/completions", b'[1, 2, 3]', 400, "JSON object"),
    ("/v1/completions", json.dumps({"prompt": "hi", "max_tokens": "ten"}).encode(), 400, "max_tokens"),
    ("/v1/completions", json.dumps({"prompt": "hi", "temperature": -1}).encode(), 400, "temperature"),
    ("/v1/completions", json.dumps({"prompt": "hi", "top_p": 7}).encode(), 400, "top_p"),
    ("/v1/completions", json.dumps({"prompt": "hi", "max_tokens": 4, "model": "gpt-9"}).encode(), 404, "gpt-9"),
    ("/v1/completions", json.dumps({"prompt": ""}).encode(), 400, "empty"),
    ("/v1/completions", json.dumps({"prompt": [1, 2, 3], "max_tokens": 100000}).encode(), 400, "context length"),
    ("/v1/completions", json.dumps({"prompt": "hi", "stop": ["x"] * 40}).encode(), 400, "stop strings"),
    ("/v1/completions", json.dumps({"prompt": [10 ** 9]}).encode(), 400, "vocabulary"),
    ("/v1/completions", json.dumps({"max_tokens": 3}).encode(), 400, "prompt"),
    ("/v1/chat/completions", json.dumps({"messages": []}).encode(), 400, "messages"),
    ("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}).encode(), 400, "text parts"),
    ("/generate", json.dumps({"sampling_params": {"max_new_tokens": 2}}).encode(), 400, "input_ids"),
    ("/generate", json.dumps({"text": "hi", "sampling_params": {"max_new_tokens": -3}}).encode(), 400, "max_new_tokens"),
    ("/generate", json.dumps({"text": "hi", "sampling_params": {"ebnf": "root ::= \"a\""}}).encode(), 400, "not supported"),
    ("/generate", json.dumps({"text": "hi", "sampling_params": {"regex": "a(b"}}).encode(), 400, "missing ')'"),
]


@pytest.mark.parametrize("path,data,status,needle", BAD_REQUESTS)
def test_bad_input_is_refused_and_loses_nothing(qwen_server, path, data, status, needle):
    response = raw_post(qwen_server, path, data)
    assert response.status_code == status, response.text
    assert needle in error_of(response)["message"]
    ok = qwen_server.post("/generate", {"input_ids": [5, 6, 7], "sampling_params": {"max_new_tokens": 3, "temperature": 0}})
    assert ok.status_code == 200 and len(ok.json()["output_ids"]) <= 3
    qwen_server.assert_pool_whole()


def test_context_error_gives_the_numbers(qwen_server):
    response = raw_post(qwen_server, "/v1/completions", json.dumps({"prompt": [1, 2, 3], "max_tokens": 100000}).encode())
    message = error_of(response)["message"]
    assert "100003" in message and "3 prompt" in message


def test_unknown_route_is_json_404(qwen_server):
    response = qwen_server.get("/v2/nothing")
    assert response.status_code == 404 and error_of(response)["type"] == "not_found"


def test_info_endpoints(qwen_server):
    info = qwen_server.get("/get_model_info").json()
    assert info["model_path"] == str(FIXTURES / "qwen2-fp32") and info["served_model_name"] == "qwen-tiny"
    assert info["tp_size"] == 1 and info["dp_size"] == 1 and info["disaggregation_mode"] == "null"
    assert qwen_server.get("/model_info").json() == info
    assert qwen_server.get("/server_info").json()["kv_pool"]["page_size"] == 16
    load = qwen_server.get("/get_load").json()
    assert isinstance(load, list) and "num_tokens" in load[0]
    assert qwen_server.get("/health_generate").status_code == 200
    metrics = qwen_server.get("/metrics").text
    for name in ["sglang:time_to_first_token_seconds_bucket", "sglang:generation_tokens_total", "sglang:num_running_reqs",
                 "pdserve:kv_cache_usage_perc", "pdserve:request_success_total", "sglang:inter_token_latency_seconds_count"]:
        assert name in metrics


def stream_then_disconnect(server, body, events=2):
    """Opens a streaming request on a raw socket, reads a few events, then drops the connection."""
    sock = post_raw(server.port, "/generate", body)
    seen = b""
    while seen.count(b"data:") < events:
        chunk = sock.recv(65536)
        assert chunk, "server closed the stream early"
        seen += chunk
    sock.close()


def test_disconnect_mid_stream_frees_pages(qwen_server):
    ref = reference("qwen2-fp32")
    stream_then_disconnect(qwen_server, {"input_ids": ref["prompts"][20], "stream": True,
                                         "sampling_params": {"max_new_tokens": 15000, "temperature": 0, "ignore_eos": True}})
    wait_until(lambda: qwen_server.state("num_running_reqs") == 0, timeout=10, what="the request kept running after its client left")
    qwen_server.assert_pool_whole()


def test_abort_request_by_rid(qwen_server):
    results = {}

    def run():
        results["r"] = qwen_server.post("/generate", {"text": "hello", "rid": "job-42",
                                                      "sampling_params": {"max_new_tokens": 15000, "ignore_eos": True}}).json()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    aborted = 0
    while aborted == 0 and time.monotonic() < deadline:
        aborted = qwen_server.post("/abort_request", {"rid": "job-42"}).json()["aborted"]
        time.sleep(0.02)
    thread.join(30)
    assert aborted == 1
    assert results["r"]["meta_info"]["finish_reason"]["type"] == "abort"
    qwen_server.assert_pool_whole()


def test_api_key():
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--api-key", "sekret")
    try:
        assert server.get("/health").status_code == 200
        denied = server.post("/generate", {"text": "hi"})
        assert denied.status_code == 401 and error_of(denied)["type"] == "authentication_error"
        assert server.get("/v1/models").status_code == 401
        ok = server.post("/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 2}}, headers={"Authorization": "Bearer sekret"})
        assert ok.status_code == 200
    finally:
        server.stop()


def test_overload_gets_503_with_retry_after():
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--max-running-requests", "1", "--max-queued-requests", "0",
                    "--context-length", "20000")
    try:
        holder = threading.Thread(target=lambda: server.post("/generate", {"text": "hold", "rid": "holder",
                                                                           "sampling_params": {"max_new_tokens": 15000, "ignore_eos": True}}))
        holder.start()
        deadline = time.monotonic() + 10
        while server.get("/get_load").json()[0]["num_reqs"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = server.post("/generate", {"text": "more", "sampling_params": {"max_new_tokens": 2}})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert error_of(refused)["type"] == "server_overloaded"
        server.post("/abort_request", {"rid": "holder"})
        holder.join(30)
        assert server.post("/generate", {"text": "more", "sampling_params": {"max_new_tokens": 2}}).status_code == 200
    finally:
        server.stop()


def test_http2_preface_probe_is_dropped_quietly(qwen_server):
    sock = socket.create_connection(("127.0.0.1", qwen_server.port), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert qwen_server.get("/health").status_code == 200


def test_sigterm_drains_then_aborts_and_exits_zero():
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--shutdown-timeout", "1", "--context-length", "20000")
    results = {}

    def run():
        try:
            results["r"] = server.post("/generate", {"text": "long", "sampling_params": {"max_new_tokens": 15000, "ignore_eos": True}}).json()
        except requests.RequestException as error:
            results["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while server.get("/get_load").json()[0]["num_reqs"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    code = server.stop(signal.SIGTERM, timeout=30)
    thread.join(30)
    assert code == 0
    assert time.monotonic() - started < 20
    assert results.get("r", {}).get("meta_info", {}).get("finish_reason", {}).get("type") in ("abort", "length"), results


def test_disconnect_during_non_streamed_request_frees_pages(qwen_server):
    sock = post_raw(qwen_server.port, "/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 15000, "ignore_eos": True}})
    wait_until(lambda: qwen_server.state("num_running_reqs") > 0, timeout=10, what="num_running_reqs > 0")
    sock.close()
    wait_until(lambda: qwen_server.state("num_running_reqs") == 0, timeout=10, what="a non-streamed request outlived its client")
    qwen_server.assert_pool_whole()


def test_openai_request_abortable_by_rid(qwen_server):
    results = {}

    def run():
        results["r"] = qwen_server.post("/v1/completions", {"prompt": "hello", "max_tokens": 15000, "ignore_eos": True, "rid": "oai-7"}).json()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    aborted = 0
    while aborted == 0 and time.monotonic() < deadline:
        aborted = qwen_server.post("/abort_request", {"rid": "oai-7"}).json()["aborted"]
        time.sleep(0.02)
    thread.join(30)
    assert aborted == 1 and results["r"]["choices"][0]["finish_reason"] == "abort"


@pytest.mark.parametrize("flags,needle", [
    (["--tp-size", "2"], "tensor parallelism"),
    (["--disaggregation-mode", "prefill", "--disaggregation-transfer-backend", "mori"], "not built yet"),
    (["--enable-dp-attention"], "not supported"),
    (["--schedule-policy", "dfs-weight"], "dfs-weight is not built"),
    (["--schedule-policy", "shortest"], "use one of fcfs, lpm, lof, random, sprf"),
    (["--model-path", "/no/such/folder"], "no such folder"),
])
def test_unsupported_startup_flags_fail_by_name(flags, needle):
    import subprocess
    from conftest import BIN
    args = [BIN, "serve", "--port", "0", "--model-path", str(FIXTURES / "qwen2-fp32")] + flags
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and needle in done.stderr + done.stdout


def test_empty_text_is_tokenized_like_any_other():
    """As SGLang: "" is one BOS token for a tokenizer that adds one (llama3 here); the qwen2
    tokenizer adds nothing, and that prompt is refused as empty (BAD_REQUESTS above)."""
    from tokenizers import Tokenizer
    bos = Tokenizer.from_file(str(FIXTURES / "llama3-bf16" / "tokenizer.json")).encode("").ids
    assert len(bos) == 1
    server = Server("--model-path", str(FIXTURES / "llama3-bf16"), "--served-model-name", "llama-tiny")
    try:
        for path, body in [("/generate", {"text": "", "sampling_params": {"max_new_tokens": 2}}),
                           ("/v1/completions", {"prompt": ["", "x"], "max_tokens": 2})]:
            r = server.post(path, body)
            assert r.status_code == 200, r.text
            if path == "/generate":
                assert r.json()["meta_info"]["prompt_tokens"] == 1
        same = server.post("/generate", {"input_ids": bos, "sampling_params": {"max_new_tokens": 4, "temperature": 0}}).json()
        empty = server.post("/generate", {"text": "", "sampling_params": {"max_new_tokens": 4, "temperature": 0}}).json()
        assert empty["output_ids"] == same["output_ids"]
        server.assert_pool_whole()
    finally:
        server.stop()


def test_an_urgent_request_preempts_through_the_server(qwen_server):
    """Both slots busy with long low-priority generations: a priority-50
    request finishes long before them, they still end with the outputs they
    have alone, and the server counts one preemption."""
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--enable-priority-scheduling", "--max-running-requests", "2",
                    "--context-length", "20000")
    try:
        long_body = {"input_ids": [11, 12, 13], "sampling_params": {"max_new_tokens": 3000, "temperature": 0, "ignore_eos": True}}
        expected = qwen_server.post("/generate", long_body).json()["output_ids"]
        results, done = {}, {}

        def run(name, body):
            results[name] = server.post("/generate", body).json()
            done[name] = time.monotonic()

        lows = [threading.Thread(target=run, args=(f"low-{i}", {**long_body, "priority": 0})) for i in range(2)]
        for t in lows:
            t.start()
        wait_until(lambda: server.get("/get_server_info").json()["internal_states"][0]["num_running_reqs"] == 2, what="both slots busy")
        run("urgent", {"text": "urgent", "priority": 50, "sampling_params": {"max_new_tokens": 4, "temperature": 0}})
        for t in lows:
            t.join(120)
        assert all(done["urgent"] < done[f"low-{i}"] for i in range(2))
        assert [results[f"low-{i}"]["output_ids"] for i in range(2)] == [expected, expected]
        assert server.get("/get_server_info").json()["internal_states"][0]["num_preempted_reqs"] == 1
        server.assert_pool_whole()
    finally:
        server.stop()


def test_priority_is_refused_without_priority_scheduling_and_taken_with_it(qwen_server):
    bodies = [("/generate", {"text": "urgent", "priority": 7, "sampling_params": {"max_new_tokens": 2}}),
              ("/v1/completions", {"prompt": "urgent", "priority": 7, "max_tokens": 2}),
              ("/v1/chat/completions", {"messages": [{"role": "user", "content": "urgent"}], "priority": 7, "max_tokens": 2})]
    for path, body in bodies:
        refused = qwen_server.post(path, body)
        assert refused.status_code == 400 and "--enable-priority-scheduling" in refused.json()["error"]["message"], refused.text
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--enable-priority-scheduling", "--default-priority-value", "2")
    try:
        for path, body in bodies:
            assert server.post(path, body).status_code == 200
        assert server.post("/generate", {"text": "x", "priority": "high"}).status_code == 400
        server.assert_pool_whole()
    finally:
        server.stop()
