/* TLS on the gRPC port (tls.h): the server context, its reloads, and what the workers ask. */
#include "tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/errors.h"
#include "common/log.h"

static struct {
    struct tls_options options;
    bool enabled;
    bool registered;
    pthread_mutex_t lock; /* guards the contexts against a reload replacing them */
    SSL_CTX *current;     /* the gRPC port's: ALPN h2, client certificates if configured */
    SSL_CTX *http;        /* the stats port's: HTTP/1.1, no client certificate asked */
    int64_t not_after_s;  /* of the current certificate, Unix seconds */
    _Atomic uint64_t handshakes_ok;
    _Atomic uint64_t handshakes_failed;
    _Atomic uint64_t loads_ok;
    _Atomic uint64_t loads_failed;
} state = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- options ----------------------------------------------------------------------------- */

static const struct option_def tls_option_defs[] = {
    {
        .name = "cert_file",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = TLS_PATH_LEN - 1,
        OPTION_STRING_AT(struct tls_options, cert_file),
        .description = "PEM file of the certificate (then its chain). Set: the gRPC port "
                       "speaks TLS only (ALPN h2, or http/1.1 for Feast's JSON API), and the stats "
                       "port HTTPS only. Re-read on "
                       "SIGHUP, open connections kept. Empty: cleartext.",
    },
    {
        .name = "key_file",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = TLS_PATH_LEN - 1,
        OPTION_STRING_AT(struct tls_options, key_file),
        .description = "PEM file of the certificate's private key (required with cert_file); "
                       "re-read on SIGHUP.",
    },
    {
        .name = "client_ca_file",
        .type = OPTION_STRING,
        .default_text = "",
        .min = 0,
        .max = TLS_PATH_LEN - 1,
        OPTION_STRING_AT(struct tls_options, client_ca_file),
        .description = "PEM file of the CAs whose client certificates are accepted. Set: "
                       "mutual TLS, every client must present a valid certificate signed by "
                       "one of them; re-read on SIGHUP.",
    },
};

const struct option_group tls_option_group = {
    "server.tls", tls_option_defs, sizeof tls_option_defs / sizeof tls_option_defs[0], NULL};

/* ---- metrics ----------------------------------------------------------------------------- */

const struct metric_def tls_metric_defs[TLS_M_COUNT] = {
    [TLS_M_HANDSHAKES] = {"fsd_tls_handshakes_total", METRIC_COUNTER, "result",
                          "TLS handshakes on the gRPC port by result (ok, failed: the reason "
                          "is logged, \"tls handshake failed\")."},
    [TLS_M_LOADS] = {"fsd_tls_certificate_loads_total", METRIC_COUNTER, "result",
                     "Reads of server.tls's files, at start and on SIGHUP, by result (ok, "
                     "error: the certificate before it stays)."},
    [TLS_M_NOT_AFTER] = {"fsd_tls_certificate_not_after_seconds", METRIC_GAUGE, "",
                         "When the gRPC port's current certificate expires (Unix seconds); "
                         "alert well before it."},
};

static uint64_t _load(_Atomic uint64_t *v) {
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void _collect(struct metric_writer *w, void *ctx) {
    (void)ctx;
    const char *ok[] = {"ok"}, *failed[] = {"failed"}, *error[] = {"error"};
    metrics_write_count(w, &tls_metric_defs[TLS_M_HANDSHAKES], ok, _load(&state.handshakes_ok));
    metrics_write_count(w, &tls_metric_defs[TLS_M_HANDSHAKES], failed,
                        _load(&state.handshakes_failed));
    metrics_write_count(w, &tls_metric_defs[TLS_M_LOADS], ok, _load(&state.loads_ok));
    metrics_write_count(w, &tls_metric_defs[TLS_M_LOADS], error, _load(&state.loads_failed));
    pthread_mutex_lock(&state.lock);
    int64_t not_after = state.not_after_s;
    pthread_mutex_unlock(&state.lock);
    metrics_write_value(w, &tls_metric_defs[TLS_M_NOT_AFTER], NULL, (double)not_after);
}

/* ---- the context ------------------------------------------------------------------------- */

/* OpenSSL's reason for the oldest queued error, and the queue cleared. */
static const char *_openssl_reason(char *out, size_t out_len, const char *fallback) {
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(out, out_len, "%s", fallback);
    } else {
        const char *reason = ERR_reason_error_string(e);
        snprintf(out, out_len, "%s", reason != NULL ? reason : fallback);
    }
    ERR_clear_error();
    return out;
}

/*
 * ALPN: gRPC is HTTP/2, Feast's JSON API HTTP/1.1 (the port serves both); h2 when the client
 * offers it, else http/1.1. A client that offers neither is told so by the handshake.
 */
static int _select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/* Unix seconds of the certificate's notAfter, or 0. */
static int64_t _not_after(const X509 *cert) {
    const ASN1_TIME *t = cert != NULL ? X509_get0_notAfter(cert) : NULL;
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (int64_t)timegm(&tm);
}

/* A new server context from the option's files, or NULL with `err` naming the file. `grpc`:
 * the gRPC port's (ALPN h2, mutual TLS when client_ca_file is set); else the stats port's. */
static SSL_CTX *_build(const struct tls_options *o, bool grpc, int64_t *not_after, char *err,
                       size_t err_len) {
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        errors_set(err, err_len, "TLS: cannot create a context: %s",
                   _openssl_reason(why, sizeof why, "out of memory"));
        return NULL;
    }
    /* TLS 1.2 and 1.3 only; no renegotiation (a client could make the server work for it),
     * no session tickets or cache (nothing to rotate, nothing kept per client). */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* The transport writes from a buffer that moves and may take part of it. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (grpc) {
        SSL_CTX_set_alpn_select_cb(ctx, _select_alpn, NULL);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
        errors_set(err, err_len, "TLS: server.tls.cert_file %s: %s", o->cert_file,
                   _openssl_reason(why, sizeof why, "cannot read it"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
        errors_set(err, err_len, "TLS: server.tls.key_file %s: %s", o->key_file,
                   _openssl_reason(why, sizeof why, "cannot read it"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        errors_set(err, err_len, "TLS: server.tls.key_file %s is not the key of %s: %s",
                   o->key_file, o->cert_file,
                   _openssl_reason(why, sizeof why, "they do not match"));
        goto fail;
    }
    if (grpc && o->client_ca_file[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            errors_set(err, err_len, "TLS: server.tls.client_ca_file %s: %s", o->client_ca_file,
                       _openssl_reason(why, sizeof why, "no CA certificate in it"));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* what the server asks the client for */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *not_after = _not_after(SSL_CTX_get0_certificate(ctx));
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Builds a context and makes it current; counts the load either way. */
static int _load_files(char *err, size_t err_len) {
    int64_t not_after = 0;
    SSL_CTX *ctx = _build(&state.options, true, &not_after, err, err_len);
    SSL_CTX *http = ctx != NULL ? _build(&state.options, false, &not_after, err, err_len) : NULL;
    if (http == NULL) {
        SSL_CTX_free(ctx);
        atomic_fetch_add_explicit(&state.loads_failed, 1, memory_order_relaxed);
        return -1;
    }
    pthread_mutex_lock(&state.lock);
    SSL_CTX *old = state.current, *old_http = state.http;
    state.current = ctx;
    state.http = http;
    state.not_after_s = not_after;
    pthread_mutex_unlock(&state.lock);
    SSL_CTX_free(old); /* sessions made from them hold their own references */
    SSL_CTX_free(old_http);
    atomic_fetch_add_explicit(&state.loads_ok, 1, memory_order_relaxed);
    return 0;
}

int tls_setup(const struct tls_options *options, char *err, size_t err_len) {
    state.options = *options;
    if (options->cert_file[0] == '\0') {
        if (options->key_file[0] != '\0' || options->client_ca_file[0] != '\0') {
            return errors_set(err, err_len,
                              "TLS: server.tls.key_file and client_ca_file need cert_file");
        }
        state.enabled = false;
        return 0;
    }
    if (options->key_file[0] == '\0') {
        return errors_set(err, err_len, "TLS: server.tls.cert_file needs key_file");
    }
    if (_load_files(err, err_len) != 0) {
        return -1;
    }
    state.enabled = true;
    if (!state.registered) {
        if (metrics_register(_collect, NULL) != 0) {
            tls_teardown();
            return errors_set(err, err_len, "TLS: out of memory");
        }
        state.registered = true;
    }
    return 0;
}

void tls_teardown(void) {
    if (state.registered) {
        metrics_unregister(_collect, NULL);
        state.registered = false;
    }
    pthread_mutex_lock(&state.lock);
    SSL_CTX_free(state.current);
    SSL_CTX_free(state.http);
    state.current = NULL;
    state.http = NULL;
    pthread_mutex_unlock(&state.lock);
    state.enabled = false;
}

bool tls_enabled(void) {
    return state.enabled;
}

int tls_reload(char *err, size_t err_len) {
    return state.enabled ? _load_files(err, err_len) : 0;
}

SSL *tls_session_new(int fd) {
    pthread_mutex_lock(&state.lock);
    SSL *ssl = state.current != NULL ? SSL_new(state.current) : NULL;
    pthread_mutex_unlock(&state.lock);
    if (ssl != NULL && SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (ssl != NULL) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}

SSL *tls_http_session_new(void) {
    pthread_mutex_lock(&state.lock);
    SSL *ssl = state.http != NULL ? SSL_new(state.http) : NULL;
    pthread_mutex_unlock(&state.lock);
    return ssl;
}

void tls_count_handshake(bool ok) {
    atomic_fetch_add_explicit(ok ? &state.handshakes_ok : &state.handshakes_failed, 1,
                              memory_order_relaxed);
}

const char *tls_error_reason(const SSL *ssl, int ssl_error, char *out, size_t out_len) {
    const char *fallback = ssl_error == SSL_ERROR_SYSCALL       ? "the connection broke"
                           : ssl_error == SSL_ERROR_ZERO_RETURN ? "closed by the client"
                                                                : "TLS error";
    _openssl_reason(out, out_len, fallback);
    long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (verify != X509_V_OK) {
        /* the client's certificate: say what was wrong with it, not only that it was */
        size_t n = strlen(out);
        snprintf(out + n, out_len - n, " (%s)", X509_verify_cert_error_string(verify));
    }
    return out;
}

void tls_peer_subject(const SSL *ssl, char *out, size_t out_len) {
    out[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
        return;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, out, (int)out_len - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}
