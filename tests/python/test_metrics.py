"""`/metrics` read by a real Prometheus text parser (prometheus_client's):
SGLang's metric names, types, labels and buckets on a unified instance and
on both halves of a PD pair behind the router, so SGLang's Grafana dashboard
and alerts read PDServe unchanged; the router's own families parse too."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FIXTURES, Server, reference
from pd_helpers import pair_behind_router

MODEL = ["--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny"]
GREEDY = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}

GAUGES = ["sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:num_used_tokens", "sglang:token_usage",
          "sglang:max_total_num_tokens", "sglang:gen_throughput", "sglang:cache_hit_rate"]
COUNTERS = ["sglang:prompt_tokens", "sglang:generation_tokens", "sglang:cached_tokens", "sglang:num_requests",
            "sglang:num_aborted_requests"]
# SGLang's default buckets (python/sglang/srt/observability/metrics_collector.py).
HISTOGRAMS = {
    "sglang:time_to_first_token_seconds": [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400],
    "sglang:inter_token_latency_seconds": [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040,
                                           0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0],
    "sglang:e2e_request_latency_seconds": [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400,
                                           600, 1200, 1800, 2400],
}
# What SGLang's Grafana dashboard (examples/monitoring/grafana/dashboards/json/sglang-dashboard.json) queries.
DASHBOARD_SERIES = ["sglang:e2e_request_latency_seconds_bucket", "sglang:e2e_request_latency_seconds_sum",
                    "sglang:e2e_request_latency_seconds_count", "sglang:time_to_first_token_seconds_bucket",
                    "sglang:time_to_first_token_seconds_sum", "sglang:time_to_first_token_seconds_count",
                    "sglang:num_running_reqs", "sglang:gen_throughput", "sglang:cache_hit_rate", "sglang:num_queue_reqs"]


def families(server):
    """Parses /metrics strictly: a malformed line raises."""
    response = server.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def value(found, name, sample=None, **labels):
    """One sample's value; `sample` picks `_sum`, `_count`, `_total` or `_bucket` series."""
    matches = [s.value for s in found[name].samples
               if s.name == (sample or name) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, f"{sample or name}{labels}: {matches}"
    return matches[0]


def check_sglang_shape(found, engine_type):
    request_labels = {"model_name": "qwen-tiny", "engine_type": engine_type}
    for name in GAUGES:
        assert found[name].type == "gauge", name
        assert found[name].samples[0].labels == {**request_labels, "tp_rank": "0", "pp_rank": "0"}
    for name in COUNTERS:
        assert found[name].type == "counter", name
        assert all(s.labels.items() >= request_labels.items() for s in found[name].samples)
    for name, bounds in HISTOGRAMS.items():
        family = found[name]
        assert family.type == "histogram"
        buckets = [s for s in family.samples if s.name == name + "_bucket"]
        assert [float(s.labels["le"]) for s in buckets] == bounds + [float("inf")]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), f"{name}: buckets must be cumulative"
        assert counts[-1] == value(found, name, name + "_count", **request_labels)
        assert all(s.labels.items() >= request_labels.items() for s in family.samples)
    series = {s.name for f in found.values() for s in f.samples if s.labels.get("model_name") == "qwen-tiny"}
    assert set(DASHBOARD_SERIES) <= series, set(DASHBOARD_SERIES) - series


def test_a_unified_instance_exports_sglangs_metrics():
    server = Server(*MODEL)
    try:
        before = families(server)
        check_sglang_shape(before, "unified")
        assert value(before, "sglang:gen_throughput") == 0 and value(before, "sglang:token_usage") == 0
        # Long enough to fill whole KV pages, which is what the prefix cache keeps.
        prompt = [t for p in reference("qwen2-fp32")["prompts"] for t in p][:48]
        replies = [server.post("/generate", {"input_ids": prompt, "sampling_params": GREEDY}).json() for _ in range(2)]
        after = families(server)
        check_sglang_shape(after, "unified")
        generated = sum(r["meta_info"]["completion_tokens"] for r in replies)
        assert value(after, "sglang:generation_tokens", "sglang:generation_tokens_total") == generated
        assert value(after, "sglang:prompt_tokens", "sglang:prompt_tokens_total") == 2 * len(prompt)
        assert value(after, "sglang:num_requests", "sglang:num_requests_total") == 2
        assert value(after, "sglang:time_to_first_token_seconds", "sglang:time_to_first_token_seconds_count") == 2
        # Every token after the first counts once in the inter-token histogram.
        assert value(after, "sglang:inter_token_latency_seconds", "sglang:inter_token_latency_seconds_count") == generated - 2
        # The second prompt came from the prefix cache: the rate over the last 10 s says so.
        cached = replies[1]["meta_info"]["cached_tokens"]
        assert cached > 0
        assert value(after, "sglang:cache_hit_rate") == pytest.approx(cached / (2 * len(prompt)))
        assert value(after, "sglang:gen_throughput") > 0
        max_tokens = value(after, "sglang:max_total_num_tokens")
        pool = server.pool()
        assert max_tokens == pool["total_pages"] * pool["page_size"]
        # Idle, every page not free is the prefix cache's, which SGLang counts as free.
        assert value(after, "sglang:num_used_tokens") == 0 and value(after, "sglang:token_usage") == 0
        assert value(after, "pdserve:kv_cache_usage_perc") > 0
        assert "sglang:num_prefill_inflight_queue_reqs" not in after and "sglang:num_decode_transfer_queue_reqs" not in after
        assert value(after, "pdserve:http_requests", "pdserve:http_requests_total", path="/generate", status="200") == 2
    finally:
        server.stop()


def test_both_pd_halves_and_the_router_export_parseable_metrics(started):
    pair, router = pair_behind_router()
    started(pair)
    started(router)
    prefill, decode = pair.prefill, pair.decode
    bodies = [{"text": "The capital of France is", "sampling_params": GREEDY},
              {"text": ["one", "two"], "sampling_params": GREEDY},
              {"text": "streamed", "sampling_params": GREEDY, "stream": True}]
    for body in bodies:
        response = router.post("/generate", body)
        assert response.status_code == 200, response.text
    requests_sent = 4
    for server, engine_type, queue in [(prefill, "prefill", "sglang:num_prefill_inflight_queue_reqs"),
                                       (decode, "decode", "sglang:num_decode_transfer_queue_reqs")]:
        found = families(server)
        check_sglang_shape(found, engine_type)
        assert found[queue].type == "gauge" and value(found, queue) == 0
        assert value(found, "sglang:num_requests", "sglang:num_requests_total") == requests_sent
        assert value(found, "sglang:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds_count") == requests_sent
    decoded = families(decode)
    assert value(decoded, "sglang:generation_tokens", "sglang:generation_tokens_total") == requests_sent * GREEDY["max_new_tokens"]
    routed = families(router)
    assert routed["pdserve_router:requests"].type == "counter"
    assert value(routed, "pdserve_router:requests", "pdserve_router:requests_total", route="/generate", status="200") == 3
    assert routed["pdserve_router:request_duration_seconds"].type == "histogram"
    for worker, role in [(prefill.url, "prefill"), (decode.url, "decode")]:
        assert value(routed, "pdserve_router:worker_healthy", worker=worker, role=role) == 1
        assert value(routed, "pdserve_router:worker_circuit_state", worker=worker, role=role) == 0
