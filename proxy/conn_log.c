/* conn_log.c: a connection's access-log records (open and final), and the
 * denial summary's one place of counting. */
#include <string.h>

#include "conn.h"

void conn_log_failed(const awf_proxy *p, int err) {
  awf_proxy_diag(p, AWF_LOG_WARN,
                 "access log write failed: %s (%lu records wait in memory, %lu lost so far)",
                 strerror(-err), awf_logfile_pending(p->cfg.log), awf_logfile_lost(p->cfg.log));
}

static void write_record(struct conn *c, const struct awf_log_record *r) {
  int rc = awf_logfile_write(c->proxy->cfg.log, r);
  if (rc < 0)
    conn_log_failed(c->proxy, rc);
}

void conn_log_open(struct conn *c, const struct awf_log_record *r) {
  struct awf_log_record o;
  awf_log_record_init(&o);
  o.ts_ms = r->ts_ms ? r->ts_ms : conn_now_ms(c);
  o.event = "open";
  o.conn = c->id;
  o.req = r->req;
  o.kind = r->event;
  o.client = c->client_addr;
  o.method = r->method;
  o.host = r->host;
  o.host_len = r->host_len;
  o.port = r->port;
  o.url = r->url;
  o.url_len = r->url_len;
  o.sni = r->sni;
  o.sni_len = r->sni_len;
  o.ech = r->ech;
  o.original_dst = r->original_dst;
  o.decision = r->decision;
  o.would_deny = r->would_deny;
  o.reason = r->reason;
  c->open_logged = true;
  c->open_req = r->req;
  write_record(c, &o);
}

void conn_log(struct conn *c, struct awf_log_record *r) {
  if (!r->ts_ms)
    r->ts_ms = conn_now_ms(c);
  r->client = c->client_addr;
  r->conn = c->id;
  if (!c->open_logged || c->open_req != r->req)
    conn_log_open(c, r);
  /* The summary lists denials, and under --audit what would have been one. */
  if (c->proxy->cfg.denials && r->reason && r->decision &&
      (strcmp(r->decision, "deny") == 0 || r->would_deny)) {
    struct awf_denial_fact f = {.host = r->host, .host_len = r->host_len, .port = r->port,
                                .reason = r->reason, .detail = r->resolved,
                                .would = r->would_deny};
    if (strcmp(r->reason, "scheme_not_allowed") == 0)
      f.detail = strcmp(r->event, "http") == 0 ? "http" : "https";
    char ip[AWF_ADDRSTRLEN];
    if (!r->host_len && c->orig_dst.ss_family) { /* no name: the address the client dialled */
      f.host = awf_sockaddr_format_ip((const struct sockaddr *)&c->orig_dst, ip, sizeof(ip));
      f.host_len = strlen(ip);
    }
    awf_denials_note(c->proxy->cfg.denials, &f);
  }
  write_record(c, r);
}
