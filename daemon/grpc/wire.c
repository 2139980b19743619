/* Byte-level gRPC wire helpers: message prefixes, grpc-timeout, content-type, grpc-message. */
#include "wire.h"

#include "grpc.h"

#include <string.h>

static const char *const _code_names[GRPC_CODE_COUNT] = {
    [GRPC_OK] = "OK",
    [GRPC_CANCELLED] = "CANCELLED",
    [GRPC_UNKNOWN] = "UNKNOWN",
    [GRPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [GRPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [GRPC_NOT_FOUND] = "NOT_FOUND",
    [GRPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [GRPC_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [GRPC_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [GRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [GRPC_ABORTED] = "ABORTED",
    [GRPC_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [GRPC_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [GRPC_INTERNAL] = "INTERNAL",
    [GRPC_UNAVAILABLE] = "UNAVAILABLE",
    [GRPC_DATA_LOSS] = "DATA_LOSS",
    [GRPC_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *grpc_code_name(enum grpc_code code) {
    if ((unsigned)code >= GRPC_CODE_COUNT) {
        return "INVALID_CODE";
    }
    return _code_names[code];
}

/* ---- message framing --------------------------------------------------------------------- */

size_t grpc_frame_read(struct grpc_frame_reader *r, const uint8_t *in, size_t len,
                       struct grpc_frame_step *step) {
    *step = (struct grpc_frame_step){0};
    size_t used = 0;
    if (r->prefix_have < GRPC_PREFIX_BYTES) {
        size_t want = GRPC_PREFIX_BYTES - r->prefix_have;
        size_t take = len < want ? len : want;
        memcpy(r->prefix + r->prefix_have, in, take);
        r->prefix_have = (uint8_t)(r->prefix_have + take);
        used = take;
        if (r->prefix_have < GRPC_PREFIX_BYTES) {
            return used;
        }
        /* Only bit 0 is defined; the other flag bits are reserved and ignored. */
        r->compressed = (r->prefix[0] & 1) != 0;
        r->msg_len = (uint32_t)r->prefix[1] << 24 | (uint32_t)r->prefix[2] << 16 |
                     (uint32_t)r->prefix[3] << 8 | (uint32_t)r->prefix[4];
        r->body_have = 0;
        step->prefix_done = true;
        if (r->msg_len == 0) {
            step->message_done = true;
            r->prefix_have = 0;
        }
        /* Stop here so the caller sees the length before the body. */
        return used;
    }
    size_t want = r->msg_len - r->body_have;
    size_t take = len < want ? len : want;
    step->body = in;
    step->body_len = take;
    r->body_have += (uint32_t)take;
    if (r->body_have == r->msg_len) {
        step->message_done = true;
        r->prefix_have = 0;
    }
    return take;
}

void grpc_frame_prefix_write(uint8_t out[GRPC_PREFIX_BYTES], uint32_t len) {
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* ---- headers ----------------------------------------------------------------------------- */

int grpc_timeout_parse(const char *value, size_t len, int64_t *us) {
    if (len < 2 || len > GRPC_TIMEOUT_MAX_DIGITS + 1) {
        return -1;
    }
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (value[i] < '0' || value[i] > '9') {
            return -1;
        }
        n = n * 10 + (value[i] - '0');
    }
    /* 8 digits of hours is 3.6e17 us: every unit fits in int64 without overflow checks. */
    switch (value[len - 1]) {
    case 'H':
        *us = n * 3600 * 1000000;
        return 0;
    case 'M':
        *us = n * 60 * 1000000;
        return 0;
    case 'S':
        *us = n * 1000000;
        return 0;
    case 'm':
        *us = n * 1000;
        return 0;
    case 'u':
        *us = n;
        return 0;
    case 'n':
        /* Round up: a client that asked for 1ns still asked for a deadline, not "none". */
        *us = (n + 999) / 1000;
        return 0;
    default:
        return -1;
    }
}

bool grpc_content_type_ok(const char *value, size_t len) {
    static const char base[] = "application/grpc";
    static const char proto[] = "+proto";
    size_t base_len = sizeof base - 1;
    if (len < base_len || strncasecmp(value, base, base_len) != 0) {
        return false;
    }
    value += base_len;
    len -= base_len;
    if (len >= sizeof proto - 1 && strncasecmp(value, proto, sizeof proto - 1) == 0) {
        value += sizeof proto - 1;
        len -= sizeof proto - 1;
    }
    return len == 0 || value[0] == ';';
}

size_t grpc_percent_encode(const char *msg, size_t msg_len, char *out, size_t out_len) {
    static const char hex[] = "0123456789ABCDEF";
    if (out_len == 0) {
        return 0;
    }
    if (msg_len > GRPC_MESSAGE_MAX) {
        msg_len = GRPC_MESSAGE_MAX;
        /* Cut on a UTF-8 boundary: clients decode grpc-message as UTF-8 after unescaping. */
        while (msg_len > 0 && ((unsigned char)msg[msg_len] & 0xC0) == 0x80) {
            msg_len--;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < msg_len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c <= 0x7E && c != '%') {
            if (o + 1 >= out_len) {
                break;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= out_len) {
                break;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

unsigned grpc_http_status_of(enum grpc_code code) {
    switch (code) {
    case GRPC_OK:
        return 200;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_OUT_OF_RANGE:
        return 422; /* the body parsed, its content did not pass: FastAPI's answer too */
    case GRPC_UNAUTHENTICATED:
        return 401;
    case GRPC_PERMISSION_DENIED:
        return 403;
    case GRPC_NOT_FOUND:
        return 404;
    case GRPC_ALREADY_EXISTS:
    case GRPC_ABORTED:
    case GRPC_FAILED_PRECONDITION:
        return 409;
    case GRPC_RESOURCE_EXHAUSTED:
        return 429;
    case GRPC_UNIMPLEMENTED:
        return 501;
    case GRPC_UNAVAILABLE:
        return 503;
    case GRPC_DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}
