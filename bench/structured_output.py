#!/usr/bin/env python3
"""What a constraint costs: decode tok/s of one request at a time, free
against regex / json_schema / json_object constrained, greedy and sampled
(temperature 1.0, top_p 0.9), on one `pdserve serve` instance, interleaved
round by round so every mode sees the same machine load; plus the cold
compile (the first request with a new schema) against a warm one.

The fixture models are tiny (a step is well under a millisecond), so the
token-mask work is as large a share of a step as it gets: this is the
worst case for the overhead, not a typical one. Their vocabularies are
trimmed (616 ids); `--qwen-vocab` builds, under /tmp, the qwen2-fp32 fixture
with Qwen's real 151,936-id vocabulary and tokenizer (embedding rows
repeated), which is what a mask costs at full size.

    PDSERVE_BIN=.build/release/pdserve .venv-test/bin/python bench/structured_output.py \\
        [--model qwen2-fp32 | --qwen-vocab] [--rounds 7] [--json out.json] [--plot out.png]
"""
import argparse
import json
import shutil
import statistics
import struct
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from conftest import FIXTURES, Server  # noqa: E402

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 4},
        "member": {"type": "boolean"},
        "note": {"type": "string", "maxLength": 64},
    },
    "required": ["name", "age", "member", "note"],
}
MODES = {
    "free": {},
    "regex": {"regex": r"([a-z]{1,8} ){4,40}[0-9]{2,6}\."},
    "json_schema": {"json_schema": json.dumps(PERSON)},
    "json_object": {"json_schema": json.dumps({"type": "object"})},
}
SAMPLING = {"greedy": {"temperature": 0}, "sampled": {"temperature": 1.0, "top_p": 0.9}}
MAX_NEW = 128


def qwen_vocab_model(out=Path("/tmp/pdserve-bench-qwen-vocab"), vocab=151936):
    """qwen2-fp32 with Qwen's tokenizer and a 151,936-row (tied) embedding: row i is fixture row i % 616."""
    source, tokenizer = FIXTURES / "qwen2-fp32", FIXTURES.parent / "real_tokenizers" / "qwen-tiktoken"
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(tokenizer / name, out / name)
    config = json.loads((source / "config.json").read_text())
    config.update(vocab_size=vocab, eos_token_id=[151643, 151645], max_position_embeddings=4096)
    (out / "config.json").write_text(json.dumps(config))
    blob = (source / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    tensors, new_header, offset = [], {}, 0
    for name, info in sorted((k, v) for k, v in header.items() if k != "__metadata__"):
        raw = data[info["data_offsets"][0]:info["data_offsets"][1]]
        shape = info["shape"]
        if name == "model.embed_tokens.weight":
            row = len(raw) // shape[0]
            raw = b"".join(raw[(i % shape[0]) * row:(i % shape[0] + 1) * row] for i in range(vocab))
            shape = [vocab, shape[1]]
        new_header[name] = {"dtype": info["dtype"], "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        tensors.append(raw)
        offset += len(raw)
    encoded = json.dumps(new_header).encode()
    encoded += b" " * (-len(encoded) % 8)
    (out / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(tensors))
    return out


def run(url, mode, sampling, seed):
    params = {"max_new_tokens": MAX_NEW, **SAMPLING[sampling], **MODES[mode]}
    if sampling == "sampled":
        params["seed"] = seed
    if mode == "free":
        params["ignore_eos"] = True  # the same length as the longest constrained outputs
    start = time.perf_counter()
    reply = requests.post(url + "/generate", json={"text": f"Describe person {seed}:", "sampling_params": params}, timeout=120)
    elapsed = time.perf_counter() - start
    reply.raise_for_status()
    meta = reply.json()["meta_info"]
    decode = meta["phases"].get("decode", 0)
    return {"tokens": meta["completion_tokens"], "seconds": elapsed, "decode_seconds": decode}


def cold_compile(url, seed):
    """The first request with a schema never seen (compiles its automaton and the start mask) vs the same again."""
    schema = dict(PERSON, title=f"fresh-{seed}")
    body = {"text": "x", "sampling_params": {"max_new_tokens": 1, "temperature": 0, "json_schema": json.dumps(schema)}}
    times = []
    for _ in range(2):
        start = time.perf_counter()
        requests.post(url + "/generate", json=body, timeout=120).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2-fp32", help="a fixture under tests/fixtures/models")
    parser.add_argument("--qwen-vocab", action="store_true", help="the qwen2-fp32 fixture with Qwen's full vocabulary")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--plot")
    args = parser.parse_args()
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    model = qwen_vocab_model() if args.qwen_vocab else FIXTURES / args.model
    name = "qwen2-fp32 with Qwen's vocabulary" if args.qwen_vocab else args.model
    server = Server("--model-path", str(model), "--threads", str(args.threads))
    try:
        vocab = json.loads((model / "config.json").read_text())["vocab_size"]
        first_ever = cold_compile(server.url, "first")  # also lays out the vocabulary's bytes
        results = {(m, s): [] for m in MODES for s in SAMPLING}
        for _ in range(2):  # warm-up: masks of the common automaton states get cached
            for key in results:
                run(server.url, *key, seed=1000)
        for r in range(args.rounds):
            for key in results:
                results[key].append(run(server.url, *key, seed=r))
        colds = [cold_compile(server.url, i) for i in range(5)]
    finally:
        server.stop()
    loadavg_after = Path("/proc/loadavg").read_text().split()[:3]

    rows = []
    for (mode, sampling), runs in results.items():
        rate = statistics.median(r["tokens"] / r["decode_seconds"] for r in runs if r["decode_seconds"] > 0)
        rows.append({"mode": mode, "sampling": sampling, "decode_tok_s": rate,
                     "tokens_median": statistics.median(r["tokens"] for r in runs)})
    base = {s: next(r["decode_tok_s"] for r in rows if r["mode"] == "free" and r["sampling"] == s) for s in SAMPLING}
    print(f"model {name} (vocab {vocab}), {args.threads} threads, loadavg before {loadavg} after {loadavg_after}")
    print("| constraint | sampling | decode tok/s | vs free | tokens (median) |\n|---|---|---|---|---|")
    for row in rows:
        row["vs_free"] = row["decode_tok_s"] / base[row["sampling"]]
        print(f"| {row['mode']} | {row['sampling']} | {row['decode_tok_s']:.0f} | {row['vs_free']:.2f} | {row['tokens_median']:.0f} |")
    cold = statistics.median(c[0] for c in colds) * 1000
    warm = statistics.median(c[1] for c in colds) * 1000
    print(f"first constrained request ever: {first_ever[0] * 1000:.0f} ms (then {first_ever[1] * 1000:.1f} ms); "
          f"a new schema: {cold:.1f} ms cold vs {warm:.1f} ms warm (median of 5)")
    report = {"model": name, "vocab": vocab, "threads": args.threads, "rounds": args.rounds,
              "loadavg_before": loadavg, "loadavg_after": loadavg_after, "rows": rows,
              "first_ever_ms": [t * 1000 for t in first_ever], "new_schema_cold_ms": cold, "new_schema_warm_ms": warm}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3.6))
        width = 0.38
        for i, sampling in enumerate(SAMPLING):
            values = [next(r["decode_tok_s"] for r in rows if r["mode"] == m and r["sampling"] == sampling) for m in MODES]
            ax.bar([x + (i - 0.5) * width for x in range(len(MODES))], values, width, label=sampling)
        ax.set_xticks(range(len(MODES)), list(MODES))
        ax.set_ylabel("decode tok/s (one request)")
        ax.set_title(f"Constrained decoding, {name} (vocab {vocab:,}), {args.threads} threads", fontsize=9)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
