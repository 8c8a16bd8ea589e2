"""`echo` with `logprobs` on /v1/completions, as lm-evaluation-harness sends it
to score texts: the prompt's logprobs checked against transformers' logits,
with and without generation, streamed and not, unified and through a PD pair
behind the router (the decode echoes nulls, the router fills them from the
prefill)."""
import json
import math

import openai
import pytest
import requests

from tokenizers import Tokenizer

from conftest import FIXTURES, reference
from pd_helpers import pair_behind_router

MODEL = "qwen2-fp32"


def log_softmax(logits, token):
    top = max(logits)
    return logits[token] - top - math.log(sum(math.exp(x - top) for x in logits))


def scored(index):
    """A reference prompt followed by its first greedy token, and that token's logprob in transformers."""
    ref = reference(MODEL)
    first = ref["greedy"][index][0]
    return ref["prompts"][index] + [first], log_softmax(ref["last_logits"][index], first)


def completions(url, body):
    response = requests.post(url + "/v1/completions", json={"model": "qwen-tiny", "temperature": 0, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def streamed(url, body):
    """The choices of a streamed completion, each with its events' text and logprob lists joined."""
    response = requests.post(url + "/v1/completions", json={"model": "qwen-tiny", "temperature": 0, "stream": True, **body},
                             timeout=60, stream=True)
    assert response.status_code == 200, response.text
    choices = {}
    for line in response.iter_lines():
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        assert "error" not in event, event
        for choice in event["choices"]:
            joined = choices.setdefault(choice["index"], {"text": "", "token_logprobs": [], "top_logprobs": [], "finish_reason": None})
            joined["text"] += choice["text"]
            joined["token_logprobs"] += choice["logprobs"]["token_logprobs"]
            joined["top_logprobs"] += choice["logprobs"]["top_logprobs"]
            joined["finish_reason"] = choice["finish_reason"] or joined["finish_reason"]
    return [choices[i] for i in sorted(choices)]


def check_scores(choices, prompts):
    """What lm-eval reads: one entry per prompt token, null first, the last one transformers' value and the greedy pick."""
    for choice, (prompt, expected) in zip(choices, prompts):
        values, tops = choice["token_logprobs"], choice["top_logprobs"]
        assert len(values) == len(prompt) and values[0] is None and tops[0] is None
        assert all(v is not None and v <= 0 for v in values[1:])
        assert abs(values[-1] - expected) < 1e-3, (values[-1], expected)
        assert values[-1] == max(tops[-1].values())  # lm-eval's is_greedy


@pytest.fixture(scope="module")
def scored_prompts():
    return [scored(i) for i in (3, 4, 5)]


def test_echo_scores_prompts_with_the_references_logprobs(qwen_server, scored_prompts):
    client = openai.OpenAI(base_url=qwen_server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    prompts = [p for p, _ in scored_prompts]
    out = client.completions.create(model="qwen-tiny", prompt=prompts, echo=True, logprobs=1, max_tokens=0, temperature=0)
    assert out.usage.completion_tokens == 0 and out.usage.prompt_tokens == sum(map(len, prompts))
    choices = sorted(out.choices, key=lambda c: c.index)
    assert [c.finish_reason for c in choices] == ["length"] * 3
    check_scores([{"token_logprobs": c.logprobs.token_logprobs, "top_logprobs": c.logprobs.top_logprobs} for c in choices],
                 scored_prompts)
    # The same values as /generate's input logprobs; an echoed token-id prompt is its decoded text.
    native = qwen_server.post("/generate", {"input_ids": prompts[0], "return_logprob": True, "logprob_start_len": 0,
                                            "sampling_params": {"max_new_tokens": 1, "temperature": 0}}).json()
    native_values = [t[0] for t in native["meta_info"]["input_token_logprobs"]]
    assert len(native_values) == len(prompts[0]) and native_values[0] is None
    # Batched with other prompts or alone, the sums run in another order: equal to float rounding.
    assert all(abs(a - b) < 1e-4 for a, b in zip(native_values[1:], choices[0].logprobs.token_logprobs[1:]))
    assert choices[0].text == Tokenizer.from_file(str(FIXTURES / MODEL / "tokenizer.json")).decode(prompts[0])


def test_echo_with_generation_streamed_and_not(qwen_server, scored_prompts):
    prompt, _ = scored_prompts[0]
    body = {"prompt": [prompt[:-1]], "echo": True, "logprobs": 2, "max_tokens": 3, "n": 2}
    whole = completions(qwen_server.url, body)["choices"]
    plain = completions(qwen_server.url, {"prompt": [prompt[:-1]], "logprobs": 2, "max_tokens": 3})["choices"][0]
    assert len(whole) == 2
    for choice in whole:
        values = choice["logprobs"]["token_logprobs"]
        assert len(values) == len(prompt) - 1 + 3
        assert choice["text"].endswith(plain["text"]) and values[-3:] == plain["logprobs"]["token_logprobs"]
        # The prompt echo and the sampled tokens' offsets are one run of character offsets.
        assert choice["logprobs"]["text_offset"][len(prompt) - 1] == len(choice["text"]) - len(plain["text"])
    stream = streamed(qwen_server.url, body)
    assert [(c["text"], c["token_logprobs"]) for c in stream] == [(c["text"], c["logprobs"]["token_logprobs"]) for c in whole]
    # Without logprobs, echo is only the text; with max_tokens 0, the prompt is the whole choice.
    text_only = completions(qwen_server.url, {"prompt": "Hello there", "echo": True, "max_tokens": 0})["choices"][0]
    assert text_only["text"] == "Hello there" and text_only["logprobs"] is None
    assert streamed(qwen_server.url, {"prompt": "Hello there", "echo": True, "max_tokens": 0, "logprobs": 0})[0]["text"] == "Hello there"
    qwen_server.assert_pool_whole()


@pytest.mark.parametrize("stream", [False, True])
def test_echo_through_a_pd_pair_equals_unified(qwen_server, scored_prompts, started, stream):
    pair, router = pair_behind_router()
    started(pair)
    started(router)
    prompts = [p for p, _ in scored_prompts]
    read = streamed if stream else (lambda url, body: [
        {"text": c["text"], **{k: c["logprobs"][k] for k in ("token_logprobs", "top_logprobs")}, "finish_reason": c["finish_reason"]}
        for c in sorted(completions(url, body)["choices"], key=lambda c: c["index"])])
    for body in [{"prompt": prompts, "echo": True, "logprobs": 1, "max_tokens": 1},
                 {"prompt": prompts[:1], "echo": True, "logprobs": 1, "max_tokens": 0}]:
        via_pd, unified = read(router.url, body), read(qwen_server.url, body)
        check_scores([{k: c[k][:len(p)] for k in ("token_logprobs", "top_logprobs")} for c, p in zip(via_pd, prompts)],
                     scored_prompts)
        assert [c["text"] for c in via_pd] == [c["text"] for c in unified]
        for got, want in zip(via_pd, unified):
            assert len(got["token_logprobs"]) == len(want["token_logprobs"])
            assert all(abs(g - w) < 1e-4 for g, w in zip(got["token_logprobs"][1:], want["token_logprobs"][1:]))
    # Asked directly (as sglang-router, which merges nothing, would), a decode says honestly what it did not compute.
    direct = pair.post("/v1/completions", pair.bootstrap({"prompt": prompts[0], "echo": True, "logprobs": 1, "max_tokens": 1,
                                                          "temperature": 0}))[0].json()["choices"][0]["logprobs"]["token_logprobs"]
    assert direct[:len(prompts[0])] == [None] * len(prompts[0]) and direct[-1] is not None
    pair.assert_pools_whole()
