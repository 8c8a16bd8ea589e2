"""`pdserve up`: the one-command cluster comes up, serves through the
router, and Ctrl-C stops every process it started."""
import os
import re
import signal
import subprocess
import time

import requests

from conftest import BIN, FIXTURES


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_up_serves_through_router_and_stops_everything(tmp_path):
    log = open(tmp_path / "up.log", "w+")
    proc = subprocess.Popen([BIN, "up", "--port", "0", "--model-path", str(FIXTURES / "qwen2-fp32"), "--threads-per-instance", "1",
                             "--schedule-policy", "sprf", "--chunked-prefill-size", "64", "--max-running-requests", "5",
                             "--num-reserved-decode-tokens", "32"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None:
            assert time.monotonic() < deadline and proc.poll() is None, open(tmp_path / "up.log").read()
            line = proc.stdout.readline()
            match = re.search(r"PDServe is up: (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
        workers = requests.get(url + "/workers", timeout=10).json()["workers"]
        assert sorted(w["mode"] for w in workers) == ["decode", "prefill"]
        # Scheduling flags reach the side they are for.
        info = {w["mode"]: requests.get(w["url"] + "/get_server_info", timeout=10).json() for w in workers}
        assert (info["prefill"]["schedule_policy"], info["prefill"]["chunked_prefill_size"]) == ("sprf", 64)
        assert (info["decode"]["max_running_requests"], info["decode"]["num_reserved_decode_tokens"]) == (5, 32)
        out = requests.post(url + "/generate", json={"input_ids": [5, 6, 7, 8, 9], "sampling_params": {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}}, timeout=60).json()
        assert len(out["output_ids"]) == 6
        kids = children_of(proc.pid)
        assert len(kids) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        for kid in kids:
            assert not os.path.exists(f"/proc/{kid}") or open(f"/proc/{kid}/stat").read().split()[2] == "Z"
    finally:
        if proc.poll() is None:
            proc.kill()
