#include "errors.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static struct {
    pthread_mutex_t lock;
    struct error_entry ring[ERRORS_KEPT];
    uint64_t total; /* ever recorded; ring[(total - 1) % ERRORS_KEPT] is the newest */
} errors = {.lock = PTHREAD_MUTEX_INITIALIZER};

int errors_set(char *err, size_t err_len, const char *fmt, ...) {
    if (err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void errors_record(const char *source, const char *view, const char *message) {
    int64_t now_us = clock_wall_us();
    pthread_mutex_lock(&errors.lock);
    struct error_entry *e = &errors.ring[errors.total % ERRORS_KEPT];
    e->at_us = now_us;
    snprintf(e->source, sizeof e->source, "%s", source ? source : "");
    snprintf(e->view, sizeof e->view, "%s", view ? view : "");
    snprintf(e->message, sizeof e->message, "%s", message ? message : "");
    errors.total++;
    pthread_mutex_unlock(&errors.lock);
}

size_t errors_recent(struct error_entry *out, size_t max, uint64_t *total) {
    pthread_mutex_lock(&errors.lock);
    size_t kept = errors.total < ERRORS_KEPT ? (size_t)errors.total : ERRORS_KEPT;
    size_t n = kept < max ? kept : max;
    for (size_t k = 0; k < n; k++) {
        out[k] = errors.ring[(errors.total - 1 - k) % ERRORS_KEPT];
    }
    if (total != NULL) {
        *total = errors.total;
    }
    pthread_mutex_unlock(&errors.lock);
    return n;
}

void errors_clear(void) {
    pthread_mutex_lock(&errors.lock);
    memset(errors.ring, 0, sizeof errors.ring);
    errors.total = 0;
    pthread_mutex_unlock(&errors.lock);
}
