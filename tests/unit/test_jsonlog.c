/* test_jsonlog.c: JSON escaping, access-log record format (the capped
 * buffer itself: test_common_buf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlog.h"

/* ---- a tiny strict reader for the flat objects the formatter emits ------ */

enum jtype { J_STR, J_NUM, J_TRUE };

struct jfield {
  char key[32];
  enum jtype type;
  char *val; /* decoded string bytes, or the number's text */
  size_t len;
};

struct jobj {
  struct jfield f[32];
  int n;
};

static void jobj_free(struct jobj *o) {
  for (int i = 0; i < o->n; i++)
    free(o->f[i].val);
  o->n = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  out[0] = (char)(0xe0 | (cp >> 12));
  out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[2] = (char)(0x80 | (cp & 0x3f));
  return 3;
}

/* Raw UTF-8 in a string must be minimal, no surrogate, <= U+10FFFF. Decoded
 * by arithmetic here, independently of the formatter's range tables. */
static size_t check_utf8(const unsigned char *s, size_t n) {
  size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
  if (len == 0 || s[0] >= 0xf8 || n < len)
    return 0;
  unsigned cp = s[0] & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Parses a JSON string at *p; returns 0 or -1. */
static int read_string(const char **p, const char *end, char **out, size_t *outlen) {
  const char *s = *p;
  if (s >= end || *s != '"')
    return -1;
  s++;
  char *buf = malloc((size_t)(end - s) * 3 + 1);
  size_t n = 0;
  while (s < end && *s != '"') {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      goto bad; /* raw control bytes must have been escaped */
    if (c >= 0x80) {
      size_t k = check_utf8((const unsigned char *)s, (size_t)(end - s));
      if (!k)
        goto bad;
      memcpy(buf + n, s, k);
      n += k;
      s += k;
      continue;
    }
    if (c != '\\') {
      buf[n++] = (char)c;
      s++;
      continue;
    }
    if (end - s < 2)
      goto bad;
    char e = s[1];
    s += 2;
    switch (e) {
    case '"': buf[n++] = '"'; break;
    case '\\': buf[n++] = '\\'; break;
    case '/': buf[n++] = '/'; break;
    case 'n': buf[n++] = '\n'; break;
    case 'r': buf[n++] = '\r'; break;
    case 't': buf[n++] = '\t'; break;
    case 'b': buf[n++] = '\b'; break;
    case 'f': buf[n++] = '\f'; break;
    case 'u': {
      if (end - s < 4)
        goto bad;
      unsigned cp = 0;
      for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
          goto bad;
        cp = cp << 4 | (unsigned)h;
      }
      if (cp >= 0xd800 && cp <= 0xdfff)
        goto bad; /* the formatter never needs surrogate pairs */
      s += 4;
      n += put_utf8(buf + n, cp);
      break;
    }
    default: goto bad;
    }
  }
  if (s >= end)
    goto bad;
  *p = s + 1;
  buf[n] = '\0';
  *out = buf;
  *outlen = n;
  return 0;
bad:
  free(buf);
  return -1;
}

/* Parses one line "{...}\n" of string, integer and true values. Returns 0 if
 * the whole input is exactly that, with exactly one '\n', at the end. */
static int parse_line(const char *line, size_t len, struct jobj *o) {
  o->n = 0;
  if (len < 3 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
    return -1;
  const char *p = line, *end = line + len - 1;
  if (*p++ != '{')
    return -1;
  while (p < end && *p != '}') {
    if (o->n > 0 && *p++ != ',')
      goto bad;
    if (o->n == 32)
      goto bad;
    struct jfield *f = &o->f[o->n];
    char *k;
    size_t klen;
    if (read_string(&p, end, &k, &klen) < 0)
      goto bad;
    if (klen >= sizeof(f->key)) {
      free(k);
      goto bad;
    }
    memcpy(f->key, k, klen + 1);
    free(k);
    if (p >= end || *p++ != ':')
      goto bad;
    if (p < end && *p == '"') {
      f->type = J_STR;
      if (read_string(&p, end, &f->val, &f->len) < 0)
        goto bad;
    } else if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0) {
      f->type = J_TRUE;
      f->val = strdup("true");
      f->len = 4;
      p += 4;
    } else {
      const char *q = p;
      while (q < end && *q >= '0' && *q <= '9')
        q++;
      if (q == p || (*p == '0' && q - p > 1))
        goto bad;
      f->type = J_NUM;
      f->len = (size_t)(q - p);
      f->val = strndup(p, f->len);
      p = q;
    }
    o->n++;
  }
  if (p + 1 != end || *p != '}')
    goto bad;
  for (int i = 0; i < o->n; i++)
    for (int j = i + 1; j < o->n; j++)
      if (!strcmp(o->f[i].key, o->f[j].key))
        goto bad;
  return 0;
bad:
  jobj_free(o);
  return -1;
}

static const struct jfield *get(const struct jobj *o, const char *key) {
  for (int i = 0; i < o->n; i++)
    if (!strcmp(o->f[i].key, key))
      return &o->f[i];
  return NULL;
}

static void assert_str_field(const struct jobj *o, const char *key, const char *v, size_t n) {
  const struct jfield *f = get(o, key);
  if (!f)
    fail_msg("missing key %s", key);
  assert_int_equal(f->type, J_STR);
  assert_int_equal(f->len, n);
  assert_memory_equal(f->val, v, n);
}

static void assert_num_field(const struct jobj *o, const char *key, const char *v) {
  const struct jfield *f = get(o, key);
  if (!f)
    fail_msg("missing key %s", key);
  assert_int_equal(f->type, J_NUM);
  assert_string_equal(f->val, v);
}

/* ---- helpers ----------------------------------------------------------- */

/* The escaped form of s[0..n), quotes stripped, NUL-terminated. */
static char *escape(const char *s, size_t n) {
  struct awf_buf b;
  awf_buf_init(&b, 1 << 20);
  assert_int_equal(awf_json_append_string(&b, s, n), 0);
  assert_true(b.len >= 2);
  assert_int_equal(b.data[0], '"');
  assert_int_equal(b.data[b.len - 1], '"');
  char *out = strndup(b.data + 1, b.len - 2);
  awf_buf_free(&b);
  return out;
}

static void assert_escapes(const char *in, size_t n, const char *want) {
  char *got = escape(in, n);
  if (strcmp(got, want) != 0) {
    char msg[512];
    snprintf(msg, sizeof(msg), "escape: want [%s] got [%s]", want, got);
    free(got);
    fail_msg("%s", msg);
  }
  free(got);
}

#define ESC(lit, want) assert_escapes(lit, sizeof(lit) - 1, want)

/* ---- buffer ------------------------------------------------------------- */

static void buf_zero_max(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 0);
  assert_int_equal(awf_buf_append(&b, "a", 1), -E2BIG);
  assert_int_equal(awf_buf_printf(&b, "%d", 1), -E2BIG);
  assert_int_equal(awf_json_append_string(&b, "", 0), -E2BIG);
  assert_int_equal(b.len, 0);
  awf_buf_free(&b);
}

/* ---- escaping ----------------------------------------------------------- */

static void escape_every_control_byte(void **state) {
  (void)state;
  static const char *want[32] = {
      "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
      "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
      "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
      "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
  };
  for (int c = 0; c < 32; c++) {
    char in[3] = {'a', (char)c, 'z'};
    char expect[16];
    snprintf(expect, sizeof(expect), "a%sz", want[c]);
    assert_escapes(in, 3, expect);
  }
  ESC("\x7f", "\\u007f");
  ESC("a\x7f"
      "b",
      "a\\u007fb");
}

static void escape_printable_ascii(void **state) {
  (void)state;
  for (int c = 0x20; c < 0x7f; c++) {
    char in[1] = {(char)c};
    char expect[3] = {(char)c, 0, 0};
    if (c == '"' || c == '\\') {
      expect[0] = '\\';
      expect[1] = (char)c;
    }
    assert_escapes(in, 1, expect);
  }
  ESC("say \"hi\" \\o/", "say \\\"hi\\\" \\\\o/");
  ESC("", "");
}

static void escape_embedded_nul(void **state) {
  (void)state;
  ESC("a\0b\0", "a\\u0000b\\u0000");
  ESC("\0", "\\u0000");
}

static void escape_valid_utf8_passes(void **state) {
  (void)state;
  ESC("caf\xc3\xa9", "caf\xc3\xa9");           /* U+00E9 */
  ESC("\xc2\x80", "\xc2\x80");                 /* U+0080, smallest 2-byte */
  ESC("\xdf\xbf", "\xdf\xbf");                 /* U+07FF */
  ESC("\xe0\xa0\x80", "\xe0\xa0\x80");         /* U+0800, smallest 3-byte */
  ESC("\xe2\x82\xac", "\xe2\x82\xac");         /* U+20AC euro */
  ESC("\xed\x9f\xbf", "\xed\x9f\xbf");         /* U+D7FF, just below surrogates */
  ESC("\xee\x80\x80", "\xee\x80\x80");         /* U+E000, just above */
  ESC("\xef\xbf\xbf", "\xef\xbf\xbf");         /* U+FFFF */
  ESC("\xf0\x90\x80\x80", "\xf0\x90\x80\x80"); /* U+10000, smallest 4-byte */
  ESC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* U+1F600 emoji */
  ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF, the last */
  ESC("\xe2\x80\xa8", "\xe2\x80\xa8");         /* U+2028 is valid JSON */
  ESC("a\xf0\x9f\x98\x80\"\xc3\xa9\n", "a\xf0\x9f\x98\x80\\\"\xc3\xa9\\n");
}

#define R "\\ufffd"

static void escape_invalid_utf8_each_byte(void **state) {
  (void)state;
  /* lone continuation bytes */
  ESC("\x80", R);
  ESC("\xbf", R);
  ESC("a\x80\x80z", "a" R R "z");
  /* leads that never start a valid sequence */
  ESC("\xc0\x80", R R);             /* overlong NUL */
  ESC("\xc1\xbf", R R);             /* overlong U+007F */
  ESC("\xf5\x80\x80\x80", R R R R); /* > U+10FFFF lead */
  ESC("\xf8\x88\x80\x80\x80", R R R R R);
  ESC("\xfe", R);
  ESC("\xff", R);
  /* overlong 3- and 4-byte forms */
  ESC("\xe0\x80\x80", R R R);
  ESC("\xe0\x9f\xbf", R R R); /* U+07FF in 3 bytes */
  ESC("\xf0\x80\x80\x80", R R R R);
  ESC("\xf0\x8f\xbf\xbf", R R R R); /* U+FFFF in 4 bytes */
  /* UTF-16 surrogates */
  ESC("\xed\xa0\x80", R R R);                   /* U+D800 */
  ESC("\xed\xbf\xbf", R R R);                   /* U+DFFF */
  ESC("\xed\xa0\xbd\xed\xb8\x80", R R R R R R); /* CESU-8 pair */
  /* past U+10FFFF */
  ESC("\xf4\x90\x80\x80", R R R R); /* U+110000 */
  ESC("\xf4\xbf\xbf\xbf", R R R R);
  /* truncated at the end of input */
  ESC("\xc3", R);
  ESC("\xe2\x82", R R);
  ESC("\xf0\x9f\x98", R R R);
  ESC("ok\xf0\x9f", "ok" R R);
  /* bad continuation in the middle: the following byte is judged anew */
  ESC("\xe2\x82"
      "A",
      R R "A");
  ESC("\xc3"
      "\"",
      R "\\\"");
  ESC("\xf0\x9f\x98"
      "\xc3\xa9",
      R R R "\xc3\xa9");
  ESC("\xe2\x28\xa1", R "(" R);
  ESC("\xc3\n", R "\\n");
}

static void escape_failure_leaves_buffer(void **state) {
  (void)state;
  const char in[] = "x\"\x01\xc3\xa9\xff\xf0\x9f\x98\x80"
                    "end";
  const size_t n = sizeof(in) - 1;
  char *full = escape(in, n);
  size_t need = strlen(full) + 2 + 3; /* quotes + the "pre" prefix */
  for (size_t max = 3; max <= need + 1; max++) {
    struct awf_buf b;
    awf_buf_init(&b, max);
    assert_int_equal(awf_buf_append(&b, "pre", 3), 0);
    int rc = awf_json_append_string(&b, in, n);
    if (max < need) {
      assert_int_equal(rc, -E2BIG);
      assert_int_equal(b.len, 3);
      assert_memory_equal(b.data, "pre", 3);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(b.len, need);
      assert_memory_equal(b.data + 4, full, strlen(full));
    }
    awf_buf_free(&b);
  }
  free(full);
}

/* ---- records ------------------------------------------------------------ */

static char *format(const struct awf_log_record *r, size_t *len) {
  struct awf_buf b;
  awf_buf_init(&b, 1 << 20);
  assert_int_equal(awf_log_format(&b, r), 0);
  char *out = malloc(b.len + 1);
  memcpy(out, b.data, b.len);
  out[b.len] = '\0';
  *len = b.len;
  awf_buf_free(&b);
  return out;
}

static const char hostile_host[] = "ev\"il\\\n\r\x01\0\x7f\xc3\xa9\xff.example";
static const char hostile_host_decoded[] = "ev\"il\\\n\r\x01\0\x7f\xc3\xa9\xef\xbf\xbd.example";

static void full_record(struct awf_log_record *r) {
  awf_log_record_init(r);
  r->ts_ms = 1795888001123ull; /* 2026-11-28T17:46:41.123Z */
  r->event = "connect";
  r->client = "[::1]:51234";
  r->method = "CONNECT";
  r->host = hostile_host;
  r->host_len = sizeof(hostile_host) - 1;
  r->port = 443;
  r->url = "http://a/\xf0\x9f\x98\x80?q=\"1\"";
  r->url_len = strlen(r->url);
  r->sni = "sni.example";
  r->sni_len = 11;
  r->ech = true;
  r->original_dst = "192.0.2.7:443";
  r->decision = AWF_ALLOW;
  r->would_deny = true;
  r->reason = AWF_REASON_NOT_ALLOWED;
  r->dlp = "github_token";
  r->status = 200;
  r->upstream = "192.0.2.7:443";
  r->bytes_up = 1234;
  r->bytes_down = INT64_MAX;
  r->duration_ms = 0;
  r->qname = "q.example";
  r->qname_len = 9;
  r->qtype = "AAAA";
  r->answers = 2;
}

static void record_all_fields_parse_back(void **state) {
  (void)state;
  struct awf_log_record r;
  full_record(&r);
  size_t len;
  char *line = format(&r, &len);
  struct jobj o;
  if (parse_line(line, len, &o) < 0)
    fail_msg("not one valid JSON line: %s", line);
  static const char *order[] = {"ts",       "event",        "client",      "method",
                                "host",     "port",         "url",         "sni",
                                "ech",      "original_dst", "decision",    "would_deny",
                                "reason",   "dlp",          "status",      "upstream",
                                "bytes_up", "bytes_down",   "duration_ms", "qname",
                                "qtype",    "answers"};
  assert_int_equal(o.n, (int)(sizeof(order) / sizeof(order[0])));
  for (int i = 0; i < o.n; i++)
    assert_string_equal(o.f[i].key, order[i]);
  assert_str_field(&o, "ts", "2026-11-28T17:46:41.123Z", 24);
  assert_str_field(&o, "event", "connect", 7);
  assert_str_field(&o, "client", "[::1]:51234", 11);
  assert_str_field(&o, "method", "CONNECT", 7);
  assert_str_field(&o, "host", hostile_host_decoded, sizeof(hostile_host_decoded) - 1);
  assert_num_field(&o, "port", "443");
  assert_str_field(&o, "url", r.url, r.url_len);
  assert_str_field(&o, "sni", "sni.example", 11);
  assert_int_equal(get(&o, "ech")->type, J_TRUE);
  assert_str_field(&o, "original_dst", "192.0.2.7:443", 13);
  assert_str_field(&o, "decision", "allow", 5);
  assert_int_equal(get(&o, "would_deny")->type, J_TRUE);
  assert_str_field(&o, "reason", "not_allowed", 11);
  assert_str_field(&o, "dlp", "github_token", 12);
  assert_num_field(&o, "status", "200");
  assert_str_field(&o, "upstream", "192.0.2.7:443", 13);
  assert_num_field(&o, "bytes_up", "1234");
  assert_num_field(&o, "bytes_down", "9223372036854775807");
  assert_num_field(&o, "duration_ms", "0");
  assert_str_field(&o, "qname", "q.example", 9);
  assert_str_field(&o, "qtype", "AAAA", 4);
  assert_num_field(&o, "answers", "2");
  /* And the literal text of a few pairs, as a log reader would grep them. */
  assert_non_null(strstr(line, "\"port\":443,"));
  assert_non_null(strstr(line, "\"ech\":true,"));
  assert_non_null(
      strstr(line,
             "\"host\":\"ev\\\"il\\\\\\n\\r\\u0001\\u0000\\u007f\xc3\xa9\\ufffd.example\""));
  jobj_free(&o);
  free(line);
}

static void record_omits_absent_fields(void **state) {
  (void)state;
  struct awf_log_record r;
  awf_log_record_init(&r);
  size_t len;
  char *line = format(&r, &len);
  assert_string_equal(line, "{\"ts\":\"1970-01-01T00:00:00.000Z\"}\n");
  free(line);

  /* Zero is a value, not "omitted"; false booleans and negatives are left out. */
  r.ts_ms = 1;
  r.event = "http";
  r.port = 0;
  r.status = 0;
  r.bytes_up = 0;
  r.bytes_down = -5;
  r.duration_ms = INT64_MIN;
  r.answers = 0;
  r.host = "";
  r.host_len = 0;
  line = format(&r, &len);
  assert_string_equal(line,
                      "{\"ts\":\"1970-01-01T00:00:00.001Z\",\"event\":\"http\",\"host\":\"\","
                      "\"port\":0,\"status\":0,\"bytes_up\":0,\"answers\":0}\n");
  free(line);
}

static void record_typical_http(void **state) {
  (void)state;
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.ts_ms = 1795888001123ull;
  r.event = "http";
  r.client = "127.0.0.1:40000";
  r.method = "GET";
  r.host = "example.com";
  r.host_len = 11;
  r.port = 80;
  r.url = "http://example.com/";
  r.url_len = strlen(r.url);
  r.decision = AWF_ALLOW;
  r.reason = AWF_REASON_ALLOWED;
  r.status = 200;
  r.upstream = "93.184.215.14:80";
  r.bytes_up = 78;
  r.bytes_down = 1591;
  r.duration_ms = 41;
  size_t len;
  char *line = format(&r, &len);
  assert_string_equal(
      line, "{\"ts\":\"2026-11-28T17:46:41.123Z\",\"event\":\"http\","
            "\"client\":\"127.0.0.1:40000\",\"method\":\"GET\",\"host\":\"example.com\","
            "\"port\":80,\"url\":\"http://example.com/\",\"decision\":\"allow\","
            "\"reason\":\"allowed\",\"status\":200,\"upstream\":\"93.184.215.14:80\","
            "\"bytes_up\":78,\"bytes_down\":1591,\"duration_ms\":41}\n");
  free(line);
}

/* open/run records: ids, kind, version and argv in their places. */
static void record_ids_and_run_fields(void **state) {
  (void)state;
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.ts_ms = 1000;
  r.run = "0123456789abcdef";
  r.event = "open";
  r.conn = 18446744073709551615ull;
  r.req = 2;
  r.kind = "http";
  r.client = "127.0.0.1:1";
  size_t len;
  char *line = format(&r, &len);
  assert_string_equal(line, "{\"ts\":\"1970-01-01T00:00:01.000Z\",\"run\":\"0123456789abcdef\","
                            "\"event\":\"open\",\"conn\":18446744073709551615,\"req\":2,"
                            "\"kind\":\"http\",\"client\":\"127.0.0.1:1\"}\n");
  free(line);
  const char *argv[] = {"sh", "-c", "echo \"hi\"\n", ""};
  awf_log_record_init(&r);
  r.ts_ms = 1000;
  r.event = "run";
  r.version = "1.2.3";
  r.argv = argv;
  r.argc = 4;
  line = format(&r, &len);
  assert_string_equal(
      line, "{\"ts\":\"1970-01-01T00:00:01.000Z\",\"event\":\"run\","
            "\"version\":\"1.2.3\",\"argv\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\\n\",\"\"]}\n");
  free(line);
  r.argc = 0; /* an empty command line is an empty array; conn 0 is left out */
  line = format(&r, &len);
  assert_non_null(strstr(line, "\"argv\":[]}"));
  assert_null(strstr(line, "conn"));
  free(line);
  uint64_t a = awf_log_next_conn(), b = awf_log_next_conn();
  assert_true(a > 0 && b > a);
}

/* A config event (a reload), accepted and refused. */
static void record_config(void **state) {
  (void)state;
  struct awf_log_record r;
  struct awf_log_config c = {.ok = true,
                             .allow_rules = 3,
                             .block_rules = 0,
                             .url_allow_rules = -1,
                             .url_block_rules = -1,
                             .ports = "80,443",
                             .sources = 2,
                             .files = 1,
                             .digest = "sha256:00ff",
                             .line = -1};
  awf_log_record_init(&r);
  r.ts_ms = 1000;
  r.event = "config";
  r.config = &c;
  size_t len;
  char *line = format(&r, &len);
  assert_string_equal(line,
                      "{\"ts\":\"1970-01-01T00:00:01.000Z\",\"event\":\"config\","
                      "\"ok\":true,\"allow_rules\":3,\"block_rules\":0,\"ports\":"
                      "\"80,443\",\"sources\":2,\"files\":1,\"digest\":\"sha256:00ff\"}\n");
  free(line);
  c = (struct awf_log_config){.ok = false,
                              .allow_rules = -1,
                              .block_rules = -1,
                              .url_allow_rules = -1,
                              .url_block_rules = -1,
                              .sources = -1,
                              .files = -1,
                              .error = "--ruleset-file: r.yml:2:3: bad \"x\"",
                              .file = "r.yml",
                              .line = 2,
                              .warning = "w"};
  line = format(&r, &len);
  assert_string_equal(line,
                      "{\"ts\":\"1970-01-01T00:00:01.000Z\",\"event\":\"config\","
                      "\"ok\":false,\"error\":\"--ruleset-file: r.yml:2:3: bad \\\"x\\\"\","
                      "\"file\":\"r.yml\",\"line\":2,\"warning\":\"w\"}\n");
  free(line);
}

static void record_timestamps(void **state) {
  (void)state;
  static const struct {
    uint64_t ms;
    const char *want;
  } cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {999, "1970-01-01T00:00:00.999Z"},
      {1000, "1970-01-01T00:00:01.000Z"},
      {951782400000ull, "2000-02-29T00:00:00.000Z"},
      {1709251199999ull, "2024-02-29T23:59:59.999Z"},
      {1795888001123ull, "2026-11-28T17:46:41.123Z"},
      {4102444800000ull, "2100-01-01T00:00:00.000Z"},
      {253402300799999ull, "9999-12-31T23:59:59.999Z"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct awf_log_record r;
    awf_log_record_init(&r);
    r.ts_ms = cases[i].ms;
    size_t len;
    char *line = format(&r, &len);
    char want[64];
    snprintf(want, sizeof(want), "{\"ts\":\"%s\"}\n", cases[i].want);
    assert_string_equal(line, want);
    free(line);
  }
}

static void record_ts_out_of_range(void **state) {
  (void)state;
  struct awf_log_record r;
  awf_log_record_init(&r);
  struct awf_buf b;
  awf_buf_init(&b, 4096);
  assert_int_equal(awf_buf_append(&b, "keep", 4), 0);
  r.ts_ms = 253402300800000ull; /* 10000-01-01 */
  assert_int_equal(awf_log_format(&b, &r), -EINVAL);
  r.ts_ms = UINT64_MAX;
  assert_int_equal(awf_log_format(&b, &r), -EINVAL);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "keep", 4);
  awf_buf_free(&b);
}

static void record_cap_all_or_nothing(void **state) {
  (void)state;
  struct awf_log_record r;
  full_record(&r);
  size_t full_len;
  char *full = format(&r, &full_len);
  const size_t prefix = 6;
  for (size_t max = prefix; max <= prefix + full_len + 2; max++) {
    struct awf_buf b;
    awf_buf_init(&b, max);
    assert_int_equal(awf_buf_append(&b, "line1\n", prefix), 0);
    int rc = awf_log_format(&b, &r);
    if (max < prefix + full_len) {
      assert_int_equal(rc, -E2BIG);
      assert_int_equal(b.len, prefix);
      assert_memory_equal(b.data, "line1\n", prefix);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(b.len, prefix + full_len);
      assert_memory_equal(b.data + prefix, full, full_len);
    }
    awf_buf_free(&b);
  }
  free(full);
}

static void record_long_url_truncated(void **state) {
  (void)state;
  size_t n = 3 * AWF_LOG_URL_MAX;
  char *url = malloc(n);
  memset(url, 'u', n);
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.url = url;
  r.reason = AWF_REASON_ALLOWED;

  /* At the cap: kept whole, no flag. */
  r.url_len = AWF_LOG_URL_MAX;
  size_t len;
  char *line = format(&r, &len);
  struct jobj o;
  assert_int_equal(parse_line(line, len, &o), 0);
  assert_int_equal(get(&o, "url")->len, AWF_LOG_URL_MAX);
  assert_null(get(&o, "url_truncated"));
  jobj_free(&o);
  free(line);

  /* One byte over: cut to the cap and flagged, right after url. */
  r.url_len = AWF_LOG_URL_MAX + 1;
  line = format(&r, &len);
  assert_int_equal(parse_line(line, len, &o), 0);
  assert_str_field(&o, "url", url, AWF_LOG_URL_MAX);
  assert_string_equal(o.f[1].key, "url");
  assert_string_equal(o.f[2].key, "url_truncated");
  assert_int_equal(o.f[2].type, J_TRUE);
  assert_str_field(&o, "reason", "allowed", 7);
  jobj_free(&o);
  free(line);

  /* An emoji straddling the cap is dropped whole, not turned into U+FFFD. */
  memcpy(url + AWF_LOG_URL_MAX - 2, "\xf0\x9f\x98\x80", 4);
  r.url_len = n;
  line = format(&r, &len);
  assert_null(strstr(line, "\\ufffd"));
  assert_int_equal(parse_line(line, len, &o), 0);
  assert_str_field(&o, "url", url, AWF_LOG_URL_MAX - 2);
  assert_int_equal(get(&o, "url_truncated")->type, J_TRUE);
  jobj_free(&o);
  free(line);

  /* Even a URL of escapes-only fits a 64 KiB line once cut. */
  memset(url, '\x01', n);
  struct awf_buf b;
  awf_buf_init(&b, 64 * 1024);
  assert_int_equal(awf_log_format(&b, &r), 0);
  awf_buf_free(&b);
  free(url);
}

static void record_never_contains_raw_newline(void **state) {
  (void)state;
  /* Every byte value in every free-form field: still one line, valid JSON. */
  char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (char)i;
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.host = all;
  r.host_len = sizeof(all);
  r.url = all;
  r.url_len = sizeof(all);
  r.sni = all;
  r.sni_len = sizeof(all);
  r.qname = all;
  r.qname_len = sizeof(all);
  r.client = "\n\r";
  size_t len;
  char *line = format(&r, &len);
  struct jobj o;
  if (parse_line(line, len, &o) < 0)
    fail_msg("invalid line: %s", line);
  /* 0x00-0x7f round-trip exactly; each of 0x80-0xff alone is invalid. */
  const struct jfield *h = get(&o, "host");
  assert_int_equal(h->len, 128 + 128 * 3);
  assert_memory_equal(h->val, all, 128);
  for (int i = 0; i < 128; i++)
    assert_memory_equal(h->val + 128 + i * 3, "\xef\xbf\xbd", 3);
  jobj_free(&o);
  free(line);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buf_zero_max),
      cmocka_unit_test(escape_every_control_byte),
      cmocka_unit_test(escape_printable_ascii),
      cmocka_unit_test(escape_embedded_nul),
      cmocka_unit_test(escape_valid_utf8_passes),
      cmocka_unit_test(escape_invalid_utf8_each_byte),
      cmocka_unit_test(escape_failure_leaves_buffer),
      cmocka_unit_test(record_all_fields_parse_back),
      cmocka_unit_test(record_omits_absent_fields),
      cmocka_unit_test(record_typical_http),
      cmocka_unit_test(record_ids_and_run_fields),
      cmocka_unit_test(record_timestamps),
      cmocka_unit_test(record_ts_out_of_range),
      cmocka_unit_test(record_cap_all_or_nothing),
      cmocka_unit_test(record_long_url_truncated),
      cmocka_unit_test(record_never_contains_raw_newline),
      cmocka_unit_test(record_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
