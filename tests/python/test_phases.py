"""Per-request phases (`meta_info.phases`): where a request's time went,
unified and through a PD pair behind the router (both halves' phases joined
in one answer, batched and streamed), and their histograms in /metrics."""
import json

import pytest
import requests

from conftest import FIXTURES
from pd_helpers import pair_behind_router
from router_helpers import metric

GREEDY = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}
UNIFIED = {"queue_wait", "prefill_compute", "decode"}
PREFILL = {"queue_wait", "prefill_compute", "prefill_bootstrap_wait", "kv_transfer", "kv_transfer_bytes"}
DECODE = {"decode_bootstrap_wait", "kv_wait", "decode_queue_wait", "decode"}


def check(meta, names):
    phases = meta["phases"]
    assert set(phases) == names, phases
    seconds = {k: v for k, v in phases.items() if k != "kv_transfer_bytes"}
    assert all(v >= 0 for v in seconds.values())
    return phases


def final_events(response):
    """The last event of each item of a /generate stream."""
    last = {}
    for line in response.iter_lines():
        if line.startswith(b"data: {"):
            event = json.loads(line[6:])
            last[event.get("index", 0)] = event
    return [last[i] for i in sorted(last)]


def phase_count(server, phase):
    return metric(server.get("/metrics").text, "pdserve:request_phase_seconds_count", phase=phase)


def test_unified_phases_add_up_to_no_more_than_the_request(qwen_server):
    before = phase_count(qwen_server, "decode")
    meta = qwen_server.post("/generate", {"text": "Where did the time go?", "sampling_params": GREEDY}).json()["meta_info"]
    phases = check(meta, UNIFIED)
    assert sum(phases.values()) <= meta["e2e_latency"]
    assert phase_count(qwen_server, "decode") == before + 1
    # Nothing about PD on an instance that runs none.
    assert metric(qwen_server.get("/metrics").text, "pdserve:request_phase_seconds_count", phase="kv_wait") == 0


@pytest.fixture(scope="module")
def pd():
    pair, router = pair_behind_router()
    yield pair, router
    router.stop()
    pair.stop()


def test_pd_answer_holds_both_halves_phases(pd):
    pair, router = pd
    texts = ["one prompt of a batch", "and a second one, a little longer than the first"]
    answers = requests.post(router.url + "/generate", json={"text": texts, "sampling_params": GREEDY, "return_logprob": True,
                                                          "logprob_start_len": 0},
                            timeout=60).json()
    page_size = pair.prefill.get("/get_server_info").json()["kv_pool"]["page_size"]
    config = json.loads((FIXTURES / "qwen2-fp32" / "config.json").read_text())
    # One page of every layer's K and V, in fp32.
    page_bytes = page_size * config["num_key_value_heads"] * (config["hidden_size"] // config["num_attention_heads"]) * 4 * 2 * config["num_hidden_layers"]
    for answer in answers:
        meta = answer["meta_info"]
        phases = check(meta, PREFILL | DECODE)
        assert phases["kv_transfer_bytes"] == -(-meta["prompt_tokens"] // page_size) * page_bytes
        assert len(meta["input_token_logprobs"]) == meta["prompt_tokens"]  # the logprob merge still works beside it
    # Streamed: the final event of each item has them; the halves count their own phases.
    stream = requests.post(router.url + "/generate", json={"text": texts[0], "sampling_params": GREEDY, "stream": True},
                           timeout=60, stream=True)
    [last] = final_events(stream)
    check(last["meta_info"], PREFILL | DECODE)
    assert phase_count(pair.prefill, "kv_transfer") == 3 and phase_count(pair.decode, "kv_wait") == 3
    assert phase_count(pair.prefill, "decode") == 0 and phase_count(pair.decode, "prefill_compute") == 0
    assert metric(pair.prefill.get("/metrics").text, "pdserve:kv_transfer_bytes_count") == 3


def test_each_pd_half_reports_only_its_own_phases(pd):
    pair, _ = pd
    body = pair.bootstrap({"text": "asked of both halves directly", "sampling_params": GREEDY})
    decode, prefill = pair.post("/generate", body)
    check(decode.json()["meta_info"], DECODE)
    check(prefill.json()["meta_info"], PREFILL)
    pair.assert_pools_whole()


def openai_final_choices(response):
    """The last event of each choice of an OpenAI stream."""
    last = {}
    for line in response.iter_lines():
        if line.startswith(b"data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                last[choice["index"]] = choice
    return [last[i] for i in sorted(last)]


OPENAI = [
    ("/v1/completions", {"model": "qwen-tiny", "prompt": ["first prompt", "and a second"], "max_tokens": 5, "temperature": 0}),
    ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "Hi"}], "n": 2, "max_tokens": 5,
                              "temperature": 0}),
]


@pytest.mark.parametrize("path, body", OPENAI)
def test_openai_choices_carry_phases_when_asked(qwen_server, pd, path, body):
    """`return_phases`: each choice has its phases (the streamed choice in its
    last event); through the PD router both halves'; unasked, none."""
    _, router = pd
    for url, names in ((qwen_server.url, UNIFIED), (router.url, PREFILL | DECODE)):
        plain = requests.post(url + path, json=body, timeout=60).json()
        assert all("phases" not in c for c in plain["choices"])
        whole = requests.post(url + path, json={**body, "return_phases": True}, timeout=60).json()
        assert len(whole["choices"]) == 2
        for choice in whole["choices"]:
            check(choice, names)
        stream = requests.post(url + path, json={**body, "return_phases": True, "stream": True}, timeout=60, stream=True)
        for choice in openai_final_choices(stream):
            assert choice["finish_reason"] is not None
            check(choice, names)
    assert requests.post(qwen_server.url + path, json={**body, "return_phases": 1}, timeout=60).status_code == 400
