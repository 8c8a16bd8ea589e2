"""The decode side against a scripted prefill peer speaking the transfer
protocol by hand: frames for the wrong room, malformed frames and garbage
are refused, the affected room fails with a clear error, other rooms on the
same connection still complete, and the decode pool comes back whole."""
import http.server
import json
import random
import socket
import struct
import threading

import pytest
import requests

import wire_helpers as wire
from conftest import FIXTURES, Server

MODEL = "qwen2-fp32"
LAYERS, PAGE, WIDTH = 3, 16, 36  # qwen2 fixture: 3 layers, 3 kv heads × 12
PAGE_BYTES = PAGE * WIDTH * 4
MODEL_ID = "Qwen2ForCausalLM/3x72/6:3x12/v616"


def hello():
    return wire.hello("prefill", LAYERS, PAGE, WIDTH, MODEL_ID, session=77, nonce=b"", instance="scripted")


def kv_pages(room, first, count, claimed_count=None):
    data = bytes(count * PAGE_BYTES * LAYERS * 2)
    claimed = count if claimed_count is None else claimed_count
    return wire.frame(wire.KV_PAGES, struct.pack("<QIIQ", room, first, claimed, len(data)), extra=len(data)) + data


def metadata(room, token):
    return wire.frame(wire.METADATA, struct.pack("<QIBfI", room, token, 0, 0.0, 0))


def status(room, ok=True):
    return wire.frame(wire.STATUS, struct.pack("<QB", room, 1 if ok else 0) + wire.string(""))


class ScriptedPrefill:
    """A bootstrap HTTP server plus a transfer listener whose behaviour per room is scripted."""

    def __init__(self, script):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.transfer_port = self.listener.getsockname()[1]
        outer = self

        class Bootstrap(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"OK"
                if self.path.startswith("/route"):
                    body = json.dumps({"rank_ip": "127.0.0.1", "rank_port": outer.transfer_port, "page_size": PAGE,
                                       "num_layers": LAYERS, "kv_width": WIDTH, "kv_dtype": "float32", "model": MODEL_ID,
                                       "transfer_backend": "tcp"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bootstrap)
        self.bootstrap_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.listener.accept()
        conn.settimeout(30)
        conn.sendall(wire.challenge())
        kind, _ = wire.read_frame(conn)
        assert kind == 1
        conn.sendall(hello())
        try:
            while True:
                kind, payload = wire.read_frame(conn)
                if kind == 2:  # transferRequest
                    room, prompt_len, _prefix, count = struct.unpack("<QIII", payload[:20])
                    self.script(conn, room, count)
        except (ConnectionError, OSError):
            pass

    def close(self):
        self.http.shutdown()
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def decode():
    server = Server("--model-path", str(FIXTURES / MODEL), "--disaggregation-mode", "decode",
                    env={"PDSERVE_DISAGGREGATION_WAITING_TIMEOUT": "10"})
    yield server
    server.stop()


def ask(decode, bootstrap_port, room, prompt_len=40):
    body = {"input_ids": [5] * prompt_len, "sampling_params": {"max_new_tokens": 3, "ignore_eos": True, "temperature": 0},
            "bootstrap_host": "127.0.0.1", "bootstrap_port": bootstrap_port, "bootstrap_room": room}
    return requests.post(decode.url + "/generate", json=body, timeout=30)


def assert_peer_error(response, *words):
    """What the prefill sent broke the protocol: a 502 naming why, never a 200."""
    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message, message


def test_wrong_room_and_malformed_frames_fail_only_their_room(decode):
    bad_room, good_room = random.getrandbits(62), random.getrandbits(62)

    def script(conn, room, pages):
        if room == bad_room:
            conn.sendall(kv_pages(room + 12345, 0, pages))          # a room nobody is receiving: drained, dropped
            conn.sendall(kv_pages(room, 0, 1, claimed_count=pages + 5))  # claims more pages than its bytes and the room
        else:
            conn.sendall(kv_pages(room, 0, pages) + metadata(room, 7) + status(room))

    with ScriptedPrefill(script) as peer:
        assert_peer_error(ask(decode, peer.bootstrap_port, bad_room), "malformed")
        good = ask(decode, peer.bootstrap_port, good_room).json()
        assert good["meta_info"]["finish_reason"]["type"] == "length" and good["output_ids"][0] == 7
        decode.assert_pool_whole()


def test_success_without_all_pages_is_refused(decode):
    room = random.getrandbits(62)

    def script(conn, r, pages):
        conn.sendall(kv_pages(r, 0, 1) + metadata(r, 7) + status(r))  # 1 of 3 pages

    with ScriptedPrefill(script) as peer:
        assert_peer_error(ask(decode, peer.bootstrap_port, room), "1/3 pages")
        decode.assert_pool_whole()


def test_garbage_on_the_link_fails_its_rooms_cleanly(decode):
    room = random.getrandbits(62)

    def script(conn, r, pages):
        conn.sendall(b"this is not a frame at all, just noise" * 4)

    with ScriptedPrefill(script) as peer:
        assert_peer_error(ask(decode, peer.bootstrap_port, room), "magic")
        decode.assert_pool_whole()


@pytest.mark.parametrize("token", [616, 0xFFFFFFFF])
def test_first_token_outside_the_vocabulary_is_refused(decode, token):
    """The qwen2 fixture has 616 tokens: a prefill's first token must be one of them."""
    room = random.getrandbits(62)

    def script(conn, r, pages):
        conn.sendall(kv_pages(r, 0, pages) + metadata(r, token) + status(r))

    with ScriptedPrefill(script) as peer:
        assert_peer_error(ask(decode, peer.bootstrap_port, room), "outside the vocabulary")
        decode.assert_pool_whole()


def test_a_listener_that_is_not_a_prefill_is_refused(decode):
    """bootstrap_host/port naming an arbitrary HTTP server: nothing of its bytes reaches the pool."""
    class NotABootstrap(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"hello": "world"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotABootstrap)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert_peer_error(ask(decode, server.server_address[1], random.getrandbits(62)), "not a prefill bootstrap server")
        decode.assert_pool_whole()
    finally:
        server.shutdown()
