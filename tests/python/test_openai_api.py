"""The real `openai` client against a real server: outputs equal the engine's
greedy outputs (the transformers references), streaming and not."""
import openai
import pytest
from tokenizers import Tokenizer

from conftest import FIXTURES, assert_raw_and_escaped_bom_agree, reference

MODEL = "qwen2-fp32"


@pytest.fixture(scope="module")
def client(qwen_server):
    return openai.OpenAI(base_url=qwen_server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_file(str(FIXTURES / MODEL / "tokenizer.json"))


def expected_text(tokenizer, index):
    ref = reference(MODEL)
    return tokenizer.decode(ref["greedy"][index], skip_special_tokens=True)


@pytest.mark.parametrize("index", [0, 5, 13, 21])
def test_completion_matches_reference(client, tokenizer, index):
    ref = reference(MODEL)
    out = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][index], max_tokens=ref["max_new_tokens"],
                                    temperature=0, extra_body={"ignore_eos": True})
    assert out.choices[0].text == expected_text(tokenizer, index)
    assert out.choices[0].finish_reason == "length"
    assert out.usage.prompt_tokens == len(ref["prompts"][index])
    assert out.usage.completion_tokens == ref["max_new_tokens"]


@pytest.mark.parametrize("index", [3, 14])
def test_streamed_completion_matches_reference(client, tokenizer, index):
    ref = reference(MODEL)
    stream = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][index], max_tokens=ref["max_new_tokens"],
                                       temperature=0, stream=True, stream_options={"include_usage": True},
                                       extra_body={"ignore_eos": True})
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    assert text == expected_text(tokenizer, index)
    assert finish == "length"
    assert usage.completion_tokens == ref["max_new_tokens"]


def test_text_prompt_and_batch(client):
    ref = reference(MODEL)
    texts = [t for t in ref["texts"] if t][:2]
    out = client.completions.create(model="qwen-tiny", prompt=texts, max_tokens=5, temperature=0)
    assert [c.index for c in out.choices] == [0, 1]
    single = client.completions.create(model="qwen-tiny", prompt=texts[1], max_tokens=5, temperature=0)
    assert out.choices[1].text == single.choices[0].text


def test_logprobs_and_n(client):
    ref = reference(MODEL)
    out = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][7], max_tokens=4, temperature=0, logprobs=3)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.token_logprobs) == 4 and all(len(t) == 3 for t in lp.top_logprobs)
    assert all(v <= 0 for v in lp.token_logprobs)
    sampled = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][7], max_tokens=8, temperature=1.0, n=2, seed=7)
    again = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][7], max_tokens=8, temperature=1.0, n=2, seed=7)
    assert len(sampled.choices) == 2
    assert [c.text for c in sampled.choices] == [c.text for c in again.choices]


def test_stop_string(client, tokenizer):
    ref = reference(MODEL)
    full = expected_text(tokenizer, 13)
    stop = full[len(full) // 2: len(full) // 2 + 2]
    out = client.completions.create(model="qwen-tiny", prompt=ref["prompts"][13], max_tokens=12, temperature=0,
                                    stop=[stop], extra_body={"ignore_eos": True})
    assert out.choices[0].text == full[: full.index(stop)]
    assert out.choices[0].finish_reason == "stop"


def render_chat(messages):
    """The template as transformers renders it (jinja2 with HF's settings)."""
    import json as _json
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    config = _json.loads((FIXTURES / MODEL / "tokenizer_config.json").read_text())
    source = config.get("chat_template") or (FIXTURES / MODEL / "chat_template.jinja").read_text()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, indent=None: _json.dumps(x, ensure_ascii=False, indent=indent)
    return env.from_string(source).render(messages=messages, add_generation_prompt=True,
                                          bos_token=config.get("bos_token") or "", eos_token=config.get("eos_token") or "")


@pytest.mark.parametrize("stream", [False, True])
def test_chat_matches_generate_on_rendered_prompt(client, qwen_server, tokenizer, stream):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour. Ünïcødé ✓"}]
    ids = tokenizer.encode(render_chat(messages), add_special_tokens=False).ids
    direct = qwen_server.post("/generate", {"input_ids": ids, "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}}).json()
    if stream:
        text = ""
        for chunk in client.chat.completions.create(model="qwen-tiny", messages=messages, max_tokens=8, temperature=0,
                                                    stream=True, extra_body={"ignore_eos": True}):
            for choice in chunk.choices:
                text += choice.delta.content or ""
    else:
        out = client.chat.completions.create(model="qwen-tiny", messages=messages, max_tokens=8, temperature=0,
                                             extra_body={"ignore_eos": True})
        text = out.choices[0].message.content
        assert out.usage.prompt_tokens == len(ids)
    assert text == direct["text"]


def test_models_listing(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["qwen-tiny"]
    assert client.models.retrieve("qwen-tiny").id == "qwen-tiny"
    with pytest.raises(openai.NotFoundError, match="qwen-tiny"):
        client.models.retrieve("org/another-model")


def test_a_model_is_retrieved_through_the_router_too(qwen_server, started):
    from router_helpers import RouterProcess
    router = RouterProcess("--worker-urls", qwen_server.url)
    started(router)
    via = openai.OpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    assert via.models.retrieve("qwen-tiny").id == "qwen-tiny"
    with pytest.raises(openai.NotFoundError):
        via.models.retrieve("org/another-model")


def test_chat_template_flag_overrides_the_tokenizers(tmp_path):
    from conftest import Server
    template = tmp_path / "tiny.jinja"
    template.write_text("{% for m in messages %}<<{{ m['role'] }}>>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<<bot>>{% endif %}")
    server = Server("--model-path", str(FIXTURES / MODEL), "--chat-template", str(template))
    try:
        tok = Tokenizer.from_file(str(FIXTURES / MODEL / "tokenizer.json"))
        ids = tok.encode("<<user>>hello<<bot>>", add_special_tokens=False).ids
        direct = server.post("/generate", {"input_ids": ids, "sampling_params": {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}}).json()
        chat = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 6,
                                                   "temperature": 0, "ignore_eos": True}).json()
        assert chat["usage"]["prompt_tokens"] == len(ids)
        assert chat["choices"][0]["message"]["content"] == direct["text"]
    finally:
        server.stop()


def test_model_without_template_gets_a_clear_400():
    from conftest import Server
    server = Server("--model-path", str(FIXTURES / "gpt2tok-llama-fp32"))
    try:
        response = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 400 and "chat template" in response.json()["error"]["message"]
    finally:
        server.stop()


def test_byte_order_mark_reaches_the_tokenizer(qwen_server, tokenizer):
    assert_raw_and_escaped_bom_agree(qwen_server.url)
    text = "\ufeffThe capital"
    r = qwen_server.post("/generate", {"text": text, "sampling_params": {"max_new_tokens": 1}})
    assert r.json()["meta_info"]["prompt_tokens"] == len(tokenizer.encode(text).ids) > len(tokenizer.encode(text[1:]).ids)
