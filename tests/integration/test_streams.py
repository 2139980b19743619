"""Redis Streams end to end: real redis-server processes (Debian's redis-server, on free
loopback ports, no persistence unless a test asks for it) and real fsd processes following
them. Entries are written with Debian's python3-redis, the way a stream processor would.

Every test checks replies and metric deltas on the stats port: applied, not-newer and bad
entry counters, reconnects, the visible-lag histogram and the last applied ID."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import grpc
import redis

import harness as h
from harness import pb
from redis_server import RedisServer

DEMO_DATA_BIN = os.environ.get("FSD_DEMO_DATA_BIN", "build/bin/fsd-demo-data")
DEMO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                           "demo.yaml")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def wait_until(predicate, timeout_s=20, step_s=0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


def metrics(port):
    """/metrics as {'name{labels}': value}."""
    _, _, body = h.http_request(port, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def counter(port, name, view):
    return metrics(port).get(f'{name}{{view="{view}"}}', 0.0)


USERS_FEATURES = """\
    features:
      - { name: age, type: int32 }
      - { name: orders, type: int64 }
      - { name: score, type: float }
      - { name: ctr, type: double }
      - { name: premium, type: bool }
      - { name: country, type: string }
      - { name: photo, type: bytes }
      - { name: seen_ts, type: timestamp }
      - { name: emb, type: float_list }
      - { name: items, type: int64_list }
      - { name: tags, type: string_list }
      - { name: levels, type: int32_list }
      - { name: weights, type: double_list }
      - { name: flags, type: bool_list }
      - { name: blobs, type: bytes_list }
      - { name: visits, type: timestamp_list }
"""


def users_view(port, key="users_stream", start="0", name="users"):
    return f"""\
  - name: {name}
    join_keys:
      - {{ name: user_id, type: int64 }}
    ttl: 0
    stream:
      redis: "127.0.0.1:{port}"
      key: {key}
      start: "{start}"
      created_timestamp_field: created_ts
      batch: 100
      block_ms: 200
""" + USERS_FEATURES


def sessions_view(port):
    return f"""\
  - name: sessions
    join_keys:
      - {{ name: user_id, type: int64 }}
      - {{ name: session_id, type: string }}
    ttl: 0
    stream:
      redis: "redis://127.0.0.1:{port}/0"
      key: sessions_stream
      format: protobuf
      start: "0"
      block_ms: 200
    features:
      - {{ name: clicks, type: int64 }}
      - {{ name: last_page, type: string }}
      - {{ name: dwell, type: float_list }}
      - {{ name: flags, type: bool_list }}
      - {{ name: pages, type: bytes_list }}
"""


def config(*views):
    return "views:\n" + "".join(views)


def lookup(fsd, view, ids, features="*"):
    return fsd.get(pb.GetFeaturesRequest(features=[f"{view}:{features}"],
                                         keys=h.keys(user_id=list(ids)),
                                         include_event_timestamps=True))


def values(fsd, view, ids, feature):
    """(status, value) per entity for one scalar feature."""
    col = h.column(lookup(fsd, view, ids, feature), f"{view}:{feature}")
    arrays = (col.int32_values, col.int64_values, col.float_values, col.double_values,
              col.bool_values, col.string_values, col.bytes_values)
    arr = next((a for a in arrays if len(a) > 0), [None] * len(ids))
    return [(pb.ValueStatus.Name(s), v) for s, v in zip(col.statuses, arr)]


class StreamCase(unittest.TestCase):
    """What the stream tests share: Redis and fsd processes stopped after each test."""

    def setUp(self):
        self.redis = []
        self.fsds = []

    def tearDown(self):
        codes = [f.stop() for f in self.fsds]  # everything stops, even when one fails
        for r in self.redis:
            r.stop()
        self.assertEqual(codes, [0] * len(codes))

    def start_redis(self, **kw):
        r = RedisServer(**kw)
        self.redis.append(r)
        return r

    def start_fsd(self, yaml):
        f = h.Fsd(yaml)
        self.fsds.append(f)
        f.stats = h.stats_port(f)
        return f

    def wait_applied(self, fsd, view, target, timeout_s=30):
        got = wait_until(lambda: counter(fsd.stats, "fsd_stream_updates_applied_total",
                                         view) >= target, timeout_s)
        self.assertTrue(got, "applied %s of %s on %s:\n%s" % (
            counter(fsd.stats, "fsd_stream_updates_applied_total", view), target, view,
            "\n".join(fsd.log()[-30:])))

    def produce(self, r, n, key="users_stream", stop_after_s=60, first=0, on_progress=None):
        """Writes entries user_id=i, age=i for i in first..first+n-1, one at a time, retrying
        each until Redis acknowledges it (Redis may be down meanwhile). Returns when done."""
        deadline = time.monotonic() + stop_after_s
        c = r.client()
        i = first
        while i < first + n and time.monotonic() < deadline:
            try:
                c.xadd(key, {"user_id": i, "event_ts": h.now_us(), "age": i})
                i += 1
                if on_progress:
                    on_progress(i)
            except redis.exceptions.RedisError:
                time.sleep(0.01)
                c = r.client()
            time.sleep(0.0005)
        return i - first


class StreamTest(StreamCase):
    # ---- entries in both formats appear in lookups -----------------------------------------

    def test_updates_appear_in_lookups(self):
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port), sessions_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        c = r.client()
        now = h.now_us()
        c.xadd("users_stream", {
            "user_id": 1, "event_ts": now, "age": 41, "orders": -7, "score": "0.5",
            "ctr": "0.125", "premium": "true", "country": "de", "photo": b"\x00\xffpng",
            "seen_ts": "2024-05-01T12:00:00.25Z", "emb": "[1, 2.5, -3e2]",
            "items": "[]", "tags": '["a", "b\\"c", "\\u00e9"]',
            "levels": "[-2147483648, 7]", "weights": "[0.1, -1e300]", "flags": "[true, false]",
            "blobs": '["AP8=", ""]', "visits": '[1714564800000000, "2024-05-01T12:00:00.5Z"]'})
        # RFC 3339 event time, and a row with only some features: the rest are null
        c.xadd("users_stream", {"user_id": 2, "event_ts": "2024-05-01T12:00:01Z", "age": 7})
        # a tombstone for an entity that had a row
        c.xadd("users_stream", {"user_id": 3, "event_ts": now - 10, "age": 1})
        c.xadd("users_stream", {"user_id": 3, "event_ts": now - 5, "__delete": "1"})
        self.wait_applied(fsd, "users", 4)

        resp = lookup(fsd, "users", [1, 2, 3, 4])
        col = {c.name.split(":")[1]: c for c in resp.columns}
        P, N, NF = pb.PRESENT, pb.NULL_VALUE, pb.NOT_FOUND
        self.assertEqual(list(col["age"].statuses), [P, P, NF, NF])
        self.assertEqual(list(col["age"].int32_values[:2]), [41, 7])
        self.assertEqual(col["orders"].int64_values[0], -7)
        self.assertEqual(col["orders"].statuses[1], N)
        self.assertEqual(col["score"].float_values[0], 0.5)
        self.assertEqual(col["ctr"].double_values[0], 0.125)
        self.assertTrue(col["premium"].bool_values[0])
        self.assertEqual(col["country"].string_values[0], "de")
        self.assertEqual(col["photo"].bytes_values[0], b"\x00\xffpng")
        self.assertEqual(col["seen_ts"].int64_values[0], 1714564800250000)
        self.assertEqual(list(col["emb"].list_lengths[:1]), [3])
        self.assertEqual(list(col["emb"].float_values[:3]), [1.0, 2.5, -300.0])
        self.assertEqual(col["items"].list_lengths[0], 0)
        self.assertEqual(col["items"].statuses[0], P)
        self.assertEqual(list(col["tags"].string_values[:3]), ["a", 'b"c', "\u00e9"])
        self.assertEqual(list(col["levels"].int32_values[:2]), [-(2**31), 7])
        self.assertEqual(list(col["weights"].double_values[:2]), [0.1, -1e300])
        self.assertEqual(list(col["flags"].bool_values[:2]), [True, False])
        self.assertEqual(list(col["blobs"].bytes_values[:2]), [b"\x00\xff", b""])
        self.assertEqual(list(col["visits"].int64_values[:2]), [1714564800000000, 1714564800500000])
        self.assertEqual(list(col["age"].event_timestamps_us[:2]), [now, 1714564801000000])

        # protobuf entries: an fsd.v1.Row, as PushRows takes it, in the field "row"
        row = h.row({"user_id": 9, "session_id": "s-1"}, now,
                    {"clicks": (3, "int64_value"), "last_page": ("/cart", "string_value"),
                     "dwell": ([0.25, 4.0], "float_list"), "flags": ([True, False, True], "bool_list"),
                     "pages": ([b"/a", b"", b"\xff"], "bytes_list")})
        c.xadd("sessions_stream", {"row": row.SerializeToString()})
        gone = h.row({"user_id": 9, "session_id": "s-2"}, now, delete=True)
        c.xadd("sessions_stream", {"row": h.row({"user_id": 9, "session_id": "s-2"}, now - 1,
                                                {"clicks": (1, "int64_value")}).SerializeToString()})
        c.xadd("sessions_stream", {"row": gone.SerializeToString()})
        self.wait_applied(fsd, "sessions", 3)
        resp = fsd.get(pb.GetFeaturesRequest(
            features=["sessions:*"],
            keys=[pb.KeyColumn(name="user_id", int64_values=[9, 9]),
                  pb.KeyColumn(name="session_id", string_values=["s-1", "s-2"])]))
        col = {c.name.split(":")[1]: c for c in resp.columns}
        self.assertEqual(list(col["clicks"].statuses), [P, NF])
        self.assertEqual(col["clicks"].int64_values[0], 3)
        self.assertEqual(col["last_page"].string_values[0], "/cart")
        self.assertEqual(list(col["dwell"].float_values), [0.25, 4.0])
        self.assertEqual(list(col["flags"].bool_values), [True, False, True])
        self.assertEqual(list(col["pages"].bytes_values), [b"/a", b"", b"\xff"])

        m = metrics(fsd.stats)
        self.assertEqual(m['fsd_stream_bad_entries_total{view="users"}'], 0)
        self.assertEqual(m['fsd_stream_connected{view="sessions"}'], 1)
        self.assertEqual(m['fsd_stream_update_visible_lag_seconds_count{view="sessions"}'], 3)
        last = c.xinfo_stream("sessions_stream")["last-generated-id"].decode()
        self.assertEqual(m.get(f'fsd_stream_last_id_info{{view="sessions",id="{last}"}}'), 1)
        lag = wait_until(lambda: metrics(fsd.stats).get(
            'fsd_stream_lag_entries{view="users"}') == 0, 5)
        self.assertTrue(lag)

    def test_start_positions(self):
        """$ reads only what comes after fsd connects; an explicit ID what comes after it."""
        r = self.start_redis()
        c = r.client()
        now = h.now_us()
        first = c.xadd("users_stream", {"user_id": 1, "event_ts": now, "age": 1}).decode()
        c.xadd("users_stream", {"user_id": 2, "event_ts": now, "age": 2})
        fsd = self.start_fsd(config(users_view(r.port, start="$"),
                                    users_view(r.port, start=first, name="after_first")))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        c.xadd("users_stream", {"user_id": 3, "event_ts": now, "age": 3})
        self.wait_applied(fsd, "users", 1)
        self.wait_applied(fsd, "after_first", 2)
        self.assertEqual([s for s, _ in values(fsd, "users", [1, 2, 3], "age")],
                         ["NOT_FOUND", "NOT_FOUND", "PRESENT"])
        self.assertEqual(values(fsd, "after_first", [1, 2, 3], "age"),
                         [("NOT_FOUND", 0), ("PRESENT", 2), ("PRESENT", 3)])

    # ---- upsert-if-newer ---------------------------------------------------------------------

    def test_older_updates_never_overwrite_newer(self):
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port)))
        c = r.client()
        now = h.now_us()
        c.xadd("users_stream", {"user_id": 1, "event_ts": now, "age": 30})
        c.xadd("users_stream", {"user_id": 1, "event_ts": now - 1000, "age": 29})  # older
        c.xadd("users_stream", {"user_id": 1, "event_ts": now, "age": 28})  # same time, same created
        # equal event times: the newer created time wins, an older one does not
        c.xadd("users_stream", {"user_id": 2, "event_ts": now, "created_ts": 5, "age": 50})
        c.xadd("users_stream", {"user_id": 2, "event_ts": now, "created_ts": 4, "age": 40})
        c.xadd("users_stream", {"user_id": 2, "event_ts": now, "created_ts": 6, "age": 60})
        # an old tombstone does not delete a newer row; a newer one does, and then an old
        # update cannot bring the entity back
        c.xadd("users_stream", {"user_id": 1, "event_ts": now - 1, "__delete": "true"})
        c.xadd("users_stream", {"user_id": 3, "event_ts": now, "age": 3})
        c.xadd("users_stream", {"user_id": 3, "event_ts": now + 1, "__delete": "1"})
        c.xadd("users_stream", {"user_id": 3, "event_ts": now - 1, "age": 33})
        self.wait_applied(fsd, "users", 10)
        self.assertEqual(values(fsd, "users", [1, 2, 3], "age"),
                         [("PRESENT", 30), ("PRESENT", 60), ("NOT_FOUND", 0)])
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_not_newer_total", "users"), 5)
        self.assertEqual(counter(fsd.stats, "fsd_stream_bad_entries_total", "users"), 0)

    # ---- bad entries ---------------------------------------------------------------------------

    def test_bad_entries_are_skipped_and_counted(self):
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port), sessions_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=sessions')
        c = r.client()
        now = h.now_us()
        bad = [
            ({"user_id": 1, "event_ts": now, "nope": 1}, 'unknown field \\"nope\\"'),
            ({"event_ts": now, "age": 1}, "join key user_id is missing"),
            ({"user_id": 1, "age": 1}, "the event time (field event_ts) is missing"),
            ({"user_id": "x1", "event_ts": now}, "join key user_id: invalid int64"),
            ({"user_id": 1, "event_ts": now, "age": "99999999999"}, "out of range for int32"),
            ({"user_id": 1, "event_ts": now, "ctr": "1,5"}, "field ctr: invalid double"),
            ({"user_id": 1, "event_ts": now, "premium": "yes"}, "field premium: invalid bool"),
            ({"user_id": 1, "event_ts": now, "emb": "1,2"}, "field emb: expected a JSON array"),
            ({"user_id": 1, "event_ts": now, "emb": "[1,]"}, "field emb: element 1"),
            ({"user_id": 1, "event_ts": now, "tags": '["a", 1]'}, "expected a string"),
            ({"user_id": 1, "event_ts": now, "tags": '["\\ud800"]'}, "unpaired surrogate"),
            ({"user_id": 1, "event_ts": now, "country": b"\xff"}, "country: not valid UTF-8"),
            ({"user_id": 1, "event_ts": "yesterday"}, "field event_ts: "),
            ({"user_id": 1, "event_ts": 0}, "event_ts must be after 1970"),
            ({"user_id": 1, "event_ts": now + 2 * 3600 * 10**6}, "more than an hour in the future"),
            ({"user_id": 1, "event_ts": now, "__delete": "1", "age": 3}, "carries no feature"),
            ({"user_id": 1, "event_ts": now, "__delete": "maybe"}, "__delete: expected 1"),
        ]
        before = metrics(fsd.stats)
        ids = []
        for fields, _ in bad:
            ids.append(c.xadd("users_stream", fields).decode())
        # a field given twice (Redis keeps both)
        ids.append(c.execute_command("XADD", "users_stream", "*", "user_id", 1, "user_id", 2,
                                     "event_ts", now).decode())
        bad.append((None, "field user_id given twice"))
        # ...and the stream goes on
        c.xadd("users_stream", {"user_id": 5, "event_ts": now, "age": 5})
        # protobuf: not a Row, a Row that does not fit, another field
        c.xadd("sessions_stream", {"row": b"\xff\xff\xff"})
        c.xadd("sessions_stream", {"row": h.row({"user_id": 1}, now).SerializeToString()})
        c.xadd("sessions_stream", {"row": h.row({"user_id": 1, "session_id": "s"}, now, {
            "clicks": ("many", "string_value")}).SerializeToString()})
        c.xadd("sessions_stream", {"data": b"x"})
        c.xadd("sessions_stream", {"row": h.row({"user_id": 1, "session_id": "s"}, now, {
            "clicks": (4, "int64_value")}).SerializeToString()})
        self.wait_applied(fsd, "users", 1)
        self.wait_applied(fsd, "sessions", 1)
        after = metrics(fsd.stats)

        def delta(name, view):
            key = f'{name}{{view="{view}"}}'
            return after.get(key, 0) - before.get(key, 0)
        self.assertEqual(delta("fsd_stream_bad_entries_total", "users"), len(bad))
        self.assertEqual(delta("fsd_stream_updates_applied_total", "users"), 1)
        self.assertEqual(delta("fsd_stream_bad_entries_total", "sessions"), 4)
        self.assertEqual(delta("fsd_stream_updates_applied_total", "sessions"), 1)
        self.assertEqual(values(fsd, "users", [1, 5], "age"), [("NOT_FOUND", 0), ("PRESENT", 5)])
        # each bad entry logged with its ID and the reason
        for entry_id, (_, reason) in zip(ids, bad):
            line = fsd.wait_for_log(r'msg="bad stream entry skipped" view=users .*id=' +
                                    re.escape(entry_id) + ' ', 5)
            self.assertIn(reason, line)
        # list elements are read as their element type; sent a second later, past the
        # per-second cap on these log lines
        list_bad = [
            ({"user_id": 1, "event_ts": now, "levels": "[1, 3000000000]"},
             "field levels: element 1: 3000000000 is out of range for int32"),
            ({"user_id": 1, "event_ts": now, "flags": "[1]"},
             "field flags: element 0: expected true or false"),
            ({"user_id": 1, "event_ts": now, "blobs": '["@@"]'}, "field blobs: element 0: "),
            ({"user_id": 1, "event_ts": now, "visits": '["yesterday"]'}, "field visits: element 0"),
            ({"user_id": 1, "event_ts": now, "weights": '["1"]'},
             "field weights: element 0: expected a number"),
        ]
        time.sleep(1.1)
        for fields, reason in list_bad:
            entry_id = c.xadd("users_stream", fields).decode()
            line = fsd.wait_for_log(r'msg="bad stream entry skipped" view=users .*id=' +
                                    re.escape(entry_id) + ' ', 5)
            self.assertIn(reason, line)
        fsd.wait_for_log(r'view=sessions .*error="field row: not a valid fsd.v1.Row message"', 5)
        fsd.wait_for_log(r'view=sessions .*error="join key session_id of view sessions is '
                         r'missing"', 5)
        fsd.wait_for_log(r'view=sessions .*error="feature clicks is int64, got string_value"', 5)
        fsd.wait_for_log(r'view=sessions .*error="expected exactly one field, row', 5)
        # not a stream at all: an error, retried with backoff, and the view keeps serving
        c.set("not_a_stream", "x")
        f2 = self.start_fsd(config(users_view(r.port, key="not_a_stream")))
        f2.wait_for_log(r'msg="redis refused a stream command; retrying".*WRONGTYPE', 10)
        self.assertEqual(counter(f2.stats, "fsd_stream_connected", "users"), 0)

    def test_reload_warns_that_stream_changes_need_a_restart(self):
        """SIGHUP cannot move a running consumer: a changed stream block, and a new view's
        stream, are logged as needing a restart (the address's password never is), and the
        consumer goes on reading what it read before."""
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        c = r.client()
        moved = users_view(r.port, key="other_stream").replace(
            f'"127.0.0.1:{r.port}"', f'"redis://:hunter2@127.0.0.1:{r.port}"').replace(
            "batch: 100", "batch: 7")
        fsd.write_config(config(moved, users_view(r.port, name="late")))
        fsd.signal(signal.SIGHUP)
        fsd.wait_for_log('msg="config reloaded"')
        line = fsd.wait_for_log(r'level=warn msg="reload: a view\'s stream settings changed; '
                                r'they need a restart, the consumer keeps the old ones until '
                                r'then" view=users ')
        self.assertIn("changes=redis,key,batch", line)
        fsd.wait_for_log(r'level=warn msg="reload: a new view\'s stream is not followed until a '
                         r'restart" view=late')
        self.assertFalse(any("hunter2" in line for line in fsd.log()))
        # the consumer still reads the old key, and nothing else
        c.xadd("other_stream", {"user_id": 2, "event_ts": h.now_us(), "age": 2})
        c.xadd("users_stream", {"user_id": 1, "event_ts": h.now_us(), "age": 1})
        self.wait_applied(fsd, "users", 1)
        self.assertEqual(values(fsd, "users", [1, 2], "age"), [("PRESENT", 1), ("NOT_FOUND", 0)])
        # a reload without stream changes warns about nothing
        warnings = len([line for line in fsd.log() if "level=warn" in line])
        fsd.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(
            [line for line in fsd.log() if 'msg="config reloaded"' in line]) == 2))
        self.assertEqual(len([line for line in fsd.log() if "level=warn" in line]), warnings)

    # ---- Redis goes away -----------------------------------------------------------------------

    def test_redis_killed_and_restarted_loses_no_entry(self):
        """With appendfsync always, every acknowledged entry survives kill -9; fsd reconnects
        with backoff and resumes after the last entry it applied."""
        r = self.start_redis(persistent=True)
        fsd = self.start_fsd(config(users_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        n = 2000
        written = []
        progress = threading.Event()
        t = threading.Thread(target=lambda: written.append(self.produce(
            r, n, on_progress=lambda i: i == n // 3 and progress.set())))
        t.start()
        try:
            self.assertTrue(progress.wait(30))
            r.kill()
            time.sleep(0.5)  # fsd retries meanwhile; the producer waits
            r.start()
        finally:
            t.join(90)
        self.assertEqual(written, [n])
        self.wait_applied(fsd, "users", n, timeout_s=60)
        got = values(fsd, "users", range(n), "age")
        self.assertEqual([i for i, (s, v) in enumerate(got) if s != "PRESENT" or v != i], [])
        m = metrics(fsd.stats)
        self.assertGreaterEqual(m['fsd_stream_reconnects_total{view="users"}'], 1)
        # n, or one more when Redis wrote an XADD but died before answering it (retried)
        self.assertEqual(m['fsd_stream_updates_applied_total{view="users"}'],
                         r.client().xlen("users_stream"))
        self.assertEqual(m['fsd_stream_bad_entries_total{view="users"}'], 0)
        self.assertEqual(m['fsd_stream_connected{view="users"}'], 1)
        fsd.wait_for_log(r'msg="lost the connection to redis; reconnecting" view=users')

    def test_redis_restarted_without_persistence(self):
        """Without persistence the stream is gone after a restart: fsd keeps serving what it
        applied, reads the new stream from its beginning, and its entries arrive."""
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        self.assertEqual(self.produce(r, 100), 100)
        self.wait_applied(fsd, "users", 100)
        r.kill()
        r.start()
        self.assertEqual(r.client().exists("users_stream"), 0)
        fsd.wait_for_log(r'msg="stream not found in redis: reading it from its beginning', 15)
        self.assertEqual(self.produce(r, 50, first=100), 50)
        self.wait_applied(fsd, "users", 150)
        got = values(fsd, "users", range(150), "age")
        self.assertEqual([i for i, (s, v) in enumerate(got) if s != "PRESENT" or v != i], [])

    def test_auth_and_database(self):
        """redis://:password@host:port/db: AUTH, then SELECT; a wrong password is an error
        that is logged (without the password) and retried with backoff."""
        r = self.start_redis(password="s3cret-pw")
        url = f"redis://:s3cret-pw@127.0.0.1:{r.port}/3"
        fsd = self.start_fsd(config(users_view(r.port).replace(f'"127.0.0.1:{r.port}"',
                                                                 f'"{url}"')))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users .* db=3 ')
        r.client(db=3).xadd("users_stream", {"user_id": 1, "event_ts": h.now_us(), "age": 3})
        r.client(db=0).xadd("users_stream", {"user_id": 2, "event_ts": h.now_us(), "age": 0})
        self.wait_applied(fsd, "users", 1)
        time.sleep(0.3)
        self.assertEqual([s for s, _ in values(fsd, "users", [1, 2], "age")],
                         ["PRESENT", "NOT_FOUND"])
        wrong = self.start_fsd(config(users_view(r.port).replace(
            f'"127.0.0.1:{r.port}"', f'"redis://:nope@127.0.0.1:{r.port}"')))
        line = wrong.wait_for_log(r'msg="redis refused a stream command; retrying"', 10)
        self.assertIn("AUTH", line)
        self.assertFalse(any("nope" in l or "s3cret" in l for l in wrong.log() + fsd.log()))
        self.assertEqual(counter(wrong.stats, "fsd_stream_connected", "users"), 0)

    def test_redis_that_stops_answering_is_dropped(self):
        """A Redis that keeps the connection open but answers nothing (SIGSTOP) is given up
        on after block_ms + 5 s; fsd reconnects once it answers again and reads on."""
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port)))
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        c = r.client()
        c.xadd("users_stream", {"user_id": 1, "event_ts": h.now_us(), "age": 1})
        self.wait_applied(fsd, "users", 1)
        r.proc.send_signal(signal.SIGSTOP)
        try:
            fsd.wait_for_log(r'msg="redis did not answer in time; reconnecting" view=users', 15)
        finally:
            r.proc.send_signal(signal.SIGCONT)
        c.xadd("users_stream", {"user_id": 2, "event_ts": h.now_us(), "age": 2})
        self.wait_applied(fsd, "users", 2)
        self.assertEqual(values(fsd, "users", [1, 2], "age"), [("PRESENT", 1), ("PRESENT", 2)])
        self.assertGreaterEqual(counter(fsd.stats, "fsd_stream_reconnects_total", "users"), 1)

    # ---- replicas --------------------------------------------------------------------------------

    def test_two_fsd_processes_serve_identical_values(self):
        r = self.start_redis()
        a = self.start_fsd(config(users_view(r.port)))
        b = self.start_fsd(config(users_view(r.port)))
        c = r.client()
        import random
        rng = random.Random(6)
        now = h.now_us()
        n, entities = 2000, 200
        pipe = c.pipeline(transaction=False)
        for i in range(n):
            e = rng.randrange(entities)
            ts = now - rng.randrange(10**6)  # out of order on purpose
            if rng.random() < 0.05:
                pipe.xadd("users_stream", {"user_id": e, "event_ts": ts, "__delete": 1})
            else:
                pipe.xadd("users_stream", {
                    "user_id": e, "event_ts": ts, "created_ts": rng.randrange(3),
                    "age": rng.randrange(100), "ctr": repr(rng.random()),
                    "tags": '["%d", "x"]' % rng.randrange(9),
                    "emb": "[%r, %r]" % (rng.random(), rng.random())})
        pipe.execute()
        self.wait_applied(a, "users", n)
        self.wait_applied(b, "users", n)
        ra, rb = lookup(a, "users", range(entities)), lookup(b, "users", range(entities))
        self.assertEqual(list(ra.columns), list(rb.columns))
        self.assertGreater(sum(1 for s in ra.columns[0].statuses if s == pb.PRESENT), 100)
        ma, mb = metrics(a.stats), metrics(b.stats)
        for name in ("fsd_stream_updates_applied_total", "fsd_stream_updates_not_newer_total"):
            key = f'{name}{{view="users"}}'
            self.assertEqual(ma[key], mb[key], name)

    # ---- snapshots -----------------------------------------------------------------------------

    def start_parquet_view(self, r, start="0"):
        """fsd serving configs/demo.yaml's user_features (100,000 users from Parquet files
        fsd-demo-data writes, event times a minute to 12 hours old) and following a stream."""
        tmp = tempfile.mkdtemp(prefix="fsd-streams-parquet-")
        self.addCleanup(shutil.rmtree, tmp, True)
        subprocess.run([DEMO_DATA_BIN, tmp], check=True, stdout=subprocess.DEVNULL)
        with open(DEMO_CONFIG) as f:
            text = f.read()
        view = text[text.index("  - name: user_features"):text.index("  - name: item_features")]
        view = view.replace("demo-data/", tmp + "/").replace("    features:\n", f"""\
    stream:
      redis: "127.0.0.1:{r.port}"
      key: user_updates
      start: "{start}"
      batch: 50
      block_ms: 100
    features:
""", 1)
        fsd = self.start_fsd("views:\n" + view)
        self.assertTrue(wait_until(lambda: self.view(fsd).snapshot_version >= 1, 60))
        return fsd

    def view(self, fsd, name="user_features"):
        return next(v for v in fsd.list_views().views if v.name == name)

    def load(self, fsd):
        fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="user_features"),
                  pb.LoadSnapshotResponse)

    def check_ages(self, fsd, expect):
        ids = sorted(expect)
        got = []
        for k in range(0, len(ids), 5000):  # server.max_batch is 10,000
            got += values(fsd, "user_features", ids[k:k + 5000], "age")
        wrong = [(e, v, expect[e]) for e, (_, v) in zip(ids, got) if v != expect[e]]
        self.assertEqual(wrong[:10], [], "%d of %d entities (entity, served, streamed)" % (
            len(wrong), len(ids)))

    def test_stream_updates_during_a_snapshot_load_survive_the_swap(self):
        """Entries applied while LoadSnapshot builds a new table are logged by the store and
        replayed into it: after the swap each streamed value (newer than the snapshot's) is
        the one served, and the load's log line counts them."""
        r = self.start_redis()
        fsd = self.start_parquet_view(r)
        c = r.client()
        expect = {}
        for attempt in range(5):
            version = self.view(fsd).snapshot_version
            self.load(fsd)
            if not wait_until(lambda: self.view(fsd).loading, 10, 0.002):
                continue  # finished before we saw it: again
            i = len(expect)
            while self.view(fsd).snapshot_version == version and i < 50000:
                pipe = c.pipeline(transaction=False)
                for _ in range(20):
                    pipe.xadd("user_updates", {"user_id": i, "event_ts": h.now_us(),
                                               "age": 1000 + i, "country": "zz"})
                    expect[i] = 1000 + i
                    i += 1
                pipe.execute()
            loaded = fsd.wait_for_log(r'msg="snapshot loaded" view=user_features version=%d '
                                      % (version + 1))
            if int(re.search(r"updates_replayed=(\d+)", loaded).group(1)) > 0:
                break
        else:
            self.fail("no stream entry was applied during a load in 5 attempts")
        self.wait_applied(fsd, "user_features", len(expect))
        self.check_ages(fsd, expect)
        self.assertEqual(self.view(fsd).rows, 100000)

    def test_stream_updates_before_a_full_load_survive_it(self):
        """Entries applied before a load began, newer than the rows the source has for their
        entities, are still served after the swap (the store carries live rows newer than the
        snapshot's over); so is a streamed delete: the entity stays deleted."""
        r = self.start_redis()
        fsd = self.start_parquet_view(r)
        c = r.client()
        expect = {i: 1000 + i for i in range(100)}
        for i, age in expect.items():
            c.xadd("user_updates", {"user_id": i, "event_ts": h.now_us(), "age": age})
        deleted = [100, 101]
        for i in deleted:
            c.xadd("user_updates", {"user_id": i, "event_ts": h.now_us(), "__delete": 1})
        self.wait_applied(fsd, "user_features", len(expect) + len(deleted))
        self.check_ages(fsd, expect)
        self.assertEqual([s for s, _ in values(fsd, "user_features", deleted, "age")],
                         ["NOT_FOUND"] * len(deleted))
        version = self.view(fsd).snapshot_version
        self.load(fsd)
        self.assertTrue(wait_until(lambda: self.view(fsd).snapshot_version > version, 60))
        self.check_ages(fsd, expect)
        self.assertEqual([s for s, _ in values(fsd, "user_features", deleted, "age")],
                         ["NOT_FOUND"] * len(deleted))
        # the source's 100,000 users, less the two deleted ones
        self.assertEqual(self.view(fsd).rows, 100000 - len(deleted))

    # ---- start: snapshot -----------------------------------------------------------------------
    # The consumer reads nothing until the view's snapshot carries a stream position
    # (PushSnapshot's or LoadSnapshot's stream_position), then reads the entries after it and
    # goes on as any consumer does; a later snapshot's position never moves it.

    def push_snapshot(self, fsd, messages):
        call = fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        return call(iter(messages), timeout=20)

    def position(self, fsd, view):
        return next(v for v in fsd.list_views().views if v.name == view).snapshot_stream_position

    def test_reads_after_the_pushed_snapshots_position(self):
        r = self.start_redis()
        c = r.client()
        now = h.now_us()
        ids = [c.xadd("users_stream", {"user_id": i, "event_ts": now, "age": 10 + i}).decode()
               for i in range(1, 5)]
        fsd = self.start_fsd(config(users_view(r.port, start="snapshot")))
        fsd.wait_for_log(r'msg="stream consumer waiting for a snapshot with a stream position '
                         r'\(start: snapshot\)" view=users')
        time.sleep(0.5)  # several polls: still nothing read
        m = metrics(fsd.stats)
        self.assertEqual(m['fsd_stream_updates_applied_total{view="users"}'], 0)
        self.assertEqual(m['fsd_stream_waiting_for_snapshot{view="users"}'], 1)
        self.assertEqual(m['fsd_stream_connected{view="users"}'], 0)
        self.assertFalse(any(k.startswith("fsd_stream_last_id_info") for k in m))
        self.assertEqual(self.position(fsd, "users"), "")
        self.assertEqual([s for s, _ in values(fsd, "users", [1, 2, 3, 4], "age")],
                         ["NOT_FOUND"] * 4)

        # The snapshot covers e1 and e2: its rows (older than every entry) for users 1..3.
        old = now - 60 * 1000 * 1000
        rows = [h.row({"user_id": i}, old, {"age": (100 * i, "int32_value")}) for i in (1, 2, 3)]
        resp = self.push_snapshot(fsd, [pb.PushSnapshotRequest(view="users", rows=rows[:2],
                                                               stream_position=ids[1]),
                                        pb.PushSnapshotRequest(rows=rows[2:],
                                                               stream_position=ids[1])])
        self.assertEqual(resp.version, 1)
        self.assertEqual(self.position(fsd, "users"), ids[1])
        self.wait_applied(fsd, "users", 2)
        fsd.wait_for_log(r'msg="stream consumer reading" view=users .* after_id=%s' % ids[1])
        time.sleep(0.3)  # a few more block_ms: e1 and e2 are never read
        m = metrics(fsd.stats)
        self.assertEqual(m['fsd_stream_updates_applied_total{view="users"}'], 2)
        self.assertEqual(m['fsd_stream_waiting_for_snapshot{view="users"}'], 0)
        self.assertEqual(m.get(f'fsd_stream_last_id_info{{view="users",id="{ids[3]}"}}'), 1)
        # e1/e2 would have replaced the older snapshot rows of users 1 and 2
        self.assertEqual(values(fsd, "users", [1, 2, 3, 4], "age"),
                         [("PRESENT", 100), ("PRESENT", 200), ("PRESENT", 13), ("PRESENT", 14)])

        # A later snapshot with an earlier position does not rewind the running consumer.
        self.push_snapshot(fsd, [pb.PushSnapshotRequest(view="users", rows=rows[:1],
                                                        stream_position=ids[0])])
        self.assertEqual(self.position(fsd, "users"), ids[0])
        e5 = c.xadd("users_stream", {"user_id": 5, "event_ts": h.now_us(), "age": 15}).decode()
        self.wait_applied(fsd, "users", 3)
        time.sleep(0.3)
        m = metrics(fsd.stats)
        self.assertEqual(m['fsd_stream_updates_applied_total{view="users"}'], 3)
        self.assertEqual(m.get(f'fsd_stream_last_id_info{{view="users",id="{e5}"}}'), 1)
        # A snapshot without a position records none; "<ms>" is recorded as "<ms>-0".
        self.push_snapshot(fsd, [pb.PushSnapshotRequest(view="users", rows=rows[:1])])
        self.assertEqual(self.position(fsd, "users"), "")
        self.push_snapshot(fsd, [pb.PushSnapshotRequest(view="users", rows=rows[:1],
                                                        stream_position="1700000000000")])
        self.assertEqual(self.position(fsd, "users"), "1700000000000-0")

    def test_bad_positions_are_invalid_arguments(self):
        r = self.start_redis()
        fsd = self.start_fsd(config(users_view(r.port, start="snapshot")))
        row = h.row({"user_id": 1}, h.now_us(), {"age": (1, "int32_value")})
        cases = [
            ([pb.PushSnapshotRequest(view="users", rows=[row], stream_position="12-x")],
             'message 0: stream_position "12-x" is not a stream entry ID (<ms>-<seq> or <ms>)'),
            ([pb.PushSnapshotRequest(view="users", rows=[row], stream_position="-1")],
             'message 0: stream_position "-1" is not a stream entry ID (<ms>-<seq> or <ms>)'),
            ([pb.PushSnapshotRequest(view="users", rows=[row], stream_position="5-1"),
              pb.PushSnapshotRequest(rows=[row], stream_position="5-2")],
             "message 1: stream_position 5-2 differs from the first message's (5-1); later "
             "messages may omit it or repeat it"),
            ([pb.PushSnapshotRequest(view="users", rows=[row]),
              pb.PushSnapshotRequest(rows=[row], stream_position="5-2")],
             "message 1: stream_position 5-2 differs from the first message's (none); later "
             "messages may omit it or repeat it"),
        ]
        for messages, details in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.push_snapshot(fsd, messages)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(cm.exception.details(), details)
        with self.assertRaises(grpc.RpcError) as cm:
            fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="users", stream_position="x"),
                      pb.LoadSnapshotResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.details(),
                         'stream_position "x" is not a stream entry ID (<ms>-<seq> or <ms>)')
        # nothing was swapped in, and the consumer still waits
        self.assertEqual(self.position(fsd, "users"), "")
        self.assertEqual(counter(fsd.stats, "fsd_stream_waiting_for_snapshot", "users"), 1)

    def test_load_snapshot_with_a_position_starts_the_consumer(self):
        """A scheduled load records no position; LoadSnapshot's stream_position is recorded
        with the snapshot it swaps in, and the consumer reads the entries after it."""
        r = self.start_redis()
        c = r.client()
        now = h.now_us()
        e1 = c.xadd("user_updates", {"user_id": 1, "event_ts": now, "age": 1001}).decode()
        c.xadd("user_updates", {"user_id": 2, "event_ts": now, "age": 1002})
        fsd = self.start_parquet_view(r, start="snapshot")
        fsd.wait_for_log(r'msg="stream consumer waiting for a snapshot with a stream position')
        version = self.view(fsd).snapshot_version
        self.assertEqual(self.view(fsd).snapshot_stream_position, "")
        time.sleep(0.3)
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "user_features"),
                         0)
        fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="user_features", stream_position=e1),
                  pb.LoadSnapshotResponse)
        self.assertTrue(wait_until(lambda: self.view(fsd).snapshot_version > version, 60))
        self.assertEqual(self.view(fsd).snapshot_stream_position, e1)
        self.wait_applied(fsd, "user_features", 1)
        time.sleep(0.3)
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "user_features"),
                         1)
        ages = values(fsd, "user_features", [1, 2], "age")
        self.assertNotEqual(ages[0][1], 1001)  # e1 is in the snapshot's range: not read
        self.assertEqual(ages[1], ("PRESENT", 1002))


class StreamDurabilityTest(StreamCase):
    """With store.data_dir, stream rows go through the log of live writes with the position of
    their batch's last entry: after kill -9 fsd serves every entry it applied, even ones Redis
    has trimmed since, and resumes the stream after the last of them, applying none twice."""

    def durable_config(self, port):
        data_dir = tempfile.mkdtemp(prefix="fsd-stream-durable-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        return (f"store:\n  data_dir: {data_dir}\n  checkpoint_interval: 1s\n" +
                config(users_view(port, start="$")))

    def kill9(self, fsd):
        self.fsds.remove(fsd)
        fsd.proc.send_signal(signal.SIGKILL)
        fsd.proc.wait(10)
        fsd.channel.close()
        fsd.proc.stderr.close()

    def resumed_after(self, fsd):
        line = fsd.wait_for_log(r'msg="stream resumes after the last entry store.data_dir '
                                r'holds" view=users')
        return re.search(r"after_id=(\S+)", line).group(1)

    def test_a_restart_serves_trimmed_entries_and_resumes_after_the_last_applied(self):
        r = self.start_redis()
        yaml = self.durable_config(r.port)
        fsd = self.start_fsd(yaml)
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        self.assertEqual(self.produce(r, 300), 300)
        self.wait_applied(fsd, "users", 300)
        self.assertGreater(metrics(fsd.stats)["fsd_wal_records_total"], 0)
        last_id = r.client().xrevrange("users_stream", count=1)[0][0].decode()
        self.kill9(fsd)
        # Redis no longer has them; entries come while fsd is down.
        r.client().xtrim("users_stream", maxlen=0)
        self.assertEqual(self.produce(r, 200, first=300), 200)
        fsd = self.start_fsd(yaml)  # start "$" would skip the 200: the log's position wins
        self.assertEqual(self.resumed_after(fsd), last_id)
        self.wait_applied(fsd, "users", 200)
        got = values(fsd, "users", range(500), "age")
        self.assertEqual([i for i, (st, v) in enumerate(got) if st != "PRESENT" or v != i], [])
        time.sleep(0.5)  # more XREADs: still nothing applied twice
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "users"), 200)

    def test_kill_9_while_entries_arrive_loses_none_and_applies_none_twice(self):
        r = self.start_redis()
        yaml = self.durable_config(r.port)
        fsd = self.start_fsd(yaml)
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        n = 3000
        written = []
        progress = threading.Event()
        t = threading.Thread(target=lambda: written.append(self.produce(
            r, n, on_progress=lambda i: i == n // 3 and progress.set())))
        t.start()
        try:
            self.assertTrue(progress.wait(30))
            self.kill9(fsd)
            fsd = self.start_fsd(yaml)
        finally:
            t.join(90)
        self.assertEqual(written, [n])
        after = self.resumed_after(fsd)
        expected = len(r.client().xrange("users_stream", min="(" + after))
        self.assertGreater(expected, 0)
        self.wait_applied(fsd, "users", expected, timeout_s=60)
        got = values(fsd, "users", range(n), "age")
        self.assertEqual([i for i, (st, v) in enumerate(got) if st != "PRESENT" or v != i], [])
        time.sleep(0.5)
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "users"),
                         expected)

    def test_a_log_that_keeps_refusing_backs_the_consumer_off_and_loses_nothing(self):
        """Entries the log cannot take are applied by none; the consumer reads them again
        after a backoff that doubles (100 ms to 5 s), not every 100 ms; once the log takes
        writes again every entry is applied, once."""
        r = self.start_redis()
        yaml = self.durable_config(r.port)
        data_dir = re.search(r"data_dir: (\S+)", yaml).group(1)
        fsd = self.start_fsd(yaml)
        fsd.wait_for_log(r'msg="stream consumer reading" view=users')
        self.assertEqual(self.produce(r, 100), 100)
        self.wait_applied(fsd, "users", 100)
        self.assertTrue(os.listdir(os.path.join(data_dir, "wal")))
        # As far as fsd can tell the disk is full: no file of its can grow past 16 bytes, so
        # neither the log's segment nor a new one (whose header alone is longer) takes a batch.
        subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=16:unlimited"], check=True)
        reconnects = counter(fsd.stats, "fsd_stream_reconnects_total", "users")
        self.assertEqual(self.produce(r, 100, first=100), 100)
        fsd.wait_for_log(r'msg="stream entries could not be made durable, none applied')
        time.sleep(5)
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "users"), 100)
        tries = counter(fsd.stats, "fsd_stream_reconnects_total", "users") - reconnects
        self.assertGreaterEqual(tries, 2)  # it keeps trying ...
        self.assertLessEqual(tries, 12)  # ... at 0.1, 0.2, 0.4 ... s, not every 0.1 s (~50)
        got = values(fsd, "users", range(100, 200), "age")
        self.assertEqual({st for st, _ in got}, {"NOT_FOUND"})
        subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=unlimited:unlimited"],
                       check=True)
        self.wait_applied(fsd, "users", 200, timeout_s=30)
        got = values(fsd, "users", range(200), "age")
        self.assertEqual([i for i, (st, v) in enumerate(got) if st != "PRESENT" or v != i], [])
        time.sleep(0.5)
        self.assertEqual(counter(fsd.stats, "fsd_stream_updates_applied_total", "users"), 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
