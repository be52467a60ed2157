/* logline.c: a line of the access log into an awf_logline, with jansson
 * (one line at a time, so memory stays bounded by the longest line). */
#include "logline.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Fields read as strings; if present they must be strings. */
static const char *const string_keys[] = {"ts",       "run",          "event",    "kind",
                                          "client",   "method",       "host",     "url",
                                          "sni",      "original_dst", "decision", "reason",
                                          "upstream", "resolved",     "path",     "qname",
                                          "qtype",    "version",      "dlp",      "ports",
                                          "digest",   "error",        "file",     "warning"};
/* Fields that must be non-negative integers when present. */
static const char *const int_keys[] = {"conn",
                                       "req",
                                       "port",
                                       "status",
                                       "bytes_up",
                                       "bytes_down",
                                       "duration_ms",
                                       "answers",
                                       "lost",
                                       "allow_rules",
                                       "block_rules",
                                       "url_allow_rules",
                                       "url_block_rules",
                                       "sources",
                                       "files",
                                       "line"};

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static const char *str(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t num(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static int check(json_t *o, char *err, size_t errlen) {
  for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++) {
    json_t *v = json_object_get(o, string_keys[i]);
    if (v && !json_is_string(v))
      return BAD("\"%s\" is not a string", string_keys[i]);
  }
  for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
    json_t *v = json_object_get(o, int_keys[i]);
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
      return BAD("\"%s\" is not a non-negative integer", int_keys[i]);
  }
  json_t *w = json_object_get(o, "would_deny");
  if (w && !json_is_boolean(w))
    return BAD("\"%s\" is not a boolean", "would_deny");
  static const char *const always[] = {"run", "event"};
  for (size_t i = 0; i < 2; i++)
    if (!json_object_get(o, always[i]))
      return BAD("missing \"%s\"", always[i]);
  if (strcmp(str(o, "event"), "run") == 0)
    return 0;
  if (strcmp(str(o, "event"), "config") == 0) /* awf-proxy's reload: no decision */
    return json_is_boolean(json_object_get(o, "ok")) ? 0 : BAD("missing \"%s\"", "ok");
  if (strcmp(str(o, "event"), "log_lost") == 0) /* the writer's own: a count, no decision */
    return json_is_integer(json_object_get(o, "lost")) ? 0 : BAD("missing \"%s\"", "lost");
  if (!json_object_get(o, "conn"))
    return BAD("missing \"%s\"", "conn");
  const char *d = str(o, "decision");
  if (!d)
    return BAD("missing \"%s\"", "decision");
  if (strcmp(d, "allow") != 0 && strcmp(d, "deny") != 0)
    return BAD("\"decision\" is neither allow nor deny");
  return 0;
}

int awf_logline_parse(const char *line, size_t len, struct awf_logline *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof(*out));
  json_error_t je;
  json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
  if (!o) {
    snprintf(err, errlen, "not JSON: %s (column %d)", je.text, je.column);
    return -EINVAL;
  }
  if (!json_is_object(o)) {
    json_decref(o);
    return BAD("not a JSON object");
  }
  int rc = check(o, err, errlen);
  if (rc < 0) {
    json_decref(o);
    return rc;
  }
  struct awf_logev *ev = &out->ev;
  out->root = o;
  ev->run = str(o, "run");
  ev->event = str(o, "event");
  ev->conn = num(o, "conn") > 0 ? (uint64_t)num(o, "conn") : 0;
  ev->req = num(o, "req") > 0 ? (uint64_t)num(o, "req") : 0;
  json_t *h = json_object_get(o, "host");
  if (!h)
    h = json_object_get(o, "qname");
  if (json_is_string(h)) {
    ev->host = json_string_value(h);
    ev->host_len = json_string_length(h);
  }
  ev->original_dst = str(o, "original_dst");
  json_t *p = json_object_get(o, "path");
  if (json_is_string(p)) {
    ev->path = json_string_value(p);
    ev->path_len = json_string_length(p);
  }
  ev->port = (int)(num(o, "port") > 65535 ? 65535 : num(o, "port"));
  const char *d = str(o, "decision");
  ev->deny = d && strcmp(d, "deny") == 0;
  ev->would_deny = json_is_true(json_object_get(o, "would_deny"));
  ev->reason = str(o, "reason");
  ev->bytes_up = num(o, "bytes_up");
  ev->bytes_down = num(o, "bytes_down");
  ev->duration_ms = num(o, "duration_ms");
  ev->lost = num(o, "lost");
  out->ts = str(o, "ts");
  out->kind = str(o, "kind");
  out->client = str(o, "client");
  out->method = str(o, "method");
  out->url = str(o, "url");
  out->sni = str(o, "sni");
  out->upstream = str(o, "upstream");
  out->resolved = str(o, "resolved");
  out->qtype = str(o, "qtype");
  out->version = str(o, "version");
  out->digest = str(o, "digest");
  out->error = str(o, "error");
  json_t *okv = json_object_get(o, "ok");
  out->ok = json_is_boolean(okv) ? json_is_true(okv) : -1;
  out->status = (int)(num(o, "status") > 999 ? 999 : num(o, "status"));
  out->answers = (int)(num(o, "answers") > 65535 ? 65535 : num(o, "answers"));
  return 0;
}

void awf_logline_free(struct awf_logline *l) {
  if (l->root)
    json_decref(l->root);
  l->root = NULL;
}
