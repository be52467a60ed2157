/* Unit tests for proxy/policy/url_rules.c: the request-target normaliser and
 * the URL pattern matcher. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "url_rules.h"

static void norm_is(const char *in, const char *want) {
  char out[512];
  int n = awf_url_normalize_path(in, strlen(in), out, sizeof(out));
  if (n < 0)
    fail_msg("'%s' refused, want '%s'", in, want);
  assert_string_equal(out, want);
  assert_int_equal((size_t)n, strlen(want));
}

static void norm_refused(const char *in) {
  char out[512];
  assert_int_equal(awf_url_normalize_path(in, strlen(in), out, sizeof(out)), -EINVAL);
}

static void test_normalise(void **state) {
  (void)state;
  norm_is("", "/");
  norm_is("/", "/");
  norm_is("/ok/x", "/ok/x");
  /* RFC 3986 5.2.4's examples and traversal */
  norm_is("/a/b/c/./../../g", "/a/g");
  norm_is("/mid/content=5/../6", "/mid/6");
  norm_is("/ok/../no/x", "/no/x");
  norm_is("/ok/%2e%2e/no/x", "/no/x");
  norm_is("/ok/%2E%2E/no/x", "/no/x");
  norm_is("/ok/.%2e/no/x", "/no/x");
  norm_is("/ok/x/..", "/ok/");
  norm_is("/ok/x/.", "/ok/x/");
  norm_is("/ok/./x", "/ok/x");
  norm_is("/..", "/");
  norm_is("/../../../etc/passwd", "/etc/passwd"); /* no escape above the root */
  norm_is("/a/..", "/");
  norm_is("/a/../", "/");
  norm_is("/.", "/");
  norm_is("/..a/b", "/..a/b"); /* not a dot segment */
  norm_is("/a.../b", "/a.../b");
  /* encoded slashes and other reserved escapes stay encoded, hex upper-cased */
  norm_is("/ok/..%2fno/x", "/ok/..%2Fno/x");
  norm_is("/ok%2F..%2Fno", "/ok%2F..%2Fno");
  norm_is("/a%2F%2F..", "/a%2F%2F..");
  norm_is("/a%3fb", "/a%3Fb");
  norm_is("/a%25b", "/a%25b");
  norm_is("/%41%7e%2D%5f", "/A~-_");
  /* case: the path keeps it */
  norm_is("/OK/X", "/OK/X");
  /* empty segments merged */
  norm_is("//ok//x", "/ok/x");
  norm_is("/ok//x/./y", "/ok/x/y");
  /* refused */
  norm_refused("/a//../b"); /* resolved differently by servers that merge slashes */
  norm_refused("/%");
  norm_refused("/%2");
  norm_refused("/%zz");
  norm_refused("/a b");
  norm_refused("/a#b");
  norm_refused("/\x80");
  norm_refused("x");
  norm_refused("/a?b"); /* the caller splits off the query */
  char small[4];
  assert_int_equal(awf_url_normalize_path("/abc", 4, small, sizeof(small)), -EINVAL);
}

static awf_url_rules *rules(const char *allow, const char *block) {
  awf_url_rules *r = awf_url_rules_new();
  char err[256];
  assert_non_null(r);
  if (allow && awf_url_rules_add_list(r, AWF_URL_ALLOW, allow, err, sizeof(err)) < 0)
    fail_msg("allow '%s': %s", allow, err);
  if (block && awf_url_rules_add_list(r, AWF_URL_BLOCK, block, err, sizeof(err)) < 0)
    fail_msg("block '%s': %s", block, err);
  return r;
}

static enum awf_url_verdict check(const awf_url_rules *r, const char *host, const char *method,
                                  const char *target) {
  return awf_url_rules_check(r, AWF_URL_HTTP, host, strlen(host), method, target,
                             strlen(target));
}

static void test_traversal(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://allowed.test/ok/*", NULL);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/no/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/../no/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/%2e%2e/no/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/%2E%2e/no/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/x/../y"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/.."), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/%6fk/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", ""), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/a//../ok/x"), AWF_URL_BAD_TARGET);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/%zz"), AWF_URL_BAD_TARGET);
  /* "..%2F" is a plain segment to RFC 3986 but a dot segment to a server
   * that decodes %2F first: every reading must be admitted */
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/..%2Fno"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/a%2Fb"), AWF_URL_ALLOWED);
  /* a host without URL rules is not judged by them, even a bad target */
  assert_int_equal(check(r, "other.test", "GET", "/no/x"), AWF_URL_NO_RULE);
  assert_int_equal(check(r, "other.test", "GET", "/a//../b"), AWF_URL_NO_RULE);
  awf_url_rules_free(r);
}

static void test_encoded_slash(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://a.test/x/y", "http://a.test/p/q");
  assert_int_equal(check(r, "a.test", "GET", "/x/y"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/x%2Fy"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/x%2fy"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/p/q"), AWF_URL_BLOCKED);
  assert_int_equal(check(r, "a.test", "GET", "/p/./q"), AWF_URL_BLOCKED);
  assert_int_equal(check(r, "a.test", "GET", "//p//q"), AWF_URL_BLOCKED);
  awf_url_rules_free(r);
  /* an encoded slash in the pattern matches only the encoded form, and a
   * request with one is also read as "/x/y": both readings need a rule */
  r = rules("http://a.test/x%2fy", NULL);
  assert_int_equal(check(r, "a.test", "GET", "/x%2Fy"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/x/y"), AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
  r = rules("http://a.test/x%2fy http://a.test/x/y", NULL);
  assert_int_equal(check(r, "a.test", "GET", "/x%2Fy"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/x/y"), AWF_URL_ALLOWED);
  awf_url_rules_free(r);
}

static void reading_is(const char *in, enum awf_url_reading k, const char *want) {
  char out[512];
  int n = awf_url_normalize_path_as(in, strlen(in), k, out, sizeof(out));
  if (n < 0)
    fail_msg("'%s' reading %d refused, want '%s'", in, (int)k, want);
  if (strcmp(out, want))
    fail_msg("'%s' reading %d: '%s', want '%s'", in, (int)k, out, want);
  assert_int_equal((size_t)n, strlen(want));
}

static void test_readings(void **state) {
  (void)state;
  /* the RFC reading is awf_url_normalize_path */
  reading_is("/ok/..%2fno/x", AWF_URL_READ_RFC, "/ok/..%2Fno/x");
  reading_is("/ok/..;/no/x", AWF_URL_READ_RFC, "/ok/..;/no/x");
  reading_is("/ok/..\\no/x", AWF_URL_READ_RFC, "/ok/..\\no/x");
  /* %2F, %5C, '\' as '/', before the dot segments */
  reading_is("/ok/..%2fno/x", AWF_URL_READ_SLASH, "/no/x");
  reading_is("/ok/..%5Cno/x", AWF_URL_READ_SLASH, "/no/x");
  reading_is("/ok/..\\no/x", AWF_URL_READ_SLASH, "/no/x");
  reading_is("/ok/%2e%2e%2fno/x", AWF_URL_READ_SLASH, "/no/x");
  reading_is("/ok/..;/no/x", AWF_URL_READ_SLASH, "/ok/..;/no/x");
  reading_is("/ok/a%252Fb", AWF_URL_READ_SLASH, "/ok/a%252Fb"); /* decoded once only */
  reading_is("/api/v4/projects/group%2Fproject", AWF_URL_READ_SLASH,
             "/api/v4/projects/group/project");
  /* ";params" dropped per segment */
  reading_is("/ok/..;/no/x", AWF_URL_READ_PARAMS, "/no/x");
  reading_is("/ok/..;a=b/no/x", AWF_URL_READ_PARAMS, "/no/x");
  reading_is("/ok/%2e%2e;x/no/x", AWF_URL_READ_PARAMS, "/no/x");
  reading_is("/ok/x;jsessionid=1", AWF_URL_READ_PARAMS, "/ok/x");
  reading_is("/ok;a/x;b", AWF_URL_READ_PARAMS, "/ok/x");
  reading_is("/ok/..%2Fno;x", AWF_URL_READ_PARAMS, "/ok/..%2Fno");
  /* both, in either order: the param ends at the first '/' of its reading */
  reading_is("/ok/..;x%2Fno", AWF_URL_READ_SLASH_PARAMS, "/no");
  reading_is("/ok/..;x%2Fno", AWF_URL_READ_PARAMS_SLASH, "/");
  reading_is("/ok/x;%2F../../no/x", AWF_URL_READ_SLASH_PARAMS, "/no/x");
  reading_is("/ok/x;%2F../../no/x", AWF_URL_READ_PARAMS_SLASH, "/ok/no/x");
  reading_is("/ok/x;%2F../../no/x", AWF_URL_READ_RFC, "/ok/no/x");
  /* a reading that is ambiguous is refused like the RFC one */
  char out[64];
  assert_int_equal(awf_url_normalize_path_as("/a%2F%2F../b", 12, AWF_URL_READ_SLASH, out,
                                             sizeof(out)),
                   -EINVAL);
  assert_int_equal(awf_url_normalize_path_as("/a/;x/../b", 10, AWF_URL_READ_PARAMS, out,
                                             sizeof(out)),
                   -EINVAL);
  assert_int_equal(awf_url_normalize_path_as("/a", 2, AWF_URL_READINGS, out, sizeof(out)),
                   -EINVAL);
}

static void all_are(const awf_url_rules *r, const char *host, enum awf_url_verdict want,
                    const char *const *paths, size_t n) {
  for (size_t i = 0; i < n; i++) {
    enum awf_url_verdict v = check(r, host, "GET", paths[i]);
    if (v != want)
      fail_msg("%s '%s': verdict %d, want %d", host, paths[i], (int)v, (int)want);
  }
}

static void test_readings_judged(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://a.test/ok/*",
                           "http://a.test/ok/secret/*, http://b.test/no/*");
  /* allow side: every reading must stay under /ok/ */
  static const char *const escapes[] = {"/ok/..%2Fno/x",      "/ok/..%2fno/x",
                                        "/ok/..%5Cno/x",      "/ok/..\\no/x",
                                        "/ok/..;/no/x",       "/ok/..;x=1/no/x",
                                        "/ok/%2e%2e%2Fno/x",  "/ok/..;x%2Fno",
                                        "/ok/x;%2F../../no/x"};
  all_are(r, "a.test", AWF_URL_NOT_ALLOWED, escapes, sizeof(escapes) / sizeof(escapes[0]));
  static const char *const fine[] = {"/ok/x", "/ok/x;v=1", "/ok/a\\b", "/ok/a%5Cb"};
  all_are(r, "a.test", AWF_URL_ALLOWED, fine, sizeof(fine) / sizeof(fine[0]));
  /* block side: a block rule matching any reading blocks */
  static const char *const blocked_a[] = {"/ok/secret%2Fk", "/ok/secret%5Ck", "/ok/secret\\k",
                                          "/ok/secret;x/k", "/ok/x/..;/secret/k"};
  all_are(r, "a.test", AWF_URL_BLOCKED, blocked_a, sizeof(blocked_a) / sizeof(blocked_a[0]));
  static const char *const blocked_b[] = {"/x/..%2Fno/y", "/x/..;/no/y", "/x/..\\no/y"};
  all_are(r, "b.test", AWF_URL_BLOCKED, blocked_b, sizeof(blocked_b) / sizeof(blocked_b[0]));
  assert_int_equal(check(r, "b.test", "GET", "/x/no/y"), AWF_URL_NO_RULE);
  /* a reading that is ambiguous makes the target bad */
  assert_int_equal(check(r, "a.test", "GET", "/ok/a%2F%2F../b"), AWF_URL_BAD_TARGET);
  /* the query is never read for params or slashes */
  assert_int_equal(check(r, "a.test", "GET", "/ok/x?a=..;/..%2F..%2Fno"), AWF_URL_ALLOWED);
  awf_url_rules_free(r);

  /* GitLab-style encoded project path: judged as "group%2Fproject" and as
   * "group/project"; a rule with '*' for the slash covers both */
  r = rules("http://gl.test/api/v4/projects/group*project/*", NULL);
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group%2Fproject/issues"),
                   AWF_URL_ALLOWED);
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group/project/issues"),
                   AWF_URL_ALLOWED);
  assert_int_equal(check(r, "gl.test", "GET",
                         "/api/v4/projects/group%2F..%2Fother%2Fproject/x"),
                   AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
  /* the encoded form alone does not admit it: its other reading is not ruled */
  r = rules("http://gl.test/api/v4/projects/group%2Fproject", NULL);
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group%2Fproject"),
                   AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
  /* and a block rule on either form blocks it */
  r = rules("http://gl.test/*", "http://gl.test/api/v4/projects/group/project");
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group%2Fproject"),
                   AWF_URL_BLOCKED);
  awf_url_rules_free(r);
  r = rules("http://gl.test/*", "http://gl.test/api/v4/projects/group%2Fproject");
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group%2Fproject"),
                   AWF_URL_BLOCKED);
  assert_int_equal(check(r, "gl.test", "GET", "/api/v4/projects/group/project"),
                   AWF_URL_ALLOWED);
  awf_url_rules_free(r);
}

static void test_case(void **state) {
  (void)state;
  awf_url_rules *r = rules("HTTP://Allowed.TEST/Ok/*", NULL);
  assert_int_equal(check(r, "allowed.test", "GET", "/Ok/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/ok/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "allowed.test", "GET", "/OK/x"), AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
}

static void test_methods(void **state) {
  (void)state;
  awf_url_rules *r = rules("GET,HEAD http://a.test/*, POST http://a.test/upload", NULL);
  assert_int_equal(check(r, "a.test", "GET", "/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "HEAD", "/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "POST", "/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "POST", "/upload"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "PUT", "/upload"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GE", "/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "ET", "/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "", "/x"), AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
  /* a method block rule: DELETE refused, the rest allowed */
  r = rules("http://a.test/*", "DELETE http://a.test/*");
  assert_int_equal(check(r, "a.test", "DELETE", "/x"), AWF_URL_BLOCKED);
  assert_int_equal(check(r, "a.test", "GET", "/x"), AWF_URL_ALLOWED);
  awf_url_rules_free(r);
}

static void test_wildcards(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://*.a.test/repos/org/*, http://api-*.b.test/, "
                           "http://c.test/*/raw/*.txt",
                           NULL);
  assert_int_equal(check(r, "x.a.test", "GET", "/repos/org/r"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "x.a.test", "GET", "/repos/other/r"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "x.y.a.test", "GET", "/repos/org/r"), AWF_URL_NO_RULE);
  assert_int_equal(check(r, "a.test", "GET", "/repos/org/r"), AWF_URL_NO_RULE);
  assert_int_equal(check(r, "api-1.b.test", "GET", "/"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "api-.b.test", "GET", "/"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "api-1.b.test", "GET", "/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "web.b.test", "GET", "/"), AWF_URL_NO_RULE);
  assert_int_equal(check(r, "c.test", "GET", "/u/v/raw/w/x.txt"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "c.test", "GET", "/u/raw/x.txt.gz"), AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
  /* no path: the whole host */
  r = rules("http://d.test", NULL);
  assert_int_equal(check(r, "d.test", "GET", "/any/thing"), AWF_URL_ALLOWED);
  awf_url_rules_free(r);
}

static void test_query(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://a.test/ok/*, http://a.test/search?q=*", NULL);
  /* without '?' in the rule, the query is not judged */
  assert_int_equal(check(r, "a.test", "GET", "/ok/x?a=/../../no"), AWF_URL_ALLOWED);
  /* the query never changes the path */
  assert_int_equal(check(r, "a.test", "GET", "/no?/ok/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/search?q=cats"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/search?x=1"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/search"), AWF_URL_NOT_ALLOWED);
  awf_url_rules_free(r);
}

static void test_block_wins(void **state) {
  (void)state;
  awf_url_rules *r = rules("http://a.test/*", "http://a.test/admin/*, http://*.test/secret");
  assert_int_equal(check(r, "a.test", "GET", "/x"), AWF_URL_ALLOWED);
  assert_int_equal(check(r, "a.test", "GET", "/admin/x"), AWF_URL_BLOCKED);
  assert_int_equal(check(r, "a.test", "GET", "/x/../admin/x"), AWF_URL_BLOCKED);
  assert_int_equal(check(r, "a.test", "GET", "/%61dmin/x"), AWF_URL_BLOCKED);
  /* a block rule alone does not make a host URL-ruled */
  assert_int_equal(check(r, "b.test", "GET", "/x"), AWF_URL_NO_RULE);
  assert_int_equal(check(r, "b.test", "GET", "/secret"), AWF_URL_BLOCKED);
  /* https rules do not judge http requests */
  assert_int_equal(awf_url_rules_check(r, AWF_URL_HTTPS, "a.test", 6, "GET", "/admin/x", 8),
                   AWF_URL_NO_RULE);
  assert_true(awf_url_rules_has_scheme(r, AWF_URL_HTTP));
  assert_false(awf_url_rules_has_scheme(r, AWF_URL_HTTPS));
  assert_int_equal(awf_url_rules_count(r, AWF_URL_ALLOW), 1);
  assert_int_equal(awf_url_rules_count(r, AWF_URL_BLOCK), 2);
  awf_url_rules_free(r);
  assert_int_equal(awf_url_rules_check(NULL, AWF_URL_HTTP, "a", 1, "GET", "/", 1),
                   AWF_URL_NO_RULE);
}

static void refused(const char *list, const char *want) {
  awf_url_rules *r = awf_url_rules_new();
  char err[256] = "";
  assert_int_equal(awf_url_rules_add_list(r, AWF_URL_ALLOW, list, err, sizeof(err)), -EINVAL);
  if (!strstr(err, want))
    fail_msg("'%s': message '%s' lacks '%s'", list, err, want);
  assert_int_equal(awf_url_rules_count(r, AWF_URL_ALLOW), 0);
  awf_url_rules_free(r);
}

static void test_validation(void **state) {
  (void)state;
  refused("github.com/org/*", "'github.com/org/*': a URL rule starts with http://");
  refused("ftp://a.test/x", "'ftp://a.test/x': a URL rule starts with http://");
  refused("http://a.test:8080/x", "a port is not allowed");
  refused("http://u@a.test/x", "user information");
  refused("http://[::1]/x", "IPv6");
  refused("http:///x", "the host is empty");
  refused("http://a..test/x", "not a valid host name");
  refused("http://a.test./x", "not a valid host name");
  refused("http://a b.test/x", "'b.test/x': a URL rule starts");
  refused("http://a.test/x/../y", "'http://a.test/x/../y': '.', '..' and empty");
  refused("http://a.test/x/./y", "'.', '..'");
  refused("http://a.test//y", "empty ('//')");
  refused("http://a.test/%2e%2e/y", "'.', '..'");
  refused("http://a.test/%zz", "bad percent-escape");
  refused("http://a.test/a#b", "'http://a.test/a#b': bad percent-escape, '#'");
  refused("http://a.test#b", "the path must start");
  refused("get http://a.test/", "'get': a URL rule starts");
  refused("GET", "'GET': a method list must be followed by a URL");
  refused("GET,,HEAD http://a.test/", "'GET,,HEAD http://a.test/': the method list");
  refused("", "the list is empty");
  refused(" , ", "the list is empty");
  /* the single-entry form checks the method list */
  awf_url_rules *r = awf_url_rules_new();
  char err[256];
  const char *e = "GET,,HEAD http://a.test/";
  assert_int_equal(awf_url_rules_add(r, AWF_URL_ALLOW, e, strlen(e), err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "method list"));
  e = "GET http://a.test/ x";
  assert_int_equal(awf_url_rules_add(r, AWF_URL_ALLOW, e, strlen(e), err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "white space inside"));
  /* files: one entry per line, comments, the line named */
  const char *text = "# rules\nhttp://a.test/ok/*  # ok\n\nGET,HEAD http://b.test/x,y\n";
  assert_int_equal(awf_url_rules_add_text(r, AWF_URL_ALLOW, text, strlen(text), "f.txt", err,
                                          sizeof(err)),
                   0);
  assert_int_equal(awf_url_rules_count(r, AWF_URL_ALLOW), 2);
  assert_int_equal(check(r, "b.test", "GET", "/x,y"), AWF_URL_ALLOWED);
  text = "http://a.test/\nhttps://b.test:1/\n";
  assert_int_equal(awf_url_rules_add_text(r, AWF_URL_ALLOW, text, strlen(text), "f.txt", err,
                                          sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "f.txt:2: 'https://b.test:1/': a port"));
  assert_string_equal(awf_url_rules_first(r, AWF_URL_HTTP), "http://a.test/ok/*");
  awf_url_rules_free(r);
}

/* The hosts interception opens: those some https rule (either list) names. */
static void test_hosts(void **state) {
  (void)state;
  awf_url_rules *r = awf_url_rules_new();
  char err[256];
  assert_int_equal(awf_url_rules_add_list(r, AWF_URL_ALLOW,
                                          "https://a.test/x/*, http://p.test/*, "
                                          "https://api-*.b.test/*",
                                          err, sizeof(err)),
                   0);
  assert_int_equal(awf_url_rules_add_list(r, AWF_URL_BLOCK, "https://c.test/secret", err,
                                          sizeof(err)),
                   0);
  assert_true(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "a.test", 6));
  assert_true(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "c.test", 6));
  assert_true(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "api-1.b.test", 12));
  assert_false(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "b.test", 6));
  assert_false(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "x.a.test", 8));
  assert_false(awf_url_rules_covers_host(r, AWF_URL_HTTPS, "p.test", 6));
  assert_true(awf_url_rules_covers_host(r, AWF_URL_HTTP, "p.test", 6));
  assert_false(awf_url_rules_covers_host(NULL, AWF_URL_HTTPS, "a.test", 6));
  const char *h[2];
  assert_int_equal(awf_url_rules_hosts(r, AWF_URL_HTTPS, h, 2), 3);
  assert_string_equal(h[0], "a.test");
  assert_string_equal(h[1], "api-*.b.test");
  awf_url_rules_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalise),       cmocka_unit_test(test_traversal),
      cmocka_unit_test(test_encoded_slash),   cmocka_unit_test(test_case),
      cmocka_unit_test(test_methods),         cmocka_unit_test(test_wildcards),
      cmocka_unit_test(test_query),           cmocka_unit_test(test_block_wins),
      cmocka_unit_test(test_validation),      cmocka_unit_test(test_readings),
      cmocka_unit_test(test_readings_judged), cmocka_unit_test(test_hosts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
