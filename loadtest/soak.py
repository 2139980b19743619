"""The soak behind loadtest/soak.sh: one fsd under every kind of traffic at once, for minutes.

Concurrently, on loopback: lookups of batches 1 to 1000 over four views; PushRows into one;
PushSnapshot streams into another; a Parquet view refreshed on a schedule from a file that is
rewritten under it; a Redis stream feeding a fourth; SIGHUP reloads; malformed requests; and
the abuse the resource limits are for (stalled readers, idle connections, rapid resets, a
stats-port client trickling its request). Every answer checked is compared with an oracle of
what was written, so a wrong value is found, not just an error.

What a wrong answer is, per view (each written value names its entity, so a row served under
another key is caught too):
  live  PushRows, one writer: the value read for an entity lies between the last write
        acknowledged before the lookup and the last one sent after it; its two features come
        from the same write; values of refused batches never appear.
  snap  PushSnapshot: the generation read lies between the last snapshot acknowledged before
        the lookup and the last one started after it; never one of an aborted or refused
        stream.
  pq    Parquet, refreshed every few seconds: a generation that was written, its two features
        agreeing; every entity present.
  st    Redis stream: a value that was added to the stream for that entity, no newer than the
        newest added.

Errors are every call that did not get the answer its kind expects. The deliberately bad
calls must get their precise refusal (a different code is an error too).

Writes soak.csv (one line per sample: time, RSS, calls and client-side p99 over the sample),
soak.png (gnuplot, when installed), fsd.log and report.md into --out, prints the report and
exits non-zero when errors, wrong answers or the RSS drift fail the bounds.
"""
import argparse
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import grpc  # noqa: E402
import redis  # noqa: E402
from hyperframe.frame import HeadersFrame, RstStreamFrame, SettingsFrame  # noqa: E402

import duckdb_sql  # noqa: E402
import harness as h  # noqa: E402
from harness import pb, scrape  # noqa: E402
from h2raw import PREFACE, RawH2, StalledReader  # noqa: E402
from redis_server import RedisServer  # noqa: E402

ENTITIES = 20_000         # per view
SAMPLE_S = 5              # one CSV line, RSS and p99 per this many seconds
CHECK_PER_CALL = 50       # entities of a big batch compared with the oracle
IDLE_TIMEOUT_S = 10       # fsd's server.idle_timeout in the soak
WRITE_TIMEOUT_S = 3       # fsd's server.write_timeout
STATS_TIMEOUT_S = 2       # fsd's server.stats_request_timeout
BATCHES = (1, 1, 1, 10, 10, 100, 1000)  # batch sizes drawn for lookups
# fsd's server.max_message_bytes: a batch of 1000 needs about 50 KiB, the largest possible
# request (10,000 entities, every feature, event times) about 500 KiB at least.
MAX_MESSAGE_KIB = 256
GET = h.SERVICE + "GetFeatures"


def config(tmp, redis_port, st_ttl):
    return f"""  log_level: info
  max_message_bytes: {MAX_MESSAGE_KIB}KiB
  idle_timeout: {IDLE_TIMEOUT_S}s
  write_timeout: {WRITE_TIMEOUT_S}s
  stats_request_timeout: {STATS_TIMEOUT_S}s
views:
  - name: live
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
    features:
      - {{name: seq, type: int64}}
      - {{name: tag, type: string}}
  - name: snap
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
    features:
      - {{name: gen, type: int64}}
  - name: pq
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
    refresh_interval: 4s
    source:
      type: parquet
      path: {tmp}/pq/*.parquet
      event_timestamp_column: event_ts
    features:
      - {{name: a, type: int64}}
      - {{name: b, type: double}}
  - name: st
    join_keys: [{{name: id, type: int64}}]
    ttl: {st_ttl}
    stream:
      redis: "127.0.0.1:{redis_port}"
      key: soak_stream
      start: "0"
      event_timestamp_field: event_ts
      block_ms: 100
    features:
      - {{name: seq, type: int64}}
"""


class Abandon(Exception):
    """Raised by a PushSnapshot request iterator to walk away from the stream."""


class Tally:
    """Counters and per-sample latencies, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []       # (what, detail), the first few kept
        self.wrong = []
        self.latencies = []    # seconds, lookups since the last sample

    def add(self, name, n=1):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def error(self, what, detail):
        with self.lock:
            self.counts["errors"] = self.counts.get("errors", 0) + 1
            if len(self.errors) < 20:
                self.errors.append((what, str(detail)[:300]))

    def wrong_answer(self, what, detail):
        with self.lock:
            self.counts["wrong answers"] = self.counts.get("wrong answers", 0) + 1
            if len(self.wrong) < 20:
                self.wrong.append((what, str(detail)[:300]))

    def latency(self, seconds):
        with self.lock:
            self.latencies.append(seconds)

    def take_latencies(self):
        with self.lock:
            out, self.latencies = self.latencies, []
        return out

    def get(self, name):
        with self.lock:
            return self.counts.get(name, 0)


class Soak:
    def __init__(self, args):
        self.args = args
        self.tally = Tally()
        self.stop = threading.Event()
        self.tmp = os.path.abspath(os.path.join(args.out, "data"))
        os.makedirs(os.path.join(self.tmp, "pq"), exist_ok=True)
        self.rng = random.Random(args.seed)
        # The oracle. live: id -> last acknowledged seq, and the last seq sent.
        self.live_acked = {}
        self.live_sent = {}
        # snap: generations acknowledged / started; refused or aborted ones.
        self.snap_acked = 0
        self.snap_started = 0
        self.snap_poisoned = set()
        # pq: generations written (file renamed into place).
        self.pq_written = 0
        # st: id -> newest seq added to the stream.
        self.st_added = {}
        self.oracle_lock = threading.Lock()
        self.reloads_sent = 0
        self.fsd = None
        self.redis = None

    def abandon(self):
        """Stops fsd and Redis if the soak ends early (SIGTERM, an exception): no stray
        servers outlive it. Both stops do nothing for a process already gone."""
        if self.fsd is not None and self.fsd.proc.poll() is None:
            self.fsd.stop()
        if self.redis is not None:
            self.redis.stop()

    # ---- setup ----------------------------------------------------------------------------

    def write_parquet(self, gen):
        final = os.path.join(self.tmp, "pq", "data.parquet")
        partial = os.path.join(self.tmp, "pq.tmp")
        duckdb_sql.run(
            f"COPY (SELECT i AS id, i * 1000 + {gen} AS a, {gen}::DOUBLE AS b, "
            f"make_timestamp({1_700_000_000_000_000 + gen}) AS event_ts "
            f"FROM range({ENTITIES}) t(i)) TO '{partial}' (FORMAT parquet)")
        os.rename(partial, final)  # the loader sees the old file or the new one, whole
        with self.oracle_lock:
            self.pq_written = gen

    def start(self):
        self.redis = RedisServer()
        self.redis_client = redis.Redis(host="127.0.0.1", port=self.redis.port)
        self.write_parquet(1)
        self.fsd = h.Fsd(config(self.tmp, self.redis.port, "0"), timeout_s=60)
        self.stats = h.stats_port(self.fsd)
        deadline = time.monotonic() + 60
        while h.http_request(self.stats, "/readyz")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("fsd not ready after 60 s")
            time.sleep(0.1)
        self.metrics_before = scrape(self.stats)
        self.started = time.monotonic()

    # ---- the writers ----------------------------------------------------------------------

    def push_rows(self):
        seq = 0
        fsd = self.fsd
        while not self.stop.is_set():
            ids = [self.rng.randrange(ENTITIES) for _ in range(100)]
            rows = []
            with self.oracle_lock:
                for i in ids:
                    seq += 1
                    self.live_sent[i] = seq
                    rows.append(h.row({"id": i}, 1_700_000_000_000_000 + seq,
                                      {"seq": (seq, "int64_value"),
                                       "tag": (f"{i}:{seq}", "string_value")}))
            try:
                fsd.push(pb.PushRowsRequest(view="live", rows=rows))
                with self.oracle_lock:
                    for r in rows:
                        self.live_acked[r.keys[0].int64_value] = r.values[0].value.int64_value
                self.tally.add("PushRows batches")
            except grpc.RpcError as e:
                self.tally.error("PushRows", e.details())
            if self.rng.random() < 0.05:
                # A batch with one row of the wrong type: refused whole, none of it applied.
                bad = [h.row({"id": i}, 1_800_000_000_000_000, {
                    "seq": (-1, "int64_value"), "tag": ("poison", "string_value")})
                    for i in ids[:10]]
                bad.append(h.row({"id": 1}, 1_800_000_000_000_000, {"seq": (1.5, "double_value")}))
                self.expect_refusal("PushRows with a mistyped value", grpc.StatusCode.INVALID_ARGUMENT,
                                    lambda: fsd.push(pb.PushRowsRequest(view="live", rows=bad)))
            self.stop.wait(0.02)

    def push_snapshots(self):
        fsd = self.fsd
        call = fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        while not self.stop.wait(3):
            with self.oracle_lock:
                gen = self.snap_started + 1
                self.snap_started = gen
            kind = self.rng.choice(("good", "good", "good", "bad", "aborted"))

            def messages():
                for part in range(5):
                    lo = part * ENTITIES // 5
                    rows = [h.row({"id": i}, 1_700_000_000_000_000 + gen,
                                  {"gen": (i * 1000 + gen, "int64_value")})
                            for i in range(lo, lo + ENTITIES // 5)]
                    if kind == "bad" and part == 3:
                        rows.append(h.row({"nope": 1}, 1, {}))
                    if part == 2:
                        # A load asked for while this stream is open: the view has no source.
                        self.expect_refusal(
                            "LoadSnapshot during PushSnapshot", grpc.StatusCode.FAILED_PRECONDITION,
                            lambda: fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="snap"),
                                              pb.LoadSnapshotResponse))
                    if kind == "aborted" and part == 3:
                        raise Abandon  # grpcio cancels the call: the client went away
                    yield pb.PushSnapshotRequest(view="snap", rows=rows)

            if kind != "good":
                with self.oracle_lock:
                    self.snap_poisoned.add(gen)
            try:
                resp = call(messages(), timeout=30)
                if kind != "good":
                    self.tally.error("PushSnapshot", f"a {kind} stream was accepted")
                elif resp.rows_kept != ENTITIES:
                    self.tally.error("PushSnapshot", f"rows_kept {resp.rows_kept}")
                else:
                    with self.oracle_lock:
                        self.snap_acked = gen
                    self.tally.add("PushSnapshot streams")
            except grpc.RpcError as e:
                code = e.code()
                if kind == "bad" and code == grpc.StatusCode.INVALID_ARGUMENT:
                    self.tally.add("refused as expected: PushSnapshot with a bad row")
                elif kind == "aborted" and code in (grpc.StatusCode.CANCELLED,
                                                    grpc.StatusCode.UNKNOWN):
                    self.tally.add("deliberate: PushSnapshot abandoned mid-stream")
                else:
                    self.tally.error("PushSnapshot", f"{kind}: {code} {e.details()}")

    def rewrite_parquet(self):
        gen = 1
        while not self.stop.wait(3):
            gen += 1
            try:
                self.write_parquet(gen)
                self.tally.add("Parquet files rewritten")
            except RuntimeError as e:
                self.tally.error("Parquet writer", e)

    def add_stream_entries(self):
        seq = 0
        while not self.stop.wait(0.05):
            pipe = self.redis_client.pipeline(transaction=False)
            added = []
            for _ in range(50):
                seq += 1
                i = self.rng.randrange(ENTITIES)
                pipe.xadd("soak_stream", {"id": i, "seq": i * 10_000_000 + seq,
                                          "event_ts": 1_700_000_000_000_000 + seq})
                added.append((i, i * 10_000_000 + seq))
            if self.rng.random() < 0.1:  # a bad entry: counted by fsd and skipped
                pipe.xadd("soak_stream", {"id": "not-a-number", "seq": 1, "event_ts": 1})
                self.tally.add("deliberate: bad stream entries")
            pipe.xtrim("soak_stream", maxlen=100_000, approximate=True)
            with self.oracle_lock:  # before XADD: fsd may apply the entries before it returns
                for i, v in added:
                    self.st_added[i] = v
            try:
                pipe.execute()
            except redis.RedisError as e:
                self.tally.error("XADD", e)
                continue
            self.tally.add("stream entries", len(added))

    # ---- the readers ------------------------------------------------------------------------

    def lookups(self, seed):
        rng = random.Random(seed)
        fsd = self.fsd
        while not self.stop.is_set():
            batch = rng.choice(BATCHES)
            ids = [rng.randrange(ENTITIES) for _ in range(batch)]
            check = ids if batch <= CHECK_PER_CALL else rng.sample(ids, CHECK_PER_CALL)
            with self.oracle_lock:
                live_lo = {i: self.live_acked.get(i) for i in check}
                snap_lo = self.snap_acked
                pq_lo = 1
            t0 = time.monotonic()
            try:
                resp = fsd.get(pb.GetFeaturesRequest(features=["live:*", "snap:*", "pq:*", "st:*"],
                                                     keys=h.keys(id=ids), budget_us=2_000_000))
            except grpc.RpcError as e:
                self.tally.error(f"GetFeatures batch {batch}", f"{e.code()} {e.details()}")
                continue
            self.tally.latency(time.monotonic() - t0)
            self.tally.add(f"lookups, batch {batch}")
            with self.oracle_lock:
                live_hi = {i: self.live_sent.get(i) for i in check}
                snap_hi = self.snap_started
                pq_hi = self.pq_written
                st_hi = {i: self.st_added.get(i) for i in check}
                poisoned = set(self.snap_poisoned)
            cols = {c.name: c for c in resp.columns}
            index = {}
            for pos, i in enumerate(ids):
                index.setdefault(i, pos)
            for i in check:
                p = index[i]
                self.check_live(i, cols, p, live_lo[i], live_hi[i])
                self.check_snap(i, cols, p, snap_lo, snap_hi, poisoned)
                self.check_pq(i, cols, p, pq_lo, pq_hi)
                self.check_st(i, cols, p, st_hi[i])
            self.tally.add("answers checked", len(check))

    PRESENT = pb.PRESENT

    def check_live(self, i, cols, p, lo, hi):
        seq_col, tag_col = cols["live:seq"], cols["live:tag"]
        if seq_col.statuses[p] != self.PRESENT:
            if lo is not None:
                self.tally.wrong_answer("live", f"id {i}: status {seq_col.statuses[p]}, "
                                                f"acknowledged seq {lo}")
            return
        seq, tag = seq_col.int64_values[p], tag_col.string_values[p]
        if tag != f"{i}:{seq}" or hi is None or not ((lo or 0) <= seq <= hi):
            self.tally.wrong_answer("live", f"id {i}: seq {seq} tag {tag!r}, "
                                            f"expected {lo}..{hi}")

    def check_snap(self, i, cols, p, lo, hi, poisoned):
        col = cols["snap:gen"]
        if col.statuses[p] != self.PRESENT:
            if lo > 0:
                self.tally.wrong_answer("snap", f"id {i}: status {col.statuses[p]}, "
                                                f"snapshot {lo} acknowledged")
            return
        v = col.int64_values[p]
        gen = v % 1000
        if v // 1000 != i or not (lo <= gen <= hi) or gen in poisoned:
            self.tally.wrong_answer("snap", f"id {i}: value {v}, generations {lo}..{hi}, "
                                            f"poisoned {sorted(poisoned)[-3:]}")

    def check_pq(self, i, cols, p, lo, hi):
        a, b = cols["pq:a"], cols["pq:b"]
        if a.statuses[p] != self.PRESENT or b.statuses[p] != self.PRESENT:
            self.tally.wrong_answer("pq", f"id {i}: statuses {a.statuses[p]} {b.statuses[p]}")
            return
        v, gen = a.int64_values[p], b.double_values[p]
        if v // 1000 != i or v % 1000 != gen or not (lo <= gen <= hi):
            self.tally.wrong_answer("pq", f"id {i}: a {v} b {gen}, generations {lo}..{hi}")

    def check_st(self, i, cols, p, hi):
        col = cols["st:seq"]
        if col.statuses[p] != self.PRESENT:
            return  # the stream may not have reached this entity yet
        v = col.int64_values[p]
        if v // 10_000_000 != i or hi is None or v > hi:
            self.tally.wrong_answer("st", f"id {i}: seq {v}, newest added {hi}")

    # ---- deliberately bad calls -----------------------------------------------------------

    def expect_refusal(self, what, code, fn):
        try:
            fn()
        except grpc.RpcError as e:
            if e.code() == code:
                self.tally.add(f"refused as expected: {what}")
            else:
                self.tally.error(what, f"expected {code}, got {e.code()} {e.details()}")
            return
        self.tally.error(what, "accepted")

    def malformed(self):
        fsd = self.fsd
        inv, exhausted = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
        cases = [
            ("GetFeatures of an unknown view", inv, lambda: fsd.get(pb.GetFeaturesRequest(
                features=["nope:x"], keys=h.keys(id=[1])))),
            ("GetFeatures of bytes that are not protobuf", inv,
             lambda: fsd.raw(GET, b"\xff\xff\xff\xff\x0f")),
            ("GetFeatures above max_batch", inv, lambda: fsd.get(pb.GetFeaturesRequest(
                features=["live:seq"], keys=h.keys(id=list(range(10001)))))),
            ("GetFeatures whose response cannot fit", exhausted,
             lambda: fsd.get(pb.GetFeaturesRequest(
                 features=["live:*", "snap:*", "pq:*", "st:*"] * 20, include_event_timestamps=True,
                 keys=h.keys(id=list(range(10000)))))),
            ("PushRows into an unknown view", inv,
             lambda: fsd.push(pb.PushRowsRequest(view="nope", rows=[]))),
            ("LoadSnapshot from outside the allowed paths", grpc.StatusCode.PERMISSION_DENIED,
             lambda: fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="pq", path="/etc"),
                               pb.LoadSnapshotResponse)),
        ]
        while not self.stop.wait(0.25):
            what, code, fn = self.rng.choice(cases)
            self.expect_refusal(what, code, fn)
            if self.rng.random() < 0.2:
                self.garbage_connection()

    def garbage_connection(self):
        """Bytes that are not HTTP/2 to the gRPC port, and not HTTP to the stats port."""
        for port in (self.fsd.port, self.stats):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"\x16\x03\x01garbage\r\n\r\n" * 4)
                    while s.recv(4096):
                        pass
                self.tally.add("deliberate: garbage connections closed")
            except socket.timeout:
                self.tally.error("garbage connection", f"port {port} kept it open 5 s")
            except OSError:
                self.tally.add("deliberate: garbage connections closed")

    # ---- abuse ------------------------------------------------------------------------------

    def abuse(self):
        """In turn: stalled readers, idle connections, rapid resets, a trickling stats client;
        each bounded, each checked to have been cut off."""
        big = pb.GetFeaturesRequest(features=["live:*", "snap:*", "pq:*", "st:*"],
                                    keys=h.keys(id=list(range(2000))), budget_us=5_000_000)
        turn = 0
        while not self.stop.wait(2):
            turn += 1
            kind = turn % 4
            try:
                if kind == 0:
                    self.stalled_readers(big)
                elif kind == 1:
                    self.idle_connections()
                elif kind == 2:
                    self.rapid_resets()
                else:
                    self.trickle_stats()
            except OSError as e:
                self.tally.error("abuse", f"turn {kind}: {e}")

    def wait_closed(self, sock, within_s):
        """True when the server closes `sock` within `within_s` (reading whatever it sends)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and not self.stop.is_set():
            sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            try:
                if sock.recv(65536) == b"":
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False

    def wait_hangup(self, sock, within_s):
        """True when the server closes `sock` within `within_s`, seen without reading a byte
        (POLLRDHUP is raised at the server's FIN even with its data still unread)."""
        poller = select.poll()
        poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and not self.stop.is_set():
            if poller.poll(max(50, min(500, int((deadline - time.monotonic()) * 1000)))):
                return True
        return False

    def stalled_readers(self, big):
        readers = [StalledReader(self.fsd.port) for _ in range(2)]
        try:
            for r in readers:
                r.send(GET, big.SerializeToString(), 50)
            # They never read; fsd closes them after write_timeout. Watched without reading:
            # a read would drain them, and they would end by the idle timeout instead.
            closed = all(self.wait_hangup(r.sock, WRITE_TIMEOUT_S + 10) for r in readers)
            if self.stop.is_set():
                return
            if closed:
                self.tally.add("deliberate: stalled readers closed", 2)
            else:
                self.tally.error("stalled reader", "still open after the write timeout")
        finally:
            for r in readers:
                r.close()

    def idle_connections(self):
        socks = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", self.fsd.port))
                s.sendall(PREFACE + SettingsFrame(0).serialize())
                socks.append(s)
            closed = all(self.wait_closed(s, IDLE_TIMEOUT_S + 10) for s in socks)
            if self.stop.is_set():
                return
            if closed:
                self.tally.add("deliberate: idle connections closed", len(socks))
            else:
                self.tally.error("idle connection", "still open after the idle timeout")
        finally:
            for s in socks:
                s.close()

    def rapid_resets(self):
        raw = RawH2(self.fsd.port)
        try:
            data = b""
            req = pb.GetFeaturesRequest(features=["live:seq"], keys=h.keys(id=[1]))
            for n in range(500):
                sid = 1 + 2 * n
                headers = [(":method", "POST"), (":scheme", "http"), (":path", GET),
                           (":authority", "localhost"), ("te", "trailers"),
                           ("content-type", "application/grpc")]
                data += HeadersFrame(sid, data=raw.encoder.encode(headers),
                                     flags=["END_HEADERS"]).serialize()
                data += RstStreamFrame(sid, error_code=8).serialize()  # CANCEL
            raw.sock.sendall(data)
            # The connection still serves a real call afterwards (500 resets are in budget).
            raw.send_request(1001, GET, req.SerializeToString())
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                f = raw.next_frame(timeout=max(0.1, deadline - time.monotonic()))
                if f is None:
                    self.tally.error("rapid resets", "connection closed")
                    return
                if isinstance(f, HeadersFrame) and f.stream_id == 1001 and \
                        "grpc-status" in f.headers:
                    if f.headers["grpc-status"] == "0":
                        self.tally.add("deliberate: rapid resets survived", 500)
                    else:
                        self.tally.error("rapid resets", f.headers)
                    return
            self.tally.error("rapid resets", "no answer after the resets")
        finally:
            raw.sock.close()

    def trickle_stats(self):
        s = socket.create_connection(("127.0.0.1", self.stats))
        try:
            started = time.monotonic()
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                if self.stop.is_set():
                    return
                s.settimeout(0.2)
                try:
                    s.sendall(bytes([byte]))
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
                if time.monotonic() - started > STATS_TIMEOUT_S + 10:
                    self.tally.error("stats trickle", "still open after the request timeout")
                    return
            else:
                self.tally.error("stats trickle", "the whole trickled request was read")
                return
            self.tally.add("deliberate: stats tricklers closed")
        finally:
            s.close()

    # ---- control ------------------------------------------------------------------------------

    def reloads(self):
        """SIGHUP every 10 s, the config changed each time: view st's TTL goes between none and
        ten years (its rows are from 2023, so never stale either way), which a reload applies
        in place."""
        ttl = "0"
        while not self.stop.wait(10):
            ttl = "3650d" if ttl == "0" else "0"
            self.fsd.write_config(config(self.tmp, self.redis.port, ttl))
            self.fsd.signal(signal.SIGHUP)
            self.reloads_sent += 1

    def reloads_done(self):
        return sum('msg="config reloaded"' in line for line in self.fsd.log())

    def rss_bytes(self):
        with open(f"/proc/{self.fsd.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def run(self):
        self.start()
        threads = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in (
            self.push_rows, self.push_snapshots, self.rewrite_parquet, self.add_stream_entries,
            self.malformed, self.abuse, self.reloads)]
        threads += [threading.Thread(target=self.lookups, args=(self.args.seed + n,),
                                     name=f"lookups{n}", daemon=True) for n in range(3)]
        for t in threads:
            t.start()
        samples = []  # (t, rss, calls, p99 s)
        csv = open(os.path.join(self.args.out, "soak.csv"), "w")
        csv.write("seconds,rss_mib,lookups,p99_ms\n")
        end = self.started + self.args.duration
        next_sample = self.started + SAMPLE_S
        try:
            while time.monotonic() < end:
                if self.fsd.proc.poll() is not None:
                    self.tally.error("fsd", f"exited {self.fsd.proc.returncode}")
                    break
                time.sleep(max(0, min(next_sample, end) - time.monotonic()))
                if time.monotonic() < next_sample:
                    continue
                next_sample += SAMPLE_S
                lat = sorted(self.tally.take_latencies())
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
                t = time.monotonic() - self.started
                samples.append((t, self.rss_bytes(), len(lat), p99))
                csv.write(f"{t:.1f},{samples[-1][1] / 2**20:.1f},{len(lat)},{p99 * 1000:.2f}\n")
                csv.flush()
                if self.args.verbose:
                    print(f"  {t:6.0f} s  rss {samples[-1][1] / 2**20:6.1f} MiB  "
                          f"lookups {len(lat):6d}  p99 {p99 * 1000:7.2f} ms  "
                          f"errors {self.tally.get('errors')}  "
                          f"wrong {self.tally.get('wrong answers')}", flush=True)
        finally:
            self.stop.set()
            csv.close()
            for t in threads:
                t.join(40)
        return self.finish(samples, [t.name for t in threads if t.is_alive()])

    def finish(self, samples, stuck):
        for name in stuck:
            self.tally.error("soak thread", f"{name} did not stop")
        alive = self.fsd.proc.poll() is None
        after = scrape(self.stats) if alive else None
        deadline = time.monotonic() + 10  # the last SIGHUP may still be being handled
        while alive and self.reloads_done() < self.reloads_sent and time.monotonic() < deadline:
            time.sleep(0.1)
        if after is not None:
            # Each stalled reader seen closed must have been closed for its stall, not by the
            # idle timeout or another rule (a reader cut off by the end may add closes).
            stalls = after.delta(self.metrics_before, "fsd_grpc_connections_closed_total",
                                 reason="write_timeout")
            seen = self.tally.get("deliberate: stalled readers closed")
            if stalls < seen:
                self.tally.error("stalled readers", f"{seen} seen closed, {stalls:.0f} of them "
                                 "for write_timeout")
        reloads = self.reloads_done()
        if reloads != self.reloads_sent:
            self.tally.error("SIGHUP", f"{self.reloads_sent} sent, {reloads} reloads logged")
        rc = self.fsd.stop()
        if rc != 0:
            self.tally.error("fsd", f"exit code {rc}")
        with open(os.path.join(self.args.out, "fsd.log"), "w") as f:
            f.write("\n".join(self.fsd.log()) + "\n")
        self.redis.stop()
        return self.report(samples, after, reloads)

    def report(self, samples, after, reloads):
        d = self.args.duration
        warmup = min(60, d / 4)
        window = min(60, (d - warmup) / 3)
        first = [s[1] for s in samples if warmup <= s[0] < warmup + window]
        last = [s[1] for s in samples if s[0] >= d - window]
        drift = (max(last) / max(first) - 1) if first and last else None
        lines = [f"# fsd soak: {d:.0f} s", "",
                 f"- errors: {self.tally.get('errors')} (beyond the deliberately bad calls)",
                 f"- wrong answers: {self.tally.get('wrong answers')} of "
                 f"{self.tally.get('answers checked')} checked against the oracle"]
        if drift is not None:
            lines.append(f"- RSS peak: {max(first) / 2**20:.1f} MiB in [{warmup:.0f} s, "
                         f"{warmup + window:.0f} s), {max(last) / 2**20:.1f} MiB in the last "
                         f"{window:.0f} s: {drift * 100:+.1f} % (bound +10 %)")
        lines.append(f"- SIGHUP reloads: {self.reloads_sent} sent, {reloads} logged as done")
        if samples:
            p99s = sorted(s[3] for s in samples if s[2])
            if p99s:
                lines.append(f"- client-side p99 of lookups per {SAMPLE_S} s (Python client, "
                             f"GIL included): median {p99s[len(p99s) // 2] * 1000:.1f} ms, "
                             f"worst {p99s[-1] * 1000:.1f} ms")
        lines += ["", "| what | count |", "|---|---:|"]
        with self.tally.lock:
            for k in sorted(self.tally.counts):
                lines.append(f"| {k} | {self.tally.counts[k]} |")
        if after is not None:
            b = self.metrics_before
            lines += ["", "fsd's own counters over the soak:", ""]
            for name, labels in (
                    ("fsd_grpc_connections_closed_total", {"reason": "write_timeout"}),
                    ("fsd_grpc_connections_closed_total", {"reason": "idle_timeout"}),
                    ("fsd_stats_http_timeouts_total", {}),
                    ("fsd_stream_bad_entries_total", {"view": "st"}),
                    ("fsd_materialization_loads_total", {"view": "pq", "result": "ok"})):
                label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"- {name}{{{label_text}}}: {after.delta(b, name, **labels):.0f}")
        for title, items in (("Errors", self.tally.errors), ("Wrong answers", self.tally.wrong)):
            if items:
                lines += ["", f"{title} (first {len(items)}):", ""]
                lines += [f"- {what}: {detail}" for what, detail in items]
        plot = self.plot()
        if plot:
            lines += ["", plot]
        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.args.out, "report.md"), "w") as f:
            f.write(text)
        print(text)
        ok = self.tally.get("errors") == 0 and self.tally.get("wrong answers") == 0
        if self.args.check_rss and (drift is None or drift > 0.10):
            ok = False
        return 0 if ok else 1

    def plot(self):
        out = os.path.join(self.args.out, "soak.png")
        csv = os.path.join(self.args.out, "soak.csv")
        script = f"""
set terminal png size 900,600
set output '{out}'
set datafile separator ','
set multiplot layout 2,1 title 'fsd soak'
set xlabel 'seconds'
set ylabel 'RSS MiB'
plot '{csv}' using 1:2 skip 1 with lines title 'RSS'
set ylabel 'p99 ms (client)'
plot '{csv}' using 1:4 skip 1 with lines title 'lookup p99'
unset multiplot
"""
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            return f"(no plot: gnuplot failed: {e})"
        return f"RSS and p99 over time: {out}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    p.add_argument("--out", required=True, help="directory for the CSV, PNG, log and report")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-rss-check", dest="check_rss", action="store_false",
                   help="report the RSS drift but do not fail on it (short CI runs)")
    p.add_argument("--verbose", action="store_true", help="print every sample")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def interrupted(signum, _frame):
        raise SystemExit(f"soak: {signal.Signals(signum).name}, stopping")

    signal.signal(signal.SIGTERM, interrupted)
    soak = Soak(args)
    try:
        return soak.run()
    except BaseException:
        soak.abandon()
        raise


if __name__ == "__main__":
    sys.exit(main())
