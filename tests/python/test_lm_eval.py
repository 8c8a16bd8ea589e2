"""lm-evaluation-harness's `local-completions` client (a real one, from
.venv-lmeval) scores a small local multiple-choice task through echo +
logprobs and runs a generation task, against an instance and through a PD
pair behind the router: the two runs agree, and every score equals the sum
of the continuation's prompt logprobs from /generate."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from tokenizers import Tokenizer

from conftest import FIXTURES, ROOT
from pd_helpers import pair_behind_router

LM_EVAL = ROOT / ".venv-lmeval" / "bin" / "lm_eval"
MODEL = FIXTURES / "qwen2-fp32"

pytestmark = pytest.mark.skipif(not LM_EVAL.exists(), reason="lm-evaluation-harness is not installed (scripts/test installs it)")

CHOICES = [
    {"question": "The capital of France is", "choices": [" Paris", " London", " Berlin"], "label": 0},
    {"question": "Two plus two equals", "choices": [" four", " five", " three"], "label": 0},
    {"question": "The sky on a clear day is", "choices": [" green", " blue", " red"], "label": 1},
    {"question": "Water freezes at zero degrees", "choices": [" Fahrenheit", " Kelvin", " Celsius"], "label": 2},
]
QUESTIONS = [{"question": "The capital of France is", "answer": "Paris"}, {"question": "Two plus two equals", "answer": "four"},
             {"question": "The color of the clear sky is", "answer": "blue"}]


def write_tasks(folder):
    """A multiple-choice (loglikelihood) task and a generate_until task over local jsonl files."""
    for name, rows in [("choices", CHOICES), ("questions", QUESTIONS)]:
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    common = f"dataset_path: json\ntest_split: test\nmetadata: {{version: 1.0}}\ndoc_to_text: \"{{{{question}}}}\"\n"
    (folder / "pdserve_choices.yaml").write_text(
        f"task: pdserve_choices\n{common}dataset_kwargs: {{data_files: {{test: {folder / 'choices.jsonl'}}}}}\n"
        "output_type: multiple_choice\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: label\ntarget_delimiter: \"\"\n"
        "metric_list:\n  - {metric: acc, aggregation: mean, higher_is_better: true}\n")
    (folder / "pdserve_questions.yaml").write_text(
        f"task: pdserve_questions\n{common}dataset_kwargs: {{data_files: {{test: {folder / 'questions.jsonl'}}}}}\n"
        "output_type: generate_until\ndoc_to_target: \"{{answer}}\"\ntarget_delimiter: \" \"\n"
        "generation_kwargs: {until: [\"\\n\"], max_gen_toks: 4, do_sample: false, temperature: 0.0}\n"
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true}\n")


def run_lm_eval(url, folder, out):
    """Runs the harness (batches of 2 token-id prompts) and returns its logged samples per task."""
    args = [str(LM_EVAL), "run", "--model", "local-completions", "--model_args",
            f"model=qwen-tiny,base_url={url}/v1/completions,tokenizer_backend=huggingface,tokenizer={MODEL},"
            "tokenized_requests=True,num_concurrent=1,max_retries=1",
            "--include_path", str(folder), "--tasks", "pdserve_choices,pdserve_questions", "--batch_size", "2",
            "--output_path", str(out), "--log_samples"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(out / "datasets-cache"), "OPENAI_API_KEY": ""}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return samples


def scores(samples):
    return [[float(resp[0][0]) for resp in sample["resps"]] for sample in samples["pdserve_choices"]]


def test_lm_eval_scores_agree_unified_and_through_pd(qwen_server, started, tmp_path):
    write_tasks(tmp_path)
    unified = run_lm_eval(qwen_server.url, tmp_path, tmp_path / "unified")
    pair, router = pair_behind_router()
    started(pair)
    started(router)
    via_pd = run_lm_eval(router.url, tmp_path, tmp_path / "pd")

    assert len(unified["pdserve_choices"]) == 4 and len(unified["pdserve_questions"]) == 3
    for got, want in zip(scores(via_pd), scores(unified)):
        assert all(abs(g - w) < 1e-4 for g, w in zip(got, want)), (got, want)
    assert [s["resps"] for s in via_pd["pdserve_questions"]] == [s["resps"] for s in unified["pdserve_questions"]]
    assert [s["acc"] for s in via_pd["pdserve_choices"]] == [s["acc"] for s in unified["pdserve_choices"]]

    # Each score is the continuation's logprob sum, as /generate's input logprobs give it.
    tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    for sample, row_scores in zip(unified["pdserve_choices"], scores(unified)):
        context = sample["doc"]["question"]
        for choice, score in zip(sample["doc"]["choices"], row_scores):
            whole = tokenizer.encode(context + choice, add_special_tokens=False).ids
            context_len = len(tokenizer.encode(context, add_special_tokens=False).ids)
            native = requests.post(qwen_server.url + "/generate", json={
                "input_ids": whole, "return_logprob": True, "logprob_start_len": 0,
                "sampling_params": {"max_new_tokens": 1, "temperature": 0}}, timeout=60).json()
            expected = sum(entry[0] for entry in native["meta_info"]["input_token_logprobs"][context_len:])
            assert abs(score - expected) < 1e-4, (context, choice, score, expected)
    pair.assert_pools_whole()
