#!/usr/bin/env python3
"""Serving speed of a release build with checks everywhere but the kernels
(the default) against one with -Ounchecked on every target (the old build):
the same `pdserve bench serving` run against `pdserve serve` from each binary,
greedy and sampled, the two binaries alternating round by round so both see
the same machine. Writes docs/benchmarks/safe-build.{json,md,png}.

    swift build -c release                          # checked (this tree)
    # the -Ounchecked binary: the old Package.swift built with --build-path elsewhere
    python3 bench/safe_build.py --checked .build/release/pdserve --unchecked /tmp/pdserve-unchecked \\
        --model /tmp/bench-llama      # tests/reference/make_fixtures.py --bench-model /tmp/bench-llama
"""
import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {"greedy": None, "sampled": {"temperature": 0.8, "top_p": 0.95, "top_k": 50}}
KEYS = ["output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_itl_ms", "p99_itl_ms"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


def serve(binary, model, log):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--model-path", model, "--port", str(port), "--threads", "2"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{binary} serve exited with {proc.returncode}")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{binary} serve did not listen within 120 s")


def bench(client, port, mode, args, out):
    command = [client, "bench", "serving", "--backend", "sglang-oai", "--base-url", f"http://127.0.0.1:{port}",
               "--dataset-name", "random", "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_len),
               "--random-range-ratio", "1", "--num-prompts", str(args.prompts), "--max-concurrency", str(args.concurrency),
               "--seed", "1", "--warmup-requests", "2", "--disable-tqdm", "--output-file", str(out)]
    if MODES[mode]:
        command += ["--extra-request-body", json.dumps(MODES[mode])]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    return json.loads(out.read_text().splitlines()[-1]), command


def plot(summary, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        for ax, key, label in zip(axes, ["output_throughput", "median_ttft_ms", "median_itl_ms"],
                                  ["output tok/s (higher is better)", "median TTFT ms", "median ITL ms"]):
            xs = range(len(MODES))
            for offset, name in [(-0.2, "unchecked"), (0.2, "checked")]:
                ax.bar([x + offset for x in xs], [summary[f"{m}.{key}"][name] for m in MODES], width=0.4,
                       label={"unchecked": "-Ounchecked everywhere", "checked": "checked, kernels unchecked"}[name])
            ax.set_xticks(list(xs), list(MODES))
            ax.set_title(label)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out + ".png", dpi=110)
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checked")
    parser.add_argument("--unchecked")
    parser.add_argument("--model")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--input-len", type=int, default=256)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks" / "safe-build"))
    parser.add_argument("--plot-only", action="store_true", help="redraw OUT.png from OUT.json (a Python with matplotlib)")
    args = parser.parse_args()
    if args.plot_only:
        return plot(json.loads(Path(args.out + ".json").read_text())["summary"], args.out)
    if not (args.checked and args.unchecked and args.model):
        parser.error("--checked, --unchecked and --model are required")
    binaries = {"checked": args.checked, "unchecked": args.unchecked}
    results = {name: {mode: [] for mode in MODES} for name in binaries}
    load = {"before": loadavg()}
    scratch = Path("/tmp/safe-build-bench")
    scratch.mkdir(exist_ok=True)
    command = None
    for round_index in range(args.rounds):
        order = list(binaries) if round_index % 2 == 0 else list(reversed(binaries))
        for name in order:
            with open(scratch / f"{name}-serve.log", "w") as log:
                proc, port = serve(binaries[name], args.model, log)
                try:
                    for mode in MODES:
                        # Both modes send the same prompts: nothing may come from the prefix cache.
                        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/flush_cache", method="POST"), timeout=30).read()
                        out = scratch / f"{name}-{mode}-{round_index}.jsonl"
                        out.unlink(missing_ok=True)
                        row, command = bench(args.checked, port, mode, args, out)
                        results[name][mode].append({k: row[k] for k in KEYS})
                        print(f"round {round_index} {name:9} {mode:7} " + " ".join(f"{k} {row[k]:.1f}" for k in KEYS), flush=True)
                finally:
                    proc.terminate()
                    proc.wait(30)
    load["after"] = loadavg()
    summary = {}
    for mode in MODES:
        for key in KEYS:
            checked = statistics.median(r[key] for r in results["checked"][mode])
            unchecked = statistics.median(r[key] for r in results["unchecked"][mode])
            summary[f"{mode}.{key}"] = {"checked": checked, "unchecked": unchecked, "ratio": checked / unchecked if unchecked else None}
    report = {"settings": vars(args), "loadavg": load, "runs": results, "summary": summary,
              "client_command": " ".join(command)}
    Path(args.out + ".json").write_text(json.dumps(report, indent=1) + "\n")
    plot(summary, args.out)
    print(json.dumps({k: round(v["ratio"], 3) for k, v in summary.items()}, indent=1))
    print("loadavg", load)


if __name__ == "__main__":
    main()
