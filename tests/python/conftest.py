"""Helpers that start real `pdserve` processes on 127.0.0.1 for the tests.

The binary comes from $PDSERVE_BIN or .build/debug/pdserve (scripts/test builds it).
Every wait is bounded so a broken server fails a test instead of hanging it.
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
BIN = os.environ.get("PDSERVE_BIN", str(ROOT / ".build" / "debug" / "pdserve"))


def _engine_installed(variable, pattern):
    if os.environ.get(variable):
        return Path(os.environ[variable]).exists()
    return any(ROOT.glob(pattern))


# Transfer backends the PD tests run over: the built-in ones, plus each optional
# engine whose wheel is installed — or all of them under
# PDSERVE_REQUIRE_TRANSFER_ENGINES=1 (CI), where a missing engine must fail.
REQUIRE_ENGINES = os.environ.get("PDSERVE_REQUIRE_TRANSFER_ENGINES") == "1"
OPTIONAL_ENGINES = {
    "nixl": ("PDSERVE_NIXL_LIB", ".venv*/lib/python3*/site-packages/.nixl_cu1*.mesonpy.libs/libnixl_capi.so"),
    "mooncake": ("PDSERVE_MOONCAKE_LIB", ".venv*/lib/python3*/site-packages/mooncake/engine.so"),
}
TRANSFER_BACKENDS = ["tcp", "shm"] + [name for name, (variable, pattern) in OPTIONAL_ENGINES.items()
                                      if REQUIRE_ENGINES or _engine_installed(variable, pattern)]


class PDServeProcess:
    """A `pdserve` child process on a free port, ready once it logs its URL."""

    ready_pattern = r"on http://127\.0\.0\.1:(\d+)"

    def __init__(self, command, *args, env=None, ready_timeout=60):
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pdserve-{command}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([BIN, command, "--port", "0", *args], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + ready_timeout
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pdserve {command} exited with {self.proc.returncode}:\n{self.output()}")
            match = re.search(self.ready_pattern, self.output())
            if match:
                self.port = int(match.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"pdserve {command} did not become ready:\n{self.output()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        self.log.flush()
        return self.log_path.read_text()

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=60, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        stop_process(self.proc, sig, timeout)
        self.log.close()
        return self.proc.returncode


def stop_process(proc, sig=signal.SIGTERM, timeout=30):
    """Sends `sig` to a child that still runs and waits for it; kills it after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server(PDServeProcess):
    """A `pdserve serve` instance (one compute thread unless told otherwise)."""

    def __init__(self, *args, env=None, ready_timeout=60):
        super().__init__("serve", "--threads", "1", *args, env=env, ready_timeout=ready_timeout)

    def state(self, key):
        """One counter of the engine's internal state (num_running_reqs, num_transferring_reqs, …)."""
        return self.get("/get_server_info").json()["internal_states"][0][key]

    def pool(self):
        return self.get("/get_server_info").json()["kv_pool"]

    def assert_pool_whole(self, timeout=10):
        """After the prefix cache is flushed every page is free again (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            self.post("/flush_cache")
            pool = self.pool()
            if pool["free_pages"] == pool["total_pages"]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"KV pages leaked: {pool}")
            time.sleep(0.05)



def wait_until(predicate, timeout=10, what="a condition"):
    """Polls `predicate` until it holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def post_raw(port, path, body):
    """Sends a JSON POST on a raw socket and returns the socket, so a test can hang up mid-answer."""
    import socket
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def read_response(sock, seconds=10):
    """What a raw socket receives until it closes or `seconds` pass without a byte."""
    import socket
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except socket.timeout:
        pass
    return data


def reference(name):
    return json.loads((FIXTURES / name / "reference.json").read_text())


@pytest.fixture
def started():
    """Collects what a test starts (servers, routers, fakes) and stops it afterwards, the last started first."""
    things = []
    yield things.append
    for thing in reversed(things):
        thing.stop()


@pytest.fixture(scope="module")
def qwen_server():
    # A long context lets tests hold requests running long enough to abort them.
    server = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny", "--context-length", "20000")
    yield server
    server.stop()


BOM_BODIES = [
    ("/generate", {"text": "\ufeffThe capital", "sampling_params": {"max_new_tokens": 4, "temperature": 0}}),
    ("/v1/completions", {"model": "qwen-tiny", "prompt": ["\ufeffone", "two\ufeff"], "max_tokens": 4, "temperature": 0}),
    ("/v1/chat/completions", {"model": "qwen-tiny", "messages": [{"role": "user", "content": "\ufeffHi"}],
                              "max_tokens": 4, "temperature": 0}),
]


def _prompt_tokens(path, reply):
    return reply["meta_info"]["prompt_tokens"] if path == "/generate" else reply["usage"]["prompt_tokens"]


def assert_raw_and_escaped_bom_agree(url):
    """A U+FEFF sent as raw UTF-8 must reach the tokenizer like the same text sent as
    \\ufeff (corelibs' JSONSerialization used to drop a raw one at the start of a string),
    and count: the same body without its U+FEFFs has fewer prompt tokens. (A router that
    re-encodes bodies can make raw and escaped alike, so only the count tells.)"""
    for path, body in BOM_BODIES:
        replies = []
        for ensure_ascii in (True, False):
            data = json.dumps(body, ensure_ascii=ensure_ascii).encode()
            assert (b"\xef\xbb\xbf" in data) != ensure_ascii
            r = requests.post(url + path, data=data, headers={"Content-Type": "application/json"}, timeout=60)
            assert r.status_code == 200, r.text
            replies.append(r.json())
        escaped, raw = replies
        without = requests.post(url + path, data=json.dumps(body).replace("\\ufeff", "").encode(),
                                headers={"Content-Type": "application/json"}, timeout=60)
        assert without.status_code == 200, without.text
        assert _prompt_tokens(path, raw) == _prompt_tokens(path, escaped) > _prompt_tokens(path, without.json()), path
        if path == "/generate":
            assert raw["output_ids"] == escaped["output_ids"], path
        else:
            assert [c.get("text", c.get("message")) for c in raw["choices"]] == \
                [c.get("text", c.get("message")) for c in escaped["choices"]], path
