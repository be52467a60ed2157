/* fuzz_http_target.c: libFuzzer target for the request-target parser
 * (proxy/http_target.c). The input is a request target; it is parsed both as
 * an absolute URI and as a CONNECT authority. Checks:
 * - an accepted target has a host that is what the ACL will judge: non-empty,
 *   lower-case [a-z0-9._-] bytes found in the input (or a canonical IPv6
 *   address that was bracketed), a port 1..65535, a path that is the tail of
 *   the input and starts with '/' or '?', userinfo reported exactly when an
 *   '@' precedes the host; no control byte, space or '#' was accepted;
 * - the parsed pieces, written back out, parse to the same pieces (so the
 *   request the proxy forwards names the host it judged);
 * - whatever the authority parser accepts, "http://" + it is accepted as an
 *   absolute URI with the same host and port.
 */
#include "fuzz_check.h"
#include "http_target.h"

#include <arpa/inet.h>

#define REBUILT_MAX 1024

static bool host_byte_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool has_byte(const uint8_t *p, size_t n, uint8_t b) { return n && memchr(p, b, n); }

/* Case-insensitive search: the host is a lower-cased copy of input bytes. */
static bool found_ci(const uint8_t *in, size_t len, const char *s, size_t n) {
  for (size_t i = 0; i + n <= len; i++) {
    size_t k = 0;
    while (k < n) {
      uint8_t b = in[i + k];
      if ((b >= 'A' && b <= 'Z' ? b + 32 : b) != (uint8_t)s[k])
        break;
      k++;
    }
    if (k == n)
      return true;
  }
  return false;
}

static void check_host(const struct awf_http_target *t, const uint8_t *in, size_t len) {
  FUZZ_CHECK(t->host_len >= 1 && t->host_len < sizeof(t->host));
  FUZZ_CHECK(t->host[t->host_len] == '\0' && strlen(t->host) == t->host_len);
  FUZZ_CHECK(t->port >= 1);
  for (size_t i = 0; i < len; i++)
    FUZZ_CHECK(in[i] > 0x20 && in[i] != 0x7f);
  if (t->host_is_ipv6) {
    struct in6_addr a;
    char canon[INET6_ADDRSTRLEN];
    FUZZ_CHECK(inet_pton(AF_INET6, t->host, &a) == 1);
    FUZZ_CHECK(inet_ntop(AF_INET6, &a, canon, sizeof(canon)) != NULL);
    FUZZ_CHECK(strcmp(canon, t->host) == 0);
    FUZZ_CHECK(has_byte(in, len, '[') && has_byte(in, len, ']'));
  } else {
    FUZZ_CHECK(t->host_len <= 254);
    for (size_t i = 0; i < t->host_len; i++)
      FUZZ_CHECK(host_byte_ok(t->host[i]));
    FUZZ_CHECK(found_ci(in, len, t->host, t->host_len));
  }
}

static size_t write_authority(const struct awf_http_target *t, char *out, size_t outsz) {
  int n = t->host_is_ipv6 ? snprintf(out, outsz, "[%s]:%u", t->host, (unsigned)t->port)
                          : snprintf(out, outsz, "%s:%u", t->host, (unsigned)t->port);
  FUZZ_CHECK(n > 0 && (size_t)n < outsz);
  return (size_t)n;
}

static bool same_host_port(const struct awf_http_target *a, const struct awf_http_target *b) {
  return a->host_len == b->host_len && memcmp(a->host, b->host, a->host_len) == 0 &&
         a->host_is_ipv6 == b->host_is_ipv6 && a->port == b->port;
}

static void check_absolute(const uint8_t *in, size_t len) {
  struct awf_http_target t, back;
  char *uri = (char *)fuzz_dup(in, len);
  enum awf_target_status st = awf_target_parse_absolute(uri, len, &t);
  FUZZ_CHECK(st <= AWF_TARGET_OK && st >= AWF_TARGET_BAD_SYNTAX);
  FUZZ_CHECK(strcmp(awf_target_status_name(st), "unknown") != 0);
  if (st == AWF_TARGET_OK) {
    check_host(&t, in, len);
    FUZZ_CHECK(!has_byte(in, len, '#'));
    FUZZ_CHECK(t.path != NULL && t.path_len <= len - 7);
    if (t.path_len == 0) {
      FUZZ_CHECK(strcmp(t.path, "/") == 0);
    } else {
      FUZZ_CHECK(t.path == uri + len - t.path_len);
      FUZZ_CHECK(t.path[0] == '/' || t.path[0] == '?');
    }
    /* The authority is what lies between "http://" and the path. */
    size_t auth_len = len - 7 - t.path_len;
    FUZZ_CHECK(t.had_userinfo == has_byte(in + 7, auth_len, '@'));
    FUZZ_CHECK(!has_byte(in + 7, auth_len, '/') && !has_byte(in + 7, auth_len, '?'));

    char out[REBUILT_MAX + 300];
    size_t n = (size_t)snprintf(out, sizeof(out), "http://");
    n += write_authority(&t, out + n, sizeof(out) - n);
    if (t.path_len > 0 && t.path_len < REBUILT_MAX) {
      memcpy(out + n, t.path, t.path_len);
      n += t.path_len;
    }
    FUZZ_CHECK(awf_target_parse_absolute(out, n, &back) == AWF_TARGET_OK);
    FUZZ_CHECK(same_host_port(&t, &back) && !back.had_userinfo);
    if (t.path_len < REBUILT_MAX)
      FUZZ_CHECK(back.path_len == t.path_len && memcmp(back.path, t.path, t.path_len) == 0);
  }
  free(uri);
}

static void check_authority(const uint8_t *in, size_t len) {
  struct awf_http_target t, back;
  char *s = (char *)fuzz_dup(in, len);
  enum awf_target_status st = awf_target_parse_authority(s, len, &t);
  FUZZ_CHECK(st <= AWF_TARGET_OK && st >= AWF_TARGET_BAD_SYNTAX);
  if (st == AWF_TARGET_OK) {
    check_host(&t, in, len);
    FUZZ_CHECK(t.path == NULL && t.path_len == 0 && !t.had_userinfo);
    for (const char *p = "@/?#\\"; *p; p++)
      FUZZ_CHECK(!has_byte(in, len, (uint8_t)*p));

    char out[300];
    size_t n = write_authority(&t, out, sizeof(out));
    FUZZ_CHECK(awf_target_parse_authority(out, n, &back) == AWF_TARGET_OK);
    FUZZ_CHECK(same_host_port(&t, &back));

    /* The same authority in absolute form names the same host and port. */
    char *uri = malloc(len + 7);
    FUZZ_CHECK(uri != NULL);
    memcpy(uri, "http://", 7);
    memcpy(uri + 7, in, len);
    FUZZ_CHECK(awf_target_parse_absolute(uri, len + 7, &back) == AWF_TARGET_OK);
    FUZZ_CHECK(same_host_port(&t, &back) && back.path_len == 0);
    free(uri);
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_absolute(data, size);
  check_authority(data, size);
  return 0;
}
