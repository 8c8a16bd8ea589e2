"""Two "hosts" on one machine for end-to-end tests: two network namespaces
joined by a veth pair (DESIGN.md §6), made and torn down by the test.

Only the two namespace-local addresses of a private test range
(10.213.<x>.1 and .2) are ever targeted. The test process itself stays in
the root namespace; it starts processes inside a namespace with
`ip netns exec NS …` and talks HTTP to them by running a tiny stdlib client
inside the namespace (`ns_http`), so nothing needs routing between the root
namespace and the test range.

Every wait is bounded; `TwoHosts.close` kills whatever was started in the
namespaces and deletes them, and is safe to call more than once.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import stop_process

IP = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip") if os.path.exists(p)), None)


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (not root, no iproute2, EPERM in a container…)."""


def _ip(*args, check=True, timeout=20):
    result = subprocess.run([IP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, [IP, *args], result.stdout)
    return result


class TwoHosts:
    """Namespaces `a` and `b`, addresses `ip_a` and `ip_b` on one /24, `lo` up in both."""

    def __init__(self):
        if IP is None:
            raise NetnsUnavailable("iproute2's `ip` is not installed (scripts/install-deps installs it)")
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        tag = f"{os.getpid()}-{secrets.token_hex(2)}"
        self.a, self.b = f"pdsA-{tag}", f"pdsB-{tag}"
        veth = f"pds{secrets.token_hex(3)}"          # interface names have at most 15 characters
        self.veth_a, self.veth_b = veth + "a", veth + "b"
        subnet = f"10.213.{os.getpid() % 200 + 20}"   # namespace-local: two runs never see each other's
        self.ip_a, self.ip_b = f"{subnet}.1", f"{subnet}.2"
        self.processes = []
        self.namespaces = []
        try:
            for ns in (self.a, self.b):
                _ip("netns", "add", ns)
                self.namespaces.append(ns)
            _ip("link", "add", self.veth_a, "type", "veth", "peer", "name", self.veth_b)
            _ip("link", "set", self.veth_a, "netns", self.a)
            _ip("link", "set", self.veth_b, "netns", self.b)
            for ns, dev, addr in ((self.a, self.veth_a, self.ip_a), (self.b, self.veth_b, self.ip_b)):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
            self._wait_for_link()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            output = getattr(error, "output", "") or ""
            self.close()
            raise NetnsUnavailable(f"cannot make network namespaces: {error} {output.strip()}") from error

    def _wait_for_link(self, timeout=10):
        """The veth is usable once A can reach B's address (duplicate address detection, carrier)."""
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(self.argv(self.a, sys.executable, "-c", _CONNECT_PROBE, self.ip_b),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise OSError(f"the veth between {self.a} and {self.b} did not come up within {timeout}s")
            time.sleep(0.1)

    def argv(self, ns, *command):
        return [IP, "netns", "exec", ns, *[str(c) for c in command]]

    def start(self, ns, *command, ready_pattern, name="process", ready_timeout=60, env=None):
        """Starts COMMAND inside namespace NS; it is stopped by `close` at the latest."""
        return NsProcess(self, ns, command, ready_pattern=ready_pattern, name=name, ready_timeout=ready_timeout, env=env)

    def close(self):
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        # Deleting a namespace also deletes the veth end in it; the root-side
        # delete only matters when setup stopped before the ends were moved.
        for ns in self.namespaces:
            self._kill_leftovers(ns)
            _ip("netns", "delete", ns, check=False)
        self.namespaces.clear()
        if _link_exists(self.veth_a):
            _ip("link", "delete", self.veth_a, check=False)

    @staticmethod
    def _kill_leftovers(ns):
        """Anything still running inside NS that this test started (children of killed processes)."""
        result = _ip("netns", "pids", ns, check=False)
        for pid in result.stdout.split() if result.returncode == 0 else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass


def _link_exists(dev):
    return IP is not None and _ip("link", "show", dev, check=False).returncode == 0


_CONNECT_PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], 9))   # nothing listens: a refusal proves the address answers
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    sys.exit(1)
sys.exit(0)
"""


class NsProcess:
    """A child process inside a namespace, ready once its log matches `ready_pattern`."""

    def __init__(self, hosts, ns, command, ready_pattern, name, ready_timeout, env):
        self.name = name
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pdserve-{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        # `ip netns exec` execs the command itself, so this pid is the command's.
        # `env` adds to the test's environment; a None value removes that variable.
        merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        self.proc = subprocess.Popen(hosts.argv(ns, *command), stdout=self.log, stderr=subprocess.STDOUT,
                                     env=merged, start_new_session=True)
        hosts.processes.append(self)
        deadline = time.monotonic() + ready_timeout
        self.match = None
        while self.match is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            self.match = re.search(ready_pattern, self.output())
            if self.match is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not become ready within {ready_timeout}s:\n{self.output()[-4000:]}")
                time.sleep(0.05)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        stop_process(self.proc, timeout=timeout)
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


# A stdlib-only HTTP client run inside a namespace: reads {method, url, body,
# timeout} as JSON on stdin, prints {status, body} (body parsed when JSON).
_CLIENT = r"""
import json, sys, urllib.request, urllib.error
req = json.load(sys.stdin)
data = None if req["body"] is None else json.dumps(req["body"]).encode()
r = urllib.request.Request(req["url"], data=data, method=req["method"], headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(r, timeout=req["timeout"]) as resp:
        status, raw = resp.status, resp.read()
except urllib.error.HTTPError as e:
    status, raw = e.code, e.read()
except Exception as e:
    print(json.dumps({"status": None, "body": f"{type(e).__name__}: {e}"}))
    sys.exit(0)
text = raw.decode("utf-8", "replace")
try:
    body = json.loads(text)
except ValueError:
    body = text
print(json.dumps({"status": status, "body": body}))
"""


def ns_http(hosts, ns, method, url, body=None, timeout=60):
    """One HTTP request made from inside namespace NS: (status or None when it could not connect, body)."""
    result = subprocess.run(hosts.argv(ns, sys.executable, "-I", "-c", _CLIENT),
                            input=json.dumps({"method": method, "url": url, "body": body, "timeout": timeout}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout + 20)
    if result.returncode != 0:
        raise RuntimeError(f"HTTP client in {ns} failed ({result.returncode}): {result.stderr[-2000:]}")
    answer = json.loads(result.stdout)
    return answer["status"], answer["body"]

