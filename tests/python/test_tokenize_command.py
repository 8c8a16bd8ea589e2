"""`pdserve tokenize --jsonl` on the real published tokenizers of tests/fixtures/real_tokenizers:
chat-template prompts (rendered by the server's ChatPromptRenderer) and a sample of
encodes/decodes equal what transformers/tokenizers recorded. The Swift tests cover every
encode and decode case; this covers the chat templates and the command itself."""
import json
import os
import subprocess

import pytest

from conftest import ROOT

REAL = ROOT / "tests" / "fixtures" / "real_tokenizers"
NAMES = ["mistral-v1-spm", "mistral-v3-spm", "qwen-tiktoken"]


def tokenize(directory, requests):
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    out = subprocess.run([os.environ["PDSERVE_BIN"], "tokenize", "--tokenizer-path", str(directory), "--jsonl"],
                         input=lines.encode(), capture_output=True, timeout=120, check=True)
    # One answer per "\n" (str.splitlines would also split at U+2028 … inside decoded text).
    return [json.loads(line) for line in out.stdout.decode().split("\n")[:-1]]


@pytest.mark.parametrize("name", NAMES)
def test_chat_prompts_and_ids_match_transformers(name):
    cases = json.loads((REAL / name / "chat_cases.json").read_text())
    assert len(cases) >= 20
    answers = tokenize(REAL / name, [{"messages": c["messages"], "add_generation_prompt": c["add_generation_prompt"]}
                                     for c in cases])
    bad = [(c["messages"], a) for c, a in zip(cases, answers) if a.get("prompt") != c["prompt"] or a.get("ids") != c["ids"]]
    assert not bad, f"{len(bad)} of {len(cases)} chat cases differ; first: {bad[:2]}"


@pytest.mark.parametrize("name", NAMES)
def test_encode_decode_and_stream_through_the_command(name):
    cases = json.loads((REAL / name / "cases.json").read_text())[::25]
    decodes = json.loads((REAL / name / "decode_cases.json").read_text())[::10]
    requests = [{"text": c["text"], "add_special_tokens": True} for c in cases]
    requests += [{"ids": d["ids"], "skip_special_tokens": skip, "stream": stream}
                 for d in decodes for skip in (False, True) for stream in (False, True)]
    answers = tokenize(REAL / name, requests)
    assert [a["ids"] for a in answers[:len(cases)]] == [c["ids_with_special"] for c in cases]
    expected = [d["decoded_skip_special" if skip else "decoded"] for d in decodes for skip in (False, True) for _ in (0, 1)]
    assert [a["text"] for a in answers[len(cases):]] == expected


def test_bad_lines_get_an_error_and_the_rest_is_served():
    answers = tokenize(REAL / "qwen-tiktoken", [{"x": 1}, {"ids": ["a"]}, {"text": "hi"}])
    assert "error" in answers[0] and "error" in answers[1] and answers[2]["ids"]
