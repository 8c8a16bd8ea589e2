#!/usr/bin/env python3
"""The same KV transfers as `pdserve bench transfer`'s mooncake column, made
with Mooncake's own Python API (the mooncake-transfer-engine-non-cuda wheel),
for a like-for-like ratio: two engines in one process in P2P-handshake mode
over TCP (as PDServe's on a host without RDMA devices), the same layout, one
`batch_transfer_sync_write` of every layer's K and V run per write (one
batch, as PDServe posts it); medians of the samples.

Needs numpy and `pip install --no-deps mooncake-transfer-engine-non-cuda==0.3.13.post1`
in the Python that runs it.
Usage: python bench/mooncake_python_bench.py --output-file F [--pages 1 4 ...] [--repeats N]
"""
import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
from mooncake.engine import TransferEngine  # noqa: E402


def engine(buffers):
    te = TransferEngine()
    if te.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") != 0:
        raise RuntimeError("Mooncake initialize failed")
    for b in buffers:
        if te.register_memory(b.ctypes.data, b.nbytes) != 0:
            raise RuntimeError("Mooncake register_memory failed")
    return te


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--page-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--output-file", required=True)
    args = parser.parse_args()

    page_bytes = args.page_size * args.width * 4
    buffers = 2 * args.layers
    capacity = max(args.pages) * page_bytes
    source = [np.ones(capacity, dtype=np.uint8) for _ in range(buffers)]
    target = [np.zeros(capacity, dtype=np.uint8) for _ in range(buffers)]
    sender, receiver = engine(source), engine(target)
    session = f"127.0.0.1:{receiver.get_rpc_port()}"

    def write(pages):
        length = pages * page_bytes
        status = sender.batch_transfer_sync_write(session, [b.ctypes.data for b in source],
                                                  [b.ctypes.data for b in target], [length] * buffers)
        if status != 0:
            raise RuntimeError(f"Mooncake write failed: {status}")

    rows = []
    for pages in args.pages:
        size = pages * page_bytes * buffers
        inner = max(1, (64 << 20) // size)
        write(pages)  # warm-up (the handshake on the first)
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(inner):
                write(pages)
            rates.append(size * inner / (time.perf_counter() - start) / 1e9)
        rates.sort()
        rows.append({"pages": pages, "bytes": size, "mooncakePythonGBps": rates[len(rates) // 2]})
        print(f"  {pages} pages: Mooncake Python API {rows[-1]['mooncakePythonGBps']:.2f} GB/s", flush=True)
    if not all(np.array_equal(s[:page_bytes], t[:page_bytes]) for s, t in zip(source, target)):
        raise RuntimeError("Mooncake wrote wrong bytes")
    with open(args.output_file, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
