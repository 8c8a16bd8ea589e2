#!/usr/bin/env python3
"""Connection pressure on `pdserve serve` (hardening issue, item 2): with the
server's descriptor limit at --fd-limit, a client opens --connections idle
connections as fast as it can, for --rounds rounds. Each round checks that
the server is still running, still answers /health on a fresh connection
within --health-timeout, holds no more connections than --max-connections
(plus the ones past it waiting out their one-second grace), and what its
RSS and descriptor count reached. Bounded: every wait has a deadline.

    swift build -c release --product pdserve
    python3 bench/fd_pressure.py               # 19,500 idle connections against a 20,000-fd server, 4 rounds
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from soak import process_figures

REPO = Path(__file__).resolve().parents[1]


def health(port, timeout):
    """The status of GET /health on a fresh connection (503 too_many_connections while the cap is full) and how long it took."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as reply:
            return reply.status, time.monotonic() - started
    except urllib.error.HTTPError as error:
        refused = error.code == 503 and b"too_many_connections" in error.read()
        return (503 if refused else error.code), time.monotonic() - started
    except OSError as error:
        return f"{type(error).__name__}", time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(REPO / ".build/release/pdserve"))
    parser.add_argument("--model", default=str(REPO / "tests/fixtures/models/qwen2-fp32"))
    parser.add_argument("--connections", type=int, default=19500)
    parser.add_argument("--fd-limit", type=int, default=20000, help="the server's RLIMIT_NOFILE (at most this machine's hard limit)")
    parser.add_argument("--max-connections", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--health-timeout", type=float, default=5)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    limit = min(args.fd_limit, hard)
    log_path = Path("/tmp") / f"fd-pressure-{os.getpid()}.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [args.binary, "serve", "--model-path", args.model, "--port", "0", "--threads", "1", "--log-level", "info",
             "--max-connections", str(args.max_connections)],
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    port = None
    deadline = time.monotonic() + 60
    while port is None and time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if "on http://127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].strip())
        time.sleep(0.1)
    if port is None:
        sys.exit("the server did not start:\n" + log_path.read_text())
    failures = 0
    for round_number in range(1, args.rounds + 1):
        sockets, refused_at_connect = [], 0
        started = time.monotonic()
        for _ in range(args.connections):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                refused_at_connect += 1
        opened = time.monotonic() - started
        time.sleep(2)  # the grace second of the connections past the limit
        status, took = health(port, args.health_timeout)
        figures = process_figures(server.pid)
        rss, fds = figures["rss_mb"], figures["fds"]
        alive = server.poll() is None
        for sock in sockets:
            sock.close()
        time.sleep(1)
        after, _ = health(port, args.health_timeout)
        # Under pressure: a clean 503 (or a 200), fds at the cap; afterwards: served again.
        ok = alive and status in (200, 503) and fds <= args.max_connections + 200 and after == 200
        failures += not ok
        print(f"round {round_number}: opened {len(sockets)} ({refused_at_connect} refused at connect) in {opened:.1f} s; "
              f"server {'running' if alive else f'EXITED {server.returncode}'}, /health {status} in {took * 1000:.0f} ms, "
              f"{fds} fds, RSS {rss:.0f} MB; /health after closing {after} -> {'ok' if ok else 'FAIL'}", flush=True)
        if not alive:
            break
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
