"""Writes the seed corpus of fuzz_stream_entry (tests/materializer/stream/fuzz_stream_entry.c) next
to this file: one Redis Streams entry per file, in the target's input layout

    byte 0 'p' (protobuf format) or 'f' (fields format), then per field
    [u8 name length][name][u16 value length, little endian][value]

for its view (keys k int64, s string; features i32 i64 f d b str by ts fl il sl; event time
field ev, created time field cr; protobuf rows in field "row"). Files named ok-* must parse,
bad-* must be refused: the replay test checks both.

    /usr/bin/python3 tests/materializer/stream/corpus/make_corpus.py [build/python]
"""
import os
import struct
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "build/python")
from fsd.v1 import feature_service_pb2 as pb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOW_US = 1717200000 * 1000000  # the target's clock: 2024-06-01T00:00:00Z
EV = str(NOW_US - 60 * 1000000).encode()


def entry(fmt, fields):
    out = bytearray(fmt)
    for name, value in fields:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        out += bytes([len(name)]) + name + struct.pack("<H", len(value)) + value
    return bytes(out)


def fields(*pairs):
    return entry(b"f", pairs)


def row(keys, values=None, ts=NOW_US - 1000000, delete=False):
    parts = [pb.KeyPart(name=k, int64_value=v) if isinstance(v, int)
             else pb.KeyPart(name=k, string_value=v) for k, v in keys]
    fvs = [pb.FeatureValue(name=n, value=pb.Value(**{kind: v})) for n, kind, v in values or []]
    return pb.Row(keys=parts, event_timestamp_us=ts, values=fvs, delete=delete)


def protobuf(message, field="row"):
    data = message if isinstance(message, bytes) else message.SerializeToString()
    return entry(b"p", [(field, data)])


KEYS = [("k", 7), ("s", "eu")]
CORPUS = {
    "ok-fields-all-types": fields(
        ("k", "42"), ("s", "user-\u00e9"), ("ev", EV), ("cr", "3"), ("i32", "-7"),
        ("i64", "-9223372036854775808"), ("f", "1e-3"), ("d", "2.5"), ("b", "0"),
        ("str", "x"), ("by", b"\x00\xff"), ("ts", "2024-05-01T12:00:00.123456Z"),
        ("fl", "[0.5, -1, 2e3]"), ("il", "[1, -2, 3]"), ("sl", '["a", "b\\"c", "\\u00e9"]')),
    "ok-fields-delete": fields(("k", "1"), ("s", "a"), ("ev", "2024-05-31T23:59:59Z"),
                               ("__delete", "true")),
    "ok-fields-empty-lists": fields(("k", "1"), ("s", "a"), ("ev", EV), ("fl", "[ ]"),
                                    ("sl", "[]")),
    # found by the fuzzer: a shard's first row over 4 KiB overflowed its first arena chunk
    "ok-fields-row-over-4kib": fields(("k", "1"), ("s", "a"), ("ev", EV), ("by", b"\xab" * 5000)),
    "ok-protobuf-row": protobuf(row(KEYS, [
        ("i32", "int32_value", 1), ("str", "string_value", "hi"),
        ("fl", "float_list", pb.FloatList(values=[1.5])),
        ("sl", "string_list", pb.StringList(values=["a", ""]))])),
    "ok-protobuf-delete": protobuf(row(KEYS, delete=True)),
    "bad-fields-unknown-field": fields(("k", "1"), ("s", "a"), ("ev", EV), ("nope", "1")),
    "bad-fields-given-twice": fields(("k", "1"), ("k", "2"), ("s", "a"), ("ev", EV)),
    "bad-fields-key-missing": fields(("s", "a"), ("ev", EV)),
    "bad-fields-key-not-utf8": fields(("k", "1"), ("s", b"\xff"), ("ev", EV)),
    "bad-fields-no-event-time": fields(("k", "1"), ("s", "a"), ("i32", "1")),
    "bad-fields-event-time-zero": fields(("k", "1"), ("s", "a"), ("ev", "0")),
    "bad-fields-event-time-future": fields(("k", "1"), ("s", "a"),
                                           ("ev", str(NOW_US + 7200 * 1000000))),
    "bad-fields-int32-out-of-range": fields(("k", "1"), ("s", "a"), ("ev", EV),
                                            ("i32", "2147483648")),
    "bad-fields-bool": fields(("k", "1"), ("s", "a"), ("ev", EV), ("b", "yes")),
    "bad-fields-json-trailing-comma": fields(("k", "1"), ("s", "a"), ("ev", EV), ("fl", "[1,]")),
    "bad-fields-json-lone-surrogate": fields(("k", "1"), ("s", "a"), ("ev", EV),
                                             ("sl", '["\\ud800"]')),
    "bad-fields-delete-with-values": fields(("k", "1"), ("s", "a"), ("ev", EV),
                                            ("__delete", "1"), ("i32", "3")),
    "bad-protobuf-not-a-row": protobuf(b"\xff\xff\xff"),
    "bad-protobuf-other-field": protobuf(row(KEYS), field="data"),
    "bad-protobuf-wrong-type": protobuf(row(KEYS, [("i32", "string_value", "many")])),
    "bad-protobuf-no-event-time": protobuf(row(KEYS, ts=0)),
    "bad-protobuf-key-twice": protobuf(row(KEYS + [("k", 8)])),
    "bad-protobuf-feature-twice": protobuf(row(KEYS, [("f", "float_value", 1.0),
                                                      ("f", "float_value", 2.0)])),
}

for name, data in CORPUS.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print("wrote %d entries to %s" % (len(CORPUS), HERE))
