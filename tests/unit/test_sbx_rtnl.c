/* Unit tests for sandbox/rtnl.c: each case in a forked child inside a fresh
 * network namespace of its own (root only), so the host's network is never
 * touched. A route is proven by connect() on a UDP socket, which sends
 * nothing but asks the kernel for a route and a source address. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rtnl.h"
#include "sbx_child.h"

#define LO 1

static int skip_unless_root(void) {
  if (geteuid() == 0)
    return 0;
  fprintf(stderr, "skipped: needs root (a network namespace of its own)\n");
  return 1;
}

/* The source address the kernel picks for a UDP "connection" to dst. */
static int route_source(int family, const char *dst, char *src, size_t srclen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(9);
    inet_pton(AF_INET, dst, &a->sin_addr);
    len = sizeof(*a);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(9);
    inet_pton(AF_INET6, dst, &a->sin6_addr);
    len = sizeof(*a);
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = connect(fd, (struct sockaddr *)&ss, len) < 0 ? -errno : 0;
  struct sockaddr_storage me;
  socklen_t mel = sizeof(me);
  if (rc == 0 && getsockname(fd, (struct sockaddr *)&me, &mel) == 0)
    inet_ntop(family,
              family == AF_INET ? (void *)&((struct sockaddr_in *)&me)->sin_addr
                                : (void *)&((struct sockaddr_in6 *)&me)->sin6_addr,
              src, (socklen_t)srclen);
  close(fd);
  return rc;
}

static int configure(int out, const void *arg) {
  (void)arg;
  if (unshare(CLONE_NEWNET) < 0)
    return sbx_fail(out, "unshare: %s", strerror(errno));
  char src[64] = "";
  if (route_source(AF_INET, "203.0.113.9", src, sizeof(src)) != -ENETUNREACH)
    return sbx_fail(out, "a fresh namespace already routes 203.0.113.9");
  awf_rtnl *r;
  int rc = awf_rtnl_open(&r);
  if (rc < 0)
    return sbx_fail(out, "open: %s", strerror(-rc));
  struct in_addr a4;
  struct in6_addr a6;
  inet_pton(AF_INET, "198.18.0.1", &a4);
  inet_pton(AF_INET6, "fd00:198:18::1", &a6);
  if ((rc = awf_rtnl_link_up(r, LO)) < 0)
    return sbx_fail(out, "link up: %s", strerror(-rc));
  if ((rc = awf_rtnl_addr_add(r, AF_INET, &a4, 32, LO)) < 0)
    return sbx_fail(out, "addr4: %s", strerror(-rc));
  if ((rc = awf_rtnl_default_route(r, AF_INET, &a4, LO)) < 0)
    return sbx_fail(out, "route4: %s", strerror(-rc));
  if ((rc = awf_rtnl_addr_add(r, AF_INET6, &a6, 128, LO)) < 0)
    return sbx_fail(out, "addr6: %s", strerror(-rc));
  if ((rc = awf_rtnl_default_route(r, AF_INET6, &a6, LO)) < 0)
    return sbx_fail(out, "route6: %s", strerror(-rc));
  /* the kernel's errors come back as they are */
  if ((rc = awf_rtnl_addr_add(r, AF_INET, &a4, 32, LO)) != -EEXIST)
    return sbx_fail(out, "a second identical address gave %d, not -EEXIST", rc);
  if ((rc = awf_rtnl_link_up(r, 4242)) != -ENODEV)
    return sbx_fail(out, "a missing interface gave %d, not -ENODEV", rc);
  awf_rtnl_close(r);

  if ((rc = route_source(AF_INET, "203.0.113.9", src, sizeof(src))) < 0)
    return sbx_fail(out, "no IPv4 route after configuring: %s", strerror(-rc));
  if (strcmp(src, "198.18.0.1") != 0)
    return sbx_fail(out, "IPv4 source %s", src);
  if ((rc = route_source(AF_INET6, "2001:db8::9", src, sizeof(src))) < 0)
    return sbx_fail(out, "no IPv6 route after configuring: %s", strerror(-rc));
  if (strcmp(src, "fd00:198:18::1") != 0)
    return sbx_fail(out, "IPv6 source %s", src);
  if ((rc = route_source(AF_INET, "127.0.0.1", src, sizeof(src))) < 0)
    return sbx_fail(out, "loopback is not up: %s", strerror(-rc));
  return 0;
}

static void test_loopback_address_and_default_routes(void **state) {
  (void)state;
  if (skip_unless_root())
    skip();
  char out[512];
  int status = sbx_child_run(configure, NULL, out, sizeof(out));
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    fail_msg("child: status %d: %s", status, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loopback_address_and_default_routes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
