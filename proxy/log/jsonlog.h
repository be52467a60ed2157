/* jsonlog.h: one access-log record as one line of JSON. Pure formatting into a
 * caller-owned, size-capped buffer; writing the line is logfile.h's job. */
#ifndef AWF_JSONLOG_H
#define AWF_JSONLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"     /* struct awf_buf, the capped buffer records are written into */
#include "reason.h"  /* enum awf_decision, enum awf_reason: written by name */
#include "secrets.h" /* secrets are written by name, never by value */

/* Append s[0..n) as a JSON string literal with its quotes. Escapes '"', '\\',
 * and control bytes (\n \r \t \b \f, others \u00XX), and DEL as \u007f.
 * Valid UTF-8 passes through; each byte of invalid UTF-8 (bad lead, bad or
 * missing continuation, overlong, surrogate, > U+10FFFF) becomes \ufffd.
 * s may contain NUL. */
int awf_json_append_string(struct awf_buf *b, const char *s, size_t n);

/* A config event's fields (awf-proxy's rule reloads, docs/access-log.md):
 * written after the others, "ok" always, the rest when set. */
struct awf_log_config {
  bool ok;
  int64_t allow_rules, block_rules, url_allow_rules, url_block_rules; /* -1 to omit */
  const char *ports;                                                  /* "80,443,8000-8099" */
  int64_t sources;    /* rule sources read; -1 to omit */
  int64_t files;      /* of them files; -1 to omit */
  const char *digest; /* "sha256:HEX" of the sources */
  const char *error;  /* !ok: why the new rules were refused */
  const char *file;   /* !ok: the file at fault */
  int64_t line;       /* !ok: its line; -1 to omit */
  const char *warning;
};

/* Fields of one record. NULL strings and negative numbers are omitted. */
struct awf_log_record {
  uint64_t ts_ms;     /* Unix time in ms; formatted as RFC 3339 UTC with ms */
  const char *run;    /* the writing process's run id (awf_logfile fills it) */
  const char *event;  /* "open", "http", "connect", "tls", "tcp", "dns", "run" */
  uint64_t conn;      /* connection (or DNS message) id; 0 to omit */
  uint64_t req;       /* request number on the connection, from 1; 0 to omit */
  const char *kind;   /* open: the event that will close it ("http", ...) */
  const char *client; /* "ip:port" / "[v6]:port" */
  const char *method;
  const char *host;
  size_t host_len; /* host may hold any bytes a client sent */
  int port;        /* -1 to omit */
  const char *url;
  size_t url_len;
  const char *sni;
  size_t sni_len;
  const char *original_dst;
  enum awf_decision decision;   /* written "allow" / "deny"; NONE: omitted */
  enum awf_reason reason;       /* written by its name; NONE: omitted */
  const char *dlp;              /* --dlp: the kind of what matched (never the text) */
  bool would_deny;              /* --audit: allowed, but the ACL would have denied */
  bool ech;                     /* a ClientHello carried ECH */
  bool intercepted;             /* a tunnel TLS interception opened (--ssl-bump) */
  const awf_secrets *secrets;   /* --secret: the store the two masks index */
  uint64_t secrets_injected;    /* secrets whose placeholders became their values */
  uint64_t secrets_misdirected; /* placeholders carried to another host */
  int status;                   /* HTTP status sent; -1 to omit */
  const char *upstream;         /* "ip:port" dialled */
  const char *resolved;         /* private_destination: an address the name resolved to */
  const char *path;             /* unix events: the socket file's name as the command gave it */
  size_t path_len;
  int64_t bytes_up;    /* client -> upstream; -1 to omit */
  int64_t bytes_down;  /* upstream -> client; -1 to omit */
  int64_t duration_ms; /* -1 to omit */
  /* dns events */
  const char *qname;
  size_t qname_len;
  const char *qtype;
  int answers; /* -1 to omit */
  /* run events */
  const char *version;
  const char *const *argv; /* a JSON array of argc strings; NULL to omit */
  int argc;
  /* log_lost events */
  int64_t lost; /* records that never reached the log; -1 to omit */
  /* config events */
  const struct awf_log_config *config; /* NULL to omit */
};

/* A fresh id for a connection or a DNS message: unique within the process
 * (a counter shared by every thread), never 0. */
uint64_t awf_log_next_conn(void);

/* Initialise every field to "omitted". */
void awf_log_record_init(struct awf_log_record *r);

/* A url longer than this is cut (at a UTF-8 boundary) and the record gets
 * "url_truncated": true, so a huge URL cannot cost the whole line. */
#define AWF_LOG_URL_MAX 8192

/* Append the record as one JSON object and a '\n'. On error (-E2BIG, -ENOMEM,
 * -EINVAL for a ts past year 9999) the buffer is left as it was, so no half
 * line is ever produced. Key order: ts, run, event, conn, req, kind, client,
 * method, host, port, url, url_truncated, sni, ech, intercepted, secrets, secrets_misdirected,
 * original_dst, path, decision, would_deny, reason, dlp, status, upstream, resolved, bytes_up, bytes_down, duration_ms,
 * qname, qtype, answers, version, argv, lost, then a config event's ok,
 * allow_rules, block_rules, url_allow_rules, url_block_rules, ports, sources,
 * files, digest, error, file, line, warning. */
int awf_log_format(struct awf_buf *b, const struct awf_log_record *r);

#endif
