#!/usr/bin/env python3
"""Runs `pdserve bench engine` and bench/hf_engine_bench.py on the same model
with the same thread count (or reads their JSON) and writes
docs/benchmarks/engine.md (table, machine, commands) and engine.png.

Requirements (install them yourself; this script installs nothing):
  python3 with torch and transformers (for the HF run), matplotlib (chart),
  a release build of pdserve (`swift build -c release`).

Example:
  python3 bench/engine_report.py --model-path /tmp/bench-llama \\
      --before-json docs/benchmarks/engine-before.json --notes bench/engine_notes.md
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(cmd):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def decode_rate(report, batch):
    for d in report.get("decode", []):
        if d["batch"] == batch:
            return d["tok_s"]
    return None


def best_hf(hf, metric):
    """The faster HF variant for one metric: (value, dtype)."""
    best = (None, None)
    for v in hf["variants"]:
        x = v["prefill_tok_s"] if metric == "prefill" else decode_rate(v, metric)
        if x is not None and (best[0] is None or x > best[0]):
            best = (x, v["dtype"])
    return best


def cpu_flags_note():
    """The vector extensions that matter here, as this machine reports them."""
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "flags unknown"
    have = [f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile"] if f in flags]
    return " ".join(have) + ("" if "amx_tile" in flags else ", no AMX")


def fmt(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}"


def write_chart(ours, bf16, hf, before, batches, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = [("prefill @%d" % ours["prompt_len"], "prefill")] + [(f"decode @{b}", b) for b in batches]
    series = []
    if before:
        series.append(("pdserve (before)", before, "#bbbbbb"))
    series.append(("pdserve", ours, "#1f77b4"))
    if bf16:
        series.append(("pdserve bf16", bf16, "#17becf"))
    colors = {"float32": "#ff7f0e", "bfloat16": "#d62728"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6))
    for ax, (label, key) in zip(axes, metrics):
        names, values, cols = [], [], []
        for name, rep, color in series:
            names.append(name)
            values.append(rep["prefill_tok_s"] if key == "prefill" else decode_rate(rep, key) or 0)
            cols.append(color)
        for v in hf["variants"]:
            names.append(f"HF {v['dtype']}")
            values.append(v["prefill_tok_s"] if key == "prefill" else decode_rate(v, key) or 0)
            cols.append(colors.get(v["dtype"], "#2ca02c"))
        ax.bar(range(len(values)), values, color=cols)
        ax.set_xticks(range(len(values)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(label + " (tok/s)", fontsize=10)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"pdserve vs HF transformers, {ours['threads']} threads, {ours.get('cpu', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", default="/tmp/bench-llama")
    ap.add_argument("--pdserve", default=str(REPO / ".build" / "release" / "pdserve"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--num-prompts", type=int, default=4)
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ours-json", help="read pdserve results instead of running it")
    ap.add_argument("--hf-json", nargs="+", help="read HF results instead of running it (several files: their variants are merged)")
    ap.add_argument("--bf16-json", help="read pdserve --matmul-precision bf16 results instead of running it")
    ap.add_argument("--no-bf16", action="store_true", help="leave out the --matmul-precision bf16 column")
    ap.add_argument("--before-json", help="pdserve results from before the kernel work, shown beside")
    ap.add_argument("--notes", help="markdown appended to the report (analysis written by hand)")
    ap.add_argument("--out-dir", default=str(REPO / "docs" / "benchmarks"))
    args = ap.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = ["--model-path", args.model_path, "--prompt-len", str(args.prompt_len), "--num-prompts", str(args.num_prompts),
              "--batch", args.batch, "--decode-tokens", str(args.decode_tokens), "--repeats", str(args.repeats),
              "--threads", str(args.threads)]
    ours_cmd = [args.pdserve, "bench", "engine", *common, "--output-file", str(out_dir / "engine-pdserve.json")]
    bf16_cmd = [args.pdserve, "bench", "engine", *common, "--matmul-precision", "bf16",
                "--output-file", str(out_dir / "engine-pdserve-bf16.json")]
    hf_cmd = [sys.executable, str(REPO / "bench" / "hf_engine_bench.py"), *common, "--output-file", str(out_dir / "engine-hf.json")]
    if args.ours_json:
        ours = json.loads(Path(args.ours_json).read_text())
    else:
        run(ours_cmd)
        ours = json.loads((out_dir / "engine-pdserve.json").read_text())
    bf16 = None
    if args.bf16_json:
        bf16 = json.loads(Path(args.bf16_json).read_text())
    elif not args.no_bf16:
        run(bf16_cmd)
        bf16 = json.loads((out_dir / "engine-pdserve-bf16.json").read_text())
    if args.hf_json:
        parts = [json.loads(Path(p).read_text()) for p in args.hf_json]
        hf = parts[0]
        hf["variants"] = [v for part in parts for v in part["variants"]]
    else:
        run(hf_cmd)
        hf = json.loads((out_dir / "engine-hf.json").read_text())
    before = json.loads(Path(args.before_json).read_text()) if args.before_json else None
    batches = [int(b) for b in args.batch.split(",")]

    rows = []
    def rate(report, key):
        return None if report is None else report["prefill_tok_s"] if key == "prefill" else decode_rate(report, key)

    def ratio(value, best):
        return f"**{value / best:.2f}×**" if value and best else "–"

    def add(label, key):
        hf_values = {v["dtype"]: rate(v, key) for v in hf["variants"]}
        best, best_dtype = best_hf(hf, key)
        rows.append([label, fmt(rate(before, key)) if before else None, fmt(rate(ours, key)),
                     fmt(rate(bf16, key)) if bf16 else None,
                     *[fmt(hf_values.get(d)) for d in [v["dtype"] for v in hf["variants"]]],
                     f"{fmt(best)} ({best_dtype})", ratio(rate(ours, key), best),
                     ratio(rate(bf16, key), best) if bf16 else None])
    add(f"prefill tok/s, {ours['prompt_len']}-token prompts", "prefill")
    for b in batches:
        add(f"decode tok/s, batch {b}", b)

    hf_dtypes = [v["dtype"] for v in hf["variants"]]
    header = ["", "pdserve before" if before else None, "pdserve", "pdserve bf16" if bf16 else None,
              *[f"HF {d}" for d in hf_dtypes], "best HF", "pdserve / best HF", "pdserve bf16 / best HF" if bf16 else None]
    keep = [i for i, h in enumerate(header) if h is not None]
    table = ["| " + " | ".join(header[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    table += ["| " + " | ".join(r[i] for i in keep) + " |" for r in rows]

    gemv = ours.get("gemv", {})
    gemv_before = (before or {}).get("gemv", {})
    probe1, probe_all = ours.get("membw_read_gbs_1thread"), ours.get("membw_read_gbs_all")
    lines = [
        "# Engine benchmark: pdserve vs HF transformers",
        "",
        f"Generated by `bench/engine_report.py` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "## Results",
        "",
        *table,
        "",
        f"Decode GEMV (batch 1): {gemv.get('bytes_per_step', 0) / 1e6:.1f} MB of weights streamed per step "
        f"(every projection of every layer + LM head, bf16) → **{fmt(gemv.get('gbs'))} GB/s = "
        f"{fmt(gemv.get('fraction_of_probe'), 2)} of the measured read bandwidth**"
        + (f" (before: {fmt(gemv_before.get('gbs'))} GB/s = {fmt(gemv_before.get('fraction_of_probe'), 2)})" if gemv_before else "")
        + ". The step time includes attention, norms, sampling and Swift overhead, so this understates the kernel alone.",
        "",
        f"Memory read probe (STREAM-like sum, 512 MiB): {fmt(probe1)} GB/s on 1 thread, {fmt(probe_all)} GB/s on {ours['threads']} threads.",
        "",
        "![chart](engine.png)",
        "",
        "## Setup",
        "",
        f"- Machine: {ours.get('cpu')} ({ours.get('cores')} cores; {cpu_flags_note()}), {ours['threads']} threads used by both engines.",
        f"- Model: `{ours['model_path']}` — {ours.get('params', 0) / 1e6:.1f}M-parameter Llama (hidden 1024, 8 layers, 16 heads, "
        f"4 KV heads, vocab 32000), bf16 safetensors, built by `python3 tests/reference/make_fixtures.py --bench-model {ours['model_path']}`.",
        f"- pdserve: weights {ours.get('weight_dtype')}, fp32 compute, KV cache {ours.get('kv_cache_dtype')}, prefix cache off."
        + (" \"pdserve bf16\": the same with `--matmul-precision bf16` (linear layers of at least 64 rows round their "
           "activations to bf16 and use AVX512_BF16 dot products; decode steps below 64 rows stay fp32)." if bf16 else ""),
        f"- HF: torch {hf.get('torch')}, transformers {hf.get('transformers')}, `torch.set_num_threads({hf['threads']})`; "
        "variants `float32` (weights loaded as fp32, fp32 compute: torch's CPU default) and `bfloat16` "
        "(`dtype=torch.bfloat16`: bf16 weights and bf16 compute, oneDNN's AVX512-BF16 kernels). "
        "\"best HF\" is the faster variant per row.",
        f"- Prefill: {ours['num_prompts']} prompts × {ours['prompt_len']} tokens, one at a time, one forward each "
        "(HF: `logits_to_keep=1`, fresh DynamicCache). Decode: per batch size, prompts of "
        f"{ours.get('decode_prompt_len')} tokens are prefilled (not timed), then {ours['decode_tokens']} greedy steps are timed "
        "(HF: a manual loop of single-token forwards with its DynamicCache and argmax, no generate() overhead). "
        f"One warm-up, {ours['repeats']} runs, medians.",
        "- The machine's cores are shared with other work: numbers are noisy (see the per-run values in the JSON and the notes below).",
        "",
        "## Commands",
        "",
        "```",
        "swift build -c release",
        f"python3 tests/reference/make_fixtures.py --bench-model {args.model_path}",
        " ".join(shlex.quote(c) for c in [os.path.relpath(ours_cmd[0], REPO)] + ours_cmd[1:-2]) + " --output-file docs/benchmarks/engine-pdserve.json",
        *([" ".join(shlex.quote(c) for c in [os.path.relpath(bf16_cmd[0], REPO)] + bf16_cmd[1:-2])
           + " --output-file docs/benchmarks/engine-pdserve-bf16.json"] if bf16 else []),
        " ".join(shlex.quote(c) for c in ["python3", "bench/hf_engine_bench.py"] + hf_cmd[2:-2]) + " --output-file docs/benchmarks/engine-hf.json",
        "python3 bench/engine_report.py --ours-json docs/benchmarks/engine-pdserve.json --hf-json docs/benchmarks/engine-hf.json"
        + (" --bf16-json docs/benchmarks/engine-pdserve-bf16.json" if bf16 else "")
        + (" --before-json docs/benchmarks/engine-before.json" if before else "") + (f" --notes {args.notes}" if args.notes else ""),
        "```",
        "",
        "Or all at once: `python3 bench/engine_report.py --model-path /tmp/bench-llama` (add `--before-json`, `--notes`).",
        "",
    ]
    if args.notes:
        lines += [Path(args.notes).read_text().rstrip(), ""]
    (out_dir / "engine.md").write_text("\n".join(lines))
    write_chart(ours, bf16, hf, before, batches, out_dir / "engine.png")
    print(f"wrote {out_dir / 'engine.md'} and engine.png", file=sys.stderr)


if __name__ == "__main__":
    main()
