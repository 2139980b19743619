"""The benchmark view for Python: loadtest/bench_view.yaml filled in, by the same rules as
bench_view.c (tests/loadtest/test_bench_view.c compares them). Used by redis_compare.py,
tests/tools/test_tools.py and, through its command line, bench_lib.sh's bench_view_yaml.

    from bench_view import bench_view_yaml
    config = "views:\\n" + bench_view_yaml()

    /usr/bin/python3 loadtest/bench_view.py [--numeric-default KIND] [VIEW_KEYS]   # prints it
"""
import os
import sys

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_view.yaml")
VIEW_KEYS = "@VIEW_KEYS@"
NUMERIC_DEFAULT = "@NUMERIC_DEFAULT@"


def bench_view_yaml(view_keys="", numeric_default=None):
    """One entry of a config's views: list. view_keys: YAML of the view's other keys (a
    source: or stream: block, a contract:) written from column 0, indented here as the view's
    keys; "" for none. numeric_default: every numeric feature gets `default: <it>`; None: no
    default."""
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    default = "" if numeric_default is None else ", default: " + numeric_default
    out = []
    for line in template.splitlines():
        if line.startswith("#"):  # the template's own comment
            continue
        if line.lstrip(" ") == VIEW_KEYS:
            indent = line[:len(line) - len(VIEW_KEYS)]
            keys = view_keys.split("\n")
            if keys and keys[-1] == "":
                keys.pop()
            out.extend(indent + k for k in keys)
            continue
        out.append(line.replace(NUMERIC_DEFAULT, default))
    return "".join(line + "\n" for line in out)


def main(argv):
    numeric_default = None
    if argv[:1] == ["--numeric-default"]:
        if len(argv) < 2:
            sys.exit("bench_view.py: --numeric-default needs a kind")
        numeric_default, argv = argv[1], argv[2:]
    if len(argv) > 1:
        sys.exit("usage: bench_view.py [--numeric-default KIND] [VIEW_KEYS]")
    sys.stdout.write(bench_view_yaml(argv[0] if argv else "", numeric_default))


if __name__ == "__main__":
    main(sys.argv[1:])
