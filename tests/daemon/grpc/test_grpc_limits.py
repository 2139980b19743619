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
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, SettingsFrame

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

from grpc_harness import (H2Client, RawH2, ServerCase, delta, frame, frame_types,  # noqa: E402
                          grpc_status, main)
from h2raw import PREFACE, StalledReader  # noqa: E402

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
            self.assertEqual(frame_types(data)[:1], [4], "the server's SETTINGS came first")
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


if __name__ == "__main__":
    unittest.TestCase.maxDiff = None
    main()
