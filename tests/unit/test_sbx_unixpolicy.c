/* Unit tests for sandbox/unixpolicy.c: the address a command passes to
 * connect(), the sock_diag dump that names the sandbox's own sockets, and
 * the allowed set. The dump test asks the kernel about a socket this test
 * binds, so the encoding of the device number is checked against stat(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "unixpolicy.h"

static size_t sun_len(const char *path) {
  return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void test_pathname_is_copied(void **state) {
  (void)state;
  struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/tmp/tmux-1000/default"};
  char path[sizeof(a.sun_path) + 1];
  assert_int_equal(awf_unix_addr_classify(&a, sun_len(a.sun_path), path, sizeof(path)),
                   AWF_UNIX_ADDR_PATHNAME);
  assert_string_equal(path, "/tmp/tmux-1000/default");
  /* without the NUL: the kernel reads up to the end of the address */
  assert_int_equal(awf_unix_addr_classify(&a, sun_len(a.sun_path) - 5, path, sizeof(path)),
                   AWF_UNIX_ADDR_PATHNAME);
  assert_string_equal(path, "/tmp/tmux-1000/def");
  /* relative names are names too */
  strcpy(a.sun_path, "sock");
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(a), path, sizeof(path)),
                   AWF_UNIX_ADDR_PATHNAME);
  assert_string_equal(path, "sock");
}

static void test_full_length_name_without_nul(void **state) {
  (void)state;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memset(a.sun_path, 'x', sizeof(a.sun_path));
  char path[sizeof(a.sun_path) + 1];
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(a), path, sizeof(path)),
                   AWF_UNIX_ADDR_PATHNAME);
  assert_int_equal(strlen(path), sizeof(a.sun_path));
}

static void test_other_addresses(void **state) {
  (void)state;
  char path[110];
  struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "\0abstract"};
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(a), path, sizeof(path)),
                   AWF_UNIX_ADDR_OTHER);
  /* unnamed (autobind), empty, too long, another family */
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(sa_family_t), path, sizeof(path)),
                   AWF_UNIX_ADDR_OTHER);
  assert_int_equal(awf_unix_addr_classify(&a, 0, path, sizeof(path)), AWF_UNIX_ADDR_OTHER);
  strcpy(a.sun_path, "/tmp/x");
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(a) + 1, path, sizeof(path)),
                   AWF_UNIX_ADDR_OTHER);
  a.sun_family = AF_INET;
  assert_int_equal(awf_unix_addr_classify(&a, sizeof(a), path, sizeof(path)),
                   AWF_UNIX_ADDR_OTHER);
}

static void test_diag_dev_encoding(void **state) {
  (void)state;
  assert_true(awf_unix_diag_dev(254u << 20 | 3) == makedev(254, 3));
  assert_true(awf_unix_diag_dev(0x00f00123) == makedev(15, 0x123));
}

static void test_ids_has(void **state) {
  (void)state;
  struct awf_unix_id ids[2] = {{makedev(8, 1), 42}, {makedev(0, 25), 7}};
  assert_true(awf_unix_ids_has(ids, 2, (struct awf_unix_id){makedev(0, 25), 7}));
  assert_false(awf_unix_ids_has(ids, 2, (struct awf_unix_id){makedev(8, 1), 7}));
  assert_false(awf_unix_ids_has(ids, 0, ids[0]));
}

/* Dump this network namespace's UNIX sockets; returns 1 if id is bound. */
static int dump_has(struct awf_unix_id id) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  assert_true(nl >= 0);
  char buf[32768] __attribute__((aligned(8)));
  size_t n = awf_unix_diag_request(buf, sizeof(buf), 7);
  assert_int_equal(send(nl, buf, n, 0), (ssize_t)n);
  struct sockaddr_nl self;
  socklen_t len = sizeof(self);
  assert_int_equal(getsockname(nl, (struct sockaddr *)&self, &len), 0);
  bool done = false;
  int found = 0;
  while (!done) {
    ssize_t got = recv(nl, buf, sizeof(buf), 0);
    assert_true(got > 0);
    int r = awf_unix_diag_scan(buf, (size_t)got, 7, self.nl_pid, id, &done);
    assert_true(r >= 0);
    found |= r;
  }
  close(nl);
  return found;
}

static void test_diag_finds_a_bound_socket(void **state) {
  (void)state;
  char dir[] = "/tmp/awf-unixpolicy-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s/s", dir);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  struct stat st;
  assert_int_equal(stat(a.sun_path, &st), 0);
  struct awf_unix_id id = {st.st_dev, st.st_ino};
  assert_int_equal(dump_has(id), 1);
  /* the same inode number on another device is someone else's */
  struct awf_unix_id other = {makedev(major(st.st_dev) + 1, minor(st.st_dev)), st.st_ino};
  assert_int_equal(dump_has(other), 0);
  close(s);
  /* once the socket is gone its file is no socket's */
  assert_int_equal(dump_has(id), 0);
  unlink(a.sun_path);
  rmdir(dir);
}

static void test_diag_error_and_garbage(void **state) {
  (void)state;
  struct {
    struct nlmsghdr h;
    struct nlmsgerr e;
  } m;
  memset(&m, 0, sizeof(m));
  m.h.nlmsg_len = sizeof(m);
  m.h.nlmsg_type = NLMSG_ERROR;
  m.h.nlmsg_seq = 9;
  m.h.nlmsg_pid = 77;
  m.e.error = -EPERM;
  bool done;
  struct awf_unix_id id = {1, 1};
  assert_int_equal(awf_unix_diag_scan(&m, sizeof(m), 9, 77, id, &done), -EPERM);
  m.h.nlmsg_len = 3; /* shorter than a header */
  assert_int_equal(awf_unix_diag_scan(&m, sizeof(m), 9, 77, id, &done), -EBADMSG);
  m.h.nlmsg_len = sizeof(m);
  m.h.nlmsg_type = NLMSG_DONE;
  assert_int_equal(awf_unix_diag_scan(&m, sizeof(m), 9, 77, id, &done), 0);
  assert_true(done);
  /* an end of another request, or addressed to another socket, is no end */
  assert_int_equal(awf_unix_diag_scan(&m, sizeof(m), 10, 77, id, &done), -EBADMSG);
  assert_false(done);
  assert_int_equal(awf_unix_diag_scan(&m, sizeof(m), 9, 78, id, &done), -EBADMSG);
  assert_false(done);
}

/* A record naming id, as the forged "replies" of the attack were built:
 * nlmsghdr, unix_diag_msg, UNIX_DIAG_VFS. */
struct diag_record {
  struct nlmsghdr h;
  struct unix_diag_msg m;
  struct rtattr a;
  struct unix_diag_vfs v;
};

static void diag_record(struct diag_record *r, uint32_t seq, uint32_t pid,
                        struct awf_unix_id id) {
  memset(r, 0, sizeof(*r));
  r->h.nlmsg_len = sizeof(*r);
  r->h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  r->h.nlmsg_flags = NLM_F_MULTI;
  r->h.nlmsg_seq = seq;
  r->h.nlmsg_pid = pid;
  r->m.udiag_family = AF_UNIX;
  r->m.udiag_type = SOCK_STREAM;
  r->m.udiag_ino = 12345;
  r->a.rta_len = RTA_LENGTH(sizeof(r->v));
  r->a.rta_type = UNIX_DIAG_VFS;
  r->v.udiag_vfs_ino = (uint32_t)id.ino;
  r->v.udiag_vfs_dev = major(id.dev) << 20 | minor(id.dev);
}

static void test_forged_diag_reply_not_taken(void **state) {
  (void)state;
  struct awf_unix_id id = {makedev(0, 42), 4711};
  struct diag_record r;
  bool done;
  diag_record(&r, 5, 300, id);
  assert_int_equal(awf_unix_diag_scan(&r, sizeof(r), 5, 300, id, &done), 1);
  /* as forged: sequence 0 and port id 0 (the kernel's), or an old request's */
  diag_record(&r, 0, 0, id);
  assert_int_equal(awf_unix_diag_scan(&r, sizeof(r), 5, 300, id, &done), -EBADMSG);
  diag_record(&r, 4, 300, id);
  assert_int_equal(awf_unix_diag_scan(&r, sizeof(r), 5, 300, id, &done), -EBADMSG);
  /* a second message of another kind behind a good one */
  struct diag_record two[2];
  diag_record(&two[0], 5, 300, (struct awf_unix_id){makedev(0, 1), 1});
  diag_record(&two[1], 5, 300, id);
  two[1].h.nlmsg_type = 99;
  assert_int_equal(awf_unix_diag_scan(two, sizeof(two), 5, 300, id, &done), -EBADMSG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pathname_is_copied),
      cmocka_unit_test(test_full_length_name_without_nul),
      cmocka_unit_test(test_other_addresses),
      cmocka_unit_test(test_diag_dev_encoding),
      cmocka_unit_test(test_ids_has),
      cmocka_unit_test(test_diag_finds_a_bound_socket),
      cmocka_unit_test(test_diag_error_and_garbage),
      cmocka_unit_test(test_forged_diag_reply_not_taken),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
