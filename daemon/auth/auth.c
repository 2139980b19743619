#include "auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "store/rcu.h"

#define DIGEST_LEN     32 /* SHA-256 */
#define LINE_MAX_BYTES 4096
/* A replaced set is kept this long and this many reloads, for calls authenticated with it. */
#define RETIRE_AFTER_US          (60 * 1000000LL)
#define RETIRE_AFTER_GENERATIONS 8

struct auth_token {
    char name[AUTH_NAME_MAX];
    enum auth_role role;
    uint8_t digest[DIGEST_LEN]; /* unused for a client certificate's entry */
    char *subject;              /* cert: entries, the certificate's subject; else NULL */
    char **views;               /* NULL: every view */
    size_t nviews;
};

/* One read of the tokens file; immutable once published. */
struct auth_set {
    struct store_rcu_head rcu;
    _Atomic(struct auth_set *) older; /* the set this one replaced, kept a while */
    uint32_t generation;
    int64_t replaced_us; /* when a newer set replaced this one; 0 while current */
    size_t ntokens;
    struct auth_token tokens[];
};

static struct {
    struct auth_options options;
    _Atomic(struct auth_set *) current; /* NULL: authentication off */
    uint32_t generation;                /* of the newest set */
    _Atomic uint64_t loads_ok;
    _Atomic uint64_t loads_failed;
    bool registered;
    /* SHA-256, fetched from OpenSSL's provider once at setup: a fetch by name on every call
     * costs microseconds, and the process's first one milliseconds, which the first
     * authenticated call would otherwise pay out of its time budget. */
    EVP_MD *sha256;
} state;

/* ---- options ----------------------------------------------------------------------------- */

static const struct option_def auth_option_defs[] = {
    {
        .name = "tokens_file",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = AUTH_PATH_LEN - 1,
        OPTION_STRING_AT(struct auth_options, tokens_file),
        .description = "File of bearer tokens that may call fsd, one `name role views "
                       "sha256:<hex>` a line (role read, write or admin; views `*` or a comma "
                       "list limiting a write token), or `cert:<subject>` for a client "
                       "certificate under mutual TLS; re-read on SIGHUP. Empty: no "
                       "authentication, every client may call every method.",
    },
};

const struct option_group auth_option_group = {
    "server.auth", auth_option_defs, sizeof auth_option_defs / sizeof auth_option_defs[0], NULL};

static const struct option_def auth_exposure_option_defs[] = {
    {
        .name = "allow_insecure",
        .type = OPTION_BOOL,
        .default_text = "false",
        OPTION_BOOL_AT(struct auth_exposure_options, allow_insecure),
        .description = "Listen on addresses other than loopback without authentication. "
                       "Without it fsd refuses to start when grpc_bind or stats_bind is not a "
                       "loopback address and no tokens file (or stats_token) is set.",
    },
};

const struct option_group auth_exposure_option_group = {
    "server", auth_exposure_option_defs,
    sizeof auth_exposure_option_defs / sizeof auth_exposure_option_defs[0], NULL};

/* ---- metrics ----------------------------------------------------------------------------- */

const struct metric_def auth_metric_defs[AUTH_M_COUNT] = {
    [AUTH_M_TOKENS] = {"fsd_auth_tokens", METRIC_GAUGE, "",
                       "Tokens the tokens file held at its last successful read (0 when "
                       "authentication is off)."},
    [AUTH_M_RELOADS] = {"fsd_auth_token_file_loads_total", METRIC_COUNTER, "result",
                        "Reads of the tokens file, at start and on SIGHUP, by result (ok, "
                        "error: the tokens before it stay)."},
};

static void _collect(struct metric_writer *w, void *ctx) {
    (void)ctx;
    metrics_write_count(w, &auth_metric_defs[AUTH_M_TOKENS], NULL, auth_token_count());
    const char *ok[] = {"ok"}, *failed[] = {"error"};
    metrics_write_count(w, &auth_metric_defs[AUTH_M_RELOADS], ok,
                        atomic_load_explicit(&state.loads_ok, memory_order_relaxed));
    metrics_write_count(w, &auth_metric_defs[AUTH_M_RELOADS], failed,
                        atomic_load_explicit(&state.loads_failed, memory_order_relaxed));
}

/* ---- names ------------------------------------------------------------------------------- */

static const char *const role_names[] = {"none", "read", "write", "admin"};
static const char *const failure_names[AUTH_FAIL_COUNT] = {
    [AUTH_FAIL_MISSING] = "missing",
    [AUTH_FAIL_MALFORMED] = "malformed",
    [AUTH_FAIL_UNKNOWN] = "unknown_token",
    [AUTH_FAIL_ROLE] = "role",
    [AUTH_FAIL_VIEW] = "view",
};

const char *auth_role_name(enum auth_role role) {
    return (unsigned)role < sizeof role_names / sizeof role_names[0] ? role_names[role] : "none";
}

const char *auth_failure_name(enum auth_failure failure) {
    return (unsigned)failure < AUTH_FAIL_COUNT ? failure_names[failure] : "unknown";
}

uint64_t auth_grant_pack(struct auth_grant grant) {
    return (uint64_t)grant.generation << 32 | (uint64_t)grant.index << 8 | (uint64_t)grant.role;
}

struct auth_grant auth_grant_unpack(uint64_t packed) {
    return (struct auth_grant){.role = (enum auth_role)(packed & 0xff),
                               .index = (uint16_t)(packed >> 8),
                               .generation = (uint32_t)(packed >> 32)};
}

/* ---- the tokens file --------------------------------------------------------------------- */

static void _set_free(struct auth_set *set) {
    for (size_t i = 0; set != NULL && i < set->ntokens; i++) {
        for (size_t v = 0; v < set->tokens[i].nviews; v++) {
            free(set->tokens[i].views[v]);
        }
        free(set->tokens[i].views);
        free(set->tokens[i].subject);
    }
    free(set);
}

static void _set_free_rcu(struct store_rcu_head *head) {
    _set_free((struct auth_set *)head);
}

static bool _name_ok(const char *s, size_t max) {
    size_t len = strlen(s);
    return len > 0 && len < max &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

static int _hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "sha256:<64 hex digits>" into `digest`; -1 when it is not that. */
static int _parse_digest(const char *text, uint8_t digest[DIGEST_LEN]) {
    static const char prefix[] = "sha256:";
    if (strncmp(text, prefix, sizeof prefix - 1) != 0) {
        return -1;
    }
    text += sizeof prefix - 1;
    if (strlen(text) != 2 * DIGEST_LEN) {
        return -1;
    }
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = _hex_digit(text[2 * i]), lo = _hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        digest[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A write token's view list ("users,items") into `token`; -1 with `why` set. */
static int _parse_views(char *text, struct auth_token *token, char *why, size_t why_len) {
    if (strcmp(text, "*") == 0) {
        return 0;
    }
    if (token->role != AUTH_ROLE_WRITE) {
        return errors_set(why, why_len,
                          "views '%s' given to a %s token: a view list limits a "
                          "write token only (use *)",
                          text, auth_role_name(token->role));
    }
    size_t n = 1;
    for (const char *p = text; *p; p++) {
        n += *p == ',';
    }
    token->views = calloc(n, sizeof *token->views);
    if (token->views == NULL) {
        return errors_set(why, why_len, "out of memory");
    }
    char *save = NULL;
    for (char *v = strtok_r(text, ",", &save); v != NULL; v = strtok_r(NULL, ",", &save)) {
        if (!_name_ok(v, 128)) {
            return errors_set(why, why_len, "view name '%s' is not a view name", v);
        }
        token->views[token->nviews] = strdup(v);
        if (token->views[token->nviews] == NULL) {
            return errors_set(why, why_len, "out of memory");
        }
        token->nviews++;
    }
    if (token->nviews == 0) {
        return errors_set(why, why_len, "empty view list (use * for every view)");
    }
    return 0;
}

/* One line's fields into `token`; -1 with `why` set. The fourth field is a token's digest, or
 * "cert:" and a client certificate's subject, which may hold spaces: the rest of the line. */
static int _parse_line(char *line, struct auth_token *token, char *why, size_t why_len) {
    char *fields[5] = {0};
    size_t n = 0;
    char *save = NULL;
    for (char *f = strtok_r(line, " \t", &save); f != NULL;
         f = n < 3 ? strtok_r(NULL, " \t", &save) : NULL) {
        fields[n++] = f;
    }
    char *rest = save != NULL ? save + strspn(save, " \t") : NULL;
    if (n == 3 && rest != NULL && strncmp(rest, "cert:", 5) == 0) {
        char *subject = rest + 5;
        size_t len = strlen(subject);
        while (len > 0 && (subject[len - 1] == ' ' || subject[len - 1] == '\t')) {
            subject[--len] = '\0';
        }
        if (len == 0 || len >= AUTH_SUBJECT_MAX) {
            return errors_set(why, why_len,
                              "cert: needs the client certificate's subject as the server logs "
                              "it (RFC 2253, e.g. cert:CN=ranker,O=acme), shorter than %d bytes",
                              AUTH_SUBJECT_MAX);
        }
        if ((token->subject = strdup(subject)) == NULL) {
            return errors_set(why, why_len, "out of memory");
        }
        fields[n++] = subject;
        rest = NULL;
    }
    for (char *f = rest != NULL ? strtok_r(NULL, " \t", &save) : NULL; f != NULL;
         f = strtok_r(NULL, " \t", &save)) {
        if (n == 4) {
            return errors_set(why, why_len,
                              "more than 4 fields (want: name role views "
                              "sha256:<hex>)");
        }
        fields[n++] = f;
    }
    if (n != 4) {
        return errors_set(why, why_len, "%zu field%s (want: name role views sha256:<hex>)", n,
                          n == 1 ? "" : "s");
    }
    if (!_name_ok(fields[0], AUTH_NAME_MAX)) {
        return errors_set(why, why_len,
                          "name '%.64s' (want 1-63 of A-Z a-z 0-9 _ . -: names go into logs)",
                          fields[0]);
    }
    snprintf(token->name, sizeof token->name, "%s", fields[0]);
    token->role = AUTH_ROLE_NONE;
    for (int r = AUTH_ROLE_READ; r <= AUTH_ROLE_ADMIN; r++) {
        if (strcmp(fields[1], role_names[r]) == 0) {
            token->role = (enum auth_role)r;
        }
    }
    if (token->role == AUTH_ROLE_NONE) {
        return errors_set(why, why_len, "unknown role '%.32s' (want read, write or admin)",
                          fields[1]);
    }
    if (token->subject == NULL && _parse_digest(fields[3], token->digest) != 0) {
        return errors_set(why, why_len,
                          "the fourth field must be sha256: and the token's SHA-256 in 64 hex "
                          "digits (printf %%s \"$TOKEN\" | sha256sum), not the token itself, "
                          "or cert: and a client certificate's subject");
    }
    return _parse_views(fields[2], token, why, why_len);
}

/* Reads `path` into a new set; NULL with `err` set. */
static struct auth_set *_read_file(const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        errors_set(err, err_len, "tokens file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        errors_set(err, err_len, "tokens file %s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        errors_set(err, err_len,
                   "tokens file %s: mode %04o lets group or others write it, and so grant "
                   "themselves any role (chmod go-w)",
                   path, (unsigned)(st.st_mode & 07777));
        fclose(f);
        return NULL;
    }
    size_t cap = 16;
    struct auth_set *set = calloc(1, sizeof *set + cap * sizeof(struct auth_token));
    char line[LINE_MAX_BYTES + 2];
    unsigned lineno = 0;
    char why[512];
    while (set != NULL && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > LINE_MAX_BYTES) {
            errors_set(err, err_len, "tokens file %s line %u: longer than %d bytes", path, lineno,
                       LINE_MAX_BYTES);
            goto fail;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *text = line + strspn(line, " \t");
        if (*text == '\0' || *text == '#') {
            continue;
        }
        if (set->ntokens == AUTH_MAX_TOKENS) {
            errors_set(err, err_len, "tokens file %s: more than %d tokens", path, AUTH_MAX_TOKENS);
            goto fail;
        }
        if (set->ntokens == cap) {
            cap *= 2;
            struct auth_set *grown = realloc(set, sizeof *set + cap * sizeof(struct auth_token));
            if (grown == NULL) {
                errors_set(err, err_len, "tokens file %s: out of memory", path);
                goto fail;
            }
            set = grown;
        }
        struct auth_token *token = &set->tokens[set->ntokens];
        memset(token, 0, sizeof *token);
        set->ntokens++; /* counted now, so a half-parsed token is freed with the set */
        if (_parse_line(text, token, why, sizeof why) != 0) {
            errors_set(err, err_len, "tokens file %s line %u: %s", path, lineno, why);
            goto fail;
        }
        for (size_t i = 0; i + 1 < set->ntokens; i++) {
            if (strcmp(set->tokens[i].name, token->name) == 0) {
                errors_set(err, err_len, "tokens file %s line %u: a second token named %s", path,
                           lineno, token->name);
                goto fail;
            }
            const struct auth_token *other = &set->tokens[i];
            if (token->subject != NULL || other->subject != NULL) {
                if (token->subject != NULL && other->subject != NULL &&
                    strcmp(token->subject, other->subject) == 0) {
                    errors_set(err, err_len,
                               "tokens file %s line %u: %s names the certificate of %s again", path,
                               lineno, token->name, other->name);
                    goto fail;
                }
                continue;
            }
            if (memcmp(set->tokens[i].digest, token->digest, DIGEST_LEN) == 0) {
                errors_set(err, err_len, "tokens file %s line %u: token %s is token %s again", path,
                           lineno, token->name, set->tokens[i].name);
                goto fail;
            }
        }
    }
    if (set == NULL) {
        errors_set(err, err_len, "tokens file %s: out of memory", path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        errors_set(err, err_len, "tokens file %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    return set;
fail:
    fclose(f);
    _set_free(set);
    return NULL;
}

/*
 * Publishes `set` as the current one. The set it replaces is kept, linked from the new one,
 * until it is RETIRE_AFTER_US old and RETIRE_AFTER_GENERATIONS behind; then it is unlinked
 * and freed after a grace period.
 */
static void _publish(struct auth_set *set) {
    set->generation = ++state.generation;
    if (set->generation == 0) { /* 0 marks an empty cache slot */
        set->generation = ++state.generation;
    }
    struct auth_set *old = atomic_load_explicit(&state.current, memory_order_relaxed);
    if (old != NULL) {
        old->replaced_us = clock_mono_us();
    }
    atomic_store_explicit(&set->older, old, memory_order_relaxed);
    atomic_store_explicit(&state.current, set, memory_order_release);

    int64_t now = clock_mono_us();
    struct auth_set *keep = set;
    for (struct auth_set *s = old; s != NULL;
         keep = s, s = atomic_load_explicit(&s->older, memory_order_relaxed)) {
        if (now - s->replaced_us >= RETIRE_AFTER_US &&
            set->generation - s->generation >= RETIRE_AFTER_GENERATIONS) {
            atomic_store_explicit(&keep->older, NULL, memory_order_release);
            while (s != NULL) {
                struct auth_set *next = atomic_load_explicit(&s->older, memory_order_relaxed);
                store_rcu_defer(&s->rcu, _set_free_rcu);
                s = next;
            }
            break;
        }
    }
}

/* ---- setup / teardown -------------------------------------------------------------------- */

int auth_setup(const struct auth_options *options, char *err, size_t err_len) {
    state.options = *options;
    if (!state.registered) {
        if (metrics_register(_collect, NULL) != 0) {
            return errors_set(err, err_len, "out of memory");
        }
        state.registered = true;
    }
    if (options->tokens_file[0] == '\0') {
        return 0;
    }
    if (state.sha256 == NULL && (state.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
        return errors_set(err, err_len, "OpenSSL has no SHA-256");
    }
    struct auth_set *set = _read_file(options->tokens_file, err, err_len);
    if (set == NULL) {
        atomic_fetch_add_explicit(&state.loads_failed, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&state.loads_ok, 1, memory_order_relaxed);
    _publish(set);
    log_info("tokens loaded", "file=%s tokens=%zu", LOG_QUOTE(options->tokens_file), set->ntokens);
    return 0;
}

int auth_reload(char *err, size_t err_len) {
    if (!auth_enabled()) {
        return 0;
    }
    struct auth_set *set = _read_file(state.options.tokens_file, err, err_len);
    if (set == NULL) {
        atomic_fetch_add_explicit(&state.loads_failed, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&state.loads_ok, 1, memory_order_relaxed);
    _publish(set);
    log_info("tokens reloaded", "file=%s tokens=%zu", LOG_QUOTE(state.options.tokens_file),
             set->ntokens);
    return 0;
}

void auth_teardown(void) {
    if (state.registered) {
        metrics_unregister(_collect, NULL);
    }
    struct auth_set *s = atomic_exchange_explicit(&state.current, NULL, memory_order_acq_rel);
    while (s != NULL) {
        struct auth_set *next = atomic_load_explicit(&s->older, memory_order_relaxed);
        _set_free(s);
        s = next;
    }
    EVP_MD_free(state.sha256);
    memset(&state, 0, sizeof state);
}

/* ---- API --------------------------------------------------------------------------------- */

bool auth_enabled(void) {
    return atomic_load_explicit(&state.current, memory_order_acquire) != NULL;
}

size_t auth_token_count(void) {
    store_read_lock();
    const struct auth_set *set = atomic_load_explicit(&state.current, memory_order_acquire);
    size_t n = set ? set->ntokens : 0;
    store_read_unlock();
    return n;
}

static bool _is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            return in6->sin6_addr.s6_addr[12] == 127;
        }
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

int auth_check_exposure(const struct auth_exposure_options *options, const char *what,
                        const char *bind, bool authenticated, char *err, size_t err_len) {
    if (authenticated || options->allow_insecure) {
        return 0;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *res = NULL;
    bool loopback = false;
    if (getaddrinfo(bind[0] ? bind : NULL, "0", &hints, &res) == 0) {
        loopback = res != NULL;
        for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            loopback = loopback && _is_loopback(ai->ai_addr);
        }
        freeaddrinfo(res);
    }
    if (loopback) {
        return 0;
    }
    return errors_set(err, err_len,
                      "%s is %s, which is not a loopback address, and no client has to "
                      "authenticate: set server.auth.tokens_file (see the README's "
                      "Authentication section), or server.allow_insecure: true if the network "
                      "in front of fsd is trusted",
                      what, bind[0] ? bind : "(every address)");
}

/* "Bearer <token>" (scheme in any case, RFC 7235) to the token; NULL when it is not that. */
static const uint8_t *_bearer_token(const uint8_t *value, size_t len, size_t *token_len) {
    static const char scheme[] = "bearer";
    size_t n = sizeof scheme - 1;
    if (len <= n || strncasecmp((const char *)value, scheme, n) != 0 || value[n] != ' ') {
        return NULL;
    }
    size_t start = n;
    while (start < len && value[start] == ' ') {
        start++;
    }
    size_t end = len;
    while (end > start && value[end - 1] == ' ') {
        end--;
    }
    if (end == start || end - start > AUTH_TOKEN_MAX) {
        return NULL;
    }
    *token_len = end - start;
    return value + start;
}

/* The token whose digest is `digest`, comparing with every token so that the time taken does
 * not tell which (or whether one) matched; -1 when none. */
static long _find_digest(const struct auth_set *set, const uint8_t digest[DIGEST_LEN]) {
    long found = -1;
    for (size_t i = 0; i < set->ntokens; i++) {
        bool match = set->tokens[i].subject == NULL &&
                     CRYPTO_memcmp(set->tokens[i].digest, digest, DIGEST_LEN) == 0;
        found = match ? (long)i : found;
    }
    return found;
}

int auth_authenticate(struct auth_cache *cache, const uint8_t *value, size_t len,
                      struct auth_grant *grant, enum auth_failure *failure) {
    if (value == NULL) {
        *failure = AUTH_FAIL_MISSING;
        return -1;
    }
    size_t token_len = 0;
    const uint8_t *token = _bearer_token(value, len, &token_len);
    if (token == NULL) {
        *failure = AUTH_FAIL_MALFORMED;
        return -1;
    }
    store_read_lock();
    const struct auth_set *set = atomic_load_explicit(&state.current, memory_order_acquire);
    long index = -1;
    if (set != NULL && token_len <= AUTH_CACHE_TOKEN_MAX) {
        for (unsigned i = 0; i < AUTH_CACHE_SLOTS; i++) {
            if (cache->slots[i].generation == set->generation && cache->slots[i].len == token_len &&
                CRYPTO_memcmp(cache->slots[i].token, token, token_len) == 0) {
                index = cache->slots[i].index;
            }
        }
    }
    if (set != NULL && index < 0) {
        uint8_t digest[DIGEST_LEN];
        unsigned digest_len = 0;
        if (state.sha256 != NULL &&
            EVP_Digest(token, token_len, digest, &digest_len, state.sha256, NULL) == 1) {
            index = _find_digest(set, digest);
        }
        if (index >= 0 && token_len <= AUTH_CACHE_TOKEN_MAX) {
            unsigned slot = cache->next++ % AUTH_CACHE_SLOTS;
            cache->slots[slot].generation = set->generation;
            cache->slots[slot].index = (uint16_t)index;
            cache->slots[slot].len = (uint16_t)token_len;
            memcpy(cache->slots[slot].token, token, token_len);
        }
    }
    if (index >= 0) {
        *grant = (struct auth_grant){.role = set->tokens[index].role,
                                     .index = (uint16_t)index,
                                     .generation = set->generation};
    }
    store_read_unlock();
    if (index < 0) {
        *failure = AUTH_FAIL_UNKNOWN;
        return -1;
    }
    return 0;
}

int auth_authenticate_subject(const char *subject, struct auth_grant *grant,
                              enum auth_failure *failure) {
    store_read_lock();
    const struct auth_set *set = atomic_load_explicit(&state.current, memory_order_acquire);
    long index = -1;
    for (size_t i = 0; set != NULL && i < set->ntokens && index < 0; i++) {
        if (set->tokens[i].subject != NULL && strcmp(set->tokens[i].subject, subject) == 0) {
            index = (long)i;
        }
    }
    if (index >= 0) {
        *grant = (struct auth_grant){.role = set->tokens[index].role,
                                     .index = (uint16_t)index,
                                     .generation = set->generation};
    }
    store_read_unlock();
    if (index < 0) {
        *failure = AUTH_FAIL_UNKNOWN;
        return -1;
    }
    return 0;
}

/* The grant's token in the set it came from, or NULL once that set is retired. Inside a
 * read-side section. */
static const struct auth_token *_grant_token(struct auth_grant grant) {
    for (const struct auth_set *s = atomic_load_explicit(&state.current, memory_order_acquire);
         s != NULL; s = atomic_load_explicit(&s->older, memory_order_acquire)) {
        if (s->generation == grant.generation) {
            return grant.index < s->ntokens ? &s->tokens[grant.index] : NULL;
        }
    }
    return NULL;
}

const char *auth_grant_name(struct auth_grant grant, char *out) {
    snprintf(out, AUTH_NAME_MAX, "-");
    if (grant.role == AUTH_ROLE_NONE) {
        return out;
    }
    store_read_lock();
    const struct auth_token *token = _grant_token(grant);
    if (token != NULL) {
        snprintf(out, AUTH_NAME_MAX, "%s", token->name);
    }
    store_read_unlock();
    return out;
}

int auth_may_write_view(struct auth_grant grant, const char *view) {
    if (grant.role == AUTH_ROLE_ADMIN) {
        return 1;
    }
    if (grant.role != AUTH_ROLE_WRITE) {
        return 0;
    }
    store_read_lock();
    const struct auth_token *token = _grant_token(grant);
    int allowed = token == NULL ? -1 : token->views == NULL;
    for (size_t i = 0; token != NULL && i < token->nviews && !allowed; i++) {
        allowed = strcmp(token->views[i], view) == 0;
    }
    store_read_unlock();
    return allowed;
}
