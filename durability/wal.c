/*
 * The log writer: one thread that owns the current segment, writes what the workers queued,
 * fsyncs it and hands each batch back, in order. See wal.h for the format and the contract.
 */
#include "wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "store/rcu.h"

/* ---- options and metrics ------------------------------------------------------------------ */

static const char *const _durability_names[] = {"none", "group", "always", NULL};

static const struct option_def _defs[] = {
    {.name = "data_dir",
     .type = OPTION_STRING,
     .default_text = "",
     .min = 0,
     .max = WAL_DATA_DIR_LEN - 1,
     OPTION_STRING_AT(struct wal_options, data_dir),
     .description = "Directory where fsd keeps what it must not lose across a restart (the "
                    "log of live writes in data_dir/wal). Empty: nothing is kept, every view "
                    "starts from its source. Must exist; one fsd per directory."},
    {.name = "durability",
     .type = OPTION_ENUM,
     .default_text = "group",
     .choices = _durability_names,
     OPTION_ENUM_AT(struct wal_options, durability),
     .description = "With data_dir set, when a PushRows batch is acknowledged: group (after an "
                    "fsync shared by the batches of one group_commit_interval), always (after "
                    "an fsync of that batch alone), none (at once; nothing is logged)."},
    {.name = "group_commit_interval",
     .type = OPTION_DURATION,
     .default_text = "1ms",
     .min = 0,
     .max = 100000,
     OPTION_DURATION_AT(struct wal_options, group_commit_interval_us),
     .description = "How long the log writer gathers batches before one fsync covers them "
                    "(durability group). Longer: fewer fsyncs, slower acknowledgements."},
    {.name = "wal_segment_size",
     .type = OPTION_SIZE,
     .default_text = "64MiB",
     .min = WAL_SEGMENT_MIN_BYTES,
     .max = 1ull << 32,
     OPTION_SIZE_AT(struct wal_options, segment_bytes),
     .description = "The log of live writes starts a new file past this size."},
};

const struct option_group wal_option_group = {
    .section = "store",
    .defs = _defs,
    .ndefs = sizeof(_defs) / sizeof(_defs[0]),
};

const struct metric_def wal_metric_defs[WAL_M_COUNT] = {
    [WAL_M_RECORDS] = {"fsd_wal_records_total", METRIC_COUNTER, "",
                       "Batches of live writes made durable in the log."},
    [WAL_M_BYTES_WRITTEN] = {"fsd_wal_written_bytes_total", METRIC_COUNTER, "",
                             "Bytes written to the log, headers included."},
    [WAL_M_FSYNCS] = {"fsd_wal_fsyncs_total", METRIC_COUNTER, "",
                      "fsyncs of the log: each makes every batch written before it durable."},
    [WAL_M_FSYNC_SECONDS] = {"fsd_wal_fsync_seconds", METRIC_HISTOGRAM, "",
                             "Time of one write and fsync of the log."},
    [WAL_M_WRITE_ERRORS] = {"fsd_wal_write_errors_total", METRIC_COUNTER, "",
                            "Log writes or fsyncs that failed: their batches were refused "
                            "(UNAVAILABLE) and not applied."},
    [WAL_M_FAILING] = {"fsd_wal_write_failing", METRIC_GAUGE, "",
                       "1 while the log's last write failed (PushRows refused), else 0."},
    [WAL_M_SEGMENTS] = {"fsd_wal_segments", METRIC_GAUGE, "", "Files of the log on disk."},
    [WAL_M_DISK_BYTES] = {"fsd_wal_disk_bytes", METRIC_GAUGE, "", "Bytes of the log on disk."},
    [WAL_M_REPLAYED] = {"fsd_wal_replayed_records_total", METRIC_COUNTER, "",
                        "Batches of the log applied again at start."},
    [WAL_M_REPLAY_SKIPPED] = {"fsd_wal_replay_skipped_records_total", METRIC_COUNTER, "reason",
                              "Batches of the log not applied at start: unknown_view (no longer "
                              "configured), layout_changed (its features or keys changed), "
                              "in_checkpoint (the view's checkpoint already holds them)."},
    [WAL_M_TORN_TAIL_BYTES] = {"fsd_wal_torn_tail_bytes_total", METRIC_COUNTER, "",
                               "Bytes cut from the end of the log at start: a write a crash "
                               "interrupted, never acknowledged."},
    [WAL_M_CORRUPT] = {"fsd_wal_corrupt_segments_total", METRIC_COUNTER, "",
                       "Log files found damaged at start (a bad checksum or a gap before "
                       "their end): not replayed from there on, renamed *.corrupt."},
    [WAL_M_REPLAY_SECONDS] = {"fsd_wal_replay_seconds", METRIC_GAUGE, "",
                              "How long the replay of the log took at start."},
};

static const double _fsync_bounds_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
#define FSYNC_BUCKETS (sizeof(_fsync_bounds_s) / sizeof(_fsync_bounds_s[0]))

/* ---- state -------------------------------------------------------------------------------- */

static struct {
    bool enabled;
    struct wal_options options;
    int dir_fd;  /* data_dir/wal */
    int lock_fd; /* data_dir/LOCK, flock'ed while fsd runs */

    /* The log writer's own (no lock): the open segment and where it stands. */
    int seg_fd;
    uint64_t seg_bytes;             /* durable bytes of the open segment */
    uint64_t seg_records;           /* records in it */
    _Atomic uint64_t seg_first_seq; /* its first record's number, for the checkpointer */
    uint64_t next_seq;
    /* Set at start when the checkpoints hold later records than the log (it was damaged or
     * removed): the next commit first writes a jump record to it, so new records are numbered
     * past what the checkpoints hold and a replay still finds an unbroken sequence. */
    uint64_t jump_to;
    uint8_t jump[WAL_RECORD_HEADER_BYTES + 8];
    /* The last sequence number whose batch was applied (or refused): a checkpoint that reads
     * this first holds every batch up to it. */
    _Atomic uint64_t applied_seq;

    /* The queue, under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct wal_batch *head, *tail;
    int64_t first_queued_us;
    bool stopping;
    bool running;
    pthread_t thread;

    /* Whether the last commit failed, and why: /readyz says so until a write succeeds. */
    pthread_mutex_t error_lock;
    bool failing;
    char last_error[256];

    /* Metrics: relaxed atomics, read by the stats thread. */
    _Atomic uint64_t records, bytes_written, fsyncs, write_errors, segments, disk_bytes;
    _Atomic uint64_t replayed, skipped[WAL_REPLAY_OUTCOMES], torn_tail_bytes, corrupt;
    _Atomic uint64_t fsync_buckets[FSYNC_BUCKETS + 1];
    _Atomic uint64_t fsync_sum_ns;
    _Atomic int64_t replay_us;
} wal = {.dir_fd = -1, .lock_fd = -1, .seg_fd = -1, .error_lock = PTHREAD_MUTEX_INITIALIZER};

static void _add(_Atomic uint64_t *counter, uint64_t n) {
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static void _collect(struct metric_writer *w, void *ctx);

bool wal_enabled(void) {
    return wal.enabled;
}

uint64_t wal_record_hash(const uint8_t *record, size_t len) {
    return XXH3_64bits_withSeed(record + WAL_RECORD_HEADER_BYTES, len - WAL_RECORD_HEADER_BYTES,
                                XXH3_64bits(record, 16));
}

/* ---- setup ------------------------------------------------------------------------------- */

static void _reset_counters(void) {
    _Atomic uint64_t *counters[] = {&wal.records,      &wal.bytes_written,   &wal.fsyncs,
                                    &wal.write_errors, &wal.segments,        &wal.disk_bytes,
                                    &wal.replayed,     &wal.torn_tail_bytes, &wal.corrupt,
                                    &wal.fsync_sum_ns};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        atomic_store_explicit(counters[i], 0, memory_order_relaxed);
    }
    for (size_t i = 0; i < WAL_REPLAY_OUTCOMES; i++) {
        atomic_store_explicit(&wal.skipped[i], 0, memory_order_relaxed);
    }
    for (size_t i = 0; i <= FSYNC_BUCKETS; i++) {
        atomic_store_explicit(&wal.fsync_buckets[i], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&wal.replay_us, 0, memory_order_relaxed);
}

int wal_setup(const struct wal_options *options, char *err, size_t err_len) {
    wal.options = *options;
    wal.next_seq = 1;
    atomic_store_explicit(&wal.seg_first_seq, 0, memory_order_relaxed);
    wal.head = wal.tail = NULL;
    _reset_counters(); /* one log per process; tests open many in turn */
    wal.enabled = options->data_dir[0] != '\0' && options->durability != WAL_DURABILITY_NONE;
    if (!wal.enabled) {
        return 0;
    }
    const char *dir = options->data_dir;
    struct stat st;
    if (stat(dir, &st) != 0) {
        return errors_set(err, err_len, "store.data_dir \"%s\": %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return errors_set(err, err_len, "store.data_dir \"%s\": not a directory", dir);
    }
    char path[WAL_DATA_DIR_LEN + 16];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    wal.lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (wal.lock_fd < 0) {
        return errors_set(err, err_len, "store.data_dir: %s: %s", path, strerror(errno));
    }
    if (flock(wal.lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(wal.lock_fd);
        wal.lock_fd = -1;
        if (e == EWOULDBLOCK) {
            return errors_set(err, err_len,
                              "store.data_dir \"%s\" is in use by another fsd (%s is locked)", dir,
                              path);
        }
        return errors_set(err, err_len, "store.data_dir \"%s\": locking %s: %s", dir, path,
                          strerror(e));
    }
    snprintf(path, sizeof path, "%s/wal", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        wal_teardown();
        return errors_set(err, err_len, "store.data_dir: mkdir %s: %s", path, strerror(e));
    }
    wal.dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (wal.dir_fd < 0) {
        int e = errno;
        wal_teardown();
        return errors_set(err, err_len, "store.data_dir: %s: %s", path, strerror(e));
    }
    pthread_mutex_init(&wal.lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wal.wake, &attr);
    pthread_condattr_destroy(&attr);
    if (metrics_register(_collect, NULL) != 0) {
        wal_teardown();
        return errors_set(err, err_len, "out of memory");
    }
    return 0;
}

/* ---- segments ------------------------------------------------------------------------------ */

void wal_segment_name(char *buf, size_t len, uint64_t first_seq) {
    snprintf(buf, len, "%016" PRIx64 ".log", first_seq);
}

/* Writes all of `iov` (retrying short writes). Returns 0, or -1 with errno. */
static int _write_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Opens a new segment whose first record will be wal.next_seq, its header durable and its
 * name in the directory durable. Returns 0, or -1 with `err` set. */
static int _open_segment(char *err, size_t err_len) {
    char name[32];
    wal_segment_name(name, sizeof name, wal.next_seq);
    int fd = openat(wal.dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        return errors_set(err, err_len, "wal: create %s: %s", name, strerror(errno));
    }
    uint8_t header[WAL_SEGMENT_HEADER_BYTES] = {0};
    memcpy(header, WAL_MAGIC, 8);
    wal_put_u32(header + 8, WAL_FORMAT_VERSION);
    wal_put_u64(header + 16, wal.next_seq);
    wal_put_u64(header + 24, XXH3_64bits(header, 24));
    struct iovec iov = {header, sizeof header};
    if (_write_all(fd, &iov, 1) != 0 || fdatasync(fd) != 0 || fsync(wal.dir_fd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(wal.dir_fd, name, 0);
        return errors_set(err, err_len, "wal: write %s: %s", name, strerror(e));
    }
    if (wal.seg_fd >= 0) {
        close(wal.seg_fd);
    }
    wal.seg_fd = fd;
    atomic_store_explicit(&wal.seg_first_seq, wal.next_seq, memory_order_relaxed);
    wal.seg_bytes = WAL_SEGMENT_HEADER_BYTES;
    wal.seg_records = 0;
    _add(&wal.segments, 1);
    _add(&wal.disk_bytes, WAL_SEGMENT_HEADER_BYTES);
    return 0;
}

/* ---- the log writer ------------------------------------------------------------------------ */

/*
 * Writes `list` (in order) and fsyncs it. On failure the segment is cut back to what was
 * durable before, the sequence numbers are given back, and the next commit starts a new
 * segment: a failed fsync leaves the file's cached pages in a state nobody can trust.
 */
static int _commit(struct wal_batch *list, size_t n, char *err, size_t err_len) {
    if (wal.seg_fd < 0 || (wal.seg_records > 0 && wal.seg_bytes >= wal.options.segment_bytes)) {
        if (_open_segment(err, err_len) != 0) {
            _add(&wal.write_errors, 1);
            return -1;
        }
    }
    struct iovec stack_iov[64];
    struct iovec *iov = n < 64 ? stack_iov : calloc(n + 1, sizeof(*iov)); /* + a jump */
    if (iov == NULL) {
        return errors_set(err, err_len, "wal: out of memory");
    }
    uint64_t seq = wal.next_seq, bytes = 0;
    size_t i = 0;
    if (wal.jump_to != 0) {
        wal_put_u32(wal.jump, 8);
        wal_put_u32(wal.jump + 4, WAL_RECORD_JUMP);
        wal_put_u64(wal.jump + 8, seq);
        wal_put_u64(wal.jump + WAL_RECORD_HEADER_BYTES, wal.jump_to);
        wal_put_u64(wal.jump + 16, wal_record_hash(wal.jump, sizeof wal.jump));
        iov[i++] = (struct iovec){wal.jump, sizeof wal.jump};
        bytes += sizeof wal.jump;
        seq = wal.jump_to;
    }
    for (struct wal_batch *b = list; b != NULL; b = b->next, i++) {
        wal_put_u32(b->buf, (uint32_t)(b->len - WAL_RECORD_HEADER_BYTES));
        wal_put_u32(b->buf + 4, b->type);
        wal_put_u64(b->buf + 8, seq++);
        wal_put_u64(b->buf + 16, wal_record_hash(b->buf, b->len));
        iov[i] = (struct iovec){b->buf, b->len};
        bytes += b->len;
    }
    int64_t started = clock_mono_us();
    int rc = _write_all(wal.seg_fd, iov, (int)i);
    if (rc == 0) {
        rc = fdatasync(wal.seg_fd);
    }
    int e = errno;
    if (iov != stack_iov) {
        free(iov);
    }
    if (rc != 0) {
        _add(&wal.write_errors, 1);
        errors_set(err, err_len, "wal write: %s", strerror(e));
        bool cut = ftruncate(wal.seg_fd, (off_t)wal.seg_bytes) == 0 && fdatasync(wal.seg_fd) == 0;
        close(wal.seg_fd);
        wal.seg_fd = -1; /* the next commit opens a new segment */
        if (wal.seg_records == 0) {
            char name[32];
            wal_segment_name(name, sizeof name, wal.next_seq);
            unlinkat(wal.dir_fd, name, 0); /* it held nothing: its name is the next one's */
            _add(&wal.segments, (uint64_t)-1);
            _add(&wal.disk_bytes, (uint64_t)-WAL_SEGMENT_HEADER_BYTES);
        } else if (!cut) {
            /* The refused records may still be in the file: a segment after it, starting at
             * their numbers, is what tells a replay they were never acknowledged. */
            log_error("wal: could not cut a failed write back", "error=%s",
                      LOG_QUOTE(strerror(errno)));
            char again[256];
            if (_open_segment(again, sizeof again) != 0) {
                log_error("wal: could not start the next segment either", "error=%s",
                          LOG_QUOTE(again));
            }
        }
        return -1;
    }
    double seconds = (double)(clock_mono_us() - started) / 1e6;
    size_t bucket = 0;
    while (bucket < FSYNC_BUCKETS && seconds > _fsync_bounds_s[bucket]) {
        bucket++;
    }
    _add(&wal.fsync_buckets[bucket], 1);
    _add(&wal.fsync_sum_ns, (uint64_t)(seconds * 1e9));
    _add(&wal.fsyncs, 1);
    _add(&wal.records, i);
    _add(&wal.bytes_written, bytes);
    _add(&wal.disk_bytes, bytes);
    wal.seg_bytes += bytes;
    wal.seg_records += i;
    wal.next_seq = seq;
    wal.jump_to = 0;
    return 0;
}

static void _wait_until(int64_t deadline_us) {
    struct timespec ts = {.tv_sec = deadline_us / 1000000,
                          .tv_nsec = (deadline_us % 1000000) * 1000};
    pthread_cond_timedwait(&wal.wake, &wal.lock, &ts);
}

static void *_writer(void *arg) {
    (void)arg;
    store_rcu_thread_online(); /* `done` applies rows to the store */
    pthread_mutex_lock(&wal.lock);
    for (;;) {
        while (wal.head == NULL && !wal.stopping) {
            pthread_cond_wait(&wal.wake, &wal.lock);
        }
        if (wal.head == NULL) {
            break; /* stopping, and everything queued is done */
        }
        if (wal.options.durability == WAL_DURABILITY_GROUP) {
            /* Let the batches of one interval share the fsync. */
            int64_t until = wal.first_queued_us + wal.options.group_commit_interval_us;
            while (!wal.stopping && clock_mono_us() < until) {
                _wait_until(until);
            }
        }
        struct wal_batch *list = wal.head;
        size_t n = 0;
        if (wal.options.durability == WAL_DURABILITY_ALWAYS) {
            wal.head = list->next; /* one batch, one fsync */
            list->next = NULL;
            n = 1;
        } else {
            wal.head = NULL;
            for (struct wal_batch *b = list; b != NULL; b = b->next) {
                n++;
            }
        }
        if (wal.head == NULL) {
            wal.tail = NULL;
        } else {
            wal.first_queued_us = clock_mono_us();
        }
        pthread_mutex_unlock(&wal.lock);

        char err[256] = "";
        bool ok = _commit(list, n, err, sizeof err) == 0;
        pthread_mutex_lock(&wal.error_lock);
        if (ok != !wal.failing) {
            log_info(ok ? "wal: writes succeed again" : "wal: writes fail", "error=%s",
                     LOG_QUOTE(ok ? "" : err));
        }
        wal.failing = !ok;
        if (!ok) {
            snprintf(wal.last_error, sizeof wal.last_error, "%s", err);
        }
        pthread_mutex_unlock(&wal.error_lock);
        if (!ok) {
            log_error("wal: batches refused, their write failed", "batches=%zu error=%s", n,
                      LOG_QUOTE(err));
        }
        store_read_lock(); /* `done` applies rows; one read section for the whole commit */
        while (list != NULL) {
            struct wal_batch *next = list->next;
            list->done(list, ok ? NULL : err, list->done_arg);
            wal_batch_destroy(list);
            list = next;
        }
        store_read_unlock();
        if (ok) {
            atomic_store_explicit(&wal.applied_seq, wal.next_seq - 1, memory_order_release);
        }
        pthread_mutex_lock(&wal.lock);
    }
    pthread_mutex_unlock(&wal.lock);
    store_rcu_thread_offline();
    return NULL;
}

static int _start(char *err, size_t err_len) {
    if (!wal.enabled) {
        return 0;
    }
    if (pthread_create(&wal.thread, NULL, _writer, NULL) != 0) {
        return errors_set(err, err_len, "wal: cannot start the log writer thread");
    }
    wal.running = true;
    return 0;
}

int wal_append(struct wal_batch *batch, wal_done_fn done, void *arg) {
    batch->done = done;
    batch->done_arg = arg;
    batch->next = NULL;
    if (!wal.enabled) {
        done(batch, "the log is not running", arg);
        wal_batch_destroy(batch);
        return -1;
    }
    pthread_mutex_lock(&wal.lock);
    if (!wal.running || wal.stopping) {
        pthread_mutex_unlock(&wal.lock);
        done(batch, "fsd is shutting down", arg);
        wal_batch_destroy(batch);
        return -1;
    }
    if (wal.tail == NULL) {
        wal.head = batch;
        wal.first_queued_us = clock_mono_us();
        pthread_cond_signal(&wal.wake);
    } else {
        wal.tail->next = batch;
    }
    wal.tail = batch;
    pthread_mutex_unlock(&wal.lock);
    return 0;
}

void wal_teardown(void) {
    if (wal.running) {
        pthread_mutex_lock(&wal.lock);
        wal.stopping = true;
        pthread_cond_signal(&wal.wake);
        pthread_mutex_unlock(&wal.lock);
        pthread_join(wal.thread, NULL);
        wal.running = false;
    }
    if (wal.enabled) {
        metrics_unregister(_collect, NULL);
    }
    if (wal.seg_fd >= 0) {
        close(wal.seg_fd);
    }
    if (wal.dir_fd >= 0) {
        close(wal.dir_fd);
    }
    if (wal.lock_fd >= 0) {
        close(wal.lock_fd); /* releases the flock */
    }
    wal.seg_fd = wal.dir_fd = wal.lock_fd = -1;
    wal.enabled = false;
    wal.failing = false;
    wal.stopping = false;
}

/* ---- replay: the reading is wal_replay.c's ------------------------------------------------ */

int64_t wal_replay(wal_apply_fn apply, void *arg, uint64_t held_through, char *err,
                   size_t err_len) {
    if (!wal.enabled) {
        return 0;
    }
    int64_t started = clock_mono_us();
    struct wal_scan scan = {0};
    if (wal_scan_dir(wal.dir_fd, apply, arg, &scan, err, err_len) != 0) {
        return -1;
    }
    wal.next_seq = scan.next_seq;
    wal.jump_to = 0;
    if (held_through >= scan.next_seq) {
        log_warn("wal: the checkpoints hold later records than the log has; new records are "
                 "numbered after theirs",
                 "log_next_seq=%" PRIu64 " checkpoints_through=%" PRIu64, scan.next_seq,
                 held_through);
        wal.jump_to = held_through + 1;
    }
    atomic_store_explicit(&wal.applied_seq, wal.jump_to != 0 ? wal.jump_to - 1 : scan.next_seq - 1,
                          memory_order_release);
    _add(&wal.replayed, scan.applied);
    for (int i = 0; i < WAL_REPLAY_OUTCOMES; i++) {
        _add(&wal.skipped[i], scan.skipped[i]);
    }
    _add(&wal.torn_tail_bytes, scan.torn_tail_bytes);
    _add(&wal.corrupt, scan.corrupt_segments);
    _add(&wal.segments, scan.segments);
    _add(&wal.disk_bytes, scan.disk_bytes);
    atomic_store_explicit(&wal.replay_us, clock_mono_us() - started, memory_order_relaxed);
    if (_start(err, err_len) != 0) {
        return -1;
    }
    return (int64_t)scan.applied;
}

bool wal_write_failing(char *why, size_t len) {
    pthread_mutex_lock(&wal.error_lock);
    bool failing = wal.failing;
    if (failing && why != NULL) {
        snprintf(why, len, "%s", wal.last_error);
    }
    pthread_mutex_unlock(&wal.error_lock);
    return failing;
}

void wal_status(struct wal_status *out) {
    memset(out, 0, sizeof *out);
    if (!wal.enabled) {
        return;
    }
    out->durability = wal.options.durability;
    out->segments = atomic_load_explicit(&wal.segments, memory_order_relaxed);
    out->disk_bytes = atomic_load_explicit(&wal.disk_bytes, memory_order_relaxed);
    out->records = atomic_load_explicit(&wal.records, memory_order_relaxed);
    out->fsyncs = atomic_load_explicit(&wal.fsyncs, memory_order_relaxed);
    out->replayed = atomic_load_explicit(&wal.replayed, memory_order_relaxed);
    out->replay_us = atomic_load_explicit(&wal.replay_us, memory_order_relaxed);
    uint64_t counts[FSYNC_BUCKETS + 1], total = 0;
    for (size_t b = 0; b <= FSYNC_BUCKETS; b++) {
        counts[b] = atomic_load_explicit(&wal.fsync_buckets[b], memory_order_relaxed);
        total += counts[b];
    }
    uint64_t below = 0;
    for (size_t b = 0; total > 0 && b <= FSYNC_BUCKETS; b++) {
        below += counts[b];
        if (below * 100 >= total * 99) {
            out->fsync_p99_s = b < FSYNC_BUCKETS ? _fsync_bounds_s[b] : INFINITY;
            break;
        }
    }
    out->failing = wal_write_failing(out->error, sizeof out->error);
}

uint64_t wal_segment_first_seq(void) {
    return atomic_load_explicit(&wal.seg_first_seq, memory_order_relaxed);
}

uint64_t wal_applied_seq(void) {
    return atomic_load_explicit(&wal.applied_seq, memory_order_acquire);
}

int wal_drop_through(uint64_t seq, char *err, size_t err_len) {
    if (!wal.enabled) {
        return 0;
    }
    uint64_t *firsts = NULL;
    size_t n = 0;
    if (wal_list_segments(wal.dir_fd, &firsts, &n, err, err_len) != 0) {
        return -1;
    }
    /* Segment i holds records firsts[i] .. firsts[i+1]-1: gone when all are <= seq. The last
     * one listed is kept whatever it holds (the writer may be appending to it). */
    int dropped = 0;
    for (size_t i = 0; i + 1 < n && firsts[i + 1] <= seq + 1; i++) {
        char name[32];
        wal_segment_name(name, sizeof name, firsts[i]);
        struct stat st;
        off_t size = fstatat(wal.dir_fd, name, &st, 0) == 0 ? st.st_size : 0;
        if (unlinkat(wal.dir_fd, name, 0) != 0) {
            int e = errno;
            free(firsts);
            return errors_set(err, err_len, "wal: remove %s: %s", name, strerror(e));
        }
        _add(&wal.segments, (uint64_t)-1);
        _add(&wal.disk_bytes, (uint64_t)-size);
        dropped++;
    }
    free(firsts);
    if (dropped > 0 && fsync(wal.dir_fd) != 0) {
        return errors_set(err, err_len, "wal: fsync of the directory: %s", strerror(errno));
    }
    return dropped;
}

/* ---- metrics ------------------------------------------------------------------------------- */

static uint64_t _get(_Atomic uint64_t *counter) {
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void _collect(struct metric_writer *w, void *ctx) {
    (void)ctx;
    const struct metric_def *d = wal_metric_defs;
    metrics_write_count(w, &d[WAL_M_RECORDS], NULL, _get(&wal.records));
    metrics_write_count(w, &d[WAL_M_BYTES_WRITTEN], NULL, _get(&wal.bytes_written));
    metrics_write_count(w, &d[WAL_M_FSYNCS], NULL, _get(&wal.fsyncs));
    uint64_t cumulative[FSYNC_BUCKETS + 1], total = 0;
    for (size_t b = 0; b <= FSYNC_BUCKETS; b++) {
        total += _get(&wal.fsync_buckets[b]);
        cumulative[b] = total;
    }
    metrics_write_histogram(w, &d[WAL_M_FSYNC_SECONDS], NULL, _fsync_bounds_s, FSYNC_BUCKETS,
                            cumulative, (double)_get(&wal.fsync_sum_ns) / 1e9);
    metrics_write_count(w, &d[WAL_M_WRITE_ERRORS], NULL, _get(&wal.write_errors));
    metrics_write_count(w, &d[WAL_M_FAILING], NULL, wal_write_failing(NULL, 0) ? 1 : 0);
    metrics_write_count(w, &d[WAL_M_SEGMENTS], NULL, _get(&wal.segments));
    metrics_write_count(w, &d[WAL_M_DISK_BYTES], NULL, _get(&wal.disk_bytes));
    metrics_write_count(w, &d[WAL_M_REPLAYED], NULL, _get(&wal.replayed));
    static const char *const reasons[WAL_REPLAY_OUTCOMES] = {
        [WAL_REPLAY_APPLIED] = NULL,
        [WAL_REPLAY_UNKNOWN_VIEW] = "unknown_view",
        [WAL_REPLAY_LAYOUT_CHANGED] = "layout_changed",
        [WAL_REPLAY_FAILED] = "failed",
        [WAL_REPLAY_IN_CHECKPOINT] = "in_checkpoint",
    };
    for (int i = 0; i < WAL_REPLAY_OUTCOMES; i++) {
        if (reasons[i] != NULL) {
            metrics_write_count(w, &d[WAL_M_REPLAY_SKIPPED], (const char *[]){reasons[i]},
                                _get(&wal.skipped[i]));
        }
    }
    metrics_write_count(w, &d[WAL_M_TORN_TAIL_BYTES], NULL, _get(&wal.torn_tail_bytes));
    metrics_write_count(w, &d[WAL_M_CORRUPT], NULL, _get(&wal.corrupt));
    metrics_write_value(w, &d[WAL_M_REPLAY_SECONDS], NULL,
                        (double)atomic_load_explicit(&wal.replay_us, memory_order_relaxed) / 1e6);
}
