"""fsd-feast-import against registries built with the project's Feast protos
(proto/feast/core), as Feast's local registry.db stores them, and a feature_store.yaml: what
maps is translated (entities to join keys, feature views with their types, ttl and sources,
push sources, feature services), what does not is listed with its reason and left out, the
output passes fsd --check-config, and fsd serves it: the Parquet source loads and Feast's
HTTP API reads and pushes through the imported names. A real PostgreSQL checks what the
offline store's db_schema and a source's field_mapping become."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import requests  # noqa: E402
import yaml  # noqa: E402

import duckdb_sql  # noqa: E402
import harness as h  # noqa: E402
from pg_server import Postgres  # noqa: E402
from feast.core import Registry_pb2 as reg  # noqa: E402
from feast.types import Value_pb2 as fv  # noqa: E402

IMPORT_BIN = os.environ.get("FSD_FEAST_IMPORT_BIN", "build/bin/fsd-feast-import")
VT = fv.ValueType
POSTGRES_CLASS = ("feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source."
                  "PostgreSQLSource")


def feature(name, value_type):
    return reg.FeatureSpecV2(name=name, value_type=value_type)


def file_source(name, uri, ts="event_timestamp", created=""):
    return reg.DataSource(name=name, type=reg.DataSource.BATCH_FILE, timestamp_field=ts,
                          created_timestamp_column=created,
                          file_options=reg.DataSource.FileOptions(uri=uri))


def registry():
    """A repo as `feast apply` leaves it: project demo, and one object of project other."""
    r = reg.Registry(registry_schema_version="1")
    for name, key, t, project in (("driver", "driver_id", VT.INT64, "demo"),
                                  ("city", "city", VT.STRING, "demo"),
                                  ("shop", "shop_id", VT.DOUBLE, "demo"),
                                  ("other_driver", "driver_id", VT.INT64, "other")):
        r.entities.add(spec=reg.EntitySpecV2(name=name, join_key=key, value_type=t,
                                             project=project))
    push = reg.DataSource(name="driver_push", type=reg.DataSource.PUSH_SOURCE,
                          push_options=reg.DataSource.PushOptions(),
                          batch_source=file_source("driver_file", "data/driver_stats.parquet"))
    r.feature_views.add(spec=reg.FeatureViewSpec(
        name="driver_stats", project="demo", entities=["driver"],
        features=[feature("conv_rate", VT.DOUBLE), feature("trips", VT.INT64),
                  feature("name", VT.STRING), feature("tags", VT.STRING_LIST),
                  feature("weights", VT.DOUBLE_LIST), feature("flags", VT.BOOL_LIST),
                  feature("seen", VT.UNIX_TIMESTAMP_LIST), feature("blobs", VT.BYTES_LIST),
                  feature("counts", VT.INT32_LIST), feature("attrs", VT.MAP)],
        ttl={"seconds": 86400}, online=True,
        batch_source=file_source("driver_file", "data/driver_stats.parquet", created="created"),
        stream_source=push))
    pg = reg.DataSource(name="city_pg", type=reg.DataSource.CUSTOM_SOURCE,
                        timestamp_field="ts", data_source_class_type=POSTGRES_CLASS,
                        custom_options=reg.DataSource.CustomSourceOptions(
                            configuration=b'{"name": "city_pg", "query": "", '
                                          b'"table": "city_stats"}'))
    r.feature_views.add(spec=reg.FeatureViewSpec(
        name="city_stats", project="demo", entities=["driver", "city"],
        features=[feature("score", VT.FLOAT)], batch_source=pg))
    r.feature_views.add(spec=reg.FeatureViewSpec(
        name="spark_view", project="demo", entities=["driver"],
        features=[feature("x", VT.INT32)],
        batch_source=reg.DataSource(name="spark_src", type=reg.DataSource.BATCH_SPARK,
                                    timestamp_field="ts")))
    r.feature_views.add(spec=reg.FeatureViewSpec(
        name="by_shop", project="demo", entities=["shop"], features=[feature("y", VT.INT64)]))
    r.feature_views.add(spec=reg.FeatureViewSpec(
        name="elsewhere", project="other", entities=["other_driver"],
        features=[feature("z", VT.INT64)]))
    r.on_demand_feature_views.add(spec=reg.OnDemandFeatureViewSpec(name="transformed",
                                                                   project="demo"))
    r.stream_feature_views.add(spec=reg.StreamFeatureViewSpec(name="windowed", project="demo"))
    r.feature_services.add(spec=reg.FeatureServiceSpec(name="ranker", project="demo", features=[
        reg.FeatureViewProjection(feature_view_name="driver_stats",
                                  feature_columns=[feature("conv_rate", VT.DOUBLE),
                                                   feature("trips", VT.INT64),
                                                   feature("attrs", VT.MAP)]),
        reg.FeatureViewProjection(feature_view_name="city_stats",
                                  feature_columns=[feature("score", VT.FLOAT)])]))
    return r


FEATURE_STORE = """project: demo
registry: data/registry.db
provider: local
online_store:
  type: remote
  path: http://localhost:6566
offline_store:
  type: postgres
  host: 127.0.0.1
  port: 5432
  database: feast
  user: feast
  password: "p'w"
"""


class FeastImportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="fsd-feast-import-")
        cls.repo = cls.tmp.name
        os.makedirs(os.path.join(cls.repo, "data"))
        cls.registry = os.path.join(cls.repo, "data", "registry.db")
        with open(cls.registry, "wb") as f:
            f.write(registry().SerializeToString())
        cls.store = os.path.join(cls.repo, "feature_store.yaml")
        with open(cls.store, "w") as f:
            f.write(FEATURE_STORE)
        cls.out = os.path.join(cls.repo, "fsd.yaml")
        cls.imported = subprocess.run([IMPORT_BIN, "--feature-store", cls.store, "-o", cls.out,
                                  cls.registry], capture_output=True, text=True, timeout=30)
        with open(cls.out) as f:
            cls.text = f.read()
        cls.config = yaml.safe_load(cls.text)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def view(self, name):
        return next(v for v in self.config["views"] if v["name"] == name)

    def test_what_maps_is_translated(self):
        self.assertEqual(self.imported.returncode, 0, self.imported.stderr)
        self.assertEqual([v["name"] for v in self.config["views"]],
                         ["driver_stats", "city_stats", "spark_view"])
        d = self.view("driver_stats")
        self.assertEqual(d["join_keys"], [{"name": "driver_id", "type": "int64"}])
        self.assertEqual(d["ttl"], "86400s")
        self.assertEqual(d["features"], [{"name": "conv_rate", "type": "double"},
                                         {"name": "trips", "type": "int64"},
                                         {"name": "name", "type": "string"},
                                         {"name": "tags", "type": "string_list"},
                                         {"name": "weights", "type": "double_list"},
                                         {"name": "flags", "type": "bool_list"},
                                         {"name": "seen", "type": "timestamp_list"},
                                         {"name": "blobs", "type": "bytes_list"},
                                         {"name": "counts", "type": "int32_list"}])
        self.assertEqual(d["source"], {
            "type": "parquet", "path": os.path.join(os.path.realpath(self.repo), "data",
                                                    "driver_stats.parquet"),
            "event_timestamp_column": "event_timestamp", "created_timestamp_column": "created"})
        self.assertEqual(d["push_source"], "driver_push")
        c = self.view("city_stats")
        self.assertEqual([k["name"] for k in c["join_keys"]], ["driver_id", "city"])
        self.assertEqual(c["ttl"], "0s")
        self.assertEqual(c["source"]["type"], "postgres")
        self.assertEqual(c["source"]["table"], "city_stats")
        self.assertEqual(c["source"]["dsn"], "host='127.0.0.1' port='5432' dbname='feast' "
                                             "user='feast' password='p\\'w'")
        self.assertNotIn("source", self.view("spark_view"))
        self.assertEqual(self.config["feature_services"], [
            {"name": "ranker", "features": ["driver_stats:conv_rate", "driver_stats:trips",
                                            "city_stats:score"]}])

    def test_what_does_not_is_listed_with_the_reason(self):
        expected = [
            "on-demand feature view transformed: fsd runs no transformations",
            "stream feature view windowed: fsd runs no aggregations",
            "feature driver_stats:attrs: a type fsd does not serve",
            "feature view by_shop: join key shop_id is neither an integer nor a string",
            "feature view spark_view: source spark_src is not one fsd reads",
            "feature service ranker: driver_stats:attrs was not imported",
        ]
        for line in expected:
            self.assertIn(line, self.imported.stderr)
            self.assertIn(line, self.text)  # and at the top of the config, as comments
        self.assertNotIn("elsewhere", self.text)  # another project's view is not this repo's

    def test_the_config_passes_check_config_and_serves(self):
        check = subprocess.run([h.FSD_BIN, "--check-config", self.out], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        duckdb_sql.write_parquet(
            os.path.join(self.repo, "data", "driver_stats.parquet"),
            "SELECT range::BIGINT AS driver_id, range / 10 AS conv_rate, range * 100 AS trips, "
            "'d' || range::VARCHAR AS name, ['a', 'b'] AS tags, [0.5, -1.0]::DOUBLE[] AS weights, "
            "[true, false] AS flags, [TIMESTAMP '2024-01-01 00:00:00'] AS seen, "
            "['\\x01'::BLOB, ''::BLOB] AS blobs, [range::INTEGER, -7] AS counts, "
            "now()::TIMESTAMP - INTERVAL 1 MINUTE AS event_timestamp, "
            "now()::TIMESTAMP - INTERVAL 1 MINUTE AS created FROM range(100)")
        # No PostgreSQL server runs here: the city view is served without its source.
        config = yaml.safe_load(self.text)
        next(v for v in config["views"] if v["name"] == "city_stats").pop("source")
        fsd = h.Fsd(yaml.safe_dump(config, sort_keys=False))
        try:
            fsd.wait_for_log(r'msg="snapshot loaded" view=driver_stats', timeout_s=30)
            url = f"http://127.0.0.1:{fsd.port}"
            got = requests.post(url + "/get-online-features", json={
                "entities": {"driver_id": [7, 500]},
                "features": ["driver_stats:trips", "driver_stats:tags", "driver_stats:weights",
                             "driver_stats:flags", "driver_stats:seen", "driver_stats:blobs",
                             "driver_stats:counts"]}, timeout=10).json()
            self.assertEqual(got["results"][1]["values"], [700, None])
            self.assertEqual(got["results"][1]["statuses"], ["PRESENT", "NOT_FOUND"])
            self.assertEqual([r["values"][0] for r in got["results"][2:]],
                             [["a", "b"], [0.5, -1.0], [True, False], [1704067200],
                              ["AQ==", ""], [7, -7]])
            r = requests.post(url + "/push", json={"push_source_name": "driver_push", "df": {
                "driver_id": [500], "trips": [5], "event_timestamp": ["2030-01-01T00:00:00"]}},
                timeout=10)
            self.assertEqual(r.status_code, 422, r.text)  # a time far in the future is refused
            r = requests.post(url + "/push", json={"push_source_name": "driver_push", "df": {
                "driver_id": [500], "trips": [5],
                "event_timestamp": [h.now_us() / 1e6]}}, timeout=10)
            self.assertEqual(r.status_code, 200, r.text)
        finally:
            self.assertEqual(fsd.stop(), 0)

    def test_bad_input(self):
        bad = os.path.join(self.repo, "not-a-registry")
        with open(bad, "wb") as f:
            f.write(b"\xff\xff\xff\xff")
        r = subprocess.run([IMPORT_BIN, bad], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a Feast registry", r.stderr)
        r = subprocess.run([IMPORT_BIN], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        # --project picks another project's objects
        r = subprocess.run([IMPORT_BIN, "--project", "other", self.registry],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([v["name"] for v in yaml.safe_load(r.stdout)["views"]], ["elsewhere"])


def pg_source(name, configuration, mapping):
    return reg.DataSource(name=name, type=reg.DataSource.CUSTOM_SOURCE, timestamp_field="ts",
                          data_source_class_type=POSTGRES_CLASS, field_mapping=mapping,
                          custom_options=reg.DataSource.CustomSourceOptions(
                              configuration=configuration))


class FeastImportPostgresTest(unittest.TestCase):
    """db_schema as the connection's search_path, field_mapping as a renaming query (of a
    table and of a query source), against a real PostgreSQL whose table lives in a schema of
    its own under other column names; a Parquet source's mapping is reported."""

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres()
        cls.pg.psql("CREATE SCHEMA feast_s; CREATE TABLE feast_s.scores (driver_id BIGINT, "
                    "\"Raw Score\" REAL, n_trips BIGINT, ts TIMESTAMPTZ); INSERT INTO "
                    "feast_s.scores SELECT i, i / 4.0, i * 10, now() - interval '1 minute' "
                    "FROM generate_series(1, 50) AS i")
        cls.tmp = tempfile.TemporaryDirectory(prefix="fsd-feast-import-pg-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        cls.pg.stop()

    def test_schema_and_field_mappings_read_the_renamed_columns(self):
        r = reg.Registry(registry_schema_version="1")
        r.entities.add(spec=reg.EntitySpecV2(name="driver", join_key="driver_id",
                                             value_type=VT.INT64, project="demo"))
        mapping = {"Raw Score": "score", "n_trips": "trips"}
        features = [feature("score", VT.FLOAT), feature("trips", VT.INT64)]
        r.feature_views.add(spec=reg.FeatureViewSpec(
            name="by_table", project="demo", entities=["driver"], features=features,
            batch_source=pg_source("t", b'{"table": "scores", "query": ""}', mapping)))
        r.feature_views.add(spec=reg.FeatureViewSpec(
            name="by_query", project="demo", entities=["driver"], features=features,
            batch_source=pg_source(
                "q", b'{"table": "", "query": "SELECT * FROM scores WHERE driver_id > 25"}',
                mapping)))
        file_mapped = file_source("f", "data/f.parquet")
        file_mapped.field_mapping["raw"] = "score"
        r.feature_views.add(spec=reg.FeatureViewSpec(
            name="by_file", project="demo", entities=["driver"], features=features,
            batch_source=file_mapped))
        registry = os.path.join(self.tmp.name, "registry.db")
        with open(registry, "wb") as f:
            f.write(r.SerializeToString())
        store = os.path.join(self.tmp.name, "feature_store.yaml")
        with open(store, "w") as f:
            f.write(f"project: demo\noffline_store:\n  type: postgres\n  host: 127.0.0.1\n"
                    f"  port: {self.pg.port}\n  database: fsd_test\n  user: fsd\n"
                    f"  db_schema: feast_s\n  sslmode: disable\n")
        imported = subprocess.run([IMPORT_BIN, "--feature-store", store, registry],
                                  capture_output=True, text=True, timeout=30)
        self.assertEqual(imported.returncode, 0, imported.stderr)
        self.assertIn("feature view by_file: its Parquet source's field_mapping",
                      imported.stderr)
        self.assertNotIn("by_table", imported.stderr)
        self.assertNotIn("by_query", imported.stderr)
        self.assertNotIn("db_schema", imported.stderr)
        config = yaml.safe_load(imported.stdout)
        source = next(v for v in config["views"] if v["name"] == "by_table")["source"]
        self.assertIn("options='-c search_path=feast_s'", source["dsn"])
        self.assertIn("sslmode='disable'", source["dsn"])
        self.assertEqual(source["query"], 'SELECT "driver_id", "Raw Score" AS "score", '
                                          '"n_trips" AS "trips", "ts" FROM scores')
        config["views"] = [v for v in config["views"] if v["name"] != "by_file"]
        fsd = h.Fsd(yaml.safe_dump(config, sort_keys=False))
        try:
            fsd.wait_for_log(r'msg="snapshot loaded" view=by_table', timeout_s=30)
            fsd.wait_for_log(r'msg="snapshot loaded" view=by_query', timeout_s=30)
            url = f"http://127.0.0.1:{fsd.port}"
            for view, present in (("by_table", [True, True, False]),
                                  ("by_query", [False, True, False])):
                got = requests.post(url + "/get-online-features", json={
                    "entities": {"driver_id": [10, 30, 99]},
                    "features": [f"{view}:score", f"{view}:trips"]}, timeout=10).json()
                want_scores = [x / 4.0 if p else None for x, p in zip([10, 30, 99], present)]
                want_trips = [x * 10 if p else None for x, p in zip([10, 30, 99], present)]
                self.assertEqual(got["results"][1]["values"], want_scores, view)
                self.assertEqual(got["results"][2]["values"], want_trips, view)
        finally:
            self.assertEqual(fsd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
