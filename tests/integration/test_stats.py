"""The stats port against a real fsd: /metrics parsed with a real Prometheus text parser
(Debian's python3-prometheus-client) and checked to move by exactly the expected amounts,
/healthz, /readyz, /status, the bearer token, and the HTML page rendered in headless Chromium.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import grpc

import harness as h
from harness import pb, scrape

HOUR_US = 3600 * 1000000
EXTRA_USERS = 1231  # with users 1, 2 and 3: 1,234 rows, a figure easy to find on the page

CONFIG = """
  stats_port: 0
views:
  - name: users
    join_keys: [{name: user_id, type: int64}]
    ttl: 1h
    features:
      - {name: age, type: int32, default: 0}
      - {name: score, type: double, default: 0.5}
      - {name: ratio, type: float}
  - name: items
    join_keys: [{name: item_id, type: string}]
    ttl: 0
    features:
      - {name: price, type: double, default: 1.5}
feature_services:
  - name: ranking
    features: ["users:age", "items:price"]
"""

# A view with a source the materializer never loads (the path does not exist): not ready.
NOT_READY_CONFIG = """
  stats_port: 0
views:
  - name: users
    join_keys: [{name: user_id, type: int64}]
    ttl: 1h
    features:
      - {name: age, type: int32, default: 0}
  - name: items
    join_keys: [{name: item_id, type: string}]
    ttl: 1h
    source:
      type: parquet
      path: /nonexistent/fsd-stats-test/items.parquet
      event_timestamp_column: event_ts
    features:
      - {name: price, type: double, default: 1.5}
"""

TOKEN = "s3cret-t0ken"


def get(port, path, **kw):
    return h.http_request(port, path, **kw)


class StatsTest(unittest.TestCase):
    """One fsd with push-fed views (no sources): ready at once."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.port = h.stats_port(cls.fsd)
        cls.now = h.now_us()
        # user 1: present, 5 s old; user 2: null values, fresh; user 3: 90 min old, past the
        # 1 h ttl but not yet past ttl + store.expiry_grace (1 h), when the sweeper frees it
        rows = [
            h.row({"user_id": 1}, cls.now - 5_000_000,
                  {"age": (41, "int32_value"), "score": (0.9, "double_value"),
                   "ratio": (0.25, "float_value")}),
            h.row({"user_id": 2}, cls.now),
            h.row({"user_id": 3}, cls.now - 90 * 60_000_000,
                  {"age": (30, "int32_value"), "score": (0.1, "double_value")}),
        ]
        rows += [h.row({"user_id": 1000 + i}, cls.now, {"age": (i % 90, "int32_value")})
                 for i in range(EXTRA_USERS)]
        assert cls.fsd.push(pb.PushRowsRequest(view="users", rows=rows)).inserted == len(rows)
        cls.fsd.push(pb.PushRowsRequest(view="items", rows=[
            h.row({"item_id": "a"}, cls.now - 10 * HOUR_US, {"price": (9.99, "double_value")}),
            h.row({"item_id": "b"}, cls.now),
        ]))

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        assert rc == 0, "fsd exited with %d:\n%s" % (rc, "\n".join(cls.fsd.log()[-30:]))

    def lookup(self, features, **keys):
        return self.fsd.get(pb.GetFeaturesRequest(features=features, keys=h.keys(**keys)))

    def assertDeltas(self, before, expected, timeout_s=3):
        """expected: {(name, labels dict as tuple of pairs): delta}. A worker bumps some counters
        just after its reply leaves, so scrape until they match (or time out), then compare
        exactly: a counter that moved too far fails as surely as one that did not move."""
        deadline = time.monotonic() + timeout_s
        while True:
            after = scrape(self.port)
            got = {key: after.delta(before, key[0], **dict(key[1])) for key in expected}
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for key, want in expected.items():
            self.assertEqual(got[key], want, "%s%s moved by %s, expected %s"
                             % (key[0], dict(key[1]), got[key], want))
        return after

    # ---- /metrics ------------------------------------------------------------------------

    def test_metrics_text_declares_each_family_once_with_help_and_type(self):
        m = scrape(self.port)
        helps = [line.split()[2] for line in m.text.splitlines() if line.startswith("# HELP ")]
        types = [line.split()[2] for line in m.text.splitlines() if line.startswith("# TYPE ")]
        self.assertEqual(len(helps), len(set(helps)), "a family declared twice")
        self.assertEqual(helps, types)
        for name in ["fsd_requests_total", "fsd_request_duration_seconds", "fsd_batch_size",
                     "fsd_budget_exceeded_total", "fsd_view_rows", "fsd_view_memory_bytes",
                     "fsd_view_snapshot_version", "fsd_view_seconds_since_last_load",
                     "fsd_view_lookups_total", "fsd_view_not_found_total",
                     "fsd_served_row_staleness_seconds", "fsd_default_fallbacks_total",
                     "fsd_ready", "fsd_view_ready", "fsd_sweeper_reclaimed_total",
                     "fsd_build_info", "fsd_process_resident_memory_bytes",
                     "fsd_jemalloc_allocated_bytes", "fsd_jemalloc_resident_bytes",
                     "fsd_grpc_connections_open", "fsd_process_start_time_seconds"]:
            self.assertIn(name, helps)
        for line in m.text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                if kind == "counter":
                    self.assertTrue(name.endswith("_total"), name)
        self.assertEqual(m.families["fsd_served_row_staleness_seconds"].type, "histogram")
        self.assertEqual(m.families["fsd_default_fallbacks"].type, "counter")

    def test_missing_null_and_stale_entities_move_the_counters_exactly(self):
        before = scrape(self.port)
        # 1 present (5 s old), 2 null (fresh), 3 stale (90 min, ttl 1 h), 4 missing
        r = self.lookup(["users:age", "users:score", "users:ratio"], user_id=[1, 2, 3, 4])
        self.assertEqual((r.defaults_not_found, r.defaults_null_value,
                          r.defaults_outside_max_age), (2, 2, 2))
        users = (("view", "users"),)
        expected = {
            ("fsd_view_lookups_total", users): 4,
            ("fsd_view_not_found_total", users): 1,
            ("fsd_requests_total", (("method", "GetFeatures"), ("code", "OK"))): 1,
            ("fsd_request_duration_seconds_count", (("method", "GetFeatures"),)): 1,
            ("fsd_batch_size_count", ()): 1,
            ("fsd_batch_size_bucket", (("le", "1"),)): 0,
            ("fsd_batch_size_bucket", (("le", "10"),)): 1,
            # rows found: user 2 (~0 s), user 1 (5 s), user 3 (5400 s)
            ("fsd_served_row_staleness_seconds_count", users): 3,
            ("fsd_served_row_staleness_seconds_bucket", users + (("le", "1"),)): 1,
            ("fsd_served_row_staleness_seconds_bucket", users + (("le", "10"),)): 2,
            ("fsd_served_row_staleness_seconds_bucket", users + (("le", "3600"),)): 2,
            ("fsd_served_row_staleness_seconds_bucket", users + (("le", "21600"),)): 3,
            ("fsd_served_row_staleness_seconds_bucket", users + (("le", "+Inf"),)): 3,
            ("fsd_view_lookups_total", (("view", "items"),)): 0,
        }
        for feature in ("age", "score"):
            for reason in ("not_found", "null_value", "outside_max_age"):
                key = users + (("feature", feature), ("reason", reason))
                expected[("fsd_default_fallbacks_total", key)] = 1
        after = self.assertDeltas(before, expected)
        # ratio has no default: nothing falls back, so it has no series at all
        self.assertFalse(after.has("fsd_default_fallbacks_total", view="users", feature="ratio",
                                   reason="not_found"))
        stale_sum = after.delta(before, "fsd_served_row_staleness_seconds_sum", view="users")
        self.assertAlmostEqual(stale_sum, 5405, delta=30)

    def test_a_second_view_and_a_feature_service_count_per_view(self):
        before = scrape(self.port)
        r = self.fsd.get(pb.GetFeaturesRequest(feature_service="ranking",
                                               keys=h.keys(user_id=[1, 99], item_id=["a", "zz"])))
        self.assertEqual(r.entities, 2)
        items = (("view", "items"),)
        self.assertDeltas(before, {
            ("fsd_view_lookups_total", (("view", "users"),)): 2,
            ("fsd_view_not_found_total", (("view", "users"),)): 1,
            ("fsd_view_lookups_total", items): 2,
            ("fsd_view_not_found_total", items): 1,
            # item a is 10 h old, but items has ttl 0: served, and observed at 10 h
            ("fsd_served_row_staleness_seconds_bucket", items + (("le", "3600"),)): 0,
            ("fsd_served_row_staleness_seconds_bucket", items + (("le", "86400"),)): 1,
            ("fsd_default_fallbacks_total",
             items + (("feature", "price"), ("reason", "not_found"))): 1,
            ("fsd_default_fallbacks_total",
             items + (("feature", "price"), ("reason", "outside_max_age"))): 0,
            ("fsd_default_fallbacks_total",
             (("view", "users"), ("feature", "age"), ("reason", "not_found"))): 1,
        })

    def test_failed_requests_are_counted_by_code(self):
        before = scrape(self.port)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.lookup(["nope:x"], user_id=[1])
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.get(pb.GetFeaturesRequest(feature_service="nope", keys=h.keys(user_id=[1])))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.get(pb.GetFeaturesRequest(features=["users:age"], keys=h.keys(user_id=[1]),
                                               budget_us=1))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.fsd.list_views()
        gf = (("method", "GetFeatures"),)
        self.assertDeltas(before, {
            ("fsd_requests_total", gf + (("code", "INVALID_ARGUMENT"),)): 1,
            ("fsd_requests_total", gf + (("code", "NOT_FOUND"),)): 1,
            ("fsd_requests_total", gf + (("code", "DEADLINE_EXCEEDED"),)): 1,
            ("fsd_requests_total", gf + (("code", "OK"),)): 0,
            ("fsd_requests_total", (("method", "ListViews"), ("code", "OK"))): 1,
            ("fsd_budget_exceeded_total", ()): 1,
            ("fsd_request_duration_seconds_count", gf): 3,
            # none of them reached a lookup
            ("fsd_batch_size_count", ()): 0,
            ("fsd_view_lookups_total", (("view", "users"),)): 0,
        })

    def test_view_gauges_match_the_store(self):
        m = scrape(self.port)
        views = {v.name: v for v in self.fsd.list_views().views}
        self.assertEqual(m.get("fsd_view_rows", view="users"), 3 + EXTRA_USERS)
        self.assertEqual(m.get("fsd_view_rows", view="items"), 2)
        for name in ("users", "items"):
            self.assertEqual(m.get("fsd_view_rows", view=name), views[name].rows)
            self.assertEqual(m.get("fsd_view_memory_bytes", view=name), views[name].memory_bytes)
            # pushes write into the live table: no snapshot was ever loaded
            self.assertEqual(m.get("fsd_view_snapshot_version", view=name), 0)
            self.assertFalse(m.has("fsd_view_seconds_since_last_load", view=name))
            self.assertFalse(m.has("fsd_view_last_load_timestamp_seconds", view=name))
            self.assertEqual(m.get("fsd_view_ready", view=name), 1)
        self.assertGreater(m.get("fsd_view_memory_bytes", view="users"), (3 + EXTRA_USERS) * 20)
        self.assertEqual(m.get("fsd_view_ttl_seconds", view="users"), 3600)
        self.assertEqual(m.get("fsd_view_ttl_seconds", view="items"), 0)
        self.assertEqual(m.get("fsd_ready"), 1)

    def test_process_metrics(self):
        m = scrape(self.port)
        self.assertEqual(m.get("fsd_build_info", version=self.fsd_version()), 1)
        self.assertGreater(m.get("fsd_process_resident_memory_bytes"), 1 << 20)
        self.assertAlmostEqual(m.get("fsd_process_start_time_seconds"), time.time(), delta=600)
        self.assertGreater(m.get("fsd_process_open_fds"), 3)
        self.assertGreaterEqual(m.get("fsd_grpc_connections_open"), 1)  # our channel
        self.assertTrue(m.has("fsd_jemalloc_allocated_bytes"))

    def fsd_version(self):
        out = subprocess.run([h.FSD_BIN, "--version"], capture_output=True, text=True).stdout
        return out.split()[1]

    # ---- health, status, routing --------------------------------------------------------

    def test_healthz_and_readyz_without_sources(self):
        self.assertEqual(get(self.port, "/healthz")[::2], (200, b"ok\n"))
        # no view has a source: ready from the start
        self.assertEqual(get(self.port, "/readyz")[::2], (200, b"ready\n"))

    def test_status_json(self):
        status, headers, body = get(self.port, "/status")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        s = json.loads(body)
        self.assertEqual(s["version"], self.fsd_version())
        self.assertTrue(s["ready"])
        self.assertGreaterEqual(s["uptime_seconds"], 0)
        self.assertEqual(s["config"]["grpc_port"], self.fsd.port)
        self.assertEqual(s["config"]["stats_port"], self.port)
        self.assertFalse(s["config"]["stats_auth"])
        self.assertEqual(s["config"]["feature_services"], ["ranking"])
        self.assertEqual(s["config"]["workers"], 2)
        views = {v["name"]: v for v in s["views"]}
        self.assertEqual(sorted(views), ["items", "users"])
        users = views["users"]
        self.assertEqual(users["rows"], 3 + EXTRA_USERS)
        self.assertEqual(users["snapshot_version"], 0)
        self.assertIsNone(users["seconds_since_last_load"])
        self.assertIsNone(users["last_load"])
        self.assertEqual(users["source"], "none")
        self.assertTrue(users["ready"])
        m = scrape(self.port)
        self.assertEqual(users["lookups"], m.get("fsd_view_lookups_total", view="users"))
        self.assertEqual(users["fallbacks"]["null_value"],
                         sum(m.get("fsd_default_fallbacks_total", view="users", feature=f,
                                   reason="null_value") for f in ("age", "score", "ratio")))
        self.assertEqual(users["staleness"]["count"],
                         m.get("fsd_served_row_staleness_seconds_count", view="users"))
        for key in ("p50_seconds", "p90_seconds", "p99_seconds"):
            self.assertIn(key, users["staleness"])
        self.assertIn("recent", users)
        self.assertEqual(s["last_errors"], [])
        self.assertIn("GetFeatures", s["requests"])

    def test_unknown_paths_404_and_other_methods_405(self):
        self.assertEqual(get(self.port, "/nope")[0], 404)
        self.assertEqual(get(self.port, "/metrics/extra")[0], 404)
        for path in ("/metrics", "/status", "/", "/readyz"):
            status, headers, _ = get(self.port, path, method="POST")
            self.assertEqual(status, 405, path)
            self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(get(self.port, "/healthz", method="DELETE")[0], 405)
        status, _, body = get(self.port, "/healthz", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        # the query string is not part of the route
        self.assertEqual(get(self.port, "/healthz?verbose=1")[0], 200)
        m = scrape(self.port)
        self.assertGreaterEqual(m.get("fsd_stats_http_requests_total", path="other", code="404"),
                                2)

    # ---- the HTML page ----------------------------------------------------------------

    def test_status_page_is_self_contained_html(self):
        status, headers, body = get(self.port, "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        page = body.decode()
        self.assertIn('http-equiv="refresh"', page)
        for external in ("http://", "https://", "<script", "src="):
            self.assertNotIn(external, page)

    def test_status_page_renders_in_headless_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            self.skipTest("chromium is not installed (scripts/setup.sh installs Debian's)")
        # traffic so the page has figures: 5 lookups in users, 1 not found
        self.lookup(["users:age", "users:score"], user_id=[1, 2, 3, 1000, 4])
        with tempfile.TemporaryDirectory(prefix="fsd-chromium-") as tmp:
            url = f"http://127.0.0.1:{self.port}/"
            base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--user-data-dir=" + os.path.join(tmp, "profile"), "--window-size=1200,800"]
            probe = subprocess.run(base + ["--dump-dom", "data:text/html,<p>probe</p>"],
                                   capture_output=True, text=True, timeout=120)
            if "probe" not in probe.stdout:
                self.skipTest("chromium cannot run here: exit %d, %s"
                              % (probe.returncode, probe.stderr.strip()[-300:]))
            dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                                 timeout=120)
            self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
            html = dom.stdout
            self.assertIn('id="ready"', html)
            self.assertIn(">READY<", html)
            self.assertIn('<td class="view">users</td>', html)
            self.assertIn('<td class="view">items</td>', html)
            self.assertIn('<td class="n rows">1,234</td>', html)  # users' row count
            self.assertIn('<td class="n rows">2</td>', html)      # items'
            self.assertIn("Staleness p50 / p90", html)
            self.assertIn("Defaults served", html)

            shot = os.path.join(os.environ.get("FSD_SCREENSHOT_DIR", tmp), "fsd-status-page.png")
            run = subprocess.run(base + ["--screenshot=" + shot, url], capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stderr[-2000:])
            with open(shot, "rb") as f:
                png = f.read()
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            width, height = struct.unpack(">II", png[16:24])
            self.assertEqual((width, height), (1200, 800))
            # a blank 1200x800 PNG compresses to a few hundred bytes; text and a table do not
            self.assertGreater(len(png), 20000)


class NotReadyTest(unittest.TestCase):
    """A view with a source that never loads keeps the daemon not ready."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(NOT_READY_CONFIG)
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0

    def test_readyz_lists_the_views_not_ready(self):
        status, _, body = get(self.port, "/readyz")
        self.assertEqual(status, 503)
        self.assertEqual(body.decode(),
                         "not ready\nview items: waiting for its first snapshot (parquet source)\n")
        # still alive, and still serving the view without a source
        self.assertEqual(get(self.port, "/healthz")[0], 200)
        self.fsd.push(pb.PushRowsRequest(view="users", rows=[h.row({"user_id": 1}, h.now_us())]))
        self.assertEqual(get(self.port, "/readyz")[0], 503)

    def test_metrics_status_and_page_say_not_ready(self):
        m = scrape(self.port)
        self.assertEqual(m.get("fsd_ready"), 0)
        self.assertEqual(m.get("fsd_view_ready", view="items"), 0)
        self.assertEqual(m.get("fsd_view_ready", view="users"), 1)
        self.assertEqual(m.get("fsd_view_snapshot_version", view="items"), 0)
        self.assertFalse(m.has("fsd_view_seconds_since_last_load", view="items"))
        s = json.loads(get(self.port, "/status")[2])
        self.assertFalse(s["ready"])
        views = {v["name"]: v for v in s["views"]}
        self.assertFalse(views["items"]["ready"])
        self.assertEqual(views["items"]["source"], "parquet")
        self.assertTrue(views["users"]["ready"])
        page = get(self.port, "/")[2].decode()
        self.assertIn("NOT READY", page)
        self.assertIn("1 view waiting for a first snapshot", page)


    def test_status_stays_valid_json_when_an_error_holds_bytes_that_are_not_utf8(self):
        """Regression: a LoadSnapshot path with a 0xff byte made /status invalid JSON (the
        failed load's error quotes the path, and the escaper copied the byte as it was)."""
        req = pb.LoadSnapshotRequest(view="items", path="/nonexistent/fsd-stats-test/XX.parquet")
        raw = req.SerializeToString().replace(b"XX", b"\xff\xfe")
        self.fsd.raw(h.SERVICE + "LoadSnapshot", raw)
        deadline = time.monotonic() + 20
        while True:
            s = json.loads(get(self.port, "/status")[2])  # raises on invalid JSON
            errors = [e["message"] for e in s["last_errors"] if "/nonexistent/" in e["message"]
                      and "\ufffd\ufffd.parquet" in e["message"]]
            if errors:
                break
            self.assertLess(time.monotonic(), deadline, s["last_errors"])
            time.sleep(0.05)
        self.assertIn("view items", errors[0])
        page = get(self.port, "/")[2]
        page.decode("utf-8")  # the page is UTF-8 too


class StatsPortTakenTest(unittest.TestCase):
    def test_fsd_serves_without_its_stats_port_when_the_port_is_taken(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            fsd = h.Fsd(f"  stats_port: {port}\nviews: []\n")
            try:
                line = fsd.wait_for_log(r'msg="cannot start the stats port; serving without it"')
                self.assertIn(f"bind 127.0.0.1:{port}: Address already in use", line)
                self.assertIn("stats=off", fsd.wait_for_log(r'msg="fsd ready"'))
                self.assertEqual(len(fsd.list_views().views), 0)  # gRPC serves
            finally:
                self.assertEqual(fsd.stop(), 0)


class TokenTest(unittest.TestCase):
    """server.stats_token protects /status and /; /metrics, /healthz and /readyz stay open."""

    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(f"  stats_port: 0\n  stats_token: {TOKEN}\nviews: []\n")
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0

    def test_status_and_page_need_the_token(self):
        for path in ("/status", "/"):
            status, headers, _ = get(self.port, path)
            self.assertEqual(status, 401, path)
            self.assertIn("Bearer", headers["www-authenticate"])
            for wrong in ("Bearer nope", "Bearer " + TOKEN + "x", "Bearer " + TOKEN[:-1],
                          "Basic " + TOKEN, TOKEN):
                self.assertEqual(get(self.port, path, headers={"Authorization": wrong})[0], 401,
                                 (path, wrong))
            status, _, body = get(self.port, path, headers={"Authorization": "Bearer " + TOKEN})
            self.assertEqual(status, 200, path)
        s = json.loads(get(self.port, "/status",
                           headers={"Authorization": "Bearer " + TOKEN})[2])
        self.assertTrue(s["config"]["stats_auth"])
        self.assertNotIn(TOKEN, json.dumps(s))  # the token itself is never shown

    def test_metrics_and_probes_stay_open(self):
        self.assertEqual(get(self.port, "/status")[0], 401)
        self.assertEqual(get(self.port, "/metrics")[0], 200)
        self.assertEqual(get(self.port, "/healthz")[0], 200)
        self.assertEqual(get(self.port, "/readyz")[0], 200)
        m = scrape(self.port)
        self.assertGreaterEqual(m.get("fsd_stats_http_requests_total", path="/status",
                                      code="401"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
