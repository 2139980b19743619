#pragma once
/*
 * Field numbers of the responses the handlers write field by field with the protobuf writer
 * (pbwriter.h), as proto/fsd/v1/feature_service.proto numbers them. Written by hand because
 * protobuf-c keeps them in runtime descriptors only; tests/daemon/rpc/test_fields.c checks
 * every one against those descriptors (number, type, packing), so they cannot drift from the
 * .proto. Internal to daemon/rpc.
 */

/* GetFeaturesResponse */
enum {
    GET_FEATURES_RESPONSE_ENTITIES = 1,
    GET_FEATURES_RESPONSE_COLUMNS = 2,
    GET_FEATURES_RESPONSE_VIEWS = 3,
    GET_FEATURES_RESPONSE_VALUES_SERVED = 4,
    GET_FEATURES_RESPONSE_DEFAULTS_NOT_FOUND = 5,
    GET_FEATURES_RESPONSE_DEFAULTS_NULL_VALUE = 6,
    GET_FEATURES_RESPONSE_DEFAULTS_OUTSIDE_MAX_AGE = 7,
    GET_FEATURES_RESPONSE_SERVER_TIME_US = 8,
};

/* FeatureColumn */
enum {
    FEATURE_COLUMN_NAME = 1,
    FEATURE_COLUMN_TYPE = 2,
    FEATURE_COLUMN_STATUSES = 3,
    FEATURE_COLUMN_INT32_VALUES = 4,
    FEATURE_COLUMN_INT64_VALUES = 5,
    FEATURE_COLUMN_FLOAT_VALUES = 6,
    FEATURE_COLUMN_DOUBLE_VALUES = 7,
    FEATURE_COLUMN_BOOL_VALUES = 8,
    FEATURE_COLUMN_STRING_VALUES = 9,
    FEATURE_COLUMN_BYTES_VALUES = 10,
    FEATURE_COLUMN_LIST_LENGTHS = 11,
    FEATURE_COLUMN_EVENT_TIMESTAMPS_US = 12,
    FEATURE_COLUMN_HAS_DEFAULT = 13,
};

/* ViewStaleness */
enum {
    VIEW_STALENESS_VIEW = 1,
    VIEW_STALENESS_STALENESS_MS = 2,
};

/* PushRowsResponse */
enum {
    PUSH_ROWS_RESPONSE_INSERTED = 1,
    PUSH_ROWS_RESPONSE_REPLACED = 2,
    PUSH_ROWS_RESPONSE_NOT_NEWER = 3,
    PUSH_ROWS_RESPONSE_DELETED = 4,
};

/* PushSnapshotResponse */
enum {
    PUSH_SNAPSHOT_RESPONSE_VERSION = 1,
    PUSH_SNAPSHOT_RESPONSE_ROWS_RECEIVED = 2,
    PUSH_SNAPSHOT_RESPONSE_ROWS_KEPT = 3,
    PUSH_SNAPSHOT_RESPONSE_UPDATES_REPLAYED = 4,
};

/* Feast's messages (proto/feast/): feast.serving.GetOnlineFeaturesResponse and its parts */
enum {
    FEAST_RESPONSE_METADATA = 1,
    FEAST_RESPONSE_RESULTS = 2,
    FEAST_METADATA_FEATURE_NAMES = 1,
    FEAST_FEATURE_LIST_VAL = 1,
    FEAST_VECTOR_VALUES = 1,
    FEAST_VECTOR_STATUSES = 2,
    FEAST_VECTOR_EVENT_TIMESTAMPS = 3,
    FEAST_TIMESTAMP_SECONDS = 1, /* google.protobuf.Timestamp */
    FEAST_TIMESTAMP_NANOS = 2,
    FEAST_SERVING_INFO_VERSION = 1,
};

/* feast.types.Value's oneof, and the list messages' one field */
enum {
    FEAST_VALUE_BYTES = 1,
    FEAST_VALUE_STRING = 2,
    FEAST_VALUE_INT32 = 3,
    FEAST_VALUE_INT64 = 4,
    FEAST_VALUE_DOUBLE = 5,
    FEAST_VALUE_FLOAT = 6,
    FEAST_VALUE_BOOL = 7,
    FEAST_VALUE_UNIX_TIMESTAMP = 8,
    FEAST_VALUE_BYTES_LIST = 11,
    FEAST_VALUE_STRING_LIST = 12,
    FEAST_VALUE_INT32_LIST = 13,
    FEAST_VALUE_INT64_LIST = 14,
    FEAST_VALUE_DOUBLE_LIST = 15,
    FEAST_VALUE_FLOAT_LIST = 16,
    FEAST_VALUE_BOOL_LIST = 17,
    FEAST_VALUE_UNIX_TIMESTAMP_LIST = 18,
    FEAST_LIST_VAL = 1,
};

/* Feast's FieldStatus */
enum {
    FEAST_STATUS_PRESENT = 1,
    FEAST_STATUS_NULL_VALUE = 2,
    FEAST_STATUS_NOT_FOUND = 3,
    FEAST_STATUS_OUTSIDE_MAX_AGE = 4,
};
