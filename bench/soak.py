#!/usr/bin/env python3
"""A long soak of a PD cluster — our router, one prefill, one decode, the
shared auth key on — at a fixed share of its measured capacity: does
anything grow that should not (RSS, open fds, threads) and does latency
stay flat? Every request goes through the router on keep-alive
connections, the case that used to leak a callback per request.

1. Capacity: a closed loop at --concurrency for --capacity-seconds gives
   completed requests per second.
2. Soak: Poisson arrivals at --load × capacity for --minutes. Requests mix
   greedy and sampled, /generate and /v1/completions, streamed and not,
   prompts of 16–128 random tokens, 16–48 new tokens.
3. Every --sample-seconds: each process's RSS, fds and threads from /proc;
   per --window-seconds window: completions, errors, p50/p99 latency
   (measured from each request's scheduled arrival, so queueing counts).

Writes OUT.json (every sample), OUT.md (summary) and OUT.png (plot);
matplotlib is needed for the plot (scripts/soak sets up a venv with it).

    swift build -c release
    python3 bench/soak.py --minutes 30          # docs/benchmarks/soak.{json,md,png}
"""
import argparse
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def process_figures(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def wait_ready(url, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} was not ready within {timeout} s")


class Cluster:
    def __init__(self, binary, model, log_dir, pool_tokens, tree_bytes):
        self.procs = {}
        env = {**os.environ, "PDSERVE_DISAGGREGATION_AUTH_KEY": "soak-test-deployment-secret-0123456789"}
        bootstrap = free_port()
        self.ports = {name: free_port() for name in ("prefill", "decode", "router")}
        common = ["serve", "--model-path", str(model), "--threads", "1", "--log-level", "warning", "--host", "127.0.0.1",
                  "--max-total-tokens", str(pool_tokens)]
        commands = {
            "prefill": common + ["--port", str(self.ports["prefill"]), "--disaggregation-mode", "prefill",
                                 "--disaggregation-bootstrap-port", str(bootstrap)],
            "decode": common + ["--port", str(self.ports["decode"]), "--disaggregation-mode", "decode"],
            "router": ["router", "--pd-disaggregation", "--host", "127.0.0.1", "--port", str(self.ports["router"]), "--log-level", "warning",
                       "--max-tree-size", str(tree_bytes),
                       "--prefill", f"http://127.0.0.1:{self.ports['prefill']}", str(bootstrap),
                       "--decode", f"http://127.0.0.1:{self.ports['decode']}"],
        }
        for name, command in commands.items():
            log = open(log_dir / f"soak-{name}.log", "w")
            self.procs[name] = subprocess.Popen([str(binary)] + command, stdout=log, stderr=subprocess.STDOUT, env=env)
            wait_ready(f"http://127.0.0.1:{self.ports[name]}", self.procs[name])
        self.url = f"http://127.0.0.1:{self.ports['router']}"

    def figures(self):
        return {name: process_figures(proc.pid) for name, proc in self.procs.items()}

    def stop(self):
        for proc in reversed(list(self.procs.values())):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


class Client:
    """One keep-alive HTTP/1.1 connection to the router (http.client), reopened only if the router closes it."""

    def __init__(self, url):
        import http.client
        self.host, self.port = url.removeprefix("http://").split(":")
        self.make = lambda: http.client.HTTPConnection(self.host, int(self.port), timeout=120)
        self.connection = self.make()

    def post(self, path, body, stream):
        payload = json.dumps(body).encode()
        for attempt in range(2):
            try:
                self.connection.request("POST", path, payload, {"Content-Type": "application/json"})
                reply = self.connection.getresponse()
                if stream:
                    while reply.read(4096):
                        pass
                else:
                    reply.read()
                return reply.status
            except Exception as error:  # http.client raises several kinds of its own besides OSError
                self.connection.close()
                self.connection = self.make()
                if attempt == 1:
                    return f"error: {type(error).__name__}"


def make_request(rng, vocab):
    prompt = [rng.randrange(3, vocab) for _ in range(rng.randint(16, 128))]
    new = rng.randint(16, 48)
    sampled = rng.random() < 0.5
    sampling = {"temperature": 0.8, "top_p": 0.95, "top_k": 50} if sampled else {"temperature": 0}
    stream = rng.random() < 0.25
    if rng.random() < 0.5:
        body = {"input_ids": prompt, "sampling_params": {"max_new_tokens": new, "ignore_eos": True, **sampling}, "stream": stream}
        return "/generate", body, stream
    body = {"prompt": prompt, "max_tokens": new, "ignore_eos": True, "stream": stream, **sampling}
    return "/v1/completions", body, stream


def closed_loop(url, seconds, concurrency, vocab):
    done = []
    stop_at = time.monotonic() + seconds

    def worker(seed):
        rng, client = random.Random(seed), Client(url)
        while time.monotonic() < stop_at:
            status = client.post(*make_request(rng, vocab))
            if status == 200:
                done.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done) / seconds


def soak(cluster, rate, minutes, sample_seconds, vocab, workers=64):
    results = []  # (scheduled, finished, status)
    samples = []
    arrivals = queue.Queue()
    start = time.monotonic()
    end = start + minutes * 60
    rng = random.Random(1)

    def schedule():
        t = start
        while True:
            t += rng.expovariate(rate)
            if t >= end:
                break
            arrivals.put(t)
        for _ in range(workers):
            arrivals.put(None)

    def worker(seed):
        local, client = random.Random(seed), Client(cluster.url)
        while (at := arrivals.get()) is not None:
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status = client.post(*make_request(local, vocab))
            results.append((at - start, time.monotonic() - start, status))

    def sampler():
        while time.monotonic() < end:
            samples.append({"t": time.monotonic() - start, **{f"{name}.{key}": value for name, figures in cluster.figures().items()
                                                            for key, value in figures.items()}})
            time.sleep(sample_seconds)

    threads = [threading.Thread(target=schedule)] + [threading.Thread(target=worker, args=(100 + i,)) for i in range(workers)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    last = start
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            ok = sum(1 for r in results if r[2] == 200)
            print(f"[soak] {int((last - start) / 60)} / {minutes} min: {ok} served, {len(results) - ok} failed, "
                  f"rss {[round(v) for k, v in samples[-1].items() if k.endswith('rss_mb')]} MB", flush=True)
    samples.append({"t": time.monotonic() - start, **{f"{name}.{key}": value for name, figures in cluster.figures().items()
                                                    for key, value in figures.items()}})
    return results, samples


def windows(results, seconds, minutes):
    out = []
    for w in range(int(minutes * 60 // seconds)):
        inside = [r for r in results if w * seconds <= r[0] < (w + 1) * seconds]
        latencies = sorted(r[1] - r[0] for r in inside if r[2] == 200)
        errors = [r for r in inside if r[2] != 200]
        p = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None)
        out.append({"start_s": w * seconds, "served": len(latencies), "errors": len(errors),
                    "p50_ms": p(0.5) and p(0.5) * 1000, "p99_ms": p(0.99) and p(0.99) * 1000})
    return out


def slope_per_10min(samples, key, after):
    points = [(s["t"], s[key]) for s in samples if s["t"] >= after]
    if len(points) < 3:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    num = sum((t - mean_t) * (v - mean_v) for t, v in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den * 600 if den else 0.0


def plot(samples, wins, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    minutes = [s["t"] / 60 for s in samples]
    for ax, key, label in [(axes[0], "rss_mb", "RSS (MB)"), (axes[1], "fds", "open fds"), (axes[2], "threads", "threads")]:
        for name in ("prefill", "decode", "router"):
            ax.plot(minutes, [s[f"{name}.{key}"] for s in samples], label=name)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    w_minutes = [w["start_s"] / 60 for w in wins]
    axes[3].plot(w_minutes, [w["p50_ms"] for w in wins], label="p50")
    axes[3].plot(w_minutes, [w["p99_ms"] for w in wins], label="p99")
    axes[3].set_ylabel("latency per window (ms)")
    axes[3].set_ylim(bottom=0)
    axes[3].set_xlabel("minutes")
    axes[3].legend(loc="lower right")
    axes[3].grid(alpha=0.3)
    fig.suptitle("PD soak through the router (prefill + decode + router, keep-alive clients)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(REPO / ".build/release/pdserve"))
    parser.add_argument("--model", default=str(REPO / "tests/fixtures/models/qwen2-fp32"))
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured capacity to offer")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop clients while measuring capacity (as many as the soak has)")
    parser.add_argument("--capacity-seconds", type=float, default=60)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--window-seconds", type=float, default=60)
    parser.add_argument("--pool-tokens", type=int, default=131072,
                        help="--max-total-tokens of each instance: a pool small enough that its pages are all touched "
                             "(and counted in RSS) in the first minutes, so later growth is not the pool filling")
    parser.add_argument("--tree-bytes", type=int, default=4 << 20,
                        help="the router's --max-tree-size: its cache_aware index fills to this cap early in the run "
                             "(the default, 64 MiB of prompt bytes per worker, takes longer than the run to fill at this rate)")
    parser.add_argument("--out", default=str(REPO / "docs/benchmarks/soak"))
    args = parser.parse_args()
    out = Path(args.out)
    vocab = json.loads((Path(args.model) / "config.json").read_text())["vocab_size"]
    before = loadavg()
    cluster = Cluster(args.binary, args.model, Path("/tmp"), args.pool_tokens, args.tree_bytes)
    try:
        print(f"[soak] measuring capacity: {args.concurrency} closed-loop clients for {args.capacity_seconds:.0f} s", flush=True)
        capacity = closed_loop(cluster.url, args.capacity_seconds, args.concurrency, vocab)
        rate = args.load * capacity
        print(f"[soak] capacity {capacity:.1f} req/s; offering {rate:.1f} req/s for {args.minutes:g} min", flush=True)
        at_start = cluster.figures()
        results, samples = soak(cluster, rate, args.minutes, args.sample_seconds, vocab)
    finally:
        cluster.stop()
    after = loadavg()
    wins = windows(results, args.window_seconds, args.minutes)
    half = args.minutes * 60 / 3
    slopes = {f"{name}.{key}": slope_per_10min(samples, f"{name}.{key}", half)
              for name in ("prefill", "decode", "router") for key in ("rss_mb", "fds", "threads")}
    served = sum(w["served"] for w in wins)
    errors = sum(w["errors"] for w in wins)
    report = {"capacity_rps": capacity, "offered_rps": rate, "minutes": args.minutes, "served": served, "errors": errors,
              "loadavg_before": before, "loadavg_after": after, "figures_after_capacity_run": at_start,
              "slopes_per_10min_after_first_third": slopes, "windows": wins, "samples": samples}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    first, last = samples[0], samples[-1]
    lines = [
        "# Soak: a PD cluster at 80 % load",
        "",
        f"`bench/soak.py` (run by `scripts/soak`): router + prefill + decode (`{Path(args.model).name}`, one compute thread each,",
        f"`--max-total-tokens {args.pool_tokens}` so the KV pool's pages are all touched early — with the default pool of",
        "this model (2.1 GB) RSS climbs for the whole run as the prefix cache touches pages for the first time, which is",
        f"not a leak — and the router's `--max-tree-size {args.tree_bytes}`, so its cache_aware prefix index reaches its cap",
        "early too; the shared auth key on), release build, keep-alive clients through the router. Capacity measured first with",
        f"{args.concurrency} closed-loop clients: **{capacity:.1f} req/s**; then Poisson arrivals at **{rate:.1f} req/s**",
        f"({args.load:.0%}) for {args.minutes:g} minutes: half greedy, half sampled (T 0.8, top-p 0.95, top-k 50); half",
        "`/generate`, half `/v1/completions`; a quarter streamed; 16–128 prompt tokens, 16–48 new tokens.",
        "",
        f"Served {served} requests, {errors} failed. Load average before {' '.join(before)}, after {' '.join(after)} (2 cores;",
        "the load generator runs on the same machine).",
        "",
        "| process | RSS start → end (MB) | fds start → end | threads start → end | RSS slope after minute "
        f"{half / 60:.0f} (MB / 10 min) |",
        "|---|---|---|---|---|",
    ]
    for name in ("prefill", "decode", "router"):
        lines.append(f"| {name} | {first[f'{name}.rss_mb']:.1f} → {last[f'{name}.rss_mb']:.1f} | {first[f'{name}.fds']} → {last[f'{name}.fds']} | "
                     f"{first[f'{name}.threads']} → {last[f'{name}.threads']} | {slopes[f'{name}.rss_mb']:+.2f} |")
    lines += ["", "| minute | served | failed | p50 (ms) | p99 (ms) |", "|---|---|---|---|---|"]
    step = max(1, len(wins) // 10)
    for w in wins[::step] + ([wins[-1]] if (len(wins) - 1) % step else []):
        fmt = (lambda v: f"{v:.0f}" if v is not None else "–")
        lines.append(f"| {w['start_s'] / 60:.0f} | {w['served']} | {w['errors']} | {fmt(w['p50_ms'])} | {fmt(w['p99_ms'])} |")
    lines += ["", f"![soak]({out.name}.png)", "", "Every sample and window is in "
              f"[{out.name}.json]({out.name}.json). Command: `scripts/soak` (or `python3 bench/soak.py --minutes {args.minutes:g}`)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    try:
        plot(samples, wins, out.with_suffix(".png"))
    except ImportError:
        print("[soak] matplotlib is missing: no plot", flush=True)
    print("\n".join(lines[10:]), flush=True)


if __name__ == "__main__":
    main()
