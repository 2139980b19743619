#!/usr/bin/python3
"""The transport's resource limits (daemon/grpc/) against grpc_test_server, with real clients.

A client that sends requests and never reads its responses is a raw socket (StalledReader):
no stock client can be told to stop reading. Each test asserts the refusal or the bound, that
a well-behaved client on the same worker is still served, and the counter that shows it.

    /usr/bin/python3 test_grpc_limits.py --server build/tests/grpc_test_server [Class ...]
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

from grpc_harness import H2Client, ServerCase, delta, frame, grpc_status, main  # noqa: E402
from h2raw import StalledReader  # noqa: E402

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


if __name__ == "__main__":
    unittest.TestCase.maxDiff = None
    main()
