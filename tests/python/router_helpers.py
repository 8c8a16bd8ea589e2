"""Helpers for the router tests: a `pdserve router` child process, the real
sglang-router, and small scripted fake workers (Python HTTP servers that
record what they receive) for behaviour a real instance cannot show on
demand — a 500, a stream that breaks, a prefill that answers late.

Every wait is bounded so a broken router fails a test instead of hanging it.
"""
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from conftest import BIN, PDServeProcess, stop_process


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RouterProcess(PDServeProcess):
    """`pdserve router --port 0 ARGS…`, ready once it prints its URL."""

    ready_pattern = r"ready on http://127\.0\.0\.1:(\d+)"

    def __init__(self, *args, ready_timeout=30, env=None):
        super().__init__("router", *args, ready_timeout=ready_timeout, env=env)

    def workers(self):
        return {w["url"]: w for w in self.get("/workers").json()["workers"]}

    def wait_for(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-3000:]}")


def sglang_router_available():
    try:
        import sglang_router  # noqa: F401
        return True
    except ImportError:
        return False


class SGLangRouterProcess:
    """The real sglang-router (PyPI `sglang-router`), plain or PD mode.

    It reports ready before its workers are registered (they are added by a
    background job), so readiness here means: a tiny /generate answers 200.
    """

    def __init__(self, *args, probe_body=None, ready_timeout=60):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sglang-router-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sglang_router.launch_router", "--host", "127.0.0.1", "--port", str(self.port),
             "--worker-startup-check-interval", "1", "--prometheus-port", str(free_port()), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        body = probe_body or {"text": "ready?", "sampling_params": {"max_new_tokens": 1, "temperature": 0}}
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sglang-router exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            try:
                if requests.post(self.url + "/generate", json=body, timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sglang-router did not route a request within {ready_timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.25)

    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def post(self, path, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=60, **kw)

    def stop(self, timeout=15):
        stop_process(self.proc, timeout=timeout)
        self.log.close()


class FakeWorker:
    """A scripted HTTP worker. `script(handler, path, body)` answers a request
    (it may call handler.reply / handler.sse / sleep); every request is
    recorded in `self.requests` as (method, path, headers, parsed body)."""

    def __init__(self, script=None, port=0):
        self.requests = []
        self.lock = threading.Lock()
        fake = self
        script = script or (lambda h, path, body: h.reply(200, {}))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                path = self.path.split("?")[0]
                with fake.lock:
                    fake.requests.append((self.command, path, dict(self.headers), body))
                try:
                    script(self, path, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _handle

            def reply(self, status, obj=None, content_type="application/json"):
                data = b"" if obj is None else (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def sse_head(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def sse_event(self, obj):
                data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def sse_end(self):
                self.sse_event(b"[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, path, method="POST"):
        with self.lock:
            return [body for m, p, _, body in self.requests if p == path and m == method]

    def headers_of(self, path):
        with self.lock:
            return [headers for _, p, headers, _ in self.requests if p == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def health_only(handler, path, body):
    """A bootstrap server stand-in: answers /health."""
    handler.reply(200 if path == "/health" else 404, {})


def metric(text, name, **labels):
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")) or (want and line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def served_generate_count(server):
    """How many /generate requests an instance answered with 200 (from its own metrics)."""
    return metric(server.get("/metrics").text, "pdserve:http_requests_total", path="/generate", status="200")


@functools.lru_cache(maxsize=1)
def pd_mode_refusal():
    """Why a prefill instance cannot start here, or None once it can (it printed its URL)."""
    probe = subprocess.Popen([BIN, "serve", "--disaggregation-mode", "prefill", "--model-path", "demo", "--port", "0",
                              "--disaggregation-bootstrap-port", str(free_port())],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 30
    try:
        for line in probe.stdout:
            lines.append(line.strip())
            if "on http://" in line:
                return None
            if time.monotonic() > deadline:
                return "a prefill instance did not report ready within 30 s"
        return lines[-1] if lines else f"exited with {probe.wait()}"
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
