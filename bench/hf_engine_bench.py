#!/usr/bin/env python3
"""HF transformers baseline for `pdserve bench engine`: the same measurements
on the same checkpoint with PyTorch on the CPU.

Prefill: --num-prompts prompts of --prompt-len tokens, one at a time, one
forward each with a KV cache and logits for the last position only
(`logits_to_keep=1`, the model's cheapest prefill). Decode: for each --batch,
that many --decode-prompt-len-token prompts are prefilled (not timed), then
--decode-tokens greedy steps are timed, each a forward of one token per
sequence through the model's DynamicCache followed by argmax: HF's model
without generate()'s per-step logits-processor overhead, i.e. its best case.

Compute dtypes tried (--dtypes):
  float32   weights loaded as fp32 (torch's CPU default: `dtype=torch.float32`)
  bfloat16  weights and compute in bf16 (`dtype=torch.bfloat16`; oneDNN's
            AVX512-BF16 matmuls where the CPU has them)
Prompt token ids use the same formula as pdserve's bench.

Requires: torch, transformers (nothing else). Writes JSON with --output-file.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def prompt(length, seed, vocab):
    return [3 + (i * 7919 + seed * 104729 + 17) % (vocab - 3) for i in range(length)]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_dtype(args, dtype_name, torch, transformers):
    from transformers import DynamicCache
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model_path, dtype=dtype)
    model.eval()
    vocab = model.config.vocab_size

    def prefill(prompts):
        total = 0.0
        for p in prompts:
            ids = torch.tensor([p])
            start = time.perf_counter()
            model(input_ids=ids, cache=DynamicCache(config=model.config), use_cache=True, logits_to_keep=1)
            total += time.perf_counter() - start
        return total

    def decode(batch, tokens, seed):
        ids = torch.tensor([prompt(args.decode_prompt_len, seed * 100 + i, vocab) for i in range(batch)])
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        pos = ids.shape[1]
        start = time.perf_counter()
        for _ in range(tokens):
            out = model(input_ids=nxt, cache=cache, use_cache=True,
                        cache_position=torch.tensor([pos]), logits_to_keep=1)
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            pos += 1
        return time.perf_counter() - start

    result = {"dtype": dtype_name}
    with torch.inference_mode():
        log(f"[{dtype_name}] warm-up")
        prefill([prompt(args.prompt_len, 999, vocab)])
        decode(2, 4, 998)
        runs = []
        for r in range(args.repeats):
            prompts = [prompt(args.prompt_len, r * args.num_prompts + i, vocab) for i in range(args.num_prompts)]
            s = prefill(prompts)
            runs.append(args.num_prompts * args.prompt_len / s)
            log(f"[{dtype_name}] prefill run {r + 1}: {runs[-1]:.1f} tok/s")
        result["prefill_tok_s"] = statistics.median(runs)
        result["prefill_tok_s_runs"] = runs
        result["decode"] = []
        for b in args.batch:
            runs = []
            for r in range(args.repeats):
                s = decode(b, args.decode_tokens, 1000 * b + r)
                runs.append(b * args.decode_tokens / s)
                log(f"[{dtype_name}] decode batch {b} run {r + 1}: {runs[-1]:.1f} tok/s")
            tok_s = statistics.median(runs)
            result["decode"].append({"batch": b, "tok_s": tok_s, "step_ms": 1000 * b / tok_s, "runs": runs})
    del model
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--num-prompts", type=int, default=4)
    ap.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--decode-prompt-len", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--output-file")
    args = ap.parse_args()

    import torch
    import transformers
    torch.set_num_threads(args.threads)
    report = {
        "engine": "hf-transformers", "model_path": args.model_path, "threads": args.threads,
        "prompt_len": args.prompt_len, "num_prompts": args.num_prompts, "decode_tokens": args.decode_tokens,
        "decode_prompt_len": args.decode_prompt_len, "repeats": args.repeats,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_name(),
        "cores": os.cpu_count(), "variants": [],
    }
    for name in args.dtypes.split(","):
        report["variants"].append(bench_dtype(args, name, torch, transformers))
    if args.output_file:
        with open(args.output_file, "w") as f:
            json.dump(report, f, indent=2)
        log(f"wrote {args.output_file}")
    else:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
