"""Starts real fsd processes for integration tests and talks to them as clients do.

Tests run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf). CTest passes:
  FSD_BIN      the fsd binary
  FSD_PYPROTO  the directory protoc wrote feature_service_pb2 / health_pb2 into
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.environ.get("FSD_PYPROTO", ""))

import grpc  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from fsd.v1 import feature_service_pb2 as pb  # noqa: E402
import health_pb2  # noqa: E402

FSD_BIN = os.environ.get("FSD_BIN", "build/bin/fsd")
READY = re.compile(r'msg="fsd ready".* grpc=[^ ]*:(\d+)')

SERVICE = "/fsd.v1.FeatureService/"


class Fsd:
    """One fsd process on a free loopback port, with its config in a temporary directory."""

    def __init__(self, config_yaml, timeout_s=20, nofile=None):
        """nofile: the open-file limit (soft and hard) fsd runs with; None: the test's."""
        self.dir = tempfile.TemporaryDirectory(prefix="fsd-it-")
        self.config_path = os.path.join(self.dir.name, "fsd.yaml")
        self.write_config(config_yaml)
        self.log_lines = []
        self._log_lock = threading.Lock()
        def limit_files():
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            [FSD_BIN, "--config", self.config_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, preexec_fn=limit_files if nofile else None)
        self.port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                with self._log_lock:
                    self.log_lines.append(line.rstrip("\n"))
                m = READY.search(line)
                if m and not ready.is_set():
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout_s) or self.port is None:
            self.stop()
            raise RuntimeError("fsd did not become ready:\n" + "\n".join(self.log_lines))
        self.address = f"127.0.0.1:{self.port}"
        self.channel = grpc.insecure_channel(self.address)

    def write_config(self, config_yaml):
        # Free ports for everything, so tests never collide with each other or a running fsd.
        stats = "" if "stats_port:" in config_yaml else "  stats_port: 0\n"
        with open(self.config_path, "w") as f:
            f.write("server:\n  grpc_port: 0\n  workers: 2\n" + stats + config_yaml)

    def log(self):
        with self._log_lock:
            return list(self.log_lines)

    def wait_for_log(self, pattern, timeout_s=10):
        """Waits until a log line matches `pattern`; returns it."""
        deadline = time.monotonic() + timeout_s
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.log():
                if rx.search(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line matches {pattern!r}:\n" + "\n".join(self.log()))

    def unary(self, method, request, response_type, timeout=10, metadata=None):
        call = self.channel.unary_unary(
            SERVICE + method, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString)
        return call(request, timeout=timeout, metadata=metadata)

    def raw(self, path, payload, timeout=10):
        """Sends raw bytes as the request message; returns raw response bytes."""
        call = self.channel.unary_unary(path, request_serializer=None,
                                        response_deserializer=None)
        return call(payload, timeout=timeout)

    def get(self, request, **kw):
        return self.unary("GetFeatures", request, pb.GetFeaturesResponse, **kw)

    def push(self, request, **kw):
        return self.unary("PushRows", request, pb.PushRowsResponse, **kw)

    def list_views(self):
        return self.unary("ListViews", pb.ListViewsRequest(), pb.ListViewsResponse)

    def health(self, service=""):
        call = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return call(health_pb2.HealthCheckRequest(service=service), timeout=5)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout_s=20):
        """SIGTERM, then waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)
        self.proc.stderr.close()
        if self.proc.returncode != 0:
            # A crash or a sanitizer report is the most useful thing a failing test can show.
            sys.stderr.write("fsd exited with %d; its last log lines:\n%s\n" % (
                self.proc.returncode, "\n".join(self.log()[-80:])))
        if hasattr(self, "channel"):
            self.channel.close()
        self.dir.cleanup()
        return self.proc.returncode


# ---- building requests ------------------------------------------------------------------

def value(v, kind):
    """A Value of `kind` ("double_value", "float_list", ...) holding `v`; None is null."""
    if v is None:
        return pb.Value()
    if kind.endswith("_list"):  # "int32_list" -> Int32List(values=v)
        message = getattr(pb, "".join(part.capitalize() for part in kind.split("_")))
        return pb.Value(**{kind: message(values=v)})
    return pb.Value(**{kind: v})


def row(keys, event_ts_us, values=None, created_ts_us=0, delete=False):
    """keys: {name: int or str}; values: {feature: (value, kind)}."""
    parts = [pb.KeyPart(name=k, int64_value=v) if isinstance(v, int)
             else pb.KeyPart(name=k, string_value=v) for k, v in keys.items()]
    fvs = [pb.FeatureValue(name=n, value=value(v, kind))
           for n, (v, kind) in (values or {}).items()]
    return pb.Row(keys=parts, event_timestamp_us=event_ts_us,
                  created_timestamp_us=created_ts_us, values=fvs, delete=delete)


def keys(**columns):
    """keys(user_id=[1, 2]) -> [KeyColumn]; ints become int64_values, strs string_values."""
    out = []
    for name, vals in columns.items():
        if vals and isinstance(vals[0], str):
            out.append(pb.KeyColumn(name=name, string_values=vals))
        else:
            out.append(pb.KeyColumn(name=name, int64_values=vals))
    return out


def now_us():
    return time.time_ns() // 1000


def column(resp, name):
    for c in resp.columns:
        if c.name == name:
            return c
    raise KeyError(name)


# ---- the stats port (HTTP) --------------------------------------------------------------

STATS_LISTENING = re.compile(r'msg="stats listening".* port=(\d+)')


def stats_port(fsd, timeout_s=10):
    """The stats port `fsd` logged (msg="stats listening" ... port=N); set stats_port: 0."""
    return int(STATS_LISTENING.search(fsd.wait_for_log(STATS_LISTENING.pattern,
                                                       timeout_s)).group(1))


def http_request(port, path, method="GET", headers=None, timeout=10):
    """One HTTP/1.1 request to 127.0.0.1:port; returns (status, headers, body bytes).
    Error statuses are returned, not raised; header names are lower-cased."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class Metrics:
    """One scrape: sample values by name and labels; absent series read as 0."""

    def __init__(self, text):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for family in self.families.values():
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0)

    def has(self, name, **labels):
        return (name, frozenset(labels.items())) in self.samples

    def delta(self, before, name, **labels):
        return self.get(name, **labels) - before.get(name, **labels)


def scrape(port):
    status, headers, body = http_request(port, "/metrics")
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return Metrics(body.decode())
