"""TLS on the gRPC port, end to end: a throwaway CA and certificates made with the `openssl`
command, a real fsd, and grpcio's secure channels (and Python's ssl module where the test must
see the handshake itself).

- With server.tls.cert_file the port speaks TLS only (ALPN h2): a secure channel that trusts
  the CA is served, a cleartext one is not, and a client trusting another CA refuses the
  server. Each refused handshake is logged with its reason and counted.
- With client_ca_file (mutual TLS) a client must present a valid certificate of that CA: none,
  an expired one or one of another CA is refused, with the reason in the log.
- The stats port speaks HTTPS (HTTP/1.1) with the same certificate, and nothing else.
- SIGHUP re-reads the certificate: new connections get the new one, an open connection keeps
  working; a reload with a broken file keeps the old certificate.
- A missing or mismatched file stops fsd at start with the file named.
"""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import grpc

import harness as h
from harness import pb

VIEWS = """views:
  - name: v
    join_keys: [{ name: id, type: int64 }]
    ttl: 0
    features:
      - { name: f, type: int64, default: 7 }
"""


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}")


class Pki:
    """A CA and certificates it signs, in a temporary folder (EC P-256 keys)."""

    def __init__(self, directory, name):
        self.dir = directory
        self.name = name
        self.ca = self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", self.path("ca.key"), "-out", self.ca, "-days", "2",
                "-subj", f"/CN={name} CA", cwd=directory)

    def path(self, file):
        return os.path.join(self.dir, f"{self.name}-{file}")

    def issue(self, cn, days=2, server=False):
        """A key and a certificate for `cn`; returns (cert path, key path)."""
        key, csr, cert = self.path(f"{cn}.key"), self.path(f"{cn}.csr"), self.path(f"{cn}.pem")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        ext = self.path(f"{cn}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else
                    "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"),
                "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext,
                cwd=self.dir)
        return cert, key


def read(path):
    with open(path, "rb") as f:
        return f.read()


def secure_channel(address, ca, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(root_certificates=read(ca),
                                         private_key=read(key) if key else None,
                                         certificate_chain=read(cert) if cert else None)
    return grpc.secure_channel(address, creds,
                               options=[("grpc.ssl_target_name_override", "localhost")])


def get(channel, timeout=5):
    call = channel.unary_unary(h.SERVICE + "GetFeatures",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=pb.GetFeaturesResponse.FromString)
    return call(pb.GetFeaturesRequest(features=["v:f"], keys=h.keys(id=[1])), timeout=timeout)


def server_certificate_serial(port, ca):
    """The serial of the certificate fsd presents to a new connection."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            return tls.getpeercert()["serialNumber"]


class TlsTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fsd-tls-it-")
        self.pki = Pki(self.tmp, "main")
        self.other = Pki(self.tmp, "other")
        self.cert, self.key = self.pki.issue("localhost", server=True)
        self.fsd = None
        self.channels = []

    def tearDown(self):
        for c in self.channels:
            c.close()
        if self.fsd is not None:
            self.assertEqual(self.fsd.stop(), 0)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, client_ca=None, extra=""):
        tls = f"  tls:\n    cert_file: {self.cert}\n    key_file: {self.key}\n"
        if client_ca:
            tls += f"    client_ca_file: {client_ca}\n"
        self.fsd = h.Fsd(tls + extra + VIEWS)
        self.stats = h.stats_port(self.fsd)
        self.fsd.wait_for_log(r'msg="tls on the grpc port"')

    def channel(self, ca=None, cert=None, key=None):
        c = secure_channel(self.fsd.address, ca or self.pki.ca, cert, key)
        self.channels.append(c)
        return c

    def refused(self, channel):
        with self.assertRaises(grpc.RpcError) as cm:
            get(channel, timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def https(self, path):
        """GET `path` from the stats port, over TLS (it speaks nothing else now)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.stats, timeout=5,
            context=ssl.create_default_context(cafile=self.pki.ca))
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def scrape(self):
        status, body = self.https("/metrics")
        self.assertEqual(status, 200)
        return h.Metrics(body.decode())

    def handshakes(self):
        m = self.scrape()
        return (m.get("fsd_tls_handshakes_total", result="ok"),
                m.get("fsd_tls_handshakes_total", result="failed"))


class TlsTest(TlsTestCase):
    def test_tls_only_and_the_server_is_who_it_says(self):
        self.start()
        r = get(self.channel())
        self.assertEqual(r.entities, 1)
        ok, failed = self.handshakes()
        self.assertGreaterEqual(ok, 1)
        # cleartext HTTP/2 on a TLS port: refused, and fsd says why
        plain = grpc.insecure_channel(self.fsd.address)
        self.channels.append(plain)
        self.refused(plain)
        self.fsd.wait_for_log(r'msg="tls handshake failed" .*error="[^"]+"')
        # a client that trusts another CA refuses fsd's certificate (the alert is logged)
        self.refused(self.channel(ca=self.other.ca))
        self.assertGreater(self.handshakes()[1], failed)
        # ALPN: gRPC clients ask for h2, and get it
        self.assertTrue(server_certificate_serial(self.fsd.port, self.pki.ca))
        # Feast's JSON API over HTTPS: ALPN http/1.1 (what Python's clients offer), same port
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        ctx.set_alpn_protocols(["http/1.1"])
        conn = http.client.HTTPSConnection("localhost", self.fsd.port, timeout=5, context=ctx)
        try:
            conn.request("POST", "/get-online-features",
                         body=b'{"entities": {"id": [1]}, "features": ["v:f"]}',
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 200, body)
            self.assertEqual(conn.sock.selected_alpn_protocol(), "http/1.1")
            self.assertEqual(body["metadata"]["feature_names"], ["id", "f"])
            conn.request("GET", "/health")  # and the connection is kept
            self.assertEqual(conn.getresponse().status, 200)
        finally:
            conn.close()

    def test_the_stats_port_speaks_https_only(self):
        self.start()
        status, body = self.https("/healthz")
        self.assertEqual(status, 200, body)
        self.assertIn(b"fsd_tls_certificate_not_after_seconds", self.https("/metrics")[1])
        # plain HTTP gets no answer: the bytes are not a TLS ClientHello
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            h.http_request(self.stats, "/healthz", timeout=3)

    def test_sighup_rotates_the_certificate_and_keeps_open_connections(self):
        self.start()
        before = server_certificate_serial(self.fsd.port, self.pki.ca)
        open_channel = self.channel()
        self.assertEqual(get(open_channel).entities, 1)
        loads = self.scrape().get("fsd_tls_certificate_loads_total", result="ok")
        # a new certificate at the same paths
        cert, key = self.pki.issue("localhost-rotated", server=True)
        shutil.copy(cert, self.cert)
        shutil.copy(key, self.key)
        self.fsd.signal(signal.SIGHUP)
        self.fsd.wait_for_log(r'msg="reload: TLS certificate re-read"')
        after = server_certificate_serial(self.fsd.port, self.pki.ca)
        self.assertNotEqual(before, after)
        self.assertEqual(self.scrape().get("fsd_tls_certificate_loads_total",
                                                  result="ok"), loads + 1)
        # the connection opened before the rotation is still served
        self.assertEqual(get(open_channel).entities, 1)
        # a broken file on reload: the certificate in force stays
        with open(self.key, "w") as f:
            f.write("not a key\n")
        self.fsd.signal(signal.SIGHUP)
        self.fsd.wait_for_log(r'msg="reload: cannot read the TLS files; the old certificate '
                              r'stays" error="TLS: server.tls.key_file ')
        self.assertEqual(server_certificate_serial(self.fsd.port, self.pki.ca), after)
        self.assertEqual(get(self.channel()).entities, 1)
        self.assertEqual(self.scrape().get("fsd_tls_certificate_loads_total",
                                                  result="error"), 1)
        not_after = self.scrape().get("fsd_tls_certificate_not_after_seconds")
        self.assertGreater(not_after, time.time() + 86400)
        self.assertLess(not_after, time.time() + 3 * 86400)


class MutualTlsTest(TlsTestCase):
    def test_fsctl_speaks_tls_with_a_client_certificate(self):
        self.start(client_ca=self.pki.ca)
        cert, key = self.pki.issue("operator")
        fsctl = os.environ.get("FSCTL_BIN", "build/bin/fsctl")

        def run(*args):
            return subprocess.run([fsctl, "--addr", f"localhost:{self.fsd.port}", *args,
                                   "health"], capture_output=True, text=True, timeout=30)

        r = run("--tls-ca", self.pki.ca, "--tls-cert", cert, "--tls-key", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SERVING", r.stdout)
        # the server's certificate checked against the CA given
        r = run("--tls-ca", self.other.ca, "--tls-cert", cert, "--tls-key", key)
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS handshake with localhost failed", r.stderr)
        self.assertIn("certificate verify failed", r.stderr)
        # cleartext to a TLS port fails, and half the flags are a usage error
        self.assertEqual(run().returncode, 1)
        r = run("--tls-ca", self.pki.ca, "--tls-cert", cert)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--tls-cert and --tls-key go together", r.stderr)

    def test_clients_need_a_valid_certificate_of_the_client_ca(self):
        self.start(client_ca=self.pki.ca)
        cert, key = self.pki.issue("ranker")
        self.assertEqual(get(self.channel(cert=cert, key=key)).entities, 1)
        # no certificate
        self.refused(self.channel())
        self.fsd.wait_for_log(r'msg="tls handshake failed" .*error="peer did not return a '
                              r'certificate')
        # an expired one
        old_cert, old_key = self.pki.issue("expired", days=-1)
        time.sleep(0.2)  # the log's rate limit: ten refusals a second are written
        self.refused(self.channel(cert=old_cert, key=old_key))
        self.fsd.wait_for_log(r'msg="tls handshake failed" .*certificate has expired')
        # one of another CA
        stranger_cert, stranger_key = self.other.issue("stranger")
        time.sleep(0.2)
        self.refused(self.channel(cert=stranger_cert, key=stranger_key))
        self.fsd.wait_for_log(r'msg="tls handshake failed" .*unable to get local issuer '
                              r'certificate')
        self.assertGreaterEqual(self.handshakes()[1], 3)


def call(channel, method, request, response_type, token=None):
    rpc = channel.unary_unary(h.SERVICE + method,
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=response_type.FromString)
    metadata = (("authorization", "Bearer " + token),) if token else None
    return rpc(request, timeout=5, metadata=metadata)


def push(channel, token=None):
    row = h.row({"id": 1}, h.now_us(), {"f": (5, "int64_value")})
    return call(channel, "PushRows", pb.PushRowsRequest(view="v", rows=[row]),
                pb.PushRowsResponse, token)


class CertificateRolesTest(TlsTestCase):
    ADMIN_TOKEN = "a-token-of-at-least-128-bits-9f2c1e7a"

    def test_a_client_certificate_stands_for_a_token(self):
        tokens = os.path.join(self.tmp, "tokens")
        digest = hashlib.sha256(self.ADMIN_TOKEN.encode()).hexdigest()
        with open(tokens, "w") as f:
            f.write("ranker read * cert:CN=ranker\n"
                    "loader write v cert:CN=batch loader\n"  # a subject with a space
                    f"ops admin * sha256:{digest}\n")
        os.chmod(tokens, 0o600)
        self.start(client_ca=self.pki.ca, extra=f"  auth:\n    tokens_file: {tokens}\n")
        ranker = self.channel(*(None,) + self.pki.issue("ranker"))
        loader = self.channel(*(None,) + self.pki.issue("batch loader"))
        unlisted = self.channel(*(None,) + self.pki.issue("someone"))
        # the certificate's line gives the role
        self.assertEqual(get(ranker).entities, 1)
        with self.assertRaises(grpc.RpcError) as cm:
            push(ranker)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("token ranker has role read", cm.exception.details())
        r = push(loader)
        self.assertEqual(r.inserted + r.replaced, 1)
        # a valid certificate no line names is not enough
        time.sleep(0.2)  # the log's rate limit: ten refusals a second are written
        with self.assertRaises(grpc.RpcError) as cm:
            get(unlisted)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("client certificate CN=someone is not in the tokens file",
                      cm.exception.details())
        self.fsd.wait_for_log(r'msg="call refused" method=GetFeatures reason=unknown_token')
        # a token, when sent, decides
        r = push(ranker, token=self.ADMIN_TOKEN)
        self.assertEqual(r.inserted + r.replaced, 1)


class BadFilesTest(TlsTestCase):
    def fails_to_start(self, tls, expected):
        with self.assertRaises(RuntimeError) as cm:
            h.Fsd(tls + VIEWS, timeout_s=10)
        self.assertIn(expected, str(cm.exception))

    def test_fsd_does_not_start_without_a_usable_certificate(self):
        missing = os.path.join(self.tmp, "missing.pem")
        self.fails_to_start(f"  tls:\n    cert_file: {missing}\n    key_file: {self.key}\n",
                            f"server.tls.cert_file {missing}")
        _, other_key = self.pki.issue("someone-else", server=True)
        self.fails_to_start(f"  tls:\n    cert_file: {self.cert}\n    key_file: {other_key}\n",
                            f"server.tls.key_file {other_key}")
        self.fails_to_start(f"  tls:\n    cert_file: {self.cert}\n",
                            "server.tls.cert_file needs key_file")


if __name__ == "__main__":
    unittest.main(verbosity=2)
