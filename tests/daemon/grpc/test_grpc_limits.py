#!/usr/bin/python3
"""The transport's resource limits (daemon/grpc/) against grpc_test_server, with real clients.

A client that sends requests and never reads its responses is a raw socket (StalledReader):
no stock client can be told to stop reading. Each test asserts the refusal or the bound, that
a well-behaved client on the same worker is still served, and the counter that shows it.

    /usr/bin/python3 test_grpc_limits.py --server build/tests/grpc_test_server [Class ...]
"""
import os
import socket
import sys
import time
import unittest

import grpc
from hyperframe.frame import (DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

from grpc_harness import (H2Client, ServerCase, delta, frame,  # noqa: E402
                          grpc_status, main)
from h2raw import PREFACE, RawH2, StalledReader  # noqa: E402

KIB = 1024
MIB = 1024 * 1024


class LimitCase(ServerCase):
    def sample_pending(self, seconds):
        """The highest pending_output_bytes seen over `seconds`."""
        peak = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, self.server.stats()["pending_output_bytes"])
            time.sleep(0.02)
        return peak


class ConnectionOutputBudgetTests(LimitCase):
    """One worker; a connection may hold 256 KiB of unwritten responses, the worker 4 MiB."""

    BUDGET = 256 * KIB
    RESPONSE = 200 * KIB
    server_args = ("--workers", "1", "--max-pending-bytes", str(BUDGET),
                   "--max-pending-worker-bytes", str(4 * MIB), "--write-timeout-ms", "1500")

    def test_a_stalled_reader_holds_at_most_its_budget_and_is_closed_after_the_timeout(self):
        before = self.server.stats()
        stalled = StalledReader(self.server.port)
        try:
            # 12 MB of responses: far more than the kernel's socket buffers take.
            stalled.send("/test.Echo/Big", str(self.RESPONSE).encode(), 60)
            parked = self.wait_stats(
                lambda st: delta(before, st, "output_waits_connection") >= 1)
            # The budget is checked before each handler: it is passed by one response at most
            # (and the frames' headers).
            peak = self.sample_pending(0.5)
            self.assertGreater(peak, 0)
            self.assertLessEqual(peak, self.BUDGET + self.RESPONSE + 16 * KIB, parked)
            self.assertLess(delta(before, parked, "Big.OK"), 60, "every response was made")
            # Another client on the same worker is served meanwhile.
            self.assertEqual(self.call("/test.Echo/Echo", b"still here", timeout=5),
                             b"still here")
            closed = self.wait_stats(
                lambda st: delta(before, st, "closed_write_timeout") == 1, timeout_s=10)
            self.assertEqual(closed["pending_output_bytes"], 0, closed)
        finally:
            stalled.close()

    def test_a_slow_reader_gets_every_response(self):
        before = self.server.stats()
        client = H2Client(self.server.port)
        try:
            sids = [client.request("/test.Echo/Big", frame(str(self.RESPONSE).encode()),
                                   send=False) for _ in range(20)]
            client.flush()  # one write: the 20 requests reach the server in one read
            for st in client.wait(sids, timeout=30):
                self.assertEqual(grpc_status(st), ("0", ""))
                self.assertEqual(st["data"], frame(b"x" * self.RESPONSE))
        finally:
            client.close()
        after = self.server.stats()
        self.assertEqual(delta(before, after, "Big.OK"), 20)
        # 20 x 200 KiB in one batch pass 256 KiB after the second: the rest waited for it.
        self.assertGreaterEqual(delta(before, after, "output_waits_connection"), 1)
        self.assertEqual(delta(before, after, "closed_write_timeout"), 0)


class WorkerOutputBudgetTests(LimitCase):
    """One worker whose connections together may hold 512 KiB; each alone could hold 1 MiB."""

    RESPONSE = 200 * KIB
    server_args = ("--workers", "1", "--max-pending-bytes", str(MIB),
                   "--max-pending-worker-bytes", str(512 * KIB), "--write-timeout-ms", "60000")

    def test_stalled_readers_share_the_workers_budget_and_a_closed_one_frees_it(self):
        before = self.server.stats()
        first, second = StalledReader(self.server.port), StalledReader(self.server.port)
        try:
            first.send("/test.Echo/Big", str(self.RESPONSE).encode(), 60)
            self.wait_stats(lambda st: delta(before, st, "output_waits_worker") >= 1)
            second.send("/test.Echo/Big", str(self.RESPONSE).encode(), 60)
            both = self.wait_stats(lambda st: delta(before, st, "output_waits_worker") >= 2)
            peak = self.sample_pending(0.5)
            # Two connections, each may pass the shared budget by one response.
            self.assertLessEqual(peak, 512 * KIB + 2 * self.RESPONSE + 32 * KIB, both)
            served = self.server.stats()
            # The first goes away: its output leaves the budget and the second goes on.
            first.close()
            self.wait_stats(lambda st: delta(served, st, "Big.OK") >= 1, timeout_s=10)
            # A connection with nothing unwritten gets its call even while the worker is full.
            self.assertEqual(self.call("/test.Echo/Echo", b"x", timeout=5), b"x")
        finally:
            first.close()
            second.close()


def closed_by_server(sock, timeout):
    """Reads until the server closes `sock`; returns (seconds it took, bytes received)."""
    start = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return time.monotonic() - start, data


class PrefaceTimeoutTests(LimitCase):
    server_args = ("--workers", "1", "--preface-timeout-ms", "1000")

    def test_a_client_that_never_speaks_http2_is_closed(self):
        before = self.server.stats()
        silent = socket.create_connection(("127.0.0.1", self.server.port))
        half = socket.create_connection(("127.0.0.1", self.server.port))
        try:
            half.sendall(PREFACE[:10])  # a preface that never completes
            took, data = closed_by_server(silent, timeout=10)
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 5)
            # The server waits for the client's first bytes to tell HTTP/2 from HTTP/1.1, so
            # a client that sends none is sent nothing before the close.
            self.assertEqual(data, b"", "nothing sent before the client spoke")
            closed_by_server(half, timeout=10)
        finally:
            silent.close()
            half.close()
        after = self.wait_stats(lambda st: delta(before, st, "closed_preface_timeout") == 2)
        self.assertEqual(delta(before, after, "closed_idle_timeout"), 0)

    def test_a_client_that_spoke_is_not_cut_by_it(self):
        with self.server.channel() as ch:
            self.assertEqual(self.call("/test.Echo/Echo", b"a", channel=ch), b"a")
            before = self.server.stats()
            time.sleep(1.6)
            self.assertEqual(self.call("/test.Echo/Echo", b"b", channel=ch), b"b")
            after = self.server.stats()
        # the same connection served both (+1: the Stats call's own channel)
        self.assertEqual(delta(before, after, "connections_opened"), 1)
        self.assertEqual(delta(before, after, "closed_preface_timeout"), 0)


class IdleTimeoutTests(LimitCase):
    server_args = ("--workers", "1", "--idle-timeout-ms", "1000")

    def test_an_idle_connection_gets_goaway_and_the_client_reconnects(self):
        with self.server.channel() as ch:
            self.assertEqual(self.call("/test.Echo/Echo", b"a", channel=ch), b"a")
            before = self.server.stats()
            self.wait_stats(lambda st: delta(before, st, "closed_idle_timeout") >= 1,
                            timeout_s=10)
            # grpcio saw the GOAWAY and connects again for the next call, which succeeds.
            self.assertEqual(self.call("/test.Echo/Echo", b"b", channel=ch), b"b")

    def test_goaway_names_no_error_and_the_last_stream(self):
        raw = RawH2(self.server.port)
        try:
            raw.send_request(1, "/test.Echo/Echo", b"one")
            start = time.monotonic()
            goaway = None
            while (f := raw.next_frame(timeout=10)) is not None:
                if isinstance(f, GoAwayFrame):
                    goaway = f
            self.assertIsNotNone(goaway)
            self.assertEqual((goaway.error_code, goaway.last_stream_id), (0, 1))
            self.assertGreaterEqual(time.monotonic() - start, 0.9)
        finally:
            raw.sock.close()

    def test_a_call_longer_than_the_timeout_keeps_its_connection(self):
        before = self.server.stats()
        with self.server.channel() as ch:
            fut = ch.stream_unary("/test.Echo/LaterSum").future(iter([b"2"]), timeout=30)
            self.wait_stats(lambda st: st.get("later_waiting", 0) >= 1)
            time.sleep(1.8)
            self.assertEqual(self.call("/test.Echo/Release", b"", channel=ch), b"released=1")
            self.assertTrue(fut.result().startswith(b"sum=2 count=1"))
        after = self.server.stats()
        self.assertEqual(delta(before, after, "closed_idle_timeout"), 0, after)


class MaxConnectionAgeTests(LimitCase):
    server_args = ("--workers", "1", "--max-connection-age-ms", "1000",
                   "--max-connection-age-grace-ms", "1500")

    def test_an_old_connection_is_drained_and_its_call_finishes(self):
        raw = RawH2(self.server.port)
        try:
            start = time.monotonic()
            notice = None
            while notice is None:
                f = raw.next_frame(timeout=10)
                self.assertIsNotNone(f, "closed before the drain")
                if isinstance(f, GoAwayFrame):
                    notice = f
            took = time.monotonic() - start
            # 1 s +-10 %, and the tick's quarter second
            self.assertGreaterEqual(took, 0.85)
            self.assertLess(took, 1.6)
            self.assertEqual((notice.error_code, notice.last_stream_id), (0, 2**31 - 1))
            # a request sent before the final GOAWAY is still served
            raw.send_request(1, "/test.Echo/Echo", b"late")
            status = final = None
            while (f := raw.next_frame(timeout=10)) is not None:
                if isinstance(f, HeadersFrame) and f.stream_id == 1 and "grpc-status" in f.headers:
                    status = f.headers["grpc-status"]
                elif isinstance(f, GoAwayFrame):
                    final = f
            self.assertEqual(status, "0")
            self.assertIsNotNone(final)
            self.assertEqual(final.last_stream_id, 1)
        finally:
            raw.sock.close()

    def test_a_call_still_running_after_the_grace_is_cut(self):
        before = self.server.stats()
        with self.server.channel() as ch:
            fut = ch.stream_unary("/test.Echo/LaterSum").future(iter([b"1"]), timeout=30)
            with self.assertRaises(grpc.RpcError) as ctx:
                fut.result(timeout=10)  # never released: cut at age + grace
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
        after = self.server.stats()
        self.assertGreaterEqual(delta(before, after, "closed_max_age"), 1)
        self.assertEqual(delta(before, after, "closed_max_age_grace"), 1)


class MaxConnectionsTests(LimitCase):
    server_args = ("--workers", "1", "--max-connections", "5")

    def test_connections_past_the_limit_wait_until_one_closes(self):
        before = self.server.stats()
        self.assertEqual(before["max_connections"], 5)
        held = [RawH2(self.server.port) for _ in range(5)]
        waiting = None
        try:
            for raw in held:
                self.assertIsInstance(raw.next_frame(timeout=5), SettingsFrame)
            # The sixth connects (the kernel's backlog) but is not accepted: no SETTINGS.
            waiting = RawH2(self.server.port)
            with self.assertRaises(socket.timeout):
                waiting.next_frame(timeout=0.6)
            held.pop().sock.close()
            self.assertIsInstance(waiting.next_frame(timeout=5), SettingsFrame)
            waiting.send_request(1, "/test.Echo/Echo", b"served")
            while not (isinstance(f := waiting.next_frame(timeout=5), DataFrame)):
                self.assertIsNotNone(f)
            self.assertEqual(bytes(f.data), frame(b"served"))
        finally:
            for raw in held + ([waiting] if waiting else []):
                raw.sock.close()
        after = self.wait_stats(lambda st: st["connections_open"] <= 1)
        self.assertGreaterEqual(delta(before, after, "accept_paused_max_connections"), 1)


def grpc_headers(path):
    """A gRPC request's header list: pseudo-headers first, as HTTP/2 requires."""
    return [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
            (":path", path), ("te", "trailers"), ("content-type", "application/grpc")]


REFUSED_STREAM = 0x7
ENHANCE_YOUR_CALM = 0xb


def send_headers(raw, sid, path, extra=(), end_stream=False):
    """HEADERS of a request on a RawH2 connection (its HPACK encoder), nothing else."""
    block = raw.encoder.encode(grpc_headers(path) + list(extra))
    flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
    raw.sock.sendall(HeadersFrame(sid, data=block, flags=flags).serialize())


def frames_until_closed(raw, timeout=10):
    """Every frame the server sends until it closes the connection."""
    out = []
    while (f := raw.next_frame(timeout=timeout)) is not None:
        out.append(f)
    return out


class RefusedStreamTests(LimitCase):
    server_args = ("--workers", "1", "--max-concurrent-streams", "4")

    def test_streams_past_the_limit_are_refused_alone(self):
        before = self.server.stats()
        raw = RawH2(self.server.port)
        try:
            settings = raw.next_frame()
            self.assertIsInstance(settings, SettingsFrame)
            self.assertEqual(settings.settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS), 4)
            for sid in (1, 3, 5, 7):  # four calls the server holds open (suspended)
                raw.send_request(sid, "/test.Echo/LaterSum", b"1")
            self.wait_stats(lambda st: st.get("later_waiting", 0) >= 4)
            raw.send_request(9, "/test.Echo/Echo", b"nine")
            raw.send_request(11, "/test.Echo/Echo", b"eleven")
            refused = set()
            while refused != {9, 11}:
                f = raw.next_frame()
                self.assertIsNotNone(f, "the connection was closed")
                if isinstance(f, RstStreamFrame):
                    self.assertEqual(f.error_code, REFUSED_STREAM)
                    refused.add(f.stream_id)
            self.assertEqual(self.call("/test.Echo/Release", b""), b"released=4")
            answered = set()
            while answered != {1, 3, 5, 7}:
                f = raw.next_frame()
                self.assertIsNotNone(f, "the connection was closed")
                if isinstance(f, HeadersFrame) and f.headers.get("grpc-status") == "0":
                    answered.add(f.stream_id)
            raw.send_request(13, "/test.Echo/Echo", b"thirteen")
            while not (isinstance(f := raw.next_frame(), DataFrame) and f.stream_id == 13):
                self.assertIsNotNone(f)
            self.assertEqual(bytes(f.data), frame(b"thirteen"))
        finally:
            raw.sock.close()
        after = self.server.stats()
        self.assertEqual(delta(before, after, "refused_max_streams"), 2)
        self.assertEqual(delta(before, after, "closed_protocol_faults"), 0)


class HeaderLimitTests(LimitCase):
    server_args = ("--workers", "1", "--max-header-list-bytes", "4096",
                   "--max-header-bytes-per-second", "65536")

    def test_a_header_list_past_the_limit_resets_only_its_stream(self):
        before = self.server.stats()
        raw = RawH2(self.server.port)
        try:
            send_headers(raw, 1, "/test.Echo/Echo", [("x-pad", "p" * 5000)], end_stream=True)
            raw.send_request(3, "/test.Echo/Echo", b"after")
            reset = answer = None
            while reset is None or answer is None:
                f = raw.next_frame()
                self.assertIsNotNone(f, "the connection was closed")
                if isinstance(f, RstStreamFrame) and f.stream_id == 1:
                    reset = f
                elif isinstance(f, DataFrame) and f.stream_id == 3:
                    answer = bytes(f.data)
            self.assertEqual(answer, frame(b"after"))
        finally:
            raw.sock.close()
        after = self.server.stats()
        self.assertEqual(delta(before, after, "refused_header_list"), 1)

    def test_an_hpack_bomb_gets_goaway_and_the_worker_serves_others(self):
        before = self.server.stats()
        raw = RawH2(self.server.port)
        try:
            # One 4000-byte header enters the HPACK table; after that each mention of it is a
            # byte or two on the wire. 20 requests x 3 mentions decode to 240 KB: past the
            # connection's 64 KiB a second, each still under the 4 KiB list limit... once.
            bomb = [("x-bomb", "b" * 1000)]
            for i in range(200):
                send_headers(raw, 1 + 2 * i, "/test.Echo/Echo", bomb * 3, end_stream=True)
            frames = frames_until_closed(raw)
        finally:
            raw.sock.close()
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        self.assertEqual([g.error_code for g in goaways], [ENHANCE_YOUR_CALM])
        self.assertEqual(self.call("/test.Echo/Echo", b"fine", timeout=5), b"fine")
        after = self.server.stats()
        self.assertEqual(delta(before, after, "closed_header_flood"), 1)


class ProtocolFaultTests(LimitCase):
    server_args = ("--workers", "1", "--max-faults-per-second", "10",
                   "--max-resets-per-second", "10")

    def test_an_empty_data_flood_gets_goaway(self):
        before = self.server.stats()
        raw = RawH2(self.server.port)
        try:
            send_headers(raw, 1, "/test.Echo/Sum")
            raw.sock.sendall(DataFrame(1, data=frame(b"5")).serialize())
            # 10 a second, 100 at once: 300 empty frames are past it
            raw.sock.sendall(b"".join(DataFrame(1, data=b"").serialize() for _ in range(300)))
            frames = frames_until_closed(raw)
        finally:
            raw.sock.close()
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        self.assertEqual([g.error_code for g in goaways], [ENHANCE_YOUR_CALM])
        after = self.wait_stats(lambda st: st["sum_live"] == 0)
        self.assertEqual(delta(before, after, "closed_protocol_faults"), 1)
        self.assertEqual(delta(before, after, "sum_aborts"), 1)  # the open call let go

    def test_a_rapid_reset_flood_gets_goaway(self):
        raw = RawH2(self.server.port)
        try:
            data = b""
            for i in range(300):
                sid = 1 + 2 * i
                data += HeadersFrame(sid, data=raw.encoder.encode(grpc_headers("/test.Echo/Echo")),
                                     flags=["END_HEADERS"]).serialize()
                data += RstStreamFrame(sid, error_code=0x8).serialize()  # CANCEL
            raw.sock.sendall(data)
            frames = frames_until_closed(raw)
        finally:
            raw.sock.close()
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        self.assertEqual(len(goaways), 1)
        self.assertNotEqual(goaways[0].error_code, 0)
        # Past 100 (ten seconds' worth at 10 a second) the rest were not served.
        self.assertLess(goaways[0].last_stream_id, 2 * 150)
        self.assertEqual(self.call("/test.Echo/Echo", b"fine", timeout=5), b"fine")


if __name__ == "__main__":
    unittest.TestCase.maxDiff = None
    main()
