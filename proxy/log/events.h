/* events.h: the one sink every access-log event goes through: an HTTP
 * request, a CONNECT tunnel, a redirected TLS, HTTP or TCP connection (and
 * its port denial, SSH), a DNS query, and the sandbox's refused packets and
 * UNIX sockets. It writes the `open` record of a unit and its final record,
 * and is the single place denials are counted for the end-of-run summary
 * and counted in the metrics. */
#ifndef AWF_EVENTS_H
#define AWF_EVENTS_H

#include <stdbool.h>
#include <sys/socket.h>

#include "denials.h"
#include "dlp.h"
#include "jsonlog.h"
#include "logfile.h"
#include "metrics.h"

struct awf_event_sink {
  awf_logfile *log;     /* NULL: no record is written */
  awf_denials *denials; /* NULL: denials are not counted */
  /* A write failed (a negative errno); NULL: ignored (the log counts a lost
   * line itself). */
  void (*write_failed)(void *arg, int err);
  void *write_failed_arg;
  /* --dlp (NULL: off, or a table the sink does not know): a record with a
   * `dlp` kind has the bytes of every match in host, url, sni and qname
   * written as '*' (without the table, those fields whole). */
  const awf_dlp *dlp;
  /* NULL: not counted. Every final record is counted by event, decision and
   * reason, with its bytes, and a denial by its host (metrics.h). */
  struct awf_metrics *metrics;
};

/* What the sink needs to know about the unit a final record ends. */
struct awf_event_unit {
  bool write_open;            /* no open record was written for this unit: write it first */
  const struct sockaddr *dst; /* the address the client dialled: what the summary names
                                 * when the record has no host (may be NULL) */
  bool host_escaped;          /* r->host is already in awf_dns_name_text's form (DNS) */
};

/* The `open` record of a decision: r is the record the unit will end with,
 * or the part of it known so far; its decision fields are copied and
 * `kind` is its event. r->ts_ms 0: now. */
void awf_event_open(const struct awf_event_sink *s, const struct awf_log_record *r);

/* A final record (r->ts_ms 0: now, written back), preceded by its open
 * record when u->write_open. A denial (or, under --audit, what would have
 * been one) is noted for the summary. */
void awf_event_log(const struct awf_event_sink *s, struct awf_log_record *r,
                   const struct awf_event_unit *u);

#endif
