"""A throwaway PostgreSQL for integration tests, as tests/materializer/snapshot/pg_server.c
starts one for the C tests: initdb in a temporary folder, postgres on a free loopback port, as
the unprivileged user PG_USER when run as root; superuser "fsd", database "fsd_test". It can
also be frozen (SIGSTOP) and thawed, whole or one backend, to test what a hung server does."""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

PG_USER = "fsdtest"  # PostgreSQL refuses root; tests/materializer/snapshot/pg_server.c uses the same


class Postgres:
    """A throwaway PostgreSQL: initdb in a temporary folder, postgres on a free loopback port,
    as an unprivileged user when run as root; superuser "fsd", database "fsd_test"."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not found:
            raise unittest.SkipTest("no PostgreSQL server in /usr/lib/postgresql")
        bindir = os.path.dirname(found[-1])
        self.dir = tempfile.mkdtemp(prefix="fsd-pg-it-")
        demote = None
        if os.geteuid() == 0:
            if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                PG_USER], check=True)
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

            def demote():
                os.setgid(pw.pw_gid)
                os.setgroups([])
                os.setuid(pw.pw_uid)
        data = os.path.join(self.dir, "data")
        subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "fsd", "--auth=trust",
                        "--no-sync"], check=True, capture_output=True, preexec_fn=demote)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = open(os.path.join(self.dir, "postgres.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "postgres"), "-D", data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=demote)
        self.dsn = f"host=127.0.0.1 port={self.port} dbname=fsd_test user=fsd"
        self.frozen = []
        deadline = time.monotonic() + 60
        while self.psql("SELECT 1", db="postgres", check=False).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("postgres did not start")
            time.sleep(0.1)
        self.psql("CREATE DATABASE fsd_test", db="postgres")

    def psql(self, sql, db="fsd_test", check=True, timeout=60):
        return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                               "127.0.0.1", "-p", str(self.port), "-U", "fsd", "-d", db, "-c",
                               sql], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def backends(self, where):
        """Pids of the backends pg_stat_activity shows matching the SQL condition `where`."""
        out = self.psql(f"SELECT pid FROM pg_stat_activity WHERE {where}").stdout
        return [int(line) for line in out.split()]

    def processes(self):
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        pids = [self.proc.pid]
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
        return pids

    def freeze(self, pids):
        """SIGSTOP: the processes stop; the kernel still accepts and acknowledges for them."""
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            self.frozen.append(pid)

    def thaw(self):
        for pid in self.frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def stop(self):
        self.thaw()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
