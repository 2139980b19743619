/* A throwaway PostgreSQL server for tests and benchmarks (pg_server.h). */
#include "pg_server.h"
#include "common/clock.h"
#include "common/errors.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_OPTIONS    32
#define PORT_ATTEMPTS  5
#define STOP_TIMEOUT_S 30
#define STALE_AFTER_S  600

static void _sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Appends the last lines of a log file to `err`, so a failed step shows why. */
static void _append_log(char *err, size_t err_len, const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char tail[1024] = "";
    if (fseek(f, -(long)(sizeof tail - 1), SEEK_END) != 0) {
        rewind(f);
    }
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    tail[n] = '\0';
    fclose(f);
    size_t used = strlen(err);
    snprintf(err + used, err_len - used, "\n--- %s (end) ---\n%s", path, tail);
}

int pg_server_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

static int _find_bindir(struct pg_server *s, char *err, size_t err_len) {
    const char *env = getenv("FSD_PG_BINDIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(s->bindir, sizeof s->bindir, "%s", env);
        return 0;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        globfree(&g);
        return errors_set(err, err_len,
                          "no PostgreSQL server found in /usr/lib/postgresql/*/bin "
                          "(bash scripts/setup.sh installs it; or set FSD_PG_BINDIR)");
    }
    /* newest major version: the highest number, not the last in string order (9 vs 15) */
    const char *best = NULL;
    long best_version = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long version = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (version > best_version) {
            best_version = version;
            best = g.gl_pathv[i];
        }
    }
    snprintf(s->bindir, sizeof s->bindir, "%.*s", (int)(strlen(best) - strlen("/postgres")), best);
    globfree(&g);
    return 0;
}

/* Waits for `pid` at most `timeout_s`; returns its wait status, or -1 on timeout. */
static int _wait_pid(pid_t pid, double timeout_s) {
    double until = (clock_mono_us() / 1e6) + timeout_s;
    for (;;) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) {
            return status;
        }
        if (got < 0 && errno != EINTR) {
            return 0; /* not our child any more: nothing to wait for */
        }
        if ((clock_mono_us() / 1e6) > until) {
            return -1;
        }
        _sleep_ms(20);
    }
}

static int _ensure_user(struct pg_server *s, char *err, size_t err_len) {
    if (geteuid() != 0) {
        s->drop_to_user = false;
        return 0;
    }
    struct passwd *pw = getpwnam(PG_SERVER_USER);
    if (pw == NULL) {
        pid_t pid = fork();
        if (pid < 0) {
            return errors_set(err, err_len, "fork: %s", strerror(errno));
        }
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, STDOUT_FILENO);
            execl("/usr/sbin/useradd", "useradd", "--system", "--user-group", "--no-create-home",
                  "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", PG_SERVER_USER,
                  (char *)NULL);
            _exit(127);
        }
        _wait_pid(pid, 60);
        /* a parallel test may have created it first: only the user's existence matters */
        pw = getpwnam(PG_SERVER_USER);
        if (pw == NULL) {
            return errors_set(err, err_len, "could not create the user %s with useradd",
                              PG_SERVER_USER);
        }
    }
    s->drop_to_user = true;
    s->uid = pw->pw_uid;
    s->gid = pw->pw_gid;
    return 0;
}

/*
 * Starts argv[0] (a path) as the server's user in its own process group, output appended to
 * `log`. In the child only async-signal-safe calls: the parent may have threads.
 */
static pid_t _spawn(const struct pg_server *s, char *const argv[], const char *log) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    /* own process group: a ^C in the terminal goes to the test, which stops the server */
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null < 0 || out < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(out, STDERR_FILENO) < 0) {
        _exit(126);
    }
    if (s->drop_to_user && (fchown(out, s->uid, s->gid) != 0 || setgid(s->gid) != 0 ||
                            setgroups(0, NULL) != 0 || setuid(s->uid) != 0)) {
        _exit(125);
    }
    /* after setuid, which clears it: a test that dies takes its server with it */
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent) {
        _exit(124);
    }
    if (chdir(s->dir) != 0) {
        _exit(123);
    }
    execv(argv[0], argv);
    _exit(127);
}

static int _remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void _remove_dir(struct pg_server *s) {
    if (s->dir[0] != '\0') {
        nftw(s->dir, _remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
}

/*
 * Removes the folders of servers that died with their test (a crash or a kill -9 leaves the
 * folder behind; the postmaster itself exits through PR_SET_PDEATHSIG). A folder is stale
 * when its postmaster.pid names a dead process, or it has none, and it has not changed for
 * STALE_AFTER_S: a concurrent run between initdb and start, or between a kill and a restart,
 * is never younger than that.
 */
static void _remove_stale(void) {
    glob_t g;
    if (glob("/tmp/fsd-pg-??????", GLOB_ONLYDIR, NULL, &g) != 0) {
        globfree(&g);
        return;
    }
    time_t now = time(NULL);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char pidfile[512];
        snprintf(pidfile, sizeof pidfile, "%s/data/postmaster.pid", g.gl_pathv[i]);
        struct stat st;
        const char *probe = stat(pidfile, &st) == 0 ? pidfile : g.gl_pathv[i];
        if (stat(probe, &st) != 0 || now - st.st_mtime < STALE_AFTER_S) {
            continue;
        }
        FILE *f = fopen(pidfile, "r");
        long pid = 0;
        if (f != NULL) {
            if (fscanf(f, "%ld", &pid) != 1) {
                pid = 0;
            }
            fclose(f);
        }
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) {
            continue; /* still running */
        }
        struct pg_server stale = {0};
        snprintf(stale.dir, sizeof stale.dir, "%s", g.gl_pathv[i]);
        _remove_dir(&stale);
    }
    globfree(&g);
}

static int _initdb(struct pg_server *s, char *err, size_t err_len) {
    char initdb[512], data[512], log[512];
    snprintf(initdb, sizeof initdb, "%s/initdb", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(log, sizeof log, "%s/initdb.log", s->dir);
    char *argv[] = {
        initdb,        "-D", data,   "-U", PG_SERVER_SUPERUSER, "--auth=trust", "--no-sync",
        "--no-locale", "-E", "UTF8", NULL};
    pid_t pid = _spawn(s, argv, log);
    if (pid < 0) {
        return errors_set(err, err_len, "fork: %s", strerror(errno));
    }
    int status = _wait_pid(pid, 120);
    if (status == -1) {
        kill(pid, SIGKILL);
        _wait_pid(pid, 5);
        errors_set(err, err_len, "initdb did not finish within 120 s");
        _append_log(err, err_len, log);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errors_set(err, err_len, "initdb failed (status %d)", status);
        _append_log(err, err_len, log);
        return -1;
    }
    return 0;
}

/* Options other than the port, kept so pg_server_restart() starts the same server. */
static const char *g_options[MAX_OPTIONS + 1];

static int _launch(struct pg_server *s, char *err, size_t err_len) {
    char postgres[512], data[512], log[512], port[16];
    snprintf(postgres, sizeof postgres, "%s/postgres", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(log, sizeof log, "%s/postgres.log", s->dir);
    snprintf(port, sizeof port, "%d", s->port);
    /* speed over durability: the cluster is deleted after the test */
    const char *fixed[] = {"listen_addresses=127.0.0.1", "fsync=off", "full_page_writes=off",
                           "max_connections=40"};
    char *argv[8 + 2 * (MAX_OPTIONS + 5)];
    int n = 0;
    argv[n++] = postgres;
    argv[n++] = "-D";
    argv[n++] = data;
    argv[n++] = "-k";
    argv[n++] = s->dir;
    argv[n++] = "-p";
    argv[n++] = port;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        argv[n++] = "-c";
        argv[n++] = (char *)fixed[i];
    }
    for (int i = 0; g_options[i] != NULL; i++) {
        argv[n++] = "-c";
        argv[n++] = (char *)g_options[i];
    }
    argv[n] = NULL;
    s->pid = _spawn(s, argv, log);
    if (s->pid < 0) {
        s->pid = 0;
        return errors_set(err, err_len, "fork: %s", strerror(errno));
    }
    return 0;
}

static void _admin_dsn(const struct pg_server *s, const char *db, char *out, size_t out_len) {
    snprintf(out, out_len, "host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=5", s->port,
             db, PG_SERVER_SUPERUSER);
}

/*
 * Waits until the postmaster accepts connections. Returns 0, -1 on failure, or 1 when it
 * exited because its port was taken (the caller picks another).
 */
static int _await(struct pg_server *s, char *err, size_t err_len) {
    char dsn[256], log[512];
    _admin_dsn(s, "postgres", dsn, sizeof dsn);
    snprintf(log, sizeof log, "%s/postgres.log", s->dir);
    double until = (clock_mono_us() / 1e6) + PG_SERVER_READY_S;
    for (;;) {
        if (PQping(dsn) == PQPING_OK) {
            return 0;
        }
        int status;
        if (s->pid != 0 && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            char text[1024] = "";
            _append_log(text, sizeof text, log);
            if (strstr(text, "could not bind") != NULL || strstr(text, "already in use") != NULL) {
                return 1;
            }
            errors_set(err, err_len, "postgres exited during start-up (status %d)", status);
            _append_log(err, err_len, log);
            return -1;
        }
        if ((clock_mono_us() / 1e6) > until) {
            errors_set(err, err_len, "postgres did not accept connections within %d s",
                       PG_SERVER_READY_S);
            _append_log(err, err_len, log);
            return -1;
        }
        _sleep_ms(50);
    }
}

int pg_server_wait_ready(struct pg_server *s, char *err, size_t err_len) {
    return _await(s, err, err_len) == 0 ? 0 : -1;
}

static int _exec_db(const struct pg_server *s, const char *db, const char *sql, char *err,
                    size_t err_len) {
    char dsn[256];
    _admin_dsn(s, db, dsn, sizeof dsn);
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        errors_set(err, err_len, "connecting to %s: %s", db, PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = errors_set(err, err_len, "%s", PQerrorMessage(conn));
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int pg_server_exec(const struct pg_server *s, const char *sql, char *err, size_t err_len) {
    return _exec_db(s, PG_SERVER_DATABASE, sql, err, err_len);
}

int pg_server_start(struct pg_server *s, const char *const *options, char *err, size_t err_len) {
    memset(s, 0, sizeof *s);
    /* backends orphaned by a killed postmaster become our children, so we can reap them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int n = 0;
    for (; options != NULL && options[n] != NULL && n < MAX_OPTIONS; n++) {
        g_options[n] = options[n];
    }
    g_options[n] = NULL;
    if (_find_bindir(s, err, err_len) != 0 || _ensure_user(s, err, err_len) != 0) {
        return -1;
    }
    _remove_stale();
    snprintf(s->dir, sizeof s->dir, "/tmp/fsd-pg-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        return errors_set(err, err_len, "mkdtemp: %s", strerror(errno));
    }
    if (s->drop_to_user && chown(s->dir, s->uid, s->gid) != 0) {
        errors_set(err, err_len, "chown %s: %s", s->dir, strerror(errno));
        pg_server_stop(s);
        return -1;
    }
    if (_initdb(s, err, err_len) != 0) {
        pg_server_stop(s);
        return -1;
    }
    int rc = 1;
    for (int attempt = 0; attempt < PORT_ATTEMPTS && rc == 1; attempt++) {
        s->port = pg_server_free_port();
        if (s->port < 0) {
            errors_set(err, err_len, "no free port: %s", strerror(errno));
            pg_server_stop(s);
            return -1;
        }
        rc = _launch(s, err, err_len);
        if (rc == 0) {
            rc = _await(s, err, err_len);
        }
    }
    if (rc != 0) {
        if (rc == 1) {
            errors_set(err, err_len, "no free port after %d attempts", PORT_ATTEMPTS);
        }
        pg_server_stop(s);
        return -1;
    }
    if (_exec_db(s, "postgres", "CREATE DATABASE " PG_SERVER_DATABASE, err, err_len) != 0) {
        pg_server_stop(s);
        return -1;
    }
    snprintf(s->dsn, sizeof s->dsn, "host=127.0.0.1 port=%d dbname=%s user=%s", s->port,
             PG_SERVER_DATABASE, PG_SERVER_SUPERUSER);
    return 0;
}

/* The pids whose parent is `parent` (from /proc), at most `max`. */
static int _children(pid_t parent, pid_t *out, int max) {
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) {
            continue;
        }
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
        char *close = ok ? strrchr(line, ')') : NULL;
        char state;
        long ppid;
        if (close != NULL && sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent) {
            out[n++] = (pid_t)pid;
        }
    }
    closedir(proc);
    return n;
}

void pg_server_kill(struct pg_server *s) {
    if (s->pid <= 0) {
        return;
    }
    /*
     * Every backend calls setsid(), so no process group holds them all: kill the postmaster's
     * children by pid, then the postmaster. The children become ours (child subreaper) and
     * are reaped here, so none still holds the old shared memory when the server restarts.
     */
    pid_t kids[256];
    kill(s->pid, SIGSTOP); /* no new backends while we look */
    int n = _children(s->pid, kids, 256);
    for (int i = 0; i < n; i++) {
        kill(kids[i], SIGKILL);
    }
    kill(s->pid, SIGKILL);
    _wait_pid(s->pid, STOP_TIMEOUT_S);
    for (int i = 0; i < n; i++) {
        _wait_pid(kids[i], STOP_TIMEOUT_S);
    }
    s->pid = 0;
}

int pg_server_restart(struct pg_server *s, char *err, size_t err_len) {
    pg_server_kill(s);
    /* the backends of the killed postmaster may still be exiting and hold its shared memory */
    int rc = 1;
    for (int attempt = 0; attempt < 50 && rc != 0; attempt++) {
        if (_launch(s, err, err_len) != 0) {
            return -1;
        }
        rc = _await(s, err, err_len);
        if (rc != 0) {
            _sleep_ms(100);
        }
    }
    return rc == 0 ? 0 : -1;
}

void pg_server_stop(struct pg_server *s) {
    if (s->pid > 0) {
        /* SIGINT: fast shutdown, backends are told to exit */
        kill(s->pid, SIGINT);
        if (_wait_pid(s->pid, STOP_TIMEOUT_S) == -1) {
            pg_server_kill(s);
        }
        s->pid = 0;
    }
    _remove_dir(s);
}
