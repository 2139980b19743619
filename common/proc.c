/* The process as /proc/self shows it (proc.h). */
#include "proc.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * Fields of /proc/self/stat after the command name (which may hold spaces and parentheses,
 * so parsing starts after the last ')'): out[0] is field 3 (state), out[k] field k + 3.
 */
static int _proc_stat(unsigned long long *out, size_t n) {
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return -1;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *p = strrchr(text, ')');
    if (p == NULL) {
        return -1;
    }
    p += 2; /* ") " */
    p += strcspn(p, " ");
    out[0] = 0; /* state is a letter */
    for (size_t i = 1; i < n; i++) {
        if (sscanf(p, " %llu", &out[i]) != 1) {
            return -1;
        }
        p += strspn(p, " ");
        p += strcspn(p, " ");
    }
    return 0;
}

int64_t proc_start_us(void) {
    unsigned long long fields[20];
    if (_proc_stat(fields, 20) != 0) {
        return 0;
    }
    /* field 22 starttime: clock ticks after boot; /proc/stat btime: boot, Unix seconds */
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return 0;
    }
    char line[256];
    long long btime = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "btime %lld", &btime) == 1) {
            break;
        }
    }
    fclose(f);
    long ticks = sysconf(_SC_CLK_TCK);
    if (btime < 0 || ticks <= 0) {
        return 0;
    }
    return btime * 1000000 + (int64_t)(fields[19] * 1000000ULL / (unsigned long long)ticks);
}

double proc_cpu_seconds(void) {
    unsigned long long fields[13];
    long ticks = sysconf(_SC_CLK_TCK);
    if (_proc_stat(fields, 13) != 0 || ticks <= 0) {
        return 0;
    }
    /* fields 14 utime and 15 stime */
    return (double)(fields[11] + fields[12]) / (double)ticks;
}

uint64_t proc_resident_bytes(void) {
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

uint64_t proc_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the descriptor opendir itself holds */
}
