/* Unit tests for sandbox/privileges.c.
 *
 * Each case drops privileges in a forked child, which then sends back its
 * /proc/self/status (read directly, or by an exec'd cat to see what survives
 * an exec) for the parent to check. Dropping needs root: the other cases are
 * skipped with the reason when run unprivileged. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "privileges.h"
#include "sbx_child.h"

#define STATUS_MAX 16384
#define CAT "/bin/cat"

struct drop {
  uid_t uid;
  gid_t gid;
  const gid_t *groups;
  size_t ngroups;
  int exec_cat; /* report through an exec'd cat, not directly */
};

static void need_root(void) {
  if (geteuid() != 0) {
    print_message("skipped: dropping privileges needs root (run the unit tests as root, "
                  "as CI does)\n");
    skip();
  }
}

/* Child: drop, then send "OK\n" and the status file, or "FAIL <message>". */
static int child_drop_and_report(int out, const void *arg) {
  const struct drop *d = arg;
  char err[256], buf[4096];
  ssize_t n;
  int fd;

  if (awf_privileges_drop(d->uid, d->gid, d->groups, d->ngroups, err, sizeof err) != 0)
    return sbx_fail(out, "FAIL %s", err);
  if (write(out, "OK\n", 3) != 3)
    return 1;
  if (d->exec_cat) {
    if (dup2(out, 1) != 1)
      return 1;
    execl(CAT, "cat", "/proc/self/status", (char *)NULL);
    return sbx_fail(out, "FAIL exec " CAT ": errno %d", errno);
  }
  fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbx_fail(out, "FAIL open /proc/self/status: errno %d", errno);
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      return 1;
  close(fd);
  return 0;
}

/* The value of "key:\t..." in a status text, copied to val. */
static const char *field(const char *status, const char *key, char *val, size_t valsz) {
  size_t klen = strlen(key);
  const char *p = status;

  while (p != NULL && *p != '\0') {
    if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
      const char *v = p + klen + 1, *end;
      size_t len;

      v += strspn(v, "\t ");
      end = strchr(v, '\n');
      len = end != NULL ? (size_t)(end - v) : strlen(v);
      if (len >= valsz)
        len = valsz - 1;
      memcpy(val, v, len);
      val[len] = '\0';
      return val;
    }
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  fail_msg("no %s line in /proc/self/status", key);
  return NULL;
}

static void assert_field(const char *status, const char *key, const char *want) {
  char val[256];

  field(status, key, val, sizeof val);
  if (strcmp(val, want) != 0)
    fail_msg("%s: \"%s\", wanted \"%s\"", key, val, want);
}

static void assert_no_caps(const char *status) {
  static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
  size_t i;

  for (i = 0; i < sizeof sets / sizeof sets[0]; i++)
    assert_field(status, sets[i], "0000000000000000");
  assert_field(status, "NoNewPrivs", "1");
}

/* The Groups line holds exactly `want` (any order). */
static void assert_groups(const char *status, const gid_t *want, size_t nwant) {
  char val[256], *tok, *save = NULL;
  size_t seen = 0, i;

  field(status, "Groups", val, sizeof val);
  for (tok = strtok_r(val, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
    unsigned long g = strtoul(tok, NULL, 10);
    int found = 0;

    for (i = 0; i < nwant; i++)
      found |= want[i] == (gid_t)g;
    if (!found)
      fail_msg("unexpected group %lu", g);
    seen++;
  }
  assert_int_equal(seen, nwant);
}

/* Run the drop in a child; returns the status text after the "OK" line. */
static const char *run_drop(const struct drop *d, char *out, size_t outsz) {
  int st = sbx_child_run(child_drop_and_report, d, out, outsz);

  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strncmp(out, "OK\n", 3) != 0)
    fail_msg("child status %#x: %.300s", (unsigned)st, out);
  return out + 3;
}

static void assert_ids(const char *status, const char *key, unsigned id) {
  char want[64];

  snprintf(want, sizeof want, "%u\t%u\t%u\t%u", id, id, id, id);
  assert_field(status, key, want);
}

/* One drop, checked in /proc/self/status: the ids and groups asked for, no
 * capability anywhere, NoNewPrivs 1. */
static void test_drop(void **state) {
  const struct drop *d = *state;
  static char out[STATUS_MAX];
  const char *status;

  need_root();
  if (d->exec_cat && access(CAT, X_OK) != 0) {
    print_message("skipped: no " CAT "\n");
    skip();
  }
  status = run_drop(d, out, sizeof out);
  assert_no_caps(status);
  assert_ids(status, "Uid", d->uid);
  assert_ids(status, "Gid", d->gid);
  assert_groups(status, d->groups, d->ngroups);
}

static const gid_t nobody_groups[] = {65534, 4242};
static const gid_t root_groups[] = {0};

/* uid 0 keeps its ids but no capability, not even after an exec, where root
 * would normally get the whole bounding set back. */
static const struct drop drops[] = {
    {65534, 65534, nobody_groups, 2, 0},
    {65534, 65534, nobody_groups, 2, 1},
    {4243, 4244, NULL, 0, 0},
    {0, 0, root_groups, 1, 0},
    {0, 0, root_groups, 1, 1},
};

/* After a drop nothing can be taken back, and a second drop fails at its
 * first step, named in the message. */
static int child_drop_twice(int out, const void *arg) {
  char err[256];
  int rc;

  (void)arg;
  if (awf_privileges_drop(65534, 65534, nobody_groups, 2, err, sizeof err) != 0)
    return sbx_fail(out, "first drop: %s", err);
  if (setuid(0) == 0 || setresgid(0, 0, 0) == 0 || setgroups(0, NULL) == 0)
    return sbx_fail(out, "an id could be changed back");
  err[0] = '\0';
  rc = awf_privileges_drop(0, 0, NULL, 0, err, sizeof err);
  if (rc != -EPERM || strstr(err, "PR_SET_KEEPCAPS") == NULL)
    return sbx_fail(out, "second drop: %d \"%s\"", rc, err);
  return 0;
}

static void test_irreversible(void **state) {
  (void)state;
  need_root();
  sbx_expect_child_ok(child_drop_twice, NULL);
}

/* What a drop would change: ids, capabilities, no_new_privs. */
struct snapshot {
  uid_t uid, euid;
  gid_t gid, egid;
  struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
  int nnp, bound0;
};

static void take_snapshot(struct snapshot *s) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};

  memset(s, 0, sizeof *s);
  s->uid = getuid();
  s->euid = geteuid();
  s->gid = getgid();
  s->egid = getegid();
  if (capget(&hdr, s->caps) != 0)
    s->caps[0].effective = 0xdeadbeef;
  s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL);
  s->bound0 = prctl(PR_CAPBSET_READ, 0UL, 0UL, 0UL, 0UL);
}

/* Bad arguments are refused before anything changes (checked in a child all
 * the same, so a regression cannot drop the test runner's privileges).
 * Needs no root. */
static int child_bad_args(int out, const void *arg) {
  static const gid_t g[] = {1};
  struct snapshot before, after;
  char err[256];

  (void)arg;
  take_snapshot(&before);
  if (awf_privileges_drop((uid_t)-1, 1, g, 1, err, sizeof err) != -EINVAL)
    return sbx_fail(out, "uid -1 accepted");
  if (awf_privileges_drop(1, (gid_t)-1, g, 1, err, sizeof err) != -EINVAL)
    return sbx_fail(out, "gid -1 accepted");
  if (awf_privileges_drop(1, 1, NULL, 1, err, sizeof err) != -EINVAL)
    return sbx_fail(out, "NULL groups accepted");
  if (awf_privileges_drop(1, 1, g, AWF_PRIV_GROUPS_MAX + 1, err, sizeof err) != -EINVAL ||
      strstr(err, "supplementary groups") == NULL)
    return sbx_fail(out, "too many groups accepted (%s)", err);
  take_snapshot(&after);
  if (memcmp(&before, &after, sizeof before) != 0)
    return sbx_fail(out, "the process changed");
  return 0;
}

static void test_bad_arguments(void **state) {
  (void)state;
  sbx_expect_child_ok(child_bad_args, NULL);
}

/* Rootless: the groups the process has stay (setgroups is denied in its
 * user namespace), everything else is dropped as usual. */
static int child_drop_keep_groups(int out, const void *arg) {
  static const gid_t had[] = {4243, 4244};
  gid_t now[8];
  char err[256];
  int n;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

  (void)arg;
  if (setgroups(2, had) != 0)
    return sbx_fail(out, "setgroups: errno %d", errno);
  if (awf_privileges_drop_keep_groups(65534, 65534, err, sizeof err) != 0)
    return sbx_fail(out, "drop: %s", err);
  n = getgroups(8, now);
  if (n != 2 || now[0] != had[0] || now[1] != had[1])
    return sbx_fail(out, "groups changed: %d", n);
  if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534 || getegid() != 65534)
    return sbx_fail(out, "ids not dropped");
  if (capget(&hdr, caps) != 0 || caps[0].effective || caps[0].permitted || caps[1].permitted)
    return sbx_fail(out, "capabilities remain");
  if (prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) != 1 ||
      prctl(PR_CAPBSET_READ, 0UL, 0UL, 0UL, 0UL) != 0)
    return sbx_fail(out, "no_new_privs or the bounding set");
  if (setgroups(0, NULL) == 0)
    return sbx_fail(out, "the groups could still be changed");
  return 0;
}

static void test_keep_groups(void **state) {
  (void)state;
  need_root();
  sbx_expect_child_ok(child_drop_keep_groups, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      {"drop_to_nobody_with_groups", test_drop, NULL, NULL, (void *)&drops[0]},
      {"drop_to_nobody_then_exec", test_drop, NULL, NULL, (void *)&drops[1]},
      {"drop_without_supplementary_groups", test_drop, NULL, NULL, (void *)&drops[2]},
      {"root_keeps_no_caps", test_drop, NULL, NULL, (void *)&drops[3]},
      {"root_keeps_no_caps_after_exec", test_drop, NULL, NULL, (void *)&drops[4]},
      cmocka_unit_test(test_irreversible),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_keep_groups),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
