/* awf_cli.c: parse awf's flags. Errors name the flag and exit 125. */
#include "awf_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "build_info.h"
#include "host_access.h"

#include "exitcodes.h"

/* Long options without a letter of their own. */
enum {
  OPT_HOST_ACCESS = 0x100,
  OPT_HOST_PORTS,
  OPT_HOST_SERVICE_PORTS,
  OPT_ROOTLESS,
  OPT_SSL_BUMP,
  OPT_DLP,
  OPT_CHECK_CONFIG
};

static const char usage[] =
    "Usage: awf [OPTIONS] -- COMMAND [ARGS...]\n"
    "Run COMMAND with the host's binaries in a sandbox whose network traffic all passes a\n"
    "domain allowlist: proxy-aware tools use the proxy variables, everything else is caught\n"
    "by a transparent redirect, and DNS answers only for allowed names. Run by root (sudo)\n"
    "or by any user (rootless: inside a user namespace of its own); either way the command\n"
    "runs as the invoking user with no capabilities. Files named below (rule and env\n"
    "files, --log-file, -v host paths) are opened with that user's rights.\n"
    "\n"
    "Domains and network:\n"
    "  -d, --allow-domains LIST      allow rules: github.com (and subdomains), *.github.com,\n"
    "                                api-*.x.com, https://x, http://x, 1.2.3.4\n"
    "      --allow-domains-file FILE\n"
    "      --block-domains LIST      block rules (a block always wins)\n"
    "      --block-domains-file FILE\n"
    "      --allow-urls LIST         URL rules: [METHODS ]SCHEME://HOST/PATH, '*' within a\n"
    "                                host label and any run in the path (GET,HEAD\n"
    "                                https://x/a/*); a host with URL rules admits only\n"
    "                                matching requests; https:// rules need --ssl-bump\n"
    "      --allow-urls-file FILE    URL rules, one per line, # comments\n"
    "      --block-urls LIST         URL block rules (a block always wins)\n"
    "      --ruleset-file FILE       a YAML ruleset (version: 1, rules: [{domain, subdomains}],\n"
    "                                block:, urls:, block_urls:, ports:); repeatable; combines\n"
    "                                with the flags\n"
    "      --check-config            check every flag, rule and file, print a summary of the\n"
    "                                rules and exit 0 (or 125 with the error); no COMMAND\n"
    "      --ssl-bump                intercept TLS to the hosts https:// URL rules name (only\n"
    "                                those: every other host is tunnelled untouched) with a\n"
    "                                per-run CA the sandbox trusts; HTTP/1.1 only inside\n"
    "      --rate-limit [HOST=]N/s|N/m|N/h\n"
    "                                requests per host (a tunnel awf does not open is one);\n"
    "                                over it: 429 with Retry-After (rate_limited); HOST as\n"
    "                                in --allow-domains, one bucket per rule; without HOST\n"
    "                                a bucket per host for hosts no HOST rule names;\n"
    "                                repeatable\n"
    "      --bytes-limit [HOST=]N[K|M|G]/s|m|h\n"
    "                                bytes relayed per host, both ways; once spent, new\n"
    "                                requests and tunnels get 429 until it refills\n"
    "      --dlp                     deny what carries a credential: GitHub, OpenAI,\n"
    "                                Anthropic, AWS, Google and Slack tokens, private keys,\n"
    "                                JWTs in a request's URL, headers or body (its first\n"
    "                                MiB), a TLS name or a DNS question (alias --enable-dlp)\n"
    "      --secret NAME=HOST[,HOST...]\n"
    "                                the credential in NAME (this process's environment)\n"
    "                                is written into requests to these hosts only, in\n"
    "                                place of a placeholder the command gets\n"
    "                                in NAME (never the value: not with -e or --env-all);\n"
    "                                implies interception of those hosts (repeatable)\n"
    "      --secret-file NAME=PATH   NAME's value from PATH instead (hosts by --secret)\n"
    "      --secret-in-body NAME     also replace NAME's placeholder in request bodies\n"
    "      --secret-strict           deny a request carrying a placeholder to another host\n"
    "                                (secret_misdirected) instead of sending it as is\n"
    "      --secret-allow-plaintext  let secrets go to their hosts over plain HTTP\n"
    "      --secret-endpoint NAME=https://HOST[/BASE]\n"
    "                                base-URL mode: a plain-HTTP listener in the sandbox\n"
    "                                (AWF_<NAME>_URL) whose requests go to HOST with\n"
    "                                NAME's value in its header; binds NAME to HOST\n"
    "      --secret-header NAME=HEADER\n"
    "                                the header base-URL mode writes NAME's value in\n"
    "                                (default Authorization: Bearer VALUE)\n"
    "      --allow-ports LIST        TCP ports the command may reach (default 80,443)\n"
    "      --allow-ssh LIST          hosts ssh/git may reach on port 22, judged by the\n"
    "                                name the command resolved (github.com, *.x.com)\n"
    "      --tls-ports LIST          redirected ports judged by TLS SNI (default 443)\n"
    "      --http-ports LIST         redirected ports judged by HTTP Host (default 80)\n"
    "      --allow-destination-cidrs LIST\n"
    "                                private/local CIDRs that may still be reached\n"
    "      --dns-servers LIST        upstream resolvers for awf's own lookups\n"
    "                                (default: the host's /etc/resolv.conf)\n"
    "      --upstream-proxy URL|auto|none\n"
    "                                reach allowed origins through a parent HTTP proxy,\n"
    "                                http://[user:password@]host[:port] (CONNECT for all\n"
    "                                traffic); default auto: from awf's https_proxy,\n"
    "                                HTTPS_PROXY, http_proxy, HTTP_PROXY and NO_PROXY;\n"
    "                                the command's proxy variables still name awf\n"
    "      --enable-host-access      let the command reach services on the host's loopback\n"
    "                                as host.docker.internal (or host.awf.internal),\n"
    "                                through awf, on the --allow-host-ports only\n"
    "      --allow-host-ports LIST   the host's ports it may reach (default 80,443; ranges\n"
    "                                allowed); SSH, mail, SMB, RDP and database ports are\n"
    "                                refused here\n"
    "      --allow-host-service-ports LIST\n"
    "                                more host ports, the refused ones included (a job's\n"
    "                                service containers: 5432,6379); implies\n"
    "                                --enable-host-access\n"
    "      --audit                   admit what the domain, scheme and port rules deny, log it\n"
    "                                as would_deny and list it at exit; private addresses,\n"
    "                                UDP and other ports stay denied\n"
    "      --log-file FILE           JSONL access log of every decision (read-only and\n"
    "                                unremovable for the command)\n"
    "      --log-level LEVEL         debug, info, warn, error (default warn); debug shows\n"
    "                                the rules, each lookup and each address dialled\n"
    "      --workers N               the proxy's event loops, one thread each (default 1:\n"
    "                                a sandbox rarely needs more)\n"
    "      --no-step-summary         do not append the Markdown summary of the run's traffic\n"
    "                                to $GITHUB_STEP_SUMMARY (done when it is set)\n"
    "Environment:\n"
    "  -e, --env KEY=VALUE           set a variable (repeatable; wins over the others);\n"
    "                                -e KEY copies KEY's value from awf's environment\n"
    "      --env-file FILE           KEY=VALUE lines\n"
    "      --env-all                 pass the host environment, except PATH, HOME, USER,\n"
    "                                LOGNAME, PWD, OLDPWD, SHLVL, _, SUDO_*, proxy variables\n"
    "      --exclude-env NAME        do not pass NAME with --env-all (repeatable)\n"
    "Resource limits (a cgroup of the sandbox's own; see docs/awf.md):\n"
    "      --memory-limit SIZE       memory plus swap of all its processes: 512m, 6g\n"
    "                                (default 6g); past it the kernel's OOM killer ends\n"
    "                                a process: reported on stderr, exit 137\n"
    "      --pids-limit N            processes and threads at once (default 1000)\n"
    "      --cpus N                  CPU time, fractions allowed: 1.5 (default: no limit)\n"
    "Filesystem and process:\n"
    "  -v, --mount HOST:SANDBOX[:ro|rw]\n"
    "                                bind-mount a host path (absolute paths; default rw)\n"
    "      --work-dir DIR            working directory (default: the current one)\n"
    "      --private-tmp             a fresh /tmp instead of the host's\n"
    "      --allow-unix-socket PATH  let the command connect to this host UNIX socket\n"
    "                                (repeatable)\n"
    "      --agent-timeout MINUTES   stop the command after this long (exit 124);\n"
    "                                fractions allowed (0.5 = 30 s)\n"
    "      --rootless                build the sandbox in a user namespace even when run\n"
    "                                as root (the default when not root)\n"
    "      --version                 print the version, commit and build flavour and exit\n"
    "  -h, --help                    print this help and exit\n"
    "\n"
    "A single COMMAND argument with shell syntax runs under /bin/sh -c.\n"
    "awf logs summary|stats|show ... reads access logs (awf logs --help).\n"
    "Exit status: the command's; 128+N if it died of signal N; 124 on --agent-timeout;\n"
    "125 when awf itself fails; 126 command not executable; 127 command not found.\n";

static const struct option long_opts[] = {
    {"allow-domains", required_argument, 0, 'd'},
    {"allow-domains-file", required_argument, 0, 'P'},
    {"block-domains", required_argument, 0, 'P'},
    {"block-domains-file", required_argument, 0, 'P'},
    {"allow-urls", required_argument, 0, 'P'},
    {"allow-urls-file", required_argument, 0, 'P'},
    {"block-urls", required_argument, 0, 'P'},
    {"rate-limit", required_argument, 0, 'P'},
    {"bytes-limit", required_argument, 0, 'P'},
    {"ruleset-file", required_argument, 0, 'P'},
    {"check-config", no_argument, 0, OPT_CHECK_CONFIG},
    {"secret", required_argument, 0, 'P'},
    {"secret-file", required_argument, 0, 'P'},
    {"secret-in-body", required_argument, 0, 'P'},
    {"secret-strict", no_argument, 0, 'P'},
    {"secret-allow-plaintext", no_argument, 0, 'P'},
    {"secret-endpoint", required_argument, 0, 'P'},
    {"secret-header", required_argument, 0, 'P'},
    {"allow-ports", required_argument, 0, 'P'},
    {"allow-ssh", required_argument, 0, 'P'},
    {"tls-ports", required_argument, 0, 'P'},
    {"http-ports", required_argument, 0, 'P'},
    {"allow-destination-cidrs", required_argument, 0, 'P'},
    {"dns-servers", required_argument, 0, 'P'},
    {"upstream-proxy", required_argument, 0, 'P'},
    {"log-file", required_argument, 0, 'P'},
    {"log-level", required_argument, 0, 'P'},
    {"workers", required_argument, 0, 'P'},
    {"audit", no_argument, 0, 'A'},
    {"enable-host-access", no_argument, 0, OPT_HOST_ACCESS},
    {"allow-host-ports", required_argument, 0, OPT_HOST_PORTS},
    {"allow-host-service-ports", required_argument, 0, OPT_HOST_SERVICE_PORTS},
    {"env", required_argument, 0, 'e'},
    {"env-file", required_argument, 0, 'F'},
    {"env-all", no_argument, 0, 'E'},
    {"exclude-env", required_argument, 0, 'X'},
    {"mount", required_argument, 0, 'v'},
    {"work-dir", required_argument, 0, 'w'},
    {"agent-timeout", required_argument, 0, 'T'},
    {"private-tmp", no_argument, 0, 'p'},
    {"allow-unix-socket", required_argument, 0, 'U'},
    {"memory-limit", required_argument, 0, 'M'},
    {"pids-limit", required_argument, 0, 'L'},
    {"cpus", required_argument, 0, 'C'},
    {"no-step-summary", no_argument, 0, 'S'},
    {"rootless", no_argument, 0, OPT_ROOTLESS},
    {"ssl-bump", no_argument, 0, OPT_SSL_BUMP},
    {"dlp", no_argument, 0, OPT_DLP},
    {"enable-dlp", no_argument, 0, OPT_DLP},
    {"version", no_argument, 0, 'V'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  fputs("awf: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return AWF_EXIT_FAILURE;
}

static int push(const char **list, size_t *n, const char *v, const char *flag) {
  if (*n == AWF_MAX_LIST_ARGS)
    return fail("%s: too many (at most 256)", flag);
  list[(*n)++] = v;
  list[*n] = NULL;
  return -1;
}

/* HOST:SANDBOX[:ro|rw], both absolute; the host path must exist. */
static int parse_mount(struct awf_cli *cli, const char *v) {
  if (cli->n_mounts == AWF_MAX_LIST_ARGS)
    return fail("--mount: too many (at most 256)");
  char *text = cli->mount_text[cli->n_mounts];
  if (strlen(v) >= sizeof(cli->mount_text[0]))
    return fail("--mount '%s': too long", v);
  strcpy(text, v);
  struct awf_mount_arg *m = &cli->mounts[cli->n_mounts];
  m->read_only = false;
  char *sep = strchr(text, ':');
  if (!sep)
    return fail("--mount '%s': expected HOST:SANDBOX[:ro|rw]", v);
  *sep = '\0';
  char *target = sep + 1;
  char *mode = strchr(target, ':');
  if (mode) {
    *mode++ = '\0';
    if (strcmp(mode, "ro") == 0)
      m->read_only = true;
    else if (strcmp(mode, "rw") != 0)
      return fail("--mount '%s': the mode must be ro or rw, not '%s'", v, mode);
  }
  if (text[0] != '/' || target[0] != '/')
    return fail("--mount '%s': both paths must be absolute", v);
  if (strstr(target, "/../") ||
      (strlen(target) >= 3 && !strcmp(target + strlen(target) - 3, "/..")))
    return fail("--mount '%s': the sandbox path may not contain '..'", v);
  struct stat st;
  if (stat(text, &st) < 0)
    return fail("--mount '%s': the host path does not exist: %s", v, strerror(errno));
  m->host = text;
  m->sandbox = target;
  cli->n_mounts++;
  return -1;
}

/* The host ports: --allow-host-ports (default 80,443), never one of the
 * reference's dangerous ports, plus --allow-host-service-ports, which may
 * name them and turns host access on (as in the reference). */
static int host_ports(struct awf_cli *cli, const char *general, const char *service) {
  char err[256];
  struct awf_port_set extra;
  memset(&extra, 0, sizeof(extra));
  if (service) {
    if (awf_parse_port_list(service, &extra, err, sizeof(err)) < 0)
      return fail("--allow-host-service-ports: %s", err);
    cli->host_access = true;
  }
  if (general && !cli->host_access)
    return fail("--allow-host-ports needs --enable-host-access (without it the host's "
                "services are out of reach)");
  if (!cli->host_access)
    return -1;
  if (general) {
    if (awf_parse_port_list(general, &cli->host_ports, err, sizeof(err)) < 0)
      return fail("--allow-host-ports: %s", err);
    struct awf_port_set unnamed = cli->host_ports; /* refused ones the caller did not name */
    for (size_t i = 0; i < sizeof(extra.bits); i++)
      unnamed.bits[i] &= (uint8_t)~extra.bits[i];
    uint16_t bad = awf_host_ports_first_danger(&unnamed);
    if (bad)
      return fail("--allow-host-ports %s: port %u (%s) is refused: SSH, mail, file sharing, "
                  "remote desktop and database ports of the host stay closed. If the command "
                  "must reach this service, name it with --allow-host-service-ports %u",
                  general, bad, awf_host_port_danger(bad), bad);
  } else {
    awf_port_set_add(&cli->host_ports, 80);
    awf_port_set_add(&cli->host_ports, 443);
  }
  for (size_t i = 0; i < sizeof(extra.bits); i++)
    cli->host_ports.bits[i] |= extra.bits[i];
  uint16_t risky = awf_host_ports_first_danger(&extra);
  if (risky)
    fprintf(stderr,
            "awf: warning: --allow-host-service-ports lets the command reach the "
            "host's port %u (%s)\n",
            risky, awf_host_port_danger(risky));
  return -1;
}

int awf_cli_parse(int argc, char **argv, struct awf_cli *cli) {
  char err[768];
  int c, idx, rc;
  const char *host_general = NULL, *host_service = NULL;
  opterr = 0;
  cli->proxy.log_level = AWF_LOG_WARN;
  awf_cgroup_limits_default(&cli->limits);
  /* '+': stop at the first non-option, so the command's own flags are its. */
  while ((c = getopt_long(argc, argv, "+:d:e:v:h", long_opts, &idx)) != -1) {
    const char *flag = NULL;
    rc = -1;
    switch (c) {
    case 'd': flag = "allow-domains"; break;
    case 'P': flag = long_opts[idx].name; break;
    case 'A': cli->proxy.audit = true; break;
    case OPT_HOST_ACCESS: cli->host_access = true; break;
    case OPT_HOST_PORTS: host_general = optarg; break;
    case OPT_HOST_SERVICE_PORTS: host_service = optarg; break;
    case 'e': /* KEY=VALUE, or KEY to copy the host's value (checked by envpolicy) */
      rc = push(cli->env_cli, &cli->n_env_cli, optarg, "-e");
      break;
    case 'F': rc = push(cli->env_files, &cli->n_env_files, optarg, "--env-file"); break;
    case 'E': cli->env_all = true; break;
    case 'X': rc = push(cli->exclude_env, &cli->n_exclude_env, optarg, "--exclude-env"); break;
    case 'v': rc = parse_mount(cli, optarg); break;
    case 'w':
      if (optarg[0] != '/')
        return fail("--work-dir '%s': must be an absolute path", optarg);
      cli->work_dir = optarg;
      break;
    case 'T': {
      char *end;
      errno = 0;
      double m = strtod(optarg, &end);
      if (errno || end == optarg || *end || !(m > 0) || m > 525600)
        return fail("--agent-timeout '%s': expected minutes, more than 0 and at most 525600 "
                    "(a year)",
                    optarg);
      cli->agent_timeout_ms = (uint64_t)(m * 60000.0 + 0.5);
      if (cli->agent_timeout_ms == 0)
        cli->agent_timeout_ms = 1;
      break;
    }
    case 'p': cli->private_tmp = true; break;
    case 'S': cli->no_step_summary = true; break;
    case OPT_ROOTLESS: cli->rootless = true; break;
    case OPT_SSL_BUMP: cli->proxy.ssl_bump = true; break;
    case OPT_DLP: cli->proxy.dlp = true; break;
    case OPT_CHECK_CONFIG: cli->check_config = true; break;
    case 'U':
      if (optarg[0] == '\0')
        return fail("--allow-unix-socket needs a path");
      rc = push(cli->allow_unix_sockets, &cli->n_allow_unix_sockets, optarg,
                "--allow-unix-socket");
      break;
    case 'M':
      if (awf_cgroup_parse_size(optarg, &cli->limits.memory) < 0)
        return fail("--memory-limit '%s': expected a size of at least 1m, such as 512m or 6g "
                    "(suffixes k, m, g, t)",
                    optarg);
      cli->limits.memory_text = optarg;
      cli->limits.explicit_[AWF_CG_MEMORY] = true;
      break;
    case 'L':
      if (awf_cgroup_parse_pids(optarg, &cli->limits.pids) < 0)
        return fail("--pids-limit '%s': expected a whole number from 1 to %d", optarg,
                    AWF_CGROUP_MAX_PIDS);
      cli->limits.explicit_[AWF_CG_PIDS] = true;
      break;
    case 'C':
      if (awf_cgroup_parse_cpus(optarg, &cli->limits.cpu_quota_us) < 0)
        return fail("--cpus '%s': expected a number of CPUs from 0.01 to %d, such as 1.5",
                    optarg, AWF_CGROUP_MAX_CPUS);
      cli->limits.explicit_[AWF_CG_CPU] = true;
      break;
    case 'V': awf_build_print(stdout, "awf"); return 0;
    case 'h': fputs(usage, stdout); return 0;
    case ':': return fail("%s needs a value", argv[optind - 1]);
    default: return fail("unknown option '%s' (see awf --help)", argv[optind - 1]);
    }
    if (rc >= 0)
      return rc;
    if (flag && awf_options_set(&cli->proxy, flag, optarg, err, sizeof(err)) < 0)
      return fail("%s", err);
  }
  /* No --upstream-proxy: the caller's proxy variables name the parent. */
  if (!cli->proxy.upstream_proxy_set &&
      awf_options_set(&cli->proxy, "upstream-proxy", "auto", err, sizeof(err)) < 0)
    return fail("%s", err);
  if (awf_options_finish(&cli->proxy, err, sizeof(err)) < 0)
    return fail("%s", err);
  cli->limits.debug = cli->proxy.log_level == AWF_LOG_DEBUG;
  if ((rc = host_ports(cli, host_general, host_service)) >= 0)
    return rc;
  if (cli->check_config) {
    char summary[512];
    awf_rules_summary(cli->proxy.rules, summary, sizeof(summary));
    printf("awf: configuration OK: %s\n", summary);
    return 0;
  }
  if (optind >= argc)
    return fail("no command given: awf [OPTIONS] -- COMMAND [ARGS...]");
  cli->command = argv + optind;
  cli->command_argc = argc - optind;
  return -1;
}
