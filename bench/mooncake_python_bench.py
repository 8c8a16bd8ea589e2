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
import os

import numpy as np

from python_api_bench import measure, parse_args

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
    args = parse_args()
    source = [np.ones(args.capacity, dtype=np.uint8) for _ in range(args.buffers)]
    target = [np.zeros(args.capacity, dtype=np.uint8) for _ in range(args.buffers)]
    sender, receiver = engine(source), engine(target)
    session = f"127.0.0.1:{receiver.get_rpc_port()}"

    def write(pages):
        length = pages * args.page_bytes
        status = sender.batch_transfer_sync_write(session, [b.ctypes.data for b in source],
                                                  [b.ctypes.data for b in target], [length] * args.buffers)
        if status != 0:
            raise RuntimeError(f"Mooncake write failed: {status}")

    measure(args, write, "mooncakePythonGBps", "Mooncake Python API")
    if not all(np.array_equal(s, t) for s, t in zip(source, target)):
        raise RuntimeError("Mooncake wrote wrong bytes")


if __name__ == "__main__":
    main()
