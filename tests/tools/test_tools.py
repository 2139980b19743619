"""fsctl and grpc_load against a real fsd: views, get (table and --json), composite keys,
feature services, errors and their exit codes, and short closed- and open-loop load runs,
also against a real redis-server (grpc_load's Redis targets).

Rows are pushed with grpcio through tests/integration/harness.py, so fsctl is checked
against data it did not write. CTest passes FSD_BIN, FSCTL_BIN, GRPC_LOAD_BIN, FSD_PYPROTO.
"""
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.environ["FSD_INTEGRATION_DIR"])
# the benchmark view grpc_load fills, as every benchmark has it (loadtest/bench_view.yaml)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "loadtest"))

from bench_view import bench_view_yaml  # noqa: E402
import harness as h  # noqa: E402
from redis_server import RedisServer, free_port  # noqa: E402
from harness import pb  # noqa: E402

FSCTL = os.environ["FSCTL_BIN"]
GRPC_LOAD = os.environ["GRPC_LOAD_BIN"]
HOUR_US = 3600 * 1000000

CONFIG = """
  stats_port: 0
views:
  - name: users
    join_keys: [{name: user_id, type: int64}]
    ttl: 1h
    features:
      - {name: age, type: int32, default: 0}
      - {name: score, type: double, default: 0.5}
      - {name: country, type: string, default: "unknown"}
      - {name: photo, type: bytes}
      - {name: embedding, type: float_list, default: zero}
  - name: user_item
    join_keys: [{name: user_id, type: int64}, {name: item_id, type: string}]
    ttl: 1h
    features:
      - {name: clicks, type: int64, default: zero}
""" + bench_view_yaml() + """feature_services:
  - name: ranking
    features: ["users:age", "user_item:clicks"]
"""

COUNTRY = 'Öster"reich\n\t\x01'


def run(*args, timeout=60):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


class ToolsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.addr = cls.fsd.address
        cls.now = h.now_us()
        cls.fsd.push(pb.PushRowsRequest(view="users", rows=[
            h.row({"user_id": 1}, cls.now - 5_000_000, {
                "age": (-42, "int32_value"), "score": (0.1 + 0.2, "double_value"),
                "country": (COUNTRY, "string_value"), "photo": (b"\x00\xffhi", "bytes_value"),
                "embedding": ([0.25, -1.5], "float_list")}),
            h.row({"user_id": 2}, cls.now),                       # every value null
            h.row({"user_id": 3}, cls.now - 90 * 60 * 1000000,    # older than the 1h TTL
                  {"age": (30, "int32_value")}),
        ]))
        cls.fsd.push(pb.PushRowsRequest(view="user_item", rows=[
            h.row({"user_id": 1, "item_id": "a"}, cls.now, {"clicks": (3, "int64_value")}),
            h.row({"user_id": 2, "item_id": "b"}, cls.now, {"clicks": (5, "int64_value")}),
        ]))

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        assert rc == 0, "fsd exited with %d:\n%s" % (rc, "\n".join(cls.fsd.log()[-30:]))

    def fsctl(self, *args, rc=0):
        r = run(FSCTL, "--addr", self.addr, *args)
        self.assertEqual(r.returncode, rc, f"fsctl {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def fsctl_json(self, *args):
        return json.loads(self.fsctl(*args, "--json").stdout)

    # ---- views -------------------------------------------------------------------------

    def test_views_table(self):
        out = self.fsctl("views").stdout
        self.assertIn("view users\n  join keys: user_id (int64)\n  ttl: 1h   rows: 3", out)
        self.assertIn("join keys: user_id (int64), item_id (string)", out)
        self.assertIn("ttl: 0 (never stale)", out)
        self.assertRegex(out, r"\n  score +double +0\.5\n")
        self.assertRegex(out, r"\n  photo +bytes +-\n")
        self.assertRegex(out, r"\n  embedding +float_list +zero \(\[\]\)\n")
        self.assertIn("feature services\n  ranking: users:age, user_item:clicks\n", out)

    def test_views_json(self):
        doc = self.fsctl_json("views")
        views = {v["name"]: v for v in doc["views"]}
        self.assertEqual(set(views), {"users", "user_item", "bench"})
        users = views["users"]
        self.assertEqual(users["join_keys"], [{"name": "user_id", "type": "int64"}])
        self.assertEqual(users["ttl_seconds"], 3600)
        self.assertEqual(users["rows"], 3)
        self.assertGreater(users["memory_bytes"], 0)
        # no source: the materializer's fields are empty
        self.assertEqual((users["source"], users["loading"], users["last_load_result"],
                          users["loads_completed"], users["load_duration_us"]),
                         ("", False, "", 0, 0))
        features = {f["name"]: f for f in users["features"]}
        self.assertEqual(features["age"], {"name": "age", "type": "int32",
                                           "default_kind": "literal", "default_value": "0"})
        self.assertEqual(features["photo"]["default_value"], None)
        self.assertEqual(doc["feature_services"],
                         [{"name": "ranking", "features": ["users:age", "user_item:clicks"]}])

    # ---- get ---------------------------------------------------------------------------

    def test_get_table_shows_values_statuses_defaults_and_staleness(self):
        out = self.fsctl("get", "--view", "users", "--key", "user_id=1", "--key", "user_id=2",
                         "--key", "user_id=3", "--key", "user_id=4").stdout
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^user_id +age +score +country +photo +embedding +staleness$")
        self.assertRegex(lines[1], r"^1 +-42 PRESENT +0\.30000000000000004 PRESENT +"
                                   r'"Öster\\"reich\\n\\t\\u0001" PRESENT +0x00ff6869 PRESENT +'
                                   r"\[0\.25, -1\.5\] PRESENT +\d+\.\ds$")
        self.assertRegex(lines[2], r"^2 +0 NULL \(default\) +0\.5 NULL \(default\) +"
                                   r'"unknown" NULL \(default\) +- NULL +\[\] NULL \(default\) +'
                                   r"\d+ms$")
        self.assertRegex(lines[3], r"^3 +0 OUTSIDE_MAX_AGE \(default\) .* - OUTSIDE_MAX_AGE .*"
                                   r" 1\.5h$")
        self.assertRegex(lines[4], r"^4 +0 NOT_FOUND \(default\) .* - NOT_FOUND .* no row$")
        # 3 entities x 4 features with defaults fell back, one per reason each
        self.assertRegex(out, r"\n4 entities, 20 values served; defaults served: 4 not found, "
                              r"4 null, 4 outside max age; server time \d+ us\n$")

    def test_get_json_is_one_document_with_escaped_strings_and_base64_bytes(self):
        doc = self.fsctl_json("get", "--view", "users", "--key", "user_id=1", "--key",
                              "user_id=4", "--features", "age,country", "--features",
                              "photo,embedding,score")
        self.assertEqual(doc["entities"], 2)
        self.assertEqual([f["name"] for f in doc["features"]],
                         ["users:age", "users:country", "users:photo", "users:embedding",
                          "users:score"])
        self.assertEqual(doc["features"][2], {"name": "users:photo", "type": "bytes",
                                              "has_default": False})
        one, four = doc["rows"]
        self.assertEqual(one["keys"], {"user_id": 1})
        self.assertAlmostEqual(one["staleness_ms"]["users"],
                               (h.now_us() - self.now + 5_000_000) / 1000, delta=5000)
        v = one["values"]
        self.assertEqual(v["users:age"], {"value": -42, "status": "PRESENT", "default": False})
        self.assertEqual(v["users:country"]["value"], COUNTRY)
        self.assertEqual(v["users:photo"]["value"], "AP9oaQ==")
        self.assertEqual(v["users:embedding"]["value"], [0.25, -1.5])
        self.assertEqual(v["users:score"]["value"], 0.1 + 0.2)  # bit for bit
        self.assertEqual(four["staleness_ms"], {"users": None})
        self.assertEqual(four["values"]["users:age"],
                         {"value": 0, "status": "NOT_FOUND", "default": True})
        self.assertEqual(four["values"]["users:photo"],
                         {"value": None, "status": "NOT_FOUND", "default": False})
        self.assertEqual(doc["values_served"], 10)
        self.assertEqual(doc["defaults_not_found"], 4)
        self.assertEqual(doc["defaults_null_value"], 0)
        self.assertIsInstance(doc["server_time_us"], int)

    def test_composite_keys_repeat_the_group_per_entity(self):
        args = ["get", "--view", "user_item", "--key", "user_id=1", "--key", "item_id=a",
                "--key", "user_id=2", "--key", "item_id=b", "--key", "user_id=1",
                "--key", "item_id=b"]
        doc = self.fsctl_json(*args)
        self.assertEqual([r["keys"] for r in doc["rows"]],
                         [{"user_id": 1, "item_id": "a"}, {"user_id": 2, "item_id": "b"},
                          {"user_id": 1, "item_id": "b"}])
        self.assertEqual([r["values"]["user_item:clicks"]["value"] for r in doc["rows"]],
                         [3, 5, 0])
        self.assertEqual(doc["rows"][2]["values"]["user_item:clicks"]["status"], "NOT_FOUND")
        table = self.fsctl(*args).stdout.splitlines()
        self.assertRegex(table[0], r"^user_id +item_id +clicks +staleness$")
        self.assertRegex(table[1], r"^1 +a +3 PRESENT +\d+ms$")
        self.assertRegex(table[3], r"^1 +b +0 NOT_FOUND \(default\) +no row$")
        # an item_id given as a number is still a string key: "7" finds nothing, no error
        self.fsctl("get", "--view", "user_item", "--key", "user_id=1", "--key", "item_id=7")

    def test_composite_keys_must_all_appear_equally_often(self):
        r = self.fsctl("get", "--view", "user_item", "--key", "user_id=1", "--key", "item_id=a",
                       "--key", "user_id=2", rc=2)
        self.assertIn("2 values for --key user_id but 1 for --key item_id", r.stderr)
        r = self.fsctl("get", "--view", "user_item", "--key", "user_id=1", rc=2)
        self.assertIn("missing --key item_id=...", r.stderr)

    def test_feature_service_spans_views(self):
        doc = self.fsctl_json("get", "--service", "ranking", "--key", "user_id=1",
                              "--key", "item_id=a")
        self.assertEqual(doc["rows"][0]["values"]["users:age"]["value"], -42)
        self.assertEqual(doc["rows"][0]["values"]["user_item:clicks"]["value"], 3)
        self.assertEqual(set(doc["rows"][0]["staleness_ms"]), {"users", "user_item"})
        out = self.fsctl("get", "--service", "ranking", "--key", "user_id=1", "--key",
                         "item_id=a").stdout
        self.assertRegex(out.splitlines()[0], r"users:age +user_item:clicks +staleness users "
                                              r"+staleness user_item$")

    # ---- errors ------------------------------------------------------------------------

    def test_unknown_view_fails_with_exit_1(self):
        r = self.fsctl("get", "--view", "nope", "--key", "user_id=1", rc=1)
        self.assertIn('fsctl: unknown view "nope" (served views: users, user_item, bench)',
                      r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.fsctl("get", "--service", "nope", "--key", "user_id=1", rc=1)
        self.assertIn('unknown feature service "nope"', r.stderr)

    def test_server_errors_print_code_and_decoded_message(self):
        r = self.fsctl("get", "--view", "users", "--key", "user_id=1", "--features",
                       "ñame%", rc=1)
        self.assertEqual(r.stderr, 'fsctl: GetFeatures: INVALID_ARGUMENT: view users has no '
                                   'feature "ñame%"\n')

    def test_usage_errors_exit_2(self):
        for args, message in [
            (["get", "--view", "users", "--key", "user_id=12x"], "give a decimal integer"),
            (["get", "--view", "users", "--key", "user_id=+1"], "give a decimal integer"),
            (["get", "--view", "users", "--key", "user_id= 1"], "give a decimal integer"),
            (["get", "--view", "users", "--key", "user_id=9223372036854775808"],
             "give a decimal integer"),
            (["get", "--view", "users", "--key", "item_id=1"], "not a join key"),
            (["get", "--view", "users"], "--key NAME=VALUE"),
            (["get", "--key", "user_id=1"], "one of --view VIEW or --service NAME"),
            (["frobnicate"], 'unknown command "frobnicate"'),
            (["views", "--bogus"], "unrecognized option"),
        ]:
            r = self.fsctl(*args, rc=2)
            self.assertIn(message, r.stderr, args)
        # the extremes of int64 are fine
        self.fsctl("get", "--view", "users", "--key", "user_id=-9223372036854775808",
                   "--key", "user_id=9223372036854775807")

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = run(FSCTL, "--addr", f"127.0.0.1:{port}", "views")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"fsctl: cannot connect to 127.0.0.1:{port}: "
                                   "Connection refused\n")

    def test_health_and_help(self):
        self.assertEqual(self.fsctl("health").stdout, "SERVING\n")
        r = self.fsctl("health", "--service", "no.such.Service", rc=1)
        self.assertIn("Check: NOT_FOUND", r.stderr)
        out = run(FSCTL, "--help").stdout
        for command in ("views", "get", "health", "--addr HOST:PORT"):
            self.assertIn(command, out)

    # ---- metrics: what fsd counted for the calls the tools made --------------------------

    def requests_total(self):
        """fsd_requests_total by (method, code), from the stats port's /metrics."""
        try:
            line = self.fsd.wait_for_log(r'msg="stats listening".* port=\d+', timeout_s=2)
        except AssertionError:
            self.skipTest("this fsd has no stats port")
        port = int(re.search(r" port=(\d+)", line).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        counts = {}
        for m in re.finditer(r'^fsd_requests_total\{method="(\w+)",code="(\w+)"\} (\d+)$', body,
                             re.M):
            counts[m.group(1), m.group(2)] = int(m.group(3))
        return counts

    def delta(self, before, after):
        return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
                if after.get(k, 0) != before.get(k, 0)}

    def test_metrics_count_exactly_the_calls_fsctl_makes(self):
        before = self.requests_total()
        self.fsctl("get", "--view", "users", "--key", "user_id=1")
        self.fsctl("get", "--view", "users", "--key", "user_id=1", "--features", "nope", rc=1)
        self.fsctl("get", "--view", "nope", "--key", "user_id=1", rc=1)  # ListViews only
        self.fsctl("health")
        self.assertEqual(self.delta(before, self.requests_total()), {
            ("ListViews", "OK"): 3, ("GetFeatures", "OK"): 1,
            ("GetFeatures", "INVALID_ARGUMENT"): 1, ("Check", "OK"): 1})

    def test_metrics_count_the_calls_grpc_load_reports(self):
        self.grpc_load("--fill", "1000")  # grpc_load fails lookups of entities never filled
        before = self.requests_total()
        # a grpc-timeout, so the server's default 1 ms budget does not refuse calls that
        # queue behind others (they do, on a loaded machine or under sanitizers)
        r = self.grpc_load("--entities", "1000", "--batch", "5", "--duration", "0.5",
                           "--connections", "2", "--inflight", "8", "--timeout", "5000", "--json")
        doc = json.loads(r.stdout)
        d = self.delta(before, self.requests_total())
        # every call of the run is in the report, plus the one probe call before it
        self.assertGreater(doc["requests"], 0)
        self.assertEqual(d, {("GetFeatures", "OK"): doc["requests"] + 1})

    # ---- grpc_load ---------------------------------------------------------------------

    def grpc_load(self, *args, rc=0, timeout=60):
        r = run(GRPC_LOAD, "--addr", self.addr, *args, timeout=timeout)
        self.assertEqual(r.returncode, rc, f"grpc_load {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def test_grpc_load_fills_then_measures_closed_and_open_loop(self):
        out = self.grpc_load("--fill", "12000").stdout
        self.assertRegex(out, r"^filled 12000 rows into bench in [\d.]+ s: \d+ rows/s "
                              r"\(inserted 12000, replaced 0, not newer 0\)\n$")
        doc = self.fsctl_json("get", "--view", "bench", "--key", "entity_id=11999")
        values = doc["rows"][0]["values"]
        doubles, count, label = bench_row(11999)  # what the Redis targets hold too
        self.assertEqual([values[f"bench:d{f}"]["value"] for f in range(8)], doubles)
        self.assertEqual(values["bench:count"]["value"], count)
        self.assertEqual(values["bench:label"]["value"], label)
        self.assertEqual({v["status"] for v in values.values()}, {"PRESENT"})

        header = ("| batch | mode | rate | requests/s | key lookups/s | feature values/s | "
                  "p50 us | p99 us | p999 us | max us | errors |")
        row = re.compile(r"^\| (\d+) \| (\w+) \| ([\d-]+) \| (\d+) \| (\d+) \| (\d+) \| "
                         r"([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|$")
        # closed loop
        r = self.grpc_load("--entities", "12000", "--batch", "10", "--duration", "1",
                           "--connections", "2", "--inflight", "4", "--timeout", "5000")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], header)
        m = row.match(lines[2])
        self.assertIsNotNone(m, r.stdout)
        batch, mode, rate, rps, lps, vps = m.group(1, 2, 3, 4, 5, 6)
        self.assertEqual((batch, mode, rate), ("10", "closed", "-"))
        self.assertGreater(int(rps), 100)
        self.assertEqual(int(lps), int(rps) * 10)
        self.assertEqual(int(vps), int(rps) * 100)
        p50, p99, p999, pmax = map(float, m.group(7, 8, 9, 10))
        self.assertTrue(0 < p50 <= p99 <= p999 <= pmax, m.group(0))
        self.assertEqual(m.group(11), "0")
        print(r.stdout, end="")
        # open loop: the schedule sets the rate
        r = self.grpc_load("--entities", "12000", "--batch", "100", "--duration", "1",
                           "--rate", "400", "--inflight", "16", "--timeout", "5000", "--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["mode"], "open")
        self.assertEqual(doc["rate"], 400)
        self.assertAlmostEqual(doc["requests_per_s"], 400, delta=40)
        self.assertEqual(doc["errors"], 0)
        self.assertEqual(doc["lookups_per_s"], doc["requests_per_s"] * 100)
        print(r.stdout, end="")
        # CSV: a header and a row with the same fields
        r = self.grpc_load("--entities", "12000", "--duration", "0.3", "--csv", "--runs", "3",
                           "--timeout", "5000")
        head, line = r.stdout.splitlines()
        fields = dict(zip(head.split(","), line.split(",")))
        self.assertEqual(fields["runs"], "3")
        self.assertEqual(fields["mode"], "closed")
        self.assertEqual(fields["errors"], "0")

    def test_grpc_load_sigusr1_ends_the_run_and_the_latency_log_has_every_call(self):
        self.grpc_load("--fill", "1000")
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "calls.log")
            before_us = h.now_us()
            p = subprocess.Popen([GRPC_LOAD, "--addr", self.addr, "--entities", "1000",
                                  "--batch", "10", "--rate", "200", "--inflight", "16",
                                  "--timeout", "5000", "--duration", "60", "--json",
                                  "--latency-log", log],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(1.0)
                p.send_signal(signal.SIGUSR1)
                out, errs = p.communicate(timeout=10)  # not the 60 s asked for
            finally:
                p.kill()
            after_us = h.now_us()
            self.assertEqual(p.returncode, 0, errs)
            doc = json.loads(out)
            self.assertTrue(0.5 < doc["measured_s"] < 5, doc)
            self.assertAlmostEqual(doc["requests_per_s"], 200, delta=40)
            with open(log) as f:
                lines = f.read().splitlines()
        self.assertEqual(lines[1], "# start_wall_us latency_us send_lag_us ok")
        calls = [tuple(int(x) for x in line.split()) for line in lines[2:]]
        self.assertEqual(len(calls), doc["requests"] + doc["errors"])
        self.assertEqual(sum(ok for *_, ok in calls), doc["requests"])
        for start, latency, lag, _ in calls:
            # wall-clock starts inside the run, latencies positive, lags never negative
            self.assertTrue(before_us <= start <= after_us, (before_us, start, after_us))
            self.assertTrue(0 < latency < 5_000_000 and lag >= 0, (latency, lag))
        # the log and the histogram saw the same calls
        latencies = sorted(c[1] for c in calls)
        self.assertAlmostEqual(latencies[len(latencies) // 2], doc["p50_us"],
                               delta=doc["p50_us"] * 0.02 + 2)

    def test_grpc_load_reports_server_errors(self):
        r = self.grpc_load("--view", "nope", "--duration", "0.2", rc=1)
        self.assertIn("GetFeatures: INVALID_ARGUMENT: unknown view \"nope\"", r.stderr)
        r = self.grpc_load("--duration", "700", rc=2)
        self.assertIn("--duration", r.stderr)
        # entities that were never filled: nothing to measure, as with a nil from Redis
        self.grpc_load("--fill", "100")
        r = self.grpc_load("--entities", "1000000000000", "--batch", "20", "--duration", "0.2",
                           rc=1)
        self.assertIn("GetFeatures found no row for an entity: the view is missing rows", r.stderr)
        r = self.grpc_load("--latency-log", "/dev/null", "--runs", "2", rc=2)
        self.assertIn("--latency-log records one run", r.stderr)

    def test_dump_request_is_a_framed_get_features_request(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "req.bin")
            run(GRPC_LOAD, "--dump-request", path, "--batch", "50", "--entities", "1000")
            with open(path, "rb") as f:
                data = f.read()
        flag, length = struct.unpack(">BI", data[:5])
        self.assertEqual((flag, length), (0, len(data) - 5))
        req = pb.GetFeaturesRequest.FromString(data[5:])
        self.assertEqual(list(req.features), ["bench:*"])
        self.assertEqual(req.keys[0].name, "entity_id")
        self.assertEqual(len(req.keys[0].int64_values), 50)
        self.assertTrue(all(0 <= i < 1000 for i in req.keys[0].int64_values))
        # and fsd takes it as it is
        resp = pb.GetFeaturesResponse.FromString(
            self.fsd.raw(h.SERVICE + "GetFeatures", data[5:]))
        self.assertEqual(resp.entities, 50)



def splitmix64(state):
    """The generator's random function (loadtest/grpc_load_run.c): one step from `state`."""
    m = (1 << 64) - 1
    z = (state + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def bench_row(i):
    """grpc_load's benchmark row for entity i (loadtest/grpc_load_fill.c), the same for every
    target: d0..d7, count, label."""
    doubles = [(splitmix64(i * 8 + f) >> 11) * 2.0 ** -53 for f in range(8)]
    label = "lbl%0*d" % (7 + i % 7, i % 10000000)
    return doubles, i % 1000, label


class RedisTargetsTest(unittest.TestCase):
    """grpc_load's Redis targets against a real redis-server: what --fill writes, that every
    lookup reaches Redis as the commands the layout promises, and clear failures."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.addr = f"127.0.0.1:{cls.redis.port}"
        cls.client = cls.redis.client()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def grpc_load(self, target, *args, rc=0):
        r = run(GRPC_LOAD, "--target", target, "--addr", self.addr, *args)
        self.assertEqual(r.returncode, rc, f"grpc_load {' '.join(args)}\n{r.stdout}\n{r.stderr}")
        return r

    def calls(self, command):
        return self.client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)

    def test_hash_fill_writes_the_benchmark_rows_exactly(self):
        before = h.now_us()
        out = self.grpc_load("redis-hash", "--fill", "3000").stdout
        self.assertRegex(out, r"^filled 3000 rows into redis-hash in [\d.]+ s: \d+ rows/s\n$")
        self.assertEqual(self.client.exists(*[f"e:{i}" for i in (0, 1500, 2999)]), 3)
        self.assertEqual(self.client.exists("e:3000"), 0)
        for i in (0, 7, 2999):
            fields = {k.decode(): v.decode() for k, v in self.client.hgetall(f"e:{i}").items()}
            doubles, count, label = bench_row(i)
            self.assertEqual(set(fields), {f"d{f}" for f in range(8)} |
                             {"count", "label", "_ts"})
            # bit for bit, in the shortest text that reads back exactly
            self.assertEqual([float(fields[f"d{f}"]) for f in range(8)], doubles)
            self.assertEqual([fields[f"d{f}"] for f in range(8)],
                             [repr(d).removesuffix(".0") for d in doubles])
            self.assertEqual((int(fields["count"]), fields["label"]), (count, label))
            self.assertTrue(before <= int(fields["_ts"]) <= h.now_us())

    def test_packed_fill_writes_one_protobuf_row_per_entity(self):
        self.grpc_load("redis-packed", "--fill", "3000")
        for i in (0, 11, 2999):
            data = self.client.get(f"p:{i}")
            doubles, count, label = bench_row(i)
            # 1: packed doubles  2: count  3: label  4: event time (varints)
            self.assertEqual(data[:2], bytes([0x0A, 64]))
            self.assertEqual(list(struct.unpack("<8d", data[2:66])), doubles)
            self.assertEqual(data[66], 0x10)
            pos, value, shift = 67, 0, 0
            while True:
                value |= (data[pos] & 0x7F) << shift
                shift += 7
                pos += 1
                if data[pos - 1] < 0x80:
                    break
            self.assertEqual(value, count)
            self.assertEqual(data[pos:pos + 2], bytes([0x1A, len(label)]))
            self.assertEqual(data[pos + 2:pos + 2 + len(label)].decode(), label)
            self.assertEqual(data[pos + 2 + len(label)], 0x20)

    def test_lookups_are_pipelined_hmgets_or_one_mget_per_call(self):
        self.grpc_load("redis-hash", "--fill", "2000")
        self.grpc_load("redis-packed", "--fill", "2000")
        for target, command, per_call in (("redis-hash", "hmget", 10),
                                          ("redis-packed", "mget", 1)):
            before = self.calls(command)
            r = self.grpc_load(target, "--entities", "2000", "--batch", "10", "--duration",
                               "0.5", "--connections", "2", "--inflight", "4", "--json")
            doc = json.loads(r.stdout)
            self.assertEqual((doc["target"], doc["errors"]), (target, 0))
            self.assertGreater(doc["requests"], 0)
            self.assertEqual(doc["values_per_s"], doc["lookups_per_s"] * 10)
            # every measured call, and the probe before the run, reached Redis
            self.assertEqual(self.calls(command) - before, (doc["requests"] + 1) * per_call)
        # open loop, with the percentile curve written out
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "curve.csv")
            r = self.grpc_load("redis-packed", "--entities", "2000", "--batch", "100",
                               "--duration", "1", "--rate", "200", "--inflight", "8", "--json",
                               "--histogram-out", path)
            doc = json.loads(r.stdout)
            self.assertEqual((doc["mode"], doc["rate"], doc["errors"]), ("open", 200, 0))
            self.assertAlmostEqual(doc["requests_per_s"], 200, delta=20)
            with open(path) as f:
                lines = f.read().splitlines()
        self.assertEqual(lines[0], "percentile,latency_us")
        curve = [tuple(map(float, line.split(","))) for line in lines[1:]]
        self.assertEqual((curve[0][0], curve[-1][0]), (0, 100))
        self.assertEqual(curve, sorted(curve))  # latency never falls as the percentile rises
        self.assertAlmostEqual(dict(curve)[100], doc["max_us"], delta=0.1)

    def test_missing_rows_and_no_redis_fail_clearly(self):
        self.client.flushall()
        self.grpc_load("redis-hash", "--fill", "100")
        r = self.grpc_load("redis-hash", "--entities", "1000000", "--batch", "50",
                           "--duration", "0.2", rc=1)
        self.assertIn("HMGET answered", r.stderr)
        self.assertIn("nil values: the keys are missing", r.stderr)
        r = self.grpc_load("redis-packed", "--entities", "100", "--duration", "0.2", rc=1)
        self.assertIn("MGET answered 1 nil values", r.stderr)
        r = run(GRPC_LOAD, "--target", "redis-hash", "--addr", f"127.0.0.1:{free_port()}",
                "--fill", "10")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"cannot connect to Redis at 127\.0\.0\.1:\d+: "
                                   r"Connection refused")
        r = run(GRPC_LOAD, "--target", "memcached")
        self.assertEqual(r.returncode, 2)
        self.assertIn('invalid value "memcached" for --target', r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
