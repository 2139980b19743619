#!/usr/bin/python3
"""Integration tests of the gRPC transport (daemon/grpc/) against grpc_test_server.

Real clients only: grpcio (Debian's python3-grpcio) for what a stock gRPC client does, and
the h2 library for the HTTP/2 requests grpcio cannot be made to send (several calls in one
write, wrong content-types, two messages in a unary call, a compressed flag, ...). Messages
are raw bytes, so no .proto is needed.

    /usr/bin/python3 test_grpc_transport.py --server build/tests/grpc_test_server [Class ...]

Each class starts its own server (port 0, the port read from its "port=N" line). A server
that exits non-zero or prints a sanitizer report fails the class.
"""
import queue
import random
import signal
import socket
import subprocess
import threading
import time
import unittest

import grpc
import grpc_harness
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, PingFrame

from grpc_harness import (LIMIT, START_TIMEOUT_S, H2Client, Server, ServerCase, delta, frame,
                          frame_types, grpc_status, main, parse_stats,
                          read_until_closed)
from h2raw import RawH2  # tests/lib, on the path grpc_harness set


class TransportTests(ServerCase):
    def test_echo_sizes_up_to_the_limit(self):
        rng = random.Random(7)
        for size in (0, 1, 1 << 20, LIMIT - 1, LIMIT):
            msg = rng.randbytes(size)
            self.assertEqual(self.call("/test.Echo/Echo", msg), msg, f"size {size}")

    def test_message_over_the_limit_is_resource_exhausted(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("/test.Echo/Echo", b"x" * (LIMIT + 1))
        self.assertCode(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn(str(LIMIT + 1), ctx.exception.details())
        self.assertIn(f"limit of {LIMIT} bytes", ctx.exception.details())
        # The connection survives it.
        self.assertEqual(self.call("/test.Echo/Echo", b"after"), b"after")

    def test_oversized_prefix_is_answered_before_the_body_arrives(self):
        # 100 MiB declared, 3 bytes sent, stream left open: only an answer on the prefix
        # (not after buffering) can arrive; then RST_STREAM(NO_ERROR) stops the upload.
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Echo", (100 << 20).to_bytes(5, "big") + b"abc",
                        end_stream=False)
        (st,) = c.wait([sid], timeout=5, for_reset=True)
        code, message = grpc_status(st)
        self.assertEqual(code, "8")
        self.assertIn(f"{100 << 20} bytes exceeds the limit of {LIMIT} bytes", message)
        self.assertEqual(st["reset"], 0)  # NO_ERROR
        c.close()

    def test_connection_budget_bounds_partial_requests(self):
        # Sixteen 4 MiB requests begun and left open fill one connection's 64 MiB budget; the
        # seventeenth is refused at its prefix instead of growing the server's memory.
        c = H2Client(self.server.port)
        partial = LIMIT.to_bytes(5, "big") + b"x"
        open_sids = [c.request("/test.Echo/Echo", partial, end_stream=False) for _ in range(16)]
        over = c.request("/test.Echo/Echo", partial, end_stream=False)
        (st,) = c.wait([over], timeout=10, for_reset=True)
        code, message = grpc_status(st)
        self.assertEqual(code, "8")
        self.assertIn("budget of 67108864 bytes", message)
        self.assertTrue(all(c.streams[s]["headers"] is None for s in open_sids))
        # Resetting them gives the budget back: a full-size message fits again.
        for sid in open_sids:
            c.conn.reset_stream(sid)
        msg = bytes(range(256)) * (LIMIT // 256)
        sid = c.request("/test.Echo/Echo", frame(msg))
        (st,) = c.wait([sid], timeout=30)
        self.assertEqual(grpc_status(st)[0], "0")
        self.assertEqual(st["data"], frame(msg))
        c.close()

    def test_unknown_method_is_unimplemented_naming_the_path(self):
        for path in ("/test.Echo/Nope", "/no.Such/Service"):
            with self.assertRaises(grpc.RpcError) as ctx:
                self.call(path, b"x")
            self.assertCode(ctx, grpc.StatusCode.UNIMPLEMENTED)
            self.assertIn(path, ctx.exception.details())

    def test_every_code_arrives_with_its_message(self):
        for code in grpc.StatusCode:
            if code == grpc.StatusCode.OK:
                continue
            number = code.value[0]
            with self.assertRaises(grpc.RpcError) as ctx:
                self.call("/test.Echo/Fail", bytes([number]) + f"boom {number}".encode())
            self.assertCode(ctx, code)
            self.assertEqual(ctx.exception.details(), f"boom {number}")

    def test_messages_are_percent_encoded(self):
        message = "100% sûr, ✓ «done»\n\ttab %41 and ~"
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("/test.Echo/Fail", bytes([9]) + message.encode())
        self.assertCode(ctx, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(ctx.exception.details(), message)
        # On the wire: only printable ASCII, '%' itself escaped.
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Fail", frame(bytes([9]) + "100% ✓".encode()))
        (st,) = c.wait([sid])
        self.assertEqual(grpc_status(st), ("9", "100%25 %E2%9C%93"))
        c.close()

    def test_client_deadline(self):
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("/test.Echo/Sleep", b"200", timeout=0.05)
        self.assertCode(ctx, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - start, 0.19)

    def test_deadline_passed_while_queued_is_answered_without_the_handler(self):
        before = self.server.stats()
        c = H2Client(self.server.port)
        # One write, so the server reads all eleven requests in one batch: the ten 20 ms
        # calls wait behind the 100 ms one and must not reach their handler afterwards.
        sleep_sid = c.request("/test.Echo/Sleep", frame(b"100"), send=False)
        sids = [c.request("/test.Echo/Echo", frame(b"late"), headers=[("grpc-timeout", "20m")],
                          send=False) for _ in range(10)]
        c.flush()
        states = c.wait([sleep_sid] + sids)
        self.assertEqual(grpc_status(states[0])[0], "0")
        self.assertEqual(states[0]["data"], frame(b"slept"))
        for st in states[1:]:
            code, message = grpc_status(st)
            self.assertEqual(code, "4", message)
            self.assertIn("before the call was dispatched", message)
            self.assertEqual(st["data"], b"")
        after = self.server.stats()
        self.assertEqual(delta(before, after, "Echo.deadline_before_dispatch"), 10)
        self.assertEqual(delta(before, after, "Echo.DEADLINE_EXCEEDED"), 10)
        self.assertEqual(delta(before, after, "Echo.OK"), 0)
        c.close()

    def test_grpc_timeout_within_budget_is_served(self):
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Echo", frame(b"on time"), headers=[("grpc-timeout", "5S")])
        (st,) = c.wait([sid])
        self.assertEqual(grpc_status(st)[0], "0")
        self.assertEqual(st["data"], frame(b"on time"))
        c.close()

    def test_malformed_grpc_timeout_is_rejected(self):
        c = H2Client(self.server.port)
        for value in ("1x", "123456789S", "-1S", "1.5S", "S"):
            sid = c.request("/test.Echo/Echo", frame(b"x"), headers=[("grpc-timeout", value)])
            (st,) = c.wait([sid])
            code, message = grpc_status(st)
            self.assertEqual(code, "13", value)
            self.assertIn("grpc-timeout", message)
        c.close()

    def test_not_http2_closes_only_that_connection(self):
        before = self.server.stats()
        self.assertEqual(self.call("/test.Echo/Echo", b"before"), b"before")
        # An HTTP/1.1 request is served as HTTP/1.1 (this server has no HTTP/1.1 method: 404);
        # bytes that are neither protocol get 400 and the close.
        cases = [(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                  b"HTTP/1.1 404 "),
                 (b"\x00" + random.Random(3).randbytes(300), b"HTTP/1.1 400 ")]
        for payload, answer in cases:
            sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            sock.sendall(payload)
            data = read_until_closed(sock)
            sock.close()
            self.assertTrue(data.startswith(answer), data[:100])
            self.assertNotIn(b"\x00\x00\x00\x04", data[:9], "no HTTP/2 frame for HTTP/1")
            # The channel opened before keeps working through it.
            self.assertEqual(self.call("/test.Echo/Echo", b"during"), b"during")
        after = self.server.stats()
        self.assertEqual(delta(before, after, "protocol_errors"), 1)

    def test_connection_error_after_the_preface_sends_goaway(self):
        before = self.server.stats()
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
        data_on_stream_0 = bytes.fromhex("000001000000000000") + b"x"
        sock.sendall(preface + data_on_stream_0)
        data = read_until_closed(sock)
        sock.close()
        self.assertIn(7, frame_types(data))
        self.assertEqual(delta(before, self.server.stats(), "protocol_errors"), 1)

    def test_wrong_content_type_is_415(self):
        c = H2Client(self.server.port)
        for ctype in ("text/plain", "application/grpc+json", None):
            sid = c.request("/test.Echo/Echo", frame(b"x"), content_type=ctype)
            (st,) = c.wait([sid])
            self.assertEqual(st["headers"][":status"], "415", ctype)
        sid = c.request("/test.Echo/Echo", frame(b"x"), content_type="application/grpc+proto")
        (st,) = c.wait([sid])
        self.assertEqual(grpc_status(st)[0], "0")
        c.close()

    def test_method_other_than_post_is_405(self):
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Echo", method="GET")
        (st,) = c.wait([sid])
        self.assertEqual(st["headers"][":status"], "405")
        c.close()

    def test_unary_needs_exactly_one_message(self):
        c = H2Client(self.server.port)
        none = c.request("/test.Echo/Echo", b"")
        two = c.request("/test.Echo/Echo", frame(b"a") + frame(b"b"))
        states = c.wait([none, two])
        for st in states:
            code, message = grpc_status(st)
            self.assertEqual(code, "12")
            self.assertIn("exactly one message", message)
        c.close()

    def test_compressed_message_is_unimplemented(self):
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Echo", frame(b"zzz", flags=1),
                        headers=[("grpc-encoding", "gzip")])
        (st,) = c.wait([sid])
        code, message = grpc_status(st)
        self.assertEqual(code, "12")
        self.assertIn("compression not supported", message)
        self.assertEqual(st["headers"].get("grpc-accept-encoding"), "identity")
        c.close()

    def test_truncated_message_is_internal(self):
        c = H2Client(self.server.port)
        sid = c.request("/test.Echo/Echo", frame(b"0123456789")[:8])
        (st,) = c.wait([sid])
        code, message = grpc_status(st)
        self.assertEqual(code, "13")
        self.assertIn("3 of 10 bytes", message)
        c.close()

    def test_handler_that_does_not_reply_gets_internal(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("/test.Echo/NoReply", b"x")
        self.assertCode(ctx, grpc.StatusCode.INTERNAL)
        self.assertIn("without finishing", ctx.exception.details())

    def test_worker_context_reaches_handlers(self):
        reply = self.call("/test.Echo/WorkerInfo", b"").decode()
        fields = dict(kv.split("=") for kv in reply.split())
        self.assertIn(fields["worker"], ("0", "1"))
        self.assertGreaterEqual(int(fields["calls"]), 1)

    def test_client_streaming_sum(self):
        total = self.channel.stream_unary("/test.Echo/Sum")
        self.assertEqual(total(iter([b"1", b"2", b"39"]), timeout=10), b"sum=42 count=3")
        self.assertEqual(total(iter([]), timeout=10), b"sum=0 count=0")
        many = [str(i).encode() for i in range(1000)]
        self.assertEqual(total(iter(many), timeout=30), b"sum=499500 count=1000")

    def test_client_streaming_handler_fails_early(self):
        total = self.channel.stream_unary("/test.Echo/Sum")
        with self.assertRaises(grpc.RpcError) as ctx:
            total(iter([b"1", b"2", b"fail", b"3"]), timeout=10)
        self.assertCode(ctx, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(ctx.exception.details(), "told to fail after 2 messages")

    def test_client_streaming_abort_paths(self):
        before = self.server.stats()
        total = self.channel.stream_unary("/test.Echo/Sum")
        # The transport rejects a message mid-stream: the handler's state goes via on_abort.
        with self.assertRaises(grpc.RpcError) as ctx:
            total(iter([b"1", b"x" * (LIMIT + 1)]), timeout=10)
        self.assertCode(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The client cancels mid-stream.
        gate = threading.Event()
        def requests():
            yield b"5"
            gate.wait(10)
        fut = total.future(requests(), timeout=30)
        time.sleep(0.3)
        fut.cancel()
        gate.set()
        deadline = time.monotonic() + 10
        while True:
            after = self.server.stats()
            if delta(before, after, "sum_aborts") >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(delta(before, after, "sum_aborts"), 2)
        self.assertEqual(after["sum_live"], 0)
        self.assertEqual(delta(before, after, "Sum.CANCELLED"), 1)

    def test_suspended_call_is_finished_by_another_thread_on_its_worker(self):
        before = self.server.stats()
        later = self.channel.stream_unary("/test.Echo/LaterSum")
        fut = later.future(iter([b"20", b"22"]), timeout=30)
        self.wait_stats(lambda s: s.get("later_waiting", 0) >= 1)
        # While the call waits for the other thread, its worker serves the same connection.
        self.assertEqual(self.call("/test.Echo/Echo", b"meanwhile"), b"meanwhile")
        self.assertFalse(fut.done())
        self.assertEqual(self.call("/test.Echo/Release", b""), b"released=1")
        self.assertEqual(fut.result(), b"sum=42 count=2 same_worker=yes")
        after = self.wait_stats(lambda s: s.get("sum_live") == before.get("sum_live"))
        self.assertEqual(delta(before, after, "LaterSum.OK"), 1)
        self.assertEqual(delta(before, after, "later_orphans"), 0)

    def test_suspended_call_reset_by_the_client_resumes_without_it(self):
        before = self.server.stats()
        later = self.channel.stream_unary("/test.Echo/LaterSum")
        fut = later.future(iter([b"1"]), timeout=30)
        self.wait_stats(lambda s: s.get("later_waiting", 0) >= 1)
        fut.cancel()
        self.wait_stats(lambda s: delta(before, s, "LaterSum.CANCELLED") == 1)
        self.assertEqual(self.call("/test.Echo/Release", b""), b"released=1")
        # The resume ran with no call (on_abort did not: the handler had given the call up).
        after = self.wait_stats(lambda s: delta(before, s, "later_orphans") == 1)
        self.assertEqual(delta(before, after, "sum_aborts"), 0)
        self.wait_stats(lambda s: s.get("sum_live") == before.get("sum_live"))

    def test_connection_counters(self):
        before = self.server.stats()
        ch = self.server.channel()
        self.assertEqual(self.call("/test.Echo/Echo", b"x", channel=ch), b"x")
        mid = self.server.stats()
        ch.close()
        # +1 for ch, +1 for the Stats call's own channel.
        self.assertEqual(delta(before, mid, "connections_opened"), 2)
        deadline = time.monotonic() + 10
        while True:
            after = self.server.stats()
            # Only the Stats call's own connection is still open, beyond what was before.
            if after["connections_open"] <= before["connections_open"] + 1:
                break
            self.assertLess(time.monotonic(), deadline, after)
            time.sleep(0.05)

    def test_second_server_on_the_same_port_fails(self):
        proc = subprocess.run([grpc_harness.SERVER, "--port", str(self.server.port)], capture_output=True,
                              timeout=START_TIMEOUT_S)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"bind 127.0.0.1:{self.server.port}: Address already in use",
                      proc.stderr.decode())


class ConcurrencyTests(ServerCase):
    """Many streams and connections on two workers; the run TSan instruments."""

    def test_500_concurrent_calls_on_one_channel(self):
        before = self.server.stats()
        rng = random.Random(11)
        with self.server.channel() as ch:
            echo = ch.unary_unary("/test.Echo/Echo")
            msgs = [i.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 2048))
                    for i in range(500)]
            futures = [echo.future(m, timeout=60) for m in msgs]
            for m, f in zip(msgs, futures):
                self.assertEqual(f.result(), m)
        after = self.server.stats()
        # One channel, one connection (+1 for the Stats call's own channel).
        self.assertEqual(delta(before, after, "connections_opened"), 2)

    def test_20_channels_times_50_calls(self):
        channels = [self.server.channel() for _ in range(20)]
        try:
            futures = []
            for c, ch in enumerate(channels):
                echo = ch.unary_unary("/test.Echo/Echo")
                for i in range(50):
                    msg = f"{c}:{i}".encode() * (i + 1)
                    futures.append((msg, echo.future(msg, timeout=60)))
            for msg, f in futures:
                self.assertEqual(f.result(), msg)
            # SO_REUSEPORT spread the 20 connections over both workers (all on one: 2^-19).
            workers = {self.call("/test.Echo/WorkerInfo", b"", channel=ch).split()[0]
                       for ch in channels}
            self.assertEqual(workers, {b"worker=0", b"worker=1"})
        finally:
            for ch in channels:
                ch.close()

    def test_streaming_and_unary_interleaved(self):
        with self.server.channel() as ch:
            total = ch.stream_unary("/test.Echo/Sum")
            echo = ch.unary_unary("/test.Echo/Echo")
            sums = [total.future(iter([str(j).encode() for j in range(i + 1)]), timeout=60)
                    for i in range(30)]
            echoes = [echo.future(b"e" * i, timeout=60) for i in range(200)]
            for i, f in enumerate(sums):
                self.assertEqual(f.result(), f"sum={i * (i + 1) // 2} count={i + 1}".encode())
            for i, f in enumerate(echoes):
                self.assertEqual(f.result(), b"e" * i)


class ShutdownTests(unittest.TestCase):
    def test_graceful_shutdown_finishes_calls_in_flight(self):
        server = Server("--workers", "2")
        ch = server.channel()
        try:
            self.assertEqual(ch.unary_unary("/test.Echo/Echo")(b"up", timeout=10), b"up")
            sleep = ch.unary_unary("/test.Echo/Sleep")
            futures = [sleep.future(b"300", timeout=30) for _ in range(5)]
            time.sleep(0.05)
            server.proc.send_signal(signal.SIGTERM)
            for f in futures:
                self.assertEqual(f.result(), b"slept")
            rc, out = server.stop()
        finally:
            ch.close()
        self.assertEqual(rc, 0, out)
        stats = parse_stats(out)
        self.assertEqual(stats.get("Sleep.OK"), 5, out)
        self.assertIn("workers_inited=2 workers_deinited=2", out)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5)

    def test_graceful_shutdown_waits_for_an_open_stream(self):
        # A client stream still sending when SIGTERM arrives finishes normally; a new call
        # afterwards is refused (the listener is closed, the connection draining).
        server = Server("--workers", "2")
        ch = server.channel()
        more = queue.Queue()
        def requests():
            while (item := more.get(timeout=30)) is not None:
                yield item
        try:
            fut = ch.stream_unary("/test.Echo/Sum").future(requests(), timeout=30)
            more.put(b"1")
            time.sleep(0.2)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            more.put(b"2")
            more.put(None)
            self.assertEqual(fut.result(), b"sum=3 count=2")
            with self.assertRaises(grpc.RpcError) as ctx:
                ch.unary_unary("/test.Echo/Echo")(b"late", timeout=5)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
            rc, out = server.stop()
        finally:
            more.put(None)
            ch.close()
        self.assertEqual(rc, 0, out)
        self.assertEqual(parse_stats(out).get("Sum.OK"), 1, out)

    def test_drain_serves_requests_sent_before_the_ping_ack(self):
        # GOAWAY(2^31-1) and a PING first; a request the client sends before it acks must
        # still be served, and the final GOAWAY (sent on the ack) names it as the last stream.
        server = Server("--workers", "1")
        raw = RawH2(server.port)
        try:
            raw.send_request(1, "/test.Echo/Echo", b"one")
            while not ((f := raw.next_frame()) and isinstance(f, HeadersFrame)
                       and "END_STREAM" in f.flags):
                pass
            self.assertEqual(f.headers.get("grpc-status"), "0")
            server.proc.send_signal(signal.SIGTERM)
            notice = ping = None
            while notice is None or ping is None:
                f = raw.next_frame()
                self.assertIsNotNone(f, "closed before the drain handshake")
                if isinstance(f, GoAwayFrame):
                    notice = f
                elif isinstance(f, PingFrame) and "ACK" not in f.flags:
                    ping = f
            noticed_at = time.monotonic()
            self.assertEqual(notice.last_stream_id, 2**31 - 1)
            self.assertEqual(notice.error_code, 0)
            raw.send_request(3, "/test.Echo/Echo", b"three")
            raw.sock.sendall(PingFrame(0, opaque_data=ping.opaque_data, flags=["ACK"]).serialize())
            status = data = final = None
            while (f := raw.next_frame()) is not None:
                if isinstance(f, DataFrame) and f.stream_id == 3:
                    data = bytes(f.data)
                elif isinstance(f, HeadersFrame) and f.stream_id == 3 and "grpc-status" in f.headers:
                    status = f.headers["grpc-status"]
                elif isinstance(f, GoAwayFrame):
                    final = f
                    final_at = time.monotonic()
            self.assertEqual((status, data), ("0", frame(b"three")))
            self.assertIsNotNone(final, "no final GOAWAY")
            self.assertEqual(final.last_stream_id, 3)
            # Sent on the ack, not by the 250 ms fallback timer.
            self.assertLess(final_at - noticed_at, 0.2)
        finally:
            raw.sock.close()
            rc, out = server.stop()
        self.assertEqual(rc, 0, out)

    def test_idle_connections_do_not_delay_shutdown(self):
        server = Server("--workers", "2")
        channels = [server.channel() for _ in range(4)]
        try:
            for ch in channels:
                self.assertEqual(ch.unary_unary("/test.Echo/Echo")(b"x", timeout=10), b"x")
            start = time.monotonic()
            rc, out = server.stop()
            elapsed = time.monotonic() - start
        finally:
            for ch in channels:
                ch.close()
        self.assertEqual(rc, 0, out)
        # Idle grpcio channels never ack the drain PING: the 250 ms fallback sends the final
        # GOAWAY, long before the 5 s shutdown timeout.
        self.assertLess(elapsed, 0.9, out)

    def test_shutdown_with_a_suspended_call_frees_it_after_the_workers_stop(self):
        server = Server("--workers", "1", "--shutdown-timeout-ms", "300")
        ch = server.channel()
        try:
            fut = ch.stream_unary("/test.Echo/LaterSum").future(iter([b"7"]), timeout=30)
            deadline = time.monotonic() + 10
            while server.stats().get("later_waiting", 0) < 1:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            rc, out = server.stop()  # never released: the shutdown timeout cuts it
            with self.assertRaises(grpc.RpcError) as ctx:
                fut.result(timeout=10)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            ch.close()
        self.assertEqual(rc, 0, out)  # 3 would mean a suspended call's state leaked
        stats = parse_stats(out)
        self.assertEqual(stats.get("later_orphans"), 1, out)
        self.assertEqual(stats.get("sum_live"), 0, out)

    def test_shutdown_timeout_cuts_calls_that_never_finish(self):
        server = Server("--workers", "2", "--shutdown-timeout-ms", "300")
        ch = server.channel()
        gate = threading.Event()
        def requests():
            yield b"1"
            gate.wait(30)  # never half-closes until the test is over
        try:
            fut = ch.stream_unary("/test.Echo/Sum").future(requests(), timeout=30)
            time.sleep(0.3)
            start = time.monotonic()
            rc, out = server.stop()
            elapsed = time.monotonic() - start
            with self.assertRaises(grpc.RpcError) as ctx:
                fut.result(timeout=10)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            gate.set()
            ch.close()
        self.assertEqual(rc, 0, out)
        self.assertLess(elapsed, 3)
        stats = parse_stats(out)
        self.assertEqual(stats.get("sum_aborts"), 1, out)
        self.assertEqual(stats.get("sum_live"), 0, out)


if __name__ == "__main__":
    main()
