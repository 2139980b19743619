"""What the transport tests share: grpc_test_server in a child process, and the clients that
talk to it: grpcio for what a stock gRPC client does, h2 (H2Client) and hyperframe by hand
(RawH2) for the HTTP/2 grpcio cannot be made to send.

The test programs set SERVER (the grpc_test_server binary) from their --server argument,
through main() below.
"""
import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings

# tests/lib: the raw HTTP/2 clients (h2raw) the tests share with tests/integration/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

SERVER = None  # path of grpc_test_server, from --server
START_TIMEOUT_S = 30  # sanitizer builds start slowly
LIMIT = 4 * 1024 * 1024  # the server's max_message_bytes (the default)

CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),  # never route loopback tests through a proxy
    ("grpc.use_local_subchannel_pool", 1),  # one channel = its own connection
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
]


def frame(msg, flags=0):
    """A gRPC length-prefixed message."""
    return bytes([flags]) + len(msg).to_bytes(4, "big") + msg


class Server:
    """grpc_test_server in a child process."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [SERVER, *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        line = self._readline(START_TIMEOUT_S)
        if not line.startswith("port="):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])
        self.addr = f"127.0.0.1:{self.port}"

    def _readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise RuntimeError("server printed nothing")
        return self.proc.stdout.readline().decode().strip()

    def stop(self, timeout=30):
        """SIGTERM, then wait: returns (exit code, stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            return -1, out.decode()
        return self.proc.returncode, out.decode()

    def channel(self):
        return grpc.insecure_channel(self.addr, options=CHANNEL_OPTIONS)

    def stats(self):
        with self.channel() as ch:
            text = ch.unary_unary("/test.Echo/Stats")(b"", timeout=10).decode()
        return parse_stats(text)


def parse_stats(text):
    stats = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 2 and parts[1].isdigit():
            stats[parts[0]] = int(parts[1])
    return stats


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


class H2Client:
    """A plain HTTP/2 client (the h2 library) for requests grpcio will not send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        self.conn.increment_flow_control_window(1 << 24)
        self.flush()
        self.streams = {}
        self.terminated = None
        self.got_settings = False
        # Learn the server's SETTINGS (its windows) before sending requests.
        deadline = time.monotonic() + 10
        while not self.got_settings:
            if time.monotonic() > deadline:
                raise AssertionError("no SETTINGS from the server")
            self._receive(deadline)

    def close(self):
        self.sock.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, body=b"", headers=(), end_stream=True, method="POST",
                content_type="application/grpc", send=True):
        """Queues (and by default sends) one request; returns its stream id."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", "localhost"), ("te", "trailers")]
        if content_type is not None:
            hdrs.append(("content-type", content_type))
        hdrs += list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and not body)
        self.streams[sid] = {"headers": None, "data": b"", "trailers": None, "ended": False,
                             "reset": None}
        size = self.conn.max_outbound_frame_size
        for off in range(0, len(body), size):
            last = off + size >= len(body)
            self.conn.send_data(sid, body[off:off + size], end_stream=end_stream and last)
        if send:
            self.flush()
        return sid

    def _receive(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        if not data:
            raise ConnectionError("server closed the connection")
        events = self.conn.receive_data(data)
        for e in events:
            st = self.streams.get(getattr(e, "stream_id", None))
            if isinstance(e, h2.events.ResponseReceived):
                st["headers"] = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived):
                st["data"] += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, h2.events.TrailersReceived):
                st["trailers"] = dict(e.headers)
            elif isinstance(e, h2.events.StreamEnded):
                st["ended"] = True
            elif isinstance(e, h2.events.StreamReset) and st is not None:
                st["reset"] = e.error_code
            elif isinstance(e, h2.events.ConnectionTerminated):
                self.terminated = e
            elif isinstance(e, h2.events.RemoteSettingsChanged):
                self.got_settings = True
        self.flush()

    def wait(self, sids, timeout=10, for_reset=False):
        """Reads until every stream in `sids` ended (or was reset); returns their states."""
        deadline = time.monotonic() + timeout
        def done(s):
            st = self.streams[s]
            return st["reset"] is not None if for_reset else st["ended"] or st["reset"] is not None
        while not all(done(s) for s in sids):
            if time.monotonic() > deadline:
                raise AssertionError(f"streams not finished: {[s for s in sids if not done(s)]}")
            self._receive(deadline)
        return [self.streams[s] for s in sids]


def grpc_status(st):
    """(grpc-status, grpc-message) from a stream's trailers, or its trailers-only HEADERS."""
    fields = st["trailers"] or st["headers"] or {}
    return fields.get("grpc-status"), fields.get("grpc-message", "")


def read_until_closed(sock, timeout=10):
    """Everything the server sends until it closes the connection (fails on a timeout)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def frame_types(data):
    """The HTTP/2 frame types in `data` (server frames: no preface)."""
    types, off = [], 0
    while off + 9 <= len(data):
        length = int.from_bytes(data[off:off + 3], "big")
        types.append(data[off + 3])
        off += 9 + length
    return types


class ServerCase(unittest.TestCase):
    """Starts one server for the class; fails the class if it does not stop cleanly."""

    server_args = ("--workers", "2")

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.server_args)
        cls.channel = cls.server.channel()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc, out = cls.server.stop()
        workers = cls.server_args[cls.server_args.index("--workers") + 1]
        if rc != 0 or f"workers_deinited={workers}" not in out:
            raise AssertionError(f"server exited {rc}:\n{out}")

    def call(self, path, request, timeout=30, channel=None):
        return (channel or self.channel).unary_unary(path)(request, timeout=timeout)

    def wait_stats(self, done, timeout_s=10):
        """Polls Stats until done(stats) holds; returns the stats."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.server.stats()
            if done(stats):
                return stats
            self.assertLess(time.monotonic(), deadline, stats)
            time.sleep(0.02)

    def assertCode(self, ctx, code):
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())


def main():
    """Reads --server into SERVER and runs the calling module's tests (the rest of argv)."""
    global SERVER
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    args, rest = parser.parse_known_args()
    SERVER = os.path.abspath(args.server)
    unittest.main(module="__main__", argv=[sys.argv[0], "-v", *rest])
