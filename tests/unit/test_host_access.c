/* Unit tests for proxy/host_access.c: which names, addresses and ports are
 * the host's services (awf --enable-host-access), what is dialled for them,
 * and the ports refused without --allow-host-service-ports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "host_access.h"

static struct awf_host_access ha;

static int setup(void **state) {
  (void)state;
  awf_host_access_default(&ha);
  awf_port_set_add(&ha.ports, 80);
  awf_port_set_add(&ha.ports, 8080);
  return 0;
}

static enum awf_host_verdict check(const char *name, uint16_t port) {
  return awf_host_access_check(&ha, name, strlen(name), port);
}

static void test_names_and_ports(void **state) {
  (void)state;
  assert_int_equal(check("host.docker.internal", 8080), AWF_HOST_ALLOWED);
  assert_int_equal(check("host.awf.internal", 80), AWF_HOST_ALLOWED);
  /* As clients may spell it: any case, a trailing dot. */
  assert_int_equal(check("HOST.Docker.Internal.", 8080), AWF_HOST_ALLOWED);
  assert_int_equal(check("host.docker.internal", 8081), AWF_HOST_PORT_DENIED);
  assert_int_equal(check("host.docker.internal", 443), AWF_HOST_PORT_DENIED);
  /* Only the whole name: neighbours and subdomains are ordinary names. */
  const char *others[] = {"docker.internal",
                          "x.host.docker.internal",
                          "host.docker.internal.evil",
                          "host-docker-internal",
                          "127.0.0.1",
                          "198.18.0.2",
                          ""};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    assert_int_equal(check(others[i], 80), AWF_HOST_NONE);
  /* No host access at all. */
  assert_int_equal(awf_host_access_check(NULL, "host.docker.internal", 20, 80), AWF_HOST_NONE);
}

static void test_alias_addresses(void **state) {
  (void)state;
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(9)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET, AWF_HOST_ALIAS_ADDR4, &a4.sin_addr);
  inet_pton(AF_INET6, AWF_HOST_ALIAS_ADDR6, &a6.sin6_addr);
  assert_true(awf_host_access_is_alias(&ha, (struct sockaddr *)&a4));
  assert_true(awf_host_access_is_alias(&ha, (struct sockaddr *)&a6));
  inet_pton(AF_INET, "198.18.0.1", &a4.sin_addr); /* the sandbox itself */
  assert_false(awf_host_access_is_alias(&ha, (struct sockaddr *)&a4));
  inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
  assert_false(awf_host_access_is_alias(&ha, (struct sockaddr *)&a4));
  inet_pton(AF_INET6, "::ffff:198.18.0.2", &a6.sin6_addr);
  assert_false(awf_host_access_is_alias(&ha, (struct sockaddr *)&a6));
  assert_false(awf_host_access_is_alias(NULL, (struct sockaddr *)&a4));
}

static void test_targets(void **state) {
  (void)state;
  struct awf_addr_list l;
  assert_int_equal(awf_host_access_targets(&ha, "host.docker.internal", 20, 8080, &l), 2);
  assert_int_equal(l.n, 2);
  char ip[64];
  assert_int_equal(l.addr[0].ss_family, AF_INET);
  inet_ntop(AF_INET, &((struct sockaddr_in *)&l.addr[0])->sin_addr, ip, sizeof(ip));
  assert_string_equal(ip, "127.0.0.1");
  assert_int_equal(l.addr[1].ss_family, AF_INET6);
  inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&l.addr[1])->sin6_addr, ip, sizeof(ip));
  assert_string_equal(ip, "::1");
  /* The host on another port: nothing to dial, never a lookup of the name. */
  assert_int_equal(awf_host_access_targets(&ha, "host.docker.internal", 20, 22, &l), 0);
  assert_int_equal(l.n, 0);
  assert_int_equal(awf_host_access_targets(&ha, "allowed.test", 12, 80, &l), -1);
  assert_int_equal(awf_host_access_targets(NULL, "host.docker.internal", 20, 80, &l), -1);
}

static void test_dangerous_ports(void **state) {
  (void)state;
  assert_string_equal(awf_host_port_danger(22), "SSH");
  assert_string_equal(awf_host_port_danger(5432), "PostgreSQL");
  assert_non_null(awf_host_port_danger(6379));
  assert_non_null(awf_host_port_danger(27017));
  assert_null(awf_host_port_danger(80));
  assert_null(awf_host_port_danger(3000));
  assert_null(awf_host_port_danger(53));
  struct awf_port_set s;
  memset(&s, 0, sizeof(s));
  awf_port_set_add(&s, 8080);
  awf_port_set_add(&s, 3000);
  assert_int_equal(awf_host_ports_first_danger(&s), 0);
  awf_port_set_add(&s, 6379);
  awf_port_set_add(&s, 3306);
  assert_int_equal(awf_host_ports_first_danger(&s), 3306);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_names_and_ports, setup),
      cmocka_unit_test_setup(test_alias_addresses, setup),
      cmocka_unit_test_setup(test_targets, setup),
      cmocka_unit_test_setup(test_dangerous_ports, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
