#!/usr/bin/env python3
"""The PD experiment of DESIGN §7: unified vs prefill/decode disaggregated
serving on the same cores under the same mixed load — chat requests
(short prompt, long answer) decoding while long documents arrive — measured
with `pdserve bench serving --workload mixed` through `pdserve router`.

Configurations (each behind a router, so both pay the same extra hop):
  unified-cN      `pdserve serve --threads 2 --chunked-prefill-size N` + `pdserve router --worker-urls`
  pd-1p1d-POLICY  `pdserve up --prefill 1 --decode 1 --threads-per-instance 1 --schedule-policy POLICY`
                  (router + 2 instances; the policy orders the prefill's waiting queue)

`--rate-scales 0.5 1 1.5` runs every configuration at those multiples of
both rates (a goodput-vs-rate sweep); `--sampled` sends temperature 1.0 /
top_p 0.9 instead of greedy.

Writes docs/benchmarks/pd.md (tables, exact commands, machine notes, load
conditions, date), docs/benchmarks/pd.png (plots) and docs/benchmarks/pd.json
(the numbers) — other stems with --name —; raw per-request JSONL goes to
--work-dir. A hand-written notes section at the end of the .md survives re-runs.
Before each configuration it refuses to start on busy cores (--max-busy), and
it reports how much CPU other processes took during each measurement.

Requirements (installs nothing): a release build (`swift build -c release`);
the ~150M benchmark model (`python3 tests/reference/make_fixtures.py
--bench-model /tmp/bench-llama`); Python 3 with matplotlib (`pip install
matplotlib`) for the plot. Run it on a quiet machine: timings are only as
good as the idle cores under them.

    python3 bench/pd_experiment.py --model-path /tmp/bench-llama --duration 120
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES_MARKER = "<!-- notes below are written by hand; pd_experiment.py keeps them -->"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_busy_fraction(seconds=3.0):
    """Share of all cores' time spent busy over `seconds` (from /proc/stat)."""
    def sample():
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def busy_jiffies():
    """All cores' busy time so far, in clock ticks."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def tree_jiffies(roots):
    """utime + stime of the given processes and all their descendants, in clock ticks."""
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = int(fields[11]) + int(fields[12])
    total, frontier = 0, set(roots)
    while frontier:
        total += sum(cpu.get(p, 0) for p in frontier)
        frontier = {p for p, pp in parent.items() if pp in frontier}
    return total


def wait_http(url, timeout, proc_list):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in proc_list:
            if p.poll() is not None:
                raise RuntimeError(f"a process exited ({p.args[:3]}) with {p.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout}s")


def probe_generate(base, timeout):
    """A request through the router proves every hop (and the PD pairing) works."""
    deadline = time.monotonic() + timeout
    body = json.dumps({"text": "ping", "sampling_params": {"max_new_tokens": 1}}).encode()
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(base + "/generate", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base}/generate did not answer within {timeout}s")


class Cluster:
    """The processes of one configuration, logged to files, stopped together."""

    def __init__(self, work_dir, name):
        self.work_dir, self.name, self.procs, self.commands = work_dir, name, [], []

    def start(self, role, args):
        log = open(self.work_dir / f"{self.name}-{role}.log", "w")
        self.commands.append(" ".join(args))
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def precision_flags(args):
    return ["--matmul-precision", args.matmul_precision] if args.matmul_precision else []


def start_unified(cluster, args, chunk):
    worker, router = free_port(), free_port()
    w = cluster.start("serve", [args.bin, "serve", "--model-path", args.model_path, "--port", str(worker),
                                "--threads", "2", "--chunked-prefill-size", str(chunk), "--log-level", "warning",
                                *precision_flags(args)])
    wait_http(f"http://127.0.0.1:{worker}/health", 300, [w])
    r = cluster.start("router", [args.bin, "router", "--worker-urls", f"http://127.0.0.1:{worker}",
                                 "--policy", "round_robin", "--port", str(router), "--log-level", "warning"])
    base = f"http://127.0.0.1:{router}"
    wait_http(base + "/health", 120, [w, r])
    probe_generate(base, 120)
    return base


def start_pd(cluster, args, policy):
    port = free_port()
    chunk = ["--chunked-prefill-size", str(args.pd_chunk)] if args.pd_chunk else []
    p = cluster.start("up", [args.bin, "up", "--prefill", "1", "--decode", "1", "--threads-per-instance", "1",
                             "--model-path", args.model_path, "--port", str(port), "--schedule-policy", policy, *chunk,
                             "--transfer-backend", args.transfer_backend, "--log-level", "warning",
                             *precision_flags(args)])
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", 300, [p])
    probe_generate(base, 300)
    return base


SAMPLED = {"temperature": 1.0, "top_p": 0.9}


def run_client(args, base, name, pd, cluster, scale):
    raw = args.work_dir / f"{name}.jsonl"
    raw.unlink(missing_ok=True)
    cmd = [args.bin, "bench", "serving", "--backend", "sglang", "--base-url", base, "--workload", "mixed",
           "--duration", str(args.duration), "--chat-rate", f"{args.chat_rate * scale:g}", "--chat-input-len", "64",
           "--chat-output-len", "128", "--doc-rate", f"{args.doc_rate * scale:g}", "--doc-input-len", "1024",
           "--doc-output-len", "4", "--seed", str(args.seed), "--warmup-requests", "2",
           "--goodput", *args.goodput, "--output-file", str(raw), "--output-details", "--progress-interval", "10"]
    if args.sampled:
        cmd += ["--sampling-params", json.dumps(SAMPLED, separators=(",", ":"))]
    if pd:
        cmd.append("--pd-separated")
    print("  $", " ".join(cmd), flush=True)
    shown = " ".join(f"'{a}'" if a.startswith("{") else a for a in cmd)
    # What else ran during the measurement: all busy CPU time minus this
    # experiment's (servers, router, client), as a share of both cores.
    roots = [p.pid for p in cluster.procs]
    busy0, ours0, client0 = busy_jiffies(), tree_jiffies(roots), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(args.work_dir / f"{name}-client.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=args.duration * 6 + 600)
    wall = time.monotonic() - t0
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = os.sysconf("SC_CLK_TCK")
    ours = (tree_jiffies(roots) - ours0) / tick + (client1.ru_utime - client0.ru_utime) + (client1.ru_stime - client0.ru_stime)
    total = (busy_jiffies() - busy0) / tick
    load = {"wall_s": wall, "ours_core_s": ours, "others_core_s": max(0.0, total - ours), "cores": os.cpu_count()}
    return json.loads(raw.read_text().splitlines()[-1]), shown, load


def summarise(record):
    """The numbers the tables and plots use, per class, from a detailed JSONL record."""
    out = {"duration": record["duration"], "completed": record["completed"], "failed": record["failed"],
           "goodput": record.get("request_goodput"), "good": record.get("good_requests")}
    for cls in ("chat", "doc"):
        c = record["classes"][cls]
        out[cls] = {k: c[k] for k in ("completed", "failed", "median_ttft_ms", "p99_ttft_ms", "mean_ttft_ms",
                                      "median_itl_ms", "p99_itl_ms", "mean_itl_ms", "median_tpot_ms", "p99_tpot_ms",
                                      "median_e2e_latency_ms", "p99_e2e_latency_ms", "good_requests", "request_goodput",
                                      "output_throughput", "input_throughput")}
    classes = record["classes_of_requests"]
    out["chat_itls_ms"] = sorted(x * 1000 for itls, cl in zip(record["itls"], classes) if cl == "chat" for x in itls)
    # Gaps under 1 ms are tokens that reached the client in one burst (held back upstream, then flushed).
    out["chat_burst_fraction"] = sum(1 for x in out["chat_itls_ms"] if x < 1) / max(1, len(out["chat_itls_ms"]))
    out["ttft_over_time"] = [(s, t * 1000, cl) for s, t, cl, e in
                             zip(record["sent_at"], record["ttfts"], classes, record["errors"]) if not e]
    return out


def machine_notes():
    cpu = "unknown CPU"
    flags = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and cpu == "unknown CPU":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    feats = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if re.search(rf"\b{f}\b", flags)]
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    return f"{os.cpu_count()} cores, {cpu} ({', '.join(feats)}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} {platform.release()}"


def plot(results, order, path, sweep):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4 if sweep else 3, figsize=(23 if sweep else 17, 4.8))
    ax = axes[0]
    for name in order:
        itls = results[name]["chat_itls_ms"]
        if itls:
            ax.plot(itls, [(i + 1) / len(itls) for i in range(len(itls))], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("chat inter-token latency (ms, log)")
    ax.set_ylabel("fraction of gaps ≤ x")
    ax.set_title("Chat ITL CDF")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)

    ax = axes[1]
    metrics = [("chat ITL p50", "chat", "median_itl_ms"), ("chat ITL p99", "chat", "p99_itl_ms"),
               ("chat TTFT p50", "chat", "median_ttft_ms"), ("chat TTFT p99", "chat", "p99_ttft_ms"),
               ("doc TTFT p50", "doc", "median_ttft_ms")]
    width = 0.8 / len(order)
    for i, name in enumerate(order):
        values = [results[name][cls][key] for _, cls, key in metrics]
        ax.bar([m + i * width for m in range(len(metrics))], values, width, label=name)
    ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))])
    ax.set_xticklabels([m[0] for m in metrics], rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title("Latency percentiles")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)

    ax = axes[2]
    for name in order:
        points = [(s, t) for s, t, cl in results[name]["ttft_over_time"] if cl == "chat"]
        ax.plot([p[0] for p in points], [p[1] for p in points], ".", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("send time (s)")
    ax.set_ylabel("chat TTFT (ms, log)")
    ax.set_title("Chat TTFT over the run (a rising line = a queue that grows)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if sweep:
        ax = axes[3]
        for config, points in sweep.items():
            points = sorted(points)
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=config)
        top = max(p[0] for points in sweep.values() for p in points)
        ax.plot([0, top], [0, top], color="grey", lw=0.6, ls=":", label="offered")
        ax.set_xlabel("offered load (req/s, chat + doc)")
        ax.set_ylabel("goodput (req/s)")
        ax.set_title("Goodput vs request rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_markdown(args, results, order, commands, loads, path, started):
    def f(v, digits=0):
        return "—" if v is None else f"{v:,.{digits}f}"

    scales = "" if args.rate_scales == [1.0] else (
        f" Every configuration ran at {', '.join(f'{x:g}' for x in args.rate_scales)} × these rates (`@x` in its name).")
    sampling = ("temperature 1.0 / top_p 0.9 (sampled)" if args.sampled else "greedy (temperature 0)")
    precision = f" `--matmul-precision {args.matmul_precision}` on every instance." if args.matmul_precision else ""
    lines = [
        "# PD experiment: unified vs disaggregated on the same two cores",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `bench/pd_experiment.py` (DESIGN §7). Machine: {machine_notes()}.",
        "",
        f"Sampling: {sampling}.{precision}{scales}",
        "",
        f"Mixed load, {args.duration:g} s of Poisson arrivals per configuration, same seed ({args.seed}) so every",
        f"configuration gets the same requests at the same times: **chat** 64 prompt / 128 output tokens at",
        f"{args.chat_rate:g} req/s, **documents** 1024 prompt / 4 output tokens at {args.doc_rate:g} req/s "
        f"(DESIGN's load is 2 and 0.6 req/s{'' if (args.chat_rate, args.doc_rate) == (2.0, 0.6) else '; see below for why these rates'}).",
        f"Model: the ~150M Llama from `make_fixtures.py --bench-model` (bf16 weights, random). Client:",
        "`pdserve bench serving --backend sglang` (streaming `/generate`, `ignore_eos`), through `pdserve router` in every",
        f"configuration. Goodput objectives: `{' '.join(args.goodput)}` (a request is good when it meets all of its class's).",
        "",
        "| configuration | chat ITL p50 ms | chat ITL p99 ms | chat TTFT p50 ms | chat TTFT p99 ms | doc TTFT p50 ms | doc TTFT p99 ms | goodput req/s (good / sent) | failed | chat gaps < 1 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        r = results[name]
        c, d = r["chat"], r["doc"]
        sent = r["completed"] + r["failed"]
        lines.append(f"| {name} | {f(c['median_itl_ms'], 1)} | {f(c['p99_itl_ms'], 1)} | {f(c['median_ttft_ms'])} | "
                     f"{f(c['p99_ttft_ms'])} | {f(d['median_ttft_ms'])} | {f(d['p99_ttft_ms'])} | "
                     f"{f(r['goodput'], 2)} ({r['good']} / {sent}) | {r['failed']} | {r['chat_burst_fraction'] * 100:.0f}% |")
    lines += ["", "Per class (goodput counts a class's good requests over the whole run's duration):", "",
              "| configuration | class | done | TPOT p50 ms | TPOT p99 ms | E2E p50 ms | E2E p99 ms | good | goodput req/s | run s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        r = results[name]
        for cls in ("chat", "doc"):
            c = r[cls]
            lines.append(f"| {name} | {cls} | {c['completed']} | {f(c['median_tpot_ms'], 1)} | {f(c['p99_tpot_ms'], 1)} | "
                         f"{f(c['median_e2e_latency_ms'])} | {f(c['p99_e2e_latency_ms'])} | {c['good_requests']} | "
                         f"{f(c['request_goodput'], 2)} | {r['duration']:.0f} |")
    lines += ["", f"![chat ITL CDF, latency percentiles, chat TTFT over time]({args.name}.png)", "",
              "## Load conditions", ""]
    for name in order:
        d = results[name].get("load")
        during = "" if d is None else (
            f" During the {d['wall_s']:.0f} s measurement this experiment used {d['ours_core_s']:.0f} core-seconds "
            f"(of {d['wall_s'] * d['cores']:.0f}) and other processes {d['others_core_s']:.0f} "
            f"({d['others_core_s'] / (d['wall_s'] * d['cores']) * 100:.0f}% of the machine).")
        lines.append(f"- {name}: cores {loads[name] * 100:.0f}% busy in the 3 s before the servers started.{during}")
    lines += ["", "## Commands", "", "```bash", "swift build -c release",
              f"python3 bench/pd_experiment.py {' '.join(sys.argv[1:])}", "```", "",
              "What the script ran, per configuration:", ""]
    for name in order:
        lines += [f"{name}:", "", "```bash", *commands[name], "```", ""]
    # The interpretation is written by hand below a marker and survives re-runs.
    notes = f"{NOTES_MARKER}\n\n## What the numbers say\n\n(write the interpretation here)\n"
    if path.exists() and NOTES_MARKER in path.read_text():
        notes = path.read_text()[path.read_text().index(NOTES_MARKER):]
    path.write_text("\n".join(lines) + "\n" + notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("PDSERVE_BIN", str(ROOT / ".build" / "release" / "pdserve")))
    ap.add_argument("--model-path", default="/tmp/bench-llama")
    ap.add_argument("--duration", type=float, default=120, help="seconds of arrivals per configuration")
    ap.add_argument("--chat-rate", type=float, default=2.0)
    ap.add_argument("--doc-rate", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunks", type=int, nargs="*", default=[512, 128], help="unified --chunked-prefill-size values to try")
    ap.add_argument("--no-pd", action="store_true", help="skip the PD configurations")
    ap.add_argument("--pd-policies", nargs="+", default=["fcfs"],
                    help="prefill --schedule-policy values to try, one PD configuration each")
    ap.add_argument("--pd-chunk", type=int, help="the prefill instance's --chunked-prefill-size (its default otherwise)")
    ap.add_argument("--matmul-precision", choices=["fp32", "bf16"], help="passed to every instance")
    ap.add_argument("--rate-scales", type=float, nargs="+", default=[1.0],
                    help="run every configuration at these multiples of --chat-rate and --doc-rate")
    ap.add_argument("--sampled", action="store_true", help="temperature 1.0 / top_p 0.9 instead of greedy")
    ap.add_argument("--transfer-backend", default="tcp")
    ap.add_argument("--goodput", nargs="+", default=["ttft:1000", "tpot:100", "doc.ttft:5000"])
    ap.add_argument("--max-busy", type=float, default=0.25, help="refuse to start while the cores are busier than this")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/pd-experiment"))
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--name", default="pd", help="file stem of the outputs: NAME.md, NAME.png, NAME.json")
    args = ap.parse_args()
    if not Path(args.bin).exists():
        sys.exit(f"{args.bin} not found: run `swift build -c release` (or set PDSERVE_BIN)")
    if not (Path(args.model_path) / "config.json").exists():
        sys.exit(f"{args.model_path} has no model: python3 tests/reference/make_fixtures.py --bench-model {args.model_path}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("matplotlib is needed for the plot: pip install matplotlib")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)

    base_configs = [(f"unified-c{c}", ("unified", c)) for c in args.chunks] + (
        [] if args.no_pd else [(f"pd-1p1d-{p}", ("pd", p)) for p in args.pd_policies])
    configs = [(name if args.rate_scales == [1.0] else f"{name}@x{scale:g}", kind, scale, name)
               for scale in args.rate_scales for name, kind in base_configs]
    results, commands, loads, sweep = {}, {}, {}, {}
    for name, (mode, setting), scale, base_name in configs:
        busy = cpu_busy_fraction()
        if busy > args.max_busy:
            sys.exit(f"cores {busy * 100:.0f}% busy before {name}: wait for a quiet machine (or raise --max-busy)")
        loads[name] = busy
        print(f"{name}: starting (cores {busy * 100:.0f}% busy)", flush=True)
        cluster = Cluster(args.work_dir, name)
        try:
            base = start_pd(cluster, args, setting) if mode == "pd" else start_unified(cluster, args, setting)
            record, client_cmd, during = run_client(args, base, name, mode == "pd", cluster, scale)
        finally:
            cluster.stop()
        commands[name] = cluster.commands + [client_cmd]
        results[name] = summarise(record)
        results[name]["load"] = during
        results[name]["offered_rate"] = (args.chat_rate + args.doc_rate) * scale
        sweep.setdefault(base_name, []).append((results[name]["offered_rate"], results[name]["goodput"]))
        c = results[name]["chat"]
        print(f"{name}: chat ITL p50/p99 {c['median_itl_ms']:.1f}/{c['p99_itl_ms']:.1f} ms, chat TTFT p50/p99 "
              f"{c['median_ttft_ms']:.0f}/{c['p99_ttft_ms']:.0f} ms, doc TTFT p50 {results[name]['doc']['median_ttft_ms']:.0f} ms, "
              f"goodput {results[name]['goodput']:.2f} req/s", flush=True)

    order = [c[0] for c in configs]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(results, order, args.out_dir / f"{args.name}.png", sweep if len(args.rate_scales) > 1 else None)
    compact = {n: {k: v for k, v in r.items() if k not in ("chat_itls_ms", "ttft_over_time")} for n, r in results.items()}
    (args.out_dir / f"{args.name}.json").write_text(json.dumps({"date": started.isoformat(), "args": sys.argv[1:], "loads": loads,
                                                      "results": compact}, indent=1) + "\n")
    write_markdown(args, results, order, commands, loads, args.out_dir / f"{args.name}.md", started)
    print(f"wrote {args.out_dir / args.name}.md, .png, .json")


if __name__ == "__main__":
    main()
