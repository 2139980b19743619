"""The benchmark view's helpers agree and its feature list has one home.

bench_view.py fills loadtest/bench_view.yaml in as the benchmarks need, and bench_lib.sh's
bench_view_yaml (shell), which calls it, passes every argument through unchanged
(test_bench_view.c compares the C helper,
bench_view.c, with bench_view.py); and no file of loadtest/ or of the tests that use the view
lists its features again: the template and bench_view.h (tied together by test_bench_view.c)
are the only places. No server, no build: well under a second.
"""
import os
import re
import subprocess
import sys
import unittest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LOADTEST = os.path.join(REPO, "loadtest")
sys.path.insert(0, LOADTEST)

from bench_view import bench_view_yaml  # noqa: E402

# (view keys, numeric default) as the benchmarks pass them, and the awkward cases: a backslash
# and a tab escape (the shell must pass them through as written), a blank line inside, a
# trailing newline
CASES = [
    ("", None),
    ('source: {type: parquet, path: "/tmp/fsd x/data.parquet", event_timestamp_column: ev}',
     None),
    ('stream:\n  redis: "127.0.0.1:6379"\n  key: bench_updates\n  start: "$"\n', None),
    ("# no source: only PushSnapshot fills it\ncontract:\n  min_rows: 1000\n\n"
     "  features:\n    d3: {range: [0, 1000]}", "mean"),
    ('source: {type: parquet, path: "C:\\\\no\\tescape"}', "zero"),
]

# The feature list written out: the first feature's YAML entry, or its name as a C or Python
# string. Built from parts so that this file does not match itself.
LISTED = re.compile("name: " + "d0\\b" + "|" + '"' + 'd0"')
HOMES = {"loadtest/bench_view.yaml", "loadtest/bench_view.h"}
SCANNED = ["loadtest", "tests/loadtest", "tests/tools"]


def shell_view(view_keys, numeric_default):
    args = ["--numeric-default", numeric_default] if numeric_default is not None else []
    script = 'source "$1"; shift; bench_view_yaml "$@"'
    p = subprocess.run(["bash", "-c", script, "bash", os.path.join(LOADTEST, "bench_lib.sh")] +
                       args + [view_keys], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"bench_view_yaml exited {p.returncode}: {p.stderr}")
    return p.stdout


class HelpersTest(unittest.TestCase):
    def test_the_shell_helper_passes_its_arguments_through(self):
        for view_keys, numeric_default in CASES:
            with self.subTest(view_keys=view_keys, numeric_default=numeric_default):
                self.assertEqual(shell_view(view_keys, numeric_default),
                                 bench_view_yaml(view_keys, numeric_default))

    def test_placeholders_and_the_templates_comment_are_gone(self):
        out = bench_view_yaml("source: {type: parquet}", "mean")
        self.assertNotIn("@", out)
        self.assertFalse([line for line in out.splitlines() if line.startswith("#")])
        self.assertTrue(out.startswith("  - name: "), out)

    def test_view_keys_are_indented_as_the_views_keys(self):
        out = bench_view_yaml("contract:\n  min_rows: 5\n")
        self.assertIn("\n    ttl: 0\n    contract:\n      min_rows: 5\n    features:\n", out)
        self.assertIn("\n    ttl: 0\n    features:\n", bench_view_yaml())

    def test_numeric_default_reaches_the_numeric_features_only(self):
        lines = [line for line in bench_view_yaml(numeric_default="mean").splitlines()
                 if line.startswith("      - {name: ")]
        self.assertEqual(len(lines), 10)
        for line in lines:
            numeric = "type: double" in line or "type: int64" in line
            self.assertEqual("default: mean" in line, numeric, line)
        self.assertNotIn("default", bench_view_yaml())


class OneHomeTest(unittest.TestCase):
    def test_the_feature_list_is_written_only_in_the_template_and_its_header(self):
        copies = []
        for top in SCANNED:
            for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, top)):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                for name in sorted(filenames):
                    path = os.path.relpath(os.path.join(dirpath, name), REPO)
                    if path in HOMES:
                        continue
                    with open(os.path.join(REPO, path), encoding="utf-8",
                              errors="replace") as f:
                        for number, line in enumerate(f, 1):
                            if LISTED.search(line):
                                copies.append(f"{path}:{number}: {line.strip()}")
        self.assertEqual(copies, [], "the benchmark view's features are listed outside "
                         "loadtest/bench_view.yaml and bench_view.h:\n" + "\n".join(copies))

    def test_the_homes_list_them(self):
        for path in HOMES:
            with open(os.path.join(REPO, path), encoding="utf-8") as f:
                self.assertRegex(f.read(), LISTED, path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
