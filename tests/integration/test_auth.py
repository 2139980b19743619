"""Bearer tokens and roles on the gRPC port, with the real daemon and grpcio as the client.

Each refusal is asserted with its status code, its metric and its log line; the tokens file is
re-read on SIGHUP; fsd refuses to listen beyond loopback without authentication.
"""
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import unittest

import grpc

import harness as h
from harness import pb, scrape

READ_TOKEN = "read-7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e"
WRITE_TOKEN = "write-2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f0a"
ADMIN_TOKEN = "admin-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
NEW_TOKEN = "new-0a1b2c3d4e5f60718293a4b5c6d7e8f9"

VIEWS = """views:
  - name: v
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
      - {name: f, type: double}
  - name: w
    join_keys: [{name: id, type: int64}]
    ttl: 0
    features:
      - {name: f, type: double}
"""


def sha(token):
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def tokens_file(path, lines, mode=0o600):
    with open(path, "w") as f:
        f.write("# name role views sha256-of-token\n" + "".join(line + "\n" for line in lines))
    os.chmod(path, mode)


def bearer(token):
    return (("authorization", "Bearer " + token),)


def one_row(view="v"):
    return pb.PushRowsRequest(view=view, rows=[h.row({"id": 1}, h.now_us(),
                                                      {"f": (1.5, "double_value")})])


GET = pb.GetFeaturesRequest(features=["v:f"], keys=h.keys(id=[1]))


class RolesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="fsd-auth-")
        cls.tokens = os.path.join(cls.tmp.name, "tokens")
        tokens_file(cls.tokens, [f"ranker read * {sha(READ_TOKEN)}",
                                 f"loader write v {sha(WRITE_TOKEN)}",
                                 f"ops admin * {sha(ADMIN_TOKEN)}"])
        cls.fsd = h.Fsd(f"  auth:\n    tokens_file: {cls.tokens}\n" + VIEWS)
        cls.port = h.stats_port(cls.fsd)

    @classmethod
    def tearDownClass(cls):
        rc = cls.fsd.stop()
        cls.tmp.cleanup()
        if rc != 0:
            raise AssertionError(f"fsd exited {rc}")

    def assertRefused(self, code, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_no_bad_or_unknown_token_is_unauthenticated(self):
        before = scrape(self.port)
        time.sleep(0.2)  # past the log's ten lines a second, so this refusal is logged
        details = self.assertRefused(grpc.StatusCode.UNAUTHENTICATED, self.fsd.get, GET)
        self.assertIn("Bearer <token>", details)
        self.assertRefused(grpc.StatusCode.UNAUTHENTICATED, self.fsd.get, GET,
                           metadata=(("authorization", "Basic " + READ_TOKEN),))
        self.assertEqual(self.assertRefused(grpc.StatusCode.UNAUTHENTICATED, self.fsd.get, GET,
                                            metadata=bearer(READ_TOKEN + "x")),
                         "unknown token")
        after = scrape(self.port)
        for reason in ("missing", "malformed", "unknown_token"):
            self.assertEqual(after.delta(before, "fsd_auth_failures_total",
                                         method="GetFeatures", reason=reason), 1, reason)
        line = self.fsd.wait_for_log(r'msg="call refused" method=GetFeatures '
                                     r'reason=missing peer=127\.0\.0\.1:\d+ token=-')
        self.assertIn("not_logged_before=", line)

    def test_read_token_reads_and_may_not_write(self):
        self.fsd.get(GET, metadata=bearer(READ_TOKEN))
        self.fsd.unary("ListViews", pb.ListViewsRequest(), pb.ListViewsResponse,
                       metadata=bearer(READ_TOKEN))
        before = scrape(self.port)
        time.sleep(0.2)  # past the log's ten lines a second, so this refusal is logged
        details = self.assertRefused(grpc.StatusCode.PERMISSION_DENIED, self.fsd.push, one_row(),
                                     metadata=bearer(READ_TOKEN))
        self.assertEqual(details,
                         "token ranker has role read, which may not call PushRows (it needs write)")
        after = scrape(self.port)
        self.assertEqual(after.delta(before, "fsd_auth_failures_total", method="PushRows",
                                     reason="role"), 1)
        self.fsd.wait_for_log(r'msg="call refused" method=PushRows reason=role .*token=ranker')

    def test_write_token_writes_its_views_only(self):
        resp = self.fsd.push(one_row("v"), metadata=bearer(WRITE_TOKEN))
        self.assertEqual(resp.inserted + resp.replaced, 1)
        got = self.fsd.get(GET, metadata=bearer(WRITE_TOKEN))  # write includes read
        self.assertEqual(len(got.columns), 1)
        before = scrape(self.port)
        details = self.assertRefused(grpc.StatusCode.PERMISSION_DENIED, self.fsd.push,
                                     one_row("w"), metadata=bearer(WRITE_TOKEN))
        self.assertEqual(details, "token loader may not write view w")
        # An unknown view is refused the same way: the token learns nothing of other views.
        details = self.assertRefused(grpc.StatusCode.PERMISSION_DENIED, self.fsd.push,
                                     one_row("nope"), metadata=bearer(WRITE_TOKEN))
        self.assertEqual(details, "token loader may not write view nope")
        # PushSnapshot: the first message names the view.
        stream = self.fsd.channel.stream_unary(
            h.SERVICE + "PushSnapshot", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.PushSnapshotResponse.FromString)
        msg = pb.PushSnapshotRequest(view="w", rows=[h.row({"id": 1}, h.now_us(),
                                                          {"f": (2.0, "double_value")})])
        with self.assertRaises(grpc.RpcError) as cm:
            stream(iter([msg]), timeout=10, metadata=bearer(WRITE_TOKEN))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertRefused(grpc.StatusCode.PERMISSION_DENIED, self.fsd.unary, "LoadSnapshot",
                           pb.LoadSnapshotRequest(view="v"), pb.LoadSnapshotResponse,
                           metadata=bearer(WRITE_TOKEN))
        after = scrape(self.port)
        self.assertEqual(after.delta(before, "fsd_auth_failures_total", method="PushRows",
                                     reason="view"), 2)
        self.assertEqual(after.delta(before, "fsd_auth_failures_total", method="PushSnapshot",
                                     reason="view"), 1)
        self.assertEqual(after.delta(before, "fsd_auth_failures_total", method="LoadSnapshot",
                                     reason="role"), 1)

    def test_admin_passes_every_check_and_health_is_open(self):
        self.fsd.push(one_row("w"), metadata=bearer(ADMIN_TOKEN))
        # Past authentication, whatever the load then does.
        try:
            self.fsd.unary("LoadSnapshot", pb.LoadSnapshotRequest(view="v"),
                           pb.LoadSnapshotResponse, metadata=bearer(ADMIN_TOKEN))
        except grpc.RpcError as e:
            self.assertNotIn(e.code(), (grpc.StatusCode.UNAUTHENTICATED,
                                        grpc.StatusCode.PERMISSION_DENIED), e.details())
        self.assertEqual(self.fsd.health().status, 1)  # SERVING, with no token at all

    def test_tokens_never_reach_the_log(self):
        self.assertRefused(grpc.StatusCode.UNAUTHENTICATED, self.fsd.get, GET,
                           metadata=bearer(READ_TOKEN + "-typo"))
        self.fsd.push(one_row("v"), metadata=bearer(WRITE_TOKEN))
        text = "\n".join(self.fsd.log())
        for token in (READ_TOKEN, WRITE_TOKEN, ADMIN_TOKEN):
            self.assertNotIn(token, text)

    def test_stats_pages_take_a_token_of_the_file(self):
        status, _, _ = h.http_request(self.port, "/status")
        self.assertEqual(status, 401)
        status, _, _ = h.http_request(self.port, "/status",
                                      headers={"Authorization": "Bearer " + READ_TOKEN})
        self.assertEqual(status, 200)
        status, _, _ = h.http_request(self.port, "/healthz")
        self.assertEqual(status, 200)


    def test_fsctl_sends_the_token_of_its_token_file(self):
        fsctl = os.environ.get("FSCTL_BIN", "build/bin/fsctl")
        token_path = os.path.join(self.tmp.name, "my-token")
        with open(token_path, "w") as f:
            f.write(READ_TOKEN + "\n")
        os.chmod(token_path, 0o600)
        base = [fsctl, "--addr", self.fsd.address]
        env = {k: v for k, v in os.environ.items() if k != "FSD_TOKEN_FILE"}
        out = subprocess.run(base + ["views"], capture_output=True, text=True, env=env)
        self.assertEqual(out.returncode, 1, out)
        self.assertIn("UNAUTHENTICATED", out.stderr)
        out = subprocess.run(base + ["--token-file", token_path, "views"], capture_output=True,
                             text=True, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("v", out.stdout)
        out = subprocess.run(base + ["views"], capture_output=True, text=True,
                             env=dict(env, FSD_TOKEN_FILE=token_path))
        self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run(base + ["--token-file", token_path + ".missing", "views"],
                             capture_output=True, text=True, env=env)
        self.assertNotEqual(out.returncode, 0, out)
        self.assertIn("--token-file " + token_path + ".missing: No such file", out.stderr)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="fsd-auth-")
        self.tokens = os.path.join(self.tmp.name, "tokens")
        tokens_file(self.tokens, [f"ranker read * {sha(READ_TOKEN)}"])
        self.fsd = h.Fsd(f"  auth:\n    tokens_file: {self.tokens}\n" + VIEWS)
        self.port = h.stats_port(self.fsd)

    def tearDown(self):
        rc = self.fsd.stop()
        self.tmp.cleanup()
        self.assertEqual(rc, 0)

    def reload(self, count):
        self.fsd.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sum('msg="config reloaded"' in line for line in self.fsd.log()) >= count:
                return
            time.sleep(0.02)
        raise AssertionError("no reload:\n" + "\n".join(self.fsd.log()))

    def test_sighup_adds_and_revokes_tokens_and_a_bad_file_changes_nothing(self):
        self.fsd.get(GET, metadata=bearer(READ_TOKEN))
        tokens_file(self.tokens, [f"ranker2 read * {sha(NEW_TOKEN)}"])
        self.reload(1)
        self.fsd.wait_for_log(r'msg="tokens reloaded" .* tokens=1')
        self.fsd.get(GET, metadata=bearer(NEW_TOKEN))
        with self.assertRaises(grpc.RpcError) as cm:
            self.fsd.get(GET, metadata=bearer(READ_TOKEN))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

        before = scrape(self.port)
        tokens_file(self.tokens, [f"ops root * {sha(ADMIN_TOKEN)}"], mode=0o600)
        self.reload(2)
        line = self.fsd.wait_for_log(r'cannot read the tokens file; the old tokens stay')
        self.assertIn("line 2: unknown role 'root'", line)
        self.fsd.get(GET, metadata=bearer(NEW_TOKEN))  # still the last good tokens
        after = scrape(self.port)
        self.assertEqual(after.delta(before, "fsd_auth_token_file_loads_total", result="error"), 1)
        self.assertEqual(after.get("fsd_auth_tokens"), 1)


class StartTest(unittest.TestCase):
    """fsd refuses to start, with a message naming what to set."""

    def start(self, server_yaml, lines=None, mode=0o600):
        with tempfile.TemporaryDirectory(prefix="fsd-auth-") as tmp:
            if lines is not None:
                tokens_file(os.path.join(tmp, "tokens"), lines, mode)
                server_yaml += f"  auth:\n    tokens_file: {tmp}/tokens\n"
            config = os.path.join(tmp, "fsd.yaml")
            with open(config, "w") as f:
                f.write("server:\n  grpc_port: 0\n  stats_port: 0\n  workers: 1\n" + server_yaml
                        + VIEWS)
            try:
                proc = subprocess.run([h.FSD_BIN, "--config", config], capture_output=True,
                                      text=True, timeout=5)
                return proc.returncode, proc.stderr
            except subprocess.TimeoutExpired as e:
                return None, e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr

    def test_open_bind_without_auth_is_refused_unless_allowed(self):
        rc, log = self.start("  grpc_bind: 0.0.0.0\n")
        self.assertNotEqual(rc, 0)
        self.assertIsNotNone(rc)
        self.assertIn("server.grpc_bind is 0.0.0.0, which is not a loopback address", log)
        self.assertIn("server.allow_insecure", log)
        rc, log = self.start("  stats_bind: 0.0.0.0\n")
        self.assertIn("server.stats_bind is 0.0.0.0", log)
        # Listening is fine with tokens, or when told so; fsd then runs until the timeout.
        rc, log = self.start("  grpc_bind: 0.0.0.0\n", [f"ranker read * {sha(READ_TOKEN)}"])
        self.assertIsNone(rc, log)
        self.assertIn('msg="fsd ready"', log)
        rc, log = self.start("  grpc_bind: 0.0.0.0\n  allow_insecure: true\n")
        self.assertIsNone(rc, log)
        self.assertIn("server.allow_insecure is set", log)

    def test_bad_tokens_files(self):
        cases = [
            ([f"ranker read * {READ_TOKEN}"], 0o600, "line 2: the fourth field must be sha256:"),
            ([f"ranker read * {sha(READ_TOKEN)}"], 0o620, "lets group or others write it"),
            ([f"ranker read v {sha(READ_TOKEN)}"], 0o600, "a view list limits a write token"),
            ([f"a read * {sha(READ_TOKEN)}", f"a admin * {sha(ADMIN_TOKEN)}"], 0o600,
             "line 3: a second token named a"),
            ([f"a read * {sha(READ_TOKEN)}", f"b admin * {sha(READ_TOKEN)}"], 0o600,
             "line 3: token b is token a again"),
            (["ranker read *"], 0o600, "line 2: 3 fields"),
        ]
        for lines, mode, want in cases:
            rc, log = self.start("", lines, mode)
            self.assertNotEqual(rc, 0, lines)
            self.assertIsNotNone(rc, lines)
            self.assertIn(want, log, lines)
            self.assertIn('msg="cannot read the tokens file"', log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
