"""Durability with a real fsd: PushRows acknowledged with store.data_dir set survive kill -9
and restarts, in durability group and always, while checkpoints are written and the log is
cut behind them; a PushSnapshot-only view and a Parquet view come back from their checkpoints
(the Parquet one even with its file gone); damage to the log or the newest checkpoint and a
changed view are handled as the README says; a full disk refuses writes with UNAVAILABLE and
recovers."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import grpc  # noqa: E402

import duckdb_sql  # noqa: E402
import harness as h  # noqa: E402
from harness import pb, scrape  # noqa: E402

ENTITIES = 500
KILLS = 20  # per mode


def config(data_dir, durability="group", extra_feature=False, more_views=""):
    extra = "      - {name: extra, type: int64}\n" if extra_feature else ""
    # The smallest segments and the shortest checkpoint interval, so the kills also land
    # around a segment's start, a checkpoint being written and the log being cut.
    return f"""store:
  data_dir: {data_dir}
  durability: {durability}
  wal_segment_size: 1MiB
  checkpoint_interval: 1s
views:
  - name: live
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
    features:
      - {{name: seq, type: int64}}
      - {{name: tag, type: string}}
{extra}{more_views}"""


def rows(ids, seq_of):
    return [h.row({"id": i}, 1_700_000_000_000_000 + seq_of[i],
                  {"seq": (seq_of[i], "int64_value"),
                   "tag": (f"{i}:{seq_of[i]}", "string_value")}) for i in ids]


def kill9(fsd):
    fsd.proc.send_signal(signal.SIGKILL)
    fsd.proc.wait(10)
    fsd.channel.close()
    fsd._pump.join(5)
    fsd.proc.stderr.close()


def served(fsd, ids):
    resp = fsd.get(pb.GetFeaturesRequest(features=["live:seq", "live:tag"], keys=h.keys(id=ids)))
    cols = {c.name: c for c in resp.columns}
    out = {}
    for p, i in enumerate(ids):
        if cols["live:seq"].statuses[p] == pb.PRESENT:
            out[i] = (cols["live:seq"].int64_values[p], cols["live:tag"].string_values[p])
    return out


def push_snapshot_gen(fsd, n, gen, timeout=5):
    """PushSnapshot of view snap: id i gets gen * 1_000_000 + i."""
    call = fsd.channel.stream_unary(
        h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.PushSnapshotResponse.FromString)
    rows_ = [h.row({"id": i}, 1_700_000_000_000_000 + gen, {"gen": (gen * 1_000_000 + i,
                                                                    "int64_value")})
             for i in range(n)]
    return call(iter([pb.PushSnapshotRequest(view="snap", rows=rows_)]), timeout=timeout)


KILLED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
          grpc.StatusCode.INTERNAL)  # what a call cut by SIGKILL can end with


class KillNineTest(unittest.TestCase):
    """A writer pushes batches and records each acknowledgement, another pushes whole
    snapshots, and a Parquet view reloads every second; fsd is killed with SIGKILL at random
    moments (during pushes, snapshot loads, checkpoint writes, log rotation); after each
    restart every acknowledged row is served exactly, or a newer row of a batch that was in
    flight, and nothing that was never sent; a snapshot view serves one whole snapshot that
    was pushed, never older than the one served before; the Parquet view serves its whole
    file or nothing yet."""

    SNAPSHOT_ROWS = 300
    PQ_ROWS = 1000

    def run_mode(self, durability, seed):
        rng = random.Random(seed)
        writer_rng = random.Random(seed + 100)
        data_dir = tempfile.mkdtemp(prefix="fsd-durability-")
        pq = os.path.join(data_dir, "pq.parquet")
        duckdb_sql.write_parquet(pq, "SELECT range::BIGINT AS id, range::BIGINT * 3 AS a, "
                                     f"TIMESTAMP '2026-01-01' AS ts FROM range({self.PQ_ROWS})")
        cfg = config(data_dir, durability, more_views=SNAP_VIEW + pq_view(pq, refresh="1s"))
        acked = {}  # id -> seq acknowledged last
        sent = {}   # id -> seq sent last (acknowledged or in flight)
        seq = 0
        gen = 0
        sent_gens = set()
        served_gen = 0  # the snapshot served after the last restart
        total_acked = 0
        try:
            fsd = h.Fsd(cfg)
            for kill in range(KILLS):
                stop = threading.Event()
                errors = []

                def writer():
                    nonlocal seq, total_acked
                    while not stop.is_set():
                        ids = writer_rng.sample(range(ENTITIES), 20)
                        for i in ids:
                            seq += 1
                            sent[i] = seq
                        batch = dict((i, sent[i]) for i in ids)
                        try:
                            fsd.push(pb.PushRowsRequest(view="live", rows=rows(ids, batch)),
                                     timeout=5)
                        except grpc.RpcError as e:
                            if e.code() not in KILLED:
                                errors.append(f"PushRows: {e.code()} {e.details()}")
                            return  # killed under it
                        except ValueError:
                            return  # the channel closed by kill9 before the call
                        acked.update(batch)
                        total_acked += 1

                def snapshotter():
                    nonlocal gen
                    while not stop.is_set():
                        gen += 1
                        sent_gens.add(gen)
                        try:
                            push_snapshot_gen(fsd, self.SNAPSHOT_ROWS, gen)
                        except grpc.RpcError as e:
                            if e.code() not in KILLED:
                                errors.append(f"PushSnapshot: {e.code()} {e.details()}")
                            return
                        except ValueError:
                            return
                        time.sleep(rng.uniform(0, 0.05))

                threads = [threading.Thread(target=writer), threading.Thread(target=snapshotter)]
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(0.05, 0.6))
                kill9(fsd)
                stop.set()
                for t in threads:
                    t.join(10)
                    self.assertFalse(t.is_alive())
                self.assertEqual(errors, [])
                fsd = h.Fsd(cfg)
                got = served(fsd, list(range(ENTITIES)))
                for i, a in acked.items():
                    self.assertIn(i, got, f"kill {kill}: acknowledged id {i} (seq {a}) lost")
                    s, tag = got[i]
                    self.assertEqual(tag, f"{i}:{s}", f"kill {kill}: id {i}")
                    self.assertTrue(a <= s <= sent[i],
                                    f"kill {kill}: id {i} seq {s}, acknowledged {a}, sent {sent[i]}")
                for i in got:
                    self.assertIn(i, sent, f"kill {kill}: id {i} was never written")
                # What came back is now what the log holds: later checks start from it.
                for i, (s, _) in got.items():
                    acked[i] = s
                served_gen = self.check_snapshot(fsd, kill, sent_gens, served_gen)
                self.check_parquet(fsd, kill)
            m = scrape(h.stats_port(fsd))
            self.assertGreater(m.get("fsd_wal_replayed_records_total"), 0)
            self.assertEqual(m.get("fsd_wal_corrupt_segments_total"), 0)
            self.assertEqual(fsd.stop(), 0)
            self.assertGreater(total_acked, KILLS)
            self.assertGreater(served_gen, 0)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    def check_snapshot(self, fsd, kill, sent_gens, served_before):
        ids = list(range(self.SNAPSHOT_ROWS))
        col = fsd.get(pb.GetFeaturesRequest(features=["snap:gen"], keys=h.keys(id=ids))).columns[0]
        present = [v for st, v in zip(col.statuses, col.int64_values) if st == pb.PRESENT]
        if not present:
            self.assertEqual(served_before, 0, f"kill {kill}: the snapshot view came back empty")
            return 0
        gens = {v // 1_000_000 for v in present}
        self.assertEqual(len(gens), 1, f"kill {kill}: rows of snapshots {gens} mixed")
        g = gens.pop()
        self.assertEqual(present, [g * 1_000_000 + i for i in ids], f"kill {kill}")
        self.assertIn(g, sent_gens, f"kill {kill}: snapshot {g} never pushed")
        self.assertGreaterEqual(g, served_before, f"kill {kill}: an older snapshot came back")
        return g

    def check_parquet(self, fsd, kill):
        ids = list(range(self.PQ_ROWS))
        try:
            col = fsd.get(pb.GetFeaturesRequest(features=["pq:a"], keys=h.keys(id=ids))).columns[0]
        except grpc.RpcError as e:  # not loaded yet, and no checkpoint of it yet
            self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, f"kill {kill}")
            return
        self.assertEqual(list(col.statuses), [pb.PRESENT] * self.PQ_ROWS, f"kill {kill}")
        self.assertEqual(list(col.int64_values), [3 * i for i in ids], f"kill {kill}")

    def test_group(self):
        self.run_mode("group", 1)

    def test_always(self):
        self.run_mode("always", 2)


SNAP_VIEW = """  - name: snap
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
      - {name: gen, type: int64}
"""


def pq_view(path, refresh=None):
    every = f"    refresh_interval: {refresh}\n" if refresh else ""
    return f"""  - name: pq
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
{every}    source: {{type: parquet, path: "{path}", event_timestamp_column: ts}}
    features:
      - {{name: a, type: int64}}
"""


def wait_until(predicate, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="fsd-durability-")

    def tearDown(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def metric(self, fsd, name, **labels):
        return scrape(h.stats_port(fsd)).get(name, **labels)

    def checkpointed(self, fsd, view, at_least=1):
        wait_until(lambda: self.metric(fsd, "fsd_checkpoints_total", view=view,
                                       result="ok") >= at_least)

    def push_snapshot(self, fsd, n, gen):
        call = fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        rows = [h.row({"id": i}, 1_700_000_000_000_000 + gen, {"gen": (i * 1000 + gen, "int64_value")})
                for i in range(n)]
        resp = call(iter([pb.PushSnapshotRequest(view="snap", rows=rows)]), timeout=20)
        self.assertEqual(resp.rows_kept, n)

    def test_a_pushed_snapshot_comes_back_from_its_checkpoint_after_kill_9(self):
        fsd = h.Fsd(config(self.data_dir, more_views=SNAP_VIEW))
        self.push_snapshot(fsd, 2000, 7)
        before = self.metric(fsd, "fsd_checkpoints_total", view="snap", result="ok")
        self.checkpointed(fsd, "snap", before + 1)  # the one after the snapshot's swap
        kill9(fsd)
        fsd = h.Fsd(config(self.data_dir, more_views=SNAP_VIEW))
        try:
            resp = fsd.get(pb.GetFeaturesRequest(features=["snap:gen"],
                                                 keys=h.keys(id=list(range(2000)))))
            col = resp.columns[0]
            self.assertEqual(list(col.int64_values), [i * 1000 + 7 for i in range(2000)])
            self.assertEqual(self.metric(fsd, "fsd_checkpoint_restored_rows", view="snap"), 2000)
            views = {v.name: v for v in fsd.list_views().views}
            self.assertEqual(views["snap"].snapshot_version, 1)
            fsd.wait_for_log('msg="restored from its checkpoint" view=snap rows=2000')
            # /status and the page say what the start restored.
            _, _, body = h.http_request(h.stats_port(fsd), "/status")
            status = json.loads(body)
            dd = status["data_dir"]
            self.assertEqual(dd["durability"], "group")
            self.assertGreater(dd["start"]["restore_checkpoints_seconds"], 0)
            self.assertGreaterEqual(dd["log"]["segments"], 0)
            self.assertFalse(dd["log"]["writes_failing"])
            snap = next(v for v in status["views"] if v["name"] == "snap")["checkpoint"]
            self.assertEqual(snap["restored_rows"], 2000)
            self.assertTrue(snap["on_disk"])
            self.assertEqual(snap["rows"], 2000)
            self.assertFalse(snap["failing"])
            _, _, page = h.http_request(h.stats_port(fsd), "/")
            self.assertIn(b'id="data_dir"', page)
            self.assertIn(b'class="ckpt">on disk', page)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_the_log_is_cut_behind_checkpoints_and_nothing_acknowledged_is_lost(self):
        fsd = h.Fsd(config(self.data_dir))
        seq_of = {}
        seq = 0
        # ~4 MB of rows in 1 MiB segments.
        for _ in range(120):
            ids = list(range(500))
            for i in ids:
                seq += 1
                seq_of[i] = seq
            fsd.push(pb.PushRowsRequest(view="live", rows=rows(ids, seq_of)))
        self.assertGreater(self.metric(fsd, "fsd_wal_written_bytes_total"), 3 * 2**20)
        # Two checkpoint generations after the last write: the log before the older one goes.
        wait_until(lambda: self.metric(fsd, "fsd_wal_segments") <= 2, timeout_s=30)
        on_disk = [f for f in os.listdir(os.path.join(self.data_dir, "wal")) if f.endswith(".log")]
        self.assertLessEqual(len(on_disk), 2)
        kill9(fsd)
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(500)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, seq_of)
            m = scrape(h.stats_port(fsd))
            self.assertEqual(m.get("fsd_checkpoint_restored_rows", view="live"), 500)
            self.assertLess(m.get("fsd_wal_replayed_records_total"), 120)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_the_log(self):
        fsd = h.Fsd(config(self.data_dir))
        seq_of = {i: i + 1 for i in range(300)}
        fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
        self.checkpointed(fsd, "live", 1)
        n = self.metric(fsd, "fsd_checkpoints_total", view="live", result="ok")
        seq_of = {i: 1000 + i for i in range(300)}
        fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
        self.checkpointed(fsd, "live", n + 1)  # the interval passed with writes: a new one
        kill9(fsd)
        path = os.path.join(self.data_dir, "checkpoints", "live.ckpt")
        self.assertTrue(os.path.exists(path + ".prev"))
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x40]))
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(300)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, seq_of)
            fsd.wait_for_log('msg="checkpoint damaged: not used" view=live generation=newest')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_view_added_by_a_reload_keeps_its_rows_when_the_log_is_cut(self):
        fsd = h.Fsd(config(self.data_dir))
        try:
            fsd.write_config(config(self.data_dir, more_views=SNAP_VIEW))
            fsd.signal(signal.SIGHUP)
            fsd.wait_for_log('msg="config reloaded"')
            added = [h.row({"id": i}, 1_700_000_000_000_000, {"gen": (i * 7, "int64_value")})
                     for i in range(200)]
            fsd.push(pb.PushRowsRequest(view="snap", rows=added))
            # The view's rows are in the log's first segment: enough writes to the other view
            # rotate it, and its checkpoints move on, so the log is cut.
            seq_of = {}
            for n in range(120):
                seq_of.update({i: n for i in range(500)})
                fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(500), seq_of)))
            wait_until(lambda: self.metric(fsd, "fsd_wal_segments") <= 2, timeout_s=30)
            self.assertFalse(os.path.exists(
                os.path.join(self.data_dir, "wal", "0000000000000001.log")))
            self.checkpointed(fsd, "snap", 1)
        finally:
            kill9(fsd)
        fsd = h.Fsd(config(self.data_dir, more_views=SNAP_VIEW))
        try:
            resp = fsd.get(pb.GetFeaturesRequest(features=["snap:gen"],
                                                 keys=h.keys(id=list(range(200)))))
            self.assertEqual(list(resp.columns[0].int64_values), [i * 7 for i in range(200)])
        finally:
            self.assertEqual(fsd.stop(), 0)

    def damage(self, path):
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x40]))

    def test_a_damaged_checkpoint_set_aside_never_becomes_the_previous_one(self):
        fsd = h.Fsd(config(self.data_dir))
        seq_of = {i: i + 1 for i in range(300)}
        fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
        self.checkpointed(fsd, "live", 1)
        n = self.metric(fsd, "fsd_checkpoints_total", view="live", result="ok")
        fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
        seq_of = {i: 1000 + i for i in range(300)}
        fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
        self.checkpointed(fsd, "live", n + 1)
        kill9(fsd)
        path = os.path.join(self.data_dir, "checkpoints", "live.ckpt")
        self.damage(path)
        fsd = h.Fsd(config(self.data_dir))
        try:
            fsd.wait_for_log('msg="checkpoint damaged: not used" view=live generation=newest')
            self.assertTrue(os.path.exists(path + ".damaged"))
            self.assertFalse(os.path.exists(path))
            # The next checkpoint keeps the good older one as its previous generation.
            seq_of = {i: 2000 + i for i in range(300)}
            fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(300), seq_of)))
            self.checkpointed(fsd, "live", 1)
        finally:
            kill9(fsd)
        self.damage(path)
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(300)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, seq_of)
            m = scrape(h.stats_port(fsd))
            # Only the newest was damaged: the previous generation restored, the log after it.
            self.assertEqual(m.get("fsd_checkpoint_damaged_total", view="live"), 1)
            fsd.wait_for_log('msg="restored from its checkpoint" view=live')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_failed_checkpoint_is_retried_without_new_writes(self):
        fsd = h.Fsd(config(self.data_dir, more_views=SNAP_VIEW))
        try:
            self.checkpointed(fsd, "snap", 1)  # of its empty table
            # As far as fsd can tell the disk is full: a checkpoint's file cannot grow.
            subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=4096:unlimited"],
                           check=True)
            self.push_snapshot(fsd, 2000, 3)
            wait_until(lambda: self.metric(fsd, "fsd_checkpoints_total", view="snap",
                                           result="failed") >= 1)
            fsd.wait_for_log('msg="checkpoint failed; the log keeps everything it holds; '
                             'retrying" view=snap')
            _, _, body = h.http_request(h.stats_port(fsd), "/status")
            snap = next(v for v in json.loads(body)["views"] if v["name"] == "snap")
            self.assertTrue(snap["checkpoint"]["failing"])
            self.assertIn("File too large", snap["checkpoint"]["error"])
            subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=unlimited:unlimited"],
                           check=True)
            # No write since: the retry alone brings the snapshot to disk.
            self.checkpointed(fsd, "snap", 2)
            self.assertEqual(self.metric(fsd, "fsd_checkpoint_rows", view="snap"), 2000)
            fsd.wait_for_log('msg="checkpoint written again" view=snap')
        finally:
            kill9(fsd)
        fsd = h.Fsd(config(self.data_dir, more_views=SNAP_VIEW))
        try:
            resp = fsd.get(pb.GetFeaturesRequest(features=["snap:gen"], keys=h.keys(id=[0, 1999])))
            self.assertEqual(list(resp.columns[0].int64_values), [3, 1999003])
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_parquet_view_serves_its_checkpoint_when_its_file_is_gone(self):
        path = os.path.join(self.data_dir, "pq.parquet")
        duckdb_sql.write_parquet(path, "SELECT range::BIGINT AS id, range::BIGINT * 3 AS a, "
                                       "TIMESTAMP '2026-01-01' AS ts FROM range(1000)")
        cfg = config(self.data_dir, more_views=pq_view(path))
        fsd = h.Fsd(cfg)
        wait_until(lambda: any(v.name == "pq" and v.snapshot_version >= 1
                               for v in fsd.list_views().views))
        self.checkpointed(fsd, "pq", 1)
        wait_until(lambda: self.metric(fsd, "fsd_checkpoint_rows", view="pq") == 1000)
        self.assertEqual(fsd.stop(), 0)
        os.unlink(path)
        fsd = h.Fsd(cfg)
        try:
            resp = fsd.get(pb.GetFeaturesRequest(features=["pq:a"], keys=h.keys(id=[0, 10, 999])))
            self.assertEqual(list(resp.columns[0].int64_values), [0, 30, 2997])
        finally:
            self.assertEqual(fsd.stop(), 0)


class LogTest(unittest.TestCase):
    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="fsd-durability-")

    def tearDown(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def fill(self, fsd, n=50, first_seq=1):
        seq_of = {i: first_seq + i for i in range(n)}
        resp = fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(n), seq_of)))
        self.assertEqual(resp.inserted + resp.replaced, n)
        return seq_of

    def segments(self):
        d = os.path.join(self.data_dir, "wal")
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))

    def test_a_clean_restart_serves_the_pushed_rows_and_deletes(self):
        fsd = h.Fsd(config(self.data_dir))
        seq_of = self.fill(fsd)
        resp = fsd.push(pb.PushRowsRequest(view="live", rows=[
            h.row({"id": 3}, 1_700_000_100_000_000, {}, delete=True)]))
        self.assertEqual(resp.deleted, 1)
        m = scrape(h.stats_port(fsd))
        self.assertEqual(m.get("fsd_wal_records_total"), 2)
        self.assertGreaterEqual(m.get("fsd_wal_fsyncs_total"), 1)
        stopping = fsd
        self.assertEqual(fsd.stop(), 0)
        # The stop wrote the view's checkpoint: the restart replays none of the log.
        self.assertTrue(any('msg="checkpoints written before stopping" views=1' in line
                            for line in stopping.log()))
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(50)))
            self.assertNotIn(3, got)
            self.assertEqual(len(got), 49)
            for i, (s, tag) in got.items():
                self.assertEqual((s, tag), (seq_of[i], f"{i}:{seq_of[i]}"))
            m = scrape(h.stats_port(fsd))
            self.assertEqual(m.get("fsd_wal_replayed_records_total"), 0)
            self.assertEqual(m.get("fsd_wal_replay_skipped_records_total",
                                   reason="in_checkpoint"), 2)
            self.assertEqual(m.get("fsd_checkpoint_restored_rows", view="live"), 50)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_rows_applied_after_a_kill_come_back_from_the_log(self):
        fsd = h.Fsd(config(self.data_dir))
        seq_of = self.fill(fsd)
        kill9(fsd)  # no checkpoint at the stop: the log has them
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(50)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, seq_of)
            fsd.wait_for_log(r'msg="wal: replayed" batches=1 rows=50')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_torn_tail_is_cut_and_the_rest_served(self):
        fsd = h.Fsd(config(self.data_dir))
        self.fill(fsd, 50, 1)
        self.fill(fsd, 50, 1000)  # the second batch's tail is torn below
        kill9(fsd)
        seg = self.segments()[-1]
        os.truncate(seg, os.path.getsize(seg) - 100)
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(50)))
            self.assertEqual({s for s, _ in got.values()}, {1 + i for i in range(50)})
            m = scrape(h.stats_port(fsd))
            self.assertGreater(m.get("fsd_wal_torn_tail_bytes_total"), 0)
            self.assertEqual(m.get("fsd_wal_corrupt_segments_total"), 0)
            fsd.wait_for_log('msg="wal: torn tail cut"')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_rows_of_a_view_whose_features_changed_are_not_replayed(self):
        fsd = h.Fsd(config(self.data_dir))
        self.fill(fsd)
        self.assertEqual(fsd.stop(), 0)
        fsd = h.Fsd(config(self.data_dir, extra_feature=True))
        try:
            self.assertEqual(served(fsd, list(range(50))), {})
            m = scrape(h.stats_port(fsd))
            self.assertEqual(m.get("fsd_wal_replay_skipped_records_total",
                                   reason="layout_changed"), 1)
            fsd.wait_for_log('msg="wal: the view\'s keys or features changed')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_second_fsd_on_the_same_data_dir_is_refused(self):
        fsd = h.Fsd(config(self.data_dir))
        try:
            with self.assertRaises(RuntimeError) as cm:
                h.Fsd(config(self.data_dir), timeout_s=10)
            self.assertIn("is in use by another fsd", str(cm.exception))
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_real_full_filesystem_refuses_writes_and_recovers_when_it_grows(self):
        mnt = tempfile.mkdtemp(prefix="fsd-small-fs-")
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                                 capture_output=True)
        if mounted.returncode != 0:
            os.rmdir(mnt)
            self.skipTest("cannot mount a tmpfs here: " + mounted.stderr.decode().strip())
        self.addCleanup(os.rmdir, mnt)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        cfg = config(mnt)
        fsd = h.Fsd(cfg)
        acked = {}
        try:
            # Batches of ~100 KB until the 2 MiB filesystem is full.
            refused = None
            for n in range(100):
                batch = {i: n * 1000 + i for i in range(400)}
                ids = list(range(400))
                req = pb.PushRowsRequest(view="live", rows=[
                    h.row({"id": i}, 1_700_000_000_000_000 + batch[i],
                          {"seq": (batch[i], "int64_value"),
                           "tag": (f"{i}:{batch[i]}" + "x" * 200, "string_value")})
                    for i in ids])
                try:
                    fsd.push(req)
                    acked.update(batch)
                except grpc.RpcError as e:
                    refused = e
                    break
            self.assertIsNotNone(refused, "the filesystem never filled")
            self.assertEqual(refused.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("No space left on device", refused.details())
            got = served(fsd, list(range(400)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, acked)  # lookups go on
            status, _, body = h.http_request(h.stats_port(fsd), "/readyz")
            self.assertEqual(status, 200)
            self.assertIn(b"writes refused", body)
            self.assertIn(b"No space left on device", body)
            # The filesystem grows: writes go through again, without a restart.
            subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
            acked.update(self.fill(fsd, 400, 500_000))
            wait_until(lambda: h.http_request(h.stats_port(fsd), "/readyz")[2] == b"ready\n")
        finally:
            self.assertEqual(fsd.stop(), 0)
        fsd = h.Fsd(cfg)
        try:
            got = served(fsd, list(range(400)))
            self.assertEqual({i: s for i, (s, _) in got.items()}, acked)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_a_full_disk_refuses_writes_serves_reads_and_recovers(self):
        fsd = h.Fsd(config(self.data_dir))
        try:
            seq_of = self.fill(fsd)
            before = scrape(h.stats_port(fsd))
            # As far as fsd can tell the disk is full: its writes past the current size fail.
            size = sum(os.path.getsize(s) for s in self.segments())
            subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", f"--fsize={size + 512}:unlimited"],
                           check=True)
            big = {i: 5000 + i for i in range(50)}
            with self.assertRaises(grpc.RpcError) as cm:
                fsd.push(pb.PushRowsRequest(view="live", rows=rows(range(50), big)))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("could not be made durable, none was applied", cm.exception.details())
            self.assertIn("File too large", cm.exception.details())
            # Nothing of the refused batch is served; lookups go on.
            got = served(fsd, list(range(50)))
            self.assertEqual({s for s, _ in got.values()}, set(seq_of.values()))
            m = scrape(h.stats_port(fsd))
            self.assertEqual(m.delta(before, "fsd_wal_write_errors_total"), 1)
            self.assertEqual(m.get("fsd_wal_write_failing"), 1)
            status, _, body = h.http_request(h.stats_port(fsd), "/readyz")
            self.assertEqual(status, 200)  # lookups go on
            self.assertIn(b"writes refused: the log of live writes cannot be written", body)
            self.assertIn(b"File too large", body)
            # Space again: the next batch goes through, without a restart.
            subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=unlimited:unlimited"],
                           check=True)
            self.fill(fsd, 50, 9000)
            status, _, body = h.http_request(h.stats_port(fsd), "/readyz")
            self.assertEqual((status, body), (200, b"ready\n"))
            self.assertEqual(scrape(h.stats_port(fsd)).get("fsd_wal_write_failing"), 0)
        finally:
            self.assertEqual(fsd.stop(), 0)
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(50)))
            self.assertEqual({s for s, _ in got.values()}, {9000 + i for i in range(50)})
        finally:
            self.assertEqual(fsd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
