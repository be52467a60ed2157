/* stepsummary.c: the access log's records, counted as they are written
 * (logagg.h), and the Markdown appended to GITHUB_STEP_SUMMARY at the end. */
#include "stepsummary.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fscreds.h"
#include "logagg.h"
#include "logreport.h"

struct awf_stepsummary {
  char *path;
  awf_logagg *agg;
};

awf_stepsummary *awf_stepsummary_new(const char *path) {
  if (!path || !*path)
    return NULL;
  awf_stepsummary *s = calloc(1, sizeof(*s));
  if (s && (s->path = strdup(path)) && (s->agg = awf_logagg_new(0)))
    return s;
  fprintf(stderr, "awf: warning: out of memory: no GitHub step summary\n");
  awf_stepsummary_free(s);
  return NULL;
}

void awf_stepsummary_free(awf_stepsummary *s) {
  if (!s)
    return;
  awf_logagg_free(s->agg);
  free(s->path);
  free(s);
}

/* A record as awf writes it, counted as `awf logs summary` counts a line. */
static void on_record(void *ud, const struct awf_log_record *r) {
  awf_stepsummary *s = ud;
  struct awf_logev ev = {.run = r->run,
                         .event = r->event,
                         .conn = r->conn,
                         .req = r->req,
                         .host = r->host,
                         .host_len = r->host_len,
                         .original_dst = r->original_dst,
                         .path = r->path,
                         .path_len = r->path_len,
                         .port = r->port,
                         .deny = r->decision == AWF_DENY,
                         .would_deny = r->would_deny,
                         .reason = awf_reason_name(r->reason),
                         .bytes_up = r->bytes_up,
                         .bytes_down = r->bytes_down,
                         .duration_ms = r->duration_ms};
  if (!ev.host && r->qname) { /* dns: the name queried */
    ev.host = r->qname;
    ev.host_len = r->qname_len;
  }
  awf_logagg_add(s->agg, &ev);
}

void awf_stepsummary_attach(awf_stepsummary *s, awf_logfile *lf) {
  if (s && lf)
    awf_logfile_set_tap(lf, on_record, s);
}

static int append(const char *path, const char *data, size_t len, char *err, size_t errlen) {
  /* O_NONBLOCK: a FIFO planted there must not hang awf; it is refused below. */
  int fd = open(path,
                O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                0644);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path,
             e == ELOOP ? "is a symbolic link (not followed)" : strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", path);
    close(fd);
    return -EINVAL;
  }
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, data + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      snprintf(err, errlen, "%s: %s", path, strerror(e));
      close(fd);
      return -e;
    }
    done += (size_t)w;
  }
  if (close(fd) < 0) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

int awf_stepsummary_write(awf_stepsummary *s, uid_t uid, gid_t gid, const gid_t *groups,
                          size_t ngroups, char *err, size_t errlen) {
  awf_logagg_finish(s->agg);
  char *md = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&md, &len);
  struct awf_report_info info = {.title = "awf"};
  int rc = f ? awf_report_summary(f, s->agg, AWF_REPORT_MARKDOWN, &info) : -ENOMEM;
  if (f && fclose(f) != 0 && rc == 0)
    rc = -ENOMEM;
  if (rc < 0) {
    snprintf(err, errlen, "%s", strerror(-rc));
    free(md);
    return rc;
  }
  struct awf_fscreds_saved saved;
  rc = awf_fscreds_enter(uid, gid, groups, ngroups, &saved);
  if (rc < 0) {
    snprintf(err, errlen, "cannot take the caller's file rights: %s", strerror(-rc));
  } else {
    rc = append(s->path, md, len, err, errlen);
    int back = awf_fscreds_leave(&saved);
    if (back < 0 && rc == 0) {
      snprintf(err, errlen, "cannot take back root's file rights: %s", strerror(-back));
      rc = back;
    }
  }
  free(md);
  return rc;
}
