"""Durability with a real fsd: PushRows acknowledged with store.data_dir set survive kill -9
and restarts, in durability group and always; the log's damage and a changed view are
handled as the README says; a full disk refuses writes with UNAVAILABLE and recovers."""
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

import harness as h  # noqa: E402
from harness import pb, scrape  # noqa: E402

ENTITIES = 500
KILLS = 20  # per mode


def config(data_dir, durability="group", extra_feature=False):
    extra = "      - {name: extra, type: int64}\n" if extra_feature else ""
    # The smallest segments, so the kills also land around a segment's start.
    return f"""store:
  data_dir: {data_dir}
  durability: {durability}
  wal_segment_size: 1MiB
views:
  - name: live
    join_keys: [{{name: id, type: int64}}]
    ttl: 0
    features:
      - {{name: seq, type: int64}}
      - {{name: tag, type: string}}
{extra}"""


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


class KillNineTest(unittest.TestCase):
    """A writer pushes batches and records each acknowledgement; fsd is killed with SIGKILL at
    random moments; after each restart every acknowledged row is served exactly, or a newer
    row of a batch that was in flight, and nothing that was never sent."""

    def run_mode(self, durability, seed):
        rng = random.Random(seed)
        writer_rng = random.Random(seed + 100)
        data_dir = tempfile.mkdtemp(prefix="fsd-durability-")
        acked = {}  # id -> seq acknowledged last
        sent = {}   # id -> seq sent last (acknowledged or in flight)
        seq = 0
        total_acked = 0
        try:
            fsd = h.Fsd(config(data_dir, durability))
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
                            if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                                grpc.StatusCode.CANCELLED):
                                errors.append(f"{e.code()} {e.details()}")
                            return  # killed under it
                        acked.update(batch)
                        total_acked += 1

                t = threading.Thread(target=writer)
                t.start()
                time.sleep(rng.uniform(0.05, 0.4))
                kill9(fsd)
                stop.set()
                t.join(10)
                self.assertFalse(t.is_alive())
                self.assertEqual(errors, [])
                fsd = h.Fsd(config(data_dir, durability))
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
            m = scrape(h.stats_port(fsd))
            self.assertGreater(m.get("fsd_wal_replayed_records_total"), 0)
            self.assertEqual(m.get("fsd_wal_corrupt_segments_total"), 0)
            self.assertEqual(fsd.stop(), 0)
            self.assertGreater(total_acked, KILLS)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    def test_group(self):
        self.run_mode("group", 1)

    def test_always(self):
        self.run_mode("always", 2)


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
        self.assertEqual(fsd.stop(), 0)
        fsd = h.Fsd(config(self.data_dir))
        try:
            got = served(fsd, list(range(50)))
            self.assertNotIn(3, got)
            self.assertEqual(len(got), 49)
            for i, (s, tag) in got.items():
                self.assertEqual((s, tag), (seq_of[i], f"{i}:{seq_of[i]}"))
            self.assertEqual(scrape(h.stats_port(fsd)).get("fsd_wal_replayed_records_total"), 2)
            fsd.wait_for_log(r'msg="wal: replayed" batches=2 rows=51')
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
            # Space again: the next batch goes through, without a restart.
            subprocess.run(["prlimit", f"--pid={fsd.proc.pid}", "--fsize=unlimited:unlimited"], check=True)
            self.fill(fsd, 50, 9000)
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
