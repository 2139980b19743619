#pragma once
/*
 * Who may do what: bearer tokens, each with a name and a role, read from the file that
 * server.auth.tokens_file names and re-read on SIGHUP. The RPC layer asks two questions:
 * which token a call's `authorization: Bearer <token>` header is (auth_authenticate, once per
 * call, when its headers arrive) and whether that token may write a given view
 * (auth_may_write_view, once the request names one). Roles are ordered, each allowing what the
 * one below it does:
 *
 *   read   GetFeatures, ListViews
 *   write  read, and PushRows and PushSnapshot, limited to the token's views if it lists any
 *   admin  everything, LoadSnapshot (and its path override) included
 *
 * The tokens file holds no token, only its SHA-256, one token a line:
 *
 *   # name   role   views         sha256 of the token
 *   ranker   read   * sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
 *   loader   write  users,items   sha256:...
 *
 * so the file is no secret worth stealing (the tokens are: random, at least 128 bits). With
 * mutual TLS (daemon/tls) a line may name a client certificate instead of a token, by its
 * subject as fsd logs it (RFC 2253, the rest of the line):
 *
 *   batch    write  items         cert:CN=batch-loader,O=acme
 *
 * A call that sends no token on a connection whose client certificate is listed gets that
 * line's role (auth_authenticate_subject); a token, when sent, decides. A file
 * that group or others may write is refused: whoever can write it can grant themselves admin.
 *
 * Threads: the set of tokens is published with RCU (store/rcu.h). Workers read it without
 * locks, each with a small cache of the tokens it has recently seen, so a connection that
 * sends the same token with every call pays one comparison, not a SHA-256, per call. The
 * control thread replaces the set on reload and keeps replaced sets a while, for the calls
 * authenticated with them that have not yet named their view.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/options.h"

#define AUTH_PATH_LEN    1024
#define AUTH_NAME_MAX    64   /* a token's name, NUL included */
#define AUTH_TOKEN_MAX   1024 /* longest token accepted in a header */
#define AUTH_MAX_TOKENS  4096
#define AUTH_SUBJECT_MAX 256 /* a client certificate's subject, NUL included */

/* ---- options ----------------------------------------------------------------------------- */

/* The config file's server.auth section. */
struct auth_options {
    char tokens_file[AUTH_PATH_LEN]; /* "": no authentication */
};
extern const struct option_group auth_option_group;

/*
 * The config file's server.allow_insecure: listening on an address other than loopback with
 * no authentication is refused unless it is set, so that an fsd open to the network is one
 * somebody chose.
 */
struct auth_exposure_options {
    bool allow_insecure;
};
extern const struct option_group auth_exposure_option_group;

/* ---- metrics ----------------------------------------------------------------------------- */

enum auth_metric {
    AUTH_M_TOKENS,  /* fsd_auth_tokens */
    AUTH_M_RELOADS, /* fsd_auth_token_file_loads_total{result} */
    AUTH_M_COUNT,
};
extern const struct metric_def auth_metric_defs[AUTH_M_COUNT];

/* ---- roles and refusals -------------------------------------------------------------------- */

enum auth_role {
    AUTH_ROLE_NONE, /* no token (authentication off, or not checked) */
    AUTH_ROLE_READ,
    AUTH_ROLE_WRITE,
    AUTH_ROLE_ADMIN,
};

/* Why a call was refused: the `reason` label of fsd_auth_failures_total. */
enum auth_failure {
    AUTH_FAIL_MISSING,   /* no authorization header: UNAUTHENTICATED */
    AUTH_FAIL_MALFORMED, /* not "Bearer <token>": UNAUTHENTICATED */
    AUTH_FAIL_UNKNOWN,   /* a token the file does not hold: UNAUTHENTICATED */
    AUTH_FAIL_ROLE,      /* the token's role does not allow the method: PERMISSION_DENIED */
    AUTH_FAIL_VIEW,      /* a write token limited to other views: PERMISSION_DENIED */
    AUTH_FAIL_COUNT,
};

/* "read", "write", "admin" ("none" for AUTH_ROLE_NONE). */
const char *auth_role_name(enum auth_role role);
/* "missing", "malformed", "unknown_token", "role", "view". */
const char *auth_failure_name(enum auth_failure failure);

/*
 * What authentication established about a call, small enough to travel with it (the
 * transport keeps it as an opaque 64-bit word: auth_grant_pack). `index` and `generation`
 * find the token again in the set it came from.
 */
struct auth_grant {
    enum auth_role role;
    uint16_t index;      /* of the token in its set */
    uint32_t generation; /* of the set; a reload makes a new one */
};
uint64_t auth_grant_pack(struct auth_grant grant);
struct auth_grant auth_grant_unpack(uint64_t packed);

/* ---- setup / teardown -------------------------------------------------------------------- */

/*
 * Reads the tokens file when `options` names one and registers the metrics. Returns 0, or -1
 * with `err` set ("tokens file /etc/fsd/tokens line 3: unknown role 'rw' (want read, write or
 * admin)"). Control thread, before the workers start.
 */
int auth_setup(const struct auth_options *options, char *err, size_t err_len);

/*
 * Re-reads the tokens file (SIGHUP). On success the new tokens apply to every call whose
 * headers arrive from now on; on error the old ones stay and -1 is returned with `err` set.
 * Does nothing and returns 0 when authentication is off. Control thread.
 */
int auth_reload(char *err, size_t err_len);

/* Frees the tokens (after the workers stopped) and unregisters the metrics. */
void auth_teardown(void);

/* ---- API --------------------------------------------------------------------------------- */

/* True when a tokens file is configured: every call but the health check needs a token. */
bool auth_enabled(void);

/* How many tokens the file held at its last successful read. */
size_t auth_token_count(void);

/*
 * Refuses a listener open to the network without authentication: returns 0 when `bind` (as
 * the config gives it) resolves only to loopback addresses, or `authenticated` is true, or
 * `options->allow_insecure` is set; else -1 with `err` saying what to set. `what` names the
 * listener in the message ("server.grpc_bind").
 */
int auth_check_exposure(const struct auth_exposure_options *options, const char *what,
                        const char *bind, bool authenticated, char *err, size_t err_len);

/* A worker's cache of recently seen tokens. Zero it before first use; one per thread. */
#define AUTH_CACHE_SLOTS     4
#define AUTH_CACHE_TOKEN_MAX 256 /* longer tokens are checked without the cache */
struct auth_cache {
    struct {
        uint32_t generation; /* 0: empty */
        uint16_t index;
        uint16_t len;
        uint8_t token[AUTH_CACHE_TOKEN_MAX];
    } slots[AUTH_CACHE_SLOTS];
    unsigned next; /* the slot the next miss replaces */
};

/*
 * Which token an `authorization` header value is (`value` NULL when the request had none).
 * Returns 0 with *grant set, or -1 with *failure set (MISSING, MALFORMED or UNKNOWN). The
 * comparison with the file's tokens takes the same time whichever token matches, or none.
 * Any thread inside or outside an RCU read-side section; never blocks.
 */
int auth_authenticate(struct auth_cache *cache, const uint8_t *value, size_t len,
                      struct auth_grant *grant, enum auth_failure *failure);

/* Which line names the client certificate with `subject` (verified by the TLS handshake).
 * Returns 0 with *grant set, or -1 with *failure UNKNOWN. Any thread; never blocks. */
int auth_authenticate_subject(const char *subject, struct auth_grant *grant,
                              enum auth_failure *failure);

/* The name of the grant's token into `out` (room for AUTH_NAME_MAX), or "-" when the grant
 * has none or its set has been retired. Returns `out`. */
const char *auth_grant_name(struct auth_grant grant, char *out);

/*
 * Whether the grant's token may write `view`: 1 yes, 0 no (a write token limited to other
 * views, or a read token), -1 when the set of tokens the grant came from has been retired
 * (a minute and eight reloads after it was replaced: a call that waited that long between
 * its headers and its request should be retried). Admin tokens and write tokens without a
 * view list may write every view. The grant's own set decides, even if a reload replaced it
 * meanwhile: a reload applies to calls whose headers arrive after it. Any thread; never blocks.
 */
int auth_may_write_view(struct auth_grant grant, const char *view);
