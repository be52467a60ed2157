/* logfile.c: the JSONL access-log sink. A record is formatted whole into a
 * reused buffer and queued; the queue leaves in write(2)s of whole lines
 * (at most 64 KiB each) to a file opened O_APPEND, so the kernel places each
 * at the end of the file in one piece. In batching mode the queue is written
 * once per flush (the proxy flushes once per event-loop iteration) instead of
 * once per request.
 *
 * A write that fails for want of room (a full disk, a quota, EIO, a stdout
 * pipe nobody reads) does not lose the lines: they stay queued, in order, up
 * to BACKLOG_MAX_BYTES, and every later flush tries again. A write cut short
 * is never left as half a line: in a regular file the cut line is taken back
 * (ftruncate to where it began, possible since the descriptor is ours and
 * nobody appended behind it) and queued whole; elsewhere (a pipe) its rest
 * stays first in the queue and completes it. Lines that find the queue full
 * are lost and counted, and the first line that gets in after them is
 * preceded by a log_lost record saying how many are missing there. */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)
/* The most written at once; a batch is flushed once it holds this much. */
#define CHUNK_MAX_BYTES (64 * 1024)
/* Lines kept in memory while the log cannot be written. */
#define BACKLOG_MAX_BYTES AWF_LOGFILE_BACKLOG_MAX
/* Room reserved past the end of a regular file (fallocate, size unchanged),
 * renewed when half of it is used: a command filling the log's filesystem
 * does not stop the next few MiB of lines. */
#define RESERVE_BYTES AWF_LOGFILE_RESERVE
/* How long a write may wait for a full non-blocking stdout pipe, once; while
 * lines wait in the queue, later flushes only try. The caller is an event
 * loop, so this stays short. */
#define STALL_BUDGET_MS 200
/* A log_lost record is shorter. */
#define LOST_LINE_MAX 256

enum sink_kind { SINK_NONE, SINK_FILE, SINK_STDOUT };

struct awf_logfile {
  enum sink_kind kind;
  int fd;
  char *path;           /* SINK_FILE only, for reopen */
  struct awf_buf line;  /* reused for every record */
  struct awf_buf queue; /* whole lines not written yet, from `head` on */
  size_t head;          /* bytes of queue already written */
  /* The output ends inside the queue's first line (a pipe that stalled in
   * it, or a file whose cut could not be taken back): its rest goes first. */
  bool partial;
  bool batching;
  bool failing;   /* the last write failed: lines wait in the queue */
  bool loss_told; /* a loss was reported (returned) in this outage */
  bool finished;
  bool regular; /* a regular file: a cut write can be taken back */
  bool can_reserve;
  off_t reserved_end; /* space is reserved up to here */
  size_t since_check; /* bytes written since reserved_end was checked */
  int error;          /* the last write error, -errno; 0 for none */
  unsigned long lost; /* lines that will never be written */
  /* records handed to awf_logfile_write with a sink, by this log and its
   * writers (atomic: writers count without the lock) */
  atomic_ulong taken;
  unsigned long untold; /* of them, not yet told by a log_lost record */
  char run[17];         /* awf_logfile_run() */
  awf_logfile_tap_fn tap;
  void *tap_ud;
  /* The log itself: a recursive mutex over all of the above, taken by every
   * call, so writers in other threads (awf_logfile_writer_new) and this
   * one's own calls never meet half way; `waiting` mirrors "lines wait in
   * the queue" for a lock-free look. */
  pthread_mutex_t mu;
  atomic_bool waiting;
  /* A writer (awf_logfile_writer_new): the log it writes to; its `line` and
   * `queue` are its own (the queue holds its batch) and nothing else of it
   * is used. NULL for the log itself. */
  awf_logfile *log;
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

/* Reserve RESERVE_BYTES past the file's end unless half of the last
 * reservation is still ahead. Best effort: a full disk or a filesystem
 * without fallocate leaves the log as it was. */
static void reserve(awf_logfile *lf) {
  struct stat st;
  lf->since_check = 0;
  if (!lf->can_reserve || fstat(lf->fd, &st) < 0)
    return;
  if (st.st_size + RESERVE_BYTES / 2 < lf->reserved_end)
    return;
  if (fallocate(lf->fd, FALLOC_FL_KEEP_SIZE, st.st_size, RESERVE_BYTES) == 0)
    lf->reserved_end = st.st_size + RESERVE_BYTES;
  else if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EBADF || errno == ENODEV)
    lf->can_reserve = false; /* never will */
}

/* A new descriptor for the log: what it is, and room reserved in a file. */
static void adopt_fd(awf_logfile *lf, int fd) {
  struct stat st;
  lf->fd = fd;
  lf->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  lf->can_reserve = lf->regular && RESERVE_BYTES > 0;
  lf->reserved_end = 0;
  reserve(lf);
}

static awf_logfile *logfile_new(void) {
  awf_logfile *lf = calloc(1, sizeof(*lf));
  if (!lf)
    return NULL;
  lf->fd = -1;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&lf->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  make_run_id(lf->run);
  awf_buf_init(&lf->line, LINE_MAX_BYTES);
  awf_buf_init(&lf->queue, BACKLOG_MAX_BYTES);
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
    int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      int err = -errno;
      free(lf);
      return err;
    }
    adopt_fd(lf, fd);
  } else {
    lf->kind = SINK_FILE;
    lf->path = strdup(path);
    if (!lf->path) {
      free(lf);
      return -ENOMEM;
    }
    int fd = open_path(path);
    if (fd < 0) {
      free(lf->path);
      free(lf);
      return fd;
    }
    adopt_fd(lf, fd);
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
  adopt_fd(lf, fd);
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

/* Write p[0..n) completely. *done gets the bytes that did go out. A full
 * non-blocking descriptor is waited for (STALL_BUDGET_MS) only if may_wait. */
static int write_all(int fd, const char *p, size_t n, size_t *done, bool may_wait) {
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
    if (!may_wait)
      return -EAGAIN;
    if (deadline < 0)
      deadline = now_ms() + STALL_BUDGET_MS;
    int rc = wait_writable(fd, deadline);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Records among the queued lines p[0..n), and what the log_lost records
 * there tell of (they are no loss of their own: dropped, what they told of
 * is untold again). */
static unsigned long count_records(const char *p, size_t n, unsigned long *told) {
  static const char mark[] = "\",\"event\":\"log_lost\",\"lost\":";
  unsigned long k = 0;
  if (n == 0)
    return 0;
  for (const char *end = p + n, *nl; p < end; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      break;
    const char *m = memmem(p, (size_t)(nl - p), mark, sizeof(mark) - 1);
    if (!m)
      k++;
    else if (told)
      *told += strtoul(m + sizeof(mark) - 1, NULL, 10);
  }
  return k;
}

/* Errors that may pass: the lines wait for a later flush. Others (EPIPE: no
 * reader will come back; EBADF, EFBIG, ...) lose what is queued. */
static bool transient(int err) {
  return err == -ENOSPC || err == -EDQUOT || err == -EIO || err == -EAGAIN ||
         err == -EWOULDBLOCK || err == -ENOBUFS || err == -ENOMEM;
}

/* The lines waiting: *n bytes from the returned pointer (NULL for none). */
static const char *queued(const awf_logfile *lf, size_t *n) {
  *n = lf->queue.len - lf->head;
  return *n ? lf->queue.data + lf->head : NULL;
}

static void lose(awf_logfile *lf, unsigned long n) {
  lf->lost += n;
  lf->untold += n;
}

static void queue_clear(awf_logfile *lf) {
  lf->head = 0;
  lf->partial = false;
  awf_buf_reset(&lf->queue);
  if (lf->queue.cap > 2 * CHUNK_MAX_BYTES) /* an outage's backlog: give it back */
    awf_buf_free(&lf->queue);
}

/* The queued lines will never be written: count them lost. */
static void drop_queue(awf_logfile *lf) {
  unsigned long told = 0;
  size_t n;
  const char *p = queued(lf, &n);
  lose(lf, count_records(p, n, &told));
  lf->untold += told;
  queue_clear(lf);
}

/* The last `cut` bytes written are the start of a line that did not get its
 * end: take them back, so the file ends in a whole line again. Only when
 * nobody appended behind them (the size is where this descriptor left it). */
static bool take_back(awf_logfile *lf, size_t cut) {
  struct stat st;
  if (!lf->regular)
    return false;
  off_t pos = lseek(lf->fd, 0, SEEK_CUR);
  if (pos < (off_t)cut || fstat(lf->fd, &st) < 0 || st.st_size != pos)
    return false;
  return ftruncate(lf->fd, pos - (off_t)cut) == 0;
}

/* The next chunk of the queue: whole lines (or the rest of a partial one),
 * at most CHUNK_MAX_BYTES unless a single line is longer. */
static size_t next_chunk(const awf_logfile *lf) {
  const char *p = lf->queue.data + lf->head;
  size_t n = lf->queue.len - lf->head;
  if (n <= CHUNK_MAX_BYTES)
    return n;
  for (size_t i = CHUNK_MAX_BYTES; i > 0; i--)
    if (p[i - 1] == '\n')
      return i;
  const char *nl = memchr(p, '\n', n);
  return nl ? (size_t)(nl - p) + 1 : n;
}

/* Write the queue. Returns 0 when it is empty, else the error (the rest
 * stays queued if transient(), and is lost otherwise). */
static int drain(awf_logfile *lf, bool may_wait) {
  while (lf->head < lf->queue.len) {
    const char *p = lf->queue.data + lf->head;
    size_t n = next_chunk(lf), done;
    int rc = write_all(lf->fd, p, n, &done, may_wait && !lf->failing);
    lf->head += done;
    lf->since_check += done;
    if (rc == 0) {
      lf->partial = false;
      continue;
    }
    if (done > 0 && p[done - 1] != '\n') {
      /* cut inside a line: of it, `cut` bytes are out; the line began in this
       * write unless it was the rest of an earlier cut */
      const char *nl = memrchr(p, '\n', done);
      size_t cut = nl ? done - (size_t)(nl + 1 - p) : done;
      if ((nl || !lf->partial) && take_back(lf, cut)) {
        lf->head -= cut;
        lf->partial = false;
      } else {
        lf->partial = true;
      }
    } else if (done > 0) {
      lf->partial = false;
    }
    lf->error = rc;
    if (!transient(rc))
      drop_queue(lf);
    return rc;
  }
  queue_clear(lf);
  if (lf->since_check >= RESERVE_BYTES / 4)
    reserve(lf);
  return 0;
}

/* Put whole lines p[0..n) at the end of the queue, behind a log_lost record
 * when lines were lost before them. Full: the lines are lost (counted). */
static int enqueue(awf_logfile *lf, const char *p, size_t n) {
  struct awf_buf told;
  awf_buf_init(&told, LOST_LINE_MAX);
  if (lf->untold > 0) {
    struct awf_log_record r;
    struct timespec ts;
    awf_log_record_init(&r);
    clock_gettime(CLOCK_REALTIME, &ts);
    r.ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    r.run = lf->run;
    r.event = "log_lost";
    r.lost = (int64_t)lf->untold;
    (void)awf_log_format(&told, &r); /* on failure, told stays empty */
  }
  if (lf->head > 0 && told.len + n > lf->queue.max - lf->queue.len) {
    memmove(lf->queue.data, lf->queue.data + lf->head, lf->queue.len - lf->head);
    lf->queue.len -= lf->head;
    lf->head = 0;
  }
  size_t before = lf->queue.len;
  int rc = awf_buf_append(&lf->queue, told.data, told.len);
  if (rc == 0)
    rc = awf_buf_append(&lf->queue, p, n);
  if (rc < 0) {
    lf->queue.len = before;
    lose(lf, count_records(p, n, NULL));
  } else if (told.len) {
    lf->untold = 0;
  }
  awf_buf_free(&told);
  return rc == -E2BIG ? -ENOSPC : rc; /* E2BIG: the backlog is full */
}

/* What a write or flush returns (see logfile.h): an error only when it is
 * news, the log starting to fail or to lose lines, so a long outage is one
 * message, not one per record. tried: the queue was written (wrc its
 * outcome); qrc: queueing the new lines. */
static int tell(awf_logfile *lf, bool tried, int wrc, int qrc, bool was_failing,
                unsigned long lost_before) {
  if (tried)
    lf->failing = wrc < 0;
  bool new_loss = lf->lost > lost_before && !lf->loss_told;
  int rc = 0;
  if (new_loss) {
    lf->loss_told = true;
    rc = wrc < 0 ? wrc : lf->error < 0 ? lf->error : qrc < 0 ? qrc : -EIO;
  } else if (tried && wrc < 0 && !was_failing) {
    rc = wrc;
  }
  if (!lf->failing)
    lf->loss_told = false; /* caught up: the next outage is news again */
  return rc;
}

/* Every public call on the log itself holds its mutex (recursive: a call
 * may make another). A writer's own calls take it only to hand lines over. */
static void lock(awf_logfile *lf) { pthread_mutex_lock(&lf->mu); }

static void unlock(awf_logfile *lf) {
  atomic_store_explicit(&lf->waiting, lf->queue.len > lf->head || lf->untold > 0,
                        memory_order_relaxed);
  pthread_mutex_unlock(&lf->mu);
}

static int flush_locked(awf_logfile *lf) {
  if (lf->kind == SINK_NONE || (lf->queue.len == lf->head && lf->untold == 0))
    return 0;
  bool was_failing = lf->failing;
  unsigned long lost_before = lf->lost;
  int qrc = lf->untold > 0 && lf->queue.len == lf->head ? enqueue(lf, "", 0) : 0;
  return tell(lf, true, drain(lf, true), qrc, was_failing, lost_before);
}

/* Whole lines p[0..n) into the log's queue, written now unless batching
 * (then once they make a chunk); drain: written now in any case (a
 * writer's batch). Returns as awf_logfile_write. */
static int take_lines(awf_logfile *lf, const char *p, size_t n, bool now) {
  bool was_failing = lf->failing;
  unsigned long lost_before = lf->lost;
  /* A full backlog gets one more try before the lines would be lost. */
  bool tried = lf->queue.len - lf->head + n + LOST_LINE_MAX > BACKLOG_MAX_BYTES;
  int wrc = tried ? drain(lf, true) : 0;
  int qrc = enqueue(lf, p, n);
  /* Batching: the queue leaves at the next flush, or now if it is a chunk;
   * while the log fails, only flushes try again. */
  if (wrc == 0 &&
      (now || !lf->batching || (!lf->failing && lf->queue.len - lf->head >= CHUNK_MAX_BYTES))) {
    wrc = drain(lf, true);
    tried = true;
  }
  return tell(lf, tried, wrc, qrc, was_failing, lost_before);
}

/* A writer's batch goes to its log, and is written. */
static int hand_over(awf_logfile *w) {
  awf_logfile *lf = w->log;
  lock(lf);
  int rc = w->queue.len ? take_lines(lf, w->queue.data, w->queue.len, true) : flush_locked(lf);
  unlock(lf);
  awf_buf_reset(&w->queue);
  return rc;
}

int awf_logfile_flush(awf_logfile *lf) {
  if (lf->log) {
    if (lf->queue.len == 0 && !atomic_load_explicit(&lf->log->waiting, memory_order_relaxed))
      return 0; /* nothing batched, nothing waiting: no lock taken */
    return hand_over(lf);
  }
  lock(lf);
  int rc = flush_locked(lf);
  unlock(lf);
  return rc;
}

void awf_logfile_set_batching(awf_logfile *lf, bool on) {
  if (!lf)
    return;
  if (!on)
    (void)awf_logfile_flush(lf);
  if (lf->log) {
    lf->batching = on && lf->log->kind != SINK_NONE;
    return;
  }
  lock(lf);
  lf->batching = on && lf->kind != SINK_NONE;
  unlock(lf);
}

const char *awf_logfile_run(const awf_logfile *lf) { return lf->log ? lf->log->run : lf->run; }

void awf_logfile_set_tap(awf_logfile *lf, awf_logfile_tap_fn fn, void *ud) {
  if (lf->log)
    lf = lf->log;
  lock(lf);
  lf->tap = fn;
  lf->tap_ud = ud;
  unlock(lf);
}

/* A writer: the line is formatted and batched without the log's lock; the
 * batch goes over once it is a chunk, at a flush, or at once when not
 * batching. */
static int writer_write(awf_logfile *w, const struct awf_log_record *r) {
  awf_logfile *lf = w->log;
  struct awf_log_record rec = *r;
  rec.run = lf->run;
  if (lf->tap) { /* set before the writers were made */
    lock(lf);
    lf->tap(lf->tap_ud, &rec);
    unlock(lf);
  }
  if (lf->kind == SINK_NONE)
    return 0;
  atomic_fetch_add_explicit(&lf->taken, 1, memory_order_relaxed);
  awf_buf_reset(&w->line);
  int rc = awf_log_format(&w->line, &rec);
  if (rc < 0) {
    lock(lf);
    lose(lf, 1);
    unlock(lf);
    return rc;
  }
  if (awf_buf_append(&w->queue, w->line.data, w->line.len) < 0) {
    rc = hand_over(w); /* a batch cannot hold two of the longest lines */
    if (awf_buf_append(&w->queue, w->line.data, w->line.len) < 0) {
      lock(lf);
      lose(lf, 1);
      unlock(lf);
      return rc;
    }
  }
  if (!w->batching || w->queue.len >= CHUNK_MAX_BYTES) {
    int hrc = hand_over(w);
    return rc < 0 ? rc : hrc;
  }
  return rc;
}

int awf_logfile_write(awf_logfile *lf, const struct awf_log_record *r) {
  if (lf->log)
    return writer_write(lf, r);
  lock(lf);
  struct awf_log_record rec = *r;
  rec.run = lf->run;
  if (lf->tap)
    lf->tap(lf->tap_ud, &rec);
  int rc = 0;
  if (lf->kind != SINK_NONE) {
    atomic_fetch_add_explicit(&lf->taken, 1, memory_order_relaxed);
    awf_buf_reset(&lf->line);
    rc = awf_log_format(&lf->line, &rec);
    if (rc < 0)
      lose(lf, 1);
    else
      rc = take_lines(lf, lf->line.data, lf->line.len, false);
  }
  unlock(lf);
  return rc;
}

int awf_logfile_write_run(awf_logfile *lf, const char *version, const char *const *argv) {
  if (lf->log)
    lf = lf->log; /* written at once, like the first line of a run */
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
  lock(lf);
  int rc = awf_logfile_write(lf, &r);
  if (rc == -E2BIG && argv) {
    lf->lost--; /* not lost: written again without the command line */
    lf->untold--;
    atomic_fetch_sub_explicit(&lf->taken, 1, memory_order_relaxed); /* counted again */
    r.argv = NULL;
    awf_logfile_tap_fn tap = lf->tap; /* it has seen this record */
    lf->tap = NULL;
    rc = awf_logfile_write(lf, &r);
    lf->tap = tap;
  }
  unlock(lf);
  return rc;
}

static int reopen_locked(awf_logfile *lf) {
  if (lf->kind != SINK_FILE || !lf->path)
    return 0;
  (void)flush_locked(lf); /* the lines so far belong to the old file */
  int fd = open_path(lf->path);
  if (fd < 0)
    return fd;
  /* A line cut in the old file cannot be completed in a new one: it is lost
   * (the queued lines after it go to the new file). The same file back
   * (reopened without a rotation) still takes its rest. */
  struct stat a, b;
  if (lf->partial && fstat(fd, &a) == 0 && fstat(lf->fd, &b) == 0 &&
      (a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
    const char *p = lf->queue.data + lf->head;
    const char *nl = memchr(p, '\n', lf->queue.len - lf->head);
    lf->head = nl ? (size_t)(nl + 1 - lf->queue.data) : lf->queue.len;
    lf->partial = false;
    lose(lf, 1);
  }
  close(lf->fd);
  adopt_fd(lf, fd);
  return 0;
}

int awf_logfile_reopen(awf_logfile *lf) {
  if (lf->log)
    lf = lf->log;
  lock(lf);
  int rc = reopen_locked(lf);
  unlock(lf);
  return rc;
}

unsigned long awf_logfile_lost(const awf_logfile *clf) {
  awf_logfile *lf = (awf_logfile *)(clf->log ? clf->log : clf);
  lock(lf);
  unsigned long n = lf->lost;
  unlock(lf);
  return n;
}

unsigned long awf_logfile_taken(const awf_logfile *clf) {
  const awf_logfile *lf = clf->log ? clf->log : clf;
  return atomic_load_explicit(&lf->taken, memory_order_relaxed);
}

unsigned long awf_logfile_pending(const awf_logfile *clf) {
  size_t n;
  const char *p;
  unsigned long k = 0;
  if (clf->log) { /* the writer's batch, then the log's queue */
    k = count_records(clf->queue.data, clf->queue.len, NULL);
    clf = clf->log;
  }
  awf_logfile *lf = (awf_logfile *)clf;
  lock(lf);
  p = queued(lf, &n);
  k += count_records(p, n, NULL);
  unlock(lf);
  return k;
}

unsigned long awf_logfile_finish(awf_logfile *lf, int *err) {
  if (err)
    *err = 0;
  if (!lf)
    return 0;
  if (lf->log) {
    (void)hand_over(lf);
    lf = lf->log;
  }
  lock(lf);
  if (!lf->finished && lf->kind != SINK_NONE) {
    lf->finished = true;
    lf->failing = false; /* one more try, waiting for a stalled pipe once */
    (void)flush_locked(lf);
    if (lf->queue.len > lf->head)
      drop_queue(lf);
  }
  if (err)
    *err = lf->error;
  unsigned long lost = lf->lost;
  unlock(lf);
  return lost;
}

int awf_logfile_writer_new(awf_logfile *lf, awf_logfile **out) {
  *out = NULL;
  if (lf->log)
    lf = lf->log;
  awf_logfile *w = calloc(1, sizeof(*w));
  if (!w)
    return -ENOMEM;
  w->log = lf;
  w->fd = -1;
  awf_buf_init(&w->line, LINE_MAX_BYTES);
  awf_buf_init(&w->queue, CHUNK_MAX_BYTES + LINE_MAX_BYTES);
  *out = w;
  return 0;
}

void awf_logfile_close(awf_logfile *lf) {
  if (!lf)
    return;
  if (lf->log) {
    (void)hand_over(lf);
  } else {
    awf_logfile_finish(lf, NULL);
    if (lf->fd >= 0)
      close(lf->fd);
    free(lf->path);
    pthread_mutex_destroy(&lf->mu);
  }
  awf_buf_free(&lf->line);
  awf_buf_free(&lf->queue);
  free(lf);
}
