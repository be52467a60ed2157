/* awf_cli.h: awf's command line. The domain flags are awf-proxy's (parsed by
 * proxy/config.c); the rest configure the sandbox. */
#ifndef AWF_CLI_H
#define AWF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "config.h"

#define AWF_MAX_LIST_ARGS 256

struct awf_mount_arg {
  const char *host;
  const char *sandbox;
  bool read_only;
};

struct awf_cli {
  struct awf_options proxy;                   /* domain, port, DNS, log flags */
  const char *env_cli[AWF_MAX_LIST_ARGS + 1]; /* -e KEY=VALUE */
  size_t n_env_cli;
  const char *env_files[AWF_MAX_LIST_ARGS]; /* --env-file */
  size_t n_env_files;
  const char *exclude_env[AWF_MAX_LIST_ARGS + 1]; /* --exclude-env */
  size_t n_exclude_env;
  bool env_all;
  struct awf_mount_arg mounts[AWF_MAX_LIST_ARGS]; /* -v HOST:SANDBOX[:ro|rw] */
  size_t n_mounts;
  char mount_text[AWF_MAX_LIST_ARGS][4096]; /* storage for split -v values */
  const char *work_dir;                     /* NULL: the current directory */
  uint64_t agent_timeout_ms;                /* 0: none */
  bool private_tmp;
  bool no_step_summary; /* --no-step-summary */
  bool rootless;        /* --rootless: a user namespace even as root */
  bool check_config;    /* --check-config: parse, check, summarise, exit */
  const char *allow_unix_sockets[AWF_MAX_LIST_ARGS + 1]; /* --allow-unix-socket */
  size_t n_allow_unix_sockets;
  struct awf_cgroup_limits limits; /* --memory-limit, --pids-limit, --cpus */
  /* --enable-host-access (or --allow-host-service-ports): the host's
   * services on host_ports, through awf's relay (host_access.h). */
  bool host_access;
  struct awf_port_set host_ports;
  char *const *command; /* argv after "--", NULL-terminated */
  int command_argc;
};

/* Returns -1 to go on, or an exit status (0 after --help/--version, 125 for
 * a bad flag, with the message printed). */
int awf_cli_parse(int argc, char **argv, struct awf_cli *cli);

#endif
