/* Unit tests for sandbox/envpolicy.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envpolicy.h"

static char err[512];

static awf_env *build_ok(const struct awf_env_spec *spec) {
  awf_env *e = NULL;
  int rc = awf_env_build(spec, &e, err, sizeof err);

  if (rc != 0)
    fail_msg("awf_env_build: %d %s", rc, err);
  assert_non_null(e);
  return e;
}

static int build_rc(const struct awf_env_spec *spec) {
  awf_env *e = (awf_env *)1;
  int rc;

  err[0] = '\0';
  rc = awf_env_build(spec, &e, err, sizeof err);
  assert_true(rc < 0);
  assert_null(e);
  return rc;
}

static awf_env *with_file(const char *text, size_t len, const char *const *host) {
  struct awf_env_file f = {"vars.env", text, len};
  struct awf_env_spec spec = {.host = host, .files = &f, .nfiles = 1};

  return build_ok(&spec);
}

static int file_rc(const char *text, size_t len) {
  struct awf_env_file f = {"vars.env", text, len};
  struct awf_env_spec spec = {.files = &f, .nfiles = 1};

  return build_rc(&spec);
}

#define FILE_OK(s) with_file((s), sizeof(s) - 1, NULL)
#define FILE_RC(s) file_rc((s), sizeof(s) - 1)

/* ---- basics ---- */

static void test_empty(void **state) {
  struct awf_env_spec spec = {0};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_int_equal(awf_env_count(e), 0);
  assert_null(awf_env_envp(e)[0]);
  assert_null(awf_env_get(e, "PATH"));
  awf_env_free(e);
  awf_env_free(NULL);
}

static void test_own_sorted_and_lookup(void **state) {
  const char *own[] = {"ZED=1", "PATH=/usr/bin", "HOME=/home/u", "A=", "AB=x=y", NULL};
  struct awf_env_spec spec = {.own = own};
  awf_env *e = build_ok(&spec);
  char *const *envp = awf_env_envp(e);

  (void)state;
  assert_int_equal(awf_env_count(e), 5);
  assert_string_equal(envp[0], "A=");
  assert_string_equal(envp[1], "AB=x=y");
  assert_string_equal(envp[2], "HOME=/home/u");
  assert_string_equal(envp[3], "PATH=/usr/bin");
  assert_string_equal(envp[4], "ZED=1");
  assert_null(envp[5]);
  assert_string_equal(awf_env_get(e, "AB"), "x=y");
  assert_string_equal(awf_env_get(e, "A"), "");
  assert_string_equal(awf_env_get(e, "ZED"), "1");
  assert_null(awf_env_get(e, "Z"));
  assert_null(awf_env_get(e, "ZEDD"));
  assert_null(awf_env_get(e, "B"));
  awf_env_free(e);
}

static void test_own_invalid(void **state) {
  const char *noeq[] = {"PATH", NULL};
  const char *badname[] = {"1X=2", NULL};
  struct awf_env_spec spec = {.own = noeq};

  (void)state;
  assert_int_equal(build_rc(&spec), -EINVAL);
  assert_non_null(strstr(err, "PATH"));
  spec.own = badname;
  assert_int_equal(build_rc(&spec), -EINVAL);
  assert_non_null(strstr(err, "invalid variable name \"1X\""));
}

/* ---- precedence ---- */

static void test_precedence(void **state) {
  const char *own[] = {"V=own", "O=own", "F=own", "C=own", NULL};
  const char *host[] = {"V=host", "O=host", "F=host", "C=host", "HOSTONLY=1", NULL};
  const char text[] = "V=file\nF=file\n";
  struct awf_env_file f = {"f.env", text, sizeof text - 1};
  const char *cli[] = {"V=cli", "C=cli", NULL};
  struct awf_env_spec spec = {own, host, 1, &f, 1, cli, NULL, NULL, NULL, NULL, NULL, 0};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "V"), "cli");
  assert_string_equal(awf_env_get(e, "C"), "cli");
  assert_string_equal(awf_env_get(e, "F"), "file");
  assert_string_equal(awf_env_get(e, "O"), "host");
  assert_string_equal(awf_env_get(e, "HOSTONLY"), "1");
  assert_int_equal(awf_env_count(e), 5);
  awf_env_free(e);

  /* Without --env-all the host does not override awf's own. */
  spec.env_all = 0;
  e = build_ok(&spec);
  assert_string_equal(awf_env_get(e, "O"), "own");
  assert_null(awf_env_get(e, "HOSTONLY"));
  awf_env_free(e);
}

static void test_later_wins_within_layers(void **state) {
  const char *own[] = {"X=1", "X=2", NULL};
  const char a[] = "Y=a1\nY=a2\nZ=a\n", b[] = "Z=b\n";
  struct awf_env_file f[2] = {{"a", a, sizeof a - 1}, {"b", b, sizeof b - 1}};
  const char *cli[] = {"W=1", "W=2", NULL};
  struct awf_env_spec spec = {.own = own, .files = f, .nfiles = 2, .cli = cli};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "X"), "2");
  assert_string_equal(awf_env_get(e, "Y"), "a2");
  assert_string_equal(awf_env_get(e, "Z"), "b");
  assert_string_equal(awf_env_get(e, "W"), "2");
  assert_int_equal(awf_env_count(e), 4);
  awf_env_free(e);
}

/* The trust layer (--ssl-bump) overrides what --env-all copied from the host
 * and awf's own, but not an env file or -e; appended values go after the
 * final value of their name, or stand alone. */
static void test_trust_and_append_layers(void **state) {
  const char *own[] = {"O=own", NULL};
  const char *host[] = {"SSL_CERT_FILE=/host.pem", "F=host", "C=host",
                        "JAVA_TOOL_OPTIONS=-Xmx1g", NULL};
  const char text[] = "F=file\n";
  struct awf_env_file f = {"f.env", text, sizeof text - 1};
  const char *cli[] = {"C=cli", NULL};
  const char *trust[] = {"SSL_CERT_FILE=/awf.pem", "O=trust", "F=trust", "C=trust", NULL};
  const char *append[] = {"JAVA_TOOL_OPTIONS=-Dts=x", "NEW=alone", NULL};
  struct awf_env_spec spec = {.own = own,
                              .host = host,
                              .env_all = 1,
                              .files = &f,
                              .nfiles = 1,
                              .cli = cli,
                              .trust = trust,
                              .append = append};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "SSL_CERT_FILE"), "/awf.pem");
  assert_string_equal(awf_env_get(e, "O"), "trust");
  assert_string_equal(awf_env_get(e, "F"), "file");
  assert_string_equal(awf_env_get(e, "C"), "cli");
  assert_string_equal(awf_env_get(e, "JAVA_TOOL_OPTIONS"), "-Xmx1g -Dts=x");
  assert_string_equal(awf_env_get(e, "NEW"), "alone");
  assert_int_equal(awf_env_count(e), 6);
  awf_env_free(e);

  /* -e wins over the host's, and the appended value follows it. */
  const char *cli2[] = {"JAVA_TOOL_OPTIONS=-Dmine=1", NULL};
  spec.cli = cli2;
  e = build_ok(&spec);
  assert_string_equal(awf_env_get(e, "JAVA_TOOL_OPTIONS"), "-Dmine=1 -Dts=x");
  awf_env_free(e);

  /* Without --env-all nothing of the host's: the appended value alone. */
  spec.env_all = 0;
  e = build_ok(&spec);
  assert_string_equal(awf_env_get(e, "JAVA_TOOL_OPTIONS"), "-Dmine=1 -Dts=x");
  spec.cli = NULL;
  awf_env_free(e);
  e = build_ok(&spec);
  assert_string_equal(awf_env_get(e, "JAVA_TOOL_OPTIONS"), "-Dts=x");
  awf_env_free(e);

  const char *bad[] = {"NOEQUALS", NULL};
  spec.append = bad;
  assert_int_equal(build_rc(&spec), -EINVAL);
}

/* Duplicate names in the host environment: the first wins, as with getenv. */
static void test_host_duplicates_first_wins(void **state) {
  const char *host[] = {"D=first", "D=second", NULL};
  struct awf_env_spec spec = {.host = host, .env_all = 1};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "D"), "first");
  assert_int_equal(awf_env_count(e), 1);
  awf_env_free(e);
}

/* ---- --env-all filtering ---- */

static void test_env_all_reserved(void **state) {
  const char *host[] = {
      "PATH=BAD",
      "HOME=BAD",
      "USER=BAD",
      "LOGNAME=BAD",
      "PWD=BAD",
      "OLDPWD=BAD",
      "SHLVL=BAD",
      "_=BAD",
      "SUDO_USER=BAD",
      "SUDO_UID=BAD",
      "SUDO_COMMAND=BAD",
      "http_proxy=BAD",
      "HTTPS_PROXY=BAD",
      "no_proxy=BAD",
      "NO_PROXY=BAD",
      "ALL_PROXY=BAD",
      "all_proxy=BAD",
      "ftp_proxy=BAD",
      "Http_Proxy=BAD",
      "socks_proxy=BAD",
      "npm_config_https_proxy=BAD",
      "GRPC_PROXY=BAD",
      /* Near misses that do pass. */
      "PROXY=1",
      "MYPROXY=1",
      "PROXY_URL=1",
      "SUDO=1",
      "SUDOKU=1",
      "sudo_x=1",
      "path=1",
      "HOME2=1",
      "USERNAME=1",
      "__=1",
      "PWD_=1",
      NULL,
  };
  const char *own[] = {"PATH=/usr/bin",
                       "HOME=/home/u",
                       "USER=u",
                       "LOGNAME=u",
                       "HTTP_PROXY=http://127.0.0.1:3128",
                       NULL};
  struct awf_env_spec spec = {.own = own, .host = host, .env_all = 1};
  awf_env *e = build_ok(&spec);
  char *const *p;

  (void)state;
  assert_string_equal(awf_env_get(e, "PATH"), "/usr/bin");
  assert_string_equal(awf_env_get(e, "HOME"), "/home/u");
  assert_string_equal(awf_env_get(e, "USER"), "u");
  assert_string_equal(awf_env_get(e, "LOGNAME"), "u");
  assert_string_equal(awf_env_get(e, "HTTP_PROXY"), "http://127.0.0.1:3128");
  for (p = awf_env_envp(e); *p != NULL; p++)
    assert_null(strstr(*p, "BAD"));
  assert_null(awf_env_get(e, "PWD"));
  assert_null(awf_env_get(e, "OLDPWD"));
  assert_null(awf_env_get(e, "SHLVL"));
  assert_null(awf_env_get(e, "_"));
  assert_null(awf_env_get(e, "SUDO_USER"));
  assert_string_equal(awf_env_get(e, "PROXY"), "1");
  assert_string_equal(awf_env_get(e, "MYPROXY"), "1");
  assert_string_equal(awf_env_get(e, "PROXY_URL"), "1");
  assert_string_equal(awf_env_get(e, "SUDO"), "1");
  assert_string_equal(awf_env_get(e, "SUDOKU"), "1");
  assert_string_equal(awf_env_get(e, "sudo_x"), "1");
  assert_string_equal(awf_env_get(e, "path"), "1");
  assert_string_equal(awf_env_get(e, "HOME2"), "1");
  assert_string_equal(awf_env_get(e, "USERNAME"), "1");
  assert_string_equal(awf_env_get(e, "__"), "1");
  assert_string_equal(awf_env_get(e, "PWD_"), "1");
  assert_int_equal(awf_env_count(e), 5 + 11);
  awf_env_free(e);
}

static void test_reserved_predicate(void **state) {
  (void)state;
  assert_true(awf_env_name_reserved("_", 1));
  assert_true(awf_env_name_reserved("SUDO_", 5));
  assert_true(awf_env_name_reserved("_proxy", 6));
  assert_true(awf_env_name_reserved("X_PrOxY", 7));
  assert_false(awf_env_name_reserved("proxy", 5));
  assert_false(awf_env_name_reserved("SUDO", 4));
  assert_false(awf_env_name_reserved("PATHX", 5));
  assert_false(awf_env_name_reserved("PAT", 3));
  /* The length, not the NUL, delimits the name. */
  assert_true(awf_env_name_reserved("PATH=x", 4));
}

static void test_env_all_value_limit(void **state) {
  size_t lim = AWF_ENV_INHERIT_VALUE_MAX;
  char *ok = malloc(lim + 8), *big = malloc(lim + 9);
  const char *host[3];
  struct awf_env_spec spec = {.host = host, .env_all = 1};
  awf_env *e;

  (void)state;
  assert_non_null(ok);
  assert_non_null(big);
  memcpy(ok, "OK=", 3);
  memset(ok + 3, 'v', lim);
  ok[3 + lim] = '\0';
  memcpy(big, "BIG=", 4);
  memset(big + 4, 'v', lim + 1);
  big[4 + lim + 1] = '\0';
  host[0] = ok;
  host[1] = big;
  host[2] = NULL;
  e = build_ok(&spec);
  assert_int_equal(strlen(awf_env_get(e, "OK")), lim);
  assert_null(awf_env_get(e, "BIG"));
  awf_env_free(e);

  /* -e may still pass it explicitly, from the host. */
  {
    const char *cli[] = {"BIG", NULL};

    spec.cli = cli;
    e = build_ok(&spec);
    assert_int_equal(strlen(awf_env_get(e, "BIG")), lim + 1);
    awf_env_free(e);
  }
  free(ok);
  free(big);
}

static void test_env_all_skips_invalid_host_entries(void **state) {
  const char *host[] = {"BASH_FUNC_f%%=() { id; }",
                        "1ABC=x",
                        "=nameless",
                        "NOEQUALS",
                        "A-B=x",
                        "A B=x",
                        "\x1b[2J=x",
                        "GOOD=yes",
                        "",
                        NULL};
  struct awf_env_spec spec = {.host = host, .env_all = 1};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_int_equal(awf_env_count(e), 1);
  assert_string_equal(awf_env_envp(e)[0], "GOOD=yes");
  awf_env_free(e);
}

/* ---- toolchain pass-through ---- */

static void test_toolchain_passthrough(void **state) {
  const char *host[] = {"GOROOT=/opt/go",      "JAVA_HOME=/opt/jdk",
                        "DOTNET_ROOT=/opt/dn", "CARGO_HOME=/c",
                        "BUN_INSTALL=/b",      "SECRET=s",
                        "GOPATH=/gp",          NULL};
  const char *own[] = {"GOROOT=/own", NULL};
  struct awf_env_spec spec = {.own = own, .host = host};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_int_equal(awf_env_count(e), 5);
  assert_string_equal(awf_env_get(e, "GOROOT"), "/opt/go");
  assert_string_equal(awf_env_get(e, "JAVA_HOME"), "/opt/jdk");
  assert_string_equal(awf_env_get(e, "DOTNET_ROOT"), "/opt/dn");
  assert_string_equal(awf_env_get(e, "CARGO_HOME"), "/c");
  assert_string_equal(awf_env_get(e, "BUN_INSTALL"), "/b");
  assert_null(awf_env_get(e, "SECRET"));
  assert_null(awf_env_get(e, "GOPATH"));
  awf_env_free(e);
}

/* ---- --exclude-env ---- */

static void test_exclude(void **state) {
  const char *host[] = {"SECRET=s", "GOROOT=/go", "KEEP=k", "FROMFILE=h", NULL};
  const char text[] = "FROMFILE=file\n";
  struct awf_env_file f = {"f", text, sizeof text - 1};
  const char *cli[] = {"CLI=c", NULL};
  const char *exclude[] = {"SECRET", "GOROOT", "FROMFILE", "CLI", "NOTSET", NULL};
  struct awf_env_spec spec = {NULL, host, 1, &f, 1, cli, exclude, NULL, NULL, NULL, NULL, 0};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_null(awf_env_get(e, "SECRET"));
  assert_null(awf_env_get(e, "GOROOT"));
  assert_string_equal(awf_env_get(e, "KEEP"), "k");
  /* Explicit layers win over the exclusion. */
  assert_string_equal(awf_env_get(e, "FROMFILE"), "file");
  assert_string_equal(awf_env_get(e, "CLI"), "c");
  assert_int_equal(awf_env_count(e), 3);
  awf_env_free(e);
}

/* ---- forced entries and replacements (awf --secret) ---- */

static void test_forced_and_replaced(void **state) {
  const char *host[] = {"KEY=realvalue123", "COPY=x-realvalue123-y", "OTHER=o", NULL};
  const char text[] = "KEY=fromfile\nURL=https://u:realvalue123@h/\n";
  struct awf_env_file f = {"f", text, sizeof text - 1};
  const char *cli[] = {"KEY=fromcli", NULL};
  const char *forced[] = {"KEY=AWFPHplaceh", NULL};
  struct awf_env_replace rep = {"realvalue123", "AWFPHplaceh1", 12};
  struct awf_env_spec spec = {.host = host,
                              .env_all = 1,
                              .files = &f,
                              .nfiles = 1,
                              .cli = cli,
                              .forced = forced,
                              .replace = &rep,
                              .nreplace = 1};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "KEY"), "AWFPHplaceh"); /* over -e and the file */
  assert_string_equal(awf_env_get(e, "COPY"), "x-AWFPHplaceh1-y");
  assert_string_equal(awf_env_get(e, "URL"), "https://u:AWFPHplaceh1@h/");
  assert_string_equal(awf_env_get(e, "OTHER"), "o");
  for (char *const *p = awf_env_envp(e); *p; p++)
    assert_null(strstr(*p, "realvalue123"));
  awf_env_free(e);
}

static void test_exclude_invalid_name(void **state) {
  const char *exclude[] = {"OK", "BAD-NAME", NULL};
  struct awf_env_spec spec = {.exclude = exclude};

  (void)state;
  assert_int_equal(build_rc(&spec), -EINVAL);
  assert_string_equal(err, "--exclude-env \"BAD-NAME\": invalid variable name");
}

/* ---- -e ---- */

static void test_cli_forms(void **state) {
  const char *host[] = {"TOKEN=t0k", "PATH=/host/bin", NULL};
  const char *cli[] = {"A=b=c",   "EMPTY=", "SPACES= a b ",         "TOKEN",
                       "MISSING", "PATH",   "HTTPS_PROXY=http://x", "SUDO_USER=me",
                       NULL};
  const char *own[] = {"PATH=/usr/bin", NULL};
  struct awf_env_spec spec = {.own = own, .host = host, .cli = cli};
  awf_env *e = build_ok(&spec);

  (void)state;
  assert_string_equal(awf_env_get(e, "A"), "b=c");
  assert_string_equal(awf_env_get(e, "EMPTY"), "");
  assert_string_equal(awf_env_get(e, "SPACES"), " a b ");
  assert_string_equal(awf_env_get(e, "TOKEN"), "t0k");
  assert_null(awf_env_get(e, "MISSING"));
  assert_string_equal(awf_env_get(e, "PATH"), "/host/bin");
  assert_string_equal(awf_env_get(e, "HTTPS_PROXY"), "http://x");
  assert_string_equal(awf_env_get(e, "SUDO_USER"), "me");
  assert_int_equal(awf_env_count(e), 7);
  awf_env_free(e);
}

static void test_cli_errors(void **state) {
  const char *cases[] = {"=x", "1A=x", "A B=x", "", "A-B", "\x1b]0;pwn\a=x"};
  size_t i;

  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *cli[] = {"OK=1", cases[i], NULL};
    struct awf_env_spec spec = {.cli = cli};

    assert_int_equal(build_rc(&spec), -EINVAL);
    assert_non_null(strstr(err, "-e \""));
    assert_non_null(strstr(err, "invalid variable name"));
    /* Terminal escapes never reach the message raw. */
    assert_null(strchr(err, '\x1b'));
    assert_null(strchr(err, '\a'));
  }
}

static void test_entry_size_limit(void **state) {
  size_t vmax = AWF_ENV_ENTRY_MAX - 2; /* "V=" + value */
  char *arg = malloc(vmax + 8);
  const char *cli[] = {arg, NULL};
  struct awf_env_spec spec = {.cli = cli};
  awf_env *e;

  (void)state;
  assert_non_null(arg);
  memcpy(arg, "V=", 2);
  memset(arg + 2, 'x', vmax);
  arg[2 + vmax] = '\0';
  e = build_ok(&spec);
  assert_int_equal(strlen(awf_env_get(e, "V")), vmax);
  awf_env_free(e);
  arg[2 + vmax] = 'x';
  arg[3 + vmax] = '\0';
  assert_int_equal(build_rc(&spec), -E2BIG);
  assert_non_null(strstr(err, "longer than"));
  free(arg);
}

static void test_total_limits(void **state) {
  size_t n = AWF_ENV_MAX_VARS + 1, i, off = 0;
  char *text = malloc(n * 16);
  awf_env *e;

  (void)state;
  assert_non_null(text);
  for (i = 0; i < n - 1; i++)
    off += (size_t)sprintf(text + off, "V%zu=1\n", i);
  e = with_file(text, off, NULL);
  assert_int_equal(awf_env_count(e), AWF_ENV_MAX_VARS);
  awf_env_free(e);
  off += (size_t)sprintf(text + off, "V%zu=1\n", i);
  assert_int_equal(file_rc(text, off), -E2BIG);
  assert_non_null(strstr(err, "environment too large"));
  /* Redefinitions do not count twice. */
  off = 0;
  for (i = 0; i < n * 2; i++)
    off += (size_t)sprintf(text + off, "V=%zu\n", i % 10);
  e = with_file(text, off, NULL);
  assert_int_equal(awf_env_count(e), 1);
  awf_env_free(e);
  free(text);

  /* Bytes: 9 values of 120000 bytes exceed 1 MiB. */
  text = malloc(9 * 120010);
  assert_non_null(text);
  off = 0;
  for (i = 0; i < 9; i++) {
    off += (size_t)sprintf(text + off, "B%zu=", i);
    memset(text + off, 'b', 120000);
    off += 120000;
    text[off++] = '\n';
  }
  assert_int_equal(file_rc(text, off), -E2BIG);
  e = with_file(text, off - 2 * 120004, NULL);
  assert_int_equal(awf_env_count(e), 7);
  awf_env_free(e);
  free(text);
}

/* ---- env files ---- */

static void test_file_syntax(void **state) {
  awf_env *e = FILE_OK("# comment\n"
                       "\n"
                       "   \t\n"
                       "  # indented comment\n"
                       "PLAIN=value\n"
                       "SPACES=  with  spaces  \n"
                       "EQUALS=a=b==c\n"
                       "HASH=not # a comment\n"
                       "  INDENTED=yes\n"
                       "export EXPORTED=1\n"
                       "export\t \tTABBED=2\n"
                       "exportNAME=3\n"
                       "export=4\n"
                       "DQ=\"quoted value\"\n"
                       "SQ='single $HOME'\n"
                       "MIXED=\"it's\"\n"
                       "EMPTYQ=\"\"\n"
                       "EMPTY=\n"
                       "INNER=a\"b'c\n"
                       "CRLF=dos\r\n"
                       "LAST=no newline");

  (void)state;
  assert_string_equal(awf_env_get(e, "PLAIN"), "value");
  assert_string_equal(awf_env_get(e, "SPACES"), "  with  spaces  ");
  assert_string_equal(awf_env_get(e, "EQUALS"), "a=b==c");
  assert_string_equal(awf_env_get(e, "HASH"), "not # a comment");
  assert_string_equal(awf_env_get(e, "INDENTED"), "yes");
  assert_string_equal(awf_env_get(e, "EXPORTED"), "1");
  assert_string_equal(awf_env_get(e, "TABBED"), "2");
  assert_string_equal(awf_env_get(e, "exportNAME"), "3");
  assert_string_equal(awf_env_get(e, "export"), "4");
  assert_string_equal(awf_env_get(e, "DQ"), "quoted value");
  assert_string_equal(awf_env_get(e, "SQ"), "single $HOME");
  assert_string_equal(awf_env_get(e, "MIXED"), "it's");
  assert_string_equal(awf_env_get(e, "EMPTYQ"), "");
  assert_string_equal(awf_env_get(e, "EMPTY"), "");
  assert_string_equal(awf_env_get(e, "INNER"), "a\"b'c");
  assert_string_equal(awf_env_get(e, "CRLF"), "dos");
  assert_string_equal(awf_env_get(e, "LAST"), "no newline");
  assert_int_equal(awf_env_count(e), 17);
  awf_env_free(e);
}

static void test_file_empty_and_blank(void **state) {
  awf_env *e = FILE_OK("");

  (void)state;
  assert_int_equal(awf_env_count(e), 0);
  awf_env_free(e);
  e = FILE_OK("\n\n\r\n#\n");
  assert_int_equal(awf_env_count(e), 0);
  awf_env_free(e);
}

static void test_file_errors_name_line(void **state) {
  (void)state;
  assert_int_equal(FILE_RC("A=1\n# c\nJUSTNAME\n"), -EINVAL);
  assert_string_equal(err, "vars.env:3: expected NAME=VALUE, got \"JUSTNAME\"");
  assert_int_equal(FILE_RC("A=1\nexport\n"), -EINVAL);
  assert_non_null(strstr(err, "vars.env:2: expected NAME=VALUE"));
  assert_int_equal(FILE_RC("BAD NAME=1\n"), -EINVAL);
  assert_string_equal(err, "vars.env:1: invalid variable name \"BAD NAME\"");
  assert_int_equal(FILE_RC("A =1\n"), -EINVAL);
  assert_int_equal(FILE_RC("=1\n"), -EINVAL);
  assert_int_equal(FILE_RC("9X=1\n"), -EINVAL);
  assert_int_equal(FILE_RC("\n\nQ=\"open\n"), -EINVAL);
  assert_non_null(strstr(err, "vars.env:3: a quoted value"));
  assert_int_equal(FILE_RC("Q=\"\n"), -EINVAL);
  assert_int_equal(FILE_RC("Q='a'b'\n"), -EINVAL);
  assert_int_equal(FILE_RC("Q=\"a\" \n"), -EINVAL);
  assert_int_equal(FILE_RC("Q=\"a\"\"b\"\n"), -EINVAL);
  assert_int_equal(FILE_RC("Q='x\"\n"), -EINVAL);
}

static void test_file_nul(void **state) {
  (void)state;
  assert_int_equal(FILE_RC("A=1\nB=x\0y\nC=3\n"), -EINVAL);
  assert_string_equal(err, "vars.env:2: NUL byte in line");
  /* A NUL in a comment is still refused: the file is not text. */
  assert_int_equal(FILE_RC("#\0\n"), -EINVAL);
}

static void test_file_hostile_bytes_in_message(void **state) {
  struct awf_env_file f = {"evil\x1b[2J.env", "\x1b]0;x\a\n", 6};
  struct awf_env_spec spec = {.files = &f, .nfiles = 1};

  (void)state;
  assert_int_equal(build_rc(&spec), -EINVAL);
  assert_null(strchr(err, '\x1b'));
  assert_null(strchr(err, '\a'));
  assert_non_null(strstr(err, "evil\\x1b[2J.env:1:"));
}

static void test_file_huge_line(void **state) {
  size_t n = 4u << 20, i;
  char *text = malloc(n + 16);

  (void)state;
  assert_non_null(text);
  memcpy(text, "HUGE=", 5);
  for (i = 5; i < n; i++)
    text[i] = (char)('a' + i % 26);
  assert_int_equal(file_rc(text, n), -E2BIG);
  assert_non_null(strstr(err, "vars.env:1: HUGE is longer than"));
  /* A huge comment is fine. */
  text[0] = '#';
  {
    awf_env *e = with_file(text, n, NULL);

    assert_int_equal(awf_env_count(e), 0);
    awf_env_free(e);
  }
  free(text);
}

static void test_file_without_path_and_data(void **state) {
  struct awf_env_file f = {NULL, "X", 1};
  struct awf_env_file none = {"n", NULL, 0};
  struct awf_env_spec spec = {.files = &f, .nfiles = 1};
  awf_env *e;

  (void)state;
  assert_int_equal(build_rc(&spec), -EINVAL);
  assert_non_null(strstr(err, "env file:1:"));
  spec.files = &none;
  e = build_ok(&spec);
  assert_int_equal(awf_env_count(e), 0);
  awf_env_free(e);
}

/* ---- determinism ---- */

static void test_deterministic_order(void **state) {
  const char *h1[] = {"B=2", "A=1", "C=3", "AA=4", "A_=5", "a=6", NULL};
  const char *h2[] = {"a=6", "A_=5", "AA=4", "C=3", "A=1", "B=2", NULL};
  struct awf_env_spec s1 = {.host = h1, .env_all = 1}, s2 = {.host = h2, .env_all = 1};
  awf_env *e1 = build_ok(&s1), *e2 = build_ok(&s2);
  char *const *p1 = awf_env_envp(e1), *const *p2 = awf_env_envp(e2);
  size_t i;

  (void)state;
  assert_int_equal(awf_env_count(e1), 6);
  for (i = 0; i < 6; i++)
    assert_string_equal(p1[i], p2[i]);
  assert_string_equal(p1[0], "A=1");
  assert_string_equal(p1[1], "AA=4");
  assert_string_equal(p1[2], "A_=5");
  assert_string_equal(p1[5], "a=6");
  for (i = 0; i < 6; i++) {
    const char *eq = strchr(p1[i], '=');
    char name[8];

    memcpy(name, p1[i], (size_t)(eq - p1[i]));
    name[eq - p1[i]] = '\0';
    assert_string_equal(awf_env_get(e1, name), eq + 1);
  }
  awf_env_free(e1);
  awf_env_free(e2);
}

static void test_name_valid(void **state) {
  char longname[AWF_ENV_NAME_MAX + 1];

  (void)state;
  assert_true(awf_env_name_valid("_", 1));
  assert_true(awf_env_name_valid("a1_B", 4));
  assert_false(awf_env_name_valid("", 0));
  assert_false(awf_env_name_valid("1a", 2));
  assert_false(awf_env_name_valid("a.b", 3));
  assert_false(awf_env_name_valid("\xc3\xa9", 2));
  assert_false(awf_env_name_valid("a\0b", 3));
  memset(longname, 'N', sizeof longname);
  assert_true(awf_env_name_valid(longname, AWF_ENV_NAME_MAX));
  assert_false(awf_env_name_valid(longname, AWF_ENV_NAME_MAX + 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_own_sorted_and_lookup),
      cmocka_unit_test(test_own_invalid),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_later_wins_within_layers),
      cmocka_unit_test(test_trust_and_append_layers),
      cmocka_unit_test(test_host_duplicates_first_wins),
      cmocka_unit_test(test_env_all_reserved),
      cmocka_unit_test(test_reserved_predicate),
      cmocka_unit_test(test_env_all_value_limit),
      cmocka_unit_test(test_env_all_skips_invalid_host_entries),
      cmocka_unit_test(test_toolchain_passthrough),
      cmocka_unit_test(test_exclude),
      cmocka_unit_test(test_exclude_invalid_name),
      cmocka_unit_test(test_cli_forms),
      cmocka_unit_test(test_cli_errors),
      cmocka_unit_test(test_entry_size_limit),
      cmocka_unit_test(test_total_limits),
      cmocka_unit_test(test_file_syntax),
      cmocka_unit_test(test_file_empty_and_blank),
      cmocka_unit_test(test_file_errors_name_line),
      cmocka_unit_test(test_file_nul),
      cmocka_unit_test(test_file_hostile_bytes_in_message),
      cmocka_unit_test(test_file_huge_line),
      cmocka_unit_test(test_file_without_path_and_data),
      cmocka_unit_test(test_deterministic_order),
      cmocka_unit_test(test_name_valid),
      cmocka_unit_test(test_forced_and_replaced),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
