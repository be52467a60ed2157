/* sandbox_net.c: the network inside the sandbox's namespace. Only lo exists;
 * it gets a "public" address and default routes so that connect() to any
 * address finds a route (and reaches the nftables redirect), and the ruleset
 * of nft_ruleset.c. Runs on awf's thread while it is inside that namespace:
 * the netlink sockets it opens belong to it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifndef AWF_NFT_NETLINK
#include <nftables/libnftables.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_access.h"
#include "nflog.h"
#include "nft_netlink.h"
#include "nft_ruleset.h"
#include "rtnl.h"
#include "sandbox_addrs.h"
#include "sandbox_steps.h"
#include "ssh_gate.h"

#define LOOPBACK_IFINDEX 1 /* lo is always 1 in a fresh namespace */

/* Addresses from ranges no real service uses (benchmarking, ULA), so that
 * the command sees itself as "somewhere" and no real destination is shadowed. */
#define SANDBOX_ADDR4 "198.18.0.1"
#define SANDBOX_ADDR6 "fd00:198:18::1"

/* A redirect to 127.0.0.1 of a packet from a non-loopback source is a
 * martian unless route_localnet allows it. Opened from this thread, /proc/sys/net
 * is the sandbox namespace's. */
static int allow_local_redirect(char *err, size_t errlen) {
  static const char *const knobs[] = {"/proc/sys/net/ipv4/conf/all/route_localnet",
                                      "/proc/sys/net/ipv4/conf/lo/route_localnet"};
  for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
    int fd = open(knobs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1", 1) != 1) {
      int e = errno;
      snprintf(err, errlen, "sandbox network: setting %s: %s", knobs[i], strerror(e));
      if (fd >= 0)
        close(fd);
      return -e;
    }
    close(fd);
  }
  return 0;
}

/* awf's listeners inside take ports below 1024 (supervisor.h), which only
 * CAP_NET_BIND_SERVICE may bind: the command has no capabilities, so none of
 * its own servers can collide with them, and it cannot squat them first. A
 * new namespace starts at 1024; set it anyway, so that the guarantee does
 * not rest on a default. Kernels before 4.11 have no knob: 1024 is fixed. */
static int keep_low_ports_privileged(char *err, size_t errlen) {
  const char *knob = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
  int fd = open(knob, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return 0;
  if (fd < 0 || write(fd, "1024", 4) != 4) {
    int e = errno;
    snprintf(err, errlen, "sandbox network: setting %s: %s", knob, strerror(e));
    if (fd >= 0)
      close(fd);
    return -e;
  }
  close(fd);
  return 0;
}

static int configure_loopback(char *err, size_t errlen) {
  awf_rtnl *r;
  struct in_addr a4;
  struct in6_addr a6;
  inet_pton(AF_INET, SANDBOX_ADDR4, &a4);
  inet_pton(AF_INET6, SANDBOX_ADDR6, &a6);
  int rc = awf_rtnl_open(&r);
  if (rc < 0) {
    snprintf(err, errlen, "sandbox network: opening rtnetlink: %s", strerror(-rc));
    return rc;
  }
  const char *step = "";
  if ((rc = awf_rtnl_link_up(r, LOOPBACK_IFINDEX)) < 0)
    step = "bringing lo up";
  else if ((rc = awf_rtnl_addr_add(r, AF_INET, &a4, 32, LOOPBACK_IFINDEX)) < 0)
    step = "adding " SANDBOX_ADDR4 " to lo";
  else if ((rc = awf_rtnl_default_route(r, AF_INET, &a4, LOOPBACK_IFINDEX)) < 0)
    step = "adding the IPv4 default route";
  else if ((rc = awf_rtnl_addr_add(r, AF_INET6, &a6, 128, LOOPBACK_IFINDEX)) < 0)
    step = "adding " SANDBOX_ADDR6 " to lo";
  else if ((rc = awf_rtnl_default_route(r, AF_INET6, &a6, LOOPBACK_IFINDEX)) < 0)
    step = "adding the IPv6 default route";
  awf_rtnl_close(r);
  if (rc < 0)
    snprintf(err, errlen, "sandbox network: %s: %s", step, strerror(-rc));
  return rc;
}

static int apply_ruleset(const struct awf_cli *cli, char *err, size_t errlen) {
  struct awf_port_set redirected = cli->proxy.ports;
  if (cli->proxy.ssh_acl) /* --allow-ssh: port 22 is judged by the name resolved */
    awf_port_set_add(&redirected, AWF_SSH_PORT);
  struct awf_nft_spec spec = {.tcp_ports = redirected.bits,
                              .transparent_port = AWF_SANDBOX_TRANSPARENT_PORT,
                              .dns_port = AWF_SANDBOX_DNS_PORT,
                              .nflog_group = AWF_NFLOG_GROUP};
  if (cli->host_access) {
    spec.host_alias4 = AWF_HOST_ALIAS_ADDR4;
    spec.host_alias6 = AWF_HOST_ALIAS_ADDR6;
  }
#ifdef AWF_NFT_NETLINK
  /* The static build: our own nf_tables netlink encoder (nft_netlink.h). */
  int rc = awf_nft_netlink_apply(&spec);
  if (rc < 0)
    snprintf(err, errlen,
             "sandbox network: the kernel refused the nftables ruleset (does it have "
             "nf_tables with nat and conntrack?): %s",
             strerror(-rc));
  return rc;
#else
  char *text;
  long len = awf_nft_ruleset(&spec, &text);
  if (len < 0) {
    snprintf(err, errlen, "sandbox network: building the nftables ruleset: %s",
             strerror((int)-len));
    return (int)len;
  }
  struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!nft) {
    free(text);
    snprintf(err, errlen, "sandbox network: libnftables: cannot create a context");
    return -ENOMEM;
  }
  nft_ctx_buffer_output(nft);
  nft_ctx_buffer_error(nft);
  int rc = nft_run_cmd_from_buffer(nft, text);
  if (rc != 0) {
    const char *why = nft_ctx_get_error_buffer(nft);
    size_t wl = why ? strlen(why) : 0;
    while (wl && (why[wl - 1] == '\n' || why[wl - 1] == ' '))
      wl--;
    snprintf(err, errlen,
             "sandbox network: the kernel refused the nftables ruleset (does it have "
             "nf_tables with nat and conntrack?): %.*s",
             (int)(wl > 400 ? 400 : wl), wl ? why : "no detail");
    rc = -EPROTO;
  }
  nft_ctx_free(nft);
  free(text);
  return rc;
#endif
}

int awf_step_configure_sandbox_net(const struct awf_cli *cli, char *err, size_t errlen) {
  int rc = configure_loopback(err, errlen);
  if (rc == 0)
    rc = allow_local_redirect(err, errlen);
  if (rc == 0)
    rc = keep_low_ports_privileged(err, errlen);
  if (rc == 0)
    rc = apply_ruleset(cli, err, errlen);
  return rc;
}
