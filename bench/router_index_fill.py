#!/usr/bin/env python3
"""Router overhead as the `cache_aware` prefix index fills: distinct 4 KB
prompts (256 index entries each; `max_new_tokens: 0`, so the instance only
tokenizes) go to one `pdserve serve` instance straight
and through `pdserve router --policy cache_aware`, interleaved pair by pair
(a different prompt each way, so neither path hits the other's prefix
cache); the router's added latency is reported per window of requests
while its index grows to its bound (`--max-tree-size`) and starts
forgetting.

    PDSERVE_BIN=.build/release/pdserve .venv-test/bin/python bench/router_index_fill.py \\
        [--requests 6000] [--window 500] [--max-tree-size 16777216] [--json out.json] [--plot out.png]
"""
import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from conftest import FIXTURES, Server  # noqa: E402
from router_helpers import RouterProcess  # noqa: E402

WORDS = [w.strip() for w in "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu".split()]


def prompt(rng, size=4096):
    words = []
    length = 0
    while length < size:
        words.append(rng.choice(WORDS) + str(rng.randrange(1000)))
        length += len(words[-1]) + 1
    return " ".join(words)[:size]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--max-tree-size", type=int, default=16 << 20)
    parser.add_argument("--json")
    parser.add_argument("--plot")
    args = parser.parse_args()
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    rng = random.Random(7)
    worker = Server("--model-path", str(FIXTURES / "qwen2-fp32"), "--served-model-name", "qwen-tiny", "--context-length", "8192")
    router = None
    try:
        router = RouterProcess("--worker-urls", worker.url, "--policy", "cache_aware", "--max-tree-size", str(args.max_tree_size))
        sessions = {"direct": requests.Session(), "router": requests.Session()}
        urls = {"direct": worker.url, "router": router.url}
        windows = []
        current = {"direct": [], "router": []}
        for i in range(args.requests):
            order = ["direct", "router"] if i % 2 == 0 else ["router", "direct"]
            for path in order:
                # No new token: the instance only tokenizes, so the router's share is what is measured.
                body = {"text": prompt(rng), "sampling_params": {"max_new_tokens": 0}}
                start = time.perf_counter()
                reply = sessions[path].post(urls[path] + "/generate", json=body, timeout=60)
                current[path].append((time.perf_counter() - start) * 1000)
                assert reply.status_code == 200, reply.text
            if (i + 1) % args.window == 0:
                d, r = current["direct"], current["router"]
                added = [b - a for a, b in zip(d, r)]
                windows.append({"requests": i + 1, "entries_inserted": (i + 1) * 256,
                                "direct_p50_ms": statistics.median(d), "router_p50_ms": statistics.median(r),
                                "added_p50_ms": statistics.median(added),
                                "router_p99_ms": sorted(r)[int(0.99 * len(r))], "router_max_ms": max(r)})
                print(json.dumps(windows[-1]), flush=True)
                current = {"direct": [], "router": []}
    finally:
        if router:
            router.stop()
        worker.stop()
    loadavg_after = Path("/proc/loadavg").read_text().split()[:3]
    bound = args.max_tree_size // 16
    print(f"index bound {bound} entries per worker; loadavg before {loadavg} after {loadavg_after}")
    print("| requests | entries inserted | direct p50 ms | router p50 ms | added p50 ms | router p99 ms | router max ms |")
    print("|---|---|---|---|---|---|---|")
    for w in windows:
        print(f"| {w['requests']} | {w['entries_inserted']:,} | {w['direct_p50_ms']:.2f} | {w['router_p50_ms']:.2f} | "
              f"{w['added_p50_ms']:+.2f} | {w['router_p99_ms']:.2f} | {w['router_max_ms']:.2f} |")
    report = {"max_tree_size": args.max_tree_size, "bound_entries": bound, "window": args.window,
              "loadavg_before": loadavg, "loadavg_after": loadavg_after, "windows": windows}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3.6))
        x = [w["entries_inserted"] / 1e6 for w in windows]
        ax.plot(x, [w["added_p50_ms"] for w in windows], marker="o", label="router added p50")
        ax.plot(x, [w["router_p99_ms"] - w["direct_p50_ms"] for w in windows], marker=".", label="router p99 - direct p50")
        ax.axvline(bound / 1e6, color="grey", linestyle="--", label="index bound")
        ax.set_xlabel("prefix entries inserted (millions)")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.set_title("cache_aware router overhead as its index fills")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
