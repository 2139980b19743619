/* The client's small pure helpers: status names, grpc-message decoding, address parsing. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

static const char *const _code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *client_code_name(int code) {
    if (code < 0 || (size_t)code >= sizeof _code_names / sizeof _code_names[0]) {
        return "INVALID_CODE";
    }
    return _code_names[code];
}

size_t client_percent_decode(const char *in, size_t in_len, char *out, size_t out_len) {
    size_t o = 0;
    for (size_t i = 0; i < in_len && o + 1 < out_len; i++) {
        int hi, lo;
        /* The gRPC spec asks clients to keep a malformed escape as it is, not to fail the
         * call: the message is for people, and the status code is what programs act on. */
        if (in[i] == '%' && i + 2 < in_len && (hi = parse_hex_digit(in[i + 1])) >= 0 &&
            (lo = parse_hex_digit(in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    if (out_len > 0) {
        out[o] = '\0';
    }
    return o;
}

int client_parse_addr(const char *addr, char *host, size_t host_len, uint16_t *port, char *err,
                      size_t err_len) {
    const char *host_start = addr, *host_end, *port_text;
    if (addr[0] == '[') {
        host_start = addr + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':') {
            snprintf(err, err_len, "invalid address \"%s\": expected [IPV6]:PORT", addr);
            return -1;
        }
        port_text = host_end + 2;
    } else {
        host_end = strrchr(addr, ':');
        if (host_end == NULL) {
            snprintf(err, err_len, "invalid address \"%s\": expected HOST:PORT", addr);
            return -1;
        }
        port_text = host_end + 1;
    }
    size_t len = (size_t)(host_end - host_start);
    if (len == 0 || len >= host_len) {
        snprintf(err, err_len, "invalid address \"%s\": %s host", addr, len ? "overlong" : "empty");
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(port_text, &end, 10);
    if (port_text[0] < '0' || port_text[0] > '9' || *end != '\0' || errno != 0 || p == 0 ||
        p > 65535) {
        snprintf(err, err_len, "invalid address \"%s\": port must be 1..65535", addr);
        return -1;
    }
    memcpy(host, host_start, len);
    host[len] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* Copies `path` into `dst` (CLIENT_PATH_MAX bytes); -1 when it does not fit. */
static int _copy_path(char *dst, const char *path) {
    if (path == NULL) {
        return 0;
    }
    int n = snprintf(dst, CLIENT_PATH_MAX, "%s", path);
    return n >= 0 && n < CLIENT_PATH_MAX ? 0 : -1;
}

int client_options_tls(struct client_options *options, const char *ca_file, const char *cert_file,
                       const char *key_file, char *err, size_t err_len) {
    if ((cert_file != NULL) != (key_file != NULL)) {
        snprintf(err, err_len, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (cert_file != NULL && ca_file == NULL) {
        snprintf(err, err_len, "--tls-cert needs --tls-ca (the CA of the server's certificate)");
        return -1;
    }
    if (_copy_path(options->tls_ca_file, ca_file) != 0 ||
        _copy_path(options->tls_cert_file, cert_file) != 0 ||
        _copy_path(options->tls_key_file, key_file) != 0) {
        snprintf(err, err_len, "a --tls-* path is longer than %d bytes", CLIENT_PATH_MAX - 1);
        return -1;
    }
    return 0;
}
