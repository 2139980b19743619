"""HTTP/2 by hand for tests: clients that misbehave as no stock client can be made to.

    from h2raw import StalledReader
    stalled = StalledReader(port)
    stalled.send("/fsd.v1.FeatureService/GetFeatures", request_bytes, 100)  # never reads

Used by tests/daemon/grpc/ (against grpc_test_server) and tests/integration/ (against fsd).
"""
import socket
import time

import hpack
from hyperframe.frame import DataFrame, Frame, HeadersFrame, SettingsFrame, WindowUpdateFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = 2**31 - 1
FRAME_MAX = 16384  # SETTINGS_MAX_FRAME_SIZE's default: the server's, unchanged


def grpc_message(msg):
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\0" + len(msg).to_bytes(4, "big") + msg


def request_frames(encoder, sid, path, msg):
    """HEADERS and DATA of one unary gRPC request on stream `sid`."""
    headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
               (":authority", "localhost"), ("te", "trailers"),
               ("content-type", "application/grpc")]
    out = HeadersFrame(sid, data=encoder.encode(headers), flags=["END_HEADERS"]).serialize()
    body = grpc_message(msg)
    for off in range(0, len(body), FRAME_MAX):
        last = off + FRAME_MAX >= len(body)
        out += DataFrame(sid, data=body[off:off + FRAME_MAX],
                         flags=["END_STREAM"] if last else []).serialize()
    return out


class StalledReader:
    """Sends requests and never reads a byte. Its receive buffer is small and its HTTP/2
    windows wide open, so nothing but the socket holds the server's responses back."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.encoder = hpack.Encoder()
        self.next_sid = 1
        self.sock.sendall(PREFACE + SettingsFrame(0, settings={
            SettingsFrame.INITIAL_WINDOW_SIZE: MAX_WINDOW}).serialize() +
            WindowUpdateFrame(0, window_increment=MAX_WINDOW - 65535).serialize())

    def send(self, path, msg, count):
        data = b""
        for _ in range(count):
            data += request_frames(self.encoder, self.next_sid, path, msg)
            self.next_sid += 2
        self.sock.sendall(data)  # small requests: the server reads them all while parked

    def close(self):
        self.sock.close()


class RawH2:
    """HTTP/2 by hand (hyperframe + hpack), for the drain handshake h2 cannot do: h2 stops
    sending anything, even a PING ack, once it has seen a GOAWAY."""

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.sock.sendall(self.PREFACE + SettingsFrame(0).serialize())

    def send_request(self, sid, path, msg):
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
                   (":authority", "localhost"), ("te", "trailers"),
                   ("content-type", "application/grpc")]
        frames = HeadersFrame(sid, data=self.encoder.encode(headers), flags=["END_HEADERS"])
        body = DataFrame(sid, data=grpc_message(msg), flags=["END_STREAM"])
        self.sock.sendall(frames.serialize() + body.serialize())

    def next_frame(self, timeout=10):
        """The next frame from the server, or None once it closed the connection."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
        f.parse_body(memoryview(self.buf[9:9 + length]))
        self.buf = self.buf[9 + length:]
        if isinstance(f, HeadersFrame):
            f.headers = dict(self.decoder.decode(f.data))  # keeps the HPACK state in step
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
        return f
