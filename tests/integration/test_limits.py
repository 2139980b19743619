"""fsd's resource limits against misbehaving clients, with the real daemon.

Each test asserts the bound, that a well-behaved client is served meanwhile, and the metric
that shows the refusal. Raw HTTP/2 clients (tests/lib/h2raw.py) do what grpcio cannot be made
to do; grpcio is the well-behaved client.
"""
import os
import select
import socket
import subprocess
import sys
import time
import unittest

import grpc
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import pb, scrape  # noqa: E402
from h2raw import PREFACE, RawH2, StalledReader, grpc_message  # noqa: E402

MIB = 1024 * 1024
FEATURES = 10
GET_FEATURES = h.SERVICE + "GetFeatures"

CONFIG = """  write_timeout: 2s
views:
  - name: v
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
""" + "".join(f"      - {{name: f{i}, type: double, default: zero}}\n" for i in range(FEATURES))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class StalledReadersTest(unittest.TestCase):
    """Two connections that ask for ~1 MB responses and never read them."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        if rc != 0:
            raise AssertionError(f"fsd exited {rc}")

    def test_their_memory_is_bounded_and_they_are_closed_after_write_timeout(self):
        # 10,000 entities x 10 doubles, every one a default: a response of about 1 MB. The
        # budget is asked for in the request, so the calls do not time out while they wait.
        request = pb.GetFeaturesRequest(
            features=["v:*"], keys=h.keys(id=list(range(10000))), budget_us=10_000_000)
        response = self.fsd.get(request)
        self.assertGreater(response.ByteSize(), 900_000)
        before = scrape(self.port)
        rss_before = rss_bytes(self.fsd.proc.pid)
        readers = [StalledReader(self.fsd.port) for _ in range(2)]
        try:
            for r in readers:
                r.send(GET_FEATURES, request.SerializeToString(), 300)  # ~300 MB each asked
            deadline = time.monotonic() + 10
            while scrape(self.port).delta(before, "fsd_grpc_output_budget_waits_total",
                                          budget="connection") < 2:
                self.assertLess(time.monotonic(), deadline, "the readers were never parked")
                time.sleep(0.05)
            peak = 0
            for _ in range(20):
                peak = max(peak, rss_bytes(self.fsd.proc.pid) - rss_before)
                time.sleep(0.05)
            # Each holds its 4 MiB budget, one response past it and its parked requests'
            # 30 KB each: tens of MiB, where unbounded they would take 600 MB.
            self.assertLess(peak, 128 * MIB, f"RSS grew by {peak / MIB:.0f} MiB")
            # A client that reads is served at once.
            small = self.fsd.get(pb.GetFeaturesRequest(features=["v:f0"], keys=h.keys(id=[1])))
            self.assertEqual(small.entities, 1)
            deadline = time.monotonic() + 15
            while True:
                m = scrape(self.port)
                if m.delta(before, "fsd_grpc_connections_closed_total",
                           reason="write_timeout") == 2:
                    break
                self.assertLess(time.monotonic(), deadline, "not closed after write_timeout")
                time.sleep(0.1)
            self.assertEqual(m.get("fsd_grpc_pending_output_bytes"), 0)
            self.fsd.wait_for_log('msg="grpc connection closed" .*reason=write_timeout')
            # Closed with a reset: the readers see it without reading a byte, and the kernel
            # keeps nothing of them (a plain close would leave each socket in FIN-WAIT-1 behind
            # megabytes of unsent responses, the FIN never reaching the client).
            for r in readers:
                poller = select.poll()
                poller.register(r.sock, select.POLLHUP | select.POLLERR | select.POLLRDHUP)
                self.assertTrue(poller.poll(2000), "the client never saw the close")
                local = r.sock.getsockname()[1]
                left = subprocess.run(
                    ["ss", "-Htn", "state", "all", f"( sport = :{self.fsd.port} and "
                     f"dport = :{local} )"], capture_output=True, text=True, check=True).stdout
                self.assertEqual(left.strip(), "", "fsd's side of the socket is still there")
        finally:
            for r in readers:
                r.close()


class StalledProtocolBreakerTest(unittest.TestCase):
    """A stalled reader that then breaks the protocol, with a write timeout too long to
    matter."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG.replace("write_timeout: 2s", "write_timeout: 60s"))
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        if rc != 0:
            raise AssertionError(f"fsd exited {rc}")

    def test_a_reader_that_breaks_the_protocol_is_reset_after_the_linger(self):
        # A connection closed for a protocol error lingers (GRPC_LINGER_MS, 1 s) so the client
        # can read the GOAWAY. This client has read nothing: two responses of ~100 KB sit in
        # fsd's socket behind its closed receive window (fsd itself holds nothing unwritten,
        # so no write timeout applies). After the linger the socket is reset; a plain close
        # would leave it in FIN-WAIT-1 behind those bytes and the client would never know.
        request = pb.GetFeaturesRequest(features=["v:*"], keys=h.keys(id=list(range(1000))),
                                        budget_us=10_000_000)  # ASan builds are slow
        before = scrape(self.port)
        r = StalledReader(self.fsd.port)
        try:
            r.send(GET_FEATURES, request.SerializeToString(), 2)
            deadline = time.monotonic() + 10
            while scrape(self.port).delta(before, "fsd_requests_total",
                                          method="GetFeatures", code="OK") < 2:
                self.assertLess(time.monotonic(), deadline, "the calls were never answered")
                time.sleep(0.05)
            r.sock.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x03")  # SETTINGS on stream 3
            started = time.monotonic()
            poller = select.poll()
            poller.register(r.sock, select.POLLHUP | select.POLLERR | select.POLLRDHUP)
            self.assertTrue(poller.poll(5000), "the client never saw the close")
            self.assertLess(time.monotonic() - started, 3)
            m = scrape(self.port)
            self.assertEqual(m.delta(before, "fsd_grpc_protocol_errors_total"), 1)
            self.assertEqual(m.delta(before, "fsd_grpc_connections_closed_total",
                                     reason="write_timeout"), 0)
        finally:
            r.close()


class ConnectionFloodTest(unittest.TestCase):
    """fsd with 300 file descriptors, and more connections than that."""

    NOFILE = 300
    LIMIT = NOFILE - 128  # max_connections' default: the limit less the reserve

    def test_the_stats_port_answers_and_waiting_clients_get_in_when_others_leave(self):
        fsd = h.Fsd("views: []\n", nofile=self.NOFILE)
        port = h.stats_port(fsd)
        flood = []
        try:
            self.assertEqual(scrape(port).get("fsd_grpc_max_connections"), self.LIMIT)
            before = scrape(port)
            for _ in range(self.NOFILE + 100):  # past the descriptors fsd has at all
                s = socket.create_connection(("127.0.0.1", fsd.port))
                s.sendall(PREFACE + SettingsFrame(0).serialize())
                flood.append(s)
            deadline = time.monotonic() + 10
            while (m := scrape(port)).get("fsd_grpc_connections_open") < self.LIMIT:
                self.assertLess(time.monotonic(), deadline, m.text)
                time.sleep(0.05)
            # The descriptors kept in reserve: health and metrics still answer.
            status, _, body = h.http_request(port, "/healthz")
            self.assertEqual((status, body), (200, b"ok\n"))
            m = scrape(port)
            self.assertEqual(m.get("fsd_grpc_connections_open"), self.LIMIT)
            self.assertGreaterEqual(m.delta(before, "fsd_grpc_accept_pauses_total",
                                            reason="max_connections"), 1)
            self.assertEqual(m.get("fsd_grpc_accept_pauses_total", reason="fd_limit"), 0)
            # Most of the flood leaves: the rest is accepted, and a real client queued behind
            # it gets in and is served.
            for s in flood[:300]:
                s.close()
            del flood[:300]
            resp = fsd.health()
            self.assertEqual(resp.status, 1)  # SERVING
        finally:
            for s in flood:
                s.close()
            rc = fsd.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(any("grpc accept paused" in line and "reason=max_connections" in line
                            for line in fsd.log()))


class RequestCostTest(unittest.TestCase):
    """What a request may make fsd do before it is refused."""

    @classmethod
    def setUpClass(cls):
        features = "".join(f"      - {{name: d{i}, type: double}}\n" for i in range(100))
        cls.fsd = h.Fsd("""views:
  - name: wide
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
""" + features)
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        if cls.fsd.stop() != 0:
            raise AssertionError("fsd did not exit cleanly")

    def assertRefused(self, code, fragment, request):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.get(request, timeout=30)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertIn(fragment, ctx.exception.details())

    def test_an_amplifying_request_is_refused_before_any_lookup(self):
        # 32 KiB asking for 800 x 100 columns of 10,000 entities: the refs are served once
        # each, and the least the response could take (10,000 x 100 x 9 bytes) is refused.
        request = pb.GetFeaturesRequest(features=["wide:*"] * 800,
                                        keys=h.keys(id=list(range(10000))),
                                        budget_us=10_000_000)
        self.assertLess(request.ByteSize(), 64 * 1024)
        before = scrape(self.port)
        rss_before = rss_bytes(self.fsd.proc.pid)
        self.assertRefused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           "would take at least 9000000 bytes (10000 entities x 100 features)",
                           request)
        self.assertLess(rss_bytes(self.fsd.proc.pid) - rss_before, 32 * MIB)
        after = scrape(self.port)
        self.assertEqual(after.delta(before, "fsd_view_lookups_total", view="wide"), 0)

    def test_refs_asked_for_twice_are_served_once(self):
        resp = self.fsd.get(pb.GetFeaturesRequest(features=["wide:d1", "wide:*", "wide:d1"],
                                                  keys=h.keys(id=[1])))
        names = [c.name for c in resp.columns]
        self.assertEqual(names[0], "wide:d1")
        self.assertEqual(sorted(names), sorted(f"wide:d{i}" for i in range(100)))

    def test_too_large_a_batch_is_invalid_whatever_the_budget(self):
        self.assertRefused(grpc.StatusCode.INVALID_ARGUMENT,
                           "batch of 10001 entities exceeds the limit of 10000",
                           pb.GetFeaturesRequest(features=["wide:d0"],
                                                 keys=h.keys(id=list(range(10001))),
                                                 budget_us=1))

    def test_a_slow_upload_does_not_spend_the_latency_budget(self):
        # The request's 50 ms budget counts from its last byte, not its HEADERS: the first
        # half arrives, then the rest 300 ms later.
        request = pb.GetFeaturesRequest(features=["wide:d0"], keys=h.keys(id=[1]),
                                        budget_us=50_000).SerializeToString()
        raw = RawH2(self.fsd.port)
        try:
            headers = [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                       (":path", GET_FEATURES), ("te", "trailers"),
                       ("content-type", "application/grpc")]
            body = grpc_message(request)
            raw.sock.sendall(HeadersFrame(1, data=raw.encoder.encode(headers),
                                          flags=["END_HEADERS"]).serialize() +
                             DataFrame(1, data=body[:4]).serialize())
            time.sleep(0.3)
            raw.sock.sendall(DataFrame(1, data=body[4:], flags=["END_STREAM"]).serialize())
            status = None
            while status is None:
                f = raw.next_frame(timeout=10)
                self.assertIsNotNone(f, "closed")
                if isinstance(f, HeadersFrame) and "grpc-status" in f.headers:
                    status = (f.headers["grpc-status"], f.headers.get("grpc-message", ""))
            self.assertEqual(status, ("0", ""))
        finally:
            raw.sock.close()


class StatsPortDeadlineTest(unittest.TestCase):
    """The stats port with a 1 s request deadline: a client trickling its request one byte at
    a time (each byte resetting libevent's own idle timer) is closed; others are served."""

    TIMEOUT_S = 1

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(f"  stats_request_timeout: {cls.TIMEOUT_S}s\nviews: []\n")
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        if rc != 0:
            raise AssertionError(f"fsd exited {rc}")

    def test_a_trickling_request_is_closed_and_counted(self):
        before = scrape(self.port)
        s = socket.create_connection(("127.0.0.1", self.port))
        s.settimeout(0.3)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200
        started = time.monotonic()
        closed_after = None
        try:
            for byte in request:  # 200+ bytes at 0.3 s each: a minute if never closed
                try:
                    s.sendall(bytes([byte]))
                    if s.recv(1) == b"":
                        closed_after = time.monotonic() - started
                        break
                except socket.timeout:
                    continue  # nothing to read yet: send the next byte
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - started
                    break
                self.assertLess(time.monotonic() - started, 10, "still open after 10 s")
        finally:
            s.close()
        self.assertIsNotNone(closed_after, "the whole trickled request was read")
        # The deadline, plus at most one sweep period and scheduling slack.
        self.assertGreaterEqual(closed_after, self.TIMEOUT_S * 0.9)
        self.assertLess(closed_after, self.TIMEOUT_S + 2.5)
        m = scrape(self.port)
        self.assertEqual(m.delta(before, "fsd_stats_http_timeouts_total"), 1)
        self.fsd.wait_for_log('msg="stats: connection closed, its request did not arrive in time"')

    def test_a_keep_alive_client_asking_within_the_deadline_is_served(self):
        before = scrape(self.port)
        conn = socket.create_connection(("127.0.0.1", self.port))
        conn.settimeout(5)
        try:
            for _ in range(6):  # 6 x 0.5 s: three times the deadline, on one connection
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = b""
                while b"\r\n\r\n" not in reply or not reply.endswith(b"ok\n"):
                    chunk = conn.recv(4096)
                    self.assertNotEqual(chunk, b"", f"closed after {reply!r}")
                    reply += chunk
                self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply)
                time.sleep(0.5)
        finally:
            conn.close()
        self.assertEqual(scrape(self.port).delta(before, "fsd_stats_http_timeouts_total"), 0)

    def test_an_idle_connection_is_closed_after_the_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.settimeout(self.TIMEOUT_S + 5)
        started = time.monotonic()
        try:
            self.assertEqual(s.recv(1), b"")
        finally:
            s.close()
        self.assertLess(time.monotonic() - started, self.TIMEOUT_S + 2.5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
