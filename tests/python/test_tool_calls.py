"""Tool calling with `--tool-call-parser` (llama3, qwen25, mistral), checked
with the real `openai` client, whole and streamed, on one instance and
through a PD pair behind the router. The model is
tests/fixtures/tool-calls-fp32 (tests/fixtures/make_tool_call_fixture.py):
its greedy reply is a fixed token chain picked by the chat template's
`reply` variable, so each format's output is known exactly."""
import json
from pathlib import Path

import openai
import pytest

from conftest import Server
from pd_helpers import free_port
from router_helpers import RouterProcess

MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tool-calls-fp32"
TOOLS = [{"type": "function", "function": {"name": name, "description": f"{name} of a place",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
         for name in ("get_weather", "get_time")]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"city": "Paris", "unit": "celsius"}
RAW_QWEN = 'Let me check the weather.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'

# parser -> (reply chain, expected content, expected calls)
EXPECTED = {
    "qwen25": ("qwen25", "Let me check the weather.", [("get_weather", WEATHER)]),
    "llama3": ("llama3", None, [("get_weather", {"city": "Paris"})]),
    "mistral": ("mistral", None, [("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})]),
}


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)


def ask(url, reply, stream=False, **extra):
    kwargs = {"model": "tools", "messages": ASK, "temperature": 0, "max_tokens": 32,
              "extra_body": {"chat_template_kwargs": {"reply": reply}}, **extra}
    if not stream:
        return client(url).chat.completions.create(**kwargs).choices[0]
    chunks = list(client(url).chat.completions.create(stream=True, **kwargs))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return content, calls, finish


def calls_of(tool_calls):
    assert all(call.type == "function" and call.id.startswith("call_") for call in tool_calls)
    assert len({call.id for call in tool_calls}) == len(tool_calls)
    return [(call.function.name, json.loads(call.function.arguments)) for call in tool_calls]


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def parser_server(request):
    server = Server("--model-path", str(MODEL), "--served-model-name", "tools", "--tool-call-parser", request.param)
    yield request.param, server
    server.stop()


def test_tool_calls_come_back_as_tool_calls(parser_server):
    parser, server = parser_server
    reply, content, calls = EXPECTED[parser]
    choice = ask(server.url, reply, tools=TOOLS)
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == content
    assert calls_of(choice.message.tool_calls) == calls


def test_streamed_tool_calls_come_back_as_tool_call_deltas(parser_server):
    parser, server = parser_server
    reply, content, calls = EXPECTED[parser]
    text, deltas, finish = ask(server.url, reply, stream=True, tools=TOOLS)
    assert text == (content or "")
    assert [d.index for d in deltas] == list(range(len(calls)))
    assert calls_of(deltas) == calls
    assert finish == ["tool_calls"]


@pytest.mark.parametrize("stream", [False, True])
def test_replies_that_are_not_calls_stay_text(parser_server, stream):
    parser, server = parser_server
    if parser != "qwen25":
        pytest.skip("one parser is enough for the text cases")
    cases = [
        ("plain", {"tools": TOOLS}, "It is sunny in Paris."),
        ("broken", {"tools": TOOLS}, '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>'),
        ("qwen25", {}, RAW_QWEN),                                   # no tools declared
        ("qwen25", {"tools": TOOLS, "tool_choice": "none"}, RAW_QWEN),
        ("qwen25", {"tools": TOOLS[1:]}, RAW_QWEN),                   # get_weather not declared
    ]
    for reply, extra, text in cases:
        if stream:
            content, deltas, finish = ask(server.url, reply, stream=True, **extra)
            assert (content, deltas, finish) == (text, [], ["stop"]), reply
        else:
            choice = ask(server.url, reply, **extra)
            assert (choice.message.content, choice.message.tool_calls, choice.finish_reason) == (text, None, "stop"), reply


def test_a_conversation_continues_after_the_tool_answers(parser_server):
    parser, server = parser_server
    if parser != "qwen25":
        pytest.skip("one parser is enough")
    choice = ask(server.url, "qwen25", tools=TOOLS)
    call = choice.message.tool_calls[0]
    messages = ASK + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                      {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'}]
    after = client(server.url).chat.completions.create(model="tools", messages=messages, tools=TOOLS, temperature=0, max_tokens=32,
                                                        extra_body={"chat_template_kwargs": {"reply": "plain"}})
    assert after.choices[0].message.content == "It is sunny in Paris."


def test_forcing_a_call_constrains_the_reply_to_declared_calls(parser_server):
    """tool_choice required / named: whatever the parser, the reply is the
    JSON array the constraint makes the model write, returned as tool_calls."""
    _, server = parser_server
    # This model's replies never end a string by themselves: bounded strings do.
    bounded = [{"type": "function", "function": {**t["function"], "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}} for t in TOOLS]
    for choice, names in [("required", {"get_weather", "get_time"}), ({"type": "function", "function": {"name": "get_time"}}, {"get_time"})]:
        reply = ask(server.url, "qwen25", tools=bounded, tool_choice=choice, parallel_tool_calls=False, max_tokens=200)
        assert reply.finish_reason == "tool_calls", reply.message.content
        [call] = reply.message.tool_calls
        assert call.function.name in names
        assert isinstance(json.loads(call.function.arguments), dict)


def test_without_a_parser_replies_stay_text(started):
    server = Server("--model-path", str(MODEL), "--served-model-name", "tools")
    started(server)
    choice = ask(server.url, "qwen25", tools=TOOLS)
    assert (choice.message.content, choice.message.tool_calls, choice.finish_reason) == (RAW_QWEN, None, "stop")


def test_an_unknown_parser_stops_start_up():
    with pytest.raises(Exception, match="qwen25"):
        Server("--model-path", str(MODEL), "--tool-call-parser", "deepseekv3", ready_timeout=20)


def test_tool_calls_through_a_pd_pair_behind_the_router(started):
    bootstrap = free_port()
    common = ("--model-path", str(MODEL), "--served-model-name", "tools", "--tool-call-parser", "qwen25")
    prefill = Server(*common, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(bootstrap))
    started(prefill)
    decode = Server(*common, "--disaggregation-mode", "decode")
    started(decode)
    router = RouterProcess("--pd-disaggregation", "--prefill", prefill.url, str(bootstrap), "--decode", decode.url)
    started(router)
    choice = ask(router.url, "qwen25", tools=TOOLS)
    assert (choice.message.content, calls_of(choice.message.tool_calls), choice.finish_reason) == \
        ("Let me check the weather.", [("get_weather", WEATHER)], "tool_calls")
    text, deltas, finish = ask(router.url, "qwen25", stream=True, tools=TOOLS)
    assert (text, calls_of(deltas), finish) == ("Let me check the weather.", [("get_weather", WEATHER)], ["tool_calls"])
    for server in (prefill, decode):
        server.assert_pool_whole()
