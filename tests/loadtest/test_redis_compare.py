"""loadtest/redis_compare_report.py on fixed inputs: the rate search, the parsers of what
grpc_load, Redis, fsd and /proc print, and the report's ratios and verdicts. No process is
started and nothing is timed, so it runs in every CTest stage, sanitizers included.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "loadtest"))

import redis_compare_report as rc  # noqa: E402


def search_with(threshold, peak, steps, noise=None):
    """Runs a RateSearch against a server whose p99 stays under the limit below `threshold`
    requests/s; `noise` maps rates to forced outcomes. Returns (best, rates tried)."""
    s = rc.RateSearch(peak, steps)
    tried = []
    for _ in range(100):
        rate = s.next_rate()
        if rate is None:
            break
        tried.append(rate)
        s.record(rate, (noise or {}).get(rate, rate < threshold))
    return s.best(), tried


class RateSearchTest(unittest.TestCase):
    def test_converges_below_the_threshold(self):
        best, tried = search_with(threshold=7300, peak=10000, steps=8)
        self.assertLess(best, 7300)
        self.assertGreater(best, 7300 - 0.04 * 10000 - 100)  # resolution plus rounding
        self.assertTrue(all(0 < r < 10000 for r in tried))

    def test_steps_bound_the_probes(self):
        _, tried = search_with(threshold=7300, peak=10000, steps=3)
        self.assertEqual(len(tried), 3)

    def test_never_probes_at_or_above_the_peak(self):
        best, tried = search_with(threshold=1e9, peak=10000, steps=10)
        self.assertTrue(all(r < 10000 for r in tried))
        self.assertGreaterEqual(best, 9500)

    def test_no_rate_passes(self):
        best, tried = search_with(threshold=0, peak=10000, steps=5)
        self.assertIsNone(best)
        self.assertEqual(tried, [5000, 2500, 1200, 600, 300])

    def test_a_lucky_pass_above_a_failure_is_not_the_answer(self):
        # 5000 passes, 7500 fails, 6200 fails (noise), 5600 passes, then the lucky 7000 can
        # never be the answer: the lowest failure bounds it
        s = rc.RateSearch(10000, steps=0)
        for rate, ok in ((5000, True), (7500, False), (6200, False), (5600, True),
                         (7000, True)):
            s.record(rate, ok)
        self.assertEqual(s.best(), 5600)

    def test_a_known_point_seeds_the_search(self):
        s = rc.RateSearch(10000, steps=5)
        s.record(4000, True)  # the common rate passed
        self.assertEqual(s.next_rate(), 7000)

    def test_round_rate(self):
        self.assertEqual(rc.round_rate(12345), 12000)
        self.assertEqual(rc.round_rate(99.9), 99)
        self.assertEqual(rc.round_rate(7.5), 7)
        self.assertEqual(rc.round_rate(0.2), 1)

    def test_point_passes(self):
        ok = {"errors": 0, "p99_us": 900.0, "requests_per_s": 980.0}
        self.assertTrue(rc.point_passes(1000, ok))
        self.assertFalse(rc.point_passes(1000, dict(ok, p99_us=1000.0)))
        self.assertFalse(rc.point_passes(1000, dict(ok, errors=1)))
        # answered too few of the scheduled calls: the server (or generator) fell behind
        self.assertFalse(rc.point_passes(1000, dict(ok, requests_per_s=900.0)))
        self.assertFalse(rc.point_passes(1000, None))


class ParseTest(unittest.TestCase):
    def test_grpc_load_runs_and_median(self):
        out = ('{"target": "fsd", "batch": 100, "p99_us": 300.0}\n'
               '{"target": "fsd", "batch": 100, "p99_us": 500.0}\n'
               '{"target": "fsd", "batch": 100, "p99_us": 400.0}\n'
               '{"target": "fsd", "batch": 100, "p99_us": 400.0, "errors": 0}\n')
        runs, med = rc.parse_load_output(out)
        self.assertEqual([r["p99_us"] for r in runs], [300.0, 500.0, 400.0])
        self.assertEqual(med["errors"], 0)

    def test_grpc_load_runs_on_stderr(self):
        runs, med = rc.parse_load_output('{"p99_us": 2.0}\n',
                                         'grpc_load: run 1 of 1:\n{"p99_us": 1.0}\n')
        self.assertEqual(runs, [{"p99_us": 1.0}])
        self.assertEqual(med, {"p99_us": 2.0})

    def test_grpc_load_printed_nothing(self):
        with self.assertRaises(ValueError):
            rc.parse_load_output("", "grpc_load: connect: Connection refused\n")

    def test_redis_info(self):
        text = ("# Memory\r\nused_memory:1032712\r\nused_memory_human:1008.51K\r\n\r\n"
                "# Stats\r\nkeyspace_hits:12\r\nkeyspace_misses:0\r\n")
        info = rc.parse_redis_info(text)
        self.assertEqual(info["used_memory"], "1032712")
        self.assertEqual(info["keyspace_hits"], "12")
        self.assertNotIn("# Memory", info)

    def test_prometheus_value(self):
        text = ('# HELP fsd_view_lookups_total Entities looked up\n'
                '# TYPE fsd_view_lookups_total counter\n'
                'fsd_view_lookups_total{view="bench"} 1500\n'
                'fsd_view_lookups_total{view="other"} 7\n'
                'fsd_view_lookups_total_extra{view="bench"} 99\n'
                'fsd_requests_total{method="GetFeatures",code="OK"} 10\n'
                'fsd_requests_total{method="GetFeatures",code="NOT_FOUND"} 2\n'
                'fsd_jemalloc_allocated_bytes 2.5e+07\n')
        self.assertEqual(rc.prometheus_value(text, "fsd_view_lookups_total", view="bench"), 1500)
        self.assertEqual(rc.prometheus_value(text, "fsd_requests_total", method="GetFeatures"),
                         12)
        self.assertEqual(rc.prometheus_value(text, "fsd_jemalloc_allocated_bytes"), 2.5e7)
        self.assertIsNone(rc.prometheus_value(text, "fsd_view_lookups_total", view="none"))

    def test_proc_stat_with_spaces_and_parentheses_in_the_name(self):
        # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        # utime stime ...
        stat = "4242 (fsd (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5"
        self.assertEqual(rc.proc_cpu_ticks(stat), 300)

    def test_machine_busy_ticks(self):
        text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
        self.assertEqual(rc.machine_busy_ticks(text), 100 + 5 + 50 + 3 + 2 + 1)

    def test_histogram_csv(self):
        text = "percentile,latency_us\n0,157.0\n99.9,812.5\n100,2000.0\nnot,a number\n"
        self.assertEqual(rc.parse_histogram_csv(text),
                         [(0.0, 157.0), (99.9, 812.5), (100.0, 2000.0)])


def _point(values_per_s, p99_us=500.0, per_core=None, cpu_per_m=None, cores=0.5):
    return {"values_per_s": values_per_s, "p50_us": p99_us / 2, "p99_us": p99_us,
            "p999_us": p99_us * 2, "server_cores": cores,
            "values_per_server_core": per_core, "cpu_s_per_m_values": cpu_per_m,
            "generator_cores": 0.3}


class ReportTest(unittest.TestCase):
    def results(self):
        res = rc.Results(rc.TARGETS, {"entities": 1000, "duration": 1.0, "warmup": 0.1,
                                      "runs": 3, "other_runs": 1, "batches": (100,)})
        res.versions = {"fsd": "0.1.0", "redis": "7.0.15"}
        res.peaks = {("fsd", 100): _point(30e6, cpu_per_m=0.03),
                     ("redis-hash", 100): _point(3e6, cpu_per_m=0.3),
                     ("redis-packed", 100): _point(12e6, cpu_per_m=0.08)}
        res.best = {("fsd", 100): _point(20e6, per_core=24e6),
                    ("redis-hash", 100): None,
                    ("redis-packed", 100): _point(8e6, per_core=10e6)}
        res.commons = {t: _point(1.5e6, p99_us=p) for t, p in
                       (("fsd", 400.0), ("redis-hash", 1600.0), ("redis-packed", 800.0))}
        res.commons = {(t, 100): p for t, p in res.commons.items()}
        res.common_rate = {100: 1500}
        res.memory = {"fsd": {"bytes_per_value": 8.0},
                      "redis-hash": {"bytes_per_value": 24.0},
                      "redis-packed": {"bytes_per_value": 10.0}}
        return res

    def row(self, report, label):
        for line in report.splitlines():
            if label in line:
                return [c.strip() for c in line.strip("|").split("|")]
        self.fail(f"no row {label!r} in:\n{report}")

    def test_ratios_beside_each_figure(self):
        report = rc.render_report(self.results())
        self.assertEqual(self.row(report, "peak values/s"),
                         ["100", "peak values/s, closed loop", "30M", "3M", "10.00x", "12M",
                          "2.50x"])
        self.assertEqual(self.row(report, "p99 us at 1,500 req/s")[2:],
                         ["400", "1,600", "0.25x", "800", "0.50x"])
        # redis-hash never met p99 < 1 ms: no figure, no ratio
        self.assertEqual(self.row(report, "highest values/s with p99")[2:],
                         ["20M", "-", "-", "8M", "2.50x"])
        self.assertEqual(self.row(report, "bytes per feature value (fsd")[1:],
                         ["8", "24", "0.33x", "10", "0.80x"])

    def test_verdicts(self):
        report = rc.render_report(self.results())
        # per core: fsd 24M against the better layout with a figure, redis-packed's 10M
        self.assertIn("- met: batches of 100: fsd serves >= 2x", report)
        self.assertIn("redis-packed 10M: 2.40x", report)
        self.assertIn("- met: memory per feature value <= 0.4x redis-hash's", report)
        self.assertIn("- missed: memory per feature value <= 0.75x redis-packed's", report)

    def test_failures_are_listed(self):
        res = self.results()
        res.failures = ["batch 100 fsd peak: grpc_load exited 3: ..."]
        self.assertIn("## Failed runs\n\n- batch 100 fsd peak: grpc_load exited 3",
                      rc.render_report(res))

    def test_fsd_alone_has_no_ratios(self):
        res = self.results()
        res.targets = ["fsd"]
        report = rc.render_report(res)
        self.assertEqual(self.row(report, "peak values/s"), ["100", "peak values/s, closed loop",
                                                             "30M"])
        self.assertIn("nothing to compare", report)

    def test_formatting(self):
        self.assertEqual(rc.fmt_count(15312000), "15.3M")
        self.assertEqual(rc.fmt_count(62560), "62.6k")
        self.assertEqual(rc.fmt_count(950), "950")
        self.assertEqual(rc.fmt_count(None), "-")
        self.assertEqual(rc.fmt_ratio(2.0, 8.0), "0.25x")
        self.assertEqual(rc.fmt_ratio(2.0, None), "-")
        self.assertEqual(rc.fmt_ratio(2.0, 0), "-")


if __name__ == "__main__":
    unittest.main(verbosity=2)
