/* test_logfile.c: the JSONL sink: files, rotation, stdout pipes, losses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "logfile.h"

struct tmpdir {
  char dir[64];
  char path[128];    /* dir/access.jsonl */
  char rotated[128]; /* dir/access.jsonl.1 */
};

static int setup_dir(void **state) {
  struct tmpdir *t = calloc(1, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/awf-logfile-XXXXXX");
  if (!mkdtemp(t->dir)) {
    free(t);
    return -1;
  }
  snprintf(t->path, sizeof(t->path), "%s/access.jsonl", t->dir);
  snprintf(t->rotated, sizeof(t->rotated), "%s/access.jsonl.1", t->dir);
  *state = t;
  return 0;
}

static int teardown_dir(void **state) {
  struct tmpdir *t = *state;
  unlink(t->path);
  rmdir(t->path); /* one test puts a directory there */
  unlink(t->rotated);
  rmdir(t->dir);
  free(t);
  return 0;
}

/* Whole file contents, NUL-terminated; *len excludes the NUL. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Number of lines, each checked to be one whole record: starts with the ts
 * key, ends with "}\n". Returns -1 on a damaged line. */
static long count_records(const char *buf, size_t len) {
  long lines = 0;
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (i - start < 8 || memcmp(buf + start, "{\"ts\":\"", 7) != 0 || buf[i - 1] != '}')
      return -1;
    lines++;
    start = i + 1;
  }
  return start == len ? lines : -1;
}

static void record(struct awf_log_record *r, int n) {
  awf_log_record_init(r);
  r->ts_ms = 1795888001123ull;
  r->event = "http";
  r->client = "127.0.0.1:40000";
  r->method = "GET";
  r->host = "example.com";
  r->host_len = 11;
  r->port = 80;
  r->decision = AWF_ALLOW;
  r->reason = AWF_REASON_ALLOWED;
  r->status = n;
}

static void write_n(awf_logfile *lf, int from, int to) {
  for (int i = from; i < to; i++) {
    struct awf_log_record r;
    record(&r, i);
    assert_int_equal(awf_logfile_write(lf, &r), 0);
  }
}

/* Every record i in [from, to) appears, in order, one per line. */
static void assert_lines(const char *path, int from, int to) {
  size_t len;
  char *buf = slurp(path, &len);
  assert_int_equal(count_records(buf, len), to - from);
  const char *p = buf;
  for (int i = from; i < to; i++) {
    char want[32];
    snprintf(want, sizeof(want), "\"status\":%d}\n", i);
    const char *hit = strstr(p, want);
    if (!hit)
      fail_msg("record %d missing from %s", i, path);
    p = hit + strlen(want);
  }
  free(buf);
}

/* ---- files -------------------------------------------------------------- */

static void many_records_many_lines(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 2000);
  assert_int_equal(awf_logfile_lost(lf), 0);
  awf_logfile_close(lf);
  assert_lines(t->path, 0, 2000);
}

static void creates_0640_and_appends(void **state) {
  struct tmpdir *t = *state;
  mode_t old = umask(022);
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  umask(old);
  struct stat st;
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  write_n(lf, 0, 3);
  awf_logfile_close(lf);

  /* A second open appends, it does not truncate. */
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 3, 5);
  awf_logfile_close(lf);
  assert_lines(t->path, 0, 5);
}

static void descriptor_is_cloexec(void **state) {
  struct tmpdir *t = *state;
  int before = dup(0);
  close(before); /* the lowest free descriptor, which open() will take */
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  int flags = fcntl(before, F_GETFD);
  assert_true(flags >= 0);
  assert_true(flags & FD_CLOEXEC);
  awf_logfile_close(lf);
  assert_int_equal(fcntl(before, F_GETFD), -1); /* and close() released it */
}

static void reopen_after_rename(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 3);
  assert_int_equal(rename(t->path, t->rotated), 0);
  write_n(lf, 3, 5); /* before SIGHUP: still the old file */
  assert_int_equal(awf_logfile_reopen(lf), 0);
  write_n(lf, 5, 7);
  awf_logfile_close(lf);
  assert_lines(t->rotated, 0, 5);
  assert_lines(t->path, 5, 7);
}

static void reopen_without_rotation_keeps_appending(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 2);
  assert_int_equal(awf_logfile_reopen(lf), 0);
  assert_int_equal(awf_logfile_reopen(lf), 0);
  write_n(lf, 2, 4);
  awf_logfile_close(lf);
  assert_lines(t->path, 0, 4);
}

static void reopen_failure_keeps_old_descriptor(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 2);
  assert_int_equal(rename(t->path, t->rotated), 0);
  assert_int_equal(mkdir(t->path, 0700), 0); /* the path can no longer be opened */
  assert_int_equal(awf_logfile_reopen(lf), -EISDIR);
  write_n(lf, 2, 4);
  assert_int_equal(awf_logfile_lost(lf), 0);
  awf_logfile_close(lf);
  assert_lines(t->rotated, 0, 4);
}

static void open_errors(void **state) {
  struct tmpdir *t = *state;
  char bad[192];
  snprintf(bad, sizeof(bad), "%s/no/such/dir.jsonl", t->dir);
  awf_logfile *lf = (awf_logfile *)&lf;
  assert_int_equal(awf_logfile_open(bad, &lf), -ENOENT);
  assert_null(lf);
  assert_int_equal(mkdir(t->path, 0700), 0);
  assert_int_equal(awf_logfile_open(t->path, &lf), -EISDIR);
  assert_null(lf);
}

static void null_path_discards(void **state) {
  (void)state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(NULL, &lf), 0);
  assert_non_null(lf);
  write_n(lf, 0, 10);
  assert_int_equal(awf_logfile_reopen(lf), 0);
  assert_int_equal(awf_logfile_lost(lf), 0);
  awf_logfile_close(lf);
  awf_logfile_close(NULL);
}

static void oversized_record_lost_whole(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 1);
  /* Hosts are not cut like URLs: 20 KiB of control bytes is 120 KiB escaped. */
  size_t n = 20 * 1024;
  char *host = malloc(n);
  memset(host, '\x01', n);
  struct awf_log_record r;
  record(&r, 99);
  r.host = host;
  r.host_len = n;
  assert_int_equal(awf_logfile_write(lf, &r), -E2BIG);
  assert_int_equal(awf_logfile_lost(lf), 1);
  /* A long URL is cut by the formatter, so its record does get through. */
  record(&r, 1);
  r.url = host;
  r.url_len = n;
  assert_int_equal(awf_logfile_write(lf, &r), 0);
  write_n(lf, 2, 3);
  assert_int_equal(awf_logfile_lost(lf), 1);
  awf_logfile_close(lf);
  free(host);
  /* 0, then where 99 is missing a log_lost record says so, then 1 and 2 */
  size_t len;
  char *buf = slurp(t->path, &len);
  assert_int_equal(count_records(buf, len), 4);
  const char *gap = strstr(buf, "\"event\":\"log_lost\",\"lost\":1}\n");
  assert_non_null(gap);
  assert_true(gap > strstr(buf, "\"status\":0}\n"));
  assert_true(gap < strstr(buf, "\"status\":1}\n"));
  assert_non_null(strstr(buf, "\"url_truncated\":true"));
  free(buf);
}

/* A device that is always full: the lines wait in memory (the first failure
 * is reported, not each one), and the last try at exit counts them lost. */
static void full_device_keeps_lines_then_counts_them_lost(void **state) {
  (void)state;
  if (access("/dev/full", W_OK) != 0)
    skip();
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open("/dev/full", &lf), 0);
  struct awf_log_record r;
  record(&r, 1);
  assert_int_equal(awf_logfile_write(lf, &r), -ENOSPC);
  assert_int_equal(awf_logfile_write(lf, &r), 0);
  assert_int_equal(awf_logfile_flush(lf), 0);
  assert_int_equal(awf_logfile_lost(lf), 0);
  assert_int_equal(awf_logfile_pending(lf), 2);
  int err = 0;
  assert_int_equal(awf_logfile_finish(lf, &err), 2);
  assert_int_equal(err, -ENOSPC);
  assert_int_equal(awf_logfile_pending(lf), 0);
  assert_int_equal(awf_logfile_finish(lf, NULL), 2); /* once only */
  awf_logfile_close(lf);
}

/* A reader that went away will not come back: the line is lost at once. */
static void closed_pipe_loses_lines_at_once(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  close(p[0]);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  int fd = dup(p[1]);
  close(p[1]);
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open_fd(fd, &lf), 0);
  struct awf_log_record r;
  record(&r, 1);
  assert_int_equal(awf_logfile_write(lf, &r), -EPIPE);
  assert_int_equal(awf_logfile_lost(lf), 1);
  assert_int_equal(awf_logfile_pending(lf), 0);
  assert_int_equal(awf_logfile_write(lf, &r), 0); /* lost too, but that is no news */
  assert_int_equal(awf_logfile_lost(lf), 2);
  int err = 0;
  assert_int_equal(awf_logfile_finish(lf, &err), 2);
  assert_int_equal(err, -EPIPE);
  awf_logfile_close(lf);
  signal(SIGPIPE, old);
}

/* Several handles on one file, as with two processes: O_APPEND keeps every
 * line whole. */
struct writer_arg {
  const char *path;
  int id;
};

#define WRITERS 4
#define PER_WRITER 300

static void *writer_main(void *p) {
  struct writer_arg *a = p;
  awf_logfile *lf;
  if (awf_logfile_open(a->path, &lf) < 0)
    return (void *)1;
  char url[3000];
  memset(url, 'a' + a->id, sizeof(url));
  void *ret = NULL;
  for (int i = 0; i < PER_WRITER; i++) {
    struct awf_log_record r;
    record(&r, a->id);
    r.url = url;
    r.url_len = sizeof(url);
    if (awf_logfile_write(lf, &r) < 0)
      ret = (void *)1;
  }
  awf_logfile_close(lf);
  return ret;
}

static void concurrent_writers_never_interleave(void **state) {
  struct tmpdir *t = *state;
  pthread_t th[WRITERS];
  struct writer_arg args[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    args[i] = (struct writer_arg){.path = t->path, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
  }
  for (int i = 0; i < WRITERS; i++) {
    void *ret;
    assert_int_equal(pthread_join(th[i], &ret), 0);
    assert_null(ret);
  }
  size_t len;
  char *buf = slurp(t->path, &len);
  assert_int_equal(count_records(buf, len), WRITERS * PER_WRITER);
  /* Each line carries one writer's URL only, whole. */
  int seen[WRITERS] = {0};
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    char *u = strstr(line, "\"url\":\"");
    assert_true(u && u < nl);
    u += 7;
    int id = u[0] - 'a';
    assert_in_range(id, 0, WRITERS - 1);
    for (int k = 0; k < 3000; k++)
      assert_int_equal(u[k], 'a' + id);
    assert_int_equal(u[3000], '"');
    seen[id]++;
    line = nl + 1;
  }
  for (int i = 0; i < WRITERS; i++)
    assert_int_equal(seen[i], PER_WRITER);
  free(buf);
}

/* ---- stdout ------------------------------------------------------------- */

/* Points fd 1 at fd for the duration of a test; returns the saved fd 1. */
static int redirect_stdout(int fd) {
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
  return saved;
}

static void restore_stdout(int saved) {
  assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
  close(saved);
}

static void set_nonblock(int fd) {
  assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Read what is in the pipe now (the read end must be non-blocking). */
static size_t drain(int fd, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, out + n, cap - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  return n;
}

/* Fill a non-blocking pipe with whole pages of 'x'; returns the bytes put in. */
static size_t fill(int fd) {
  char page[4096];
  memset(page, 'x', sizeof(page));
  size_t n = 0;
  ssize_t w;
  while ((w = write(fd, page, sizeof(page))) > 0)
    n += (size_t)w;
  assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
  return n;
}

static void stdout_sink_leaves_fd1_open(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  int saved = redirect_stdout(p[1]);
  awf_logfile *lf;
  int rc = awf_logfile_open("-", &lf);
  if (rc == 0) {
    write_n(lf, 0, 2);
    assert_int_equal(awf_logfile_reopen(lf), 0); /* no-op */
    write_n(lf, 2, 3);
    awf_logfile_close(lf);
  }
  int fd1_flags = fcntl(STDOUT_FILENO, F_GETFD);
  restore_stdout(saved);
  assert_int_equal(rc, 0);
  assert_true(fd1_flags >= 0);
  close(p[1]);
  char buf[4096];
  size_t n = drain(p[0], buf, sizeof(buf) - 1);
  buf[n] = '\0';
  close(p[0]);
  assert_int_equal(count_records(buf, n), 3);
  assert_non_null(strstr(buf, "\"status\":2}\n"));
}

struct slow_reader {
  int fd;
  size_t got;
  char *data;
  size_t cap;
};

/* Starts reading only after the writer has met a full pipe. */
static void *slow_reader_main(void *p) {
  struct slow_reader *s = p;
  struct timespec d = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
  nanosleep(&d, NULL);
  ssize_t r;
  while (s->got < s->cap && (r = read(s->fd, s->data + s->got, s->cap - s->got)) > 0)
    s->got += (size_t)r;
  return NULL;
}

static void stdout_full_pipe_waits_for_reader(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  set_nonblock(p[1]);
  size_t filled = fill(p[1]);
  int saved = redirect_stdout(p[1]);
  awf_logfile *lf;
  int rc = awf_logfile_open("-", &lf);
  struct slow_reader s = {.fd = p[0], .cap = 1 << 20};
  s.data = malloc(s.cap);
  pthread_t th;
  pthread_create(&th, NULL, slow_reader_main, &s);
  int wrc[3] = {-1, -1, -1};
  if (rc == 0) {
    for (int i = 0; i < 3; i++) {
      struct awf_log_record r;
      record(&r, i);
      wrc[i] = awf_logfile_write(lf, &r);
    }
    assert_int_equal(awf_logfile_lost(lf), 0);
    awf_logfile_close(lf);
  }
  restore_stdout(saved);
  close(p[1]); /* the reader sees EOF once all is read */
  pthread_join(th, NULL);
  close(p[0]);
  assert_int_equal(rc, 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(wrc[i], 0);
  assert_true(s.got > filled);
  for (size_t i = 0; i < filled; i++)
    assert_int_equal(s.data[i], 'x');
  assert_int_equal(count_records(s.data + filled, s.got - filled), 3);
  free(s.data);
}

static void on_alarm(int sig) { (void)sig; }

/* A blocking pipe, full, and a signal handler without SA_RESTART: write(2)
 * fails with EINTR (or returns short) again and again until the reader comes
 * back; the record must still arrive whole. */
static void stdout_write_survives_eintr(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  set_nonblock(p[1]);
  size_t filled = fill(p[1]);
  assert_int_equal(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) & ~O_NONBLOCK), 0);

  struct sigaction sa = {.sa_handler = on_alarm}, old_sa;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGALRM, &sa, &old_sa), 0);
  sigset_t alrm, old_mask;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  /* The reader thread inherits a blocked SIGALRM, so the writer gets it. */
  pthread_sigmask(SIG_BLOCK, &alrm, &old_mask);
  struct slow_reader s = {.fd = p[0], .cap = 1 << 20};
  s.data = malloc(s.cap);
  pthread_t th;
  pthread_create(&th, NULL, slow_reader_main, &s);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}};
  setitimer(ITIMER_REAL, &it, NULL);

  char url[6000];
  memset(url, 'u', sizeof(url));
  struct awf_log_record r;
  record(&r, 7);
  r.url = url;
  r.url_len = sizeof(url);
  int saved = redirect_stdout(p[1]);
  awf_logfile *lf;
  int rc = awf_logfile_open("-", &lf), wrc = -1;
  char run[17] = "";
  if (rc == 0) {
    wrc = awf_logfile_write(lf, &r);
    snprintf(run, sizeof(run), "%s", awf_logfile_run(lf));
    awf_logfile_close(lf);
  }
  restore_stdout(saved);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  sigaction(SIGALRM, &old_sa, NULL);
  close(p[1]);
  pthread_join(th, NULL);
  close(p[0]);
  assert_int_equal(rc, 0);
  assert_int_equal(wrc, 0);
  struct awf_buf want;
  awf_buf_init(&want, 65536);
  r.run = run; /* the log puts its run id in every record */
  assert_int_equal(awf_log_format(&want, &r), 0);
  assert_int_equal(s.got - filled, want.len);
  assert_memory_equal(s.data + filled, want.data, want.len);
  awf_buf_free(&want);
  free(s.data);
}

/* A 6 KiB line meets a pipe with room for one page, and nobody reads for
 * the stall budget: the line's rest waits in memory and goes first once the
 * reader is back, so the stream holds it whole, then the next record. */
static void stdout_stalled_pipe_line_completed_later(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  set_nonblock(p[0]);
  set_nonblock(p[1]);
  size_t filled = fill(p[1]);
  char *sink = malloc(filled + 65536);
  assert_int_equal(read(p[0], sink, 4096), 4096); /* room for one page only */

  char url[6000];
  memset(url, 'u', sizeof(url));
  struct awf_log_record big;
  record(&big, 1);
  big.url = url;
  big.url_len = sizeof(url);
  struct awf_log_record small;
  record(&small, 2);

  const size_t cap = filled + 65536;
  size_t n = 0;
  int saved = redirect_stdout(p[1]);
  awf_logfile *lf;
  int rc = awf_logfile_open("-", &lf);
  int rc_big = 0, rc_small = -1;
  unsigned long lost = 1, waiting = 0;
  if (rc == 0) {
    rc_big = awf_logfile_write(lf, &big);
    waiting = awf_logfile_pending(lf);
    n = drain(p[0], sink, cap - 1); /* the reader comes back */
    rc_small = awf_logfile_write(lf, &small);
    lost = awf_logfile_lost(lf);
    awf_logfile_close(lf);
  }
  restore_stdout(saved);
  close(p[1]);
  n += drain(p[0], sink + n, cap - 1 - n);
  close(p[0]);
  assert_int_equal(rc, 0);
  assert_int_equal(rc_big, -EAGAIN);
  assert_int_equal(waiting, 1);
  assert_int_equal(rc_small, 0);
  assert_int_equal(lost, 0);
  sink[n] = '\0';
  /* The stream: the filler, the long line whole, the next record whole. */
  size_t x = filled - 4096;
  assert_true(n > x);
  for (size_t i = 0; i < x; i++)
    assert_int_equal(sink[i], 'x');
  assert_int_equal(count_records(sink + x, n - x), 2);
  char *first = strstr(sink + x, "\"status\":1}\n");
  assert_non_null(first);
  assert_non_null(strstr(first, "\"status\":2}\n"));
  free(sink);
}

/* ---- a full filesystem ---------------------------------------------------- */

/* A tmpfs of `size` on t->dir, in a mount namespace of this process's own
 * (entered once): the log's filesystem, which a test fills. False when that
 * cannot be done (not root). */
static bool small_tmpfs(struct tmpdir *t, const char *size) {
  static bool own_ns;
  char opts[32];
  if (!own_ns) {
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
      return false;
    own_ns = true;
  }
  snprintf(opts, sizeof(opts), "size=%s", size);
  return mount("tmpfs", t->dir, "tmpfs", 0, opts) == 0;
}

static int teardown_tmpfs(void **state) {
  struct tmpdir *t = *state;
  umount2(t->dir, MNT_DETACH);
  return teardown_dir(state);
}

/* Fill the filesystem of dir to the last byte; the fill file's path. */
static void fill_fs(const char *dir, char *path, size_t len) {
  snprintf(path, len, "%s/fill", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  static char chunk[65536];
  while (write(fd, chunk, sizeof(chunk)) > 0)
    ;
  while (write(fd, chunk, 1) > 0)
    ;
  assert_int_equal(errno, ENOSPC);
  close(fd);
}

/* The file holds whole records only (each line one, ending in "}\n"). */
static long whole_records(const char *path) {
  size_t len;
  char *buf = slurp(path, &len);
  long n = count_records(buf, len);
  free(buf);
  assert_true(n >= 0);
  return n;
}

/* The attack: the command fills the log's filesystem. The line that meets
 * the end of the room is taken back (the file ends in a whole line at every
 * moment), the lines wait in memory, and once there is room again every one
 * is there, in order. */
static void disk_full_keeps_lines_in_order_and_never_cuts_one(void **state) {
  struct tmpdir *t = *state;
  if (!small_tmpfs(t, "64k"))
    skip();
  /* The log's last page is partly used, so a line can be cut at its end. */
  int fd = open(t->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  assert_true(fd >= 0);
  close(fd);
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  write_n(lf, 0, 1);
  char fill[160];
  fill_fs(t->dir, fill, sizeof(fill)); /* the 4 MiB reservation did not fit */
  int first_error = 0;
  for (int i = 1; i < 60; i++) {
    struct awf_log_record r;
    record(&r, i);
    int rc = awf_logfile_write(lf, &r);
    if (rc < 0) {
      assert_int_equal(first_error, 0); /* reported once, not per record */
      first_error = rc;
    }
    assert_true(whole_records(t->path) >= 1);
  }
  assert_int_equal(first_error, -ENOSPC);
  long written = whole_records(t->path);
  assert_true(written > 1 && written < 60);
  assert_int_equal(awf_logfile_pending(lf), 60 - written);
  assert_int_equal(awf_logfile_lost(lf), 0);
  assert_int_equal(unlink(fill), 0); /* room again */
  write_n(lf, 60, 61);
  assert_int_equal(awf_logfile_pending(lf), 0);
  int err = 1;
  assert_int_equal(awf_logfile_finish(lf, &err), 0);
  assert_int_equal(err, -ENOSPC); /* the last error met, for the record */
  awf_logfile_close(lf);
  assert_lines(t->path, 0, 61);
}

/* Past the backlog, lines are counted lost; where they are missing, a
 * log_lost record says how many once the log takes lines again. */
static void backlog_full_counts_lost_lines_and_log_lost_marks_the_gap(void **state) {
  struct tmpdir *t = *state;
  if (!small_tmpfs(t, "12m"))
    skip();
  char fill[160];
  fill_fs(t->dir, fill, sizeof(fill));
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  awf_logfile_set_batching(lf, true);
  const int total = 60000; /* about 11 MiB of lines */
  int news = 0;
  for (int i = 0; i < total; i++) {
    struct awf_log_record r;
    record(&r, i);
    news += awf_logfile_write(lf, &r) < 0;
    if (i % 100 == 99)
      news += awf_logfile_flush(lf) < 0;
  }
  assert_int_equal(news, 2); /* failing, then losing */
  unsigned long lost = awf_logfile_lost(lf), kept = awf_logfile_pending(lf);
  assert_true(lost > 0);
  assert_int_equal(lost + kept, total);
  assert_true(kept * 180 < AWF_LOGFILE_BACKLOG_MAX);
  assert_int_equal(unlink(fill), 0);
  write_n(lf, total, total + 1);
  assert_int_equal(awf_logfile_flush(lf), 0);
  assert_int_equal(awf_logfile_finish(lf, NULL), lost);
  awf_logfile_close(lf);

  size_t len;
  char *buf = slurp(t->path, &len);
  assert_int_equal(count_records(buf, len), (long)kept + 2);
  char want[64];
  snprintf(want, sizeof(want), "\"event\":\"log_lost\",\"lost\":%lu}\n", lost);
  char *gap = strstr(buf, want);
  assert_non_null(gap);
  snprintf(want, sizeof(want), "\"status\":%lu}\n", kept - 1);
  char *before = strstr(buf, want);
  snprintf(want, sizeof(want), "\"status\":%d}\n", total);
  char *after = strstr(buf, want);
  assert_true(before && before < gap && after && gap < after);
  free(buf);
}

/* Room is reserved past the log's end when it is opened: a command that
 * fills the filesystem afterwards does not stop the next lines. */
static void reserved_room_outlasts_a_full_filesystem(void **state) {
  struct tmpdir *t = *state;
  if (!small_tmpfs(t, "8m"))
    skip();
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  struct stat st;
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_true((long long)st.st_blocks * 512 >= AWF_LOGFILE_RESERVE);
  char fill[160];
  fill_fs(t->dir, fill, sizeof(fill));
  write_n(lf, 0, 5000); /* about 900 KiB */
  assert_int_equal(awf_logfile_pending(lf), 0);
  assert_int_equal(awf_logfile_finish(lf, NULL), 0);
  awf_logfile_close(lf);
  assert_lines(t->path, 0, 5000);
}

/* ---- writers (awf-proxy --workers) ------------------------------------ */

/* A writer batches without touching the file; a flush hands the batch over
 * whole; pending counts what it holds; closing it hands over the rest. */
static void writer_batches_until_flush(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf, *w;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  assert_int_equal(awf_logfile_writer_new(lf, &w), 0);
  assert_string_equal(awf_logfile_run(w), awf_logfile_run(lf));
  awf_logfile_set_batching(w, true);
  write_n(w, 0, 10);
  struct stat st;
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(awf_logfile_pending(w), 10);
  assert_int_equal(awf_logfile_flush(w), 0);
  assert_int_equal(awf_logfile_pending(w), 0);
  assert_lines(t->path, 0, 10);
  write_n(w, 10, 15);
  awf_logfile_close(w); /* hands its batch over */
  assert_int_equal(awf_logfile_pending(lf), 0);
  assert_lines(t->path, 0, 15);
  /* Not batching: each line at once. */
  assert_int_equal(awf_logfile_writer_new(lf, &w), 0);
  write_n(w, 15, 16);
  assert_lines(t->path, 0, 16);
  awf_logfile_close(w);
  awf_logfile_close(lf);
}

/* A writer's lines reach the log's backlog while it fails, and are counted
 * lost there at the end: the log's accounting, whichever writer wrote. */
static void writer_lines_wait_and_are_lost_in_the_log(void **state) {
  (void)state;
  if (access("/dev/full", W_OK) != 0)
    skip();
  awf_logfile *lf, *w;
  assert_int_equal(awf_logfile_open("/dev/full", &lf), 0);
  assert_int_equal(awf_logfile_writer_new(lf, &w), 0);
  awf_logfile_set_batching(w, true);
  write_n(w, 0, 3);
  assert_int_equal(awf_logfile_flush(w), -ENOSPC); /* news: the log starts failing */
  write_n(w, 3, 5);
  assert_int_equal(awf_logfile_flush(w), 0); /* still failing: no news */
  assert_int_equal(awf_logfile_pending(lf), 5);
  awf_logfile_close(w);
  assert_int_equal(awf_logfile_finish(lf, NULL), 5);
  awf_logfile_close(lf);
}

struct thread_writer {
  awf_logfile *w;
  int id;
};

#define THREADS 4
#define PER_THREAD 5000

static void *batching_writer_main(void *p) {
  struct thread_writer *a = p;
  awf_logfile_set_batching(a->w, true);
  for (int i = 0; i < PER_THREAD; i++) {
    struct awf_log_record r;
    record(&r, a->id * PER_THREAD + i);
    if (awf_logfile_write(a->w, &r) < 0)
      return (void *)1;
    if (i % 37 == 0 && awf_logfile_flush(a->w) < 0) /* a loop iteration's end */
      return (void *)1;
  }
  awf_logfile_set_batching(a->w, false);
  return NULL;
}

/* Writers in four threads, one log: every line whole, none lost or doubled,
 * each writer's lines in its order, every one counted. */
static void writers_in_threads_keep_lines_whole_and_in_order(void **state) {
  struct tmpdir *t = *state;
  awf_logfile *lf;
  assert_int_equal(awf_logfile_open(t->path, &lf), 0);
  struct thread_writer a[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    a[i].id = i;
    assert_int_equal(awf_logfile_writer_new(lf, &a[i].w), 0);
    assert_int_equal(pthread_create(&th[i], NULL, batching_writer_main, &a[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_null(ret);
    awf_logfile_close(a[i].w);
  }
  assert_int_equal(awf_logfile_lost(lf), 0);
  /* Every writer's records counted, none lost to a race (the metrics'
   * awf_log_lines_total), asked of the log or of a writer. */
  assert_int_equal(awf_logfile_taken(lf), THREADS * PER_THREAD);
  awf_logfile *w;
  assert_int_equal(awf_logfile_writer_new(lf, &w), 0);
  assert_int_equal(awf_logfile_taken(w), THREADS * PER_THREAD);
  awf_logfile_close(w);
  awf_logfile_close(lf);
  size_t len;
  char *buf = slurp(t->path, &len);
  assert_int_equal(count_records(buf, len), THREADS * PER_THREAD);
  int next[THREADS] = {0};
  for (const char *p = buf; (p = strstr(p, "\"status\":")); p++) {
    int n = atoi(p + 9), id = n / PER_THREAD;
    assert_true(id >= 0 && id < THREADS);
    assert_int_equal(n % PER_THREAD, next[id]); /* in its writer's order, once */
    next[id]++;
  }
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(next[i], PER_THREAD);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(many_records_many_lines, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(creates_0640_and_appends, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(descriptor_is_cloexec, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(reopen_after_rename, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(reopen_without_rotation_keeps_appending, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(reopen_failure_keeps_old_descriptor, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(open_errors, setup_dir, teardown_dir),
      cmocka_unit_test(null_path_discards),
      cmocka_unit_test_setup_teardown(oversized_record_lost_whole, setup_dir, teardown_dir),
      cmocka_unit_test(full_device_keeps_lines_then_counts_them_lost),
      cmocka_unit_test(closed_pipe_loses_lines_at_once),
      cmocka_unit_test_setup_teardown(concurrent_writers_never_interleave, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(writer_batches_until_flush, setup_dir, teardown_dir),
      cmocka_unit_test(writer_lines_wait_and_are_lost_in_the_log),
      cmocka_unit_test_setup_teardown(writers_in_threads_keep_lines_whole_and_in_order,
                                      setup_dir, teardown_dir),
      cmocka_unit_test(stdout_sink_leaves_fd1_open),
      cmocka_unit_test(stdout_full_pipe_waits_for_reader),
      cmocka_unit_test(stdout_write_survives_eintr),
      cmocka_unit_test(stdout_stalled_pipe_line_completed_later),
      cmocka_unit_test_setup_teardown(disk_full_keeps_lines_in_order_and_never_cuts_one,
                                      setup_dir, teardown_tmpfs),
      cmocka_unit_test_setup_teardown(backlog_full_counts_lost_lines_and_log_lost_marks_the_gap,
                                      setup_dir, teardown_tmpfs),
      cmocka_unit_test_setup_teardown(reserved_room_outlasts_a_full_filesystem, setup_dir,
                                      teardown_tmpfs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
