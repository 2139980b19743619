"""Writes the seed corpus of fuzz_h2_conn (tests/daemon/grpc/fuzz_h2_conn.c) into h2_corpus/
next to this file: what one client sends on one connection, in the target's input layout

    byte 0   bits 0-3 chunk size (1 << n bytes), 0x10 the target writes the client preface
             first, 0x20 the client half-closes at the end, 0x40 a stalled client
    then     the bytes the client sends

to the target's methods (/t/echo, /t/fail, /t/sum, /t/later; messages are raw bytes): calls
that succeed, split in every way the chunk size allows, calls each rule of the transport
refuses, and malformed HTTP/2. Inputs fuzzing runs added (min-*, from a -merge) and
regression inputs for bugs the fuzzer finds (regress-*) are kept in h2_corpus/ too; this
script neither writes nor removes them.

    /usr/bin/python3 tests/daemon/grpc/make_h2_corpus.py
"""
import os
import sys

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from h2raw import PREFACE, grpc_message  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h2_corpus")
WHOLE, BYTES = 0x0F, 0x00  # 32 KiB chunks (the input at once), 1-byte chunks
ADD_PREFACE, HALF_CLOSE, STALLED = 0x10, 0x20, 0x40


def write(name, first, body):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes([first]) + body)


class Client:
    """One connection's bytes. Headers are HPACK literals without Huffman coding, so the
    fuzzer's mutations of a path or a value stay readable to the server."""

    def __init__(self, preface=True, settings=None):
        self.enc = hpack.Encoder()
        self.out = (PREFACE if preface else b"") + SettingsFrame(
            0, settings=settings or {}).serialize()

    def headers(self, sid, path, end_stream=False, extra=(), method="POST",
                content_type="application/grpc"):
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", "localhost"), ("te", "trailers")]
        if content_type is not None:
            fields.append(("content-type", content_type))
        fields.extend(extra)
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        block = self.enc.encode(fields, huffman=False)
        self.out += HeadersFrame(sid, data=block, flags=flags).serialize()
        return self

    def data(self, sid, payload, end_stream=False, pad=0):
        flags = ["END_STREAM"] if end_stream else []
        frame = DataFrame(sid, data=payload, flags=flags + (["PADDED"] if pad else []))
        frame.pad_length = pad
        self.out += frame.serialize()
        return self

    def call(self, sid, path, *messages, extra=()):
        self.headers(sid, path, extra=extra)
        return self.data(sid, b"".join(grpc_message(m) for m in messages), end_stream=True)

    def raw(self, frame):
        self.out += frame.serialize()
        return self


def main():
    os.makedirs(HERE, exist_ok=True)
    echo = Client().call(1, "/t/echo", b"hello").out
    write("echo", WHOLE, echo)
    write("echo-byte-by-byte", BYTES, echo)
    write("echo-in-3-byte-chunks", 0x01, echo)  # 2 bytes: frames split everywhere
    write("echo-preface-by-target", ADD_PREFACE | WHOLE,
          Client(preface=False).call(1, "/t/echo", b"").out)
    write("echo-half-close", HALF_CLOSE | WHOLE, echo)
    write("fail-with-bytes", WHOLE, Client().call(1, "/t/fail", b"\x05n\xff\x00\xc3\xa9%").out)
    write("sum-three-messages", 0x04,
          Client().headers(1, "/t/sum").data(1, grpc_message(b"a") + grpc_message(b"")[:3])
          .data(1, grpc_message(b"")[3:] + grpc_message(b"xyz"), end_stream=True).out)
    write("later", WHOLE, Client().call(1, "/t/later", b"1", b"22").out)
    write("sum-reset-by-client", WHOLE,
          Client().headers(1, "/t/sum").data(1, grpc_message(b"a"))
          .raw(RstStreamFrame(1, error_code=8)).out)
    write("later-not-ended", WHOLE,
          Client().headers(1, "/t/later").data(1, grpc_message(b"a")).out)
    write("two-streams-interleaved", 0x03,
          Client().headers(1, "/t/echo").headers(3, "/t/sum")
          .data(3, grpc_message(b"s")).data(1, grpc_message(b"e")[:4])
          .data(1, grpc_message(b"e")[4:], end_stream=True).data(3, b"", end_stream=True).out)
    write("timeout", WHOLE, Client().call(1, "/t/echo", b"t", extra=[("grpc-timeout", "1S")]).out)
    write("timeout-malformed", WHOLE,
          Client().call(1, "/t/echo", b"t", extra=[("grpc-timeout", "1x")]).out)
    write("unknown-path", WHOLE, Client().call(1, "/t/nope" + "x" * 300, b"").out)
    write("method-get", WHOLE, Client().headers(1, "/t/echo", end_stream=True, method="GET").out)
    write("content-type-wrong", WHOLE,
          Client().headers(1, "/t/echo", end_stream=True, content_type="text/plain").out)
    write("content-type-missing", WHOLE,
          Client().headers(1, "/t/echo", end_stream=True, content_type=None).out)
    write("message-compressed", WHOLE,
          Client().headers(1, "/t/echo").data(1, b"\x01\0\0\0\x01x", end_stream=True).out)
    write("message-too-big", WHOLE,
          Client().headers(1, "/t/echo").data(1, b"\0\0\x01\x11\x70" + b"x" * 16,
                                              end_stream=True).out)
    write("unary-two-messages", WHOLE, Client().call(1, "/t/echo", b"a", b"b").out)
    write("unary-no-message", WHOLE, Client().headers(1, "/t/echo", end_stream=True).out)
    write("ended-inside-prefix", WHOLE,
          Client().headers(1, "/t/echo").data(1, b"\0\0", end_stream=True).out)
    c = Client()
    for sid in range(1, 13, 2):
        c.headers(sid, "/t/sum")
    write("streams-past-limit", WHOLE, c.out)
    write("ping-window-settings-ack", WHOLE,
          Client().raw(PingFrame(0, opaque_data=b"12345678"))
          .raw(WindowUpdateFrame(0, window_increment=1000))
          .raw(SettingsFrame(0, flags=["ACK"])).call(1, "/t/echo", b"p").out)
    write("stalled-echoes", STALLED | WHOLE, _stalled_echoes())
    write("window-zero", WHOLE,
          Client(settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}).call(1, "/t/echo", b"w").out)
    write("client-goaway", WHOLE,
          Client().call(1, "/t/echo", b"g").raw(GoAwayFrame(0, last_stream_id=1)).out)
    write("header-list-too-big", WHOLE,
          Client().call(1, "/t/echo", b"h", extra=[("x-big", "v" * 2000)]).out)
    c = Client().headers(1, "/t/sum")
    for _ in range(30):
        c.data(1, b"")
    write("empty-data-flood", WHOLE, c.out)
    c = Client()
    for sid in range(1, 61, 2):
        c.headers(sid, "/t/sum").raw(RstStreamFrame(sid, error_code=8))
    write("reset-flood", WHOLE, c.out)
    write("not-http2", WHOLE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # HTTP/1.1 on the same port: keep-alive and pipelined requests, chunked and Expect
    # bodies, a suspended call with requests behind it, and what the parser refuses.
    one = b"POST /h/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    write("http1-echo", WHOLE, one)
    write("http1-echo-bytes", BYTES, one)
    write("http1-pipelined", WHOLE, one + b"POST /h/later HTTP/1.1\r\nContent-Length: 0\r\n\r\n" +
          one + b"GET /h/echo HTTP/1.1\r\n\r\n" + b"GET /nowhere HTTP/1.1\r\n\r\n" + one)
    write("http1-chunked", 0x03, b"POST /h/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" + one)
    write("http1-expect", WHOLE, b"POST /h/echo HTTP/1.1\r\nExpect: 100-continue\r\n"
          b"Content-Length: 2\r\nConnection: close\r\n\r\nhi" + one)
    write("http1-auth-twice", WHOLE, b"POST /h/echo HTTP/1.1\r\nAuthorization: a\r\n"
          b"authorization: b\r\nContent-Length: 0\r\n\r\n" + one)
    write("http1-http10", WHOLE, b"POST /h/echo HTTP/1.0\r\nContent-Length: 1\r\n\r\nx" + one)
    write("http1-big-length", WHOLE, b"POST /h/echo HTTP/1.1\r\nContent-Length: 99999999999"
          b"\r\n\r\n" + one)
    write("http1-garbage", WHOLE, b"\x00\x01POST / HTTP/1.1\r\n\r\n")
    write("http1-half-close", HALF_CLOSE | WHOLE, b"POST /h/later HTTP/1.1\r\n"
          b"Content-Length: 0\r\n\r\n" + one)
    write("http1-stalled", STALLED | WHOLE, (one + b"POST /h/later HTTP/1.1\r\n"
                                             b"Content-Length: 0\r\n\r\n") * 40)
    write("truncated-headers", WHOLE, Client().headers(1, "/t/echo").out[:-5])
    c = Client()
    block = c.enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/t/echo"),
                          (":authority", "localhost"), ("content-type", "application/grpc")],
                         huffman=False)
    c.raw(HeadersFrame(1, data=block[:4])).raw(ContinuationFrame(1, data=block[4:],
                                                                 flags=["END_HEADERS"]))
    write("continuation", 0x02, c.data(1, grpc_message(b"c"), end_stream=True).out)
    c = Client().headers(1, "/t/sum").data(1, grpc_message(b"t"))
    c.raw(HeadersFrame(1, data=c.enc.encode([("x-trailer", "1")], huffman=False),
                       flags=["END_HEADERS", "END_STREAM"]))
    write("request-trailers", WHOLE, c.out)
    write("data-padded", WHOLE,
          Client().headers(1, "/t/echo").data(1, grpc_message(b"pad"), end_stream=True,
                                              pad=7).out)


def _stalled_echoes():
    c = Client()
    for sid in range(1, 25, 2):
        c.call(sid, "/t/echo", b"x" * 8000)
    return c.out


if __name__ == "__main__":
    main()
