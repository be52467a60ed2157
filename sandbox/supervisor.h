/* supervisor.h: awf's outer process. It starts the sandbox (new mount, PID,
 * network, IPC and UTS namespaces), sets up the sandbox's network from the
 * outside (loopback, routes, the nftables redirect, and the proxy's listening
 * sockets, created inside the sandbox's namespace), then runs the proxy
 * engine in its own, host, network namespace until the command ends. */
#ifndef AWF_SUPERVISOR_H
#define AWF_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "awf_cli.h"
#include "logprotect.h"
#include "rootfs.h"
#include "sandbox_addrs.h"
#include "sandbox_init.h"

struct awf_ttystate;

struct awf_sandbox_plan {
  const struct awf_cli *cli;
  struct awf_init_command command; /* argv, envp, work dir */
  uid_t uid;
  gid_t gid;
  const gid_t *groups;
  size_t ngroups;
  struct awf_rootfs_spec rootfs;  /* what the sandbox's / holds */
  struct awf_logprotect log;      /* --log-file, opened; kept from the command */
  const struct awf_ttystate *tty; /* put back before the summary is printed, or NULL */
  /* Build the sandbox in a user namespace of its own (userns.h): uid and gid
   * are then awf's own effective ids, mapped onto themselves. */
  bool rootless;
  /* --ssl-bump: the host's CA bundle, read with the caller's rights
   * (trust.h); NULL: none. The run's CA joins it after the clone. */
  const char *trust_host_bundle;
  size_t trust_host_bundle_len;
};

/* Runs the whole thing; returns awf's exit status. */
int awf_supervise(const struct awf_sandbox_plan *plan);

#endif
