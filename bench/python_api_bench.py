"""What the engines' own-Python-API benchmarks share: the flags and layout of
`pdserve bench transfer` and its measurement (a warm-up write, then medians
of samples that repeat small writes up to 64 MiB each)."""
import argparse
import json
import time


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--page-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--output-file", required=True)
    args = parser.parse_args()
    args.page_bytes = args.page_size * args.width * 4
    args.buffers = 2 * args.layers  # K and V of every layer
    args.capacity = max(args.pages) * args.page_bytes
    return args


def measure(args, write, key, label):
    """Times `write(pages)` at every size and writes the rows as JSON under `key`."""
    rows = []
    for pages in args.pages:
        size = pages * args.page_bytes * args.buffers
        inner = max(1, (64 << 20) // size)
        write(pages)  # warm-up (wire-up or handshake on the first)
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(inner):
                write(pages)
            rates.append(size * inner / (time.perf_counter() - start) / 1e9)
        rates.sort()
        rows.append({"pages": pages, "bytes": size, key: rates[len(rates) // 2]})
        print(f"  {pages} pages: {label} {rows[-1][key]:.2f} GB/s", flush=True)
    with open(args.output_file, "w") as f:
        json.dump(rows, f, indent=2)
