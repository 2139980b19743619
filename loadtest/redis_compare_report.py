"""What loadtest/redis_compare.py measured, and how it is told: the rate search, the parsers of
what the servers and grpc_load print, report.md, the CSV files and the gnuplot plots.

Nothing here starts a process but gnuplot, so tests/loadtest/test_redis_compare.py checks it
on fixed inputs.
"""
import csv
import json
import math
import os
import re
import shutil
import subprocess

TARGETS = ("fsd", "redis-hash", "redis-packed")
REDIS_TARGETS = ("redis-hash", "redis-packed")
FEATURES_PER_ENTITY = 10
P99_LIMIT_US = 1000.0
HEADLINE_BATCH = 100  # the batch of the targets, the percentile plot and the most runs
ACHIEVED_FRACTION = 0.95  # an open-loop point must answer this share of its rate in time
GENERATOR_BOUND_CORES = 0.9  # a generator this busy may have set the pace, not the server
# the targets for batches of HEADLINE_BATCH: fsd's values/s per server core over the
# better Redis layout's, and fsd's bytes per value over each layout's
TARGET_PER_CORE = 2.0
TARGET_MEMORY = (("redis-hash", 0.4), ("redis-packed", 0.75))


class Results:
    """Everything one comparison measured; the report, the CSV files and the plots are made
    from this alone. Points are dicts (CSV_FIELDS); tables are keyed by (target, batch)."""

    def __init__(self, targets, settings):
        self.targets = list(targets)
        self.settings = settings  # entities, duration, warmup, runs, other_runs, batches
        self.quick = False
        self.versions = {}  # "fsd", "redis" -> version
        self.placement = ""  # where the processes ran
        self.cpu_model = ""
        self.started = ""  # date and time, for the report's first line
        self.wall_s = 0.0
        self.other_pct = None  # CPU share other processes used while measuring
        self.points = []  # every measured point and run, in order
        self.peaks = {}  # closed loop
        self.commons = {}  # open loop at common_rate[batch]
        self.best = {}  # the point at the highest rate with p99 < 1 ms, or None
        self.searched = {}  # RateSearch
        self.common_rate = {}  # batch -> requests/s
        self.memory = {}  # target -> MEMORY_FIELDS
        self.notes = []
        self.failures = []
        self.has_histogram = True

# ---- parsing ------------------------------------------------------------------------------

def median(values):
    """The median of a non-empty list of numbers."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def parse_redis_info(text):
    """INFO's "field:value" lines as a dict of strings (sections and blank lines skipped)."""
    info = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            info[key] = value
    return info


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prometheus_value(text, name, **labels):
    """The sum of the samples of metric `name` whose labels include `labels`; None when the
    text has no such sample."""
    total = None
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total = (total or 0.0) + float(m.group(3))
    return total


def proc_cpu_ticks(stat_text):
    """utime + stime, in clock ticks, of every thread of the process /proc/PID/stat describes.
    The command name (field 2) may hold spaces and parentheses: count from the last ")"."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def machine_busy_ticks(proc_stat_text):
    """Busy clock ticks of all CPUs together (user, nice, system, irq, softirq, steal)."""
    for line in proc_stat_text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)
    raise ValueError("no cpu line in /proc/stat")


def parse_load_output(stdout, stderr=""):
    """grpc_load --json --verbose prints one JSON object per run, then one with each figure's
    median (counts summed). Returns (runs, median); runs is empty when it printed only the
    median. The per-run objects are looked for on stderr too, where --help says they go."""
    objs = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if not objs:
        raise ValueError("grpc_load printed no JSON result")
    runs = objs[:-1]
    if not runs:
        runs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return runs, objs[-1]


def parse_histogram_csv(text):
    """--histogram-out's "percentile,latency_us" lines as a list of float pairs (a header or
    anything else that is not two numbers is skipped)."""
    rows = []
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) != 2:
            continue
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return rows


# ---- the search for the highest rate with p99 < 1 ms ------------------------------------------

def round_rate(rate):
    """A request rate rounded down to two significant digits (12,345 -> 12,000), at least 1:
    rates people can read and repeat."""
    if rate < 1:
        return 1
    digits = int(math.floor(math.log10(rate))) - 1
    step = 10 ** max(digits, 0)
    return int(rate // step * step)


def point_passes(rate, point):
    """An open-loop point meets the latency target: p99 under 1 ms, no errors, and the server
    answered (nearly) every scheduled call within the run."""
    return (point is not None and point["errors"] == 0 and point["p99_us"] < P99_LIMIT_US
            and point["requests_per_s"] >= ACHIEVED_FRACTION * rate)


class RateSearch:
    """Bisection for the highest open-loop rate that passes, below a closed-loop peak.

    The peak bounds the answer: a server does not answer more calls on a schedule than it
    does flat out, so the peak counts as failing. On a noisy machine a rate can fail below one
    that passed; the answer is then the highest pass *below the lowest failure*, so one lucky
    run cannot make a rate the server does not sustain the answer. Each next probe is the
    middle of (that pass, the lowest failure); the search ends after `steps` probes or when
    the interval is narrower than `resolution` x peak."""

    def __init__(self, peak_rps, steps, resolution=0.04):
        self.peak = float(peak_rps)
        self.steps_left = steps
        self.resolution = resolution
        self.tried = {}  # rate -> passed

    def record(self, rate, passed):
        self.tried[rate] = bool(passed)

    def _bounds(self):
        hi = min([self.peak] + [r for r, ok in self.tried.items() if not ok])
        lo = max([0.0] + [r for r, ok in self.tried.items() if ok and r < hi])
        return lo, hi

    def next_rate(self):
        """The next rate to measure, or None when the search is over."""
        if self.steps_left <= 0:
            return None
        lo, hi = self._bounds()
        if hi - lo < self.resolution * self.peak:
            return None
        rate = round_rate((lo + hi) / 2)
        if rate <= lo or rate >= hi or rate in self.tried:
            return None
        self.steps_left -= 1
        return rate

    def best(self):
        """The highest rate that passed below every failure, or None if none did."""
        lo, _ = self._bounds()
        return lo if lo > 0 else None


# ---- formatting -----------------------------------------------------------------------------

def fmt_count(x):
    """15312000 -> "15.3M", 62560 -> "62.6k", 950 -> "950"."""
    if x is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            v = x / scale
            return f"{v:.3g}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_us(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fmt_num(x, digits=3):
    return "-" if x is None else f"{x:.{digits}g}"


def fmt_ratio(fsd, other):
    """fsd's figure over the Redis layout's, as "2.31x"; "-" when either is missing."""
    if fsd is None or other is None or other == 0:
        return "-"
    return f"{fsd / other:.2f}x"


# ---- output ---------------------------------------------------------------------------------

CSV_FIELDS = ["target", "batch", "kind", "mode", "rate", "run", "runs", "requests",
              "requests_per_s", "values_per_s", "p50_us", "p99_us", "p999_us", "max_us",
              "errors", "late_sends", "backlog", "sent_p50_us", "sent_p99_us",
              "sent_p999_us", "p99_ok", "connections", "inflight",
              "duration_s", "exit_status", "server_cpu_s", "wall_s", "server_cores",
              "server_values", "server_misses", "cpu_s_per_m_values", "values_per_server_core",
              "generator_cpu_s", "generator_cores", "other_cpu_pct"]
MEMORY_FIELDS = ["target", "entities", "values", "allocated_bytes", "bytes_per_value",
                 "rss_bytes", "rss_bytes_per_value", "view_bytes", "view_bytes_per_value",
                 "fill_s"]


def _csv_value(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def write_csv(path, fields, rows):
    """rows (dicts) as CSV with a header; missing fields are empty."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for row in rows:
            w.writerow([_csv_value(row.get(k)) for k in fields])


def _figure_rows(res, batch):
    """(label, {target: value}, formatter) for one batch's rows of the serving table."""
    tg = res.targets

    def of(table, key):
        return {t: (table.get((t, batch)) or {}).get(key) for t in tg}

    rate = res.common_rate.get(batch)
    at = f"at {rate:,} req/s" if rate else "at the common rate"
    return [
        ("peak values/s, closed loop", of(res.peaks, "values_per_s"), fmt_count),
        ("highest values/s with p99 < 1 ms", of(res.best, "values_per_s"), fmt_count),
        ("server cores used there", of(res.best, "server_cores"), lambda x: fmt_num(x, 2)),
        ("values/s per server core, p99 < 1 ms", of(res.best, "values_per_server_core"),
         fmt_count),
        (f"p50 us {at}", of(res.commons, "p50_us"), fmt_us),
        (f"p99 us {at}", of(res.commons, "p99_us"), fmt_us),
        (f"p999 us {at}", of(res.commons, "p999_us"), fmt_us),
        ("server CPU s per M values, at peak", of(res.peaks, "cpu_s_per_m_values"),
         lambda x: fmt_num(x, 3)),
    ]


def _table_header(res):
    cols = ["figure"]
    for t in res.targets:
        cols.append(t)
        if t != "fsd" and "fsd" in res.targets:
            cols.append(f"fsd/{t.split('-')[1]}")
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"
    return head, sep


def _table_row(res, label, values, fmt):
    cells = [label]
    for t in res.targets:
        cells.append(fmt(values.get(t)))
        if t != "fsd" and "fsd" in res.targets:
            cells.append(fmt_ratio(values.get("fsd"), values.get(t)))
    return "| " + " | ".join(cells) + " |"


def _verdict(ok, text):
    if ok is None:
        return f"- not measured: {text}"
    return f"- {'met' if ok else 'missed'}: {text}"


def targets_section(res):
    lines = ["## Targets (reported, not asserted)", ""]
    tg = res.targets
    if "fsd" not in tg or len(tg) == 1:
        return lines + ["- nothing to compare: the targets need fsd and a Redis layout", ""]
    b = HEADLINE_BATCH
    fsd = (res.best.get(("fsd", b)) or {}).get("values_per_server_core")
    redis = {t: (res.best.get((t, b)) or {}).get("values_per_server_core")
             for t in REDIS_TARGETS if t in tg}
    known = {t: v for t, v in redis.items() if v is not None}
    if known:
        better = max(known, key=known.get)
        ok = None if fsd is None else fsd >= TARGET_PER_CORE * known[better]
        lines.append(_verdict(ok, f"batches of {b}: fsd serves >= {TARGET_PER_CORE:g}x the "
                                  f"feature values/s per "
                                  f"server core of the better Redis layout at p99 < 1 ms "
                                  f"(fsd {fmt_count(fsd)}, {better} {fmt_count(known[better])}: "
                                  f"{fmt_ratio(fsd, known[better])})"))
    elif redis:
        lines.append(_verdict(None, f"batches of {b}: no Redis layout met p99 < 1 ms, so there "
                                    "is no per-core figure to compare"))
    mem = {t: (res.memory.get(t) or {}).get("bytes_per_value") for t in tg}
    for t, limit in TARGET_MEMORY:
        if t not in tg:
            continue
        f, r = mem.get("fsd"), mem.get(t)
        ok = None if f is None or r is None else f <= limit * r
        lines.append(_verdict(ok, f"memory per feature value <= {limit}x {t}'s "
                                  f"(fsd {fmt_num(f)} bytes, {t} {fmt_num(r)} bytes: "
                                  f"{fmt_ratio(f, r)})"))
    return lines + [""]


def render_report(res):
    """report.md: the serving and memory tables with fsd/Redis ratios, the targets' verdicts,
    notes and failures."""
    s = res.settings
    tg = res.targets
    lines = ["# fsd beside Redis", ""]
    versions = []
    if "fsd" in res.versions:
        versions.append(f"fsd {res.versions['fsd']} (1 worker)")
    if "redis" in res.versions:
        versions.append(f"Redis {res.versions['redis']} (persistence off, one redis-server per "
                        "layout)")
    runs = (f"batch {HEADLINE_BATCH}: median of {s['runs']} runs per point, other batches: "
            f"{s['other_runs']}" if s["runs"] != s["other_runs"] else
            f"median of {s['runs']} runs per point")
    lines += [
        f"{res.started}, {res.cpu_model}, {os.cpu_count()} CPUs; {', '.join(versions)}; "
        f"{res.placement}.",
        "",
        f"{s['entities']:,} entities x {FEATURES_PER_ENTITY} features (8 double, 1 int64, "
        f"1 string) in each; runs of {s['duration']:g} s after {s['warmup']:g} s of warm-up, "
        f"{runs}; whole comparison {res.wall_s:.0f} s"
        + (" (--quick: a smoke run, not figures to quote)" if res.quick else "") + ".",
        "",
    ]
    if res.other_pct is not None:
        busy = res.other_pct
        lines += [f"Other processes kept the CPUs {busy:.0f}% busy while this ran"
                  + (": expect lower throughput and longer tails than on an idle machine."
                     if busy >= 5 else "."), ""]
    fsd_cmp = "fsd" in tg and len(tg) > 1
    lines += ["## Serving", ""]
    if fsd_cmp:
        lines += ["`fsd/hash` and `fsd/packed` are fsd's figure over that Redis layout's: above 1 "
                  "fsd is ahead for throughput, below 1 it is ahead for latency, CPU and memory.",
                  ""]
    head, sep = _table_header(res)
    lines += ["| batch " + head, "|---:" + sep]
    for batch in s["batches"]:
        for label, values, fmt in _figure_rows(res, batch):
            lines.append(f"| {batch} " + _table_row(res, label, values, fmt))
    lines.append("")

    lines += ["## Memory", ""]
    head, sep = _table_header(res)
    lines += [head, sep]

    def mem(key):
        return {t: (res.memory.get(t) or {}).get(key) for t in tg}

    lines.append(_table_row(res, "bytes per feature value (fsd: allocator, Redis: used_memory)",
                            mem("bytes_per_value"), lambda x: fmt_num(x)))
    lines.append(_table_row(res, "resident (RSS) bytes per feature value",
                            mem("rss_bytes_per_value"), lambda x: fmt_num(x)))
    if "fsd" in tg:
        view = mem("view_bytes_per_value")
        lines.append(_table_row(res, "fsd view bytes per feature value (fsd_view_memory_bytes)",
                                {"fsd": view.get("fsd")}, lambda x: fmt_num(x)))
    lines.append(_table_row(res, "fill seconds (grpc_load --fill)", mem("fill_s"),
                            lambda x: "-" if x is None else f"{x:.1f}"))
    lines.append("")
    lines += targets_section(res)

    notes = list(res.notes)
    bound = []
    for table, what in ((res.peaks, "peak"), (res.best, "p99 < 1 ms"), (res.commons, "common")):
        for (t, b), p in table.items():
            if p is not None and p["generator_cores"] >= GENERATOR_BOUND_CORES:
                bound.append((b, t, what, p["generator_cores"]))
    if bound:
        notes.append("grpc_load used most of its core (>= "
                     f"{GENERATOR_BOUND_CORES:g}) in these points, so the generator, not the "
                     "server, may have set their pace: " +
                     "; ".join(f"batch {b} {t} {what} ({c:.2f})" for b, t, what, c in
                               sorted(bound)))
    for (t, b), srch in sorted(res.searched.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if res.best.get((t, b)) is None:
            lowest = min(srch.tried) if srch.tried else None
            p99 = next((p["p99_us"] for p in res.points if p["target"] == t and p["batch"] == b
                        and p["rate"] == lowest and p["run"] == "median"), None)
            tried = f" (lowest {lowest:,} req/s: p99 {fmt_us(p99)} us)" if lowest else ""
            notes.append(f"batch {b} {t}: no rate tried met p99 < 1 ms{tried}")
    few = sorted((b, t, p["requests"] // p["runs"]) for (t, b), p in res.commons.items()
                 if p is not None and p.get("requests") is not None
                 and p["requests"] < 1000 * p["runs"])
    if few:
        notes.append("fewer than 1,000 calls per run were measured at the common rate of " +
                     "; ".join(f"batch {b} {t} ({n})" for b, t, n in few) +
                     ": their p999 is the slowest call, and their p99 one of the few slowest")
    behind = [p for p in res.points if p["run"] == "median" and p["mode"] == "open"
              and (p.get("late_sends") or p.get("backlog"))]
    if behind:
        notes.append(f"{len(behind)} of the open-loop points fell behind their schedule "
                     "somewhere (late_sends, backlog in results.csv); their latencies still "
                     "count from the intended send times")
    if not res.has_histogram:
        notes.append("this grpc_load has no --histogram-out: no percentile curve")
    elif HEADLINE_BATCH not in res.settings["batches"]:
        notes.append(f"batches of {HEADLINE_BATCH} were not measured: no percentile curve")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if res.failures:
        lines += ["## Failed runs", ""] + [f"- {f}" for f in res.failures] + [""]
    lines += ["Every point is in results.csv, memory in memory.csv; plots: "
              "latency_vs_throughput.png, percentiles.png. loadtest/README.md explains each "
              "figure.", ""]
    return "\n".join(lines)


# ---- plots (gnuplot) ------------------------------------------------------------------------

def _read_text(path):
    with open(path) as f:
        return f.read()


COLORS = {"fsd": "#1f77b4", "redis-hash": "#d62728", "redis-packed": "#ff7f0e"}


def _gnuplot_terminal():
    for term in ("pngcairo", "png"):
        r = subprocess.run(["gnuplot", "-e", f"set terminal {term}"], capture_output=True,
                           timeout=30)
        if r.returncode == 0 and not r.stderr.strip():
            return term
    return None


def write_plots(res, out):
    """Writes the plots' data and gnuplot script into out/plot_data and draws
    out/latency_vs_throughput.png and out/percentiles.png; returns a note for the report when
    it could not, else None. The percentile curves are already in out/plot_data
    (grpc_load --histogram-out)."""
    data = os.path.join(out, "plot_data")
    os.makedirs(data, exist_ok=True)
    tg = res.targets
    batches = res.settings["batches"]
    for t in tg:
        for b in batches:
            open_pts = sorted((p for p in res.points if p["target"] == t and p["batch"] == b
                               and p["run"] == "median" and p["mode"] == "open"),
                              key=lambda p: p["rate"])
            with open(os.path.join(data, f"latency_{t}_{b}.dat"), "w") as f:
                f.write("# values_per_s p99_us p50_us rate\n")
                for p in open_pts:
                    f.write(f"{p['values_per_s']:.0f} {p['p99_us']:.1f} {p['p50_us']:.1f} "
                            f"{p['rate']}\n")
            peak = res.peaks.get((t, b))
            with open(os.path.join(data, f"peak_{t}_{b}.dat"), "w") as f:
                f.write("# values_per_s p99_us (closed loop)\n")
                if peak is not None:
                    f.write(f"{peak['values_per_s']:.0f} {peak['p99_us']:.1f}\n")
    if shutil.which("gnuplot") is None:
        return "no gnuplot (Debian package gnuplot-nox): no plots"
    term = _gnuplot_terminal()
    if term is None:
        return "gnuplot has no PNG terminal: no plots"
    font = ' font "sans,10"' if term == "pngcairo" else ""
    cols = 2 if len(batches) > 1 else 1
    rows = (len(batches) + cols - 1) // cols
    gp = [f"set terminal {term} size {560 * cols},{420 * rows}{font}",
          f"set output '{os.path.join(out, 'latency_vs_throughput.png')}'",
          "set datafile commentschars '#'",
          f"set multiplot layout {rows},{cols} title 'p99 latency vs feature values/s "
          "(open loop; hollow: closed-loop peak)'",
          "set logscale y", "set format y '%.0f'", "set grid", "set key top left",
          "set xrange [0:*]",
          "set xlabel 'feature values/s (millions)'", "set ylabel 'p99 latency (us)'",
          f"set arrow 1 from graph 0, first {P99_LIMIT_US:g} to graph 1, first "
          f"{P99_LIMIT_US:g} nohead dashtype 2 lc rgb '#555555'"]
    for b in batches:
        p99s = [p["p99_us"] for p in res.points if p["batch"] == b and p["run"] == "median"]
        if p99s:  # the 1 ms line and every point show, with a decade on top for the key
            low = 10 ** math.floor(math.log10(min(min(p99s), P99_LIMIT_US) / 1.5))
            high = 10 ** (math.ceil(math.log10(max(p99s) * 1.5)) + 1)
            gp.append(f"set yrange [{low:g}:{high:g}]")
        plots = []
        for t in tg:
            c = COLORS.get(t, "black")
            plots.append(f"'{data}/latency_{t}_{b}.dat' using ($1/1e6):2 with linespoints "
                         f"pt 7 ps 0.8 lc rgb '{c}' title '{t}'")
            plots.append(f"'{data}/peak_{t}_{b}.dat' using ($1/1e6):2 with points pt 6 ps 1.6 "
                         f"lc rgb '{c}' notitle")
        gp += [f"set title 'batch of {b}'", "plot " + ", \\\n     ".join(plots)]
    gp += ["unset multiplot", "unset arrow 1"]

    hist = {t: os.path.join(data, f"percentiles_{t}.csv") for t in tg}
    have = {t: p for t, p in hist.items() if os.path.exists(p) and
            parse_histogram_csv(_read_text(p))}
    if have:
        rate = res.common_rate.get(HEADLINE_BATCH)
        gp += [f"set terminal {term} size 800,500{font}",
               f"set output '{os.path.join(out, 'percentiles.png')}'",
               "set datafile separator ','",
               f"set title 'latency by percentile, batch of {HEADLINE_BATCH} at {rate:,} req/s "
               "(open loop, from the intended send time)'",
               "set logscale y", "set format y '%.0f'", "set grid", "set key top left",
               "set yrange [*:*]", "set xlabel 'percentile'", "set ylabel 'latency (us)'",
               "set xrange [0:5]",
               "set xtics ('0' 0, '90' 1, '99' 2, '99.9' 3, '99.99' 4, '99.999' 5)",
               # the maximum (percentile 100) has no place on a nines axis: left out
               "nines(p) = p >= 100 ? 1/0 : -log10(1 - p / 100.0)"]
        plots = [f"'{p}' using (nines($1)):2 with lines lw 2 lc rgb '{COLORS.get(t, 'black')}' "
                 f"title '{t}'" for t, p in have.items()]
        gp += [f"set arrow 2 from graph 0, first {P99_LIMIT_US:g} to graph 1, first "
               f"{P99_LIMIT_US:g} nohead dashtype 2 lc rgb '#555555'",
               "plot " + ", \\\n     ".join(plots)]
    script = os.path.join(data, "plots.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stderr.strip()[-500:]
    if not have and res.has_histogram and HEADLINE_BATCH in batches:
        return "no percentile curve was written (see the failed runs): no percentiles.png"
    return None

