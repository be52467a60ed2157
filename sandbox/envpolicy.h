/* envpolicy.h: the environment the sandboxed command starts with.
 *
 * Layers, lowest precedence first; a later layer replaces a name set by an
 * earlier one:
 *   1. awf's own variables (PATH, HOME, USER, LOGNAME, proxy variables, ...),
 *   2. toolchain pass-through: GOROOT, JAVA_HOME, DOTNET_ROOT, CARGO_HOME and
 *      BUN_INSTALL from the host environment when set, even without
 *      --env-all (hosted runners need them to find their tools),
 *   3. --env-all: the host environment, minus the reserved names below,
 *   4. awf's trust variables (--ssl-bump: SSL_CERT_FILE, CURL_CA_BUNDLE...),
 *      over what --env-all copied from the host (the host's bundle lacks
 *      the run's CA) but under what the user names explicitly:
 *   5. --env-file files, in the order given,
 *   6. -e entries, in the order given,
 *   7. appended values (--ssl-bump: JAVA_TOOL_OPTIONS' truststore): each
 *      added after the value its name has from the layers above, a space
 *      between them, or set alone,
 *   8. forced entries (awf's --secret placeholders): nothing overrides them.
 *
 * Reserved names, never taken from the host by layers 2 and 3: PATH (awf
 * rebuilds it), HOME, USER, LOGNAME (from the user's passwd entry), PWD,
 * OLDPWD, SHLVL, "_", every name starting with "SUDO_", and every proxy
 * variable: a name that ends in "_proxy" compared without case (http_proxy,
 * HTTPS_PROXY, no_proxy, ALL_PROXY, ftp_proxy, socks_proxy, ...). Layers 2
 * and 3 also skip values longer than 64 KiB, entries without '=' and names
 * that are not valid (exported bash functions such as "BASH_FUNC_f%%").
 * --env-file and -e may set any name, reserved ones included.
 *
 * Replacements (awf's --secret): every occurrence of a replacement's `from`
 * in any value of the result becomes its `to`, of the same length, so no
 * variable of any name carries a secret's value into the sandbox.
 *
 * --exclude-env NAME removes NAME from layers 2 and 3 only: naming a variable
 * in an env file or with -e is explicit and wins.
 *
 * -e NAME=VALUE sets NAME; -e NAME (no '=') copies NAME from the host
 * environment as docker does (so a secret need not appear in the process
 * list) and sets nothing when the host does not have it.
 *
 * Env-file format, one assignment per line ('\n'; a '\r' before it is
 * dropped):
 *   - blank lines and lines whose first non-blank byte is '#' are ignored;
 *     there are no comments after a value;
 *   - leading spaces and tabs are ignored, then an optional "export" followed
 *     by spaces or tabs;
 *   - NAME=VALUE: NAME runs to the first '=' and must be a valid name (no
 *     blanks around it); VALUE is everything after that '=', byte for byte,
 *     blanks, '=' and '#' included;
 *   - a VALUE that starts with ' or " must end with the same quote and hold
 *     no other one; the quotes are removed and nothing inside is interpreted
 *     (no escapes, no $expansion, no multi-line values);
 *   - a line without '=', a bad name, a bad quote or a NUL byte is an error
 *     naming FILE:LINE.
 *
 * Valid names: [A-Za-z_][A-Za-z0-9_]*, at most AWF_ENV_NAME_MAX bytes.
 * The result holds each name once, sorted by name (bytewise), so the same
 * inputs always give the same envp. */
#ifndef AWF_ENVPOLICY_H
#define AWF_ENVPOLICY_H

#include <stddef.h>

#define AWF_ENV_NAME_MAX 1024
#define AWF_ENV_INHERIT_VALUE_MAX 65536 /* longer host values are not inherited */
#define AWF_ENV_ENTRY_MAX 131071        /* "NAME=VALUE" bytes: execve's MAX_ARG_STRLEN - 1 */
#define AWF_ENV_MAX_VARS 4096
#define AWF_ENV_MAX_BYTES (1u << 20) /* sum of entry lengths + NULs */
#define AWF_ENV_FILE_MAX (1u << 20)  /* suggested read cap for env files */

typedef struct awf_env awf_env;

struct awf_env_file {
  const char *path; /* for messages */
  const char *data; /* contents, len bytes (NULs are rejected, not a terminator) */
  size_t len;
};

/* from[0..len) becomes to[0..len) wherever it occurs in a value. */
struct awf_env_replace {
  const char *from, *to;
  size_t len;
};

/* Inputs. Lists are NULL-terminated and may themselves be NULL (empty). */
struct awf_env_spec {
  const char *const *own;           /* awf's own "NAME=VALUE" entries */
  const char *const *host;          /* the host environment, "NAME=VALUE" (environ) */
  int env_all;                      /* --env-all given */
  const struct awf_env_file *files; /* --env-file contents, nfiles of them */
  size_t nfiles;
  const char *const *cli;                /* -e arguments */
  const char *const *exclude;            /* --exclude-env names */
  const char *const *trust;              /* layer 4, awf's "NAME=VALUE" entries */
  const char *const *append;             /* layer 7, awf's "NAME=VALUE" entries */
  const char *const *forced;             /* layer 8, awf's "NAME=VALUE" entries */
  const struct awf_env_replace *replace; /* nreplace of them */
  size_t nreplace;
};

/* Build the environment. Returns 0 and *out, or -errno with a message:
 * -EINVAL for a bad name, -e, env-file line or own entry (the message names
 * the argument, or FILE:LINE); -E2BIG when an entry exceeds AWF_ENV_ENTRY_MAX
 * or the result exceeds AWF_ENV_MAX_VARS or AWF_ENV_MAX_BYTES; -ENOMEM. */
int awf_env_build(const struct awf_env_spec *spec, awf_env **out, char *err, size_t errsz);

/* The NULL-terminated envp, owned by env and valid until awf_env_free. */
char *const *awf_env_envp(const awf_env *env);

/* Number of entries in the envp (without the NULL). */
size_t awf_env_count(const awf_env *env);

/* The value of `name`, or NULL. */
const char *awf_env_get(const awf_env *env, const char *name);

void awf_env_free(awf_env *env);

/* 1 when s[0..len) is a valid variable name. */
int awf_env_name_valid(const char *s, size_t len);

/* 1 when the host's value of s[0..len) is never inherited (reserved above). */
int awf_env_name_reserved(const char *s, size_t len);

#endif
