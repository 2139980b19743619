/*
 * GET /: the status page a person opens. One self-contained HTML document (inline CSS, no
 * script, no external assets, so it works offline and under a strict CSP) that reloads
 * itself every STATS_PAGE_REFRESH_S seconds with a meta refresh.
 *
 *   header: version, READY / NOT READY, uptime, gRPC address, requests by outcome
 *   table:  one row per view: state, rows, memory, snapshot age, staleness p50/p90,
 *           lookups/s, not found, default fallbacks per lookup, last load
 *   list:   the last errors, newest first
 *
 * Rates cover the last minute (the window in status.c), or the time since start until a
 * first sample is old enough.
 */
#include "internal.h"

#include "common/text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/grpc/grpc.h"
#include "daemon/rpc/rpc.h"
#include "common/clock.h"
#include "durability/checkpoint.h"
#include "durability/wal.h"
#include "common/errors.h"
#include "common/utf8.h"

/* Text for an HTML element or attribute. The page is UTF-8, so bytes that are not (a path a
 * client sent, a message cut mid-character) become U+FFFD instead of breaking it. */
void stats_html(struct buf *b, const char *s) {
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const uint8_t *)s + i, len - i);
        switch (n == 0 ? 0 : s[i]) {
        case 0:
            buf_puts(b, "\xef\xbf\xbd");
            n = 1;
            break;
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\'':
            buf_puts(b, "&#39;");
            break;
        default:
            buf_add(b, s + i, n);
        }
        i += n;
    }
}

#ifndef FSD_VERSION
#define FSD_VERSION "unknown"
#endif

/* Above this share of lookups falling back or not found, the cell is highlighted. */
#define WARN_SHARE 0.10

static const char STYLE[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;"
    "color:#1d2330;background:#f6f7f9}"
    "header{display:flex;flex-wrap:wrap;align-items:baseline;gap:12px;margin-bottom:6px}"
    "h1{font-size:22px;margin:0}h1 small{font-weight:normal;color:#667}"
    ".meta{color:#556;margin:0 0 16px}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;"
    "font-size:12px;letter-spacing:.03em}"
    ".ok{background:#d9f2e1;color:#15603a}.bad{background:#fbdcdc;color:#9b1c1c}"
    ".idle{background:#e6e8ee;color:#4a5060}.warn{background:#fdf0d2;color:#8a5a00}"
    "table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}"
    "th,td{padding:7px 10px;text-align:left;border-bottom:1px solid #e7e9ee;"
    "vertical-align:top}"
    "th{background:#eef0f4;font-size:12px;text-transform:uppercase;letter-spacing:.04em;"
    "color:#4a5060;white-space:nowrap}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "th.n{text-align:right}"
    "td.view{font-weight:600;font-family:ui-monospace,Menlo,Consolas,monospace}"
    "td small,.sub{color:#778;font-size:12px}"
    "tr.notready td{background:#fff6f6}"
    "td.hot{color:#9b1c1c;font-weight:600}"
    "h2{font-size:15px;margin:22px 0 8px}"
    "ul.errors{background:#fff;padding:8px 8px 8px 28px;margin:0;box-shadow:0 1px 2px #0002}"
    "ul.errors li{margin:3px 0}ul.errors code{color:#9b1c1c}"
    "footer{margin-top:18px;color:#778;font-size:12px}footer a{color:#2f5fb3}";

/* 1234567 -> "1,234,567" */
static void _count(struct buf *b, uint64_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            buf_add(b, ",", 1);
        }
        buf_add(b, &digits[i], 1);
    }
}

static void _header(struct buf *b, const struct stats_view_summary *views, size_t nviews,
                    int64_t now_us) {
    size_t waiting = 0;
    for (size_t i = 0; i < nviews; i++) {
        waiting += !views[i].ready;
    }
    char uptime[32], now[40];
    stats_format_duration((double)(now_us - stats_state.started_at_us) / 1e6, uptime,
                          sizeof uptime);
    text_time_utc(now, sizeof now, now_us);
    buf_printf(b,
               "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"%d\">"
               "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
               "<title>fsd %s</title><style>",
               STATS_PAGE_REFRESH_S, waiting ? "· NOT READY" : "· ready");
    buf_puts(b, STYLE);
    buf_puts(b, "</style></head><body><header><h1>fsd <small>");
    stats_html(b, FSD_VERSION);
    buf_puts(b, "</small></h1>");
    if (waiting) {
        buf_printf(b,
                   "<span class=\"badge bad\" id=\"ready\">NOT READY</span>"
                   "<span class=\"sub\">%zu view%s waiting for a first snapshot</span>",
                   waiting, waiting == 1 ? "" : "s");
    } else {
        buf_puts(b, "<span class=\"badge ok\" id=\"ready\">READY</span>");
    }
    buf_puts(b, "</header><p class=\"meta\">up ");
    buf_puts(b, uptime);
    buf_puts(b, " · gRPC ");
    pthread_mutex_lock(&stats_state.lock);
    stats_html(b, stats_state.grpc_address);
    pthread_mutex_unlock(&stats_state.lock);

    /* Requests by outcome, all methods together: what a person asks first. */
    size_t nmethods;
    rpc_methods(&nmethods);
    uint64_t ok = 0, failed = 0;
    for (size_t m = 0; m <= nmethods; m++) {
        struct grpc_method_stats ms;
        if (grpc_server_method_stats(m, &ms) == 0) {
            for (int c = 0; c < GRPC_CODE_COUNT; c++) {
                *(c == GRPC_OK ? &ok : &failed) += ms.calls[c];
            }
        }
    }
    buf_puts(b, " · requests ");
    _count(b, ok);
    buf_puts(b, " ok, ");
    _count(b, failed);
    buf_printf(b, " failed · %s · refreshes every %d s</p>", now, STATS_PAGE_REFRESH_S);
    if (wal_enabled()) {
        struct wal_status w;
        wal_status(&w);
        char size[32];
        text_bytes(size, sizeof size, w.disk_bytes);
        buf_printf(b,
                   "<p class=\"meta\" id=\"data_dir\">log %llu segment%s, %s · started from "
                   "store.data_dir: checkpoints %.2f s, log %.2f s (%llu batches)",
                   (unsigned long long)w.segments, w.segments == 1 ? "" : "s", size,
                   (double)ckpt_restore_us() / 1e6, (double)w.replay_us / 1e6,
                   (unsigned long long)w.replayed);
        if (w.failing) {
            buf_puts(b, " · <span class=\"badge bad\">writes refused</span> ");
            stats_html(b, w.error);
        }
        buf_puts(b, "</p>");
    }
}

static void _state_cell(struct buf *b, const struct stats_view_summary *v) {
    if (!v->ready) {
        buf_puts(b, "<td><span class=\"badge bad\">waiting</span></td>");
    } else if (v->load_reported && !v->load_ok) {
        buf_puts(b, "<td><span class=\"badge warn\">load failed</span></td>");
    } else {
        buf_puts(b, "<td><span class=\"badge ok\">ready</span></td>");
    }
}

/* Under the snapshot: the view's newest checkpoint (with a data_dir). */
static void _checkpoint_line(struct buf *b, const char *view, int64_t now_us) {
    struct ckpt_view_status c;
    if (!ckpt_view_status(view, &c)) {
        return;
    }
    if (c.failing) {
        buf_puts(b, "<br><span class=\"badge bad\">checkpoint failing</span> <small>");
        stats_html(b, c.error);
        buf_puts(b, "</small>");
    } else if (c.have) {
        char age[32], size[32];
        stats_format_duration((double)(now_us - c.written_at_us) / 1e6, age, sizeof age);
        text_bytes(size, sizeof size, c.bytes);
        buf_printf(b, "<br><small class=\"ckpt\">on disk %s ago · %s</small>", age, size);
    } else {
        buf_puts(b, "<br><small class=\"ckpt\">not on disk yet</small>");
    }
}

static void _snapshot_cell(struct buf *b, const struct stats_view_summary *v, int64_t now_us) {
    if (v->version == 0) {
        buf_puts(b, v->has_source ? "<td>none yet" : "<td><small>no source (pushes)</small>");
        _checkpoint_line(b, v->name, now_us);
        buf_puts(b, "</td>");
        return;
    }
    char age[32];
    stats_format_duration((double)(now_us - v->loaded_at_us) / 1e6, age, sizeof age);
    buf_printf(b, "<td>v%llu · %s ago", (unsigned long long)v->version, age);
    _checkpoint_line(b, v->name, now_us);
    buf_puts(b, "</td>");
}

static void _share_cell(struct buf *b, uint64_t part, uint64_t whole, const char *unit) {
    if (whole == 0) {
        buf_puts(b, "<td class=\"n\"><small>no lookups</small></td>");
        return;
    }
    double share = (double)part / (double)whole;
    buf_printf(b, "<td class=\"n%s\">", share > WARN_SHARE ? " hot" : "");
    if (unit[0] == '%') {
        buf_printf(b, "%.1f %%", share * 100);
    } else {
        buf_printf(b, "%.2f %s", share, unit);
    }
    buf_puts(b, "<br><small>");
    _count(b, part);
    buf_puts(b, "</small></td>");
}

static void _load_cell(struct buf *b, const struct stats_view_summary *v) {
    char at[40];
    if (v->load_reported) {
        text_time_utc(at, sizeof at, v->load_at_us);
        if (v->load_ok) {
            buf_printf(b, "<td><span class=\"badge ok\">ok</span> <small>%s</small></td>", at);
        } else {
            buf_printf(b,
                       "<td><span class=\"badge bad\">failed</span> <small>%s</small>"
                       "<br><small>",
                       at);
            stats_html(b, v->load_error);
            buf_puts(b, "</small></td>");
        }
    } else if (v->version > 0) {
        text_time_utc(at, sizeof at, v->loaded_at_us);
        buf_printf(b, "<td><span class=\"badge ok\">loaded</span> <small>%s</small></td>", at);
    } else if (v->has_source) {
        buf_printf(b,
                   "<td><span class=\"badge idle\">pending</span> <small>%s source"
                   "</small></td>",
                   v->source_type);
    } else {
        buf_puts(b, "<td><small>-</small></td>");
    }
}

static void _view_row(struct buf *b, const struct stats_view_summary *v, int64_t now_us,
                      double *window_s) {
    struct stats_window w;
    stats_window_get(v, &w);
    *window_s = w.seconds > *window_s ? w.seconds : *window_s;
    char mem[32], p50[32], p90[32];
    text_bytes(mem, sizeof mem, v->table.memory_bytes);
    stats_format_duration(stats_staleness_quantile(w.staleness, 0.5), p50, sizeof p50);
    stats_format_duration(stats_staleness_quantile(w.staleness, 0.9), p90, sizeof p90);

    buf_printf(b, "<tr%s><td class=\"view\">", v->ready ? "" : " class=\"notready\"");
    stats_html(b, v->name);
    buf_puts(b, "</td>");
    _state_cell(b, v);
    buf_puts(b, "<td class=\"n rows\">");
    _count(b, v->table.rows);
    buf_printf(b, "</td><td class=\"n\">%s</td>", mem);
    _snapshot_cell(b, v, now_us);
    if (w.staleness[RPC_STALENESS_BUCKETS] == 0) {
        buf_puts(b, "<td class=\"n\"><small>no rows served</small></td>");
    } else {
        /* "~": interpolated within histogram buckets, as histogram_quantile() does */
        buf_printf(b, "<td class=\"n\">~%s / ~%s</td>", p50, p90);
    }
    double seconds = w.seconds > 0 ? w.seconds : (double)(now_us - stats_state.started_at_us) / 1e6;
    buf_printf(b, "<td class=\"n\">%.1f<br><small>", seconds > 0 ? w.lookups / seconds : 0);
    _count(b, w.lookups);
    buf_puts(b, " lookups</small></td>");
    _share_cell(b, w.not_found, w.lookups, "%");
    _share_cell(b, w.fallbacks, w.lookups, "/ lookup");
    _load_cell(b, v);
    buf_puts(b, "</tr>");
}

static void _errors(struct buf *b) {
    struct error_entry errors[ERRORS_KEPT];
    size_t kept = errors_recent(errors, ERRORS_KEPT, NULL);
    if (kept > 0) {
        buf_puts(b, "<h2>Last errors</h2><ul class=\"errors\">");
        for (size_t k = 0; k < kept; k++) {
            const struct error_entry *e = &errors[k];
            char at[40];
            text_time_utc(at, sizeof at, e->at_us);
            buf_printf(b, "<li><small>%s</small> ", at);
            stats_html(b, e->source);
            if (e->view[0]) {
                buf_puts(b, " · ");
                stats_html(b, e->view);
            }
            buf_puts(b, ": <code>");
            stats_html(b, e->message);
            buf_puts(b, "</code></li>");
        }
        buf_puts(b, "</ul>");
    }
}

void stats_render_page(struct buf *b, const struct stats_view_summary *views, size_t nviews) {
    int64_t now_us = clock_wall_us();
    buf_reset(b);
    _header(b, views, nviews, now_us);
    buf_puts(b, "<table id=\"views\"><thead><tr><th>View</th><th>State</th>"
                "<th class=\"n\">Rows</th><th class=\"n\">Memory</th><th>Snapshot</th>"
                "<th class=\"n\">Staleness p50 / p90</th><th class=\"n\">Lookups/s</th>"
                "<th class=\"n\">Not found</th><th class=\"n\">Defaults served</th>"
                "<th>Last load</th></tr></thead><tbody>");
    double window_s = 0;
    for (size_t i = 0; i < nviews; i++) {
        _view_row(b, &views[i], now_us, &window_s);
    }
    if (nviews == 0) {
        buf_puts(b, "<tr><td colspan=\"10\"><small>no views configured</small></td></tr>");
    }
    buf_printf(b,
               "</tbody></table><p class=\"sub\">Staleness, rates and shares cover "
               "%s%.0f s. "
               "Staleness is the age of the rows served (from the histogram buckets, "
               "interpolated); defaults served counts feature values that fell back to "
               "their default (not found, null, or older than the view's ttl).</p>",
               window_s > 0 ? "the last " : "the time since start, ",
               window_s > 0 ? window_s : (double)(now_us - stats_state.started_at_us) / 1e6);
    _errors(b);
    buf_puts(b, "<footer><a href=\"/metrics\">/metrics</a> · "
                "<a href=\"/status\">/status</a> (JSON) · <a href=\"/readyz\">/readyz</a> · "
                "<a href=\"/healthz\">/healthz</a></footer></body></html>\n");
}
