/* cgroup.h: the sandbox's resource limits (--memory-limit, --pids-limit,
 * --cpus) in a cgroup of its own.
 *
 * awf makes one directory, awf-<pid>-<starttime>, next to its own cgroup's
 * processes: on cgroup v2 under the nearest cgroup at or above awf's own
 * whose cgroup.subtree_control already enables the controllers (awf never
 * changes a subtree_control it did not create: a populated cgroup cannot
 * enable controllers for its children, the "no internal processes" rule);
 * on cgroup v1 under awf's own cgroup in each of the memory, pids and cpu
 * hierarchies. The sandbox's PID 1 is moved in before it runs anything, so
 * every process of the sandbox is in it. At the end what is left is killed
 * and the directory removed; a directory whose owner died without removing
 * it (awf SIGKILLed) is removed by the next awf that starts there, once it is
 * empty: its name says which process made it, and that process is gone.
 *
 * The parsers are pure (unit-tested); the rest touches /sys/fs/cgroup. */
#ifndef AWF_CGROUP_H
#define AWF_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AWF_CGROUP_DEFAULT_MEMORY "6g" /* the reference's defaults */
#define AWF_CGROUP_DEFAULT_PIDS 1000
#define AWF_CGROUP_CPU_PERIOD_US 100000 /* cpu.max / cpu.cfs_period_us */
#define AWF_CGROUP_MAX_CPUS 4096
#define AWF_CGROUP_MAX_PIDS 4194304 /* the kernel's PID_MAX_LIMIT */

enum awf_cgroup_ctl { AWF_CG_MEMORY, AWF_CG_PIDS, AWF_CG_CPU, AWF_CG_N };

struct awf_cgroup_limits {
  uint64_t memory;          /* bytes; 0: none */
  uint64_t pids;            /* 0: none */
  uint64_t cpu_quota_us;    /* per AWF_CGROUP_CPU_PERIOD_US; 0: none */
  const char *memory_text;  /* the --memory-limit value, for messages */
  bool explicit_[AWF_CG_N]; /* given on the command line (not a default) */
  bool debug;               /* --log-level debug: say why defaults were skipped */
};

/* The defaults: 6g, 1000 processes, no CPU limit. */
void awf_cgroup_limits_default(struct awf_cgroup_limits *l);

/* "512m", "6g", "65536" (bytes), suffixes k m g t (powers of 1024,
 * either case, an optional trailing b): at least 1 MiB. 0 or -EINVAL. */
int awf_cgroup_parse_size(const char *s, uint64_t *bytes);
/* A whole number from 1 to AWF_CGROUP_MAX_PIDS. 0 or -EINVAL. */
int awf_cgroup_parse_pids(const char *s, uint64_t *n);
/* CPUs, fractions allowed ("1.5"), from 0.01 to AWF_CGROUP_MAX_CPUS: the
 * quota in microseconds per AWF_CGROUP_CPU_PERIOD_US. 0 or -EINVAL. */
int awf_cgroup_parse_cpus(const char *s, uint64_t *quota_us);

/* The cgroup path of `controller` ("memory") in /proc/<pid>/cgroup's text,
 * or the cgroup v2 path ("0::/x") when controller is NULL. 0, -ENOENT, or
 * -ENAMETOOLONG. */
int awf_cgroup_proc_path(const char *text, const char *controller, char *out, size_t outlen);

struct awf_cgroup_mount {
  char root[4096];  /* the hierarchy's directory mounted there */
  char point[4096]; /* where, octal escapes (\040) decoded */
};
/* The mount of the v1 hierarchy holding `controller`, or of cgroup2 when
 * controller is NULL, in /proc/self/mountinfo's text. 0 or -ENOENT. */
int awf_cgroup_find_mount(const char *mountinfo, const char *controller,
                          struct awf_cgroup_mount *m);
/* The directory of cgroup `path` under mount m. -ENOENT when the path is
 * not below the mount's root. */
int awf_cgroup_dir(const struct awf_cgroup_mount *m, const char *path, char *out,
                   size_t outlen);

/* Is `word` in a list separated by spaces or commas ("cpu memory pids")? */
bool awf_cgroup_list_has(const char *list, const char *word);
/* The value of "KEY VALUE" line `key` (memory.events, memory.oom_control,
 * pids.events). 0 or -ENOENT. */
int awf_cgroup_keyed_value(const char *text, const char *key, uint64_t *v);
/* Field 22 (starttime) of /proc/<pid>/stat's text. 0 or -EINVAL. */
int awf_cgroup_stat_starttime(const char *text, unsigned long long *start);
/* "awf-<pid>-<starttime>": 0 and its parts, or -EINVAL for any other name. */
int awf_cgroup_parse_name(const char *name, pid_t *pid, unsigned long long *start);

typedef struct awf_cgroup awf_cgroup;

/* Makes the sandbox's cgroup with the limits set (first removing stale
 * awf-* directories beside it). *out is NULL when no limit could be
 * applied and none was asked for explicitly (a debug line says why). A
 * limit asked for that the kernel cannot apply is an error (message in
 * err, negative errno). */
int awf_cgroup_create(const struct awf_cgroup_limits *l, awf_cgroup **out, char *err,
                      size_t errlen);
/* Moves `pid` (the sandbox's PID 1, before it runs anything) in. cg may be
 * NULL. */
int awf_cgroup_attach(awf_cgroup *cg, pid_t pid, char *err, size_t errlen);
/* Once the sandbox's PID 1 is reaped: kills what is left in the cgroup,
 * says on stderr if the out-of-memory killer struck (and if the pids limit
 * refused forks), removes the directories and frees cg (may be NULL).
 * `exit_status` is awf's (137: the command died of SIGKILL). */
void awf_cgroup_finish(awf_cgroup *cg, int exit_status);

#endif
