#!/usr/bin/env python3
"""The same KV transfers as `pdserve bench transfer`'s nixl column, made with
NIXL's own Python API (the nixl-cu12 wheel), for a like-for-like ratio:
two agents in one process, progress thread off (as PDServe's), the same
layout (one descriptor per layer and K/V buffer per transfer), a fresh
transfer request per write, polled until DONE; medians of the samples.

Needs numpy and `pip install --no-deps nixl-cu12==1.5.1` in the Python that
runs it; set UCX_NET_DEVICES=lo to keep UCX on loopback.
Usage: python bench/nixl_python_bench.py --output-file F [--pages 1 4 ...] [--repeats N]
"""
import numpy as np
from nixl_cu12._api import nixl_agent, nixl_agent_config

from python_api_bench import measure, parse_args


def main():
    args = parse_args()
    page_bytes, capacity = args.page_bytes, args.capacity
    config = nixl_agent_config(enable_prog_thread=False, backends=["UCX"])
    sender, receiver = nixl_agent("py-sender", config), nixl_agent("py-receiver", config)
    source = [np.ones(capacity, dtype=np.uint8) for _ in range(args.buffers)]
    target = [np.zeros(capacity, dtype=np.uint8) for _ in range(args.buffers)]
    sender.register_memory(sender.get_reg_descs([(b.ctypes.data, capacity, 0, "") for b in source], "DRAM"))
    receiver.register_memory(receiver.get_reg_descs([(b.ctypes.data, capacity, 0, "") for b in target], "DRAM"))
    remote = sender.add_remote_agent(receiver.get_agent_metadata())

    def write(pages):
        length = pages * page_bytes
        local = sender.get_xfer_descs([(b.ctypes.data, length, 0) for b in source], "DRAM")
        far = sender.get_xfer_descs([(b.ctypes.data, length, 0) for b in target], "DRAM")
        handle = sender.initialize_xfer("WRITE", local, far, remote)
        state = sender.transfer(handle)
        while state == "PROC":
            # With the progress thread off the target must be polled too (PDServe's decode polls every 200 µs).
            receiver.get_new_notifs()
            state = sender.check_xfer_state(handle)
        if state != "DONE":
            raise RuntimeError(f"NIXL write failed: {state}")
        sender.release_xfer_handle(handle)

    measure(args, write, "nixlPythonGBps", "NIXL Python API")


if __name__ == "__main__":
    main()
