#!/usr/bin/env python3
"""The layering rules of the tree, checked from its #include lines.

    /usr/bin/python3 tests/layering/check_layers.py [--root DIR]

Every `#include "..."` in a C file of a layer below must point to a header of the same folder
or of a layer the table allows; a header that says it is internal (`internal.h`,
`*_internal.h`) may only be included from its own folder. Each include is resolved the way
the build resolves it: next to the including file first, then from the root of the tree
(every module includes another's header by its path from the root, "store/catalog.h"), and
the generated protobuf headers ("fsd/v1/...", "grpc/health/v1/...", "feast/...",
"google/protobuf/...") belong to proto/.

Prints one line per broken rule, `file:line: rule`, and exits 1 when there is any; tests/
is not checked (a test may use whatever it tests).
"""
import argparse
import os
import re
import sys

# Who may include whom: a layer, and the layers below it it may use. Nothing below may use
# anything above: common < store < durability < materializer < config < daemon,
# common < client < tools.
ALLOWED = {
    "common": set(),
    "store": {"common"},
    "durability": {"store", "common"},
    "proto": set(),
    "materializer": {"durability", "store", "common", "proto"},
    "config": {"materializer", "store", "common"},
    "daemon": {"config", "materializer", "durability", "store", "common", "proto"},
    "client": {"common", "proto"},
    "tools": {"client", "config", "materializer", "store", "common", "proto"},
    # Benchmarks drive the programs from outside, as clients; pg_bench borrows the tests'
    # PostgreSQL starter.
    "loadtest": {"client", "config", "materializer", "store", "common", "proto", "tests"},
}
GENERATED = {"fsd/": "proto", "grpc/health/": "proto", "feast/": "proto", "google/protobuf/": "proto"}
SOURCES = (".c", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(relpath):
    return relpath.split("/", 1)[0]


def is_internal(header):
    name = os.path.basename(header)
    return name == "internal.h" or name.endswith("_internal.h")


def resolve(root, including, header):
    """The header's path from the root and its layer, or (None, None) when nothing has it."""
    here = os.path.dirname(including)
    beside = os.path.normpath(os.path.join(here, header))
    if os.path.isfile(os.path.join(root, beside)):
        return beside, layer_of(beside)
    if os.path.isfile(os.path.join(root, header)):
        return header, layer_of(header)
    for prefix, layer in GENERATED.items():
        if header.startswith(prefix):
            return header, layer
    return None, None


def check(root):
    problems = []
    for layer in sorted(ALLOWED):
        top = os.path.join(root, layer)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCES):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
                for number, line in enumerate(lines, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    header = m.group(1)
                    target, target_layer = resolve(root, path, header)
                    where = f"{path}:{number}"
                    if target is None:
                        problems.append(f'{where}: "{header}" is no header of the tree')
                        continue
                    if target_layer != layer and target_layer not in ALLOWED[layer]:
                        below = ", ".join(sorted(ALLOWED[layer])) or "nothing"
                        problems.append(f'{where}: {layer}/ may not include "{header}" '
                                        f"({target_layer}/; {layer}/ may use {below})")
                    if is_internal(target) and os.path.dirname(target) != os.path.dirname(path):
                        problems.append(f'{where}: "{header}" is internal to '
                                        f"{os.path.dirname(target)}/")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    args = parser.parse_args()
    problems = check(args.root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) break the layering", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
