#pragma once
/*
 * TLS on the gRPC port and the stats port, with OpenSSL 3: the server's certificate and key
 * from the files server.tls names; on the gRPC port ALPN "h2" (what gRPC clients ask for) and
 * optionally mutual TLS, where every client must present a certificate signed by
 * client_ca_file; on the stats port HTTP/1.1. A port is either TLS or cleartext, never both:
 * with cert_file set, every connection to either starts with a handshake.
 *
 * One server context is current at a time. tls_reload() (SIGHUP) reads the files again into
 * a new one and makes it current; connections accepted before keep the session they began
 * with, so a certificate is rotated without dropping anybody. A reload that fails (a file
 * missing, a key that does not match its certificate) keeps the current context.
 *
 * Threads: setup, reload and teardown on the control thread; tls_session_new() and the
 * counters on the workers (a mutex guards the current context; taken once per connection).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/metrics.h"
#include "common/options.h"

#define TLS_PATH_LEN 1024

/* server.tls (tls_option_group). Empty strings: not set. */
struct tls_options {
    char cert_file[TLS_PATH_LEN];      /* PEM: the server's certificate, then its chain */
    char key_file[TLS_PATH_LEN];       /* PEM: its private key */
    char client_ca_file[TLS_PATH_LEN]; /* PEM: CAs whose client certificates are accepted */
};

extern const struct option_group tls_option_group;

enum tls_metric {
    TLS_M_HANDSHAKES, /* fsd_tls_handshakes_total{result} */
    TLS_M_LOADS,      /* fsd_tls_certificate_loads_total{result} */
    TLS_M_NOT_AFTER,  /* fsd_tls_certificate_not_after_seconds */
    TLS_M_COUNT,
};
extern const struct metric_def tls_metric_defs[TLS_M_COUNT];

/*
 * Reads the files and makes the first context current, and registers the metrics. With no
 * cert_file, TLS is off (and key_file, client_ca_file must be empty too). Returns 0, or -1
 * with `err` saying which file and why.
 */
int tls_setup(const struct tls_options *options, char *err, size_t err_len);
void tls_teardown(void);

/* Whether the gRPC port speaks TLS. */
bool tls_enabled(void);

/* Reads the files again into a new current context. Returns 0 (also when TLS is off), or -1
 * with `err` set and the current context kept. */
int tls_reload(char *err, size_t err_len);

/* A server session on accepted socket `fd`, from the current context (its handshake begins
 * with the first read or write). NULL when TLS is off or out of memory. Any thread. */
SSL *tls_session_new(int fd);

/* A session for the stats port (HTTP/1.1: no ALPN, no client certificate asked; the stats
 * port has its own token), for libevent's OpenSSL bufferevent to accept with. NULL when TLS is
 * off or out of memory. Any thread. */
SSL *tls_http_session_new(void);

/* Counts a handshake's end, for the metrics. Any thread. */
void tls_count_handshake(bool ok);

/*
 * Why a TLS read or write failed, for a log line: OpenSSL's reason for the oldest error
 * queued on this thread (the queue is then cleared), or `fallback`. Writes into `out`.
 */
const char *tls_error_reason(const SSL *ssl, int ssl_error, char *out, size_t out_len);

/* The subject of the client's verified certificate in RFC 2253 form ("CN=ranker,O=acme"),
 * "" without one. */
void tls_peer_subject(const SSL *ssl, char *out, size_t out_len);
