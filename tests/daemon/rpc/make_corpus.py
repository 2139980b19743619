"""Writes the seed corpus of fuzz_rpc (tests/daemon/rpc/fuzz_rpc.c) into corpus/ next to this
file: one call per file, in the target's input layout

    byte 0   the method (enum rpc_method_id: 0 GetFeatures, 1 ListViews, 2 PushRows,
             3 LoadSnapshot, 4 HealthCheck, 5 PushSnapshot, 6 Feast's GetOnlineFeatures,
             7 Feast's GetFeastServingInfo) | the token << 3 (0 admin,
             1 write for view u, 2 read, 3 the header's bytes follow) | flags (0x20 reset
             while the commit runs, 0x40 reset instead of half-close, 0x80 no grpc-timeout,
             so the default latency budget applies and is spent)
    then     with token 3: [u8 length][authorization header value]
    then     the request message; PushSnapshot: [u16 length, little endian][message] ...

for the target's views (u: key id, features i32 i64 f d b s by ts fl il sl; it: keys sku, id,
features p n; service svc). Requests that are accepted and requests refused for each reason
the handlers give, so the fuzzer starts from every branch. Inputs fuzzing runs added (min-*,
from a -merge) and regression inputs for bugs the fuzzer finds (regress-*) are kept in corpus/
too; this script neither writes nor removes them.

    /usr/bin/python3 tests/daemon/rpc/make_corpus.py [build/python]
"""
import os
import struct
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "build/python")
from fsd.v1 import feature_service_pb2 as pb  # noqa: E402
import health_pb2  # noqa: E402
from feast.serving import ServingService_pb2 as fs  # noqa: E402
from feast.types import Value_pb2 as fv  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
GET, LIST, PUSH_ROWS, LOAD, HEALTH, PUSH_SNAPSHOT, FEAST_GET, FEAST_INFO = range(8)
WRITE_TOKEN, READ_TOKEN, HEADER = 1 << 3, 2 << 3, 3 << 3
LATE_RESET, RESET, NO_TIMEOUT = 0x20, 0x40, 0x80
EV_US = 1717200000 * 1000000  # 2024-06-01T00:00:00Z: in the past whenever the target runs
FUTURE_US = 4102444800 * 1000000  # 2100-01-01: past any producer's allowed clock skew


def write(name, first, body):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes([first]) + body)


def header(value):
    return bytes([len(value)]) + value


def stream(*messages):
    out = b""
    for m in messages:
        data = m.SerializeToString()
        out += struct.pack("<H", len(data)) + data
    return out


def keys(**columns):
    out = []
    for name, values in columns.items():
        col = pb.KeyColumn(name=name)
        if values and isinstance(values[0], str):
            col.string_values.extend(values)
        else:
            col.int64_values.extend(values)
        out.append(col)
    return out


def get(**kw):
    key_columns = kw.pop("keys", [])
    req = pb.GetFeaturesRequest(**kw)
    req.keys.extend(key_columns)
    return req.SerializeToString()


def value(**kw):
    return pb.Value(**kw)


def u_row(id_, ev=EV_US, delete=False, **features):
    row = pb.Row(event_timestamp_us=ev, delete=delete)
    row.keys.append(pb.KeyPart(name="id", int64_value=id_))
    for name, v in features.items():
        row.values.append(pb.FeatureValue(name=name, value=v))
    return row


def u_row_every_type(id_):
    return u_row(id_, i32=value(int32_value=-7), i64=value(int64_value=1 << 40),
                 f=value(float_value=0.25), d=value(double_value=-1e300),
                 b=value(bool_value=True), s=value(string_value="caf\u00e9".encode()),
                 by=value(bytes_value=b"\0\xff"), ts=value(timestamp_us=-1),
                 fl=value(float_list=pb.FloatList(values=[1.5, -0.0])),
                 il=value(int64_list=pb.Int64List(values=[-(1 << 63), 0, 1])),
                 sl=value(string_list=pb.StringList(values=[b"a", b""])))


def it_row(sku, id_, ev=EV_US, **features):
    row = pb.Row(event_timestamp_us=ev)
    row.keys.append(pb.KeyPart(name="sku", string_value=sku.encode()))
    row.keys.append(pb.KeyPart(name="id", int64_value=id_))
    for name, v in features.items():
        row.values.append(pb.FeatureValue(name=name, value=v))
    return row


def push_rows(view, *rows):
    req = pb.PushRowsRequest(view=view)
    req.rows.extend(rows)
    return req.SerializeToString()


def snapshot(view="", rows=(), stream_position=""):
    req = pb.PushSnapshotRequest(view=view, stream_position=stream_position)
    req.rows.extend(rows)
    return req


def feast(refs=(), service=None, full=False, **entities):
    """A Feast GetOnlineFeaturesRequest: entities as join key -> Feast values."""
    req = fs.GetOnlineFeaturesRequest(full_feature_names=full)
    if service is not None:
        req.feature_service = service
    else:
        req.features.val.extend(refs)
    for name, values in entities.items():
        for v in values:
            if isinstance(v, str):
                req.entities[name].val.append(fv.Value(string_val=v))
            elif isinstance(v, float):
                req.entities[name].val.append(fv.Value(double_val=v))
            else:
                req.entities[name].val.append(fv.Value(int64_val=v))
    return req.SerializeToString()


def main():
    os.makedirs(HERE, exist_ok=True)
    # GetFeatures
    write("get-u-all-features", GET, get(features=["u:*"], keys=keys(id=[1, 2, 3, 4]),
                                         include_event_timestamps=True))
    write("get-two-views", GET, get(features=["u:i32", "it:p", "it:n"],
                                    keys=keys(id=[1, 2, 9], sku=["a", "b", "z"])))
    write("get-service", GET, get(feature_service="svc", keys=keys(id=[1, 2], sku=["a", "b"])))
    write("get-service-and-refs", GET, get(feature_service="svc", features=["u:i32", "u:sl"],
                                           keys=keys(sku=["a"], id=[1])))
    write("get-no-entities", GET, get(features=["u:fl"]))
    write("get-budget-spent", GET, get(features=["u:d"], keys=keys(id=[1]), budget_us=1))
    write("get-default-budget-spent", GET | NO_TIMEOUT, get(features=["u:d"], keys=keys(id=[1])))
    write("get-bad-ref", GET, get(features=["nocolon"], keys=keys(id=[1])))
    write("get-unknown-view", GET, get(features=["v:x"], keys=keys(id=[1])))
    write("get-unknown-feature", GET, get(features=["u:nope"], keys=keys(id=[1])))
    write("get-unknown-service", GET, get(feature_service="nope", keys=keys(id=[1])))
    write("get-key-missing", GET, get(features=["it:p"], keys=keys(id=[1])))
    write("get-key-wrong-type", GET, get(features=["u:i32"], keys=keys(id=["1"])))
    write("get-key-lengths-differ", GET, get(features=["it:p"],
                                             keys=keys(id=[1, 2], sku=["a"])))
    write("get-key-twice", GET, get(features=["u:i32"], keys=keys(id=[1]) + keys(id=[2])))
    write("get-over-max-batch", GET, get(features=["u:b"], keys=keys(id=list(range(257)))))
    write("get-not-protobuf", GET, b"\xff\xff\xff")
    # ListViews, HealthCheck
    write("feast-u-every-type", FEAST_GET,
          feast([f"u:{f}" for f in ("i32", "i64", "f", "d", "b", "s", "by", "ts", "fl", "il",
                                    "sl")], id=[1, 2, 3, 4]))
    write("feast-two-views-full-names", FEAST_GET,
          feast(["u:i32", "it:p", "it:n"], full=True, id=[1, 2], sku=["a", "b"]))
    write("feast-service", FEAST_GET, feast(service="svc", id=[1, 2], sku=["a", "b"]))
    write("feast-collision", FEAST_GET, feast(["u:d", "it:p", "u:d"], full=True, id=[1],
                                              sku=["a"]))
    write("feast-key-not-joined", FEAST_GET, feast(["u:d"], id=[1], sku=["a"]))
    write("feast-key-double", FEAST_GET, feast(["u:d"], id=[1.5]))
    write("feast-no-features", FEAST_GET, feast(id=[1]))
    write("feast-not-protobuf", FEAST_GET, b"\xff\xff\xff")
    write("feast-serving-info", FEAST_INFO, b"")
    write("list-views", LIST, b"")
    write("health", HEALTH, b"")
    write("health-service", HEALTH,
          health_pb2.HealthCheckRequest(service="fsd.v1.FeatureService").SerializeToString())
    write("health-unknown-service", HEALTH,
          health_pb2.HealthCheckRequest(service="x").SerializeToString())
    # PushRows
    write("push-rows-every-type", PUSH_ROWS, push_rows("u", u_row_every_type(1),
                                                       u_row_every_type(7)))
    write("push-rows-two-keys", PUSH_ROWS,
          push_rows("it", it_row("a", 1, p=value(double_value=2.5)),
                    it_row("c", 3, n=value(string_value=b"n"))))
    write("push-rows-delete", PUSH_ROWS, push_rows("u", u_row(2, delete=True)))
    write("push-rows-wrong-type", PUSH_ROWS, push_rows("u", u_row(1, i32=value(bool_value=True))))
    write("push-rows-future", PUSH_ROWS, push_rows("u", u_row(1, ev=FUTURE_US)))
    write("push-rows-unknown-view", PUSH_ROWS, push_rows("v", u_row(1)))
    # Authorization
    rows_u = push_rows("u", u_row(9, d=value(double_value=1.0)))
    write("auth-write-token-own-view", PUSH_ROWS | WRITE_TOKEN, rows_u)
    write("auth-write-token-other-view", PUSH_ROWS | WRITE_TOKEN,
          push_rows("it", it_row("a", 1)))
    write("auth-write-token-snapshot-other-view", PUSH_SNAPSHOT | WRITE_TOKEN,
          stream(snapshot("it", [it_row("a", 1)])))
    write("auth-read-token-push", PUSH_ROWS | READ_TOKEN, rows_u)
    write("auth-read-token-get", GET | READ_TOKEN, get(features=["u:i32"], keys=keys(id=[1])))
    write("auth-write-token-load", LOAD | WRITE_TOKEN,
          pb.LoadSnapshotRequest(view="u").SerializeToString())
    write("auth-no-header", GET | HEADER, header(b"") + get(features=["u:i32"], keys=keys(id=[1])))
    write("auth-health-no-header", HEALTH | HEADER, header(b""))
    write("auth-unknown-token", LIST | HEADER, header(b"Bearer nope"))
    write("auth-not-bearer", LIST | HEADER, header(b"Basic YTpi"))
    write("auth-admin-token-by-hand", LIST | HEADER,
          header(b"Bearer fuzz-admin-token-0123456789abcdef"))
    # LoadSnapshot
    write("load-u", LOAD, pb.LoadSnapshotRequest(view="u").SerializeToString())
    write("load-u-position", LOAD,
          pb.LoadSnapshotRequest(view="u", stream_position="17-2").SerializeToString())
    write("load-bad-position", LOAD,
          pb.LoadSnapshotRequest(view="u", stream_position="17-x").SerializeToString())
    write("load-it-unscheduled", LOAD, pb.LoadSnapshotRequest(view="it").SerializeToString())
    write("load-unknown-view", LOAD, pb.LoadSnapshotRequest(view="v").SerializeToString())
    # PushSnapshot
    write("snapshot-u-two-messages", PUSH_SNAPSHOT,
          stream(snapshot("u", [u_row_every_type(1), u_row(2, d=value(double_value=1.0))],
                          "5-1"),
                 snapshot("", [u_row(3, d=value(double_value=2.0))], "5-1")))
    write("snapshot-it", PUSH_SNAPSHOT, stream(snapshot("it", [it_row("a", 1)])))
    write("snapshot-contract-min-rows", PUSH_SNAPSHOT, stream(snapshot("u")))
    write("snapshot-contract-null-rate", PUSH_SNAPSHOT, stream(snapshot("u", [u_row(1)])))
    write("snapshot-contract-range", PUSH_SNAPSHOT,
          stream(snapshot("u", [u_row(1, d=value(double_value=0),
                                      i64=value(int64_value=1 << 40))])))
    write("snapshot-reset", PUSH_SNAPSHOT | RESET,
          stream(snapshot("u", [u_row(1, d=value(double_value=1.0))])))
    write("snapshot-reset-during-commit", PUSH_SNAPSHOT | LATE_RESET,
          stream(snapshot("u", [u_row(1, d=value(double_value=1.0))])))
    write("snapshot-no-message", PUSH_SNAPSHOT, b"")
    write("snapshot-no-view", PUSH_SNAPSHOT, stream(snapshot("", [u_row(1)])))
    write("snapshot-other-view-later", PUSH_SNAPSHOT, stream(snapshot("u"), snapshot("it")))
    write("snapshot-position-differs", PUSH_SNAPSHOT,
          stream(snapshot("u", stream_position="1"), snapshot("u", stream_position="2")))
    write("snapshot-bad-row", PUSH_SNAPSHOT,
          stream(snapshot("u", [u_row(1, d=value(double_value=1.0))]),
                 snapshot("", [u_row(2, d=value(string_value=b"x"))])))


if __name__ == "__main__":
    main()
