/* acl_fixture.h: an ACL from an allow list and a block list, for the tests of
 * what judges by it (test_policy.c, test_ssh_gate.c, test_dns_server.c).
 * Header-only; include after cmocka.h. */
#ifndef AWF_TEST_ACL_FIXTURE_H
#define AWF_TEST_ACL_FIXTURE_H

#include "acl.h"

/* Either list may be NULL. The caller frees it (awf_acl_free). */
static inline awf_acl *acl_of(const char *allow, const char *block) {
  char err[256];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  if (allow)
    assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, allow, err, sizeof(err)), 0);
  if (block)
    assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, block, err, sizeof(err)), 0);
  return a;
}

#endif
