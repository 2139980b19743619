/*
 * Progress on stderr while rows go out. On a terminal, one line redrawn in place:
 *
 *   item_features [##########....................]  33%  5000/15000 rows  41234 rows/s  ETA 0:00
 *
 * Otherwise (a log file, a CI job) a plain logfmt-style line every FM_PLAIN_PROGRESS_US and
 * one at the end, so a log never fills with carriage returns:
 *
 *   fsd-materialize: view=item_features rows=5000/15000 rows_per_s=41234 eta_s=0.2
 */
#include "materialize.h"
#include "common/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

void fm_progress_init(struct fm_progress *p, const char *view, uint64_t total, bool bar) {
    *p = (struct fm_progress){.view = view, .total = total, .bar = bar};
    p->start_us = p->last_us = clock_mono_us();
}

static double _rate(const struct fm_progress *p, int64_t now) {
    double seconds = (double)(now - p->start_us) / 1e6;
    return seconds > 0 ? (double)p->sent / seconds : 0;
}

/* Seconds left at the rate so far; negative when there is no rate yet. */
static double _eta_s(const struct fm_progress *p, double rate) {
    if (p->sent >= p->total) {
        return 0;
    }
    return rate > 0 ? (double)(p->total - p->sent) / rate : -1;
}

static void _draw_bar(struct fm_progress *p, int64_t now) {
    double rate = _rate(p, now);
    double eta = _eta_s(p, rate);
    double done = p->total > 0 ? (double)p->sent / (double)p->total : 1;
    int filled = (int)(done * FM_BAR_WIDTH);
    char bar[FM_BAR_WIDTH + 1];
    for (int i = 0; i < FM_BAR_WIDTH; i++) {
        bar[i] = i < filled ? '#' : '.';
    }
    bar[FM_BAR_WIDTH] = '\0';
    char eta_text[32];
    if (eta < 0) {
        snprintf(eta_text, sizeof eta_text, "--:--");
    } else {
        uint64_t s = (uint64_t)(eta + 0.5);
        if (s >= 3600) {
            snprintf(eta_text, sizeof eta_text, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
                     s / 60 % 60, s % 60);
        } else {
            snprintf(eta_text, sizeof eta_text, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
        }
    }
    /* Padded at the end so a shorter line fully covers the one before. */
    fprintf(stderr, "\r%s [%s] %3d%%  %" PRIu64 "/%" PRIu64 " rows  %.0f rows/s  ETA %s    ",
            p->view, bar, (int)(done * 100), p->sent, p->total, rate, eta_text);
    fflush(stderr);
    p->drawn = true;
}

static void _write_line(struct fm_progress *p, int64_t now) {
    double rate = _rate(p, now);
    double eta = _eta_s(p, rate);
    fprintf(stderr,
            "fsd-materialize: view=%s rows=%" PRIu64 "/%" PRIu64 " rows_per_s=%.0f eta_s=", p->view,
            p->sent, p->total, rate);
    if (eta < 0) {
        fprintf(stderr, "unknown\n");
    } else {
        fprintf(stderr, "%.1f\n", eta);
    }
}

void fm_progress_update(struct fm_progress *p, uint64_t sent) {
    p->sent = sent;
    int64_t now = clock_mono_us();
    if (now - p->last_us < (p->bar ? FM_BAR_PROGRESS_US : FM_PLAIN_PROGRESS_US)) {
        return;
    }
    p->last_us = now;
    if (p->bar) {
        _draw_bar(p, now);
    } else {
        _write_line(p, now);
    }
}

void fm_progress_finish(struct fm_progress *p) {
    int64_t now = clock_mono_us();
    if (p->bar) {
        _draw_bar(p, now);
        fm_progress_break(p);
    } else {
        _write_line(p, now);
    }
}

void fm_progress_break(struct fm_progress *p) {
    if (p->drawn) {
        fputc('\n', stderr);
        fflush(stderr);
        p->drawn = false;
    }
}
