"""Feast's gRPC serving API against a real fsd: a grpcio client with messages compiled from
the project's proto/feast/, sending what Feast's clients send. For the same data and keys,
GetOnlineFeatures agrees with fsd's GetFeatures value for value and status for status, for
every type fsd serves, every status, composite and int32 keys, feature services, full and
short names; and Feast's errors (name collisions, unknown views and join keys, keys of the
wrong kind) come back as INVALID_ARGUMENT with Feast's wording where Feast has one."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import grpc  # noqa: E402

import harness as h  # noqa: E402
from harness import pb  # noqa: E402
from feast.serving import ServingService_pb2 as fs  # noqa: E402
from feast.types import Value_pb2 as fv  # noqa: E402

SERVICE = "/feast.serving.ServingService/"
NOW_US = h.now_us()
HOUR_US = 3600 * 1_000_000

CONFIG = """
views:
  - name: drivers
    join_keys: [{name: driver_id, type: int64}]
    ttl: 1h
    features:
      - {name: conv_rate, type: double}
      - {name: trips, type: int64}
      - {name: rating, type: float}
      - {name: level, type: int32, default: 7}
      - {name: active, type: bool}
      - {name: name, type: string}
      - {name: photo, type: bytes}
      - {name: seen, type: timestamp}
      - {name: emb, type: float_list}
      - {name: ids, type: int64_list}
      - {name: tags, type: string_list}
      - {name: counts, type: int32_list}
      - {name: weights, type: double_list}
      - {name: flags, type: bool_list}
      - {name: blobs, type: bytes_list}
      - {name: stamps, type: timestamp_list}
  - name: cars
    join_keys: [{name: driver_id, type: int64}]
    ttl: 0
    features:
      - {name: trips, type: int64}
  - name: pairs
    join_keys: [{name: driver_id, type: int64}, {name: city, type: string}]
    ttl: 0
    features:
      - {name: score, type: double}
feature_services:
  - name: driver_basics
    features: ["drivers:conv_rate", "drivers:trips"]
"""

FEATURES = ["conv_rate", "trips", "rating", "level", "active", "name", "photo", "seen", "emb",
            "ids", "tags", "counts", "weights", "flags", "blobs", "stamps"]


def driver(i, event_us, nulls=()):
    values = {"conv_rate": (i / 10, "double_value"), "trips": (i * 100, "int64_value"),
              "rating": (i + 0.5, "float_value"), "level": (-i, "int32_value"),
              "active": (i % 2 == 1, "bool_value"), "name": (f"d{i}", "string_value"),
              "photo": (bytes([i, 0, 255]), "bytes_value"),
              "seen": (1_700_000_000_000_000 + i * 1_000_000, "timestamp_us"),
              "emb": ([i, i + 0.25], "float_list"), "ids": ([i, -i], "int64_list"),
              "tags": ([f"t{i}", ""], "string_list"),
              "counts": ([-(2**31), i, 2**31 - 1], "int32_list"),
              "weights": ([i / 3, -0.0, 1e300], "double_list"),
              "flags": ([True, i % 2 == 0], "bool_list"), "blobs": ([bytes([i, 0]), b""], "bytes_list"),
              # before 1970 too: Feast's seconds round down
              "stamps": ([1_700_000_000_250_000 + i, -1], "timestamp_list")}
    for n in nulls:
        values[n] = (None, "")
    return h.row({"driver_id": i}, event_us, values)


def call(fsd, method, request, response_type, timeout=10, metadata=None):
    """A unary call of Feast's ServingService, as Feast's generated stubs make it."""
    stub = fsd.channel.unary_unary(SERVICE + method,
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_type.FromString)
    return stub(request, timeout=timeout, metadata=metadata)


def entities(**columns):
    """entities(driver_id=[1, 2]) -> the map Feast's clients send: ints as int64_val."""
    out = {}
    for name, values in columns.items():
        out[name] = fv.RepeatedValue(val=[
            fv.Value(string_val=v) if isinstance(v, str) else fv.Value(int64_val=v)
            for v in values])
    return out


def feast_value(v):
    """A feast Value as a plain Python value (None when null)."""
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    x = getattr(v, kind)
    return list(x.val) if kind.endswith("_list_val") else x


def fsd_value(col, i, lists):
    """Entity i's value in an fsd FeatureColumn, as Python; lists from list_lengths."""
    for field in ("int32_values", "int64_values", "float_values", "double_values",
                  "bool_values", "string_values", "bytes_values"):
        arr = getattr(col, field)
        if len(arr) > 0:
            if col.list_lengths:
                start = sum(col.list_lengths[:i])
                return list(arr[start:start + col.list_lengths[i]])
            return arr[i]
    return None


FEAST_STATUS = {pb.PRESENT: fs.PRESENT, pb.NOT_FOUND: fs.NOT_FOUND, pb.NULL_VALUE: fs.NULL_VALUE,
                pb.OUTSIDE_MAX_AGE: fs.OUTSIDE_MAX_AGE}


class FeastServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.fsd.push(pb.PushRowsRequest(view="drivers", rows=[
            driver(1, NOW_US), driver(2, NOW_US - 1000, nulls=("name", "emb")),
            driver(3, NOW_US - 2 * HOUR_US)]))  # 3: older than the view's ttl
        cls.fsd.push(pb.PushRowsRequest(view="cars", rows=[
            h.row({"driver_id": 1}, NOW_US, {"trips": (11, "int64_value")})]))
        cls.fsd.push(pb.PushRowsRequest(view="pairs", rows=[
            h.row({"driver_id": 1, "city": "Oslo"}, NOW_US, {"score": (0.75, "double_value")})]))

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0

    def feast(self, request, **kw):
        return call(self.fsd, "GetOnlineFeatures", request, fs.GetOnlineFeaturesResponse, **kw)

    def refused(self, request):
        with self.assertRaises(grpc.RpcError) as cm:
            self.feast(request)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        return cm.exception.details()

    def test_every_type_and_status_agrees_with_get_features(self):
        ids = [1, 2, 3, 4]
        refs = [f"drivers:{f}" for f in FEATURES]
        got = self.feast(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=refs), entities=entities(driver_id=ids)))
        self.assertEqual(list(got.metadata.feature_names.val), ["driver_id"] + FEATURES)
        self.assertEqual(len(got.results), 1 + len(FEATURES))
        # The join key, echoed.
        keys = got.results[0]
        self.assertEqual([v.int64_val for v in keys.values], ids)
        self.assertEqual(list(keys.statuses), [fs.PRESENT] * 4)
        own = self.fsd.get(pb.GetFeaturesRequest(features=refs, keys=h.keys(driver_id=ids),
                                                 include_event_timestamps=True))
        for f, (vector, col) in enumerate(zip(got.results[1:], own.columns)):
            self.assertEqual(col.name, refs[f])
            statuses = [FEAST_STATUS[s] for s in col.statuses]
            self.assertEqual(list(vector.statuses), statuses, refs[f])
            for i in range(len(ids)):
                value = feast_value(vector.values[i])
                if statuses[i] == fs.PRESENT:
                    expected = fsd_value(col, i, col.list_lengths)
                    if FEATURES[f] == "seen":
                        expected //= 1_000_000  # Feast's unix_timestamp_val is in seconds
                    if FEATURES[f] == "stamps":
                        expected = [t // 1_000_000 for t in expected]
                    self.assertEqual(value, expected, f"{refs[f]} entity {ids[i]}")
                elif statuses[i] == fs.OUTSIDE_MAX_AGE:
                    self.assertIsNotNone(value, f"{refs[f]}: sent as stored, as Feast's Go")
                else:
                    self.assertIsNone(value, f"{refs[f]} entity {ids[i]}: a null Value")
            seconds = [t.seconds + t.nanos / 1e9 for t in vector.event_timestamps]
            expected_ts = [t / 1e6 for t in col.event_timestamps_us]
            for a, b in zip(seconds, expected_ts):
                self.assertAlmostEqual(a, b, places=5)
        by_name = dict(zip(got.metadata.feature_names.val, got.results))
        self.assertEqual(list(by_name["conv_rate"].statuses),
                         [fs.PRESENT, fs.PRESENT, fs.OUTSIDE_MAX_AGE, fs.NOT_FOUND])
        self.assertEqual(list(by_name["name"].statuses),
                         [fs.PRESENT, fs.NULL_VALUE, fs.OUTSIDE_MAX_AGE, fs.NOT_FOUND])
        self.assertEqual(by_name["name"].values[0].string_val, "d1")
        self.assertEqual(by_name["seen"].values[0].unix_timestamp_val, 1_700_000_001)
        self.assertEqual(list(by_name["tags"].values[0].string_list_val.val), ["t1", ""])
        # Each list type in Feast's own list message.
        self.assertEqual(list(by_name["counts"].values[0].int32_list_val.val),
                         [-(2**31), 1, 2**31 - 1])
        self.assertEqual(list(by_name["weights"].values[0].double_list_val.val),
                         [1 / 3, -0.0, 1e300])
        self.assertEqual(list(by_name["flags"].values[0].bool_list_val.val), [True, False])
        self.assertEqual(list(by_name["blobs"].values[0].bytes_list_val.val), [b"\x01\x00", b""])
        self.assertEqual(list(by_name["stamps"].values[0].unix_timestamp_list_val.val),
                         [1_700_000_000, -1])
        self.assertEqual(by_name["level"].values[1].int32_val, -2)
        # Not found: an empty timestamp.
        self.assertEqual(by_name["trips"].event_timestamps[3].seconds, 0)
        # Expired: its stored value, as Feast's Go server sends it.
        self.assertEqual(by_name["trips"].values[2].int64_val, 300)

    def test_full_feature_names_and_collisions(self):
        refs = ["drivers:trips", "cars:trips"]
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=refs), entities=entities(driver_id=[1])))
        self.assertIn("Duplicate features named trips found.", details)
        self.assertIn("full_feature_names=True", details)
        got = self.feast(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=refs), entities=entities(driver_id=[1]),
            full_feature_names=True))
        self.assertEqual(list(got.metadata.feature_names.val),
                         ["driver_id", "drivers__trips", "cars__trips"])
        self.assertEqual([r.values[0].int64_val for r in got.results[1:]], [100, 11])
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["cars:trips", "cars:trips"]),
            entities=entities(driver_id=[1]), full_feature_names=True))
        self.assertIn("Duplicate features named cars__trips found.", details)

    def test_a_feature_service(self):
        got = self.feast(fs.GetOnlineFeaturesRequest(
            feature_service="driver_basics", entities=entities(driver_id=[2, 1])))
        self.assertEqual(list(got.metadata.feature_names.val),
                         ["driver_id", "conv_rate", "trips"])
        self.assertEqual([v.int64_val for v in got.results[2].values], [200, 100])
        with self.assertRaises(grpc.RpcError) as cm:
            self.feast(fs.GetOnlineFeaturesRequest(feature_service="nope",
                                                   entities=entities(driver_id=[1])))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_composite_and_int32_keys(self):
        ents = entities(driver_id=[1, 1], city=["Oslo", "Rome"])
        got = self.feast(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["pairs:score"]), entities=ents))
        self.assertEqual(list(got.metadata.feature_names.val), ["driver_id", "city", "score"])
        self.assertEqual([v.string_val for v in got.results[1].values], ["Oslo", "Rome"])
        self.assertEqual(list(got.results[2].statuses), [fs.PRESENT, fs.NOT_FOUND])
        self.assertEqual(got.results[2].values[0].double_val, 0.75)
        # int32 join key values are widened, and echoed as sent.
        ents = {"driver_id": fv.RepeatedValue(val=[fv.Value(int32_val=1)])}
        got = self.feast(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:trips"]), entities=ents))
        self.assertEqual(got.results[0].values[0].int32_val, 1)
        self.assertEqual(got.results[1].values[0].int64_val, 100)

    def test_errors(self):
        ents = entities(driver_id=[1])
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["nope:x"]), entities=ents))
        self.assertIn('unknown view "nope"', details)
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:trips"]),
            entities=entities(driver_id=[1], rider_id=[2])))
        self.assertIn("Invalid entity join key. key=rider_id", details)
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:trips"]),
            entities={"driver_id": fv.RepeatedValue(val=[fv.Value(double_val=1.0)])}))
        self.assertIn("entity driver_id: value 0 is a double_val", details)
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:trips"]), entities={}))
        self.assertIn("needs join key driver_id", details)
        details = self.refused(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:trips"]), entities=ents,
            request_context={"x": fv.RepeatedValue(val=[fv.Value(int64_val=1)])}))
        self.assertIn("on-demand feature views", details)
        details = self.refused(fs.GetOnlineFeaturesRequest(entities=ents))
        self.assertIn("no features requested", details)
        with self.assertRaises(grpc.RpcError) as cm:
            self.fsd.raw(SERVICE + "GetOnlineFeatures", b"\xff\xff\xff")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_fsd_extras_travel_in_trailing_metadata(self):
        stub = self.fsd.channel.unary_unary(
            SERVICE + "GetOnlineFeatures", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=fs.GetOnlineFeaturesResponse.FromString)
        resp, call_ = stub.with_call(fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=["drivers:name", "drivers:trips"]),
            entities=entities(driver_id=[1, 2, 3, 4])), timeout=10)
        self.assertEqual(len(resp.results), 3)  # a Feast client sees Feast's message only
        trailers = dict(call_.trailing_metadata())
        # name: 2 null, 3 expired, 4 not found; trips: 3 expired, 4 not found
        self.assertEqual(trailers["fsd-values-not-present"],
                         "not_found=2,null_value=1,outside_max_age=2")
        oldest_ms = int(trailers["fsd-oldest-row-ms"])
        self.assertGreaterEqual(oldest_ms, 2 * 3600 * 1000)  # entity 3's row, 2 h old
        self.assertLess(oldest_ms, 3 * 3600 * 1000)

    def test_serving_info(self):
        got = call(self.fsd, "GetFeastServingInfo", fs.GetFeastServingInfoRequest(),
                   fs.GetFeastServingInfoResponse)
        self.assertRegex(got.version, r"^fsd \d+\.\d+\.\d+")


class FeastDefaultsTest(unittest.TestCase):
    def test_fsd_defaults_fill_missing_values_and_statuses_say_why(self):
        fsd = h.Fsd("feast:\n  defaults: fsd\n" + CONFIG)
        try:
            fsd.push(pb.PushRowsRequest(view="drivers", rows=[driver(1, NOW_US)]))
            got = call(fsd, "GetOnlineFeatures", fs.GetOnlineFeaturesRequest(
                features=fs.FeatureList(val=["drivers:level", "drivers:trips"]),
                entities=entities(driver_id=[1, 9])), fs.GetOnlineFeaturesResponse)
            level, trips = got.results[1], got.results[2]
            self.assertEqual(list(level.statuses), [fs.PRESENT, fs.NOT_FOUND])
            self.assertEqual([v.int32_val for v in level.values], [-1, 7])  # its default
            self.assertIsNone(trips.values[1].WhichOneof("val"))  # trips has no default
        finally:
            self.assertEqual(fsd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
