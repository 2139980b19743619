"""Snapshots end to end: fsd loads the Parquet files fsd-demo-data writes (DuckDB), readiness
flips when the first snapshots land, LoadSnapshot reloads on demand, and a load that fails
leaves the live snapshot serving, unchanged, with the failure in ListViews and the metrics."""
import json
import os
import shutil
import tempfile
import time
import unittest

import grpc

import harness as h
from harness import pb

DEMO_DATA_BIN = os.environ.get("FSD_DEMO_DATA_BIN", "build/bin/fsd-demo-data")
FSCTL_BIN = os.environ.get("FSCTL_BIN", "build/bin/fsctl")
DEMO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                           "demo.yaml")


def demo_views(data_dir):
    """configs/demo.yaml's views and services, reading from data_dir."""
    with open(DEMO_CONFIG) as f:
        text = f.read()
    body = text[text.index("views:"):]
    return body.replace("demo-data/", data_dir.rstrip("/") + "/")


def wait_until(predicate, timeout_s=30, step_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


class MaterializerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-mat-it-")
        self.data = os.path.join(self.tmp, "data")
        self.fsd = None

    def tearDown(self):
        if self.fsd is not None:
            self.assertEqual(self.fsd.stop(), 0)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def generate(self, directory):
        import subprocess
        subprocess.run([DEMO_DATA_BIN, directory], check=True, stdout=subprocess.DEVNULL)

    def views(self):
        return {v.name: v for v in self.fsd.list_views().views}

    def ready(self, port):
        return h.http_request(port, "/readyz")[0] == 200

    def test_readiness_flips_when_the_first_snapshots_land(self):
        # start before the files exist: the loads fail, retry with backoff, and succeed later
        self.fsd = h.Fsd(demo_views(self.data))
        port = h.stats_port(self.fsd)
        status, _, body = h.http_request(port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn(b"user_features", body)
        v = wait_until(lambda: self.views()["user_features"].loads_failed > 0 and self.views())
        self.assertEqual(v["user_features"].last_load_result, "source_failed")
        self.assertIn("user_features", v["user_features"].last_error)
        # publish the files at once, as a job should: a retry must not load half-written data
        staging = self.data + ".staging"
        self.generate(staging)
        os.rename(staging, self.data)
        self.assertTrue(wait_until(lambda: self.ready(port), timeout_s=60))
        # ready follows the swaps; each load's status is recorded a moment later
        names = ("user_features", "item_features", "user_item_features")
        v = wait_until(lambda: (lambda x: x if all(x[n].last_load_result == "loaded"
                                                   for n in names) else None)(self.views()))
        self.assertIsNotNone(v, self.views())
        for name in ("user_features", "item_features", "user_item_features"):
            self.assertEqual(v[name].snapshot_version, 1, name)
            self.assertEqual(v[name].last_load_result, "loaded", name)
            self.assertGreater(v[name].rows, 0)
            self.assertGreaterEqual(v[name].rows_kept, v[name].rows)
        self.assertEqual(v["user_features"].rows, 100000)
        r = self.fsd.get(pb.GetFeaturesRequest(feature_service="ranking_v1",
                                               keys=h.keys(user_id=[1, 2], item_id=[1, 2])))
        self.assertEqual(r.entities, 2)
        self.assertGreater(r.values_served, 0)

    def test_load_snapshot_reloads_and_a_failed_load_keeps_the_live_snapshot(self):
        self.generate(self.data)
        self.fsd = h.Fsd(demo_views(self.data))
        port = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.ready(port), timeout_s=60))
        before = self.fsd.get(pb.GetFeaturesRequest(features=["item_features:*"],
                                                    keys=h.keys(item_id=list(range(50)))))
        # on demand, from another path: a directory with nothing in it fails
        empty = os.path.join(self.data, "item_features", "empty")  # under its allowed path
        os.mkdir(empty)
        resp = self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="item_features",
                                                                     path=empty),
                              pb.LoadSnapshotResponse)
        self.assertEqual(resp.current_version, 1)
        v = wait_until(lambda: (lambda x: x if x.loads_failed > 0 and
                                x.last_load_result == "source_failed" else None)(
            self.views()["item_features"]))
        self.assertIsNotNone(v, self.views()["item_features"])
        self.assertEqual(v.last_load_result, "source_failed")
        self.assertIn(empty, v.last_error)
        self.assertEqual(v.snapshot_version, 1)
        after = self.fsd.get(pb.GetFeaturesRequest(features=["item_features:*"],
                                                   keys=h.keys(item_id=list(range(50)))))
        self.assertEqual(after.columns, before.columns)  # same values, bit for bit
        _, _, metrics = h.http_request(port, "/metrics")
        self.assertIn(b'fsd_materialization_loads_total{view="item_features",result="failed"} 1',
                      metrics)
        # and the configured path again: a new version
        self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="item_features"),
                       pb.LoadSnapshotResponse)
        # the version moves at the swap, the load's status a moment later: wait for both
        v = wait_until(lambda: (lambda x: x if x.snapshot_version == 2 and
                                x.last_load_result == "loaded" else None)(
            self.views()["item_features"]))
        self.assertIsNotNone(v, self.views()["item_features"])
        with self.assertRaises(grpc.RpcError) as ctx:
            self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="nope"),
                           pb.LoadSnapshotResponse)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def thread_nice(self):
        """{thread id: (name, nice)} of the fsd process, from /proc."""
        out = {}
        task_dir = f"/proc/{self.fsd.proc.pid}/task"
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/stat") as f:
                    stat = f.read()
            except FileNotFoundError:
                continue  # the thread ended meanwhile
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(tid)] = (name, int(fields[16]))  # field 19 of stat(5): nice
        return out

    def test_loads_run_at_the_configured_nice_value(self):
        self.generate(self.data)
        self.fsd = h.Fsd(demo_views(self.data))
        port = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.ready(port), timeout_s=60))
        threads = self.thread_nice().values()
        loads = [nice for name, nice in threads if name == "fsd-loads"]
        # the scheduler thread, and the DuckDB threads it started, which inherit its name
        self.assertGreaterEqual(len(loads), 1, threads)
        self.assertEqual(set(loads), {10}, threads)
        self.assertEqual({nice for name, nice in threads if name != "fsd-loads"}, {0}, threads)
        self.assertEqual(self.fsd.stop(), 0)
        self.fsd = h.Fsd("materializer:\n  nice: 0\n" + demo_views(self.data))
        port = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.ready(port), timeout_s=60))
        threads = self.thread_nice().values()
        self.assertIn("fsd-loads", {name for name, _ in threads})
        self.assertEqual({nice for _, nice in threads}, {0}, threads)

    def test_fsctl_load_waits_for_the_result(self):
        import subprocess
        self.generate(self.data)
        self.fsd = h.Fsd(demo_views(self.data))
        port = h.stats_port(self.fsd)
        self.assertTrue(wait_until(lambda: self.ready(port), timeout_s=60))
        fsctl = [FSCTL_BIN, "--addr", self.fsd.address, "load", "--view", "item_features"]
        out = subprocess.run(fsctl, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("loaded item_features: version 2, 20000 rows", out.stdout)
        views = json.loads(subprocess.run(
            [FSCTL_BIN, "--addr", self.fsd.address, "views", "--json"], capture_output=True,
            text=True, timeout=60, check=True).stdout)
        v = {x["name"]: x for x in views["views"]}["item_features"]
        self.assertEqual((v["snapshot_version"], v["loading"], v["last_load_result"],
                          v["last_error"], v["loads_completed"], v["loads_failed"],
                          v["rows"]), (2, False, "loaded", "", 2, 0, 20000))
        self.assertGreaterEqual(v["rows_read"], v["rows"])  # older rows of an entity too
        self.assertGreater(v["load_duration_us"], 0)
        self.assertTrue(v["source"].startswith("parquet:"), v["source"])
        self.assertEqual(v["snapshot_stream_position"], "")  # loads carry none unless told
        out = subprocess.run(fsctl + ["--stream-position", "1700000000000-4"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("loaded item_features: version 3", out.stdout)
        views = json.loads(subprocess.run(
            [FSCTL_BIN, "--addr", self.fsd.address, "views", "--json"], capture_output=True,
            text=True, timeout=60, check=True).stdout)
        v = {x["name"]: x for x in views["views"]}["item_features"]
        self.assertEqual(v["snapshot_stream_position"], "1700000000000-4")
        out = subprocess.run(fsctl + ["--stream-position", "nope"], capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.returncode, 1)
        self.assertIn('stream_position "nope" is not a stream entry ID', out.stderr)
        missing = os.path.join(self.data, "item_features", "missing.parquet")
        out = subprocess.run(fsctl + ["--path", missing], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 1)
        self.assertIn("load of item_features failed; version 3 keeps serving", out.stderr)
        self.assertIn(missing, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
