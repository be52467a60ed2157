/* sandbox_steps.h: the network steps awf takes from the outside, each a named
 * function that succeeds or returns a negative errno with a message naming
 * what failed (bubblewrap style). The steps inside the sandbox are rootfs.h,
 * privileges.h and seccomp_filter.h. */
#ifndef AWF_SANDBOX_STEPS_H
#define AWF_SANDBOX_STEPS_H

#include <stddef.h>
#include <sys/types.h>

#include "awf_cli.h"

struct awf_sandbox_plan;

/* Outside, from awf: move this thread into the network namespace of process
 * `pid` (the sandbox), keeping a descriptor of awf's own in *home_ns. */
int awf_step_enter_sandbox_net(pid_t pid, int *home_ns, char *err, size_t errlen);

/* In the sandbox's network namespace: bring up loopback, add the address and
 * routes connect() needs to reach the redirect, apply the nftables ruleset:
 * TCP to --allow-ports redirected to the transparent listener, DNS to the DNS
 * server, everything else dropped. */
int awf_step_configure_sandbox_net(const struct awf_cli *cli, char *err, size_t errlen);

/* Back to awf's own network namespace; closes home_ns. */
int awf_step_leave_sandbox_net(int home_ns, char *err, size_t errlen);

#endif
