"""SGLang's profiling interface on real instances: /start_profile and
/stop_profile write a gzip Chrome trace (what Perfetto opens) holding each
engine step with its batch, every layer's blocks and kernels, sampling, the
requests and their phases, and on PD halves each room's phases and KV
transfers with its bootstrap_room; `pdserve trace merge` puts a prefill's
and a decode's trace on one timeline keyed by room; `pdserve bench serving
--profile --pd-separated` profiles only the workers it is told to.
"""
import gzip
import json
import subprocess

import pytest
import requests

from conftest import BIN, FIXTURES, Server, wait_until
from pd_helpers import PDPair, pair_behind_router

LAYERS = json.loads((FIXTURES / "qwen2-fp32" / "config.json").read_text())["num_hidden_layers"]
KERNELS = {"rms_norm", "q_proj", "k_proj", "v_proj", "rope", "kv_store", "attention", "o_proj",
           "gate_proj", "up_proj", "silu_mul", "down_proj", "lm_head"}


@pytest.fixture(scope="module")
def server():
    s = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny")
    yield s
    s.stop()


def read_trace(path):
    with gzip.open(path, "rt") as f:
        trace = json.load(f)
    assert_schema(trace)
    return trace


def assert_schema(trace):
    """The Chrome trace shape every viewer needs: typed fields per phase, async begins matched by ends."""
    assert isinstance(trace["traceEvents"], list) and trace["displayTimeUnit"] == "ms"
    assert isinstance(trace["baseTimeNanoseconds"], int)
    open_async = {}
    for e in trace["traceEvents"]:
        assert isinstance(e["name"], str) and e["ph"] in {"X", "b", "e", "i", "M"}, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            assert e["name"] in {"process_name", "thread_name"} and isinstance(e["args"]["name"], str)
            continue
        assert isinstance(e["ts"], (int, float)) and isinstance(e["cat"], str), e
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
        if e["ph"] in "be":
            key = (e["cat"], e.get("id") or json.dumps(e.get("id2")), e["name"])
            open_async[key] = open_async.get(key, 0) + (1 if e["ph"] == "b" else -1)
    assert all(count == 0 for count in open_async.values()), open_async


def complete(trace, name=None, category=None):
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and (name is None or e["name"] == name)
            and (category is None or e["cat"] == category)]


def begins(trace, name=None, category=None):
    return [e for e in trace["traceEvents"] if e["ph"] == "b" and (name is None or e["name"] == name)
            and (category is None or e["cat"] == category)]


def inside(inner, outer):
    return outer["tid"] == inner["tid"] and outer["ts"] <= inner["ts"] and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"] + 1e-3


def generate(url, tokens, text="The capital of France is", **extra):
    reply = requests.post(url + "/generate", json={"text": text, "sampling_params": {
        "max_new_tokens": tokens, "temperature": 0, "ignore_eos": True}, **extra}, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_num_steps_records_each_step_with_its_batch_layers_and_kernels(tmp_path, server):
    started = server.post("/start_profile", {"output_dir": str(tmp_path), "num_steps": 4, "profile_id": "fixed"})
    assert started.status_code == 200, started.text
    path = tmp_path / "fixed-TP-0.trace.json.gz"
    assert started.json()["trace"] == str(path)
    reply = generate(server.url, 6, text="A prompt no other test sends, so nothing of it is cached")
    wait_until(path.exists, timeout=30, what="the trace of a session that ended by itself")
    trace = read_trace(path)
    steps = sorted(complete(trace, category="engine"), key=lambda e: e["ts"])
    steps = [e for e in steps if e["name"].startswith("step")]
    assert len(steps) == 4 and trace["otherData"]["steps"] == 4 and trace["otherData"]["profile_id"] == "fixed"
    first, *rest = steps
    assert first["name"] == "step (extend)" and first["args"]["extend_tokens"] == reply["meta_info"]["prompt_tokens"]
    assert all(s["name"] == "step (decode)" and s["args"]["decode_requests"] == 1 and s["args"]["tokens"] == 1 for s in rest)
    layers = complete(trace, "layer")
    assert len(layers) == 4 * LAYERS
    assert all(any(inside(layer, step) for step in steps) for layer in layers)
    kernels = complete(trace, category="forward")
    assert KERNELS <= {k["name"] for k in kernels}
    # Every kernel of a layer lies inside that layer's span, on the engine thread.
    for kernel in (k for k in kernels if k["name"] not in {"layer", "lm_head"}):
        assert any(inside(kernel, layer) and layer["args"]["layer"] == kernel["args"]["layer"] for layer in layers), kernel
    assert len(complete(trace, "sample")) == 4 and len(complete(trace, "schedule")) == 4
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert any(n.startswith("pdserve unified 127.0.0.1:") for n in names), names
    # The session ended by itself: there is none to stop.
    assert server.post("/stop_profile").status_code == 409


def test_stop_writes_the_requests_and_their_phases(tmp_path, server):
    assert server.post("/start_profile", {"output_dir": str(tmp_path), "activities": ["CPU"], "merge_profiles": True}).status_code == 200
    generate(server.url, 3, rid="profiled-a")
    generate(server.url, 2, text="Two plus two is", rid="profiled-b")
    stopped = server.post("/stop_profile")
    assert stopped.status_code == 200, stopped.text
    traces = stopped.json()["traces"]
    assert len(traces) == 2 and traces[1].startswith(str(tmp_path / "merged-"))
    trace = read_trace(traces[0])
    requests_ = {e["args"]["rid"]: e for e in begins(trace, "request", "request")}
    assert set(requests_) == {"profiled-a", "profiled-b"}
    assert requests_["profiled-a"]["args"]["output_tokens"] == 3 and requests_["profiled-b"]["args"]["output_tokens"] == 2
    for phase in ["queue_wait", "prefill_compute", "decode"]:
        assert {e["id"] for e in begins(trace, phase, "request")} == {e["id"] for e in requests_.values()}, phase
    assert len([s for s in complete(trace, category="engine") if s["name"].startswith("step")]) >= 5
    read_trace(traces[1])


@pytest.mark.parametrize("body, field", [
    ({"activities": ["MEM"]}, "activities"),
    ({"activities": "CPU"}, "activities"),
    ({"num_steps": 0}, "num_steps"),
    ({"start_step": "3"}, "start_step"),
    ({"profile_by_stage": True}, "profile_by_stage"),
    ({"with_stack": True}, "with_stack"),
    ({"profile_id": "../escape"}, "profile_id"),
    ({"outputdir": "/tmp"}, "outputdir"),
    ({"output_dir": "/proc/pdserve-not-writable"}, None),
])
def test_a_bad_start_is_a_400_and_starts_nothing(server, body, field):
    refused = server.post("/start_profile", body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == field, error
    assert server.post("/stop_profile").status_code == 409


def test_malformed_bodies_and_conflicts(tmp_path, server):
    listed = requests.post(server.url + "/start_profile", data=b"[1]", headers={"Content-Type": "application/json"}, timeout=30)
    assert listed.status_code == 400 and "JSON object" in listed.json()["error"]["message"]
    raw = requests.post(server.url + "/start_profile", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]
    stop = server.post("/stop_profile")
    assert stop.status_code == 409 and "not in progress" in stop.json()["error"]["message"]
    assert server.post("/start_profile", {"output_dir": str(tmp_path)}).status_code == 200
    again = server.post("/start_profile", {"output_dir": str(tmp_path)})
    assert again.status_code == 409 and "already in progress" in again.json()["error"]["message"]
    # A session with no step still writes a valid (empty) trace.
    stopped = server.post("/stop_profile")
    assert stopped.status_code == 200
    assert complete(read_trace(stopped.json()["traces"][0]), category="engine") == []


@pytest.mark.parametrize("variable", ["PDSERVE_PROFILER_DIR", "SGLANG_TORCH_PROFILER_DIR"])
def test_the_default_directory_comes_from_the_environment(tmp_path, started, variable):
    s = Server("--model-path", str(FIXTURES / "qwen2-fp32"), env={variable: str(tmp_path)})
    started(s)
    # curl-style: GET, no body.
    assert requests.get(s.url + "/start_profile", timeout=30).status_code == 200
    generate(s.url, 2)
    traces = requests.get(s.url + "/stop_profile", timeout=60).json()["traces"]
    assert len(traces) == 1 and traces[0].startswith(str(tmp_path) + "/")
    assert len(complete(read_trace(traces[0]), "layer")) == 2 * LAYERS


def room_spans(trace, name):
    return [e for e in begins(trace, name, "room")]


def test_each_pd_half_profiles_its_rooms_and_merge_follows_them(tmp_path, started):
    pair = PDPair()
    started(pair)
    for half, url in [("p", pair.prefill.url), ("d", pair.decode.url)]:
        assert requests.post(url + "/start_profile", json={"output_dir": str(tmp_path / half)}, timeout=30).status_code == 200
    body = pair.bootstrap({"input_ids": list(range(30, 60)), "sampling_params": {"max_new_tokens": 4, "temperature": 0}})
    room = body["bootstrap_room"]
    decode, prefill = pair.post("/generate", body)
    assert decode.status_code == 200 and prefill.status_code == 200
    sent_bytes = prefill.json()["meta_info"]["phases"]["kv_transfer_bytes"]
    [prefill_trace] = requests.post(pair.prefill.url + "/stop_profile", timeout=60).json()["traces"]
    [decode_trace] = requests.post(pair.decode.url + "/stop_profile", timeout=60).json()["traces"]
    p, d = read_trace(prefill_trace), read_trace(decode_trace)

    [p_room] = room_spans(p, "prefill room")
    assert p_room["args"]["bootstrap_room"] == room and p_room["args"]["state"] == "success"
    assert {e["name"] for e in begins(p, category="room")} >= {"prefill request", "prefill room", "prefill_bootstrap_wait", "kv_transfer",
                                                               "queue_wait", "prefill_compute"}
    sends = complete(p, "kv_send", "transfer")
    assert sends and all(s["args"]["bootstrap_room"] == room for s in sends)
    assert sum(s["args"]["bytes"] for s in sends) == sent_bytes
    [d_room] = room_spans(d, "decode room")
    assert d_room["args"]["bootstrap_room"] == room and d_room["args"]["state"] == "success"
    assert {e["name"] for e in begins(d, category="room")} >= {"decode request", "decode room", "decode_bootstrap_wait", "kv_wait", "decode"}
    receives = complete(d, "kv_recv", "transfer")
    assert sum(r["args"]["bytes"] for r in receives) == sent_bytes and all(r["args"]["bootstrap_room"] == room for r in receives)
    # Every room span of both halves names its room.
    for trace in (p, d):
        assert all(e["id"] == hex(room) for e in trace["traceEvents"] if e.get("cat") == "room" and e["ph"] in "be")
        assert all(e["args"]["bootstrap_room"] == room for e in begins(trace, category="room") if "args" in e and e["name"].endswith("room"))

    merged_path = tmp_path / "merged.trace.json.gz"
    merged = subprocess.run([BIN, "trace", "merge", prefill_trace, decode_trace, "-o", str(merged_path)],
                            capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    m = read_trace(merged_path)
    room_events = [e for e in m["traceEvents"] if e.get("cat") == "room"]
    assert room_events and all(e["id2"] == {"global": hex(room)} and "id" not in e for e in room_events)
    assert len({e["pid"] for e in room_events}) == 2, "the room's track spans both instances"
    names = {e["args"]["name"] for e in m["traceEvents"] if e["name"] == "process_name"}
    assert any("prefill" in n for n in names) and any("decode" in n for n in names)
    # One clock: the prefill's first send starts before the decode stops waiting for the KV.
    [kv_wait_end] = [e["ts"] for e in m["traceEvents"] if e.get("cat") == "room" and e["name"] == "kv_wait" and e["ph"] == "e"]
    assert min(e["ts"] for e in complete(m, "kv_send")) <= kv_wait_end
    pair.assert_pools_whole()


def test_merge_refuses_what_is_not_a_trace(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"events": []}')
    result = subprocess.run([BIN, "trace", "merge", str(bad), "-o", str(tmp_path / "out.gz")], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "not a Chrome trace" in result.stderr
    assert not (tmp_path / "out.gz").exists()


def bench(*args):
    return subprocess.run([BIN, "bench", "serving", "--num-prompts", "3", "--random-input-len", "8", "--random-output-len", "3",
                           "--warmup-requests", "0", "--disable-tqdm", *args], capture_output=True, text=True, timeout=120)


def test_bench_serving_profiles_the_server(tmp_path, server):
    result = bench("--base-url", server.url, "--profile", "--profile-output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    [trace] = list(tmp_path.glob("*-TP-0.trace.json.gz"))
    assert "Profiler stopped for Server worker" in result.stderr and str(trace) in result.stderr
    assert len([s for s in complete(read_trace(trace), category="engine") if s["name"].startswith("step")]) >= 3


def test_bench_serving_pd_separated_profiles_only_the_named_workers(tmp_path, started):
    pair, router = pair_behind_router()
    started(pair)
    started(router)
    result = bench("--base-url", router.url, "--pd-separated", "--profile", "--profile-prefill-url", pair.prefill.url,
                   "--profile-output-dir", str(tmp_path), "--profile-activities", "CPU")
    assert result.returncode == 0, result.stderr
    assert f"Profiler started for Prefill-0 worker at {pair.prefill.url}" in result.stderr
    [trace] = list(tmp_path.glob("*.trace.json.gz"))
    p = read_trace(trace)
    assert p["otherData"]["role"] == "prefill" and len(room_spans(p, "prefill room")) == 3
    # The decode was never profiled.
    assert requests.post(pair.decode.url + "/stop_profile", timeout=30).status_code == 409

    both = bench("--base-url", router.url, "--pd-separated", "--profile", "--profile-prefill-url", pair.prefill.url,
                 "--profile-decode-url", pair.decode.url)
    assert both.returncode != 0 and "cannot be used together" in both.stderr
    unprofiled = bench("--base-url", router.url, "--profile-decode-url", pair.decode.url)
    assert unprofiled.returncode != 0 and "need --profile --pd-separated" in unprofiled.stderr
    warned = bench("--base-url", router.url, "--pd-separated", "--profile")
    assert warned.returncode == 0 and "requires --profile-prefill-url or --profile-decode-url" in warned.stderr


def test_the_pd_router_profiles_both_halves(tmp_path, started):
    """`/start_profile` and `/stop_profile` sent to `pdserve router` reach every
    instance behind it (SGLang's bench_serving --profile posts them to the
    base URL); each half writes its own trace, naming the room."""
    pair, router = pair_behind_router()
    started(pair)
    started(router)
    started_reply = requests.post(router.url + "/start_profile", json={"output_dir": str(tmp_path)}, timeout=30)
    assert started_reply.status_code == 200, started_reply.text
    assert sorted(started_reply.json()["succeeded"]) == sorted([pair.prefill.url, pair.decode.url])
    generate(router.url, 3)
    stopped = requests.post(router.url + "/stop_profile", timeout=60)
    assert stopped.status_code == 200, stopped.text
    traces = [t for reply in stopped.json()["responses"].values() for t in reply["traces"]]
    assert len(traces) == 2
    rooms = sorted((len(room_spans(trace, "prefill room")), len(room_spans(trace, "decode room"))) for trace in map(read_trace, traces))
    assert rooms == [(0, 1), (1, 0)], rooms
    # Nothing left to stop anywhere: both instances' 409, naming both, with their error.
    again = requests.post(router.url + "/stop_profile", timeout=60)
    assert again.status_code == 409 and len(again.json()["failed"]) == 2, again.text
    assert "not in progress" in again.json()["error"]["message"]
