"""LoadSnapshot requests from the network, end to end: a real fsd, Parquet files DuckDB
writes, a real PostgreSQL whose query the test makes slow.

- A path override is accepted only under the view's allowed directories (source.allowed_paths,
  by default the directory of its configured path); anything else is PERMISSION_DENIED, with
  the same answer whether or not the file exists, and nothing of it in ListViews, the log or
  the status page.
- A view has one load request queued at most: asking again with the same path joins it
  (already_queued), asking with another is refused, so a flood of calls neither fills the
  queue nor runs a load per call.
"""
import os
import shutil
import tempfile
import time
import unittest

import grpc

import duckdb_sql
import harness as h
from harness import pb
from pg_server import Postgres

AN_HOUR_AGO = "(now() - INTERVAL 1 HOUR)::TIMESTAMP"


def wait_until(predicate, timeout_s=30, step_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


def parquet_rows(path, first, last, factor=10):
    """Entities first..last with v = id * factor."""
    duckdb_sql.write_parquet(path, f"SELECT range::BIGINT AS id, {AN_HOUR_AGO} AS ts, "
                                   f"range * {factor} AS v FROM range({first}, {last} + 1)")


PG_SETUP = """
CREATE TABLE feats (id bigint, ts timestamptz, v bigint);
INSERT INTO feats SELECT g, now() - interval '1 hour', g * 10 FROM generate_series(1, 100) g;
CREATE TABLE knobs (sleep_s float8);
INSERT INTO knobs VALUES (0);
"""
# Sleeps knobs.sleep_s before its first row: a load that stays in progress while asked.
PG_QUERY = "SELECT f.id, f.ts, f.v FROM feats f, (SELECT pg_sleep(sleep_s) FROM knobs) k"


class LoadRequestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        cls.pg.psql(PG_SETUP)
        cls.tmp = tempfile.mkdtemp(prefix="fsd-load-requests-it-")
        cls.snapshots = os.path.join(cls.tmp, "snapshots")
        cls.outside = os.path.join(cls.tmp, "elsewhere")
        parquet_rows(os.path.join(cls.snapshots, "users", "a.parquet"), 1, 10)
        parquet_rows(os.path.join(cls.snapshots, "users", "v2", "b.parquet"), 1, 10, 20)
        parquet_rows(os.path.join(cls.snapshots, "users_v3", "c.parquet"), 1, 10, 30)
        parquet_rows(os.path.join(cls.outside, "secret.parquet"), 1, 10, 99)
        feature = "    features:\n      - { name: v, type: int64 }\n"
        cls.fsd = h.Fsd(f"""
views:
  - name: users
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source:
      type: parquet
      path: "{cls.snapshots}/users/*.parquet"
      event_timestamp_column: ts
{feature}
  - name: curated
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source:
      type: parquet
      path: "{cls.snapshots}/users/a.parquet"
      event_timestamp_column: ts
      allowed_paths: ["{cls.snapshots}"]
{feature}
  - name: pgv
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
    source:
      type: postgres
      dsn: "{cls.pg.dsn}"
      query: "{PG_QUERY}"
      event_timestamp_column: ts
{feature}
  - name: pushed
    join_keys: [{{ name: id, type: int64 }}]
    ttl: 0
{feature}""")
        cls.stats = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.fsd.stop() == 0
        finally:
            cls.pg.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertTrue(wait_until(lambda: all((v.snapshot_version >= 1 or not v.source) and
                                               not v.loading for v in self.fsd.list_views().views)),
                        "\n".join(self.fsd.log()))

    def view(self, name):
        return {v.name: v for v in self.fsd.list_views().views}[name]

    def load(self, view, path="", position=""):
        return self.fsd.unary("LoadSnapshot",
                              pb.LoadSnapshotRequest(view=view, path=path,
                                                     stream_position=position),
                              pb.LoadSnapshotResponse)

    def refused(self, view, path, code=grpc.StatusCode.PERMISSION_DENIED):
        with self.assertRaises(grpc.RpcError) as cm:
            self.load(view, path)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def loaded(self, view, after_version):
        v = wait_until(lambda: (lambda x: x if x.snapshot_version > after_version and
                                not x.loading else None)(self.view(view)))
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        self.assertEqual(v.last_load_result, "loaded", v.last_error)
        return v

    def value(self, view, entity):
        r = self.fsd.get(pb.GetFeaturesRequest(features=[f"{view}:v"], keys=h.keys(id=[entity])))
        return h.column(r, f"{view}:v").int64_values[0]

    def test_a_path_outside_the_allowed_ones_is_refused_before_it_is_read(self):
        before = h.scrape(self.stats)
        users = self.view("users")
        secret = os.path.join(self.outside, "secret.parquet")
        missing = os.path.join(self.outside, "missing.parquet")
        # the same answer whether the file exists or not: nothing was looked up
        there = self.refused("users", secret)
        self.assertIn("allowed_paths", there)
        self.assertEqual(there.replace(secret, "P"), self.refused("users", missing)
                         .replace(missing, "P"))
        # ".." never gets out, nor does a sibling whose name only starts like the root
        self.refused("users", f"{self.snapshots}/users/../../elsewhere/secret.parquet")
        self.refused("users", f"{self.snapshots}/users/v2/../../../elsewhere")
        self.refused("users", f"{self.snapshots}/users_v3/c.parquet")
        self.refused("users", "/etc/passwd")
        self.refused("users", "elsewhere/secret.parquet")  # relative: from fsd's directory
        # a postgres source allows no path unless it lists some
        self.assertIn("allowed_paths", self.refused("pgv", f"{self.snapshots}/users/a.parquet"))
        # nothing was loaded, and nothing of the refused paths shows anywhere
        after = h.scrape(self.stats)
        for view in ("users", "pgv"):
            for result in ("ok", "failed"):
                self.assertEqual(after.delta(before, "fsd_materialization_loads_total",
                                             view=view, result=result), 0)
        self.assertEqual(self.view("users").snapshot_version, users.snapshot_version)
        listed = str(self.fsd.list_views())
        status = h.http_request(self.stats, "/status")[2].decode()
        for text in (listed, status):
            self.assertNotIn("elsewhere", text)
            self.assertNotIn("secret", text)
        # the operator sees the refusal in the log and in the request metrics
        self.fsd.wait_for_log(r'msg="load refused" view=users .*error="view users: path ')
        self.assertGreaterEqual(after.delta(before, "fsd_requests_total", method="LoadSnapshot",
                                            code="PERMISSION_DENIED"), 7)

    def test_a_view_without_a_source_is_refused_at_the_call(self):
        before = h.scrape(self.stats)
        for path in ("", f"{self.snapshots}/users/a.parquet"):
            message = self.refused("pushed", path, grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("view pushed has no source to load from", message)
            self.assertIn("PushSnapshot", message)
        after = h.scrape(self.stats)
        self.assertEqual(after.delta(before, "fsd_requests_total", method="LoadSnapshot",
                                     code="FAILED_PRECONDITION"), 2)
        self.assertEqual(self.view("pushed").loads_failed, 0)  # nothing was queued to fail

    def test_paths_under_the_allowed_ones_load(self):
        # users: under the directory of its glob
        v = self.view("users").snapshot_version
        self.assertFalse(self.load("users", f"{self.snapshots}/users/v2").already_queued)
        self.loaded("users", v)
        self.assertEqual(self.value("users", 3), 60)
        # curated: anywhere under the listed directory, "." and "//" as they come
        v = self.view("curated").snapshot_version
        self.load("curated", f"{self.snapshots}/./users_v3//*.parquet")
        self.loaded("curated", v)
        self.assertEqual(self.value("curated", 3), 90)
        # back to the configured files
        v = self.view("users").snapshot_version
        self.load("users")
        self.loaded("users", v)
        self.assertEqual(self.value("users", 3), 30)

    def test_a_queued_load_is_joined_and_not_queued_again(self):
        before = self.view("pgv")
        self.pg.psql("UPDATE knobs SET sleep_s = 3")
        try:
            self.assertFalse(self.load("pgv").already_queued)
            self.assertTrue(wait_until(lambda: self.view("pgv").loading, step_s=0.01))
            # the load runs; the next request waits in the queue and every other one joins it
            self.assertFalse(self.load("pgv").already_queued)
            joined = [self.load("pgv").already_queued for _ in range(50)]
            self.assertEqual(joined, [True] * 50)
            # with another stream position it is refused, not queued beside
            with self.assertRaises(grpc.RpcError) as cm:
                self.load("pgv", position="1700000000000-0")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("already queued", cm.exception.details())
        finally:
            self.pg.psql("UPDATE knobs SET sleep_s = 0")
        # two loads ran: the one running and the one queued, not 52
        v = wait_until(lambda: (lambda x: x if x.loads_completed == before.loads_completed + 2
                                and not x.loading else None)(self.view("pgv")), timeout_s=30)
        self.assertIsNotNone(v, "\n".join(self.fsd.log()))
        time.sleep(0.5)
        self.assertEqual(self.view("pgv").loads_completed, before.loads_completed + 2)
        self.assertEqual(self.view("pgv").snapshot_version, before.snapshot_version + 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
