"""GetFeatures, ListViews, PushRows and health against a real fsd, with grpcio as the client."""
import concurrent.futures
import signal
import socket
import struct
import threading
import time
import unittest

import grpc

import harness as h
from harness import pb

HOUR_US = 3600 * 1000000

CONFIG = """
  max_batch: 2000
  max_message_bytes: 128KiB
views:
  - name: users
    join_keys: [{name: user_id, type: int64}]
    ttl: 1h
    features:
      - {name: age, type: int32, default: 0}
      - {name: visits, type: int64, default: zero}
      - {name: ratio, type: float}
      - {name: score, type: double, default: 0.5}
      - {name: premium, type: bool, default: false}
      - {name: country, type: string, default: "unknown"}
      - {name: photo, type: bytes}
      - {name: last_seen, type: timestamp}
      - {name: embedding, type: float_list, default: zero}
      - {name: recent, type: int64_list, default: [7, 8]}
      - {name: segments, type: string_list, default: [new_user]}
      - {name: levels, type: int32_list, default: [-1, 2147483647]}
      - {name: weights, type: double_list, default: [0.1]}
      - {name: flags, type: bool_list, default: [true, false]}
      - {name: blobs, type: bytes_list, default: ["AP8=", ""]}
      - {name: visits_at, type: timestamp_list, default: [1970-01-01T00:00:01Z]}
  - name: items
    join_keys: [{name: item_id, type: string}]
    ttl: 0
    features:
      - {name: price, type: double}
      - {name: category, type: string, default: "none"}
  - name: user_item
    join_keys: [{name: user_id, type: int64}, {name: item_id, type: string}]
    ttl: 1h
    features:
      - {name: clicks, type: int64, default: zero}
feature_services:
  - name: ranking
    features: ["users:age", "users:score", "items:price", "user_item:clicks"]
"""

USER_VALUES = {
    "age": (-42, "int32_value"),
    "visits": (2**62, "int64_value"),
    "ratio": (0.1, "float_value"),
    "score": (0.1 + 0.2, "double_value"),
    "premium": (True, "bool_value"),
    "country": ("Österreich", "string_value"),
    "photo": (b"\x00\xffbytes", "bytes_value"),
    "last_seen": (-123456789, "timestamp_us"),
    "embedding": ([0.25, -1.5, 3.4028234663852886e38], "float_list"),
    "recent": ([-(2**63), 0, 2**63 - 1], "int64_list"),
    "segments": (["a", "", "ünï"], "string_list"),
    "levels": ([-(2**31), 0, 2**31 - 1], "int32_list"),
    "weights": ([0.1 + 0.2, -0.0, 5e-324], "double_list"),
    "flags": ([False, True, True], "bool_list"),
    "blobs": ([b"\x00", b"", b"\xff\xfe"], "bytes_list"),
    "visits_at": ([-1, 2**63 - 1], "timestamp_list"),
}


def float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


class ServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.now = h.now_us()
        f = cls.fsd
        # user 1: every type present, 5 s old; user 2: all null, fresh; user 3: 90 min old
        # (past the 1 h TTL, short of TTL + the 1 h expiry grace, so the sweeper keeps it)
        rows = [
            h.row({"user_id": 1}, cls.now - 5_000_000, USER_VALUES),
            h.row({"user_id": 2}, cls.now),
            h.row({"user_id": 3}, cls.now - 90 * 60 * 1000000, {"age": (30, "int32_value")}),
        ]
        rows += [h.row({"user_id": 1000 + i}, cls.now, {"age": (i, "int32_value")})
                 for i in range(1000)]
        resp = f.push(pb.PushRowsRequest(view="users", rows=rows))
        assert resp.inserted == len(rows), resp
        f.push(pb.PushRowsRequest(view="items", rows=[
            h.row({"item_id": "a"}, cls.now - 10 * HOUR_US, {"price": (9.99, "double_value"),
                                                             "category": ("toys", "string_value")}),
            h.row({"item_id": "b"}, cls.now, {"price": (1.0, "double_value")}),
        ]))
        f.push(pb.PushRowsRequest(view="user_item", rows=[
            h.row({"user_id": 1, "item_id": "a"}, cls.now, {"clicks": (3, "int64_value")}),
            h.row({"user_id": 1, "item_id": "b"}, cls.now, {"clicks": (4, "int64_value")}),
            h.row({"user_id": 2, "item_id": "a"}, cls.now, {"clicks": (5, "int64_value")}),
        ]))

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        assert rc == 0, "fsd exited with %d:\n%s" % (rc, "\n".join(cls.fsd.log()[-30:]))

    def get(self, features=(), service="", **key_columns):
        return self.fsd.get(pb.GetFeaturesRequest(
            features=list(features), feature_service=service, keys=h.keys(**key_columns),
            include_event_timestamps=True))

    def assertFails(self, code, fragment, request=None, raw=None):
        with self.assertRaises(grpc.RpcError) as ctx:
            if raw is not None:
                self.fsd.raw(h.SERVICE + "GetFeatures", raw)
            else:
                self.fsd.get(request)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertIn(fragment, ctx.exception.details())

    # ---- values, types, statuses ---------------------------------------------------------

    def test_single_entity_every_type_round_trips(self):
        r = self.get(["users:*"], user_id=[1])
        self.assertEqual(r.entities, 1)
        c = {col.name.split(":")[1]: col for col in r.columns}
        for col in r.columns:
            self.assertEqual(list(col.statuses), [pb.PRESENT], col.name)
            self.assertEqual(col.event_timestamps_us[0], self.now - 5_000_000)
        self.assertEqual(c["age"].type, pb.INT32)
        self.assertEqual(list(c["age"].int32_values), [-42])
        self.assertEqual(list(c["visits"].int64_values), [2**62])
        self.assertEqual(list(c["ratio"].float_values), [float32(0.1)])
        self.assertEqual(list(c["score"].double_values), [0.1 + 0.2])  # bit for bit
        self.assertEqual(list(c["premium"].bool_values), [True])
        self.assertEqual(list(c["country"].string_values), ["Österreich"])
        self.assertEqual(list(c["photo"].bytes_values), [b"\x00\xffbytes"])
        self.assertEqual(c["last_seen"].type, pb.TIMESTAMP)
        self.assertEqual(list(c["last_seen"].int64_values), [-123456789])
        self.assertEqual(list(c["embedding"].float_values),
                         [0.25, -1.5, float32(3.4028234663852886e38)])
        self.assertEqual(list(c["embedding"].list_lengths), [3])
        self.assertEqual(list(c["recent"].int64_values), [-(2**63), 0, 2**63 - 1])
        self.assertEqual(list(c["segments"].string_values), ["a", "", "ünï"])
        self.assertEqual(list(c["segments"].list_lengths), [3])
        for name, (values, _) in USER_VALUES.items():
            if name not in ("ratio", "embedding"):  # float32: compared above
                got = c[name]
                arrays = [list(getattr(got, a)) for a in (
                    "int32_values", "int64_values", "double_values", "bool_values",
                    "string_values", "bytes_values") if len(getattr(got, a)) > 0]
                self.assertEqual(arrays, [values if isinstance(values, list) else [values]],
                                 name)
        self.assertEqual(c["levels"].type, pb.INT32_LIST)
        self.assertEqual(c["visits_at"].type, pb.TIMESTAMP_LIST)
        self.assertEqual(list(c["visits_at"].list_lengths), [2])
        self.assertEqual(r.values_served, len(USER_VALUES))
        self.assertEqual(r.defaults_not_found + r.defaults_null_value
                         + r.defaults_outside_max_age, 0)
        (stale,) = r.views
        self.assertEqual(stale.view, "users")
        self.assertAlmostEqual(stale.staleness_ms[0], (h.now_us() - self.now + 5_000_000) / 1000,
                               delta=2000)

    def test_missing_null_and_stale_values_get_defaults(self):
        # 1 present, 2 null, 3 too old, 4 missing
        r = self.get(["users:age", "users:score", "users:ratio", "users:recent",
                      "users:segments", "users:country"], user_id=[1, 2, 3, 4])
        age, score, ratio, recent, segments, country = r.columns
        P, NF, NV, OLD = pb.PRESENT, pb.NOT_FOUND, pb.NULL_VALUE, pb.OUTSIDE_MAX_AGE
        self.assertEqual(list(age.statuses), [P, NV, OLD, NF])
        self.assertEqual(list(age.int32_values), [-42, 0, 0, 0])  # literal 0 for all three
        # a row past its TTL is too old as a whole, null values included
        self.assertEqual(list(score.statuses), [P, NV, OLD, NF])
        self.assertEqual(list(score.double_values), [0.1 + 0.2, 0.5, 0.5, 0.5])
        self.assertTrue(score.has_default)
        # no default: the type's zero holds the place, has_default says it is not a default
        self.assertEqual(list(ratio.float_values), [float32(0.1), 0.0, 0.0, 0.0])
        self.assertFalse(ratio.has_default)
        self.assertEqual(list(recent.list_lengths), [3, 2, 2, 2])
        self.assertEqual(list(recent.int64_values)[3:], [7, 8, 7, 8, 7, 8])
        self.assertEqual(list(segments.string_values)[3:], ["new_user"] * 3)
        self.assertEqual(list(country.string_values), ["Österreich", "unknown", "unknown",
                                                       "unknown"])
        # the new list types' literal defaults, for the entity that has no row
        lists = self.get(["users:levels", "users:weights", "users:flags", "users:blobs",
                          "users:visits_at"], user_id=[4])
        levels, weights, flags, blobs, visits_at = lists.columns
        self.assertEqual(list(levels.int32_values), [-1, 2**31 - 1])
        self.assertEqual(list(weights.double_values), [0.1])
        self.assertEqual(list(flags.bool_values), [True, False])
        self.assertEqual(list(blobs.bytes_values), [b"\x00\xff", b""])
        self.assertEqual(list(visits_at.int64_values), [1_000_000])
        self.assertEqual([c.has_default for c in lists.columns], [True] * 5)
        self.assertEqual(list(blobs.list_lengths), [2])
        self.assertEqual(r.values_served, 24)
        # 5 of the 6 features have a default, served for users 2, 3 and 4 alike
        self.assertEqual(r.defaults_not_found, 5)
        self.assertEqual(r.defaults_null_value, 5)
        self.assertEqual(r.defaults_outside_max_age, 5)
        stale = list(r.views[0].staleness_ms)
        self.assertEqual(stale[3], -1)
        self.assertGreater(stale[2], 90 * 60 * 1000 - 1000)
        self.assertEqual(list(age.event_timestamps_us)[3], 0)

    def test_batches_of_100_and_1000(self):
        for n in (100, 1000):
            ids = [1000 + i for i in range(n)]
            ids[n // 2] = -5  # one missing
            r = self.get(["users:age"], user_id=ids)
            self.assertEqual(r.entities, n)
            (age,) = r.columns
            expected = [i for i in range(n)]
            expected[n // 2] = 0
            self.assertEqual(list(age.int32_values), expected)
            self.assertEqual(list(age.statuses).count(pb.NOT_FOUND), 1)
            self.assertEqual(r.defaults_not_found, 1)

    def test_string_and_composite_keys(self):
        r = self.get(["items:price", "items:category"], item_id=["a", "b", "zzz"])
        price, category = r.columns
        self.assertEqual(list(price.double_values), [9.99, 1.0, 0.0])
        self.assertEqual(list(price.statuses), [pb.PRESENT, pb.PRESENT, pb.NOT_FOUND])
        self.assertEqual(list(category.statuses), [pb.PRESENT, pb.NULL_VALUE, pb.NOT_FOUND])
        self.assertEqual(list(category.string_values), ["toys", "none", "none"])
        # ttl 0: ten hours old is still fresh
        self.assertGreater(r.views[0].staleness_ms[0], 10 * 3600 * 1000 - 1000)
        r = self.get(["user_item:clicks"], user_id=[1, 1, 2, 2], item_id=["a", "b", "a", "b"])
        (clicks,) = r.columns
        self.assertEqual(list(clicks.int64_values), [3, 4, 5, 0])
        self.assertEqual(list(clicks.statuses)[3], pb.NOT_FOUND)

    def test_mixed_views_and_feature_service(self):
        r = self.get(service="ranking", user_id=[1, 2], item_id=["a", "b"])
        self.assertEqual([c.name for c in r.columns],
                         ["users:age", "users:score", "items:price", "user_item:clicks"])
        self.assertEqual(list(r.columns[2].double_values), [9.99, 1.0])
        self.assertEqual(list(r.columns[3].int64_values), [3, 0])
        self.assertEqual(sorted(v.view for v in r.views), ["items", "user_item", "users"])
        # refs and a service combine
        r = self.get(["items:category"], service="ranking", user_id=[1], item_id=["a"])
        self.assertEqual(r.columns[0].name, "items:category")
        self.assertEqual(len(r.columns), 5)

    # ---- errors --------------------------------------------------------------------------

    def test_errors_name_the_problem(self):
        INVALID = grpc.StatusCode.INVALID_ARGUMENT
        req = pb.GetFeaturesRequest
        self.assertFails(INVALID, "malformed GetFeaturesRequest", raw=b"\xff\xff\xff")
        self.assertFails(INVALID, 'unknown view "nope"',
                         req(features=["nope:x"], keys=h.keys(user_id=[1])))
        self.assertFails(INVALID, 'view users has no feature "nope"',
                         req(features=["users:nope"], keys=h.keys(user_id=[1])))
        self.assertFails(INVALID, "not of the form view:feature",
                         req(features=["users"], keys=h.keys(user_id=[1])))
        self.assertFails(INVALID, "join key user_id of view users is int64, got string values",
                         req(features=["users:age"], keys=h.keys(user_id=["1"])))
        self.assertFails(INVALID, "key columns differ in length: user_id has 2 entities, "
                         "item_id has 1",
                         req(features=["user_item:clicks"],
                             keys=h.keys(user_id=[1, 2], item_id=["a"])))
        self.assertFails(INVALID, "view items needs join key item_id",
                         req(features=["items:price"], keys=h.keys(user_id=[1])))
        self.assertFails(INVALID, "batch of 2001 entities exceeds the limit of 2000",
                         req(features=["users:age"], keys=h.keys(user_id=list(range(2001)))))
        self.assertFails(INVALID, "no features requested", req(keys=h.keys(user_id=[1])))
        self.assertFails(grpc.StatusCode.NOT_FOUND, 'unknown feature service "nope"',
                         req(feature_service="nope", keys=h.keys(user_id=[1])))
        big = req(features=["users:age"], keys=h.keys(user_id=[2**62 + i for i in range(20000)]))
        self.assertFails(grpc.StatusCode.RESOURCE_EXHAUSTED, "131072", big)
        # the server is still fine
        self.assertEqual(self.get(["users:age"], user_id=[1]).columns[0].int32_values[0], -42)

    def test_response_above_the_message_limit_names_the_option(self):
        # 2000 entities x 11 features with 8-byte event times: about 200 KiB, over 128 KiB
        ids = [1000 + i % 1000 for i in range(2000)]
        self.assertFails(grpc.StatusCode.RESOURCE_EXHAUSTED, "exceeds server.max_message_bytes",
                         pb.GetFeaturesRequest(features=["users:*"], keys=h.keys(user_id=ids),
                                               include_event_timestamps=True))

    def test_budget_spent_before_the_lookup_fails_fast(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.get(pb.GetFeaturesRequest(features=["users:age"], keys=h.keys(user_id=[1]),
                                               budget_us=1))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertIn("latency budget of 1 us (from the request's budget_us)",
                      ctx.exception.details())
        # a generous budget passes
        r = self.fsd.get(pb.GetFeaturesRequest(features=["users:age"], keys=h.keys(user_id=[1]),
                                               budget_us=5_000_000))
        self.assertEqual(r.columns[0].int32_values[0], -42)

    # ---- concurrency ---------------------------------------------------------------------

    def test_many_concurrent_streams_on_one_connection(self):
        call = self.fsd.channel.unary_unary(
            h.SERVICE + "GetFeatures", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.GetFeaturesResponse.FromString)
        futures = [call.future(pb.GetFeaturesRequest(features=["users:age"],
                                                     keys=h.keys(user_id=[1000 + i])), timeout=30)
                   for i in range(500)]
        for i, fut in enumerate(futures):
            self.assertEqual(fut.result().columns[0].int32_values[0], i)

    def test_many_connections(self):
        def worker(k):
            with grpc.insecure_channel(self.fsd.address) as ch:
                call = ch.unary_unary(h.SERVICE + "GetFeatures",
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=pb.GetFeaturesResponse.FromString)
                for i in range(20):
                    uid = 1000 + (k * 20 + i) % 1000
                    r = call(pb.GetFeaturesRequest(features=["users:age"],
                                                   keys=h.keys(user_id=[uid])), timeout=30)
                    if r.columns[0].int32_values[0] != uid - 1000:
                        return False
            return True
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            self.assertTrue(all(pool.map(worker, range(32))))

    def test_bytes_that_are_not_http2_close_only_that_connection(self):
        s = socket.create_connection(("127.0.0.1", self.fsd.port), timeout=5)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)  # TLS

        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()  # the server closed it (recv returned b"")
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:80])
        self.assertEqual(self.get(["users:age"], user_id=[1]).columns[0].int32_values[0], -42)

    # ---- other methods -------------------------------------------------------------------

    def test_health_check(self):
        self.assertEqual(self.fsd.health().status, h.health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(self.fsd.health("fsd.v1.FeatureService").status,
                         h.health_pb2.HealthCheckResponse.SERVING)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.health("other.Service")
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_list_views(self):
        r = self.fsd.list_views()
        views = {v.name: v for v in r.views}
        self.assertEqual(sorted(views), ["items", "user_item", "users"])
        users = views["users"]
        self.assertEqual(users.ttl_seconds, 3600)
        self.assertEqual([(k.name, k.type) for k in users.join_keys],
                         [("user_id", pb.KEY_INT64)])
        self.assertEqual(users.rows, 1003)
        self.assertGreater(users.memory_bytes, 1003 * 40)
        f = {x.name: x for x in users.features}
        self.assertEqual((f["score"].type, f["score"].default_kind, f["score"].default_value),
                         (pb.DOUBLE, "literal", "0.5"))
        self.assertEqual(f["recent"].default_value, "[7, 8]")
        self.assertEqual(f["ratio"].default_kind, "none")
        self.assertEqual(f["embedding"].default_kind, "zero")
        self.assertEqual(f["flags"].default_value, "[true, false]")
        self.assertEqual(f["levels"].type, pb.INT32_LIST)
        self.assertEqual(f["weights"].default_value, "[0.10000000000000001]")
        self.assertEqual(f["blobs"].default_value, "[(2 bytes), (0 bytes)]")
        self.assertEqual([k.name for k in views["user_item"].join_keys], ["user_id", "item_id"])
        (svc,) = r.feature_services
        self.assertEqual(svc.name, "ranking")
        self.assertEqual(list(svc.features), ["users:age", "users:score", "items:price",
                                              "user_item:clicks"])


class PushRowsTest(unittest.TestCase):
    def setUp(self):
        self.fsd = h.Fsd("""
views:
  - name: v
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
      - {name: x, type: double}
      - {name: s, type: string}
""")

    def tearDown(self):
        self.assertEqual(self.fsd.stop(), 0)

    def x(self, ids):
        r = self.fsd.get(pb.GetFeaturesRequest(features=["v:x"], keys=h.keys(id=ids)))
        return [v if s == pb.PRESENT else None
                for v, s in zip(r.columns[0].double_values, r.columns[0].statuses)]

    def push(self, *rows):
        return self.fsd.push(pb.PushRowsRequest(view="v", rows=list(rows)))

    def test_newer_rows_win_and_older_ones_are_ignored(self):
        r = self.push(h.row({"id": 1}, 100, {"x": (1.0, "double_value")}),
                      h.row({"id": 1}, 200, {"x": (2.0, "double_value")}),
                      h.row({"id": 1}, 150, {"x": (3.0, "double_value")}),
                      h.row({"id": 1}, 200, {"x": (4.0, "double_value")}, created_ts_us=1))
        self.assertEqual((r.inserted, r.replaced, r.not_newer, r.deleted), (1, 2, 1, 0))
        self.assertEqual(self.x([1]), [4.0])
        r = self.push(h.row({"id": 1}, 300, delete=True), h.row({"id": 1}, 250,
                                                                  {"x": (5.0, "double_value")}))
        self.assertEqual((r.deleted, r.not_newer), (1, 1))
        self.assertEqual(self.x([1]), [None])

    def test_a_bad_row_rejects_the_whole_batch(self):
        cases = [
            (h.row({"id": 2}, 1, {"x": ("text", "string_value")}),
             "row 1: feature x is double, got string_value"),
            (h.row({"id": 2}, 1, {"nope": (1.0, "double_value")}),
             'row 1: view v has no feature "nope"'),
            (h.row({"id": "2"}, 1), "row 1: join key id of view v is int64, got string"),
            (h.row({}, 1), "row 1: join key id of view v is missing"),
            (h.row({"id": 2, "other": 3}, 1), 'row 1: "other" is not a join key of view v'),
        ]
        for bad, message in cases:
            with self.assertRaises(grpc.RpcError) as ctx:
                self.push(h.row({"id": 1}, 1, {"x": (1.0, "double_value")}), bad)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(message, ctx.exception.details())
            self.assertEqual(self.x([1, 2]), [None, None])  # nothing applied
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.push(pb.PushRowsRequest(view="nope", rows=[h.row({"id": 1}, 1)]))
        self.assertIn('unknown view "nope"', ctx.exception.details())

    def test_timestamps_must_be_set_and_not_far_in_the_future(self):
        for ts, message in [(0, "row 0: event_timestamp_us must be set"),
                            (-5, "row 0: event_timestamp_us must be set"),
                            (h.now_us() + 2 * 3600 * 1000000, "more than an hour in the future")]:
            with self.assertRaises(grpc.RpcError) as ctx:
                self.push(h.row({"id": 1}, ts, {"x": (1.0, "double_value")}))
            self.assertIn(message, ctx.exception.details())
        self.assertEqual(self.x([1]), [None])

    def test_strings_with_nul_stay_whole_and_invalid_utf8_is_refused(self):
        # regression: keys and values were cut at the first NUL, so "u\0" overwrote "u"
        f = h.Fsd('''
views:
  - name: s
    join_keys: [{name: k, type: string}]
    ttl: 0
    features: [{name: v, type: string}]
''')
        try:
            f.push(pb.PushRowsRequest(view="s", rows=[
                h.row({"k": "u"}, 1, {"v": ("plain", "string_value")}),
                h.row({"k": "u\0"}, 1, {"v": ("with\0nul", "string_value")})]))
            r = f.get(pb.GetFeaturesRequest(features=["s:v"], keys=h.keys(k=["u", "u\0"])))
            self.assertEqual(list(r.columns[0].string_values), ["plain", "with\0nul"])
            # a string value that is not UTF-8 would make every client fail to read it back
            req = pb.PushRowsRequest(view="s", rows=[h.row({"k": "w"}, 1, {"v": ("XX",
                                                                              "string_value")})])
            raw = req.SerializeToString().replace(b"XX", b"\xff\xfe")
            with self.assertRaises(grpc.RpcError) as ctx:
                f.raw(h.SERVICE + "PushRows", raw)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("row 0: feature v is not valid UTF-8", ctx.exception.details())
        finally:
            self.assertEqual(f.stop(), 0)


class LifecycleTest(unittest.TestCase):
    CONFIG = """
views:
  - name: v
    join_keys: [{name: id, type: int64}]
    ttl: 1h
    features:
      - {name: x, type: double, default: 1.5}
"""

    def test_sighup_adds_views_and_applies_new_ttl_and_defaults(self):
        f = h.Fsd(self.CONFIG)
        try:
            f.push(pb.PushRowsRequest(view="v", rows=[
                h.row({"id": 1}, h.now_us() - 90 * 60 * 1000000, {"x": (9.0, "double_value")})]))
            r = f.get(pb.GetFeaturesRequest(features=["v:x"], keys=h.keys(id=[1, 2])))
            self.assertEqual(list(r.columns[0].statuses), [pb.OUTSIDE_MAX_AGE, pb.NOT_FOUND])
            self.assertEqual(list(r.columns[0].double_values), [1.5, 1.5])
            f.write_config(self.CONFIG.replace("ttl: 1h", "ttl: 3h").replace("1.5", "2.5") + """
  - name: w
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features: [{name: y, type: int64}]
""")
            f.signal(signal.SIGHUP)
            f.wait_for_log('msg="config reloaded"')
            r = f.get(pb.GetFeaturesRequest(features=["v:x", "w:y"], keys=h.keys(id=[1, 2])))
            self.assertEqual(list(r.columns[0].statuses), [pb.PRESENT, pb.NOT_FOUND])
            self.assertEqual(list(r.columns[0].double_values), [9.0, 2.5])
            # a change that needs a restart is refused and logged; serving goes on
            f.write_config(self.CONFIG.replace("type: double", "type: float"))
            f.signal(signal.SIGHUP)
            f.wait_for_log("reload refused: a view's join keys or features changed")
            r = f.get(pb.GetFeaturesRequest(features=["w:y"], keys=h.keys(id=[1])))
            self.assertEqual(list(r.columns[0].statuses), [pb.NOT_FOUND])
        finally:
            self.assertEqual(f.stop(), 0)

    def test_sigterm_finishes_calls_in_flight_and_exits_zero(self):
        f = h.Fsd(self.CONFIG)
        call = f.channel.unary_unary(h.SERVICE + "GetFeatures",
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=pb.GetFeaturesResponse.FromString)
        req = pb.GetFeaturesRequest(features=["v:x"], keys=h.keys(id=list(range(1000))))
        results = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                fut = call.future(req, timeout=10)
                try:
                    results.append(len(fut.result().columns[0].statuses))
                except grpc.RpcError as e:
                    results.append(e.code())
                    return

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        f.signal(signal.SIGTERM)
        rc = f.proc.wait(20)
        stop.set()
        for t in threads:
            t.join(20)
        self.assertEqual(rc, 0)
        ok = [r for r in results if r == 1000]
        self.assertGreater(len(ok), 0)
        # calls either completed whole or were refused as the server went away; none broke
        self.assertEqual([r for r in results if r != 1000 and r != grpc.StatusCode.UNAVAILABLE],
                         [])
        f.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
