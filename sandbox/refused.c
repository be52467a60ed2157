/* refused.c: see refused.h. */
#include "refused.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "events.h"
#include "fdwatch.h"
#include "jsonlog.h"
#include "netaddr.h"
#include "nflog.h"

#define BATCH 32

struct awf_refused {
  awf_fdwatch *watch;
  struct awf_event_sink events; /* the log and the denials */
};

enum awf_reason awf_refused_reason(uint8_t proto) {
  switch (proto) {
  case IPPROTO_TCP: return AWF_REASON_PORT_NOT_ALLOWED;
  case IPPROTO_UDP: return AWF_REASON_UDP_NOT_ALLOWED;
  default: return AWF_REASON_PROTOCOL_NOT_ALLOWED;
  }
}

static uint64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void record(struct awf_refused *r, const struct awf_nflog_packet *p) {
  char dst[AWF_ADDRSTRLEN], host[AWF_ADDRSTRLEN];
  const struct sockaddr *sa = (const struct sockaddr *)&p->dst;
  int port = awf_sockaddr_port(sa);
  awf_sockaddr_format(sa, dst, sizeof(dst));
  awf_sockaddr_format_ip(sa, host, sizeof(host));
  bool have_addr = sa->sa_family == AF_INET || sa->sa_family == AF_INET6;
  struct awf_log_record rec;
  awf_log_record_init(&rec);
  rec.ts_ms = wall_ms();
  rec.event = awf_nflog_event(p->proto);
  rec.conn = awf_log_next_conn(); /* a denial of its own, joinable like any other */
  rec.original_dst = port > 0 ? dst : host;
  rec.port = port > 0 ? port : -1;
  rec.decision = AWF_DENY;
  rec.reason = awf_refused_reason(p->proto);
  rec.bytes_up = rec.bytes_down = 0;
  rec.duration_ms = 0;
  /* No name: the summary names the address. A lost line is counted by the log. */
  awf_event_log(&r->events, &rec, &(struct awf_event_unit){.dst = have_addr ? sa : NULL});
}

/* Read every queued report. The socket is non-blocking. */
static void drain(int fd, void *arg) {
  struct awf_refused *r = arg;
  union {
    uint8_t b[16384];
    uint32_t align;
  } buf;
  for (;;) {
    ssize_t n = recv(fd, buf.b, sizeof(buf.b), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* EAGAIN, or ENOBUFS when the kernel dropped reports */
    struct awf_nflog_packet pk[BATCH];
    int k = awf_nflog_parse(buf.b, (size_t)n, pk, BATCH);
    for (int i = 0; i < k; i++)
      record(r, &pk[i]);
  }
}

int awf_refused_start(uv_loop_t *loop, int fd, awf_logfile *log, awf_denials *denials,
                      awf_refused **out) {
  struct awf_refused *r = calloc(1, sizeof(*r));
  if (!r) {
    close(fd);
    return -ENOMEM;
  }
  r->events = (struct awf_event_sink){.log = log, .denials = denials};
  int rc = awf_fdwatch_start(loop, fd, drain, r, &r->watch);
  if (rc < 0) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void awf_refused_close(awf_refused *r) {
  if (!r)
    return;
  awf_fdwatch_close(r->watch);
  free(r);
}
