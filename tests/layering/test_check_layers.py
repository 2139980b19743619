"""The layering checker (check_layers.py): the tree as it is passes, and each kind of broken
rule is caught, with the offending file and line, in small trees written for the test."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_layers.py")
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def run(root):
    p = subprocess.run([sys.executable, CHECKER, "--root", root], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout


def tree(files):
    """A temporary tree holding `files` ({path: text}); returns the TemporaryDirectory."""
    d = tempfile.TemporaryDirectory(prefix="fsd-layers-")
    for path, text in files.items():
        full = os.path.join(d.name, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return d


BASE = {
    "common/log.h": "#pragma once\n",
    "store/table.h": '#pragma once\n#include "common/log.h"\n',
    "store/table.c": '#include "table.h"\n#include "common/log.h"\n',
    "daemon/grpc/grpc.h": "#pragma once\n",
    "daemon/grpc/internal.h": '#pragma once\n#include "grpc.h"\n',
    "daemon/grpc/conn.c": '#include "internal.h"\n#include "fsd/v1/feature_service.pb-c.h"\n',
    "daemon/rpc/rpc.c": '#include "daemon/grpc/grpc.h"\n#include "store/table.h"\n',
}


class CheckLayersTest(unittest.TestCase):
    def test_the_tree_as_it_is_keeps_the_rules(self):
        rc, out = run(REPO)
        self.assertEqual(rc, 0, out)

    def test_a_tree_that_keeps_the_rules_passes(self):
        with tree(BASE) as root:
            self.assertEqual(run(root), (0, ""))

    def test_an_upward_include_is_named_with_its_file_and_line(self):
        files = dict(BASE)
        files["store/table.c"] = ('#include "table.h"\n'
                                  '#include "daemon/grpc/grpc.h"\n')
        with tree(files) as root:
            rc, out = run(root)
        self.assertEqual(rc, 1)
        self.assertEqual(out, 'store/table.c:2: store/ may not include "daemon/grpc/grpc.h" '
                              "(daemon/; store/ may use common)\n")

    def test_a_sideways_include_between_client_and_daemon(self):
        files = dict(BASE)
        files["client/conn.c"] = '#include "daemon/grpc/grpc.h"\n'
        with tree(files) as root:
            rc, out = run(root)
        self.assertEqual(rc, 1)
        self.assertIn("client/conn.c:1: client/ may not include", out)

    def test_an_internal_header_of_another_module(self):
        files = dict(BASE)
        files["daemon/rpc/rpc.c"] += '#include "daemon/grpc/internal.h"\n'
        with tree(files) as root:
            rc, out = run(root)
        self.assertEqual(rc, 1)
        self.assertEqual(out, 'daemon/rpc/rpc.c:3: "daemon/grpc/internal.h" is internal to '
                              "daemon/grpc/\n")

    def test_a_header_found_only_through_an_include_directory(self):
        files = dict(BASE)
        files["daemon/rpc/rpc.c"] += '#include "grpc.h"\n'  # daemon/grpc's, by its bare name
        with tree(files) as root:
            rc, out = run(root)
        self.assertEqual(rc, 1)
        self.assertEqual(out, 'daemon/rpc/rpc.c:3: "grpc.h" is no header of the tree\n')


if __name__ == "__main__":
    unittest.main()
