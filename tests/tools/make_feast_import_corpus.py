"""Writes the seed corpus of fuzz_feast_import (tests/tools/fuzz_feast_import.c) into
feast_import_corpus/ next to this file: the registry tests/integration/test_feast_import.py
builds, and one view of each kind it has, each a serialized feast.core.Registry.

    FSD_PYPROTO=build/python /usr/bin/python3 tests/tools/make_feast_import_corpus.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("FSD_PYPROTO", os.path.join(HERE, "..", "..", "build",
                                                              "python")))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from test_feast_import import registry  # noqa: E402

OUT = os.path.join(HERE, "feast_import_corpus")
os.makedirs(OUT, exist_ok=True)
whole = registry()
with open(os.path.join(OUT, "repo"), "wb") as f:
    f.write(whole.SerializeToString())
for view in whole.feature_views:
    one = type(whole)()
    one.entities.extend(whole.entities)
    one.feature_views.append(view)
    with open(os.path.join(OUT, "view-" + view.spec.name), "wb") as f:
        f.write(one.SerializeToString())
