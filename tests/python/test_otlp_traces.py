"""Distributed traces (--otlp-traces-endpoint) from real processes to a
real OTLP/HTTP receiver on loopback: one PD request through `pdserve router`
is one trace holding the router's server and client spans, each half's
server span (continuing the router's traceparent) and its engine span with
the request's room and phases; a unified instance gives a span per input
of a batch; health probes make no traces; a bad endpoint or a protocol that
cannot work fails start-up with a reason.
"""
import gzip
import http.server
import os
import secrets
import subprocess
import threading

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import BIN, FIXTURES, Server, wait_until
from pd_helpers import PDPair
from router_helpers import RouterProcess

# Spans leave in batches: a short delay keeps the test quick.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


def _value(attribute):
    """An OTLP AnyValue as a Python value."""
    kind = attribute.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in attribute.array_value.values]
    return getattr(attribute, kind)


class OTLPReceiver:
    """An OTLP/HTTP collector's trace endpoint: stores every span it is sent, with its service name."""

    def __init__(self):
        self.spans = []
        self.content_types = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                content_type = self.headers.get("Content-Type", "")
                receiver.receive(self.path, content_type, body)
                answer = b""  # an empty ExportTraceServiceResponse
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def receive(self, path, content_type, body):
        assert path == "/v1/traces", path
        spans = []
        assert content_type == "application/x-protobuf", content_type
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: _value(a.value) for a in resource.resource.attributes}["service.name"]
            for scope in resource.scope_spans:
                for s in scope.spans:
                    spans.append({"service": service, "name": s.name, "trace": s.trace_id.hex(), "id": s.span_id.hex(),
                                  "parent": s.parent_span_id.hex(), "kind": s.kind,
                                  "attributes": {a.key: _value(a.value) for a in s.attributes}})
        with self.lock:
            self.content_types.add(content_type)
            self.spans.extend(spans)

    def trace(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s["trace"] == trace_id]

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = OTLPReceiver()
    yield r
    r.stop()


def traceparent():
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


def one(spans, **match):
    found = [s for s in spans if all(s[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, spans)
    return found[0]


def test_a_pd_request_through_the_router_is_one_trace_across_three_processes(receiver, started):
    flag = ("--otlp-traces-endpoint", receiver.url)
    pair = PDPair(prefill_args=flag, decode_args=flag, env=FAST_EXPORT)
    started(pair)
    router = RouterProcess("--pd-disaggregation", "--prefill", pair.prefill.url, str(pair.bootstrap_port), "--decode", pair.decode.url,
                           *flag, env=FAST_EXPORT)
    started(router)
    trace_id, parent, header = traceparent()
    reply = requests.post(router.url + "/generate", headers={"traceparent": header},
                          json={"text": "The capital of France is", "sampling_params": {"max_new_tokens": 4, "temperature": 0}}, timeout=60)
    assert reply.status_code == 200, reply.text

    # Router: its server span and two client spans; each half: its server span and its engine span.
    # Spans leave as they end, in batches: wait for all seven.
    wait_until(lambda: len(receiver.trace(trace_id)) >= 7 and any(s["parent"] == parent for s in receiver.trace(trace_id)),
               timeout=30, what="the spans of all three processes")
    assert len(receiver.trace(trace_id)) == 7
    spans = receiver.trace(trace_id)
    # The router continues the client's trace: its server span's parent is the caller's span.
    front = one(spans, service="pdserve-router", parent=parent)
    calls = [s for s in spans if s["service"] == "pdserve-router" and s["parent"] == front["id"]]
    assert {c["name"] for c in calls} == {"POST /generate"} and len(calls) == 2
    call_ids = {c["id"] for c in calls}
    rooms = set()
    for half in ["prefill", "decode"]:
        server_span = one([s for s in spans if s["service"] == f"pdserve-{half}" and s["parent"] in call_ids])
        engine = one(spans, service=f"pdserve-{half}", name=f"pdserve {half}")
        assert engine["parent"] == server_span["id"]
        assert engine["attributes"]["gen_ai.usage.input_tokens"] > 0
        rooms.add(engine["attributes"]["pdserve.bootstrap_room"])
    assert len(rooms) == 1, "both halves name the same room"
    prefill = one(spans, name="pdserve prefill")["attributes"]
    decode = one(spans, name="pdserve decode")["attributes"]
    assert prefill["pdserve.phase.kv_transfer"] >= 0 and prefill["pdserve.kv_transfer_bytes"] > 0
    assert decode["pdserve.phase.kv_wait"] >= 0 and decode["gen_ai.usage.output_tokens"] == 4
    assert decode["gen_ai.response.finish_reasons"] == ["length"]
    assert receiver.content_types == {"application/x-protobuf"}

    # Without a traceparent the router starts the trace, and both halves join it.
    plain = requests.post(router.url + "/generate", json={"text": "Hello", "sampling_params": {"max_new_tokens": 2}}, timeout=60)
    assert plain.status_code == 200
    def roots():
        with receiver.lock:
            return [s for s in receiver.spans if s["service"] == "pdserve-router" and s["parent"] == "" and s["trace"] != trace_id]
    wait_until(lambda: any({"pdserve prefill", "pdserve decode"} <= {s["name"] for s in receiver.trace(r["trace"])} for r in roots()),
               timeout=30, what="a trace the router started")
    assert len(roots()) == 1, "only the request is traced, not the router's probes"
    pair.assert_pools_whole()


def test_a_unified_instance_traces_each_input_and_no_probe(receiver, started):
    s = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny", "--otlp-traces-endpoint", receiver.url + "/",
               env={**FAST_EXPORT, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"})
    for path in ["/health", "/get_load", "/metrics", "/get_server_info"]:
        assert s.get(path).status_code == 200
    started(s)
    trace_id, parent, header = traceparent()
    reply = requests.post(s.url + "/v1/completions", headers={"traceparent": header},
                          json={"model": "qwen-tiny", "prompt": ["one", "two"], "max_tokens": 3, "temperature": 0}, timeout=60)
    assert reply.status_code == 200, reply.text
    wait_until(lambda: len(receiver.trace(trace_id)) >= 3 and any(x["parent"] == parent for x in receiver.trace(trace_id)), timeout=30,
               what="the server span and an engine span per input")
    spans = receiver.trace(trace_id)
    server_span = one(spans, parent=parent)
    engines = [x for x in spans if x["name"] == "pdserve generate"]
    assert all(e["parent"] == server_span["id"] and e["attributes"]["gen_ai.usage.output_tokens"] == 3 for e in engines)
    assert all("pdserve.phase.prefill_compute" in e["attributes"] and "pdserve.bootstrap_room" not in e["attributes"] for e in engines)
    with receiver.lock:
        assert {x["trace"] for x in receiver.spans} == {trace_id}, "the probes made no traces"


@pytest.mark.parametrize("command", ["serve", "router"])
@pytest.mark.parametrize("endpoint, env, message", [
    ("localhost:4317", {}, "--otlp-traces-endpoint must be an http:// or https:// URL"),
    ("http://127.0.0.1:4318", {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTLP/JSON"),
    ("http://127.0.0.1:4318", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"),
])
def test_an_export_that_cannot_work_fails_start_up(command, endpoint, env, message):
    args = ["--model-path", str(FIXTURES / "qwen2-fp32")] if command == "serve" else ["--worker-urls", "http://127.0.0.1:9"]
    result = subprocess.run([BIN, command, "--port", "0", *args, "--otlp-traces-endpoint", endpoint],
                            capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode != 0 and message in result.stderr + result.stdout, result.stderr
