"""Feast's HTTP JSON API on fsd's gRPC port, against a real fsd: python3-requests sending the
bodies Feast's remote online store sends, http.client and raw sockets for HTTP/1.1 itself
(keep-alive, pipelining, chunked bodies, limits), and grpcio beside them on the same port.
For the same data and keys, POST /get-online-features agrees with Feast's gRPC
GetOnlineFeatures value for value and status for status, for every type, every status,
composite keys, feature services, full and short names; errors come back with Feast's status
and error body."""
import base64
import datetime
import http.client
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import requests  # noqa: E402

import harness as h  # noqa: E402
import test_feast as tf  # noqa: E402
from test_auth import READ_TOKEN, sha, tokens_file  # noqa: E402
from test_durability import kill9  # noqa: E402
from harness import pb  # noqa: E402
from feast.serving import ServingService_pb2 as fs  # noqa: E402

STATUS_NAME = {fs.PRESENT: "PRESENT", fs.NOT_FOUND: "NOT_FOUND", fs.NULL_VALUE: "NULL_VALUE",
               fs.OUTSIDE_MAX_AGE: "OUTSIDE_MAX_AGE"}


def rfc3339_seconds(text):
    """An RFC 3339 UTC timestamp ("...Z") as seconds since the epoch."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.timestamp()


def feast_error(resp):
    """Feast's error body: a JSON string holding {"module", "class", "message"}."""
    detail = json.loads(resp.json())
    return detail["class"], detail["message"]


def start(extra=""):
    fsd = h.Fsd(extra + tf.CONFIG)
    fsd.push(pb.PushRowsRequest(view="drivers", rows=[
        tf.driver(1, tf.NOW_US), tf.driver(2, tf.NOW_US - 1000, nulls=("name", "emb")),
        tf.driver(3, tf.NOW_US - 2 * tf.HOUR_US)]))
    fsd.push(pb.PushRowsRequest(view="cars", rows=[
        h.row({"driver_id": 1}, tf.NOW_US, {"trips": (11, "int64_value")})]))
    fsd.push(pb.PushRowsRequest(view="pairs", rows=[
        h.row({"driver_id": 1, "city": "Oslo"}, tf.NOW_US, {"score": (0.75, "double_value")})]))
    return fsd


def raw_exchange(port, data, read_until_close=True, timeout=5):
    """Sends `data` on a fresh connection and returns what comes back until the server closes
    (or `timeout`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close:
                break
        return out
    finally:
        s.close()


def lookup_body(ids, refs, **extra):
    return json.dumps(dict({"entities": {"driver_id": ids}, "features": refs}, **extra))


class FeastHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fsd = start()
        cls.url = f"http://127.0.0.1:{cls.fsd.port}"
        cls.session = requests.Session()

    @classmethod
    def tearDownClass(cls):
        cls.session.close()
        assert cls.fsd.stop() == 0

    def post(self, path, body):
        """As Feast's remote online store posts: requests, a JSON body."""
        return self.session.post(self.url + path, json=body, timeout=10)

    def test_every_type_and_status_agrees_with_feast_grpc(self):
        ids = [1, 2, 3, 4]
        refs = [f"drivers:{f}" for f in tf.FEATURES]
        resp = self.post("/get-online-features",
                         {"entities": {"driver_id": ids}, "features": refs,
                          "full_feature_names": False})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers["Content-Type"], "application/json")
        got = resp.json()
        grpc_resp = tf.call(self.fsd, "GetOnlineFeatures", fs.GetOnlineFeaturesRequest(
            features=fs.FeatureList(val=refs), entities=tf.entities(driver_id=ids)),
            fs.GetOnlineFeaturesResponse)
        self.assertEqual(got["metadata"]["feature_names"],
                         list(grpc_resp.metadata.feature_names.val))
        self.assertEqual(len(got["results"]), len(grpc_resp.results))
        self.assertEqual(got["results"][0]["values"], ids)  # the join key, echoed
        for name, vec, gvec in zip(got["metadata"]["feature_names"], got["results"],
                                   grpc_resp.results):
            self.assertEqual(vec["statuses"], [STATUS_NAME[s] for s in gvec.statuses], name)
            for i, (value, gvalue) in enumerate(zip(vec["values"], gvec.values)):
                expected = tf.feast_value(gvalue)
                if name == "photo" and value is not None:
                    value = base64.b64decode(value)  # bytes are base64
                if name == "blobs" and value is not None:
                    value = [base64.b64decode(x) for x in value]
                if name in ("rating", "emb") and value is not None:
                    # float32 written as its shortest text: the same float32 when read back
                    pack = (lambda x: struct.pack("<f", x)) if name == "rating" else \
                        (lambda xs: struct.pack(f"<{len(xs)}f", *xs))
                    self.assertEqual(pack(value), pack(expected), f"{name} entity {ids[i]}")
                    continue
                self.assertEqual(value, expected, f"{name} entity {ids[i]}")
                self.assertEqual(type(value), type(expected), f"{name}: JSON keeps the type")
            for text, ts in zip(vec["event_timestamps"], gvec.event_timestamps):
                self.assertAlmostEqual(rfc3339_seconds(text), ts.seconds + ts.nanos / 1e9,
                                       places=6)
        by_name = dict(zip(got["metadata"]["feature_names"], got["results"]))
        self.assertEqual(by_name["name"]["statuses"],
                         ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"])
        self.assertEqual(by_name["trips"]["event_timestamps"][3], "1970-01-01T00:00:00Z")
        self.assertEqual(by_name["seen"]["values"][0], 1_700_000_001)
        self.assertEqual(by_name["conv_rate"]["values"][0], 0.1)
        # fsd's extras, in a field Feast's clients ignore
        self.assertEqual(got["fsd"]["values_not_present"],
                         {"not_found": len(tf.FEATURES), "null_value": 2,
                          "outside_max_age": len(tf.FEATURES)})
        self.assertGreaterEqual(got["fsd"]["oldest_row_ms"], 2 * 3600 * 1000)

    def test_full_names_collisions_services_and_composite_keys(self):
        resp = self.post("/get-online-features", {"entities": {"driver_id": [1]},
                                                  "features": ["drivers:trips", "cars:trips"]})
        self.assertEqual(resp.status_code, 422)
        cls, message = feast_error(resp)
        self.assertEqual(cls, "FeatureNameCollisionError")
        self.assertIn("Duplicate features named trips found.", message)
        got = self.post("/get-online-features", {"entities": {"driver_id": [1]},
                                                 "features": ["drivers:trips", "cars:trips"],
                                                 "full_feature_names": True}).json()
        self.assertEqual(got["metadata"]["feature_names"],
                         ["driver_id", "drivers__trips", "cars__trips"])
        self.assertEqual([r["values"][0] for r in got["results"][1:]], [100, 11])
        got = self.post("/get-online-features", {"entities": {"driver_id": [2, 1]},
                                                 "feature_service": "driver_basics"}).json()
        self.assertEqual(got["metadata"]["feature_names"], ["driver_id", "conv_rate", "trips"])
        self.assertEqual(got["results"][2]["values"], [200, 100])
        got = self.post("/get-online-features",
                        {"entities": {"city": ["Oslo", "Rome"], "driver_id": [1, 1]},
                         "features": ["pairs:score"]}).json()
        self.assertEqual(got["metadata"]["feature_names"], ["driver_id", "city", "score"])
        self.assertEqual(got["results"][1]["values"], ["Oslo", "Rome"])
        self.assertEqual(got["results"][2]["statuses"], ["PRESENT", "NOT_FOUND"])
        self.assertEqual(got["results"][2]["values"], [0.75, None])

    def test_json_forms_of_one_request_read_alike(self):
        """Escaped names, repeated keys (the last wins, as in Python), members fsd does not
        know (skipped, whatever they nest), whitespace and escaped string keys: each body
        asks for the same lookup and gets the same answer; broken bodies are refused with
        what broke and where."""
        want = self.post("/get-online-features", {
            "entities": {"driver_id": [1, 2]}, "features": ["drivers:trips"]}).json()
        pairs = self.post("/get-online-features", {
            "entities": {"driver_id": [1], "city": ["Oslo"]}, "features": ["pairs:score"]})
        self.assertEqual(pairs.json()["results"][2]["values"], [0.75])
        bodies = [
            b'{"\\u0065ntities": {"driver_\\u0069d": [1, 2]}, "features": ["drivers:\\u0074rips"]}',
            b'{"features": ["nope:x"], "entities": {"driver_id": [9]}, '
            b'"features": ["drivers:trips"], "entities": {"driver_id": [1, 2]}}',
            b'{"entities": {"driver_id": [7], "driver_id": [1, 2]}, "features": ["drivers:trips"]}',
            b'{"x": {"y": [[], {}, "z", 1e9, null, true]}, "entities": {"driver_id": [1, 2]},'
            b' "features": ["drivers:trips"], "full_feature_names": false, "y": -0.5}',
            b' \r\n\t{ "entities" : { "driver_id" : [ 1 , 2 ] } , "features" : '
            b'[ "drivers:trips" ] } \n',
        ]
        for body in bodies:
            resp = self.session.post(self.url + "/get-online-features", data=body, timeout=10)
            self.assertEqual(resp.status_code, 200, (body, resp.text))
            self.assertEqual(resp.json()["results"], want["results"], body)
        resp = self.session.post(self.url + "/get-online-features", data=(
            b'{"entities": {"driver_id": [1], "city": ["\\u004fslo"]}, '
            b'"features": ["pairs:score"]}'), timeout=10)
        self.assertEqual(resp.json()["results"], pairs.json()["results"])
        for body, text in ((b'{"entities": {"driver_id": [1,]}}', "expected a value at byte 30"),
                           (b'{"entities": "\xff"}', "invalid UTF-8 in a string at byte 14"),
                           (b'{"a": ' + b"[" * 20 + b"]" * 20 + b"}", "nesting too deep"),
                           (b'{"entities": {"driver_id": [1]}} {}', "bytes after its JSON value")):
            resp = self.session.post(self.url + "/get-online-features", data=body, timeout=10)
            self.assertEqual(resp.status_code, 422, body)
            self.assertIn("get-online-features: the body ", feast_error(resp)[1])
            self.assertIn(text, feast_error(resp)[1], body)

    def test_errors(self):
        cases = [
            ({"entities": {"driver_id": [1]}, "features": ["nope:x"]}, 404,
             "FeatureViewNotFoundException", 'unknown view "nope"'),
            ({"entities": {"driver_id": [1]}, "feature_service": "nope"}, 404,
             "FeatureServiceNotFoundException", 'unknown feature service "nope"'),
            ({"entities": {"driver_id": [1], "rider_id": [2]}, "features": ["drivers:trips"]},
             422, "FeastError", "Invalid entity join key. key=rider_id"),
            ({"entities": {"driver_id": [1.5]}, "features": ["drivers:trips"]}, 422,
             "FeastError", "entity driver_id: value 0 is a double_val"),
            ({"entities": {"driver_id": [2 ** 64]}, "features": ["drivers:trips"]}, 422,
             "FeastError", "entity driver_id: value 0 is a double_val"),
            ({"features": ["drivers:trips"]}, 422, "FeastError", '"entities" is required'),
            ({"entities": {"driver_id": [1]}}, 422, "FeastError", "no features requested"),
            ({"entities": {"driver_id": [1]}, "features": "drivers:trips"}, 422, "FeastError",
             '"features" must be a list'),
        ]
        for body, status, cls, text in cases:
            resp = self.post("/get-online-features", body)
            self.assertEqual(resp.status_code, status, body)
            got_cls, message = feast_error(resp)
            self.assertEqual(got_cls, cls, body)
            self.assertIn(text, message, body)
        # Not JSON, and JSON that is not an object.
        for data in (b"{", b"[1]", b"{} x", b""):
            resp = self.session.post(self.url + "/get-online-features", data=data, timeout=10)
            self.assertEqual(resp.status_code, 422, data)
            self.assertIn("get-online-features: the ", feast_error(resp)[1])
        # Paths and methods fsd does not serve: FastAPI's {"detail": ...}.
        resp = self.session.get(self.url + "/get-online-features", timeout=10)
        self.assertEqual(resp.status_code, 405)
        self.assertIn("Method Not Allowed", resp.json()["detail"])
        resp = self.session.post(self.url + "/retrieve-online-documents", json={}, timeout=10)
        self.assertEqual(resp.status_code, 404)
        self.assertEqual(resp.json()["detail"], "Not Found: POST /retrieve-online-documents")
        # The daemon still serves after all of them.
        self.assertEqual(self.session.get(self.url + "/health", timeout=10).status_code, 200)

    def test_materialize(self):
        # Every view here is fed by pushes: nothing to materialize, nothing queued.
        resp = self.post("/materialize-incremental", {"end_ts": "2026-12-01T00:00:00"})
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.json(), {"queued": []})
        resp = self.post("/materialize", {"start_ts": "2026-12-01T00:00:00",
                                          "end_ts": "2026-12-02T00:00:00",
                                          "feature_views": ["drivers"]})
        self.assertEqual(resp.status_code, 409)
        self.assertIn("no source to materialize from", feast_error(resp)[1])
        resp = self.post("/materialize", {"start_ts": "x", "end_ts": "y",
                                          "feature_views": ["nope"]})
        self.assertEqual(resp.status_code, 404)
        self.assertEqual(feast_error(resp), ("FeatureViewNotFoundException",
                                             "Feature view nope does not exist"))
        resp = self.post("/materialize", {"end_ts": "2026-12-02T00:00:00"})
        self.assertEqual(resp.status_code, 422)
        self.assertIn('"start_ts" and "end_ts" are required', feast_error(resp)[1])

    def test_keep_alive_pipelining_and_chunked_bodies(self):
        body = lookup_body([1], ["drivers:trips"]).encode()
        one = (b"POST /get-online-features HTTP/1.1\r\nHost: fsd\r\nContent-Type: "
               b"application/json\r\nContent-Length: " + str(len(body)).encode() +
               b"\r\n\r\n" + body)
        chunked = (b"POST /get-online-features HTTP/1.1\r\nHost: fsd\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" +
                   b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                            for i in range(0, len(body), 7)) + b"0\r\n\r\n")
        last = b"GET /health HTTP/1.1\r\nHost: fsd\r\nConnection: close\r\n\r\n"
        # Three requests in one write: three answers, in order, then the close asked for.
        out = raw_exchange(self.fsd.port, one + chunked + last)
        answers = out.split(b"HTTP/1.1 ")[1:]
        self.assertEqual(len(answers), 3, out)
        for a in answers[:2]:
            self.assertTrue(a.startswith(b"200 OK\r\n"), a)
            head, payload = a.split(b"\r\n\r\n", 1)
            self.assertEqual(json.loads(payload)["results"][1]["values"], [100])
        self.assertTrue(answers[2].startswith(b"200 OK\r\n"))
        self.assertIn(b"Connection: close", answers[2])
        # http.client: one connection, many requests (keep-alive), Expect: 100-continue.
        conn = http.client.HTTPConnection("127.0.0.1", self.fsd.port, timeout=10)
        for i in range(20):
            conn.request("POST", "/get-online-features", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["results"][1]["values"], [100])
        conn.close()
        out = raw_exchange(self.fsd.port, b"POST /get-online-features HTTP/1.1\r\nHost: f\r\n"
                           b"Expect: 100-continue\r\nContent-Length: " +
                           str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), out)
        # HTTP/1.0 without keep-alive: answered, then closed.
        out = raw_exchange(self.fsd.port, b"GET /health HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)
        self.assertIn(b"Connection: close", out)

    def test_http1_and_http2_clients_at_once(self):
        errors = []
        body = {"entities": {"driver_id": [1, 2]}, "features": ["drivers:trips"]}

        def http_client():
            with requests.Session() as s:
                for _ in range(200):
                    r = s.post(self.url + "/get-online-features", json=body, timeout=10)
                    if r.status_code != 200 or r.json()["results"][1]["values"] != [100, 200]:
                        errors.append(("http", r.status_code, r.text[:200]))

        def grpc_client():
            req = fs.GetOnlineFeaturesRequest(features=fs.FeatureList(val=["drivers:trips"]),
                                              entities=tf.entities(driver_id=[1, 2]))
            for _ in range(200):
                got = tf.call(self.fsd, "GetOnlineFeatures", req, fs.GetOnlineFeaturesResponse)
                if [v.int64_val for v in got.results[1].values] != [100, 200]:
                    errors.append(("grpc", got))

        threads = [threading.Thread(target=f) for f in (http_client, http_client, grpc_client,
                                                        grpc_client)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        metrics = h.scrape(h.stats_port(self.fsd))
        self.assertGreaterEqual(
            metrics.get("fsd_requests_total", code="OK", method="get-online-features"), 400)


PUSH_CONFIG = tf.CONFIG.replace("  - name: drivers\n", "  - name: drivers\n    push_source: driver_push\n") \
    .replace("  - name: cars\n", "  - name: cars\n    push_source: driver_push\n")


def iso(us):
    """A naive ISO 8601 time, as pandas writes one into Feast's JSON dataframes."""
    return datetime.datetime.utcfromtimestamp(us / 1e6).isoformat()


class FeastHttpPushTest(unittest.TestCase):
    """Feast's writes: /push into every view of a push source, /write-to-online-store into one,
    with and without the write-ahead log (whose durable acknowledgement suspends the call)."""

    def check_writes(self, fsd):
        url = f"http://127.0.0.1:{fsd.port}"
        now = h.now_us()
        df = {"driver_id": [10, 11], "trips": [5, 6], "conv_rate": [0.5, None],
              "photo": [base64.b64encode(b"\x00\xffx").decode(), None],
              "emb": [[1.5, 2.0], []], "tags": [["a", "b"], None],
              "seen": [iso(1_700_000_000_000_000), 1_700_000_001],
              "counts": [[1, -2], []], "weights": [[0.25, 1e300], None],
              "flags": [[True, False], [False]],
              "blobs": [[base64.b64encode(b"\x00").decode(), ""], []],
              "stamps": [[iso(1_700_000_000_000_000), 1_700_000_002], []],
              "not_a_feature": [1, 2],  # ignored, as Feast ignores it
              "event_timestamp": [iso(now), iso(now - 1000)]}
        r = requests.post(url + "/push", json={"push_source_name": "driver_push", "df": df,
                                                "to": "online"}, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json(), {"views": {
            "drivers": {"inserted": 2, "replaced": 0, "not_newer": 0},
            "cars": {"inserted": 2, "replaced": 0, "not_newer": 0}}})
        got = requests.post(url + "/get-online-features", json={
            "entities": {"driver_id": [10, 11]},
            "features": ["drivers:trips", "drivers:conv_rate", "drivers:photo", "drivers:emb",
                         "drivers:tags", "drivers:seen", "cars:trips", "drivers:counts",
                         "drivers:weights", "drivers:flags", "drivers:blobs", "drivers:stamps"],
            "full_feature_names": True}, timeout=10).json()
        by_name = dict(zip(got["metadata"]["feature_names"], got["results"]))
        self.assertEqual(by_name["drivers__trips"]["values"], [5, 6])
        self.assertEqual(by_name["cars__trips"]["values"], [5, 6])
        self.assertEqual(by_name["drivers__conv_rate"]["values"], [0.5, None])
        self.assertEqual(by_name["drivers__conv_rate"]["statuses"], ["PRESENT", "NULL_VALUE"])
        self.assertEqual(base64.b64decode(by_name["drivers__photo"]["values"][0]), b"\x00\xffx")
        self.assertEqual(by_name["drivers__emb"]["values"], [[1.5, 2.0], []])
        self.assertEqual(by_name["drivers__tags"]["values"], [["a", "b"], None])
        self.assertEqual(by_name["drivers__seen"]["values"], [1_700_000_000, 1_700_000_001])
        self.assertEqual(by_name["drivers__counts"]["values"], [[1, -2], []])
        self.assertEqual(by_name["drivers__weights"]["values"], [[0.25, 1e300], None])
        self.assertEqual(by_name["drivers__flags"]["values"], [[True, False], [False]])
        self.assertEqual(by_name["drivers__blobs"]["values"], [["AA==", ""], []])
        self.assertEqual(by_name["drivers__stamps"]["values"], [[1_700_000_000, 1_700_000_002], []])
        self.assertAlmostEqual(rfc3339_seconds(by_name["drivers__trips"]["event_timestamps"][1]),
                               (now - 1000) / 1e6, places=5)
        # The same rows again: not newer, nothing changes.
        r = requests.post(url + "/push", json={"push_source_name": "driver_push", "df": df},
                          timeout=10)
        self.assertEqual(r.json()["views"]["drivers"], {"inserted": 0, "replaced": 0,
                                                        "not_newer": 2})
        # Feast's remote online store writes one view, with a "created" column.
        r = requests.post(url + "/write-to-online-store", json={
            "feature_view_name": "pairs", "allow_registry_cache": False,
            "df": {"driver_id": [10], "city": ["Oslo"], "score": [0.25],
                   "event_timestamp": [iso(now)], "created": [iso(now)]}}, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        got = requests.post(url + "/get-online-features", json={
            "entities": {"driver_id": [10], "city": ["Oslo"]}, "features": ["pairs:score"]},
            timeout=10).json()
        self.assertEqual(got["results"][2]["values"], [0.25])

    def check_refusals(self, fsd):
        url = f"http://127.0.0.1:{fsd.port}"
        good = {"driver_id": [12], "trips": [1], "event_timestamp": [iso(h.now_us())]}
        cases = [
            ({"push_source_name": "nope", "df": good}, 422, "PushSourceNotFoundException",
             "Unable to find push source 'nope'."),
            ({"push_source_name": "driver_push", "df": good, "to": "offline"}, 422, "FeastError",
             "fsd is an online store only"),
            ({"push_source_name": "driver_push", "df": dict(good, trips=["x"])}, 422,
             "FeastError", "view drivers: row 0: trips is not a int64 value"),
            ({"push_source_name": "driver_push", "df": dict(good, trips=[1, 2])}, 422,
             "FeastError", "columns differ in length"),
            ({"push_source_name": "driver_push", "df": {"driver_id": [12], "trips": [1]}}, 422,
             "FeastError", "df has no event_timestamp column"),
            ({"push_source_name": "driver_push", "df": dict(good, event_timestamp=["soon"])},
             422, "FeastError", "row 0: event_timestamp is not a time"),
            ({"push_source_name": "driver_push"}, 422, "FeastError", '"df" is required'),
        ]
        for body, status, cls, text in cases:
            r = requests.post(url + "/push", json=body, timeout=10)
            self.assertEqual(r.status_code, status, (body, r.text))
            self.assertEqual(feast_error(r)[0], cls, body)
            self.assertIn(text, feast_error(r)[1], body)
        r = requests.post(url + "/write-to-online-store",
                          json={"feature_view_name": "nope", "df": good}, timeout=10)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(feast_error(r), ("FeatureViewNotFoundException",
                                          "Feature view nope does not exist"))
        # Nothing of the refused pushes landed.
        got = requests.post(url + "/get-online-features", json={
            "entities": {"driver_id": [12]}, "features": ["drivers:trips"]}, timeout=10).json()
        self.assertEqual(got["results"][1]["statuses"], ["NOT_FOUND"])

    def test_writes_without_a_log(self):
        fsd = h.Fsd(PUSH_CONFIG)
        try:
            self.check_writes(fsd)
            self.check_refusals(fsd)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_writes_through_the_log_survive_a_kill(self):
        with tempfile.TemporaryDirectory(prefix="fsd-http-push-") as tmp:
            config = f"store:\n  data_dir: {tmp}\n  durability: always\n" + PUSH_CONFIG
            fsd = h.Fsd(config)
            try:
                self.check_writes(fsd)
                self.check_refusals(fsd)
            finally:
                kill9(fsd)
            fsd = h.Fsd(config)  # acknowledged, so back after kill -9
            try:
                got = requests.post(f"http://127.0.0.1:{fsd.port}/get-online-features", json={
                    "entities": {"driver_id": [10, 11]}, "features": ["cars:trips"]},
                    timeout=10).json()
                self.assertEqual(got["results"][1]["values"], [5, 6])
            finally:
                self.assertEqual(fsd.stop(), 0)


class FeastHttpLimitsTest(unittest.TestCase):
    """Bodies, headers and slow clients are bounded as gRPC's are."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = start("  max_message_bytes: 65536\n  max_header_list_bytes: 4096\n"
                        "  preface_timeout: 1s\n")

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0

    def test_limits(self):
        port = self.fsd.port
        big = b"x" * 70000
        out = raw_exchange(port, b"POST /get-online-features HTTP/1.1\r\nHost: f\r\n"
                           b"Content-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertIn(b"server.max_message_bytes", out)
        out = raw_exchange(port, b"GET /health HTTP/1.1\r\nHost: f\r\nX-Big: " + b"y" * 5000 +
                           b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:200])
        out = raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:200])
        # Headers that never end: closed after preface_timeout, with nothing answered.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: f\r\n")
        self.assertEqual(s.recv(100), b"")
        s.close()
        resp = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        self.assertEqual(resp.status_code, 200)  # and it serves on


class FeastHttpAuthTest(unittest.TestCase):
    def test_the_same_tokens_as_grpc(self):
        with tempfile.TemporaryDirectory(prefix="fsd-http-auth-") as tmp:
            tokens = os.path.join(tmp, "tokens")
            tokens_file(tokens, [f"ranker read * {sha(READ_TOKEN)}"])
            fsd = h.Fsd(f"  auth:\n    tokens_file: {tokens}\n" + tf.CONFIG)
            try:
                url = f"http://127.0.0.1:{fsd.port}"
                body = {"entities": {"driver_id": [1]}, "features": ["drivers:trips"]}
                r = requests.post(url + "/get-online-features", json=body, timeout=10)
                self.assertEqual(r.status_code, 401)
                self.assertIn("needs a token", r.json()["detail"])
                r = requests.post(url + "/get-online-features", json=body, timeout=10,
                                  headers={"Authorization": "Bearer " + READ_TOKEN})
                self.assertEqual(r.status_code, 200, r.text)
                r = requests.post(url + "/materialize-incremental", json={"end_ts": "x"},
                                  timeout=10, headers={"Authorization": "Bearer " + READ_TOKEN})
                self.assertEqual(r.status_code, 403)
                self.assertIn("may not call materialize-incremental", r.json()["detail"])
                self.assertEqual(requests.get(url + "/health", timeout=10).status_code, 200)
            finally:
                self.assertEqual(fsd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
