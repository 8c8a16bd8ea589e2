#!/usr/bin/env python3
"""Render real Hugging Face chat templates with jinja2, configured exactly as `transformers` does, and
write the results as fixtures for the Swift `ChatTemplates` tests.

Usage:
    python3 tests/reference/make_chat_template_fixtures.py [--out tests/fixtures/chat_templates]

The templates are the `*.jinja` files already in the output directory (see README.md there for where
each came from). This script only (re)writes `cases.json`.

The environment is `transformers.utils.chat_template_utils._cached_compile_jinja_template`, i.e.
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker,
loopcontrols]) with HF's `tojson` (ensure_ascii=False, no HTML escaping), `raise_exception`,
`strftime_now`, `namespace`, `dict`. `strftime_now` is shadowed by a fixed-date version so the output
is reproducible. The context is what `apply_chat_template` passes: messages, tools (None when absent),
documents (None), add_generation_prompt, then special tokens and extra kwargs.
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

import jinja2
import transformers
from transformers.utils.chat_template_utils import _cached_compile_jinja_template

FIXED_NOW = datetime.datetime(2025, 3, 14, 9, 26, 53)


def strftime_now(fmt):
    return FIXED_NOW.strftime(fmt)


# name -> (special tokens passed as template variables, source description)
LLAMA = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
QWEN = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
GEMMA = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}
PHI3 = {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"}
DEEPSEEK = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}

TEMPLATES = {
    "llama-3.1-instruct": LLAMA,
    "llama-3.2-instruct": LLAMA,
    "qwen2.5-instruct": QWEN,
    "qwen3": QWEN,
    "qwen3-coder": QWEN,
    "mistral-7b-instruct-v0.1": MISTRAL,
    "mixtral-8x7b-instruct-v0.1": MISTRAL,
    "mistral-7b-instruct-v0.3": MISTRAL,
    "mistral-small-24b-instruct-2501": MISTRAL,
    "devstral-small": MISTRAL,
    "gemma-2-it": GEMMA,
    "gemma-3-it": GEMMA,
    "phi-3-mini-instruct": PHI3,
    "phi-3.5-mini-instruct": PHI3,
    "deepseek-r1": DEEPSEEK,
    "deepseek-r1-8b": DEEPSEEK,
    "deepseek-v3": DEEPSEEK,
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a location.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_web",
            "description": "  Search the web — returns the top results.  ",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Search terms"},
                    "max_results": {"type": "integer", "minimum": 1, "default": 5},
                },
                "required": ["query"],
            },
        },
    },
]

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER1 = {"role": "user", "content": "Hello! How are you?"}
ASSISTANT1 = {"role": "assistant", "content": "I'm doing well, thank you. How can I help?"}
USER2 = {"role": "user", "content": "What is 2 + 2?"}


def tool_call(args):
    return {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": args}}


WEATHER_ARGS = {"location": "Paris", "unit": "celsius"}
WEATHER_JSON = '{"location": "Paris", "unit": "celsius"}'

CONVERSATIONS = {
    "single_user": [USER1],
    "system_user": [SYSTEM, USER1],
    "multi_turn": [USER1, ASSISTANT1, USER2],
    "system_multi_turn": [SYSTEM, USER1, ASSISTANT1, USER2, {"role": "assistant", "content": "2 + 2 = 4."}],
    "content_parts": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this "}, {"type": "text", "text": "in one word."}]}
    ],
    "system_content_parts": [
        {"role": "system", "content": [{"type": "text", "text": "Answer tersely."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]},
    ],
    "non_ascii": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Grüße aus Köln — 你好，世界！ 🌍 \"quotes\", 'apostrophes', <tags> & \\backslash\\\n\tnew line"},
    ],
    "padded_whitespace": [{"role": "user", "content": "  \n  padded question?  \n\n"}],
    "not_alternating": [USER1, USER2],
    "starts_with_assistant": [ASSISTANT1, USER2],
    "empty": [],
    "tool_round_trip_dict_args": [
        SYSTEM,
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [tool_call(WEATHER_ARGS)]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": '{"temperature": 22, "condition": "sunny"}'},
        {"role": "assistant", "content": "It is 22 °C and sunny in Paris."},
    ],
    "tool_round_trip_string_args": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call(WEATHER_JSON)]},
        {"role": "tool", "tool_call_id": "call12345", "content": "22 degrees"},
    ],
    "two_parallel_tool_calls": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            tool_call(WEATHER_ARGS),
            {"id": "call67890", "type": "function", "function": {"name": "get_weather", "arguments": {"location": "Rome"}}},
        ]},
        {"role": "tool", "tool_call_id": "call12345", "content": "22 degrees"},
        {"role": "tool", "tool_call_id": "call67890", "content": "25 degrees"},
    ],
    "reasoning_in_content": [
        USER2,
        {"role": "assistant", "content": "<think>\nThe user wants a sum. 2 + 2 = 4.\n</think>\n\nThe answer is 4."},
        {"role": "user", "content": "And 3 + 3?"},
    ],
    "reasoning_content_field": [
        USER2,
        {"role": "assistant", "content": "The answer is 4.", "reasoning_content": "Simple arithmetic."},
    ],
}


# Small templates that pin down one Jinja feature each, rendered by the same environment.
SNIPPETS = [
    ("loop_vars", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}|{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("loop_prev_next", "{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_cycle", "{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_else", "{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", {"xs": []}),
    ("loop_filter", "{% for x in xs if x % 2 == 0 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}", {"xs": [1, 2, 3, 4, 5, 6]}),
    ("loop_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": 2, "m": 3}}),
    ("loop_dict_keys", "{% for k in d %}{{ k }}{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}", {"d": {"b": 1, "a": [1, 2]}}),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_scope", "{% set x = 'outer' %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("namespace", "{% set ns = namespace(n=0, seen=[]) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", {}),
    ("if_scope", "{% if true %}{% set y = 'set in if' %}{% endif %}{{ y }}", {}),
    ("if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("set_block", "{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]{% set up | upper %}shout{% endset %}{{ up }}", {"name": "Ann"}),
    ("set_tuple", "{% set a, b = 'xy' %}{{ b }}{{ a }}{% set c, d = [1, 2] %}{{ c + d }}", {}),
    ("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy') }}", {}),
    ("macro_sees_globals", "{% macro m() %}{{ g }}{{ later }}{% endmacro %}{% set later = 'L' %}{{ m() }}", {"g": "G"}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("macro_call_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}<{{ item }}>{% endcall %}", {}),
    ("filter_block", "{% filter upper %}abc {{ 'def' }}{% endfilter %}", {}),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true -%}  d  {%- endif -%}\n e", {}),
    ("trim_lstrip_blocks", "<ul>\n    {% for x in xs %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n", {"xs": [1, 2]}),
    ("lstrip_plus", "  {%+ if true %}x{% endif %}\n  {% if true +%}\ny{% endif %}", {}),
    ("comment_ws", "a\n  {# comment #}\nb {#- trimmed -#}   c", {}),
    ("raw_block", "{% raw %}{{ not evaluated }} {% if %}{% endraw %}!", {}),
    ("trailing_newline", "line\n", {}),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("string_escapes", "{{ 'tab\\tnl\\nq\\'dq\\\"bs\\\\u:\\u00e9x:\\x41' }}|{{ \"a\" 'b' }}", {}),
    ("literals", "{{ [1, 2.5, 'a', none, true, false, {'k': 'v', 'n': None}] }}|{{ (1, 2) | list }}|{{ {'a': 1}['a'] }}", {}),
    ("arithmetic", "{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1.5 + 2 }} {{ 10 / 5 }} {{ 3 * 'ab' }} {{ [0] * 3 }} {{ -(3) }} {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1.0e16 }} {{ 1.0e15 }} {{ 12345678.9 }} {{ 1e-5 }}", {}),
    ("concat_tilde", "{{ 'a' ~ 1 ~ none ~ true ~ undefined_thing ~ [1] }}", {}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' != 'a' }} {{ none == none }} {{ 2 >= 2 }}", {}),
    ("in_operator", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 'tool_calls' in m }} {{ '' in 'x' }}", {"m": {"role": "user"}}),
    ("logic", "{{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ 0 or '' or 'z' }} {{ 'a' if false }}|{{ 'yes' if 1 else 'no' }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'x' ~ (1 + 2) }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ [1,2,3]|length - 1 }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }}", {}),
    ("slicing", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:] }} {{ s[1:3] }} {{ s[::-1] }} {{ xs[10:] }} {{ xs[-100:2] }} {{ s[-1] }} {{ xs[-1] }}", {"xs": [1, 2, 3, 4, 5], "s": "héllo"}),
    ("attribute_vs_item", "{{ m.role }} {{ m['role'] }} {{ m.missing is defined }} {{ m['missing'] is defined }} {{ xs.0 }} {{ m.content.text is defined }} {{ m.nothing is none }}", {"m": {"role": "user", "content": "hi"}, "xs": ["first"]}),
    ("undefined_behaviour", "[{{ nope }}] {{ nope is defined }} {{ nope is undefined }} {{ nope|length }} {{ nope|default('d') }} {{ none|default('d') }} {{ ''|default('e', true) }} {{ nope is iterable }} {% for x in nope %}x{% endfor %} {{ nope == nope }} {{ not nope }}", {}),
    ("tests", "{{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ true is boolean }} {{ 1 is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ [] is sequence }} {{ 'x' is sequence }} {{ 'x' is iterable }} {{ none is none }} {{ true is true }} {{ 0 is false }} {{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 2 is eq 2 }} {{ 3 is gt 2 }} {{ 1 is in [1] }} {{ x is sameas none }} {{ range is callable }}", {"x": None}),
    ("string_methods", "{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'AbC'.upper() }}{{ 'AbC'.lower() }}|{{ 'hello world'.title() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'x{}y{}'.format(1, 'z') }}|{{ 'hello'.capitalize() }}|{{ '-'.join(['a', 'b']) }}|{{ 'abcabc'.find('c') }}{{ 'abcabc'.count('b') }}|{{ 'a\\nb'.splitlines() }}|{{ 'abc'.rsplit('b', 1) }}", {}),
    ("dict_methods", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }}", {"d": {"a": 1, "b": [2]}}),
    ("filters_text", "{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'hello world-foo (bar)'|title }}|{{ 'hELLO'|capitalize }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 42|string }}{{ none|string }}|{{ 'x'|safe }}|{{ '<&>\"'|e }}|{{ 'one two  three'|wordcount }}", {}),
    ("filters_numbers", "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 3|float }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 2.1|round(0, 'ceil') }} {{ [1, 2, 3]|sum }} {{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }}", {}),
    ("filters_lists", "{{ xs|length }} {{ xs|count }} {{ xs|first }} {{ xs|last }} {{ xs|join(', ') }} {{ xs|reverse|list }} {{ xs|sort }} {{ xs|sort(reverse=true) }} {{ 'abc'|list }} {{ ['b', 'A', 'a', 'B']|unique|list }} {{ ['b', 'A', 'c']|sort }} {{ 'abc'|first }} {{ 'abc'|length }} {{ 'héllo'|length }}", {"xs": [3, 1, 2]}),
    ("filters_map_select", "{{ ms|map(attribute='role')|list }} {{ ms|selectattr('role', 'equalto', 'user')|list|length }} {{ ms|rejectattr('role', 'eq', 'user')|map(attribute='content')|join }} {{ [1, 0, 2, none]|select|list }} {{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ ['a', 'b']|reject('in', ['a'])|list }} {{ ['1', '2']|map('int')|sum }} {{ ms|selectattr('tool_calls')|list|length }} {{ ms|map(attribute='missing', default='?')|join }} {{ ms|sort(attribute='role')|map(attribute='content')|join(',') }}", {"ms": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1", "tool_calls": [1]}, {"role": "user", "content": "u2"}]}),
    ("filters_dict", "{{ d|items|list }} {{ d|dictsort }} {{ d|length }} {{ d|list }} {{ d|first }}", {"d": {"b": 2, "a": 1}}),
    ("tojson", "{{ v|tojson }}\n{{ v|tojson(indent=2) }}\n{{ v|tojson(indent=4, sort_keys=true) }}\n{{ v|tojson(separators=(',', ':')) }}\n{{ v|tojson(ensure_ascii=true) }}\n{{ 'x'|tojson }} {{ none|tojson }} {{ 1.0|tojson }} {{ [] |tojson(indent=2) }} {{ {}|tojson(indent=2) }}", {"v": {"z": [1, 2.5, True, None, "é\"<>&'\n\t\u0001🌍"], "a": {"nested": {"empty": [], "obj": {}}}, "big": 12345678901234, "neg": -0.5}}),
    ("indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}", {}),
    ("strftime", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %j %I%p %y %-d') }}", {}),
    ("dict_global", "{{ dict(a=1, b='x') }} {{ dict(a=1).a }}", {}),
    ("raise", "before{{ raise_exception('Custom failure: ' ~ 42) }}after", {}),
    ("conditional_expr", "{{ 'a' if x else 'b' }}{{ 'c' if not x else 'd' if y else 'e' }}", {"x": False, "y": True}),
    ("generation_tag", "{% for m in ms %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}", {"ms": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ("content_list_iter", "{% for c in content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %} {{ content is string }} {{ content is iterable }}", {"content": [{"type": "text", "text": "A"}, {"type": "image"}, {"type": "text", "text": "B"}]}),
    ("repr_strings", "{{ ['it\\'s', 'say \"hi\"', 'both \\' \"', 'nl\\n', 'uni é 🌍'] }}", {}),
    ("int_float_output", "{{ 3 }} {{ 3.0 }} {{ -0.0 }} {{ 1/3 }} {{ 2.0 * 3 }} {{ 100000000000000000000.0 }}", {}),
    ("error_undefined_attr", "{{ missing.attr }}", {}),
    ("error_concat_precedence", "{{ 'x' ~ 1 + 2 }}", {}),
    ("error_add_str_int", "{{ 'a' + 1 }}", {}),
    ("error_not_callable", "{{ 'a'() }}", {}),
]

# Extra template variables tried on top of the base context, for templates that read them.
VARIANTS = [
    ("base", {}, None),
    ("tools", {"tools": TOOLS}, "tools"),
    ("thinking_on", {"enable_thinking": True}, "enable_thinking"),
    ("thinking_off", {"enable_thinking": False}, "enable_thinking"),
    ("tools_in_system", {"tools": TOOLS, "tools_in_user_message": False}, "tools_in_user_message"),
    ("custom_date", {"date_string": "01 Jan 2030"}, "date_string"),
    ("builtin_tools", {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}, "builtin_tools"),
]
# Conversations worth rendering under each non-base variant (the base variant gets them all).
VARIANT_CONVERSATIONS = ["single_user", "system_user", "system_multi_turn", "tool_round_trip_dict_args",
                         "tool_round_trip_string_args", "reasoning_in_content", "reasoning_content_field"]


def render(template, context):
    try:
        return {"expected": template.render(**context, strftime_now=strftime_now)}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises a bare TemplateError; subclasses (UndefinedError, SecurityError…) are not the template's own message.
        kind = "raised" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        return {"expected_error": {"kind": kind, "message": str(e)}}
    except Exception as e:  # TypeError etc. from Python operations inside the template
        return {"expected_error": {"kind": type(e).__name__, "message": str(e)}}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(here, "..", "fixtures", "chat_templates"))
    parser.add_argument("--discover", action="store_true",
                        help="render every *.jinja in --out (generic <s>/</s> tokens) instead of the curated list; "
                             "for trying a larger corpus with CHAT_TEMPLATE_FIXTURES=DIR swift test")
    args = parser.parse_args()

    templates = TEMPLATES
    if args.discover:
        templates = {f[:-len(".jinja")]: {"bos_token": "<s>", "eos_token": "</s>"}
                     for f in sorted(os.listdir(args.out)) if f.endswith(".jinja")}

    cases = []
    for name, special in templates.items():
        with open(os.path.join(args.out, name + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        template = _cached_compile_jinja_template(source)
        for variant, extra, needle in VARIANTS:
            if needle is not None and needle not in source:
                continue
            conv_names = CONVERSATIONS if variant == "base" else VARIANT_CONVERSATIONS
            for conv in conv_names:
                for agp in (True, False):
                    context = {
                        "messages": json.loads(json.dumps(CONVERSATIONS[conv])),
                        "tools": None,
                        "documents": None,
                        "add_generation_prompt": agp,
                    }
                    context.update(special)
                    context.update(json.loads(json.dumps(extra)))
                    result = render(template, json.loads(json.dumps(context)))
                    cases.append({"template": name, "conversation": conv, "variant": variant,
                                  "add_generation_prompt": agp, "context": context, **result})

    snippets = []
    for sid, source, context in SNIPPETS:
        template = _cached_compile_jinja_template(source)
        snippets.append({"id": sid, "source": source, "context": context, **render(template, json.loads(json.dumps(context)))})

    doc = {
        "generator": "tests/reference/make_chat_template_fixtures.py",
        "jinja2": jinja2.__version__,
        "transformers": transformers.__version__,
        "strftime_now": FIXED_NOW.isoformat(),
        "templates": list(templates),
        "cases": cases,
        "snippets": snippets,
    }
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        f.write(text)
    errors = sum(1 for c in cases if "expected_error" in c)
    print(f"{len(cases)} cases ({errors} expected errors) for {len(templates)} templates; "
          f"sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}", file=sys.stderr)


if __name__ == "__main__":
    main()
