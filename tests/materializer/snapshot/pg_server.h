#pragma once
/*
 * A throwaway PostgreSQL server for tests and benchmarks: initdb in a fresh folder, postgres
 * on a free loopback port, a database, a DSN; stopped and deleted afterwards.
 *
 *   /tmp/fsd-pg-XXXXXX/          owned by the server's user, mode 0700
 *     data/                      the cluster (initdb --auth=trust, superuser "fsd")
 *     .s.PGSQL.<port>            the Unix socket (-k), next to the data, not in /run
 *     initdb.log, postgres.log   shown in error messages when a step fails
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the unprivileged system
 * user PG_SERVER_USER (created with useradd --system when missing); otherwise as the caller.
 * The child drops privileges itself (setgid/setgroups/setuid) instead of going through
 * runuser, so the pid the harness holds is the postmaster's own and signals reach it
 * directly. The postmaster gets SIGQUIT (immediate shutdown) when the thread that started it
 * exits, so a crashed test leaves no server running; start (and restart) from a thread that
 * outlives the server, e.g. main. The folder a crash leaves behind is removed by a later
 * pg_server_start() once it has been stale for 10 minutes.
 *
 * Binaries come from $FSD_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin.
 * Nothing here exits: every function returns -1 with a message in `err`.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PG_SERVER_USER      "fsdtest"
#define PG_SERVER_SUPERUSER "fsd"
#define PG_SERVER_DATABASE  "fsd_test"
#define PG_SERVER_READY_S   60 /* start-up and crash recovery wait at most this long */

struct pg_server {
    char dir[256];     /* the temporary folder ("" when none) */
    char bindir[256];  /* initdb, postgres */
    int port;          /* on 127.0.0.1 */
    pid_t pid;         /* the postmaster, 0 when not running */
    bool drop_to_user; /* running as root: the server runs as PG_SERVER_USER */
    uid_t uid;
    gid_t gid;
    char dsn[512]; /* libpq key=value string for PG_SERVER_DATABASE as the superuser */
};

/*
 * initdb, start, wait until it accepts connections, create PG_SERVER_DATABASE. `options`
 * (may be NULL) are extra "-c name=value" settings, e.g. {"shared_buffers=256MB", NULL}.
 * On failure everything started so far is stopped and removed.
 */
int pg_server_start(struct pg_server *s, const char *const *options, char *err, size_t err_len);

/* Stops the server (SIGINT, then SIGKILL after 30 s) and removes its folder. Idempotent. */
void pg_server_stop(struct pg_server *s);

/* Stops the postmaster the hard way (SIGKILL to it and its backends); keeps the folder. */
void pg_server_kill(struct pg_server *s);

/* Starts the postmaster again on the same folder and port (after pg_server_kill). */
int pg_server_restart(struct pg_server *s, char *err, size_t err_len);

/* Waits (at most PG_SERVER_READY_S) until the server accepts connections again. */
int pg_server_wait_ready(struct pg_server *s, char *err, size_t err_len);

/* Runs SQL statements (several, separated by ';') in PG_SERVER_DATABASE. */
int pg_server_exec(const struct pg_server *s, const char *sql, char *err, size_t err_len);

/* A loopback TCP port nobody listens on right now (bound and released), or -1. */
int pg_server_free_port(void);
