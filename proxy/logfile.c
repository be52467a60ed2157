/* logfile.c: the JSONL access-log sink. A record is formatted whole into a
 * reused buffer, then handed to write(2) once; with O_APPEND the kernel
 * places it at the end of the file in one piece. In batching mode whole
 * lines gather in a capped buffer and leave in one write(2) per flush (the
 * proxy flushes once per event-loop iteration) instead of one per request. */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)
/* A batch is flushed before it would pass this. */
#define BATCH_MAX_BYTES (64 * 1024)
/* How long one record may wait for a full non-blocking stdout pipe. The
 * caller is an event loop, so this stays short: past it the line is lost. */
#define STALL_BUDGET_MS 200

enum sink_kind { SINK_NONE, SINK_FILE, SINK_STDOUT };

struct awf_logfile {
  enum sink_kind kind;
  int fd;
  char *path;           /* SINK_FILE only, for reopen */
  struct awf_buf line;  /* reused for every record */
  struct awf_buf batch; /* batching: whole lines not written yet */
  bool batching;
  unsigned long lost;
  /* A write gave up part way, so the file does not end in '\n'; the next
   * record starts with one so only the cut line is damaged. */
  bool mid_line;
  char run[17];         /* awf_logfile_run() */
  awf_logfile_tap_fn tap;
  void *tap_ud;
};

/* 64 random bits, as hex. getrandom() without flags waits for the pool
 * once at boot only; a failure (seccomp, old kernel) falls back to time and
 * pid, which still tells runs apart. */
static void make_run_id(char out[17]) {
  uint64_t v = 0;
  if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    v ^= (uint64_t)getpid() << 40;
  }
  snprintf(out, 17, "%016llx", (unsigned long long)v);
}

static int open_path(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  return fd < 0 ? -errno : fd;
}

static awf_logfile *logfile_new(void) {
  awf_logfile *lf = calloc(1, sizeof(*lf));
  if (!lf)
    return NULL;
  lf->fd = -1;
  make_run_id(lf->run);
  awf_buf_init(&lf->line, LINE_MAX_BYTES);
  awf_buf_init(&lf->batch, BATCH_MAX_BYTES);
  return lf;
}

int awf_logfile_open(const char *path, awf_logfile **out) {
  *out = NULL;
  awf_logfile *lf = logfile_new();
  if (!lf)
    return -ENOMEM;
  if (!path) {
    lf->kind = SINK_NONE;
  } else if (strcmp(path, "-") == 0) {
    /* A private descriptor for stdout: closing the log never closes fd 1. */
    lf->kind = SINK_STDOUT;
    lf->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (lf->fd < 0) {
      int err = -errno;
      free(lf);
      return err;
    }
  } else {
    lf->kind = SINK_FILE;
    lf->path = strdup(path);
    if (!lf->path) {
      free(lf);
      return -ENOMEM;
    }
    lf->fd = open_path(path);
    if (lf->fd < 0) {
      int err = lf->fd;
      free(lf->path);
      free(lf);
      return err;
    }
  }
  *out = lf;
  return 0;
}

int awf_logfile_open_fd(int fd, awf_logfile **out) {
  *out = NULL;
  awf_logfile *lf = logfile_new();
  if (!lf)
    return -ENOMEM;
  lf->kind = SINK_FILE;
  lf->fd = fd;
  *out = lf;
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait, within the budget, for a non-blocking descriptor to take more. */
static int wait_writable(int fd, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return -EAGAIN;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int n = poll(&pfd, 1, (int)left);
    if (n > 0)
      return 0; /* POLLERR/POLLHUP too: the next write reports the error */
    if (n == 0)
      return -EAGAIN;
    if (errno != EINTR)
      return -errno;
  }
}

/* Write p[0..n) completely. *done gets the bytes that did go out. */
static int write_all(int fd, const char *p, size_t n, size_t *done) {
  int64_t deadline = -1;
  *done = 0;
  while (*done < n) {
    ssize_t w = write(fd, p + *done, n - *done);
    if (w > 0) {
      *done += (size_t)w;
      continue;
    }
    if (w == 0)
      return -EIO;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    if (deadline < 0)
      deadline = now_ms() + STALL_BUDGET_MS;
    int rc = wait_writable(fd, deadline);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static unsigned long count_lines(const char *p, size_t n) {
  unsigned long k = 0;
  for (size_t i = 0; i < n; i++)
    k += p[i] == '\n';
  return k;
}

/* Write whole lines p[0..n) in one go; count the lines that did not make it.
 * A line cut by an earlier failed write is ended first (rare: a stalled
 * stdout pipe), so only that line is damaged. */
static int write_lines(awf_logfile *lf, const char *p, size_t n) {
  size_t done;
  if (lf->mid_line) {
    int rc = write_all(lf->fd, "\n", 1, &done);
    if (rc < 0) {
      lf->lost += count_lines(p, n);
      return rc;
    }
    lf->mid_line = false;
  }
  int rc = write_all(lf->fd, p, n, &done);
  if (done > 0)
    lf->mid_line = p[done - 1] != '\n';
  if (rc < 0)
    lf->lost += count_lines(p + done, n - done);
  return rc;
}

int awf_logfile_flush(awf_logfile *lf) {
  if (lf->batch.len == 0)
    return 0;
  int rc = write_lines(lf, lf->batch.data, lf->batch.len);
  awf_buf_reset(&lf->batch);
  return rc;
}

void awf_logfile_set_batching(awf_logfile *lf, bool on) {
  if (!lf)
    return;
  if (!on)
    (void)awf_logfile_flush(lf);
  lf->batching = on && lf->kind != SINK_NONE;
  if (!on)
    awf_buf_free(&lf->batch);
}

const char *awf_logfile_run(const awf_logfile *lf) {
  return lf->run;
}

void awf_logfile_set_tap(awf_logfile *lf, awf_logfile_tap_fn fn, void *ud) {
  lf->tap = fn;
  lf->tap_ud = ud;
}

int awf_logfile_write(awf_logfile *lf, const struct awf_log_record *r) {
  struct awf_log_record rec = *r;
  rec.run = lf->run;
  if (lf->tap)
    lf->tap(lf->tap_ud, &rec);
  if (lf->kind == SINK_NONE)
    return 0;
  awf_buf_reset(&lf->line);
  int rc = awf_log_format(&lf->line, &rec);
  if (rc < 0) {
    lf->lost++;
    return rc;
  }
  if (!lf->batching)
    return write_lines(lf, lf->line.data, lf->line.len);
  rc = 0;
  if (lf->line.len > BATCH_MAX_BYTES - lf->batch.len)
    rc = awf_logfile_flush(lf);
  if (lf->line.len > BATCH_MAX_BYTES - lf->batch.len) /* larger than a batch */
    return write_lines(lf, lf->line.data, lf->line.len);
  if (awf_buf_append(&lf->batch, lf->line.data, lf->line.len) < 0) {
    lf->lost++;
    return -ENOMEM;
  }
  return rc;
}

int awf_logfile_write_run(awf_logfile *lf, const char *version, const char *const *argv) {
  struct awf_log_record r;
  awf_log_record_init(&r);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  r.ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  r.event = "run";
  r.version = version;
  r.argv = argv;
  while (argv && argv[r.argc])
    r.argc++;
  int rc = awf_logfile_write(lf, &r);
  if (rc == -E2BIG && argv) {
    lf->lost--; /* not lost: written again without the command line */
    r.argv = NULL;
    awf_logfile_tap_fn tap = lf->tap; /* it has seen this record */
    lf->tap = NULL;
    rc = awf_logfile_write(lf, &r);
    lf->tap = tap;
  }
  return rc;
}

int awf_logfile_reopen(awf_logfile *lf) {
  if (lf->kind != SINK_FILE || !lf->path)
    return 0;
  (void)awf_logfile_flush(lf); /* the lines so far belong to the old file */
  int fd = open_path(lf->path);
  if (fd < 0)
    return fd;
  /* Reopening without a rotation gives the same file back, still ending in
   * the cut line; a rotated-in file starts clean. */
  struct stat a, b;
  if (lf->mid_line && fstat(fd, &a) == 0 && fstat(lf->fd, &b) == 0 &&
      (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
    lf->mid_line = false;
  close(lf->fd);
  lf->fd = fd;
  return 0;
}

unsigned long awf_logfile_lost(const awf_logfile *lf) {
  return lf->lost;
}

void awf_logfile_close(awf_logfile *lf) {
  if (!lf)
    return;
  if (lf->fd >= 0) {
    (void)awf_logfile_flush(lf);
    close(lf->fd);
  }
  awf_buf_free(&lf->line);
  awf_buf_free(&lf->batch);
  free(lf->path);
  free(lf);
}
