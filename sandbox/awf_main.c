/* awf_main.c: awf: run a command in a sandbox whose network passes the
 * domain ACL. Works out who the command runs as, its environment, PATH and
 * argv, then hands the plan to the supervisor. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "awf_cli.h"
#include "cmdline.h"
#include "envpolicy.h"
#include "exitcodes.h"
#include "fscreds.h"
#include "host_access.h"
#include "logs_cli.h"
#include "pathenv.h"
#include "supervisor.h"
#include "textfile.h"
#include "trust.h"
#include "truststore.h"
#include "ttystate.h"
#include "userdb.h"
#include "userns.h"

#define MAX_GROUPS 64
#define MAX_OWN_ENV 32
#define MAX_ENV_FILE (1024 * 1024)
#define AWF_MAX_COMMAND_ARGS 65536

/* The sandbox's resolver is awf's DNS server: port 53 on loopback is
 * redirected to it (as is port 53 anywhere else). */
#define SANDBOX_RESOLV_CONF                                     \
  "# written by awf: only names the allowlist admits resolve\n" \
  "nameserver 127.0.0.1\n"                                      \
  "options edns0 trust-ad\n"

extern char **environ;

/* Does this PATH directory exist inside the sandbox too? Its host side, by
 * the sandbox's own mount table, must be a directory. */
static int visible_in_sandbox(void *ud, const char *path) {
  const struct awf_rootfs_spec *rootfs = ud;
  char host[PATH_MAX];
  struct stat st;
  return awf_rootfs_host_path_of(rootfs, path, host, sizeof(host)) == 0 &&
         stat(host, &st) == 0 && S_ISDIR(st.st_mode);
}

static int build_path(const struct awf_rootfs_spec *rootfs, char *out, size_t outsz) {
  char err[256];
  char *gh = NULL;
  size_t ghlen = 0;
  const char *ghp = getenv("GITHUB_PATH");
  if (ghp && *ghp && awf_textfile_read(ghp, MAX_ENV_FILE, &gh, &ghlen, err, sizeof(err)) < 0)
    fprintf(stderr, "awf: warning: GITHUB_PATH: %s\n", err);
  /* The versions a job selected (setup-go, setup-java, setup-python...
   * export these), not every version in the tool cache. */
  static const struct {
    const char *var, *sub;
  } tools[] = {{"GOROOT", "/bin"},  {"JAVA_HOME", "/bin"},  {"pythonLocation", "/bin"},
               {"DOTNET_ROOT", ""}, {"CARGO_HOME", "/bin"}, {"BUN_INSTALL", "/bin"}};
  char *dirs[sizeof(tools) / sizeof(tools[0])] = {0};
  for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
    const char *v = getenv(tools[i].var);
    if (v && *v && asprintf(&dirs[i], "%s%s", v, tools[i].sub) < 0)
      dirs[i] = NULL;
  }
  struct awf_pathenv_spec spec = {
      .awf_path = getenv("PATH"),
      .github_path = gh,
      .github_path_len = ghlen,
      .tool_dirs = (const char *const *)dirs,
      .n_tool_dirs = sizeof(dirs) / sizeof(dirs[0]),
      .exists = visible_in_sandbox,
      .ud = (void *)rootfs,
  };
  size_t dropped = 0;
  int rc = awf_pathenv_build(&spec, out, outsz, &dropped);
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
    free(dirs[i]);
  free(gh);
  return rc;
}

/* The sandbox's /etc/hosts: the host's entries, then the sandbox's own name
 * on 127.0.1.1 (Debian's convention), so git, hostname -f and getfqdn()
 * resolve it without asking DNS, where it would be a denied name. Not on
 * ::1 as well: the reverse lookup of ::1 would then give "localhost" for
 * "awf", and getfqdn() would answer "localhost". With host access, the
 * host's names come first, before any line of the host's own for them (the
 * first match wins). Returns a malloc'd string or NULL (out of memory). */
static char *sandbox_hosts(bool host_access) {
  char err[256], *host = NULL, *out = NULL;
  size_t len = 0;
  if (awf_textfile_read("/etc/hosts", MAX_ENV_FILE, &host, &len, err, sizeof(err)) < 0)
    len = 0; /* no host file: only awf's lines */
  bool nl = len == 0 || host[len - 1] == '\n';
  const char *names = AWF_HOST_ALIAS_NAME " " AWF_HOST_ALIAS_NAME2;
  char alias[256] = "";
  if (host_access)
    snprintf(alias, sizeof(alias),
             "# added by awf (--enable-host-access): the host's services, through awf\n"
             "%s\t%s\n%s\t%s\n",
             AWF_HOST_ALIAS_ADDR4, names, AWF_HOST_ALIAS_ADDR6, names);
  if (asprintf(&out, "%s%.*s%s# added by awf: the sandbox's own name\n127.0.1.1\t%s\n", alias,
               (int)len, len ? host : "", nl ? "" : "\n", AWF_SANDBOX_HOSTNAME) < 0)
    out = NULL;
  free(host);
  return out;
}

/* awf's own variables: the lowest precedence. Returns how many were made, or
 * -ENOMEM; each is malloc'd (freed with free_strings). */
static long own_environment(char **own, size_t max, const char *path,
                            const struct awf_userdb_user *u) {
  static const char *const passthrough[] = {"TERM",       "LANG",        "GOROOT",
                                            "JAVA_HOME",  "DOTNET_ROOT", "CARGO_HOME",
                                            "BUN_INSTALL"};
  char proxy[32];
  snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", AWF_SANDBOX_PROXY_PORT);
  size_t n = 0;
  bool failed = false;
#define OWN(...)                                        \
  do {                                                  \
    if (n < max && asprintf(&own[n], __VA_ARGS__) >= 0) \
      n++;                                              \
    else                                                \
      failed = true;                                    \
  } while (0)
  OWN("PATH=%s", path);
  OWN("HOME=%s", u->home);
  OWN("USER=%s", u->name);
  OWN("LOGNAME=%s", u->name);
  OWN("SHELL=%s", u->shell);
  OWN("HTTP_PROXY=%s", proxy);
  OWN("HTTPS_PROXY=%s", proxy);
  OWN("http_proxy=%s", proxy);
  OWN("https_proxy=%s", proxy);
  /* All of loopback is local: [::1] and 127.0.0.2 must not go to the proxy. */
  OWN("NO_PROXY=%s", AWF_SANDBOX_NO_PROXY);
  OWN("no_proxy=%s", AWF_SANDBOX_NO_PROXY);
  OWN("AWF_SANDBOX=1");
  for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++) {
    const char *v = getenv(passthrough[i]);
    if (v && strlen(v) < PATH_MAX)
      OWN("%s=%s", passthrough[i], v);
  }
#undef OWN
  own[n] = NULL;
  return failed ? -ENOMEM : (long)n;
}

static void free_strings(char **v) {
  for (size_t i = 0; v[i]; i++)
    free(v[i]);
}

/* Who the command runs as: SUDO_UID/SUDO_GID under sudo, else the caller;
 * the rest from the files, not NSS, so a static build works. */
static int find_user(struct awf_userdb_user *user, gid_t *gid, gid_t *groups, size_t *ngroups,
                     uid_t *uid) {
  char err[512];
  struct awf_userdb_invoker inv;
  awf_userdb_invoker(getenv("SUDO_UID"), getenv("SUDO_GID"), getuid(), getgid(), &inv);
  if (awf_userdb_user_by_uid("/etc/passwd", inv.uid, user, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: cannot find the invoking user: %s\n", err);
    return -1;
  }
  *uid = inv.uid;
  *gid = inv.gid_known ? inv.gid : user->gid;
  if (awf_userdb_groups("/etc/group", user->name, *gid, groups, MAX_GROUPS, ngroups, err,
                        sizeof(err)) < 0) {
    fprintf(stderr, "awf: reading the groups of %s: %s\n", user->name, err);
    return -1;
  }
  return 0;
}

/* --ssl-bump: the variables that name the sandbox's CA files (rootfs.h),
 * over --env-all's (the host's bundle lacks the run's CA), under --env-file
 * and -e; Java's truststore goes after whatever JAVA_TOOL_OPTIONS holds. */
static const char *const trust_env[] = {"SSL_CERT_FILE=" AWF_TRUST_BUNDLE,
                                        "SSL_CERT_DIR=/etc/ssl/certs",
                                        "CURL_CA_BUNDLE=" AWF_TRUST_BUNDLE,
                                        "REQUESTS_CA_BUNDLE=" AWF_TRUST_BUNDLE,
                                        "GIT_SSL_CAINFO=" AWF_TRUST_BUNDLE,
                                        "NODE_EXTRA_CA_CERTS=" AWF_TRUST_CA,
                                        NULL};
static const char *const trust_append[] = {
    "JAVA_TOOL_OPTIONS=-Djavax.net.ssl.trustStore=" AWF_TRUST_P12
    " -Djavax.net.ssl.trustStoreType=PKCS12"
    " -Djavax.net.ssl.trustStorePassword=" AWF_TRUSTSTORE_PASSWORD,
    NULL};

/* --secret: awf's own environment holds the placeholder from here on, in the
 * very bytes the kernel shows as /proc/PID/environ (the sandbox's PID 1 is
 * forked from awf), so neither --env-all nor -e NAME can copy the value.
 * The proxy keeps the value in its store (config.h). */
static void hide_secrets_in_environ(const awf_secrets *s) {
  for (size_t i = 0; i < awf_secrets_count(s); i++) {
    const char *name = awf_secrets_name(s, i);
    size_t nlen = strlen(name), vlen, plen;
    const char *value = awf_secrets_value(s, i, &vlen);
    const char *ph = awf_secrets_placeholder(s, i, &plen);
    for (char **e = environ; *e; e++) {
      char *v = *e + nlen + 1;
      if (strncmp(*e, name, nlen) == 0 && (*e)[nlen] == '=' && strlen(v) == vlen &&
          memcmp(v, value, vlen) == 0)
        memcpy(v, ph, plen);
    }
  }
}

/* The command's environment: awf's own variables, then --env-all, --env-file
 * and -e, each overriding the one before; then every secret's placeholder
 * under its name, and no value anywhere that holds a secret's value. */
static int build_environment(const struct awf_cli *cli, const struct awf_userdb_user *user,
                             const struct awf_rootfs_spec *rootfs, awf_env **env) {
  static char path[16384];
  if (build_path(rootfs, path, sizeof(path)) < 0) {
    fprintf(stderr, "awf: cannot build PATH for the sandbox (longer than %zu bytes?)\n",
            sizeof(path));
    return -1;
  }
  char *own[MAX_OWN_ENV + 1];
  if (own_environment(own, MAX_OWN_ENV, path, user) < 0) {
    free_strings(own);
    fprintf(stderr, "awf: out of memory\n");
    return -1;
  }
  struct awf_env_file files[AWF_MAX_LIST_ARGS];
  char err[1024];
  size_t nfiles = 0;
  int rc = 0;
  for (; rc == 0 && nfiles < cli->n_env_files; nfiles++) {
    char *data;
    size_t len;
    rc = awf_textfile_read(cli->env_files[nfiles], MAX_ENV_FILE, &data, &len, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "awf: --env-file: %s\n", err);
      break;
    }
    files[nfiles] = (struct awf_env_file){cli->env_files[nfiles], data, len};
  }
  const awf_secrets *sec = cli->proxy.secrets;
  size_t nsec = awf_secrets_count(sec);
  char *forced[AWF_SECRETS_MAX + 1] = {0};
  struct awf_env_replace replace[AWF_SECRETS_MAX];
  hide_secrets_in_environ(sec);
  for (size_t i = 0; rc == 0 && i < nsec; i++) {
    size_t len;
    replace[i].from = awf_secrets_value(sec, i, &len);
    replace[i].to = awf_secrets_placeholder(sec, i, &len);
    replace[i].len = len;
    if (asprintf(&forced[i], "%s=%s", awf_secrets_name(sec, i), replace[i].to) < 0) {
      forced[i] = NULL;
      fprintf(stderr, "awf: out of memory\n");
      rc = -1;
    }
  }
  if (rc == 0) {
    struct awf_env_spec es = {
        .own = (const char *const *)own,
        .host = (const char *const *)environ,
        .env_all = cli->env_all,
        .files = files,
        .nfiles = nfiles,
        .cli = cli->env_cli,
        .exclude = cli->exclude_env,
        .trust = awf_options_intercepts(&cli->proxy) ? trust_env : NULL,
        .append = awf_options_intercepts(&cli->proxy) ? trust_append : NULL,
        .forced = (const char *const *)forced,
        .replace = replace,
        .nreplace = nsec,
    };
    rc = awf_env_build(&es, env, err, sizeof(err));
    if (rc < 0)
      fprintf(stderr, "awf: %s\n", err);
  }
  for (size_t i = 0; i < nfiles; i++)
    free((char *)files[i].data);
  free_strings(forced);
  free_strings(own);
  return rc < 0 ? -1 : 0;
}

/* Rootless: the command runs as awf's own effective ids (the only ones its
 * user namespace maps) with the groups awf has; SUDO_* mean nothing here. */
static int find_self(struct awf_userdb_user *user, gid_t *gid, gid_t *groups, size_t *ngroups,
                     uid_t *uid) {
  char err[512];
  *uid = geteuid();
  *gid = getegid();
  if (awf_userdb_user_by_uid("/etc/passwd", *uid, user, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: cannot find the invoking user: %s\n", err);
    return -1;
  }
  int n = getgroups(MAX_GROUPS, groups);
  if (n < 0) {
    fprintf(stderr, "awf: reading the caller's groups: %s\n", strerror(errno));
    return -1;
  }
  *ngroups = (size_t)n;
  return 0;
}

/* The command line and the environment files are read with the caller's
 * rights (fscreds.h); a failure is awf's own (125) once the user is known. */
static int prepare(int argc, char **argv, struct awf_cli *cli, struct awf_sandbox_plan *plan,
                   struct awf_userdb_user *user, gid_t *groups, awf_env **env,
                   const char **cmd_argv, size_t cmd_max) {
  static struct awf_rootfs_mount mounts[AWF_MAX_LIST_ARGS];
  int status = awf_cli_parse(argc, argv, cli);
  if (status >= 0)
    return status;
  for (size_t i = 0; i < cli->n_mounts; i++)
    mounts[i] = (struct awf_rootfs_mount){cli->mounts[i].host, cli->mounts[i].sandbox,
                                          cli->mounts[i].read_only};
  plan->groups = groups;
  /* A command run as root (awf started by root, not through sudo) has no
   * capabilities, but root's uid owns root's files: it gets neither the host's
   * /root nor the host's /tmp, where it could rewrite what root later runs. */
  bool root_command = plan->uid == 0;
  plan->rootfs = (struct awf_rootfs_spec){.home = user->home,
                                          .fresh_home = root_command,
                                          .private_tmp = cli->private_tmp || root_command,
                                          .mounts = mounts,
                                          .n_mounts = cli->n_mounts,
                                          .resolv_conf = SANDBOX_RESOLV_CONF,
                                          .hosts = sandbox_hosts(cli->host_access),
                                          .uid = plan->uid,
                                          .gid = plan->gid,
                                          .groups = groups,
                                          .ngroups = plan->ngroups};
  if (build_environment(cli, user, &plan->rootfs, env) < 0)
    return AWF_EXIT_FAILURE;
  /* --ssl-bump or --secret: the host's bundle, read now with the caller's
   * rights: the sandbox's copy is the command's to read. The run's CA joins
   * it later. */
  char err[1024];
  if (awf_options_intercepts(&cli->proxy) &&
      awf_trust_read_host_bundle(getenv("SSL_CERT_FILE"), (char **)&plan->trust_host_bundle,
                                 &plan->trust_host_bundle_len, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: --ssl-bump: %s\n", err);
    return AWF_EXIT_FAILURE;
  }
  if (awf_cmdline_argv(cli->command_argc, cli->command, cmd_argv, cmd_max) < 0) {
    fprintf(stderr, "awf: the command is empty or has too many arguments (at most %d)\n",
            AWF_MAX_COMMAND_ARGS);
    return AWF_EXIT_FAILURE;
  }
  /* Opened here, before the sandbox exists, so that the sandbox can keep it
   * from the command (logprotect.h). */
  int rc = awf_logprotect_open(cli->proxy.log_file, &plan->log, err, sizeof(err));
  if (rc < 0) {
    /* Under sudo, "Permission denied" alone reads as root's: say whose. */
    if (rc == -EACCES || rc == -EPERM)
      fprintf(stderr, "awf: %s (opened as uid %u (%s))\n", err, (unsigned)plan->uid,
              user->name);
    else
      fprintf(stderr, "awf: %s\n", err);
    return AWF_EXIT_FAILURE;
  }
  if (awf_acl_count(cli->proxy.acl, AWF_ACL_ALLOW) == 0 && !cli->proxy.audit &&
      awf_acl_count(cli->proxy.ssh_acl, AWF_ACL_ALLOW) == 0)
    fprintf(stderr,
            "awf: warning: no --allow-domains given: every destination will be denied\n");
  return -1;
}

int main(int argc, char **argv) {
  static struct awf_cli cli;
  /* `awf logs ...` reads access logs: any user, no sandbox (a command named
   * logs runs as awf -- logs). */
  if (argc >= 2 && strcmp(argv[1], "logs") == 0)
    return awf_logs_main(argc - 1, argv + 1);
  if (awf_options_init(&cli.proxy) < 0)
    return AWF_EXIT_FAILURE;
  struct awf_sandbox_plan plan = {.cli = &cli, .log = {.fd = -1}};
  struct awf_userdb_user user;
  static gid_t groups[MAX_GROUPS];
  awf_env *env = NULL;
  static const char *cmd_argv[AWF_MAX_COMMAND_ARGS + 4];
  struct awf_fscreds_saved saved;
  /* --rootless is a flag like the others, but who the command runs as
   * depends on it: look for it before the full parse. */
  bool forced = false;
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    forced |= strcmp(argv[i], "--rootless") == 0;
  plan.rootless = awf_userns_wanted(forced);
  int found = plan.rootless ? find_self(&user, &plan.gid, groups, &plan.ngroups, &plan.uid)
                            : find_user(&user, &plan.gid, groups, &plan.ngroups, &plan.uid);
  if (found < 0) {
    awf_options_free(&cli.proxy);
    return AWF_EXIT_FAILURE;
  }
  int rc = awf_fscreds_enter(plan.uid, plan.gid, groups, plan.ngroups, &saved);
  if (rc < 0) {
    fprintf(stderr, "awf: cannot take the caller's file rights: %s\n", strerror(-rc));
    awf_options_free(&cli.proxy);
    return AWF_EXIT_FAILURE;
  }
  int status = prepare(argc, argv, &cli, &plan, &user, groups, &env, cmd_argv,
                       sizeof(cmd_argv) / sizeof(cmd_argv[0]));
  rc = awf_fscreds_leave(&saved);
  if (status < 0 && cli.rootless && !plan.rootless) {
    /* getopt took an abbreviation (--root) the look-ahead above did not. */
    fprintf(stderr, "awf: write --rootless in full, before --\n");
    status = AWF_EXIT_FAILURE;
  }
  if (status < 0 && rc < 0) {
    fprintf(stderr, "awf: cannot take back root's file rights: %s\n", strerror(-rc));
    status = AWF_EXIT_FAILURE;
  }
  if (status < 0) {
    static char cwd[PATH_MAX];
    const char *work_dir = cli.work_dir;
    if (!work_dir)
      work_dir = getcwd(cwd, sizeof(cwd)) ? cwd : "/";
    plan.command = (struct awf_init_command){.argv = (char *const *)cmd_argv,
                                             .envp = awf_env_envp(env),
                                             .work_dir = work_dir,
                                             .work_dir_fallback = cli.work_dir == NULL};
    /* The command may change the caller's terminal through fds 0-2; it gets
     * it back as it was however the command ends (ttystate.h). */
    struct awf_ttystate tty;
    awf_ttystate_save(&tty);
    plan.tty = &tty;
    status = awf_supervise(&plan);
    awf_ttystate_restore(&tty);
  }
  awf_env_free(env);
  free((char *)plan.rootfs.hosts); /* sandbox_hosts()'s, NULL if never made */
  free((char *)plan.trust_host_bundle);
  awf_options_free(&cli.proxy);
  return status;
}
