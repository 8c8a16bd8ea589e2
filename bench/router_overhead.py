#!/usr/bin/env python3
"""Latency the router adds: p50/p90 of a tiny /generate (1 new token) sent
straight to a `pdserve serve` instance and through `pdserve router` (and
through sglang-router when it is installed), interleaved so both see the
same machine load.

    PDSERVE_BIN=.build/release/pdserve .venv-test/bin/python bench/router_overhead.py [--requests 300]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from conftest import FIXTURES, Server  # noqa: E402
from router_helpers import RouterProcess, SGLangRouterProcess, sglang_router_available  # noqa: E402


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    worker = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny")
    targets = {"direct": worker.url}
    started = []
    try:
        ours = RouterProcess("--worker-urls", worker.url, "--policy", "round_robin")
        started.append(ours)
        targets["pdserve router"] = ours.url
        if sglang_router_available():
            theirs = SGLangRouterProcess("--worker-urls", worker.url, "--policy", "round_robin")
            started.append(theirs)
            targets["sglang-router 0.3.2"] = theirs.url
        body = {"text": "hi", "sampling_params": {"max_new_tokens": 1, "temperature": 0}}
        sessions = {name: requests.Session() for name in targets}  # keep-alive, as real clients do
        times = {name: [] for name in targets}
        for i in range(args.requests + 20):
            for name, url in targets.items():
                start = time.perf_counter()
                response = sessions[name].post(url + "/generate", json=body, timeout=30)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if i >= 20:  # warm-up
                    times[name].append(elapsed * 1000)
        base = statistics.median(times["direct"])
        print(f"| path | p50 ms | p90 ms | added p50 ms |\n|---|---|---|---|")
        for name, values in times.items():
            p50 = statistics.median(values)
            print(f"| {name} | {p50:.2f} | {percentile(values, 0.9):.2f} | {p50 - base:+.2f} |")
    finally:
        for thing in started:
            thing.stop()
        worker.stop()


if __name__ == "__main__":
    main()
