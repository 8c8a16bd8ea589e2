"""Gaps between stream events as SGLang's bench_serving times them: an
aiohttp client, one timestamp per `data:` line that carries text, N
requests at concurrency C, for /generate and /v1/completions on each
target (an instance, a PD router). A burst — several steps' events
arriving together — shows as gaps under 1 ms.

    .venv-bench/bin/python bench/stream_gaps.py --target unified=http://127.0.0.1:30000 \
        --target pd=http://127.0.0.1:30100 --out docs/benchmarks/stream-gaps
"""
import argparse
import asyncio
import json
import statistics
import time

import aiohttp

ROUTES = ["/generate", "/v1/completions"]


async def one(session, url, route, prompt, output_len):
    sampling = {"temperature": 0, "ignore_eos": True}
    if route == "/generate":
        body = {"input_ids": prompt, "stream": True, "sampling_params": {"max_new_tokens": output_len, **sampling}}
    else:
        body = {"prompt": prompt, "stream": True, "max_tokens": output_len, **sampling}
    stamps = []
    async with session.post(url + route, json=body) as response:
        response.raise_for_status()
        async for line in response.content:
            line = line.strip()
            if not line.startswith(b"data: {"):
                continue
            data = json.loads(line[6:])
            if data["text"] if route == "/generate" else data["choices"][0]["text"]:
                stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps, stamps[1:])]


async def gaps(url, route, args):
    limit = asyncio.Semaphore(args.concurrency)
    prompt = [(7 * i) % 500 + 10 for i in range(args.input_len)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
        async def limited():
            async with limit:
                return await one(session, url, route, prompt, args.output_len)
        results = await asyncio.gather(*[limited() for _ in range(args.num_prompts)])
    return [g for r in results for g in r]


def summary(values):
    ordered = sorted(values)
    return {"gaps": len(values), "median_ms": statistics.median(values) * 1e3, "p10_ms": ordered[len(ordered) // 10] * 1e3,
            "under_1ms": sum(v < 0.001 for v in values) / len(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", required=True, help="NAME=URL, repeatable")
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--input-len", type=int, default=256)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--out", required=True, help="path prefix for .json and .png")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    report = {"settings": vars(args), "load_before": load_before, "results": {}}
    raw = {}
    for target in args.target:
        name, url = target.split("=", 1)
        for route in ROUTES:
            values = asyncio.run(gaps(url, route, args))
            raw[(name, route)] = values
            report["results"][f"{name} {route}"] = summary(values)
            print(f"{name} {route}: {report['results'][f'{name} {route}']}", flush=True)
    with open("/proc/loadavg") as f:
        report["load_after"] = f.read().split()[:3]
    with open(args.out + ".json", "w") as f:
        json.dump(report, f, indent=1)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, route), values in raw.items():
        ordered = sorted(v * 1e3 for v in values)
        ax.plot(ordered, [i / len(ordered) for i in range(len(ordered))], label=f"{name} {route}")
    ax.set_xscale("log")
    ax.set_xlabel("gap between text events (ms, log)")
    ax.set_ylabel("fraction of gaps")
    ax.set_title(f"Stream event gaps, {args.num_prompts} requests at concurrency {args.concurrency}")
    ax.axvline(1, color="grey", linestyle=":")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=110)


if __name__ == "__main__":
    main()
