"""PushSnapshot and fsd-materialize against a real fsd.

PushSnapshot: a full push swaps the snapshot; a cancelled stream, a deadline, a message over
the limit, a bad row in a later message and a failed data contract change nothing; rows are
checked exactly as PushRows checks them; PushRows made before or while a stream is open
survive the swap where their event time is newer than the snapshot's row (the newest event
time wins, both ways); a second stream for the same view is refused while one is open; a
daemon stopped with a stream open exits cleanly. Metrics: fsd_requests_total and
fsd_request_duration_seconds count the method.

fsd-materialize: reads configs/demo.yaml's Parquet files (written by fsd-demo-data), and a
PostgreSQL table (a throwaway server), and pushes them to an fsd whose views have no source,
so only the push can fill them; what is served must equal what fsd serves when it loads the
same data itself. Its progress goes to stderr as plain lines when stderr is not a terminal
(also while fsd stalls: a proxy holds the stream's connection) and as a redrawn bar when it
is (run under script(1) for a pty). Errors: usage (exit 2), config, a view fsd does not serve
or serves differently (before the source is read), connection refused, a row too big for a
message, --timeout, and the contract refusing the snapshot (exit 1), none changing anything.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import grpc
from prometheus_client.parser import text_string_to_metric_families

import harness as h
from harness import pb
from pg_server import Postgres

HOUR_US = 3600 * 1000000
DEMO_DATA_BIN = os.environ.get("FSD_DEMO_DATA_BIN", "build/bin/fsd-demo-data")
MATERIALIZE_BIN = os.path.join(os.path.dirname(os.path.abspath(h.FSD_BIN)), "fsd-materialize")
DEMO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                           "demo.yaml")

CONFIG = """
views:
  - name: items
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    features:
      - {name: price, type: double}
      - {name: title, type: string, default: "none"}
      - {name: tags, type: string_list}
  - name: guarded
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    contract: {min_rows: 10}
    features:
      - {name: price, type: double}
  # PushRows write here only: live rows outlive snapshot swaps, so the views above stay
  # free of them and every test can give them an exact snapshot (fresh())
  - name: pushed_during
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    features:
      - {name: price, type: double}
  - name: pushed_before
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    features:
      - {name: price, type: double}
"""


def item(item_id, ts_us, price, title=None, tags=None, delete=False):
    values = {"price": (price, "double_value")}
    if title is not None:
        values["title"] = (title, "string_value")
    if tags is not None:
        values["tags"] = (tags, "string_list")
    return h.row({"item_id": item_id}, ts_us, values, delete=delete)


def message(rows, view="items"):
    return pb.PushSnapshotRequest(view=view, rows=rows)


def scrape(fsd):
    status, _, body = h.http_request(h.stats_port(fsd), "/metrics")
    assert status == 200, status
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def requests_total(samples, method, code):
    return samples.get(("fsd_requests_total", frozenset({("method", method), ("code", code)})), 0)


def duration_count(samples, method):
    return samples.get(("fsd_request_duration_seconds_count",
                        frozenset({("method", method)})), 0)


class Gate:
    """A request iterator that yields `first`, then waits for open() before the rest, so a
    test can act while the stream is open. close() ends it without the rest (a clean
    half-close is still sent by grpcio; cancel the future to abort)."""

    def __init__(self, first, rest=()):
        self.first = list(first)
        self.rest = list(rest)
        self.event = threading.Event()
        self.sent_first = threading.Event()

    def open(self):
        self.event.set()

    def __iter__(self):
        for m in self.first:
            yield m
        self.sent_first.set()
        self.event.wait(30)
        for m in self.rest:
            yield m


class PushSnapshotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fsd = h.Fsd(CONFIG)
        cls.ts = h.now_us() - HOUR_US

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0

    def push_snapshot(self, messages, timeout=20):
        call = self.fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        if isinstance(messages, Gate):
            return call.future(iter(messages), timeout=timeout)
        return call(iter(messages), timeout=timeout)

    def view(self, name="items"):
        return {v.name: v for v in self.fsd.list_views().views}[name]

    def prices(self, ids, view="items"):
        r = self.fsd.get(pb.GetFeaturesRequest(features=[f"{view}:price"],
                                               keys=h.keys(item_id=ids)))
        col = h.column(r, f"{view}:price")
        return [v if s == pb.PRESENT else None for s, v in zip(col.statuses, col.double_values)]

    def fresh(self, ids, price, view="items"):
        """Gives `view` a known snapshot: exactly `ids`, each at `price`; returns its version.
        Exact for views PushRows never wrote to (newer pushed rows would outlive it)."""
        resp = self.push_snapshot([message([item(i, self.ts, price) for i in ids], view=view)])
        self.assertEqual(self.prices(ids, view), [price] * len(ids))
        return resp.version

    def wait_open(self, view="items"):
        """Waits until the server holds the load of `view`: another stream is refused. The
        probe carries a bad row, so while the load is not open yet it fails harmlessly."""
        probe = message([h.row({"item_id": 1}, 0, {})], view=view)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.push_snapshot([probe])
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    return e
                self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, e.details())
            time.sleep(0.02)
        self.fail("the stream's load never opened")

    # ---- a clean push ----------------------------------------------------------------------

    def test_full_push_swaps_the_snapshot(self):
        v0 = self.fresh([1, 2, 3], 1.0)
        before = scrape(self.fsd)
        # two messages, the second without the view; one entity twice (the newer wins) and
        # one tombstone
        first = [item(10 + i, self.ts, 10.0 + i, title=f"t{i}", tags=["a", "b\x00c"])
                 for i in range(5)]
        second = [item(15 + i, self.ts, 15.0 + i) for i in range(5)]
        second += [item(10, self.ts + 5, 99.5), item(10, self.ts - 5, 1.5),
                   item(14, self.ts + 1, 0, delete=True)]
        resp = self.push_snapshot([message(first), pb.PushSnapshotRequest(rows=second)])
        self.assertEqual(resp.version, v0 + 1)
        self.assertEqual(resp.rows_received, 13)
        self.assertEqual(resp.rows_kept, 9)
        self.assertEqual(resp.updates_replayed, 0)
        # old entities gone, new ones served, bit for bit
        self.assertEqual(self.prices([1, 2, 3]), [None] * 3)
        self.assertEqual(self.prices([10, 11, 14, 19]), [99.5, 11.0, None, 19.0])
        r = self.fsd.get(pb.GetFeaturesRequest(features=["items:title", "items:tags"],
                                               keys=h.keys(item_id=[11, 16])))
        self.assertEqual(list(h.column(r, "items:title").string_values), ["t1", "none"])
        tags = h.column(r, "items:tags")
        self.assertEqual(list(tags.statuses), [pb.PRESENT, pb.NULL_VALUE])
        self.assertEqual(list(tags.string_values), ["a", "b\x00c"])
        v = self.view()
        self.assertEqual((v.snapshot_version, v.rows), (v0 + 1, 9))
        after = scrape(self.fsd)
        self.assertEqual(requests_total(after, "PushSnapshot", "OK")
                         - requests_total(before, "PushSnapshot", "OK"), 1)
        self.assertEqual(duration_count(after, "PushSnapshot")
                         - duration_count(before, "PushSnapshot"), 1)
        self.fsd.wait_for_log(r'msg="pushed snapshot swapped in" view=items version=%d '
                              r'rows_received=13 rows=9' % (v0 + 1))

    def test_view_named_again_and_empty_messages_are_fine(self):
        v0 = self.fresh([1], 1.0)
        resp = self.push_snapshot([message([]), message([item(2, self.ts, 2.0)]), message([])])
        self.assertEqual((resp.version, resp.rows_received, resp.rows_kept), (v0 + 1, 1, 1))
        self.assertEqual(self.prices([1, 2]), [None, 2.0])

    # ---- what changes nothing --------------------------------------------------------------

    def test_aborted_stream_changes_nothing(self):
        v0 = self.fresh([1, 2], 5.0)
        before = scrape(self.fsd)
        gate = Gate([message([item(i, self.ts + 1, 7.0) for i in range(1, 100)])],
                    [message([item(200, self.ts, 7.0)])])
        future = self.push_snapshot(gate)
        self.wait_open()
        self.assertTrue(future.cancel())
        gate.open()
        self.fsd.wait_for_log(r'msg="pushed snapshot abandoned" view=items messages=1 rows=99')
        self.assertEqual(self.prices([1, 2, 3, 200]), [5.0, 5.0, None, None])
        v = self.view()
        self.assertEqual((v.snapshot_version, v.rows), (v0, 2))
        after = scrape(self.fsd)
        self.assertEqual(requests_total(after, "PushSnapshot", "CANCELLED")
                         - requests_total(before, "PushSnapshot", "CANCELLED"), 1)
        # the load was released: the next push goes through
        self.assertEqual(self.fresh([3], 6.0), v0 + 1)

    def test_bad_row_in_second_message_fails_and_changes_nothing(self):
        v0 = self.fresh([1, 2], 5.0)
        bad = h.row({"item_id": 3}, self.ts, {"price": ("cheap", "string_value")})
        with self.assertRaises(grpc.RpcError) as cm:
            self.push_snapshot([message([item(1, self.ts + 1, 8.0)]),
                                message([item(4, self.ts, 8.0), item(5, self.ts, 8.0), bad]),
                                message([item(6, self.ts, 8.0)])])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.details(),
                         "message 1, row 2: feature price is double, got string_value; "
                         "view items unchanged")
        self.assertEqual(self.prices([1, 2, 4, 5, 6]), [5.0, 5.0, None, None, None])
        self.assertEqual(self.view().snapshot_version, v0)
        self.assertEqual(self.fresh([7], 1.0), v0 + 1)

    def test_rows_are_checked_exactly_like_push_rows(self):
        v0 = self.fresh([1], 5.0)
        # PushRowsRequest and PushSnapshotRequest share field numbers: the same bytes are a
        # valid request of either, so both RPCs see exactly the same rows.
        not_utf8 = pb.PushRowsRequest(view="items", rows=[
            h.row({"item_id": 2}, self.ts, {"title": ("XX", "string_value")})]
        ).SerializeToString().replace(b"XX", b"\xff\xfe")
        cases = [not_utf8] + [pb.PushRowsRequest(view="items", rows=[r]).SerializeToString()
                              for r in [
            item(2, self.ts, 1.0), h.row({}, self.ts, {"price": (1.0, "double_value")}),
            h.row({"item_id": 2}, 0, {"price": (1.0, "double_value")}),
            h.row({"item_id": 2}, h.now_us() + 2 * HOUR_US, {"price": (1.0, "double_value")}),
            h.row({"item_id": 2, "user_id": 3}, self.ts, {}),
            h.row({"item_id": 2}, self.ts, {"colour": (1.0, "double_value")}),
        ]]
        # the second case is a valid row: give it an invalid neighbour in the same message
        cases[1] = pb.PushRowsRequest(view="items", rows=[
            item(2, self.ts, 1.0), item(3, self.ts, 1.0, tags=[]),
            h.row({"item_id": 4}, self.ts, {"price": (1, "int64_value")})]).SerializeToString()
        snapshot = self.fsd.channel.stream_unary(h.SERVICE + "PushSnapshot")
        for raw in cases:
            with self.assertRaises(grpc.RpcError) as push_rows:
                self.fsd.raw(h.SERVICE + "PushRows", raw)
            with self.assertRaises(grpc.RpcError) as cm:
                snapshot(iter([raw]), timeout=10)
            self.assertEqual(cm.exception.code(), push_rows.exception.code())
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(cm.exception.details(),
                             "message 0, %s; view items unchanged" % push_rows.exception.details())
        self.assertEqual(self.view().snapshot_version, v0)
        self.assertEqual(self.prices([1, 2, 3]), [5.0, None, None])

    def test_contract_failure_keeps_live_data(self):
        ids = list(range(1, 13))
        v0 = self.fresh(ids, 3.0, view="guarded")
        with self.assertRaises(grpc.RpcError) as cm:
            self.push_snapshot([message([item(i, self.ts + 1, 4.0) for i in (1, 2, 50)],
                                        view="guarded")])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("contract: 3 rows, fewer than min_rows 10", cm.exception.details())
        self.assertIn("live snapshot unchanged", cm.exception.details())
        self.assertEqual(self.prices(ids + [50], view="guarded"), [3.0] * 12 + [None])
        v = self.view("guarded")
        self.assertEqual((v.snapshot_version, v.rows), (v0, 12))
        self.fsd.wait_for_log(r'msg="pushed snapshot rejected" view=guarded rows=3 ')

    def test_unknown_view_empty_stream_and_changing_view(self):
        for messages, code, text in [
            ([message([], view="nope")], grpc.StatusCode.INVALID_ARGUMENT, 'unknown view "nope"'),
            ([], grpc.StatusCode.INVALID_ARGUMENT, "at least one message"),
            ([pb.PushSnapshotRequest(rows=[item(1, self.ts, 1.0)])],
             grpc.StatusCode.INVALID_ARGUMENT, "the first message must name the view"),
            ([message([]), message([], view="guarded")], grpc.StatusCode.INVALID_ARGUMENT,
             'message 1: names view "guarded" but the stream loads view items'),
        ]:
            with self.assertRaises(grpc.RpcError) as cm:
                self.push_snapshot(messages)
            self.assertEqual(cm.exception.code(), code, cm.exception.details())
            self.assertIn(text, cm.exception.details())
        # none of them left a load open
        self.fresh([1], 1.0)

    def test_deadline_mid_stream_changes_nothing(self):
        v0 = self.fresh([1], 5.0)
        gate = Gate([message([item(1, self.ts + 1, 9.0)])], [message([item(2, self.ts, 9.0)])])
        future = self.push_snapshot(gate, timeout=0.5)
        with self.assertRaises(grpc.RpcError) as cm:
            future.result()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        gate.open()
        self.fsd.wait_for_log(r'msg="pushed snapshot abandoned" view=items messages=1 rows=1$')
        self.assertEqual(self.prices([1, 2]), [5.0, None])
        self.assertEqual(self.fresh([2], 1.0), v0 + 1)

    # ---- pushes during the stream, and concurrent streams ----------------------------------

    def test_push_rows_during_the_stream_survive_the_swap(self):
        ts = self.ts
        view = "pushed_during"
        v0 = self.fresh([1, 2, 3], 1.0, view=view)
        gate = Gate([message([item(1, ts + 10, 10.0), item(2, ts + 10, 20.0)], view=view)],
                    [message([item(3, ts + 10, 30.0), item(4, ts + 10, 40.0)], view=view)])
        future = self.push_snapshot(gate)
        self.wait_open(view=view)
        pushed = pb.PushRowsRequest(view=view, rows=[
            item(1, ts + 20, 11.0),  # newer than the snapshot's row: kept
            item(2, ts + 5, 21.0),   # older than the snapshot's: the snapshot wins
            item(3, ts + 20, 31.0),  # newer than a row the snapshot sends later: kept
            item(60, ts, 60.0),      # an entity only the pushes know: kept
            item(4, ts + 20, 0, delete=True),  # a delete newer than the snapshot's row: kept
        ])
        self.fsd.push(pushed)
        # the live table serves the pushes at once, the snapshot is not visible yet
        self.assertEqual(self.prices([1, 2, 3, 60, 4], view), [11.0, 21.0, 31.0, 60.0, None])
        gate.open()
        resp = future.result()
        self.assertEqual(resp.version, v0 + 1)
        self.assertEqual(resp.rows_received, 4)
        self.assertEqual(resp.rows_kept, 4)
        self.assertEqual(resp.updates_replayed, 5)
        self.assertEqual(self.prices([1, 2, 3, 60, 4], view), [11.0, 20.0, 31.0, 60.0, None])
        self.assertEqual(self.view(view).rows, 4)

    def test_push_rows_before_the_stream_newest_event_time_wins(self):
        """Rows pushed before a snapshot stream opened are not replayed but carried over: per
        entity the newer event time wins (then the created time; on a full tie the snapshot's
        row), whichever side it is on, and pushed rows stay marked for later swaps."""
        ts = self.ts
        view = "pushed_before"
        v0 = self.fresh([1, 2, 3, 4, 5, 6, 7], 1.0, view=view)
        self.fsd.push(pb.PushRowsRequest(view=view, rows=[
            item(1, ts + 20, 11.0),            # newer than the snapshot's row below: kept
            item(2, ts + 20, 21.0),            # older than it: the snapshot's row wins
            item(3, ts + 20, 0, delete=True),  # a delete newer than the snapshot's row: holds
            item(4, ts + 20, 0, delete=True),  # a delete older than it: the snapshot's row
            item(60, ts, 60.0),                # an entity only the pushes know: kept
            h.row({"item_id": 6}, ts + 20, {"price": (61.0, "double_value")}, created_ts_us=5),
            h.row({"item_id": 7}, ts + 20, {"price": (71.0, "double_value")}, created_ts_us=5),
        ]))
        before = scrape(self.fsd)
        resp = self.push_snapshot([message([
            item(1, ts + 10, 10.0), item(2, ts + 30, 20.0), item(3, ts + 10, 30.0),
            item(4, ts + 30, 40.0), item(5, ts + 10, 50.0),
            h.row({"item_id": 6}, ts + 20, {"price": (62.0, "double_value")}, created_ts_us=3),
            h.row({"item_id": 7}, ts + 20, {"price": (72.0, "double_value")}, created_ts_us=5),
        ], view=view)])
        self.assertEqual(resp.version, v0 + 1)
        self.assertEqual((resp.rows_received, resp.rows_kept), (7, 7))
        self.assertEqual(resp.updates_replayed, 0)  # none made while the stream was open
        self.assertEqual(self.prices([1, 2, 3, 4, 5, 60, 6, 7], view),
                         [11.0, 20.0, None, 40.0, 50.0, 60.0, 61.0, 72.0])
        self.assertEqual(self.view(view).rows, 7)  # 1, 2, 4, 5, 60, 6, 7
        after = scrape(self.fsd)
        self.assertEqual(requests_total(after, "PushSnapshot", "OK")
                         - requests_total(before, "PushSnapshot", "OK"), 1)
        # the next snapshot: 1 newer than the pushed row now, 60 and 3 absent
        resp = self.push_snapshot([message([item(1, ts + 40, 12.0), item(2, ts, 2.0)],
                                           view=view)])
        self.assertEqual(self.prices([1, 2, 3, 60, 6, 5], view),
                         [12.0, 2.0, None, 60.0, 61.0, None])
        # 1's row came from a snapshot this time: the next one replaces it, even when older
        resp = self.push_snapshot([message([item(1, ts, 1.0)], view=view)])
        self.assertEqual(self.prices([1, 2, 60, 6], view), [1.0, None, 60.0, 61.0])

    def test_second_stream_for_the_same_view_is_refused(self):
        v0 = self.fresh([1], 1.0)
        gate = Gate([message([item(1, self.ts + 1, 2.0)])], [message([item(2, self.ts, 2.0)])])
        future = self.push_snapshot(gate)
        err = self.wait_open()
        self.assertEqual(err.details(), "a load of view items is in progress (a PushSnapshot or "
                                        "a source load); retry when it has finished")
        # another view is not affected
        self.fresh(list(range(1, 11)), 1.0, view="guarded")
        gate.open()
        resp = future.result()
        self.assertEqual((resp.version, resp.rows_kept), (v0 + 1, 2))
        self.assertEqual(self.prices([1, 2]), [2.0, 2.0])


class PushSnapshotLimitsTest(unittest.TestCase):
    """Streams the transport ends on its own, and a daemon stopped with a stream open."""

    def setUp(self):
        self.fsd = h.Fsd("  max_message_bytes: 64KiB\n" + CONFIG)
        self.ts = h.now_us() - HOUR_US

    def tearDown(self):
        if self.fsd is not None:
            self.assertEqual(self.fsd.stop(), 0)

    def call(self):
        return self.fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)

    def test_message_over_the_limit_mid_stream_changes_nothing(self):
        self.call()(iter([message([item(1, self.ts, 1.0)])]), timeout=10)
        big = message([item(i, self.ts, 2.0, title="x" * 1000) for i in range(100)])
        self.assertGreater(big.ByteSize(), 64 << 10)
        with self.assertRaises(grpc.RpcError) as cm:
            self.call()(iter([message([item(1, self.ts + 1, 3.0)]), big]), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("exceeds the limit", cm.exception.details())
        self.fsd.wait_for_log(r'msg="pushed snapshot abandoned" view=items messages=1 rows=1$')
        r = self.fsd.get(pb.GetFeaturesRequest(features=["items:price"],
                                               keys=h.keys(item_id=[1])))
        self.assertEqual(list(r.columns[0].double_values), [1.0])
        resp = self.call()(iter([message([item(5, self.ts, 5.0)])]), timeout=10)
        self.assertEqual(resp.version, 2)

    def test_stopping_with_a_stream_open_exits_cleanly(self):
        gate = Gate([message([item(i, self.ts, 1.0) for i in range(50)])])
        future = self.call().future(iter(gate), timeout=30)
        probe = message([h.row({"item_id": 1}, 0, {})])
        deadline = time.monotonic() + 10
        while True:  # until the server holds the load (a second stream is refused)
            with self.assertRaises(grpc.RpcError) as cm:
                self.call()(iter([probe]), timeout=10)
            if cm.exception.code() == grpc.StatusCode.FAILED_PRECONDITION:
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        f, self.fsd = self.fsd, None
        code = f.stop()
        gate.open()
        self.assertEqual(code, 0)  # under ASan: nothing leaked, nothing used after free
        self.assertTrue(any('msg="pushed snapshot abandoned" view=items messages=1 rows=50' in l
                            for l in f.log()), "\n".join(f.log()))
        with self.assertRaises(grpc.RpcError):
            future.result()


class LoadDuringPushSnapshotTest(unittest.TestCase):
    """Regression: a LoadSnapshot, or a scheduled refresh coming due, for a view whose load a
    PushSnapshot stream holds crashed fsd (SIGSEGV in the "another load is in progress" error
    path). Both must fail that one load with a message naming the view, keep serving the live
    snapshot, count the failure, and leave the stream to finish normally."""

    CONFIG = """
views:
  - name: on_demand
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    source: {type: parquet, path: "@DATA@/item_features/*.parquet",
             event_timestamp_column: event_ts}
    features:
      - {name: price, type: double}
  - name: refreshed
    join_keys: [{name: item_id, type: int64}]
    ttl: 0
    refresh_interval: 1s
    source: {type: parquet, path: "@DATA@/item_features/*.parquet",
             event_timestamp_column: event_ts}
    features:
      - {name: price, type: double}
"""
    BUSY = ("view %s: another load of this view is in progress (a PushSnapshot or a load from "
            "the source); it was not started")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fsd-load-during-push-")
        data = os.path.join(cls.tmp, "data")
        subprocess.run([DEMO_DATA_BIN, data], check=True, stdout=subprocess.DEVNULL)
        cls.fsd = h.Fsd(cls.CONFIG.replace("@DATA@", data))
        cls.ts = h.now_us() - HOUR_US
        deadline = time.monotonic() + 60
        while not all(v.snapshot_version > 0 for v in cls.fsd.list_views().views):
            assert time.monotonic() < deadline, "the first loads never landed"
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        assert cls.fsd.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def view(self, name):
        return {v.name: v for v in self.fsd.list_views().views}[name]

    def failed_loads(self, name):
        key = ("fsd_materialization_loads_total",
               frozenset({("view", name), ("result", "failed")}))
        return scrape(self.fsd).get(key, 0)

    def open_push(self, view):
        """Opens a PushSnapshot stream for `view` that holds the view's load until the gate
        opens. A refresh running at that moment refuses the stream: try again."""
        call = self.fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            gate = Gate([message([item(1, self.ts, 42.0)], view=view)])
            future = call.future(iter(gate), timeout=60)
            self.assertTrue(gate.sent_first.wait(10))
            try:
                future.result(timeout=0.5)
            except grpc.FutureTimeoutError:
                return gate, future  # still open: the server holds the view's load
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION, e.details())
                gate.open()
                continue
            self.fail("the stream ended before its gate opened")
        self.fail("never got hold of the view's load")

    def assert_still_serving(self, view, version):
        self.assertIsNone(self.fsd.proc.poll(), "fsd died")
        self.assertEqual(self.fsd.health().status, 1)  # SERVING
        v = self.view(view)
        self.assertEqual(v.snapshot_version, version)
        self.assertEqual(v.rows, 20000)

    def test_load_snapshot_during_an_open_push_snapshot(self):
        before = self.view("on_demand")
        failed = self.failed_loads("on_demand")
        gate, future = self.open_push("on_demand")
        resp = self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="on_demand"),
                              pb.LoadSnapshotResponse)
        self.assertEqual(resp.current_version, before.snapshot_version)
        deadline = time.monotonic() + 20
        while self.view("on_demand").loads_failed == before.loads_failed:
            self.assertLess(time.monotonic(), deadline, "the load never finished")
            time.sleep(0.02)
        v = self.view("on_demand")
        self.assertEqual(v.last_load_result, "source_failed")
        self.assertEqual(v.last_error, self.BUSY % "on_demand")
        self.assert_still_serving("on_demand", before.snapshot_version)
        self.assertEqual(self.failed_loads("on_demand") - failed, 1)
        # the stream still owns the load and finishes it
        gate.open()
        self.assertEqual(future.result().version, before.snapshot_version + 1)
        self.assertEqual(self.view("on_demand").rows, 1)

    def test_refresh_coming_due_during_an_open_push_snapshot(self):
        before = self.view("refreshed")
        failed = self.failed_loads("refreshed")
        gate, future = self.open_push("refreshed")
        version = self.view("refreshed").snapshot_version
        deadline = time.monotonic() + 20
        while self.view("refreshed").last_error != self.BUSY % "refreshed":
            self.assertLess(time.monotonic(), deadline, "no refresh came due")
            time.sleep(0.05)
        self.assert_still_serving("refreshed", version)
        self.assertGreater(self.view("refreshed").loads_failed, before.loads_failed)
        self.assertGreater(self.failed_loads("refreshed"), failed)
        gate.open()
        self.assertEqual(future.result().version, version + 1)
        # and the refresh after that loads from the source again
        deadline = time.monotonic() + 20
        while self.view("refreshed").rows != 20000:
            self.assertLess(time.monotonic(), deadline, "the source never loaded again")
            time.sleep(0.05)


# ---- fsd-materialize ----------------------------------------------------------------------

def demo_views(data_dir, with_sources=True):
    """configs/demo.yaml's views and services; reading from data_dir, or with no source at
    all (and so no refresh interval) when with_sources is False."""
    with open(DEMO_CONFIG) as f:
        text = f.read()
    body = text[text.index("views:"):]
    if with_sources:
        return body.replace("demo-data/", data_dir.rstrip("/") + "/")
    out, skipping = [], False
    for line in body.splitlines():
        if re.match(r"^    source:", line):
            skipping = True
            continue
        if skipping and re.match(r"^      ", line):
            continue
        skipping = False
        if re.match(r"^    refresh_interval:", line):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


class HoldingProxy:
    """A TCP proxy in front of fsd's gRPC port that holds connection number `hold` (1 = the
    first) for `hold_s` seconds before passing any byte either way: fsd-materialize's
    preflight (ListViews) is connection 1 and its PushSnapshot stream connection 2, so the
    stream can be stalled deterministically while the preflight goes through. What the
    client sends meanwhile waits in the socket buffers; without fsd's SETTINGS the client may
    send only HTTP/2's default 64 KiB window, and then it has to wait."""

    def __init__(self, target_port, hold=2, hold_s=4.5):
        import socket
        self.target_port, self.hold, self.hold_s = target_port, hold, hold_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._serve, args=(client, self.count), daemon=True).start()

    def _serve(self, client, n):
        import socket
        if n == self.hold:
            time.sleep(self.hold_s)
        server = socket.create_connection(("127.0.0.1", self.target_port))

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(server, client), daemon=True).start()
        pump(client, server)

    def close(self):
        self.listener.close()


def materialize(*args, **kw):
    """Runs fsd-materialize; fails the test on a sanitizer report (ASan builds), whatever the
    exit status the test expects."""
    p = subprocess.run([MATERIALIZE_BIN] + list(args), capture_output=True, timeout=120, **kw)
    out = p.stdout.decode() + p.stderr.decode()
    assert "Sanitizer" not in out and "runtime error" not in out, out
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(),
                                       p.stderr.decode())


PROGRESS_LINE = re.compile(r"^fsd-materialize: view=item_features rows=(\d+)/(\d+) "
                           r"rows_per_s=\d+ eta_s=(\d+\.\d|unknown)$", re.M)


class MaterializeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fsd-materialize-it-")
        cls.data = os.path.join(cls.tmp, "data")
        subprocess.run([DEMO_DATA_BIN, cls.data], check=True, stdout=subprocess.DEVNULL)
        cls.job_config = os.path.join(cls.tmp, "job.yaml")
        with open(cls.job_config, "w") as f:
            f.write(demo_views(cls.data))
        # The reference: fsd loading the same files itself.
        cls.pulled = h.Fsd(demo_views(cls.data))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            views = {v.name: v for v in cls.pulled.list_views().views}
            if all(v.snapshot_version > 0 for v in views.values()):
                break
            time.sleep(0.1)
        cls.expected_rows = views["item_features"].rows
        assert cls.expected_rows > 0

    @classmethod
    def tearDownClass(cls):
        assert cls.pulled.stop() == 0
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.fsd = h.Fsd(demo_views(self.data, with_sources=False))

    def tearDown(self):
        self.assertEqual(self.fsd.stop(), 0)

    def run_tool(self, *args, addr=None):
        return materialize("--addr", addr or self.fsd.address, *args)

    def items(self, fsd):
        return {v.name: v for v in fsd.list_views().views}["item_features"]

    def sample(self, fsd, ids):
        r = fsd.get(pb.GetFeaturesRequest(features=["item_features:*"],
                                          keys=h.keys(item_id=ids),
                                          include_event_timestamps=True))
        r.server_time_us = 0
        for v in r.views:
            del v.staleness_ms[:]  # differs by when each was asked
        return r

    def test_pushes_every_row_with_plain_progress_lines(self):
        self.assertEqual(self.items(self.fsd).rows, 0)
        p = self.run_tool("--config", self.job_config, "--view", "item_features",
                          "--batch", "1000")
        self.assertEqual(p.returncode, 0, p.stderr)
        v = self.items(self.fsd)
        self.assertEqual(v.snapshot_version, 1)
        self.assertEqual(v.rows, self.expected_rows)
        # the values served equal what fsd serves when it loads the files itself
        ids = list(range(0, 20000, 97)) + [1, 2, 3]
        self.assertEqual(self.sample(self.fsd, ids), self.sample(self.pulled, ids))
        self.assertGreater(sum(s == pb.PRESENT for s in self.sample(self.fsd, ids)
                               .columns[0].statuses), 10)
        # result on stdout, progress on stderr: plain lines, no carriage returns
        self.assertRegex(p.stdout, r"^view=item_features version=1 rows_sent=%d rows_kept=%d "
                         r"updates_replayed=0 seconds=[0-9.]+\n$" % (self.expected_rows,
                                                                     self.expected_rows))
        lines = PROGRESS_LINE.findall(p.stderr)
        self.assertGreaterEqual(len(lines), 1, p.stderr)
        self.assertEqual(lines[-1][0:2], (str(self.expected_rows), str(self.expected_rows)))
        self.assertNotIn("\r", p.stderr)
        self.assertRegex(p.stderr, r"read \d+ rows from parquet:.*item_features")
        # a second run is a new snapshot version with the same rows
        p = self.run_tool("--config", self.job_config, "--view", "item_features")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual((self.items(self.fsd).snapshot_version, self.items(self.fsd).rows),
                         (2, self.expected_rows))

    def test_plain_progress_lines_keep_coming_while_fsd_stalls(self):
        # The stream's connection held for 4.5 s: the client fills the flow-control window and
        # its small queue, then waits; the lines go on every 2 s meanwhile, and the push
        # completes once the bytes flow.
        proxy = HoldingProxy(self.fsd.port, hold=2, hold_s=4.5)
        try:
            p = materialize("--addr", proxy.address, "--config", self.job_config, "--view",
                            "user_features", "--batch", "100", "--max-message-bytes", "65536")
        finally:
            proxy.close()
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = re.findall(r"^fsd-materialize: view=user_features rows=(\d+)/(\d+) "
                           r"rows_per_s=\d+ eta_s=(\S+)$", p.stderr, re.M)
        self.assertGreaterEqual(len(lines), 3, p.stderr)  # at 2 s, at 4 s, and the last
        self.assertLess(int(lines[0][0]), int(lines[0][1]))
        self.assertEqual(lines[-1][0], lines[-1][1])
        self.assertEqual(lines[-1][2], "0.0")
        self.assertRegex(p.stdout, r"^view=user_features version=1 rows_sent=100000 ")

    def test_every_demo_view_serves_what_a_pull_serves(self):
        # every feature type of the demo (lists, timestamps, bools, floats, mean defaults) and
        # the composite user x item key
        for view, keys in [("user_features", {"user_id": list(range(0, 100000, 331))}),
                           ("user_item_features", None)]:
            p = self.run_tool("--config", self.job_config, "--view", view)
            self.assertEqual(p.returncode, 0, p.stderr)
            if keys is None:
                # Item ids are hashed, so these pairs mostly miss: they are served the
                # defaults, and affinity's is the mean over the whole snapshot.
                ids = list(range(1, 400))
                keys = {"user_id": ids, "item_id": ids[::-1]}
            req = pb.GetFeaturesRequest(features=[view + ":*"], include_event_timestamps=True,
                                        keys=h.keys(**keys))
            got, want = self.fsd.get(req), self.pulled.get(req)
            for r in (got, want):
                r.server_time_us = 0
                del r.views[0].staleness_ms[:]
            self.assertEqual(got, want, view)
            if view == "user_features":
                self.assertGreater(list(got.columns[0].statuses).count(pb.PRESENT), 250)
            rows = {v.name: v.rows for v in self.fsd.list_views().views}
            pulled_rows = {v.name: v.rows for v in self.pulled.list_views().views}
            self.assertEqual(rows[view], pulled_rows[view])

    def test_progress_bar_on_a_terminal(self):
        cmd = " ".join([MATERIALIZE_BIN, "--addr", self.fsd.address, "--config",
                        self.job_config, "--view", "item_features", "--batch", "500"])
        p = subprocess.run(["script", "-q", "-e", "-c", cmd, "/dev/null"], capture_output=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        # bytes: text mode would turn every \r into \n; the pty merges stdout and stderr
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("Sanitizer", out)
        self.assertIn("\r", out)
        bars = re.findall(r"\r(?:\x1b\[K)?item_features \[[#.]{30}\] +(\d+)% +(\d+)/(\d+) rows +"
                          r"\d+ rows/s +ETA +\d+:\d\d", out)
        self.assertGreaterEqual(len(bars), 1, repr(out[-2000:]))
        self.assertEqual(bars[-1], ("100", str(self.expected_rows), str(self.expected_rows)))
        self.assertNotRegex(out, r"rows_per_s=")
        self.assertEqual(self.items(self.fsd).rows, self.expected_rows)

    def test_path_override(self):
        # only the late file: fewer entities than the whole directory
        late = os.path.join(self.data, "item_features", "part-002-late.parquet")
        p = self.run_tool("--config", self.job_config, "--view", "item_features", "--path", late)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = self.items(self.fsd).rows
        self.assertGreater(rows, 0)
        self.assertLess(rows, self.expected_rows)
        self.assertIn("parquet:" + late, p.stderr)

    def test_stream_position_is_recorded_with_the_snapshot(self):
        """--stream-position goes in the first message; fsd records it ("<ms>" as "<ms>-0")
        with the snapshot; a push without it records none."""
        # --batch 1000: several messages, only the first carries the position
        p = self.run_tool("--config", self.job_config, "--view", "item_features",
                          "--batch", "1000", "--stream-position", "1700000000000")
        self.assertEqual(p.returncode, 0, p.stderr)
        v = self.items(self.fsd)
        self.assertEqual((v.snapshot_version, v.rows), (1, self.expected_rows))
        self.assertEqual(v.snapshot_stream_position, "1700000000000-0")
        p = self.run_tool("--config", self.job_config, "--view", "item_features")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.items(self.fsd).snapshot_stream_position, "")
        p = self.run_tool("--config", self.job_config, "--view", "item_features",
                          "--stream-position", "12-x")
        self.assertEqual(p.returncode, 2)
        self.assertIn('--stream-position wants a stream entry ID, <ms>-<seq> or <ms>; got "12-x"',
                      p.stderr)
        self.assertEqual(self.items(self.fsd).snapshot_version, 2)

    def test_errors_and_exit_codes(self):
        missing = os.path.join(self.tmp, "missing.parquet")
        p = materialize()
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: fsd-materialize", p.stderr)
        cases = [
            ((), 2, "--config is required"),
            (("--config", self.job_config), 2, "--view is required"),
            (("--config", self.job_config, "--view", "item_features", "--bogus"), 2,
             "unknown option"),
            (("--config", self.job_config, "--view", "item_features", "--batch", "0"), 2,
             "--batch"),
            (("--config", self.job_config, "--view", "nope"), 1,
             'view "nope" is not in ' + self.job_config),
            (("--config", os.path.join(self.tmp, "none.yaml"), "--view", "x"), 1, "none.yaml"),
            (("--config", self.job_config, "--view", "item_features", "--path", missing), 1,
             missing),
        ]
        for args, code, text in cases:
            p = self.run_tool(*args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(text, p.stderr, args)
        self.assertEqual(self.items(self.fsd).snapshot_version, 0)

    def test_timeout_gives_up_and_changes_nothing(self):
        proxy = HoldingProxy(self.fsd.port, hold=2, hold_s=3)
        try:
            p = self.run_tool("--config", self.job_config, "--view", "user_features",
                              "--batch", "50", "--timeout", "1", addr=proxy.address)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("push to %s failed: PushSnapshot: DEADLINE_EXCEEDED" % proxy.address,
                          p.stderr)
            self.assertEqual(p.stdout, "")
            # fsd gets the stream late, with the client's reset behind it: nothing changes
            self.fsd.wait_for_log(r'msg="pushed snapshot abandoned" view=user_features')
        finally:
            proxy.close()
        views = {v.name: v for v in self.fsd.list_views().views}
        self.assertEqual((views["user_features"].snapshot_version,
                          views["user_features"].rows), (0, 0))

    def test_server_errors_are_reported(self):
        # nobody listening
        p = self.run_tool("--config", self.job_config, "--view", "item_features",
                          addr="127.0.0.1:1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot connect to 127.0.0.1:1", p.stderr)
        # checked before the source is read: a view fsd does not serve, a drifted config
        for old, new, view, text in [
            ("name: item_features", "name: item_features_v2", "item_features_v2",
             "fsd at %s serves no view item_features_v2" % self.fsd.address),
            ("{ name: rating, type: float", "{ name: rating, type: double", "item_features",
             "feature rating of view item_features is float in fsd but double in "),
            ("      - { name: rating, type: float, default: mean }\n", "", "item_features",
             "fsd's view item_features has feature rating, which "),
            ("{ name: item_id, type: int64 }", "{ name: item_id, type: string }",
             "item_features", "fsd's view item_features has join keys (item_id int64), not "),
        ]:
            drifted = os.path.join(self.tmp, "drifted.yaml")
            with open(self.job_config) as f:
                text_in = f.read()
            text_in = text_in[:text_in.index("feature_services:")]
            self.assertIn(old, text_in)
            with open(drifted, "w") as f:
                f.write(text_in.replace(old, new, 1))
            p = self.run_tool("--config", drifted, "--view", view)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(text, p.stderr)
            self.assertNotIn("read ", p.stderr)  # failed before reading the source
        # the server refuses the snapshot: its contract wants more rows than the files have
        guarded = h.Fsd(demo_views(self.data, with_sources=False).replace(
            "    ttl: 7d\n    features:\n      - { name: price",
            "    ttl: 7d\n    contract: {min_rows: 100000000}\n    features:\n"
            "      - { name: price", 1))
        try:
            p = self.run_tool("--config", self.job_config, "--view", "item_features",
                              addr=guarded.address)
            self.assertEqual(p.returncode, 1)
            self.assertIn("FAILED_PRECONDITION", p.stderr)
            self.assertIn("fewer than min_rows 100000000", p.stderr)
            self.assertEqual(self.items(guarded).snapshot_version, 0)
        finally:
            self.assertEqual(guarded.stop(), 0)


# ---- fsd-materialize from PostgreSQL ------------------------------------------------------

PG_VIEW = """
views:
  - name: pgv
    join_keys: [{name: tenant, type: string}, {name: id, type: int64}]
    ttl: 0
%(source)s    features:
      - {name: i32, type: int32}
      - {name: i64, type: int64, default: zero}
      - {name: f32, type: float}
      - {name: f64, type: double, default: mean}
      - {name: b, type: bool}
      - {name: s, type: string}
      - {name: raw, type: bytes}
      - {name: t, type: timestamp}
      - {name: fl, type: float_list}
      - {name: il, type: int64_list}
      - {name: sl, type: string_list}
      - {name: i32l, type: int32_list}
      - {name: dl, type: double_list}
      - {name: bl, type: bool_list}
      - {name: byl, type: bytes_list}
      - {name: tl, type: timestamp_list}
"""

PG_SOURCE = """    source:
      type: postgres
      dsn: "%s"
      table: feats
      event_timestamp_column: ts
      created_timestamp_column: created
"""

PG_ROWS = """
CREATE TABLE feats (tenant text, id bigint, ts timestamptz, created timestamptz, i32 integer,
  i64 bigint, f32 real, f64 double precision, b boolean, s text, raw bytea, t timestamptz,
  fl real[], il bigint[], sl text[], i32l integer[], dl double precision[], bl boolean[],
  byl bytea[], tl timestamptz[]);
INSERT INTO feats
SELECT CASE WHEN g % 3 = 0 THEN 'acme' WHEN g % 3 = 1 THEN 'ünïcode' ELSE '' END, g / 3,
       now() - interval '1 day' + (g % 7) * interval '1 second', now() - interval '1 hour',
       CASE WHEN g % 11 = 0 THEN NULL ELSE g * 7 - 1000 END, g::bigint * 1000000007,
       g / 3.0, CASE WHEN g % 13 = 0 THEN NULL ELSE 1.0 / (g + 1) END, g % 2 = 0,
       'row ' || g, decode(lpad(to_hex(g), 8, '0') || '00ff', 'hex'),
       timestamptz '2024-01-01' + g * interval '1 millisecond',
       ARRAY[g * 0.5, -g]::real[], CASE WHEN g % 5 = 0 THEN '{}' ELSE ARRAY[g, g + 1] END,
       ARRAY['a' || g, ''], ARRAY[g, -g - 1], CASE WHEN g % 17 = 0 THEN NULL ELSE
       ARRAY[1.0 / (g + 1), -0.0] END, ARRAY[g % 2 = 0, true], ARRAY[decode(lpad(to_hex(g), 4, '0'), 'hex'),
       ''::bytea], ARRAY[timestamptz '1969-12-31' + g * interval '1 microsecond']
FROM generate_series(0, 2999) g;
-- older duplicates of some entities (the newer rows above win) and a newer one (it wins)
INSERT INTO feats (tenant, id, ts, created, i32, s)
SELECT 'acme', g, now() - interval '2 days', now(), -1, 'stale' FROM generate_series(0, 99) g;
INSERT INTO feats (tenant, id, ts, created, i32, s)
VALUES ('acme', 5, now() - interval '1 minute', now(), 424242, 'newest');
"""


class MaterializePostgresTest(unittest.TestCase):
    """fsd-materialize reading PostgreSQL (libpq, binary COPY): composite string keys, every
    feature type, nulls, duplicates; the pushed snapshot serves what a pulled one serves."""

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        cls.pg.psql(PG_ROWS)

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_a_row_too_big_for_a_message_cancels_the_push(self):
        pg = self.pg
        pg.psql("CREATE TABLE big AS SELECT * FROM feats; "
                "UPDATE big SET s = repeat('x', 70000) WHERE tenant = 'acme' AND id = 500")
        job = os.path.join(pg.dir, "big.yaml")
        with open(job, "w") as f:
            f.write(PG_VIEW % {"source": (PG_SOURCE % pg.dsn).replace("table: feats",
                                                                      "table: big")})
        fsd = h.Fsd(PG_VIEW % {"source": ""})
        try:
            p = materialize("--addr", fsd.address, "--config", job, "--view", "pgv", "--batch",
                            "100", "--max-message-bytes", "65536")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("a row is larger than a message may be (--max-message-bytes 65536)",
                          p.stderr)
            # the rows sent before it were dropped with the call, never committed
            v = fsd.list_views().views[0]
            self.assertEqual((v.snapshot_version, v.rows), (0, 0))
            fsd.wait_for_log(r'msg="pushed snapshot abandoned" view=pgv messages=[1-9]')
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_postgres_source_pushed_equals_pulled(self):
        pg = self.pg
        job = os.path.join(pg.dir, "job.yaml")
        with open(job, "w") as f:
            f.write(PG_VIEW % {"source": PG_SOURCE % pg.dsn})
        pulled = h.Fsd(PG_VIEW % {"source": PG_SOURCE % pg.dsn})
        pushed = h.Fsd(PG_VIEW % {"source": ""})
        try:
            deadline = time.monotonic() + 30
            while pulled.list_views().views[0].snapshot_version == 0:
                self.assertLess(time.monotonic(), deadline, "\n".join(pulled.log()))
                time.sleep(0.1)
            p = materialize("--addr", pushed.address, "--config", job, "--view", "pgv",
                            "--batch", "700")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("from postgres:feats", p.stderr)
            self.assertRegex(p.stdout, r"^view=pgv version=1 rows_sent=3000 rows_kept=3000 ")
            self.assertEqual(pushed.list_views().views[0].rows, 3000)
            tenants = ["acme", "ünïcode", ""]
            keys = [(tenants[g % 3], g // 3) for g in range(0, 3000, 7)] + [("acme", 5),
                                                                            ("nope", 1)]
            req = pb.GetFeaturesRequest(
                features=["pgv:*"], include_event_timestamps=True,
                keys=h.keys(tenant=[k[0] for k in keys], id=[k[1] for k in keys]))
            got, want = pushed.get(req), pulled.get(req)
            for r in (got, want):
                r.server_time_us = 0
                del r.views[0].staleness_ms[:]
            self.assertEqual(got, want)
            newest = keys.index(("acme", 5))
            self.assertEqual(h.column(got, "pgv:i32").int32_values[newest], 424242)
            self.assertEqual(h.column(got, "pgv:s").string_values[newest], "newest")
            self.assertEqual(h.column(got, "pgv:raw").statuses[0], pb.PRESENT)
            self.assertEqual(h.column(got, "pgv:raw").bytes_values[0],
                             bytes.fromhex("0000000000ff"))
            self.assertEqual(list(h.column(got, "pgv:i32l").int32_values[:2]), [0, -1])
            self.assertEqual(list(h.column(got, "pgv:byl").bytes_values[:2]), [b"\x00\x00", b""])
            self.assertEqual(h.column(got, "pgv:tl").int64_values[0], -86400 * 1000000)
            self.assertEqual(list(h.column(got, "pgv:bl").bool_values[:2]), [True, True])
        finally:
            self.assertEqual(pushed.stop(), 0)
            self.assertEqual(pulled.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
