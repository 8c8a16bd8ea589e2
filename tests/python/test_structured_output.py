"""Structured output: SGLang's `regex` and `json_schema` sampling params,
OpenAI's `response_format` (json_object, json_schema), vLLM's `guided_*`
fields and `tool_choice` required / named, with the real `openai` client,
greedy and sampled, batched, streamed, on one instance and through a PD pair
behind the router. The model is a random tiny Qwen2 with Qwen's 152k-token
vocabulary: left alone it writes noise, so every valid output is the
constraint's doing."""
import json
import re
import time

import jsonschema
import openai
import pytest
import requests

from conftest import FIXTURES, Server
from pd_helpers import pair_behind_router

MODEL = "qwen-tiny"
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
        "member": {"type": "boolean"},
        "note": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
    },
    "required": ["name", "age", "member"],
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 10}, "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string", "pattern": "^[A-Z]{3}$"}}, "required": ["zone"]}}},
]
TOOL_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "Tell me about someone."}]


@pytest.fixture(scope="module")
def server():
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", MODEL)
    yield server
    server.stop()


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)


def person_format():
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_chat_response_format_json_schema(server, seed):
    sampling = {"temperature": 0} if seed is None else {"temperature": 1.0, "top_p": 0.9, "seed": seed}
    out = client(server.url).chat.completions.create(model=MODEL, messages=ASK, max_tokens=200,
                                                     response_format=person_format(), **sampling)
    choice = out.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    jsonschema.validate(json.loads(choice.message.content), PERSON)


def test_completions_json_object_batched_and_n(server):
    out = client(server.url).completions.create(model=MODEL, prompt=["one", "two"], n=2, max_tokens=400, temperature=1.0, seed=7,
                                                extra_body={"response_format": {"type": "json_object"}})
    assert len(out.choices) == 4
    for choice in out.choices:
        if choice.finish_reason == "stop":
            assert isinstance(json.loads(choice.text), dict)
        else:
            # Cut at max_tokens: still the start of an object.
            assert choice.finish_reason == "length" and choice.text.startswith("{")


def test_streamed_chat_json_schema_equals_whole(server):
    kwargs = dict(model=MODEL, messages=ASK, max_tokens=200, temperature=0, response_format=person_format())
    whole = client(server.url).chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client(server.url).chat.completions.create(stream=True, **kwargs))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole
    jsonschema.validate(json.loads(streamed), PERSON)


def test_generate_regex_and_schema_text_per_prompt(server):
    """SGLang's native form: json_schema as JSON text; constrained and free prompts in one batch."""
    free = {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}
    body = {"text": ["Hello", "Hello", "Hello"], "sampling_params": [
        {"max_new_tokens": 30, "temperature": 0, "regex": r"(yes|no), [0-9]{3}!"},
        {"max_new_tokens": 200, "temperature": 0, "json_schema": json.dumps(PERSON)},
        free,
    ]}
    out = requests.post(server.url + "/generate", json=body, timeout=60).json()
    assert re.fullmatch(r"(yes|no), [0-9]{3}!", out[0]["text"]), out[0]["text"]
    assert out[0]["meta_info"]["finish_reason"]["type"] == "stop"
    jsonschema.validate(json.loads(out[1]["text"]), PERSON)
    alone = requests.post(server.url + "/generate", json={"text": "Hello", "sampling_params": free}, timeout=60).json()
    assert out[2]["output_ids"] == alone["output_ids"]
    server.assert_pool_whole()


def test_constrained_greedy_takes_the_best_allowed_token(server):
    """Each step's token is the model's most likely token among those the
    regex allows (checked against the step's top 5 raw logprobs)."""
    body = {"text": "Count:", "return_logprob": True, "top_logprobs_num": 5, "return_text_in_logprobs": True,
            "sampling_params": {"max_new_tokens": 16, "temperature": 0, "regex": "[0-9]+"}}
    out = requests.post(server.url + "/generate", json=body, timeout=60).json()
    assert re.fullmatch("[0-9]+", out["text"])
    chosen = [entry[1] for entry in out["meta_info"]["output_token_logprobs"]]
    for step, top in enumerate(out["meta_info"]["output_top_logprobs"]):
        so_far = "".join(entry[2] for entry in out["meta_info"]["output_token_logprobs"][:step])
        allowed = [t for t in top if (t[2] and t[2].isdigit()) or (so_far and t[2] == "" and step == len(chosen) - 1)]
        if allowed:
            assert chosen[step] == allowed[0][1], (step, top, chosen[step])


def test_guided_choice_and_regex_fields(server):
    out = client(server.url).completions.create(model=MODEL, prompt="Pick:", max_tokens=10, temperature=1.0, seed=4,
                                                extra_body={"guided_choice": ["alpha", "beta", "gamma delta"]})
    assert out.choices[0].text in ("alpha", "beta", "gamma delta")
    out = client(server.url).completions.create(model=MODEL, prompt="Code:", max_tokens=20, temperature=0,
                                                extra_body={"regex": "[A-Z]{2}-[0-9]{2}"})
    assert re.fullmatch("[A-Z]{2}-[0-9]{2}", out.choices[0].text)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("choice", ["required", "get_time"])
def test_tool_choice_forces_valid_calls(server, choice, stream):
    tool_choice = choice if choice == "required" else {"type": "function", "function": {"name": choice}}
    # One call: a random model left to make parallel calls rarely stops making them.
    kwargs = dict(model=MODEL, messages=ASK, tools=TOOLS, tool_choice=tool_choice, parallel_tool_calls=False, max_tokens=300,
                  temperature=0)
    if stream:
        chunks = list(client(server.url).chat.completions.create(stream=True, **kwargs))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        message = client(server.url).chat.completions.create(**kwargs).choices[0]
        content, calls, finish = message.message.content, message.message.tool_calls, [message.finish_reason]
    assert not content
    assert finish == ["tool_calls"]
    assert len(calls) == 1
    for call in calls:
        assert call.function.name in TOOL_SCHEMAS if choice == "required" else call.function.name == choice
        jsonschema.validate(json.loads(call.function.arguments), TOOL_SCHEMAS[call.function.name])


@pytest.mark.parametrize("seed", [5, 11, 12])
def test_parallel_tool_calls_are_each_valid(server, seed):
    """With parallel calls allowed the array may go on to max_tokens: then
    the reply is the unfinished array as text (nothing is dropped)."""
    out = client(server.url).chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required",
                                                     max_tokens=120, temperature=1.0, seed=seed).choices[0]
    if out.finish_reason == "tool_calls":
        assert out.message.tool_calls and len({c.id for c in out.message.tool_calls}) == len(out.message.tool_calls)
        for call in out.message.tool_calls:
            jsonschema.validate(json.loads(call.function.arguments), TOOL_SCHEMAS[call.function.name])
    else:
        assert out.finish_reason == "length" and out.message.content.replace(" ", "").startswith("[{")


@pytest.mark.parametrize("path, body, message", [
    ("/generate", {"text": "x", "sampling_params": {"regex": "(a"}}, "missing ')'"),
    ("/generate", {"text": "x", "sampling_params": {"json_schema": "{not json"}}, "not valid JSON"),
    ("/generate", {"text": "x", "sampling_params": {"ebnf": "root ::= \"a\""}}, "not supported"),
    ("/generate", {"text": "x", "sampling_params": {"regex": "a", "json_schema": "{}"}}, "at most one constraint"),
    ("/generate", {"text": "x", "regex": "a"}, "not a field"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "response_format": {"type": "json_schema", "json_schema": {
        "name": "n", "schema": {"type": "object", "not": {}}}}}, "'not' is not supported"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "response_format": {"type": "structural_tag"}}, "structural_tag"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "response_format": {"type": "yaml"}}, "json_object or json_schema"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "response_format": {"type": "json_schema"}}, "is required"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "regex": "a", "response_format": {"type": "json_object"}}, "at most one"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "regex": "\\p{L}"}, "Unicode property"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "regex": ""}, "only the empty output"),
    ("/v1/chat/completions", {"model": MODEL, "messages": ASK, "tools": TOOLS,
                              "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "does not declare"),
    ("/v1/chat/completions", {"model": MODEL, "messages": ASK, "tool_choice": "required"}, "at least one function"),
    ("/v1/chat/completions", {"model": MODEL, "messages": ASK, "tools": TOOLS, "tool_choice": "required",
                              "response_format": {"type": "json_object"}}, "cannot be combined"),
])
def test_bad_constraints_are_400s_that_say_why(server, path, body, message):
    reply = requests.post(server.url + path, json=body, timeout=30)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]["message"]
    server.assert_pool_whole()


def test_pd_pair_gives_the_unified_outputs(server):
    """The prefill samples the first token under the constraint and the decode
    continues from it: the same output as one instance, pools whole after."""
    pair, router = pair_behind_router()
    try:
        bodies = [
            {"model": MODEL, "messages": ASK, "max_tokens": 200, "temperature": 0, "response_format": person_format()},
            {"model": MODEL, "messages": ASK, "max_tokens": 300, "temperature": 0, "tools": TOOLS, "tool_choice": "required"},
        ]
        for body in bodies:
            unified = requests.post(server.url + "/v1/chat/completions", json=body, timeout=60).json()["choices"][0]
            routed = requests.post(router.url + "/v1/chat/completions", json=body, timeout=60).json()["choices"][0]
            for reply in (unified, routed):
                for call in reply["message"].get("tool_calls") or []:
                    call.pop("id")
            assert routed == unified
        out = client(router.url).completions.create(model=MODEL, prompt=["a", "b", "c"], max_tokens=30, temperature=1.0, seed=3,
                                                    extra_body={"regex": "(yes|no)( [0-9]{1,2})+"})
        assert all(re.fullmatch("(yes|no)( [0-9]{1,2})+", c.text) for c in out.choices), [c.text for c in out.choices]
        pair.prefill.assert_pool_whole()
        pair.decode.assert_pool_whole()
    finally:
        router.stop()
        pair.stop()


def test_many_schemas_at_once_beside_free_requests(server):
    """Sixteen concurrent constrained requests with twelve distinct schemas
    (more than the eight compiled grammars an instance keeps), a bad one and
    an aborted one among them, while free requests decode: every constrained
    output is valid, free outputs equal their solo runs, the pool is whole."""
    import threading

    free_body = {"text": "free running", "sampling_params": {"max_new_tokens": 40, "temperature": 0, "ignore_eos": True}}
    solo = requests.post(server.url + "/generate", json=free_body, timeout=60).json()["output_ids"]
    schemas = [{"type": "object", "properties": {f"k{i}": {"type": "integer", "minimum": 0, "maximum": 10 * i + 9},
                                                 "s": {"type": "string", "maxLength": 6}}, "required": [f"k{i}", "s"]}
               for i in range(12)]
    results, errors = {}, []

    def constrained(i):
        schema = schemas[i % len(schemas)]
        body = {"text": f"item {i}", "sampling_params": {"max_new_tokens": 120, "temperature": 1.0, "seed": i,
                                                         "json_schema": json.dumps(schema)}}
        reply = requests.post(server.url + "/generate", json=body, timeout=60)
        try:
            jsonschema.validate(json.loads(reply.json()["text"]), schema)
        except Exception as error:  # noqa: BLE001 - collected and reported below
            errors.append((i, reply.text, error))

    def free(i):
        results[i] = requests.post(server.url + "/generate", json=free_body, timeout=60).json()["output_ids"]

    def bad():
        reply = requests.post(server.url + "/generate", json={"text": "x", "sampling_params": {"regex": "[z-a]"}}, timeout=60)
        results["bad"] = reply.status_code

    def aborted():
        body = {"text": "abort me", "rid": "constrained-abort",
                "sampling_params": {"max_new_tokens": 400, "json_schema": json.dumps({"type": "array"})}}
        results["aborted"] = requests.post(server.url + "/generate", json=body, timeout=60).json()["meta_info"]["finish_reason"]

    threads = [threading.Thread(target=constrained, args=(i,)) for i in range(16)]
    threads += [threading.Thread(target=free, args=(i,)) for i in range(4)] + [threading.Thread(target=bad), threading.Thread(target=aborted)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    requests.post(server.url + "/abort_request", json={"rid": "constrained-abort"}, timeout=10)
    for t in threads:
        t.join(60)
    assert not errors, errors[:2]
    assert [results[i] for i in range(4)] == [solo] * 4
    assert results["bad"] == 400
    assert results["aborted"]["type"] in ("abort", "length", "stop")
    server.assert_pool_whole()
