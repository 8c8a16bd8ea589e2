"""Starting PD pairs (prefill + decode `pdserve serve` processes) and
sending a request to both halves the way a PD router does."""
import random
import signal
import socket
import threading

import requests

from conftest import FIXTURES, Server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PDPair:
    """A prefill and a decode instance of one model, talking over `backend`."""

    def __init__(self, model="qwen2-fp32", backend="tcp", prefill_args=(), decode_args=(), env=None):
        if backend == "nixl":
            # UCX would otherwise listen and connect on every interface; these tests stay on loopback.
            env = {"UCX_NET_DEVICES": "lo", **(env or {})}
        common = ["--model-path", str(FIXTURES / model), "--disaggregation-transfer-backend", backend]
        for attempt in range(3):
            # The port free_port found can be taken (by the prefill's own transfer listener, on port 0)
            # before the bootstrap server binds it: then start again on another.
            self.bootstrap_port = free_port()
            try:
                self.prefill = Server(*common, "--disaggregation-mode", "prefill",
                                      "--disaggregation-bootstrap-port", str(self.bootstrap_port), *prefill_args, env=env)
                break
            except RuntimeError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        self._decode_command, self._env = (*common, "--disaggregation-mode", "decode", *decode_args), env
        try:
            self.decode = Server(*self._decode_command, env=env)
        except Exception:
            self.prefill.stop()
            raise

    def bootstrap(self, body, count=None):
        room = random.getrandbits(63)
        fields = {"bootstrap_host": "127.0.0.1", "bootstrap_port": self.bootstrap_port, "bootstrap_room": room}
        if count is not None:
            fields = {k: [v if k != "bootstrap_room" else room + i for i in range(count)] for k, v in fields.items()}
        return {**body, **fields}

    def post(self, path, body, timeout=60):
        """Same path and body to both halves in parallel; the decode's answer, after the prefill's is complete."""
        result = {}

        def to_prefill():
            result["prefill"] = requests.post(self.prefill.url + path, json=body, timeout=timeout)

        thread = threading.Thread(target=to_prefill)
        thread.start()
        decode = requests.post(self.decode.url + path, json=body, timeout=timeout)
        thread.join(timeout)
        return decode, result.get("prefill")

    def assert_pools_whole(self):
        self.prefill.assert_pool_whole()
        self.decode.assert_pool_whole()

    def restart_decode(self):
        """Kills the decode instance and starts a new one with the same flags (a new pool, a new port)."""
        self.decode.stop(signal.SIGKILL)
        self.decode = Server(*self._decode_command, env=self._env)

    def stop(self):
        self.prefill.stop()
        self.decode.stop()


def pair_behind_router(model="qwen2-fp32", served_name="qwen-tiny"):
    """A PD pair (tcp) serving `model` as `served_name`, with `pdserve router` in front: (pair, router)."""
    from router_helpers import RouterProcess

    named = ("--served-model-name", served_name)
    pair = PDPair(model, prefill_args=named, decode_args=named)
    try:
        router = RouterProcess("--pd-disaggregation", "--prefill", pair.prefill.url, str(pair.bootstrap_port), "--decode", pair.decode.url)
    except Exception:
        pair.stop()
        raise
    return pair, router
