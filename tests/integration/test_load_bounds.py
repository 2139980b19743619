"""Loads that cannot hang or lie, end to end: a real fsd, a real PostgreSQL that the test
freezes (SIGSTOP), a listener that accepts and never answers, Parquet files DuckDB writes.

- A PostgreSQL backend frozen mid-load fails the load at postgres_read_timeout, a frozen
  postmaster at postgres_connect_timeout; the view keeps serving its last good snapshot, the
  error is in ListViews.last_error, the log and the metrics, and the other views' loads go on
  meanwhile (materializer.load_threads). Once thawed, the next retry loads.
- A Parquet directory where one file lacks a feature column, or has it with another type,
  fails the load naming the file and the column (DuckDB alone would read nulls or casts).
- A Parquet read longer than its load_timeout is interrupted.
- Until a view with a source has its first snapshot, GetFeatures touching it is UNAVAILABLE,
  unless the view has serve_before_ready; views without a source are served at once.
"""
import os
import shutil
import socket
import tempfile
import time
import unittest

import grpc

import duckdb_sql
import harness as h
from harness import pb
from pg_server import Postgres

AN_HOUR_AGO = "(now() - INTERVAL 1 HOUR)::TIMESTAMP"
FEATURE_V = """    features:
      - { name: v, type: int64 }
"""


def wait_until(predicate, timeout_s=30, step_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


def parquet_rows(path, first, last):
    """Entities first..last with v = id * 10, their event time an hour ago."""
    duckdb_sql.write_parquet(path, f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts, "
                                   f"range * 10 AS v FROM range({first}, {last} + 1)")


class LoadTestCase(unittest.TestCase):
    fsd = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-bounds-it-")

    def tearDown(self):
        if self.fsd is not None:
            self.assertEqual(self.fsd.stop(), 0)
            self.fsd = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def views(self):
        return {v.name: v for v in self.fsd.list_views().views}

    def view(self, name):
        return self.views()[name]

    def values(self, view, ids):
        """GetFeatures of view:v for `ids`: (statuses, int64 values)."""
        r = self.fsd.get(pb.GetFeaturesRequest(features=[f"{view}:v"], keys=h.keys(id=ids)))
        c = h.column(r, f"{view}:v")
        return list(c.statuses), list(c.int64_values)

    def load(self, view, path=""):
        self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view=view, path=path),
                       pb.LoadSnapshotResponse)

    def scrape(self):
        return h.scrape(self.stats)


# ---- PostgreSQL frozen --------------------------------------------------------------------

PG_SETUP = """
CREATE TABLE feats (id bigint, ts timestamptz, v bigint);
INSERT INTO feats SELECT g, now() - interval '1 hour', g * 10 FROM generate_series(1, 100) g;
CREATE TABLE knobs (sleep_s float8);
INSERT INTO knobs VALUES (0);
"""

# The view's query sleeps knobs.sleep_s before its first row: a load in progress the test can
# find (pg_stat_activity) and freeze.
PG_QUERY = ("SELECT f.id, f.ts, f.v FROM feats f, (SELECT pg_sleep(sleep_s) FROM knobs) k")


class FrozenPostgresTest(LoadTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        cls.pg.psql(PG_SETUP)

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        super().setUp()
        self.pg.psql("UPDATE knobs SET sleep_s = 0")
        self.files = os.path.join(self.tmp, "files")
        parquet_rows(os.path.join(self.files, "a.parquet"), 1, 10)
        self.fsd_config = f"""
materializer:
  postgres_read_timeout: 2s
  postgres_connect_timeout: 2s
views:
  - name: pgv
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source:
      type: postgres
      dsn: "{self.pg.dsn}"
      query: "{PG_QUERY}"
      event_timestamp_column: ts
{FEATURE_V}
  - name: files
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    refresh_interval: 500ms
    source: {{ type: parquet, path: "{self.files}", event_timestamp_column: ts }}
{FEATURE_V}"""
        self.fsd = h.Fsd(self.fsd_config)
        self.stats = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.view("pgv").last_load_result == "loaded" and
                                   self.view("files").snapshot_version >= 1),
                        "\n".join(self.fsd.log()))

    def tearDown(self):
        self.pg.thaw()
        super().tearDown()

    def freeze_the_copy(self):
        """Freezes the backend running pgv's COPY (the query sleeps 1 s before its rows)."""
        backends = wait_until(lambda: self.pg.backends(
            "application_name = 'fsd' AND state = 'active' AND query LIKE 'COPY%'"), step_s=0.01)
        self.assertEqual(len(backends), 1, backends)
        self.pg.freeze(backends)
        return time.monotonic()

    def assert_last_good_snapshot_serves(self):
        statuses, values = self.values("pgv", [1, 50, 100])
        self.assertEqual(statuses, [pb.PRESENT] * 3)
        self.assertEqual(values, [10, 500, 1000])

    def fail_while_frozen(self, freeze, bound, window_s):
        """Starts a load of pgv, freezes what `freeze()` returns, and checks what the failure
        looked like; returns the seconds from the freeze to the failure."""
        before = self.scrape()
        files_before = self.view("files").snapshot_version
        frozen_at = freeze()
        v = wait_until(lambda: (lambda x: x if x.loads_failed == 1 else None)(self.view("pgv")),
                       timeout_s=30, step_s=0.02)
        failed_after = time.monotonic() - frozen_at
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        print(f"    pgv failed {failed_after:.2f} s after the freeze: {v.last_error}")
        self.assertGreaterEqual(failed_after, window_s[0])
        self.assertLess(failed_after, window_s[1])
        # the failure, as ListViews, the metrics and the log say it
        self.assertEqual(v.last_load_result, "source_failed")
        self.assertIn("view pgv: postgres: ", v.last_error)
        self.assertIn(bound, v.last_error)
        self.assertEqual(v.snapshot_version, 1)
        after = self.scrape()
        self.assertEqual(after.delta(before, "fsd_materialization_loads_total", view="pgv",
                                     result="failed"), 1)
        self.assertEqual(after.get("fsd_materialization_consecutive_failures", view="pgv",
                                   reason="source"), 1)
        self.fsd.wait_for_log(r'msg="snapshot load failed: live snapshot kept" view=pgv '
                              r'.*error="view pgv: postgres: .*' + bound.replace("(", r"\(")
                              .replace(")", r"\)"))
        # the last good snapshot kept serving, and the other view kept loading meanwhile
        self.assert_last_good_snapshot_serves()
        self.assertGreater(self.view("files").snapshot_version, files_before,
                           "the Parquet view's refresh did not land while PostgreSQL was frozen")
        self.assertGreater(after.delta(before, "fsd_materialization_loads_total", view="files",
                                       result="ok"), 0)
        # thawed, the retry (1 s later) loads
        self.pg.thaw()
        v = wait_until(lambda: (lambda x: x if x.snapshot_version == 2 and
                                x.last_load_result == "loaded" else None)(self.view("pgv")))
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        self.assert_last_good_snapshot_serves()
        return failed_after

    def test_a_frozen_backend_fails_the_load_at_read_timeout(self):
        self.pg.psql("UPDATE knobs SET sleep_s = 1")  # a load takes 1 s: long enough to catch

        def freeze():
            self.load("pgv")
            return self.freeze_the_copy()

        self.fail_while_frozen(freeze, "no answer from the server for 2s (read_timeout)",
                               (1.9, 6))

    def test_a_frozen_postmaster_fails_the_load_at_connect_timeout(self):
        def freeze():
            self.pg.freeze(self.pg.processes())  # it accepts (the kernel does), never answers
            at = time.monotonic()
            self.load("pgv")
            return at

        self.fail_while_frozen(freeze, "no connection within connect_timeout (2s)", (1.9, 6))


    def test_stopping_fsd_abandons_a_frozen_read(self):
        self.assertEqual(self.fsd.stop(), 0)
        self.fsd = h.Fsd(self.fsd_config.replace("postgres_read_timeout: 2s",
                                                 "postgres_read_timeout: 1h"))
        self.assertTrue(wait_until(lambda: self.view("pgv").snapshot_version == 1))
        self.pg.psql("UPDATE knobs SET sleep_s = 1")
        self.load("pgv")
        self.freeze_the_copy()
        time.sleep(0.5)
        started = time.monotonic()
        self.assertEqual(self.fsd.stop(), 0)
        took = time.monotonic() - started
        print(f"    fsd stopped in {took:.2f} s with a read frozen")
        self.assertLess(took, 3)
        self.assertTrue(any("the materializer is shutting down; the read was abandoned" in line
                            for line in self.fsd.log()), "\n".join(self.fsd.log()))
        self.fsd = None


# ---- readiness: no lookups before the first snapshot ------------------------------------

class ReadinessTest(LoadTestCase):
    def setUp(self):
        super().setUp()
        # a "PostgreSQL" that accepts connections (the kernel's backlog) and never answers
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        port = self.listener.getsockname()[1]
        source = f"""    source:
      type: postgres
      dsn: "host=127.0.0.1 port={port} dbname=x user=fsd"
      table: feats
      event_timestamp_column: ts
      connect_timeout: 2s
      allowed_paths: ["{self.tmp}"]
"""
        self.fsd = h.Fsd(f"""
views:
  - name: gated
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
{source}{FEATURE_V}
  - name: eager
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    serve_before_ready: true
{source}{FEATURE_V}
  - name: pushed
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
{FEATURE_V}""")
        self.stats = h.stats_port(self.fsd)

    def tearDown(self):
        super().tearDown()
        self.listener.close()

    def unavailable(self, features):
        before = self.scrape()
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.get(pb.GetFeaturesRequest(features=features, keys=h.keys(id=[1, 2])))
        self.assertEqual(self.scrape().delta(before, "fsd_requests_total",
                                             method="GetFeatures", code="UNAVAILABLE"), 1)
        return ctx.exception

    def test_lookups_wait_for_the_first_snapshot_unless_serve_before_ready(self):
        e = self.unavailable(["gated:v"])
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("view gated is loading its first snapshot (from its postgres source)",
                      e.details())
        self.assertIn("serve_before_ready", e.details())
        # with a view that may serve: still refused, the request touches gated
        e = self.unavailable(["eager:v", "gated:v"])
        self.assertIn("view gated is loading its first snapshot", e.details())
        # serve_before_ready, and a view without a source: answered, nothing found
        self.assertEqual(self.values("eager", [1, 2]), ([pb.NOT_FOUND] * 2, [0, 0]))
        self.assertEqual(self.values("pushed", [1, 2]), ([pb.NOT_FOUND] * 2, [0, 0]))
        # the source never answers: the load fails at connect_timeout, and keeps retrying
        v = wait_until(lambda: (lambda x: x if x.loads_failed >= 1 else None)(
            self.view("gated")), timeout_s=15)
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        self.assertIn("view gated: postgres: connecting: no connection within connect_timeout "
                      "(2s)", v.last_error)
        self.assertEqual(self.unavailable(["gated:v"]).code(), grpc.StatusCode.UNAVAILABLE)
        # a first snapshot from elsewhere (LoadSnapshot from a Parquet file): served
        path = os.path.join(self.tmp, "first.parquet")
        parquet_rows(path, 1, 1)
        self.load("gated", path)
        v = wait_until(lambda: (lambda x: x if x.snapshot_version == 1 else None)(
            self.view("gated")), timeout_s=20)
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        self.assertEqual(self.values("gated", [1, 2]), ([pb.PRESENT, pb.NOT_FOUND], [10, 0]))


# ---- Parquet: one file wrong, a read too long -------------------------------------------

class ParquetFilesTest(LoadTestCase):
    def test_one_file_missing_or_mistyping_a_column_fails_the_load_naming_it(self):
        d = os.path.join(self.tmp, "parts")
        a, b = os.path.join(d, "a.parquet"), os.path.join(d, "b.parquet")
        parquet_rows(a, 1, 10)
        parquet_rows(b, 11, 20)
        self.fsd = h.Fsd(f"""
views:
  - name: parts
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source: {{ type: parquet, path: "{d}", event_timestamp_column: ts }}
{FEATURE_V}""")
        self.stats = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.view("parts").snapshot_version == 1))
        want = ([pb.PRESENT] * 2, [50, 150])
        self.assertEqual(self.values("parts", [5, 15]), want)

        cases = [
            # b.parquet without the column: DuckDB would read v as null for its 10 rows
            (f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts FROM range(11, 21)",
             f"view parts: file {b} has no column v (other files of {d} have it; it would "
             "read as null in every row of this file)"),
            # with it as text: DuckDB's union would make the column VARCHAR
            (f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts, range::VARCHAR AS v "
             "FROM range(11, 21)",
             f"view parts: column v is VARCHAR in file {b}; the view wants int64"),
            # as double: the union would be DOUBLE, and every int64 value of a.parquet cast
            (f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts, (range * 10)::DOUBLE AS v "
             "FROM range(11, 21)",
             f"view parts: column v is DOUBLE in file {b}; the view wants int64"),
        ]
        for n, (select, error) in enumerate(cases, 1):
            duckdb_sql.write_parquet(b, select)
            before = self.scrape()
            self.load("parts")
            v = wait_until(lambda: (lambda x: x if x.loads_failed == n else None)(
                self.view("parts")))
            self.assertIsNotNone(v, "\n".join(self.fsd.log()))
            self.assertEqual(v.last_load_result, "source_failed")
            self.assertEqual(v.last_error, error)
            self.assertEqual(v.snapshot_version, 1)
            self.assertEqual(self.scrape().delta(before, "fsd_materialization_loads_total",
                                                 view="parts", result="failed"), 1)
            self.fsd.wait_for_log(r'msg="snapshot load failed: live snapshot kept" view=parts '
                                  r'.*error="' + error.split(";")[0].replace("(", r"\("))
            self.assertEqual(self.values("parts", [5, 15]), want)  # the last good snapshot

    def test_a_read_longer_than_load_timeout_is_interrupted(self):
        big = os.path.join(self.tmp, "big.parquet")
        duckdb_sql.write_parquet(big, f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts, "
                                      "range AS v FROM range(4000000)")
        self.fsd = h.Fsd(f"""
views:
  - name: big
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source: {{ type: parquet, path: "{big}", event_timestamp_column: ts, load_timeout: 100ms }}
{FEATURE_V}""")
        self.stats = h.stats_port(self.fsd)
        v = wait_until(lambda: (lambda x: x if x.loads_failed >= 1 else None)(self.view("big")))
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        self.assertRegex(v.last_error, f"^view big: {big}: the read took longer than its "
                                       r"load_timeout \(100ms\) and was interrupted after \d+ "
                                       "rows$")
        self.assertLess(v.load_duration_us, 2000000)
        self.assertEqual(self.scrape().get("fsd_materialization_consecutive_failures",
                                           view="big", reason="source"), v.loads_failed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
