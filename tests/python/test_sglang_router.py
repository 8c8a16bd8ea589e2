"""The real sglang-router (PyPI `sglang-router`) in front of `pdserve serve`
instances: PDServe speaks its contract (it probes /server_info and
/model_info, sends an HTTP/2 preface as a gRPC probe, loads the tokenizer
from the reported local model path), and its answers equal those of
PDServe's own router."""
import json

import pytest
import requests

from conftest import FIXTURES, TRANSFER_BACKENDS, Server, assert_raw_and_escaped_bom_agree
from router_helpers import RouterProcess, SGLangRouterProcess, free_port, pd_mode_refusal, sglang_router_available

pytestmark = pytest.mark.skipif(not sglang_router_available(), reason="sglang-router is not installed (pip install sglang-router==0.3.2)")

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
GREEDY = {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}

# sglang-router needs `model` in OpenAI bodies (422 without it on completions;
# chat forwards "unknown", which the instance rightly refuses with 404).
REQUESTS = [
    ("/generate", {"text": "The capital of France is", "sampling_params": GREEDY}),
    ("/generate", {"input_ids": [5, 6, 7, 8], "sampling_params": GREEDY, "return_logprob": True}),
    # Its /generate schema takes `text` as one string (a list of texts is a 422); batches go as input_ids lists.
    ("/generate", {"input_ids": [[5, 6], [7, 8, 9]], "sampling_params": GREEDY}),
    ("/v1/completions", {"model": "qwen-tiny", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}),
    ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 8, "temperature": 0}),
]
# Constrained outputs: the constraint reaches both PD halves through their router as sent.
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0},
                                          "ok": {"type": "boolean"}}, "required": ["name", "age", "ok"]}
CONSTRAINED = [
    ("/generate", {"text": "Answer:", "sampling_params": {"max_new_tokens": 20, "temperature": 0, "regex": "(yes|no)! [0-9]{2}"}}),
    ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 120, "temperature": 0,
                              "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}}),
    ("/v1/completions", {"model": "qwen-tiny", "prompt": "Data:", "max_tokens": 200, "temperature": 0,
                         "response_format": {"type": "json_object"}}),
]


def comparable(obj):
    """Drops what differs between any two calls: ids, timestamps, latencies."""
    if isinstance(obj, dict):
        return {k: comparable(v) for k, v in obj.items() if k not in {"id", "created", "e2e_latency", "phases", "system_fingerprint"}}
    if isinstance(obj, list):
        return [comparable(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def workers():
    pair = [Server(*MODEL), Server(*MODEL)]
    yield pair
    for server in pair:
        server.stop()


def test_sglang_router_and_pdserve_router_answer_alike(workers):
    urls = [w.url for w in workers]
    theirs = SGLangRouterProcess("--worker-urls", *urls, "--policy", "round_robin")
    ours = RouterProcess("--worker-urls", *urls, "--policy", "round_robin")
    try:
        for path, body in REQUESTS:
            a = theirs.post(path, body)
            b = ours.post(path, body)
            assert a.status_code == 200, (path, a.text)
            assert b.status_code == 200, (path, b.text)
            assert comparable(a.json()) == comparable(b.json()), path
            assert comparable(a.json()) == comparable(workers[0].post(path, body).json()), path
        # Streaming through sglang-router ends where a direct call does.
        body = {"text": "Stream me", "sampling_params": GREEDY, "stream": True}
        with requests.post(theirs.url + "/generate", json=body, stream=True, timeout=60) as response:
            events = [line for line in response.iter_lines() if line]
        assert events[-1] == b"data: [DONE]"
        final = json.loads(events[-2][len(b"data: "):])
        assert final["output_ids"] == workers[0].post("/generate", {**body, "stream": False}).json()["output_ids"]
        # Its start-up probes (an HTTP/2 preface among them) left the instances serving.
        assert all(w.proc.poll() is None for w in workers)
        assert all(w.get("/health").status_code == 200 for w in workers)
    finally:
        theirs.stop()
        ours.stop()


@pytest.mark.skipif(pd_mode_refusal() is not None, reason=f"PD instances are not available: {pd_mode_refusal()}")
@pytest.mark.parametrize("backend", TRANSFER_BACKENDS)
def test_sglang_router_pd_mode_in_front_of_pdserve(workers, backend):
    bootstrap_port = free_port()
    engine = ["--disaggregation-transfer-backend", backend]
    env = {"UCX_NET_DEVICES": "lo"} if backend == "nixl" else None
    prefill = Server(*MODEL, *engine, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap_port), env=env)
    decode = Server(*MODEL, *engine, "--disaggregation-mode", "decode", env=env)
    theirs = None
    ours = None
    try:
        pd = ["--pd-disaggregation", "--prefill", prefill.url, str(bootstrap_port), "--decode", decode.url]
        theirs = SGLangRouterProcess(*pd)
        ours = RouterProcess(*pd)
        for path, body in REQUESTS + CONSTRAINED:
            a, b = theirs.post(path, body), ours.post(path, body)
            assert a.status_code == 200 and b.status_code == 200, (path, a.text, b.text)
            assert comparable(a.json()) == comparable(b.json()), path
            # Token for token what a unified instance answers.
            assert comparable(a.json()) == comparable(workers[0].post(path, body).json()), path
        # A raw U+FEFF survives their router and both PD halves, batches and chat included.
        assert_raw_and_escaped_bom_agree(theirs.url)
    finally:
        for thing in (theirs, ours, prefill, decode):
            if thing is not None:
                thing.stop()
