#!/usr/bin/env python3
"""How far transformers' own dtype=torch.bfloat16 run moves the last-position
logits of the oracle fixtures from their fp32 reference (reference.json),
as a fraction of each row's largest |logit|, over the prompts of at least
--min-tokens tokens. It is the yardstick for the tolerance of pdserve's
`--matmul-precision bf16` oracle test (Tests/ModelsTests/LogitsTests.swift).

  python3 bench/hf_bf16_logit_error.py
"""
import argparse
import json
from pathlib import Path

import torch
import transformers

REPO = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=str(REPO / "tests" / "fixtures" / "models"))
    ap.add_argument("--min-tokens", type=int, default=64, help="pdserve's bf16 mode applies from 64 rows on")
    args = ap.parse_args()
    for folder in sorted(p for p in Path(args.fixtures).iterdir() if (p / "reference.json").exists()):
        ref = json.loads((folder / "reference.json").read_text())
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
        worst = 0.0
        for prompt, expected in zip(ref["prompts"], ref["last_logits"]):
            if len(prompt) < args.min_tokens:
                continue
            with torch.no_grad():
                got = model(torch.tensor([prompt])).logits[0, -1].float()
            expected = torch.tensor(expected)
            worst = max(worst, ((got - expected).abs().max() / expected.abs().max()).item())
        print(f"{folder.name}: transformers bf16, worst |Δlogit| / row max |logit| = {worst:.4f}")


if __name__ == "__main__":
    main()
