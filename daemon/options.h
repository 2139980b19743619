#pragma once
/*
 * The daemon's options: every module's group (each declared by its module, see
 * common/options.h), bound into one block, struct daemon_options, which the config loader
 * fills from the file's option sections. The table is what the loader, `fsd --help-config`
 * and `fsd --print-reference-config` (configs/reference.yaml) walk.
 *
 *   server:        grpc (grpc/grpc.h), stats (stats/stats.h), rpc (rpc/rpc.h), log (common/log.h),
 *                  exposure (auth/auth.h)
 *   server.auth:   auth (auth/auth.h)
 *   server.tls:    tls (tls/tls.h)
 *   store:         store (store/catalog.h), sweeper (sweeper.h), wal (durability/wal.h),
 *                  ckpt (durability/checkpoint.h)
 *   materializer:  mat (materializer/snapshot/snapshot.h)
 */
#include "common/log.h"
#include "daemon/auth/auth.h"
#include "daemon/grpc/grpc.h"
#include "daemon/tls/tls.h"
#include "durability/checkpoint.h"
#include "durability/wal.h"
#include "materializer/snapshot/snapshot.h"
#include "daemon/rpc/rpc.h"
#include "daemon/stats/stats.h"
#include "store/catalog.h"
#include "sweeper.h"

struct fsd_config;

struct daemon_options {
    struct grpc_server_options grpc;
    struct stats_options stats;
    struct rpc_options rpc;
    struct rpc_feast_options feast;
    struct log_options log;
    struct auth_exposure_options exposure;
    struct auth_options auth;
    struct tls_options tls;
    struct store_options store;
    struct sweeper_options sweeper;
    struct wal_options wal;
    struct ckpt_options ckpt;
    struct mat_options mat;
};

extern const struct option_table daemon_option_table;

/* The options of a config loaded with daemon_option_table. */
const struct daemon_options *daemon_options(const struct fsd_config *config);

/*
 * The config summary /status shows (stats_set_config_summary): the file, the addresses and
 * ports as bound (so call it once the servers listen), the limits, the view count and the
 * feature services, as one JSON object. malloc'd; NULL when out of memory.
 */
char *daemon_config_summary(const struct fsd_config *config);
