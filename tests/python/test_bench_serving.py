"""`pdserve bench serving` against a real `pdserve serve` (tiny fixture
model): the report it writes must be self-consistent — request counts,
token totals equal to prompts × lengths (ignore_eos makes them exact),
ordered percentiles, one parseable JSON line per run, per-class numbers
for a mixed workload — and unusable flags must be refused with a message.
Small and bounded: a handful of short requests per case.
"""
import json
import subprocess

import pytest

from conftest import BIN, FIXTURES, Server


@pytest.fixture(scope="module")
def server():
    s = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny")
    yield s
    s.stop()


def bench(*args, timeout=120):
    return subprocess.run([BIN, "bench", "serving", *args], capture_output=True, text=True, timeout=timeout)


def run_and_read(tmp_path, server, *args):
    out = tmp_path / "results.jsonl"
    result = bench("--base-url", server.url, "--output-file", str(out), "--output-details",
                   "--progress-interval", "0.5", "--seed", "3", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0]), result


def assert_ordered(record, name):
    assert 0 <= record[f"median_{name}_ms"] <= record[f"p99_{name}_ms"] <= record[f"max_{name}_ms"]
    assert record[f"mean_{name}_ms"] <= record[f"max_{name}_ms"]


@pytest.mark.parametrize("backend", ["sglang", "openai"])
def test_random_run_reports_exact_totals_and_ordered_percentiles(tmp_path, server, backend):
    record, result = run_and_read(tmp_path, server, "--backend", backend, "--num-prompts", "6",
                                  "--random-input-len", "12", "--random-output-len", "5", "--random-range-ratio", "1",
                                  "--request-rate", "20", "--max-concurrency", "3", "--goodput", "ttft:60000", "tpot:60000")
    assert record["backend"] == backend
    assert record["completed"] == 6 and record["failed"] == 0
    assert record["total_input_tokens"] == 6 * 12
    assert record["total_output_tokens"] == 6 * 5
    assert record["output_lens"] == [5] * 6
    assert record["good_requests"] == 6  # objectives nothing on this machine misses
    for name in ["ttft", "itl", "tpot", "e2e_latency"]:
        assert_ordered(record, name)
    # Each request streamed at least one chunk after its first token, and a
    # request ends no earlier than its first token.
    assert all(1 <= len(itls) <= 4 for itls in record["itls"])
    assert all(t <= e for t, e in zip(record["ttfts"], record["e2e_latencies"]))
    assert record["request_throughput"] > 0 and record["duration"] > 0
    assert "Serving Benchmark Result" in result.stdout
    assert "sent 6/6" in result.stderr  # the final progress line


def test_mixed_workload_reports_each_class(tmp_path, server):
    record, result = run_and_read(tmp_path, server, "--workload", "mixed", "--duration", "2",
                                  "--chat-rate", "3", "--chat-input-len", "8", "--chat-output-len", "6",
                                  "--doc-rate", "1", "--doc-input-len", "64", "--doc-output-len", "2",
                                  "--pd-separated", "--goodput", "ttft:60000", "doc.ttft:1")
    chat, doc = record["classes"]["chat"], record["classes"]["doc"]
    assert chat["completed"] == 6 and doc["completed"] == 2
    assert record["completed"] == 8
    assert chat["total_output_tokens"] == 6 * 6 and doc["total_output_tokens"] == 2 * 2
    assert chat["total_input_tokens"] == 6 * 8 and doc["total_input_tokens"] == 2 * 64
    assert sorted(record["classes_of_requests"]) == ["chat"] * 6 + ["doc"] * 2
    # The doc override (1 ms TTFT) fails every document; chats keep the shared objective.
    assert chat["good_requests"] == 6 and doc["good_requests"] == 0
    assert record["pd_separated"] is True
    assert "class chat" in result.stdout and "class doc" in result.stdout


def test_unusable_flags_are_refused_with_a_reason(server):
    no_file = bench("--base-url", server.url, "--dataset-name", "sharegpt", "--num-prompts", "2")
    assert no_file.returncode != 0 and "never downloads" in no_file.stderr
    missing = bench("--base-url", server.url, "--dataset-name", "sharegpt", "--dataset-path", "/nonexistent/sharegpt.json", "--num-prompts", "2")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_sharegpt_file_gives_first_turns_as_prompts(tmp_path, server):
    conversations = [{"conversations": [{"from": "human", "value": f"Tell me about the number {i} please"},
                                        {"from": "gpt", "value": "It is a number that comes after another number"}]}
                     for i in range(5)]
    conversations.append({"conversations": [{"from": "human", "value": "a lone turn is skipped"}]})
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(conversations))
    record, _ = run_and_read(tmp_path, server, "--dataset-name", "sharegpt", "--dataset-path", str(path),
                             "--num-prompts", "4", "--sharegpt-output-len", "3", "--request-rate", "inf")
    assert record["completed"] == 4 and record["total_output_tokens"] == 12
    assert record["dataset_name"] == "sharegpt" and record["sharegpt_output_len"] == 3
    too_many = bench("--base-url", server.url, "--dataset-name", "sharegpt", "--dataset-path", str(path), "--num-prompts", "6")
    assert too_many.returncode != 0 and "only 5 usable" in too_many.stderr


@pytest.mark.parametrize("backend", ["sglang", "openai-chat"])
def test_sampling_params_sample_every_request_and_keep_each_length(tmp_path, server, backend):
    record, _ = run_and_read(tmp_path, server, "--backend", backend, "--num-prompts", "4",
                             "--random-input-len", "8", "--random-output-len", "6", "--random-range-ratio", "1",
                             "--sampling-params", '{"temperature": 1.0, "top_p": 0.9}')
    assert record["completed"] == 4 and record["failed"] == 0
    # Merged into each request's sampling fields, so max_new_tokens/max_tokens survive.
    assert record["output_lens"] == [6] * 4
    assert record["sampling_params"] == {"temperature": 1.0, "top_p": 0.9}


def test_sampling_params_must_be_a_json_object(server):
    bad = bench("--base-url", server.url, "--num-prompts", "1", "--sampling-params", "[1]")
    assert bad.returncode != 0 and "--sampling-params must be a JSON object" in bad.stderr
