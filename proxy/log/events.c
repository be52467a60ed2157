/* events.c: the access-log event sink (events.h). */
#include "events.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "netaddr.h"

static uint64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void write_record(const struct awf_event_sink *s, const struct awf_log_record *r) {
  if (!s->log)
    return;
  int rc = awf_logfile_write(s->log, r);
  if (rc < 0 && s->write_failed)
    s->write_failed(s->write_failed_arg, rc);
}

/* --dlp: the text fields of a record that names a match, as copies with the
 * match masked (a field that cannot be copied is left out). */
struct masked {
  char *f[4];
};

static void mask_record(const struct awf_event_sink *s, struct awf_log_record *r,
                        struct masked *m) {
  memset(m, 0, sizeof(*m));
  if (!r->dlp)
    return;
  const char **fields[4] = {&r->host, &r->url, &r->sni, &r->qname};
  size_t lens[4] = {r->host_len, r->url_len, r->sni_len, r->qname_len};
  enum awf_dlp_view views[4] = {AWF_DLP_NAME, AWF_DLP_TEXT, AWF_DLP_NAME, AWF_DLP_NAME};
  for (int i = 0; i < 4; i++) {
    const char *orig = *fields[i];
    if (!orig || lens[i] == 0)
      continue;
    char *c = malloc(lens[i]);
    m->f[i] = c;
    *fields[i] = c;
    if (!c)
      continue;
    memcpy(c, orig, lens[i]);
    /* A URL also as a name: its host, folded and without dots. */
    if (!s->dlp || awf_dlp_redact(s->dlp, views[i], c, lens[i]) < 0 ||
        (i == 1 && awf_dlp_redact(s->dlp, AWF_DLP_NAME, c, lens[i]) < 0))
      memset(c, '*', lens[i]);
  }
}

static void masked_free(struct masked *m) {
  for (int i = 0; i < 4; i++)
    free(m->f[i]);
}

void awf_event_open(const struct awf_event_sink *s, const struct awf_log_record *r) {
  struct awf_log_record o;
  awf_log_record_init(&o);
  o.ts_ms = r->ts_ms ? r->ts_ms : now_ms();
  o.event = "open";
  o.conn = r->conn;
  o.req = r->req;
  o.kind = r->event;
  o.client = r->client;
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
  o.dlp = r->dlp;
  o.secrets = r->secrets; /* the secrets the request carries to its host, by name */
  o.secrets_injected = r->secrets_injected;
  o.secrets_misdirected = r->secrets_misdirected;
  struct masked m;
  mask_record(s, &o, &m);
  write_record(s, &o);
  masked_free(&m);
}

/* The summary lists denials, and under --audit what would have been one;
 * metrics count every final record and the hosts denied. Both name a
 * denial by its host, else a UNIX socket's path, else the address dialled. */
static void note_denial(const struct awf_event_sink *s, const struct awf_log_record *r,
                        const struct awf_event_unit *u) {
  bool denial = r->reason && (r->decision == AWF_DENY || r->would_deny);
  if (!s->metrics && !(s->denials && denial))
    return;
  struct awf_denial_fact f = {.host = r->host,
                              .host_len = r->host_len,
                              .escaped = u->host_escaped,
                              .port = r->port,
                              .reason = r->reason,
                              .detail = r->resolved,
                              .would = r->would_deny};
  if (r->reason == AWF_REASON_SCHEME_NOT_ALLOWED) /* the scheme a rule would need */
    f.detail = r->event && strcmp(r->event, "http") == 0 ? "http" : "https";
  char ip[AWF_ADDRSTRLEN];
  if (!f.host_len && r->path) { /* a UNIX socket: its path */
    f.host = r->path;
    f.host_len = r->path_len;
  } else if (!f.host_len && u->dst && u->dst->sa_family) { /* no name: the address dialled */
    f.host = awf_sockaddr_format_ip(u->dst, ip, sizeof(ip));
    f.host_len = strlen(ip);
  }
  awf_metrics_note_record(s->metrics, r, f.host, f.host_len);
  if (s->denials && denial)
    awf_denials_note(s->denials, &f);
}

void awf_event_log(const struct awf_event_sink *s, struct awf_log_record *r,
                   const struct awf_event_unit *u) {
  if (!r->ts_ms)
    r->ts_ms = now_ms();
  if (u->write_open)
    awf_event_open(s, r);
  struct awf_log_record c = *r;
  struct masked m;
  mask_record(s, &c, &m);
  note_denial(s, &c, u);
  write_record(s, &c);
  masked_free(&m);
}
