/* workers.h: extra engines for awf-proxy --workers and awf --workers, each
 * on a loop and thread of its own, beside the first engine the caller runs
 * on its own loop. Each has its own resolver (c-ares channel), upstream
 * pool and log writer (awf_logfile_writer_new: lines batched without a
 * lock, handed to the one log once per loop iteration); the rules are the
 * caller's, shared read-only; the connection caps are cfg.group's.
 *
 * Everything is made on the caller's thread before any worker thread
 * starts, so a loop is only ever used by the one thread that runs it. The
 * caller gives each engine its listening sockets (awf_workers_engine)
 * between awf_workers_new and awf_workers_start. */
#ifndef AWF_WORKERS_H
#define AWF_WORKERS_H

#include <stddef.h>

#include "proxy.h"
#include "resolver.h"

typedef struct awf_workers awf_workers;

/* n extra engines over cfg (its resolver and log are replaced: a resolver
 * made from ro, a writer of cfg->log). Returns 0, or a negative errno with
 * the reason in err (nothing is left). n 0: *out NULL, nothing to do. */
int awf_workers_new(unsigned n, const struct awf_proxy_config *cfg,
                    const struct awf_resolver_options *ro, awf_workers **out, char *err,
                    size_t errlen);

unsigned awf_workers_count(const awf_workers *ws);
awf_proxy *awf_workers_engine(awf_workers *ws, unsigned i);

/* Start the threads. Returns 0 or a negative errno (the workers not started
 * are run to their end by awf_workers_free). */
int awf_workers_start(awf_workers *ws);

/* The counters of the i-th extra engine and its resolver (metrics.h), for
 * awf_metrics_sum() from any thread until awf_workers_free, also after the
 * engine finished. */
const struct awf_metrics *awf_workers_metrics(const awf_workers *ws, unsigned i);

/* A reload, from the caller's thread: every extra engine takes the new
 * rules (awf_proxy_set_rules, on its own loop, through its command
 * channel), and this returns once each has them, or has no engine left:
 * from then on no worker can reach the rules it judged by before, and the
 * caller may free them. The wait is one turn of each worker's loop. The
 * rules must live until the next call returns. */
void awf_workers_set_rules(awf_workers *ws, const awf_acl *acl, const awf_url_rules *url_rules,
                           const struct awf_port_set *ports);

/* From any thread: every engine shuts down (awf_proxy_shutdown: it drains
 * for its shutdown grace), closes its resolver, and its thread ends. Like
 * a reload (awf_workers_set_rules), it goes through each worker's command
 * channel (a uv_async and CMD_ bits). */
void awf_workers_stop(awf_workers *ws);

/* `done`, a uv_async of the caller's loop (made and closed by the caller),
 * is sent once every worker's engine has finished (after awf_workers_stop,
 * when the last drain ends), from that worker's thread. NULL: no longer
 * (then the caller may close its handle; workers never started finish only
 * in awf_workers_free). */
void awf_workers_notify_done(awf_workers *ws, uv_async_t *done);

/* Stop (if not yet), wait for every thread, close the writers, free. NULL
 * is fine. Returns true if a loop had handles left open. */
bool awf_workers_free(awf_workers *ws);

/* --workers' default for awf-proxy: the CPUs this process may run on
 * (sched_getaffinity), at least 1. */
unsigned awf_workers_cpus(void);

#endif
