#!/usr/bin/python3
"""fsd beside Redis on the same data and the same load, in one run on one machine.

    /usr/bin/python3 loadtest/redis_compare.py            # 1M entities, ~4-6 minutes
    /usr/bin/python3 loadtest/redis_compare.py --quick    # 100k entities, under a minute

Three servers hold the same entities x 10 features (loadtest/bench_view.yaml: d0..d7 double,
count int64, label string):
  fsd           build/bin/fsd, one worker, view "bench"; a batch is one GetFeatures call
  redis-hash    redis-server, one hash per entity (HSET e:<id>); a batch is B pipelined HMGETs
  redis-packed  redis-server, one protobuf row per entity (SET p:<id>); a batch is one MGET
Each Redis layout has its own redis-server (persistence off, its own temporary directory), so
neither pays for the other's keys. build/bin/grpc_load fills all three (--fill) and loads
them with the same connections and calls in flight. Servers run on CPU 0 and the generator
on CPU 1 when there are two CPUs (taskset); --no-pin leaves placement to the kernel.

For every batch size (1, 10, 100, 1000; --quick: 1, 100) and target:
  peak     closed loop: the highest throughput, whatever the latency;
  common   open loop at one rate shared by all targets: half the lowest peak, rounded down
           (latency from each call's intended send time);
  search   open loop, bisecting between the common rate and the peak for the highest rate
           with p99 < 1 ms (median of the runs), answered in full and without errors;
and around every generator run, from the server process alone: CPU seconds (utime + stime
of all its threads, /proc/PID/stat) and entities it looked up (fsd's
fsd_view_lookups_total, Redis's keyspace_hits). Memory per feature value is the growth of
fsd's jemalloc allocated bytes, or Redis's INFO used_memory, while the data was filled,
divided by entities x 10.

Writes into --out (default build/redis-compare): report.md (also printed at the end),
results.csv (every measured point and run), memory.csv, latency_vs_throughput.png and
percentiles.png (gnuplot) with their data and script. loadtest/README.md explains how to read
them. Exit status: 0 when every run worked, 1 when any failed (a server died, the generator
exited non-zero, reported errors, or a server missed a key), 2 for bad usage; never because
of a figure: figures vary on a shared machine, and the targets are reported, not asserted.
Everything listens on 127.0.0.1 and is stopped on exit, however the script exits.
"""
import argparse
import datetime
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_view import bench_view_yaml  # noqa: E402
from redis_compare_report import (  # noqa: E402
    CSV_FIELDS, FEATURES_PER_ENTITY, HEADLINE_BATCH, MEMORY_FIELDS, REDIS_TARGETS, TARGETS,
    RateSearch, Results, fmt_count, fmt_us, machine_busy_ticks, parse_load_output,
    parse_redis_info, point_passes, proc_cpu_ticks, prometheus_value, render_report,
    round_rate, write_csv, write_plots)

# ---- what is compared -----------------------------------------------------------------------

# Connections x calls in flight per connection for the closed loop, the same for every target:
# what reached fsd's peak on a 2-core machine with one worker (loadtest/serving_bench.sh).
# The open loop uses the same connections; its in-flight cap only bounds a backlog.
CLOSED_SHAPE = {1: (4, 32), 10: (4, 16), 100: (2, 4), 1000: (2, 4)}
OPEN_INFLIGHT = 64

COMMON_RATE_FRACTION = 0.5  # of the lowest closed-loop peak among the targets
FSD_TIMEOUT_MS = 10000  # grpc-timeout per call: queueing is measured, not refused

FULL = {"entities": 1000000, "duration": 2.0, "warmup": 0.5, "runs": 3, "other_runs": 1,
        "batches": (1, 10, 100, 1000), "search_steps": 5, "budget_s": 900}
QUICK = {"entities": 100000, "duration": 0.5, "warmup": 0.2, "runs": 1, "other_runs": 1,
         "batches": (1, 100), "search_steps": 2, "budget_s": 90}

# The benchmark view (loadtest/bench_view.yaml) with no source: grpc_load --fill pushes it.
FSD_CONFIG = """server:
  grpc_bind: 127.0.0.1
  grpc_port: 0
  stats_bind: 127.0.0.1
  stats_port: 0
  workers: 1
  log_level: info
  # closed-loop calls queue for a while at peak load: measure that, do not refuse them
  default_budget_us: 10000000
views:
""" + bench_view_yaml()


class Failure(Exception):
    """A run that could not be measured: the comparison goes on, the exit status will be 1."""


# ---- servers --------------------------------------------------------------------------------

def free_port():
    """A TCP port free on 127.0.0.1 right now (the server is started on it at once; a clash
    makes it fail to start, which is reported)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis: connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError("redis: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"redis: unexpected reply {line!r}")


def redis_command(port, *args, timeout_s=10.0):
    """One command to the redis-server on 127.0.0.1:port; returns its decoded reply."""
    req = b"*%d\r\n" % len(args)
    for a in args:
        a = str(a).encode()
        req += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(req)
        with s.makefile("rb") as f:
            return _read_reply(f)


class Server:
    """A server process we started: its pid, CPU time and a stop that always works."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # its own session: a Ctrl-C in the terminal reaches this script, which then stops it
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return proc_cpu_ticks(f.read()) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self._log.close()


class RedisServer(Server):
    def __init__(self, name, tmp, pin):
        self.port = free_port()
        workdir = os.path.join(tmp, name)
        os.mkdir(workdir)
        argv = pin + ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                      "--save", "", "--appendonly", "no", "--dir", workdir,
                      "--daemonize", "no", "--protected-mode", "yes"]
        super().__init__(name, argv, os.path.join(workdir, "redis.log"), cwd=workdir)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_command(self.port, "PING", timeout_s=1) == "PONG":
                    break
            except (OSError, RuntimeError):
                pass
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: redis-server did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.addr = f"127.0.0.1:{self.port}"
        self.version = self.info("server").get("redis_version", "?")

    def info(self, section):
        return parse_redis_info(redis_command(self.port, "INFO", section))

    def lookups(self):
        """(entities looked up, of which missing) since the server started."""
        s = self.info("stats")
        hits, misses = int(s["keyspace_hits"]), int(s["keyspace_misses"])
        return hits + misses, misses

    def memory(self):
        m = self.info("memory")
        return {"allocated": int(m["used_memory"]), "rss": int(m["used_memory_rss"])}

    def entities(self):
        return redis_command(self.port, "DBSIZE")


class FsdServer(Server):
    READY = re.compile(r'msg="fsd ready".* grpc=[^ ]*:(\d+) stats=[^ ]*:(\d+)')

    def __init__(self, fsd_bin, tmp, pin):
        config = os.path.join(tmp, "fsd.yaml")
        with open(config, "w") as f:
            f.write(FSD_CONFIG)
        super().__init__("fsd", pin + [fsd_bin, "--config", config], os.path.join(tmp, "fsd.log"))
        deadline = time.monotonic() + 20
        while True:
            with open(self.log_path, errors="replace") as f:
                m = self.READY.search(f.read())
            if m:
                break
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fsd did not become ready:\n{self.log_tail()}")
            time.sleep(0.05)
        self.addr = f"127.0.0.1:{m.group(1)}"
        self.stats_port = int(m.group(2))
        self.version = subprocess.run([fsd_bin, "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.split()[-1]

    def metrics(self):
        conn = socket.create_connection(("127.0.0.1", self.stats_port), timeout=10)
        with conn:
            conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("fsd /metrics: " + head.split(b"\r\n", 1)[0].decode())
        return body.decode()

    def lookups(self):
        text = self.metrics()
        looked = prometheus_value(text, "fsd_view_lookups_total", view="bench") or 0
        missing = prometheus_value(text, "fsd_view_not_found_total", view="bench") or 0
        return int(looked), int(missing)

    def memory(self):
        text = self.metrics()
        return {"allocated": int(prometheus_value(text, "fsd_jemalloc_allocated_bytes")),
                "rss": int(prometheus_value(text, "fsd_process_resident_memory_bytes")),
                "view": int(prometheus_value(text, "fsd_view_memory_bytes", view="bench") or 0)}

    def entities(self):
        return int(prometheus_value(self.metrics(), "fsd_view_rows", view="bench") or 0)


# ---- the comparison -------------------------------------------------------------------------

def _read(path):
    with open(path) as f:
        return f.read()


def _cpu_model():
    try:
        for line in _read("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


class Compare:
    """Runs the plan: servers, fills, then per batch the peaks, the common rate and the rate
    searches, filling a Results."""

    def __init__(self, args, settings):
        self.args = args
        self.s = settings
        self.out = args.out
        self.grpc_load = os.path.join(args.build, "bin", "grpc_load")
        self.fsd_bin = os.path.join(args.build, "bin", "fsd")
        self.servers = {}
        self.res = Results(args.targets, settings)
        self.res.quick = args.quick
        self.res.cpu_model = _cpu_model()
        self.res.started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        self.started = time.monotonic()
        self.deadline = self.started + settings["budget_s"]
        cpus = sorted(os.sched_getaffinity(0))
        pinned = not args.no_pin and len(cpus) >= 2 and shutil.which("taskset") is not None
        self.server_pin = ["taskset", "-c", str(cpus[0])] if pinned else []
        self.gen_pin = ["taskset", "-c", str(cpus[1])] if pinned else []
        self.res.placement = (f"servers on CPU {cpus[0]}, grpc_load on CPU {cpus[1]} (taskset)"
                              if pinned else "not pinned (the kernel places every process)")

    def log(self, msg):
        print(f"[{time.monotonic() - self.started:5.0f}s] {msg}", file=sys.stderr, flush=True)

    def fail(self, msg):
        self.res.failures.append(msg)
        self.log("FAILED: " + msg)

    # -- setup --

    def check_binaries(self):
        """Exits (status 2) when something the comparison needs is missing."""
        for path in (self.grpc_load, self.fsd_bin):
            if not os.access(path, os.X_OK):
                sys.exit(f"redis_compare: no {path}; build first: "
                         "cmake -S . -B build && cmake --build build -j2")
        if any(t in REDIS_TARGETS for t in self.args.targets) and not shutil.which("redis-server"):
            sys.exit("redis_compare: no redis-server (Debian package redis-server; "
                     "bash scripts/setup.sh installs it)")
        usage = subprocess.run([self.grpc_load, "--help"], capture_output=True, text=True,
                               timeout=10).stdout
        self.has_target = "--target" in usage
        self.res.has_histogram = "--histogram-out" in usage
        if not self.has_target and any(t != "fsd" for t in self.args.targets):
            sys.exit("redis_compare: this grpc_load has no --target (Redis targets); "
                     "rebuild it, or compare --targets fsd only")

    def start_servers(self, tmp):
        for t in self.args.targets:
            if t == "fsd":
                srv = FsdServer(self.fsd_bin, tmp, self.server_pin)
                self.res.versions["fsd"] = srv.version
            else:
                srv = RedisServer(t, tmp, self.server_pin)
                self.res.versions["redis"] = srv.version
            self.servers[t] = srv
            self.log(f"{t} listening on {srv.addr} (pid {srv.pid})")

    def stop_servers(self):
        for srv in self.servers.values():
            try:
                srv.stop()
            except Exception as e:  # keep stopping the others
                print(f"redis_compare: stopping {srv.name}: {e}", file=sys.stderr)

    def check_alive(self):
        for srv in self.servers.values():
            if not srv.alive():
                code = srv.proc.returncode
                print(f"redis_compare: {srv.name}'s log ends:\n{srv.log_tail()}",
                      file=sys.stderr)
                raise Failure(f"{srv.name} died ("
                              + (f"signal {-code}" if code < 0 else f"exit status {code}")
                              + "): the comparison stopped there")

    def _settled_memory(self, srv):
        """Memory once it stops moving (fsd frees replaced snapshots and connection buffers
        shortly after the last push); at most 5 s."""
        prev = srv.memory()
        for _ in range(20):
            time.sleep(0.25)
            cur = srv.memory()
            if abs(cur["allocated"] - prev["allocated"]) <= 0.001 * max(prev["allocated"], 1):
                return cur
            prev = cur
        return prev

    def _grpc_load(self, target):
        argv = self.gen_pin + [self.grpc_load]
        if self.has_target:
            argv += ["--target", target]
        return argv

    def fill(self):
        n = self.s["entities"]
        for t in self.args.targets:
            srv = self.servers[t]
            before = self._settled_memory(srv)
            argv = self._grpc_load(t) + ["--addr", srv.addr, "--fill", str(n)]
            t0 = time.monotonic()
            r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            fill_s = time.monotonic() - t0
            self.check_alive()
            if r.returncode != 0:
                raise Failure(f"{t}: grpc_load --fill exited {r.returncode}: "
                              f"{(r.stderr or r.stdout).strip()[-2000:]}")
            have = srv.entities()
            if have != n:
                raise Failure(f"{t}: filled {n} entities but the server holds {have}")
            after = self._settled_memory(srv)
            values = n * FEATURES_PER_ENTITY
            mem = {"entities": n, "values": values,
                   "allocated_bytes": after["allocated"] - before["allocated"],
                   "rss_bytes": after["rss"] - before["rss"], "fill_s": fill_s}
            mem["bytes_per_value"] = mem["allocated_bytes"] / values
            mem["rss_bytes_per_value"] = mem["rss_bytes"] / values
            if "view" in after:
                mem["view_bytes"] = after["view"]
                mem["view_bytes_per_value"] = after["view"] / values
            self.res.memory[t] = mem
            self.log(f"{t}: filled {n:,} entities in {fill_s:.1f} s, "
                     f"{mem['bytes_per_value']:.1f} bytes per feature value")

    # -- one generator run --

    def measure(self, target, batch, kind, rate=None, runs=1, histogram=None):
        """Runs grpc_load once (`runs` measured runs) and returns the median point, with the
        server's CPU time and lookups around it; None when the run failed (recorded)."""
        srv = self.servers[target]
        closed = rate is None
        conns, inflight = CLOSED_SHAPE[batch]
        if not closed:
            inflight = OPEN_INFLIGHT
        argv = self._grpc_load(target) + [
            "--addr", srv.addr, "--entities", str(self.s["entities"]), "--batch", str(batch),
            "--connections", str(conns), "--threads", "1", "--inflight", str(inflight),
            "--duration", str(self.s["duration"]), "--warmup", str(self.s["warmup"]),
            "--runs", str(runs), "--json", "--verbose"]
        if not closed:
            argv += ["--rate", str(rate)]
        if target == "fsd":
            argv += ["--timeout", str(FSD_TIMEOUT_MS)]
        if histogram and self.res.has_histogram:
            argv += ["--histogram-out", histogram]
        timeout_s = runs * (self.s["duration"] + self.s["warmup"] + 15) + 30
        what = f"batch {batch} {target} {kind}" + ("" if closed else f" at {rate} req/s")

        looked0, missing0 = srv.lookups()
        busy0 = machine_busy_ticks(_read("/proc/stat"))
        cpu0 = srv.cpu_s()
        gen0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.check_alive()
            self.fail(f"{what}: grpc_load did not finish in {timeout_s:.0f} s (killed)")
            return None
        wall = time.monotonic() - t0
        self.check_alive()
        cpu = srv.cpu_s() - cpu0
        gen1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy = (machine_busy_ticks(_read("/proc/stat")) - busy0) / os.sysconf("SC_CLK_TCK")
        looked1, missing1 = srv.lookups()
        gen_cpu = (gen1.ru_utime - gen0.ru_utime) + (gen1.ru_stime - gen0.ru_stime)

        try:
            run_objs, med = parse_load_output(r.stdout, r.stderr)
        except ValueError:
            run_objs, med = [], None
        if r.returncode != 0 or med is None:
            self.fail(f"{what}: grpc_load exited {r.returncode}: "
                      f"{(r.stderr.strip() or r.stdout.strip())[-1500:]}")
            if med is None:
                return None
        if med.get("target", target) != target:
            self.fail(f"{what}: grpc_load measured target {med.get('target')}")
        if r.returncode == 0 and med["errors"] > 0:
            self.fail(f"{what}: {med['errors']} calls failed: {r.stderr.strip()[-1500:]}")
        served = looked1 - looked0
        missing = missing1 - missing0
        if missing > 0:
            self.fail(f"{what}: the server missed {missing} of {served} entities looked up "
                      "(every id asked for was filled)")
        values = served * FEATURES_PER_ENTITY
        point = {
            "target": target, "batch": batch, "kind": kind,
            "mode": "closed" if closed else "open", "rate": rate, "run": "median",
            "runs": runs, "requests": med.get("requests"),
            "connections": conns, "inflight": inflight, "duration_s": self.s["duration"],
            "exit_status": r.returncode,
            "server_cpu_s": cpu, "wall_s": wall, "server_cores": cpu / wall,
            "server_values": values, "server_misses": missing,
            "cpu_s_per_m_values": cpu / values * 1e6 if values > 0 else None,
            "values_per_server_core": values / cpu if cpu > 0 else None,
            "generator_cpu_s": gen_cpu, "generator_cores": gen_cpu / wall,
            "other_cpu_pct": max(0.0, (busy - cpu - gen_cpu) / (wall * os.cpu_count()) * 100),
        }
        for k in ("requests_per_s", "values_per_s", "p50_us", "p99_us", "p999_us", "max_us",
                  "errors"):
            point[k] = med[k]
        for k in ("late_sends", "backlog", "sent_p50_us", "sent_p99_us", "sent_p999_us"):
            point[k] = med.get(k)
        point["p99_ok"] = None if closed else point_passes(rate, point)
        self.res.points.append(point)
        if len(run_objs) > 1:
            for i, o in enumerate(run_objs, 1):
                row = {k: point[k] for k in ("target", "batch", "kind", "mode", "rate",
                                             "connections", "inflight", "duration_s")}
                row.update({k: o.get(k) for k in ("requests", "requests_per_s", "values_per_s",
                                                   "p50_us", "p99_us", "p999_us", "max_us",
                                                   "errors", "late_sends", "backlog",
                                                   "sent_p50_us", "sent_p99_us",
                                                   "sent_p999_us")})
                row.update({"run": i, "runs": 1})
                self.res.points.append(row)
        self.log(f"{what}: {fmt_count(point['values_per_s'])} values/s, p50 "
                 f"{fmt_us(point['p50_us'])} p99 {fmt_us(point['p99_us'])} us, server "
                 f"{point['server_cores']:.2f} cores, generator {point['generator_cores']:.2f}"
                 + ("" if closed else (", p99 < 1 ms" if point["p99_ok"] else ", missed")))
        return point

    # -- the plan --

    def _batch(self, batch):
        res = self.res
        runs = self.s["runs"] if batch == HEADLINE_BATCH else self.s["other_runs"]
        for t in self.args.targets:
            res.peaks[(t, batch)] = self.measure(t, batch, "peak", runs=runs)
        peaks = [res.peaks[(t, batch)]["requests_per_s"] for t in self.args.targets
                 if res.peaks[(t, batch)] is not None]
        if not peaks or min(peaks) <= 0:
            return
        common = round_rate(COMMON_RATE_FRACTION * min(peaks))
        res.common_rate[batch] = common
        at = {}  # (target, rate) -> point
        for t in self.args.targets:
            hist = (os.path.join(self.out, "plot_data", f"percentiles_{t}.csv")
                    if batch == HEADLINE_BATCH else None)
            p = res.commons[(t, batch)] = self.measure(t, batch, "common", rate=common,
                                                       runs=runs, histogram=hist)
            if p is not None:
                at[(t, common)] = p
        searches = {}
        for t in self.args.targets:
            if res.peaks[(t, batch)] is None:
                continue
            s = RateSearch(res.peaks[(t, batch)]["requests_per_s"], self.s["search_steps"])
            s.record(common, (t, common) in at and at[(t, common)]["p99_ok"])
            searches[t] = res.searched[(t, batch)] = s
        # one step per target in turn, so a burst of other work on the machine does not land
        # on one target's search only
        active = list(searches)
        while active:
            if time.monotonic() > self.deadline:
                res.notes.append(f"the comparison ran past its time budget "
                                 f"({self.s['budget_s']} s): the rate searches of batch "
                                 f"{batch} stopped early")
                break
            for t in list(active):
                rate = searches[t].next_rate()
                if rate is None:
                    active.remove(t)
                    continue
                p = self.measure(t, batch, "search", rate=rate, runs=runs)
                searches[t].record(rate, p is not None and p["p99_ok"])
                if p is not None:
                    at[(t, rate)] = p
        for t, s in searches.items():
            best = s.best()
            res.best[(t, batch)] = at.get((t, best)) if best is not None else None

    def run(self):
        busy0 = machine_busy_ticks(_read("/proc/stat"))
        own0 = sum(s.cpu_s() for s in self.servers.values())
        gen0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        for batch in self.s["batches"]:
            self._batch(batch)
        wall = time.monotonic() - t0
        busy = (machine_busy_ticks(_read("/proc/stat")) - busy0) / os.sysconf("SC_CLK_TCK")
        own = sum(s.cpu_s() for s in self.servers.values()) - own0
        gen1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = (gen1.ru_utime - gen0.ru_utime) + (gen1.ru_stime - gen0.ru_stime)
        self.res.other_pct = max(0.0, (busy - own - gen) / (wall * os.cpu_count()) * 100)


# ---- main -----------------------------------------------------------------------------------

def _parse_args(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(
        prog="redis_compare.py",
        description="fsd beside Redis (hash and packed layouts) on the same data and load.",
        epilog="Writes report.md, results.csv, memory.csv, latency_vs_throughput.png and "
               "percentiles.png into --out; loadtest/README.md explains them.")
    p.add_argument("--quick", action="store_true",
                   help="100k entities, batches 1 and 100, short runs: a smoke run (< 1 min)")
    p.add_argument("--entities", type=int, help="entities in each store (default 1000000; "
                   "--quick 100000)")
    p.add_argument("--duration", type=float, help="measured seconds per run (default 2; "
                   "--quick 0.5)")
    p.add_argument("--runs", type=int, help=f"runs per point for batches of {HEADLINE_BATCH}, "
                   "the median is used (default 3; --quick 1); other batches run once")
    p.add_argument("--batches", help="comma-separated batch sizes from 1,10,100,1000 "
                   "(default all; --quick 1,100)")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help="comma-separated subset of " + ",".join(TARGETS) + " (default all)")
    p.add_argument("--build", default=os.path.join(repo, "build"),
                   help="where fsd and grpc_load were built (default build)")
    p.add_argument("--out", help="output directory (default BUILD/redis-compare)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the servers to one CPU and the generator to another")
    args = p.parse_args(argv)
    s = dict(QUICK if args.quick else FULL)
    if args.entities is not None:
        if not 1000 <= args.entities <= 50000000:
            p.error("--entities: 1000..50000000")
        s["entities"] = args.entities
    if args.duration is not None:
        if not 0.1 <= args.duration <= 60:
            p.error("--duration: 0.1..60 seconds")
        s["duration"] = args.duration
    if args.runs is not None:
        if not 1 <= args.runs <= 9:
            p.error("--runs: 1..9")
        s["runs"] = args.runs
    if args.batches:
        try:
            s["batches"] = tuple(int(b) for b in args.batches.split(","))
        except ValueError:
            p.error("--batches: comma-separated numbers")
        if not s["batches"] or any(b not in CLOSED_SHAPE for b in s["batches"]):
            p.error("--batches: from 1,10,100,1000")
    asked = args.targets.split(",")
    if not asked or any(t not in TARGETS for t in asked):
        p.error("--targets: from " + ",".join(TARGETS))
    args.targets = [t for t in TARGETS if t in asked]  # fsd first, ratios need its figures
    args.build = os.path.abspath(args.build)
    args.out = os.path.abspath(args.out or os.path.join(args.build, "redis-compare"))
    # a bound on the whole run, never reached on a working machine: it grows with longer or
    # more runs than the defaults
    base = QUICK if args.quick else FULL
    s["budget_s"] = int(s["budget_s"] * max(1.0, s["duration"] / base["duration"])
                        * max(1.0, s["runs"] / base["runs"]))
    return args, s


def main(argv=None):
    args, settings = _parse_args(sys.argv[1:] if argv is None else argv)
    data = os.path.join(args.out, "plot_data")
    os.makedirs(data, exist_ok=True)
    for stale in ("report.md", "results.csv", "memory.csv", "latency_vs_throughput.png",
                  "percentiles.png"):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))
    for f in os.listdir(data):
        os.remove(os.path.join(data, f))
    cmp = Compare(args, settings)
    cmp.check_binaries()
    res = cmp.res

    # Ctrl-C, SIGTERM (kill, a CI timeout) and a closed terminal all unwind to the finally
    # below, so the servers are stopped whichever came. SIGINT is set explicitly: a shell
    # starts background jobs with it ignored, and Python then leaves it so.
    def _interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fsd-redis-compare-") as tmp:
        try:
            cmp.start_servers(tmp)
            cmp.log(f"{res.placement}; {settings['entities']:,} entities")
            cmp.fill()
            cmp.run()
        except Failure as e:
            cmp.fail(str(e))
        except KeyboardInterrupt:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the stop
            cmp.stop_servers()
            print("redis_compare: interrupted; servers stopped", file=sys.stderr)
            return 130
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            cmp.fail(f"{type(e).__name__}: {e}")
        finally:
            cmp.stop_servers()
    res.wall_s = time.monotonic() - t0
    write_csv(os.path.join(args.out, "results.csv"), CSV_FIELDS, res.points)
    write_csv(os.path.join(args.out, "memory.csv"), MEMORY_FIELDS,
              [dict(target=t, **m) for t, m in res.memory.items()])
    try:
        note = write_plots(res, args.out)
    except (OSError, subprocess.SubprocessError) as e:  # plots are not worth the report
        note = f"no plots: {e}"
    if note:
        res.notes.append(note)
    report = render_report(res)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(f"redis_compare: {res.wall_s:.0f} s; output in {args.out}"
          + (f"; {len(res.failures)} failure(s)" if res.failures else ""), file=sys.stderr)
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
