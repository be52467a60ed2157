/* unixlog.c: see unixlog.h. */
#include "unixlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "events.h"
#include "fdwatch.h"
#include "jsonlog.h"
#include "unixgate.h"

#define BATCH 32

struct awf_unixlog {
  awf_fdwatch *watch;           /* the pipe's read end */
  struct awf_event_sink events; /* the log and the denials */
};

static uint64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void record(struct awf_unixlog *u, const struct awf_unixgate_report *rep) {
  size_t len = rep->len < sizeof(rep->path) ? rep->len : sizeof(rep->path);
  bool allowed = rep->verdict == AWF_UNIXGATE_ADMITTED;
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.ts_ms = wall_ms();
  r.event = "unix";
  r.conn = awf_log_next_conn();
  r.path = rep->path;
  r.path_len = len;
  r.decision = allowed ? AWF_ALLOW : AWF_DENY;
  r.reason = allowed                             ? AWF_REASON_ALLOWED
             : rep->verdict == AWF_UNIXGATE_BUSY ? AWF_REASON_OVERLOADED
                                                 : AWF_REASON_UNIX_SOCKET_NOT_ALLOWED;
  /* A refusal is counted by its path; a lost line is counted by the log. */
  awf_event_log(&u->events, &r, &(struct awf_event_unit){0});
}

static void drain(int fd, void *arg) {
  struct awf_unixgate_report reps[BATCH];
  for (;;) {
    ssize_t n = read(fd, reps, sizeof(reps)); /* whole reports: each write was atomic */
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    for (size_t i = 0; i < (size_t)n / sizeof(reps[0]); i++)
      record(arg, &reps[i]);
  }
}

int awf_unixlog_start(uv_loop_t *loop, awf_logfile *log, awf_denials *denials, int *write_fd,
                      awf_unixlog **out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
    return -errno;
  struct awf_unixlog *u = calloc(1, sizeof(*u));
  if (!u) {
    close(p[0]);
    close(p[1]);
    return -ENOMEM;
  }
  u->events = (struct awf_event_sink){.log = log, .denials = denials};
  int rc = awf_fdwatch_start(loop, p[0], drain, u, &u->watch);
  if (rc < 0) {
    free(u);
    close(p[1]);
    return rc;
  }
  *write_fd = p[1];
  *out = u;
  return 0;
}

void awf_unixlog_close(awf_unixlog *u) {
  if (!u)
    return;
  awf_fdwatch_close(u->watch);
  free(u);
}
