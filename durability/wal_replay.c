/*
 * Reading the log back at start: every segment in order, every record checked (its length,
 * its sequence number, its hash) before it is applied. What ends the replay, and what is cut
 * or kept aside, is in wal.h.
 *
 * A segment's records must run on from the previous segment's without a gap. The next
 * segment's first sequence number bounds this one: records past it were written after a
 * failed write the log writer gave up on (it starts a new segment with the same number), so
 * they were never acknowledged and are cut like a torn tail. A record that stops short of that
 * bound is damage: the records between it and the next segment are gone.
 */
#include "wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/errors.h"
#include "common/log.h"

static int _cmp_seq(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int wal_list_segments(int dir_fd, uint64_t **out, size_t *n, char *err, size_t err_len) {
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return errors_set(err, err_len, "wal: cannot list the directory: %s", strerror(errno));
    }
    rewinddir(d);
    uint64_t *seqs = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strlen(name) != 20 || strcmp(name + 16, ".log") != 0 ||
            strspn(name, "0123456789abcdef") != 16) {
            continue; /* not a segment: *.corrupt, temporaries of later versions */
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc(seqs, cap * sizeof(*seqs));
            if (grown == NULL) {
                free(seqs);
                closedir(d);
                return errors_set(err, err_len, "wal: out of memory");
            }
            seqs = grown;
        }
        seqs[count++] = strtoull(name, NULL, 16);
    }
    closedir(d);
    if (count > 1) {
        qsort(seqs, count, sizeof(*seqs), _cmp_seq);
    }
    *out = seqs;
    *n = count;
    return 0;
}

/* Renames the segment to NAME.corrupt, kept for whoever looks into it. */
static void _set_aside(int dir_fd, uint64_t first_seq) {
    char name[32], aside[48];
    wal_segment_name(name, sizeof name, first_seq);
    snprintf(aside, sizeof aside, "%s.corrupt", name);
    if (renameat(dir_fd, name, dir_fd, aside) != 0) {
        log_error("wal: could not set a damaged segment aside", "segment=%s error=%s", name,
                  LOG_QUOTE(strerror(errno)));
    }
}

/* Whether the mapped file starts with a segment header for `first_seq`. */
static bool _header_ok(const uint8_t *p, size_t size, uint64_t first_seq) {
    return size >= WAL_SEGMENT_HEADER_BYTES && memcmp(p, WAL_MAGIC, 8) == 0 &&
           wal_get_u32(p + 8) == WAL_FORMAT_VERSION && wal_get_u64(p + 16) == first_seq &&
           wal_get_u64(p + 24) == XXH3_64bits(p, 24);
}

/*
 * Replays the records of one mapped segment from sequence number `seq` up to `limit`
 * (exclusive). Returns the offset where reading stopped and sets *seq to the next record's
 * number.
 */
static size_t _replay_segment(const uint8_t *p, size_t size, uint64_t *seq, uint64_t limit,
                              wal_apply_fn apply, void *arg, struct wal_scan *scan,
                              const char *name, bool *failed) {
    struct wal_batch batch = {0};
    size_t off = WAL_SEGMENT_HEADER_BYTES;
    while (*seq < limit && size - off >= WAL_RECORD_HEADER_BYTES) {
        const uint8_t *r = p + off;
        size_t payload = wal_get_u32(r);
        if (wal_get_u64(r + 8) != *seq || payload % 8 != 0 || payload > WAL_MAX_RECORD_BYTES ||
            payload > size - off - WAL_RECORD_HEADER_BYTES ||
            wal_get_u64(r + 16) != wal_record_hash(r, WAL_RECORD_HEADER_BYTES + payload)) {
            break;
        }
        if (wal_get_u32(r + 4) == WAL_RECORD_JUMP) {
            uint64_t to = payload == 8 ? wal_get_u64(r + WAL_RECORD_HEADER_BYTES) : 0;
            if (to <= *seq) {
                log_error("wal: a jump record goes backwards, replay stops",
                          "segment=%s seq=%" PRIu64, name, *seq);
                break;
            }
            *seq = to; /* written when checkpoints held records the log had lost */
            off += WAL_RECORD_HEADER_BYTES + payload;
            continue;
        }
        batch.buf = (uint8_t *)r; /* read only: the mapping is private and read-only */
        batch.len = WAL_RECORD_HEADER_BYTES + payload;
        batch.nrows = 0;
        char why[160];
        if (wal_batch_parse(&batch, why, sizeof why) != 0) {
            /* Its hash checked, so fsd wrote it so: a newer version's record, or a bug. */
            log_error("wal: record not understood, replay stops",
                      "segment=%s seq=%" PRIu64 " error=%s", name, *seq, LOG_QUOTE(why));
            break;
        }
        enum wal_replay_outcome outcome = apply(&batch, arg);
        if (outcome == WAL_REPLAY_FAILED) {
            *failed = true; /* the caller refuses to start: serving part of it would be wrong */
            break;
        }
        if (outcome == WAL_REPLAY_APPLIED) {
            scan->applied++;
        } else {
            scan->skipped[outcome]++;
        }
        (*seq)++;
        off += WAL_RECORD_HEADER_BYTES + payload;
    }
    free(batch.row_offsets);
    return off;
}

/* Whether a whole, checked record numbered `seq` or later starts anywhere in [from, size):
 * then what stopped the replay at `from` is damage, not a write a crash interrupted. */
static bool _later_record(const uint8_t *p, size_t size, size_t from, uint64_t seq) {
    for (size_t off = (from + 7) & ~(size_t)7; off + WAL_RECORD_HEADER_BYTES <= size; off += 8) {
        const uint8_t *r = p + off;
        uint64_t rseq = wal_get_u64(r + 8);
        size_t payload = wal_get_u32(r);
        if (rseq >= seq && rseq - seq < (1ull << 32) && payload % 8 == 0 &&
            payload <= size - off - WAL_RECORD_HEADER_BYTES &&
            wal_get_u64(r + 16) == wal_record_hash(r, WAL_RECORD_HEADER_BYTES + payload)) {
            return true;
        }
    }
    return false;
}

/* Writes `len` bytes to a new file `name` in the directory, fsync'd. */
static int _write_file(int dir_fd, const char *name, const uint8_t *data, size_t len) {
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    int rc = fdatasync(fd);
    close(fd);
    return rc;
}

/*
 * A damaged segment: the whole file goes aside as NAME.corrupt, and its valid first `end`
 * bytes (header and records before the damage, if any) stay under its name, so the next
 * start replays them again and new segments never take its name.
 */
static int _keep_prefix(int dir_fd, const char *name, const uint8_t *p, size_t end) {
    char aside[48], tmp[48];
    snprintf(aside, sizeof aside, "%s.corrupt", name);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    bool prefix = end > WAL_SEGMENT_HEADER_BYTES;
    if (prefix && _write_file(dir_fd, tmp, p, end) != 0) {
        return -1;
    }
    if (renameat(dir_fd, name, dir_fd, aside) != 0 ||
        (prefix && renameat(dir_fd, tmp, dir_fd, name) != 0) || fsync(dir_fd) != 0) {
        return -1;
    }
    return 0;
}

int wal_scan_dir(int dir_fd, wal_apply_fn apply, void *arg, struct wal_scan *scan, char *err,
                 size_t err_len) {
    uint64_t *firsts = NULL;
    size_t n = 0;
    if (wal_list_segments(dir_fd, &firsts, &n, err, err_len) != 0) {
        return -1;
    }
    uint64_t seq = n > 0 ? firsts[0] : 1;
    bool damaged = false;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        wal_segment_name(name, sizeof name, firsts[i]);
        bool last = i + 1 == n;
        if (damaged || firsts[i] != seq) {
            if (!damaged) {
                log_error("wal: records missing before a segment; it and the later ones are "
                          "not replayed",
                          "segment=%s expected_seq=%" PRIu64, name, seq);
                scan->corrupt_segments++;
                damaged = true;
            }
            _set_aside(dir_fd, firsts[i]);
            continue;
        }
        int fd = openat(dir_fd, name, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            int e = errno;
            if (fd >= 0) {
                close(fd);
            }
            free(firsts);
            return errors_set(err, err_len, "wal: open %s: %s", name, strerror(e));
        }
        size_t size = (size_t)st.st_size;
        const uint8_t *p = NULL;
        if (size > 0) {
            void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                int e = errno;
                close(fd);
                free(firsts);
                return errors_set(err, err_len, "wal: map %s: %s", name, strerror(e));
            }
            p = m;
        }
        size_t end = 0;
        bool header_ok = p != NULL && _header_ok(p, size, firsts[i]), failed = false;
        if (header_ok) {
            uint64_t limit = last ? UINT64_MAX : firsts[i + 1];
            end = _replay_segment(p, size, &seq, limit, apply, arg, scan, name, &failed);
        }
        int rc = 0;
        if (failed) {
            rc = errors_set(err, err_len,
                            "wal: %s: a record could not be applied (out of memory, or rows that "
                            "do not agree with their view's layout); fsd does not start on part "
                            "of its log",
                            name);
        } else if (size <= WAL_SEGMENT_HEADER_BYTES) {
            /* Opened and never written (a crash before or while its header was written): it
             * holds no record, and the next segment takes its name. (Not the last only: a
             * segment after it cannot run on from it, so it goes aside as damage, and this one
             * would then be the last.) */
            if (unlinkat(dir_fd, name, 0) != 0 || fsync(dir_fd) != 0) {
                rc = errors_set(err, err_len, "wal: remove %s: %s", name, strerror(errno));
            }
        } else if (end == size) {
            scan->segments++;
            scan->disk_bytes += size;
        } else if (last ? (header_ok ? _later_record(p, size, end, seq)
                                     : size > WAL_SEGMENT_HEADER_BYTES)
                        : (!header_ok || seq != firsts[i + 1])) {
            /* Records are missing: what follows the damage is not replayed, by this start or
             * any later one. */
            log_error("wal: damaged segment: replay stops in it; the file is kept as *.corrupt",
                      "segment=%s offset=%zu seq=%" PRIu64, name, end, seq);
            scan->corrupt_segments++;
            damaged = true;
            if (_keep_prefix(dir_fd, name, p, end) != 0) {
                rc = errors_set(err, err_len, "wal: setting %s aside: %s", name, strerror(errno));
            } else if (end > WAL_SEGMENT_HEADER_BYTES) {
                scan->segments++;
                scan->disk_bytes += end;
            }
        } else {
            /* A write a crash interrupted, or one that failed and was given up on: never
             * acknowledged, so never replayed. Its bytes are kept in NAME.torn for a look. */
            char torn[48];
            snprintf(torn, sizeof torn, "%s.torn", name);
            if (p != NULL && _write_file(dir_fd, torn, p + end, size - end) != 0) {
                log_warn("wal: could not keep a torn tail's bytes", "file=%s error=%s", torn,
                         LOG_QUOTE(strerror(errno)));
            }
            scan->torn_tail_bytes += size - end;
            log_warn("wal: torn tail cut", "segment=%s bytes=%zu", name, size - end);
            if (last && end <= WAL_SEGMENT_HEADER_BYTES) {
                /* No record left: the next segment takes its name. */
                if (unlinkat(dir_fd, name, 0) != 0 || fsync(dir_fd) != 0) {
                    rc = errors_set(err, err_len, "wal: remove %s: %s", name, strerror(errno));
                }
            } else if (ftruncate(fd, (off_t)end) != 0 || fdatasync(fd) != 0) {
                rc = errors_set(err, err_len, "wal: cut %s: %s", name, strerror(errno));
            } else {
                scan->segments++;
                scan->disk_bytes += end;
            }
        }
        if (p != NULL) {
            munmap((void *)p, size);
        }
        close(fd);
        if (rc != 0) {
            free(firsts);
            return -1;
        }
    }
    free(firsts);
    scan->next_seq = seq;
    return 0;
}
