/* logreport.c: the summary, the statistics and `show` lines, escaped for
 * their destination. Output is built in an awf_buf and written whole. */
#include "logreport.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define OUT_MAX ((size_t)1 << 30) /* what one report may take in memory */
#define TOP_HOSTS 10
#define HOST_COL_MAX 48

/* ---- escaping ------------------------------------------------------------ */

int awf_md_escape(struct awf_buf *b, const char *s, size_t n) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '<': rc = awf_buf_append(b, "&lt;", 4); break;
    case '>': rc = awf_buf_append(b, "&gt;", 4); break;
    case '&': rc = awf_buf_append(b, "&amp;", 5); break;
    case '"': rc = awf_buf_append(b, "&quot;", 6); break;
    default:
      if (c < 0x20 || c >= 0x7f)
        rc = awf_buf_printf(b, "\\\\x%02x", c); /* renders as \xHH */
      else if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
               (c >= '{' && c <= '~'))
        rc = awf_buf_printf(b, "\\%c", c); /* any ASCII punctuation may be escaped */
      else
        rc = awf_buf_append(b, &s[i], 1);
    }
  }
  return rc;
}

int awf_text_escape(struct awf_buf *b, const char *s, size_t n) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\')
      rc = awf_buf_append(b, "\\\\", 2);
    else if (c < 0x20 || c >= 0x7f)
      rc = awf_buf_printf(b, "\\x%02x", c);
    else
      rc = awf_buf_append(b, &s[i], 1);
  }
  return rc;
}

static int text_cstr(struct awf_buf *b, const char *s) {
  return awf_text_escape(b, s, strlen(s));
}

/* ---- small pieces -------------------------------------------------------- */

static int flush(FILE *out, struct awf_buf *b, int rc) {
  if (rc == 0 && b->len && fwrite(b->data, 1, b->len, out) != b->len)
    rc = -EIO;
  awf_buf_free(b);
  return rc;
}

static void human_bytes(uint64_t v, char *out, size_t outsz) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (v < 1024) {
    snprintf(out, outsz, "%" PRIu64 " B", v);
    return;
  }
  double d = (double)v;
  size_t u = 0;
  while (d >= 1024 && u < 5) {
    d /= 1024;
    u++;
  }
  snprintf(out, outsz, "%.1f %s", d, unit[u]);
}

static void ports_text(const struct awf_loghost *x, char *out, size_t outsz) {
  size_t len = 0;
  out[0] = '\0';
  for (unsigned i = 0; i < x->nports && len < outsz; i++)
    len += (size_t)snprintf(out + len, outsz - len, "%s%u", i ? "," : "", x->ports[i]);
  if (x->more_ports && len < outsz)
    snprintf(out + len, outsz - len, ",...");
}

struct headline {
  size_t allowed, denied, would;
};

static struct headline count_hosts(const struct awf_loghost *const *h, size_t n) {
  struct headline c = {0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    if (h[i]->others)
      continue;
    if (h[i]->denied)
      c.denied++;
    else
      c.allowed++;
    if (h[i]->would_deny)
      c.would++;
  }
  return c;
}

static int headline_text(struct awf_buf *b, struct headline c) {
  int rc = awf_buf_printf(b, "%zu host%s allowed, %zu denied", c.allowed,
                          c.allowed == 1 ? "" : "s", c.denied);
  if (rc == 0 && c.would)
    rc = awf_buf_printf(b, ", %zu would be denied without --audit", c.would);
  return rc;
}

/* Width of a host name once escaped for a terminal. */
static size_t text_width(const char *s, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    w += c == '\\' ? 2 : (c < 0x20 || c >= 0x7f) ? 4 : 1;
  }
  return w;
}

static int pad(struct awf_buf *b, size_t have, size_t want) {
  int rc = 0;
  for (; rc == 0 && have < want; have++)
    rc = awf_buf_append(b, " ", 1);
  return rc;
}

static int json_key_u64(struct awf_buf *b, const char *sep, const char *k, uint64_t v) {
  return awf_buf_printf(b, "%s\"%s\":%" PRIu64, sep, k, v);
}

/* ---- the summary ----------------------------------------------------------- */

static int summary_text(struct awf_buf *b, awf_logagg *a, const struct awf_loghost *const *h,
                        size_t n, const struct awf_report_info *info) {
  const struct awf_logtotals *t = awf_logagg_totals(a);
  int rc = awf_buf_printf(b, "awf: ");
  if (rc == 0)
    rc = headline_text(b, count_hosts(h, n));
  if (rc == 0)
    rc = awf_buf_printf(b, " (%" PRIu64 " events", t->events);
  if (rc == 0 && info->malformed)
    rc = awf_buf_printf(b, ", %" PRIu64 " malformed line%s", info->malformed,
                        info->malformed == 1 ? "" : "s");
  if (rc == 0 && t->lost)
    rc = awf_buf_printf(b, ", %" PRIu64 " record%s lost by the writer: the log is incomplete",
                        t->lost, t->lost == 1 ? "" : "s");
  if (rc == 0)
    rc = awf_buf_printf(b, ")\n");
  if (rc || n == 0)
    return rc;
  size_t w = 4;
  for (size_t i = 0; i < n; i++) {
    size_t x = text_width(h[i]->name, h[i]->name_len);
    if (x > w)
      w = x < HOST_COL_MAX ? x : HOST_COL_MAX;
  }
  rc = awf_buf_printf(b, "\nHOST");
  if (rc == 0)
    rc = pad(b, 4, w);
  if (rc == 0)
    rc = awf_buf_printf(b, "  %8s %8s  %-16s %10s %10s  %s\n", "ALLOWED", "DENIED", "PORTS",
                        "SENT", "RECEIVED", "FIRST DENIAL");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const struct awf_loghost *x = h[i];
    char ports[64], up[32], down[32];
    ports_text(x, ports, sizeof(ports));
    human_bytes(x->bytes_up, up, sizeof(up));
    human_bytes(x->bytes_down, down, sizeof(down));
    rc = awf_text_escape(b, x->name, x->name_len);
    if (rc == 0)
      rc = pad(b, text_width(x->name, x->name_len), w);
    if (rc == 0)
      rc = awf_buf_printf(b, "  %8" PRIu64 " %8" PRIu64 "  %-16s %10s %10s  ", x->allowed,
                          x->denied, ports[0] ? ports : "-", up, down);
    if (rc == 0)
      rc = text_cstr(b, x->first_reason ? x->first_reason : "-");
    if (rc == 0 && x->would_deny)
      rc = awf_buf_printf(b, " (%" PRIu64 " would be denied)", x->would_deny);
    if (rc == 0)
      rc = awf_buf_append(b, "\n", 1);
  }
  char allow[8192];
  if (rc == 0 && awf_logagg_allow_domains(a, allow, sizeof(allow)))
    rc = awf_buf_printf(b, "\nAllow the denied hosts with:\n  --allow-domains %s\n", allow);
  return rc;
}

static int summary_markdown(struct awf_buf *b, awf_logagg *a,
                            const struct awf_loghost *const *h, size_t n,
                            const struct awf_report_info *info) {
  int rc = awf_buf_printf(b, "### ");
  if (rc == 0 && info->title) {
    rc = awf_md_escape(b, info->title, strlen(info->title));
    if (rc == 0)
      rc = awf_buf_printf(b, ": ");
  }
  if (rc == 0)
    rc = headline_text(b, count_hosts(h, n));
  if (rc == 0)
    rc = awf_buf_printf(b, "\n\n");
  if (rc == 0 && info->malformed)
    rc = awf_buf_printf(b, "%" PRIu64 " malformed log line%s skipped\\.\n\n", info->malformed,
                        info->malformed == 1 ? "" : "s");
  if (rc == 0 && awf_logagg_totals(a)->lost)
    rc = awf_buf_printf(b,
                        "**The log is incomplete:** %" PRIu64 " record%s could not be written "
                        "\\(`log_lost`\\)\\.\n\n",
                        awf_logagg_totals(a)->lost, awf_logagg_totals(a)->lost == 1 ? "" : "s");
  if (rc == 0 && n)
    rc = awf_buf_printf(b,
                        "| host | allowed | denied | ports | sent | received | first denial |\n"
                        "| :--- | ---: | ---: | :--- | ---: | ---: | :--- |\n");
  for (size_t i = 0; rc == 0 && i < n && i < AWF_REPORT_MD_ROWS; i++) {
    const struct awf_loghost *x = h[i];
    char ports[64], up[32], down[32];
    ports_text(x, ports, sizeof(ports));
    human_bytes(x->bytes_up, up, sizeof(up));
    human_bytes(x->bytes_down, down, sizeof(down));
    rc = awf_buf_printf(b, "| ");
    if (rc == 0)
      rc = awf_md_escape(b, x->name, x->name_len);
    if (rc == 0)
      rc = awf_buf_printf(b, " | %" PRIu64 " | %" PRIu64 " | ", x->allowed, x->denied);
    if (rc == 0)
      rc = awf_md_escape(b, ports[0] ? ports : "-", ports[0] ? strlen(ports) : 1);
    if (rc == 0)
      rc = awf_buf_printf(b, " | %s | %s | ", up, down);
    const char *r = x->first_reason ? x->first_reason : "";
    if (rc == 0)
      rc = awf_md_escape(b, r, strlen(r));
    if (rc == 0 && x->would_deny)
      rc = awf_buf_printf(b, " \\(%" PRIu64 " would be denied\\)", x->would_deny);
    if (rc == 0)
      rc = awf_buf_printf(b, " |\n");
  }
  if (rc == 0 && n > AWF_REPORT_MD_ROWS)
    rc = awf_buf_printf(
        b, "\n%zu more hosts not shown \\(`awf logs summary` lists them all\\)\\.\n",
        n - AWF_REPORT_MD_ROWS);
  char allow[8192];
  if (rc == 0 && awf_logagg_allow_domains(a, allow, sizeof(allow)))
    /* plain names only (logagg.h): nothing in it can close the block */
    rc = awf_buf_printf(b, "\nTo allow the denied hosts:\n\n```\n--allow-domains %s\n```\n",
                        allow);
  if (rc == 0)
    rc = awf_buf_append(b, "\n", 1);
  return rc;
}

static int summary_json(struct awf_buf *b, awf_logagg *a, const struct awf_loghost *const *h,
                        size_t n, const struct awf_report_info *info) {
  const struct awf_logtotals *t = awf_logagg_totals(a);
  struct headline c = count_hosts(h, n);
  int rc = awf_buf_printf(b,
                          "{\"hosts_allowed\":%zu,\"hosts_denied\":%zu,"
                          "\"hosts_would_deny\":%zu",
                          c.allowed, c.denied, c.would);
  if (rc == 0)
    rc = json_key_u64(b, ",", "events", t->events);
  if (rc == 0)
    rc = json_key_u64(b, ",", "open_only", t->open_only);
  if (rc == 0)
    rc = json_key_u64(b, ",", "malformed", info->malformed);
  if (rc == 0)
    rc = awf_buf_printf(b, ",\"hosts\":[");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const struct awf_loghost *x = h[i];
    rc = awf_buf_printf(b, "%s{\"host\":", i ? "," : "");
    if (rc == 0)
      rc = awf_json_append_string(b, x->name, x->name_len);
    if (rc == 0 && x->others)
      rc = awf_buf_printf(b, ",\"others\":true");
    if (rc == 0)
      rc = json_key_u64(b, ",", "events", x->events);
    if (rc == 0)
      rc = json_key_u64(b, ",", "allowed", x->allowed);
    if (rc == 0)
      rc = json_key_u64(b, ",", "denied", x->denied);
    if (rc == 0)
      rc = json_key_u64(b, ",", "would_deny", x->would_deny);
    if (rc == 0)
      rc = awf_buf_printf(b, ",\"ports\":[");
    for (unsigned k = 0; rc == 0 && k < x->nports; k++)
      rc = awf_buf_printf(b, "%s%u", k ? "," : "", x->ports[k]);
    if (rc == 0)
      rc = awf_buf_printf(b, "]%s", x->more_ports ? ",\"more_ports\":true" : "");
    if (rc == 0)
      rc = json_key_u64(b, ",", "bytes_up", x->bytes_up);
    if (rc == 0)
      rc = json_key_u64(b, ",", "bytes_down", x->bytes_down);
    if (rc == 0 && x->first_reason) {
      rc = awf_buf_printf(b, ",\"first_denial\":");
      if (rc == 0)
        rc = awf_json_append_string(b, x->first_reason, strlen(x->first_reason));
    }
    if (rc == 0)
      rc = awf_buf_append(b, "}", 1);
  }
  char allow[8192];
  size_t an = rc == 0 ? awf_logagg_allow_domains(a, allow, sizeof(allow)) : 0;
  if (rc == 0)
    rc = awf_buf_printf(b, "],\"allow_domains\":");
  if (rc == 0)
    rc = an ? awf_json_append_string(b, allow, an) : awf_buf_printf(b, "null");
  if (rc == 0)
    rc = awf_buf_printf(b, "}\n");
  return rc;
}

int awf_report_summary(FILE *out, awf_logagg *a, enum awf_report_format fmt,
                       const struct awf_report_info *info) {
  const struct awf_loghost *const *h;
  size_t n = awf_logagg_hosts(a, &h);
  if (!h)
    return -ENOMEM;
  struct awf_buf b;
  awf_buf_init(&b, OUT_MAX);
  int rc = fmt == AWF_REPORT_MARKDOWN ? summary_markdown(&b, a, h, n, info)
           : fmt == AWF_REPORT_JSON   ? summary_json(&b, a, h, n, info)
                                      : summary_text(&b, a, h, n, info);
  return flush(out, &b, rc);
}

/* ---- statistics ------------------------------------------------------------ */

static int stats_text(struct awf_buf *b, awf_logagg *a, const struct awf_report_info *info) {
  const struct awf_logtotals *t = awf_logagg_totals(a);
  char up[32], down[32];
  human_bytes(t->bytes_up, up, sizeof(up));
  human_bytes(t->bytes_down, down, sizeof(down));
  int rc = awf_buf_printf(b,
                          "records      %" PRIu64 " (%" PRIu64 " runs), %" PRIu64
                          " malformed lines, %" PRIu64 " lost by the writer (log_lost)\n"
                          "events       %" PRIu64 ": %" PRIu64 " allowed, %" PRIu64
                          " denied, %" PRIu64 " would be denied (--audit), %" PRIu64
                          " open when the log ended\n"
                          "bytes        %s sent, %s received\n",
                          t->records, t->runs, info->malformed, t->lost, t->events, t->allowed,
                          t->denied, t->would_deny, t->open_only, up, down);
  if (rc == 0 && t->durations)
    rc = awf_buf_printf(b,
                        "duration_ms  p50 %" PRId64 ", p95 %" PRId64 ", p99 %" PRId64
                        " (of %" PRIu64 " records; within 3.1%%)\n",
                        awf_logagg_percentile(a, 50), awf_logagg_percentile(a, 95),
                        awf_logagg_percentile(a, 99), t->durations);
  else if (rc == 0)
    rc = awf_buf_printf(b, "duration_ms  none recorded\n");
  const struct awf_loghost *const *h;
  size_t n = rc == 0 ? awf_logagg_top_hosts(a, &h) : 0;
  if (rc == 0 && n)
    rc = awf_buf_printf(b, "\ntop hosts\n  %12s %8s %8s %10s %10s  HOST\n", "EVENTS", "ALLOWED",
                        "DENIED", "SENT", "RECEIVED");
  for (size_t i = 0; rc == 0 && i < n && i < TOP_HOSTS; i++) {
    human_bytes(h[i]->bytes_up, up, sizeof(up));
    human_bytes(h[i]->bytes_down, down, sizeof(down));
    rc = awf_buf_printf(b, "  %12" PRIu64 " %8" PRIu64 " %8" PRIu64 " %10s %10s  ",
                        h[i]->events, h[i]->allowed, h[i]->denied, up, down);
    if (rc == 0)
      rc = awf_text_escape(b, h[i]->name, h[i]->name_len);
    if (rc == 0)
      rc = awf_buf_append(b, "\n", 1);
  }
  const struct awf_logreason *r;
  size_t nr = rc == 0 ? awf_logagg_reasons(a, &r) : 0;
  if (rc == 0 && nr)
    rc = awf_buf_printf(b, "\ndenials by reason\n");
  for (size_t i = 0; rc == 0 && i < nr; i++) {
    rc = awf_buf_printf(b, "  %12" PRIu64 "  ", r[i].count);
    if (rc == 0)
      rc = text_cstr(b, r[i].name);
    if (rc == 0)
      rc = awf_buf_append(b, "\n", 1);
  }
  return rc;
}

static int stats_json(struct awf_buf *b, awf_logagg *a, const struct awf_report_info *info) {
  const struct awf_logtotals *t = awf_logagg_totals(a);
  int rc = awf_buf_printf(b, "{");
  const struct {
    const char *k;
    uint64_t v;
  } f[] = {{"records", t->records},        {"runs", t->runs},
           {"malformed", info->malformed}, {"lost", t->lost},
           {"events", t->events},          {"allowed", t->allowed},
           {"denied", t->denied},          {"would_deny", t->would_deny},
           {"open_only", t->open_only},    {"bytes_up", t->bytes_up},
           {"bytes_down", t->bytes_down}};
  for (size_t i = 0; rc == 0 && i < sizeof(f) / sizeof(f[0]); i++)
    rc = json_key_u64(b, i ? "," : "", f[i].k, f[i].v);
  if (rc == 0 && t->durations)
    rc = awf_buf_printf(b,
                        ",\"duration_ms\":{\"count\":%" PRIu64 ",\"p50\":%" PRId64
                        ",\"p95\":%" PRId64 ",\"p99\":%" PRId64 "}",
                        t->durations, awf_logagg_percentile(a, 50),
                        awf_logagg_percentile(a, 95), awf_logagg_percentile(a, 99));
  const struct awf_loghost *const *h;
  size_t n = rc == 0 ? awf_logagg_top_hosts(a, &h) : 0;
  if (rc == 0)
    rc = awf_buf_printf(b, ",\"top_hosts\":[");
  for (size_t i = 0; rc == 0 && i < n && i < TOP_HOSTS; i++) {
    rc = awf_buf_printf(b, "%s{\"host\":", i ? "," : "");
    if (rc == 0)
      rc = awf_json_append_string(b, h[i]->name, h[i]->name_len);
    if (rc == 0)
      rc = awf_buf_printf(b,
                          ",\"events\":%" PRIu64 ",\"allowed\":%" PRIu64 ",\"denied\":%" PRIu64
                          ",\"bytes_up\":%" PRIu64 ",\"bytes_down\":%" PRIu64 "}",
                          h[i]->events, h[i]->allowed, h[i]->denied, h[i]->bytes_up,
                          h[i]->bytes_down);
  }
  const struct awf_logreason *r;
  size_t nr = rc == 0 ? awf_logagg_reasons(a, &r) : 0;
  if (rc == 0)
    rc = awf_buf_printf(b, "],\"denials_by_reason\":{");
  for (size_t i = 0; rc == 0 && i < nr; i++) {
    rc = awf_buf_printf(b, "%s", i ? "," : "");
    if (rc == 0)
      rc = awf_json_append_string(b, r[i].name, strlen(r[i].name));
    if (rc == 0)
      rc = awf_buf_printf(b, ":%" PRIu64, r[i].count);
  }
  if (rc == 0)
    rc = awf_buf_printf(b, "}}\n");
  return rc;
}

int awf_report_stats(FILE *out, awf_logagg *a, enum awf_report_format fmt,
                     const struct awf_report_info *info) {
  struct awf_buf b;
  awf_buf_init(&b, OUT_MAX);
  int rc = fmt == AWF_REPORT_JSON ? stats_json(&b, a, info) : stats_text(&b, a, info);
  return flush(out, &b, rc);
}

/* ---- show -------------------------------------------------------------------- */

/* A field escaped for the terminal, padded to width (0: no padding). */
static int field(struct awf_buf *b, const char *s, size_t n, size_t width) {
  int rc = awf_text_escape(b, s, n);
  if (rc == 0)
    rc = pad(b, text_width(s, n), width);
  return rc == 0 ? awf_buf_append(b, " ", 1) : rc;
}

static int fieldz(struct awf_buf *b, const char *s, size_t width) {
  return field(b, s ? s : "-", s ? strlen(s) : 1, width);
}

int awf_report_show(FILE *out, const struct awf_logline *l, bool color) {
  const struct awf_logev *ev = &l->ev;
  struct awf_buf b;
  awf_buf_init(&b, OUT_MAX);
  int rc = fieldz(&b, l->ts, 24);
  if (rc == 0)
    rc = fieldz(&b, ev->event, 7);
  if (rc == 0 && strcmp(ev->event, "run") == 0) {
    rc = awf_buf_printf(&b, "%-5s ", "run");
    if (rc == 0)
      rc = fieldz(&b, ev->run, 0);
    if (rc == 0 && l->version) {
      rc = awf_buf_printf(&b, "version ");
      if (rc == 0)
        rc = fieldz(&b, l->version, 0);
    }
    while (rc == 0 && b.len && b.data[b.len - 1] == ' ')
      b.len--;
    return flush(out, &b, rc == 0 ? awf_buf_append(&b, "\n", 1) : rc);
  }
  if (rc == 0 && strcmp(ev->event, "config") == 0) { /* a reload: in force, or refused */
    rc = awf_buf_printf(&b, "%-5s ", l->ok == 1 ? "ok" : "REFUSED");
    if (rc == 0)
      rc = fieldz(&b, l->ok == 1 ? l->digest : l->error, 0);
    while (rc == 0 && b.len && b.data[b.len - 1] == ' ')
      b.len--;
    return flush(out, &b, rc == 0 ? awf_buf_append(&b, "\n", 1) : rc);
  }
  const char *dec = ev->would_deny ? "AUDIT" : ev->deny ? "DENY" : "allow";
  const char *col = ev->would_deny ? "\033[33m" : ev->deny ? "\033[31m" : "\033[32m";
  if (rc == 0)
    rc = awf_buf_printf(&b, "%s%-5s%s ", color ? col : "", dec, color ? "\033[0m" : "");
  /* the destination: host:port, the address, or the socket */
  struct awf_buf d;
  awf_buf_init(&d, 4096);
  if (ev->host)
    rc = rc ? rc : awf_text_escape(&d, ev->host, ev->host_len);
  else if (ev->original_dst)
    rc = rc ? rc : text_cstr(&d, ev->original_dst);
  else if (ev->path)
    rc = rc ? rc : awf_text_escape(&d, ev->path, ev->path_len);
  if (rc == 0 && ev->host && ev->port >= 0)
    rc = awf_buf_printf(&d, ":%d", ev->port);
  if (rc == 0 && d.len == 0)
    rc = awf_buf_append(&d, "-", 1);
  if (rc == 0)
    rc = awf_buf_append(&b, d.data, d.len);
  if (rc == 0)
    rc = pad(&b, d.len, 36);
  awf_buf_free(&d);
  if (rc == 0)
    rc = awf_buf_append(&b, " ", 1);
  if (rc == 0)
    rc = fieldz(&b, ev->reason, 20);
  char num[64];
  snprintf(num, sizeof(num), "%d", l->status);
  if (rc == 0)
    rc = fieldz(&b, l->status >= 0 ? num : NULL, 3);
  if (ev->bytes_up >= 0 || ev->bytes_down >= 0)
    snprintf(num, sizeof(num), "%" PRId64 "/%" PRId64, ev->bytes_up > 0 ? ev->bytes_up : 0,
             ev->bytes_down > 0 ? ev->bytes_down : 0);
  if (rc == 0)
    rc = fieldz(&b, ev->bytes_up >= 0 || ev->bytes_down >= 0 ? num : NULL, 13);
  snprintf(num, sizeof(num), "%" PRId64 "ms", ev->duration_ms);
  if (rc == 0)
    rc = fieldz(&b, ev->duration_ms >= 0 ? num : NULL, 7);
  /* what was asked: the request, the query, the kind of connection */
  if (rc == 0 && l->method)
    rc = fieldz(&b, l->method, 0);
  if (rc == 0 && l->url)
    rc = fieldz(&b, l->url, 0);
  if (rc == 0 && l->qtype) {
    rc = fieldz(&b, l->qtype, 0);
    if (rc == 0 && l->answers >= 0)
      rc = awf_buf_printf(&b, "answers %d ", l->answers);
  }
  if (rc == 0 && l->sni && (!ev->host || strcmp(l->sni, ev->host) != 0)) {
    rc = awf_buf_printf(&b, "sni ");
    if (rc == 0)
      rc = fieldz(&b, l->sni, 0);
  }
  if (rc == 0 && l->resolved) {
    rc = awf_buf_printf(&b, "resolved ");
    if (rc == 0)
      rc = fieldz(&b, l->resolved, 0);
  }
  while (rc == 0 && b.len && b.data[b.len - 1] == ' ')
    b.len--;
  if (rc == 0)
    rc = awf_buf_append(&b, "\n", 1);
  return flush(out, &b, rc);
}
