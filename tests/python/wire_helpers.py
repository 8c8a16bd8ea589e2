"""The PDServe transfer protocol (version 4) written by hand, for tests that play a
prefill or decode peer: frames (16-byte header: "PDKV", version, type,
payload length, little endian), length-prefixed strings, hellos, the
challenge, and reading frames back."""
import struct

VERSION = 4
HELLO, TRANSFER_REQUEST, KV_PAGES, KV_WRITTEN, METADATA, STATUS, ABORT, ABORT_ACK, HEARTBEAT, ERROR, CHALLENGE = range(1, 12)


def frame(kind, payload, version=VERSION, length=None, extra=0):
    """A frame; `length` lies about the payload length, `extra` counts raw bytes sent after it."""
    return b"PDKV" + struct.pack("<HHQ", version, kind, (len(payload) + extra) if length is None else length) + payload


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def hello(role, layers, page_size, width, model, backend="tcp", session=0, nonce=bytes(16), instance="test"):
    """A hello without an auth proof: an fp32 pool of K and V of `width` elements per layer."""
    tensors = b"".join(string(name) + struct.pack("<IB", width, 0) for name in ("k", "v"))
    return frame(HELLO, string(role) + string(instance) + struct.pack("<III", layers, page_size, 2) + tensors + string(model)
                 + string(backend) + string(b"") + struct.pack("<Q", session) + string(nonce) + string(b""))


def challenge(nonce=bytes(range(16))):
    return frame(CHALLENGE, string(nonce))


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock):
    """The next frame's type and payload."""
    header = recv_exact(sock, 16)
    assert header[:4] == b"PDKV", header
    _, kind, length = struct.unpack("<HHQ", header[4:])
    return kind, recv_exact(sock, length)


def frame_type(data):
    """The type of the frame `data` starts with."""
    assert data[:4] == b"PDKV", data[:16]
    return struct.unpack("<H", data[6:8])[0]
