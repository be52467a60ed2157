/* conn_log.c: a connection's access-log records (open and final), filled in
 * with the connection's fields and handed to the event sink (events.h). */
#include <string.h>

#include "conn.h"

void conn_log_failed(const awf_proxy *p, int err) {
  awf_proxy_diag(p, AWF_LOG_WARN,
                 "access log write failed: %s (%lu records wait in memory, %lu lost so far)",
                 strerror(-err), awf_logfile_pending(p->cfg.log), awf_logfile_lost(p->cfg.log));
}

void conn_log_open(struct conn *c, const struct awf_log_record *r) {
  struct awf_log_record o = *r;
  o.ts_ms = r->ts_ms ? r->ts_ms : conn_now_ms(c);
  o.conn = c->id;
  o.client = c->client_addr;
  c->open_logged = true;
  c->open_req = r->req;
  awf_event_open(&c->proxy->events, &o);
}

void conn_log_refusal(struct conn *c, const char *host, enum awf_reason reason) {
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.event = "tcp";
  if (host) {
    r.host = host;
    r.host_len = strlen(host);
  }
  r.original_dst = c->orig_dst_addr[0] ? c->orig_dst_addr : NULL;
  if (c->orig_dst.ss_family)
    r.port = awf_sockaddr_port((const struct sockaddr *)&c->orig_dst);
  r.decision = AWF_DENY;
  r.reason = reason;
  r.bytes_up = r.bytes_down = 0;
  r.duration_ms = 0;
  conn_log(c, &r);
}

void conn_log(struct conn *c, struct awf_log_record *r) {
  if (!r->ts_ms)
    r->ts_ms = conn_now_ms(c);
  r->client = c->client_addr;
  r->conn = c->id;
  struct awf_event_unit u = {.write_open = !c->open_logged || c->open_req != r->req,
                             .dst = (const struct sockaddr *)&c->orig_dst};
  c->open_logged = true;
  c->open_req = r->req;
  awf_event_log(&c->proxy->events, r, &u);
}
