/* workers.c: extra engines on threads of their own (workers.h). */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

enum { CMD_STOP = 1, CMD_RULES = 2 };

struct worker {
  awf_workers *ws;
  uv_loop_t loop;
  bool loop_ready, started;
  awf_proxy *proxy;
  awf_resolver *resolver;
  awf_logfile *log; /* a writer */
  uv_async_t ctl;   /* commands from other threads */
  bool ctl_closed;  /* under ws->mu: no command is sent any more */
  atomic_uint cmd;  /* CMD_ bits not handled yet */
  pthread_t thread;
  /* The engine's and its resolver's counters, here so that a scrape from
   * another thread may read them until awf_workers_free, also once the
   * engine is gone (awf_proxy_config.metrics). */
  struct awf_metrics metrics;
};

struct awf_workers {
  pthread_mutex_t mu; /* over each worker's ctl_closed, and the rules below */
  /* A reload (awf_workers_set_rules): the new rules, and how many workers
   * have not taken them yet; `switched` is signalled as that reaches 0. */
  pthread_cond_t switched;
  const awf_acl *acl;
  const awf_url_rules *url_rules;
  const struct awf_port_set *ports;
  unsigned rules_pending;
  /* awf_workers_notify_done: sent when `live` (workers whose command
   * channel is open) reaches 0. */
  uv_async_t *done;
  unsigned live;
  unsigned n;
  struct worker w[];
};

/* Under ws->mu: this worker is done with a reload (took the rules, or has
 * no engine left to take them). */
static void rules_done_locked(awf_workers *ws) {
  if (ws->rules_pending > 0 && --ws->rules_pending == 0)
    pthread_cond_broadcast(&ws->switched);
}

/* The last handle: once closed, nothing keeps the loop running. A reload
 * sent before it closed, whose callback will not run now, is answered
 * here: the engine is gone, it holds no rules. */
static void close_ctl(struct worker *w) {
  pthread_mutex_lock(&w->ws->mu);
  bool closed = w->ctl_closed;
  w->ctl_closed = true;
  if (!closed && (atomic_fetch_and(&w->cmd, ~(unsigned)CMD_RULES) & CMD_RULES))
    rules_done_locked(w->ws);
  if (!closed && --w->ws->live == 0 && w->ws->done)
    uv_async_send(w->ws->done);
  pthread_mutex_unlock(&w->ws->mu);
  if (!closed)
    uv_close((uv_handle_t *)&w->ctl, NULL);
}

static void on_proxy_done(void *arg) {
  struct worker *w = arg;
  w->proxy = NULL;
  awf_resolver_close(w->resolver);
  w->resolver = NULL;
  close_ctl(w);
}

/* Shut down what is there; the loop then runs to its end. */
static void worker_stop(struct worker *w) {
  if (w->proxy) {
    awf_proxy_shutdown(w->proxy, on_proxy_done, w);
    return;
  }
  if (w->resolver)
    awf_resolver_close(w->resolver);
  w->resolver = NULL;
  close_ctl(w);
}

/* A reload: this engine judges by the new rules from its next callback on
 * (awf_proxy_set_rules), and says so. */
static void take_rules(struct worker *w) {
  awf_workers *ws = w->ws;
  pthread_mutex_lock(&ws->mu);
  if (w->proxy)
    awf_proxy_set_rules(w->proxy, ws->acl, ws->url_rules, ws->ports);
  rules_done_locked(ws);
  pthread_mutex_unlock(&ws->mu);
}

static void on_ctl(uv_async_t *h) {
  struct worker *w = h->data;
  unsigned cmd = atomic_exchange(&w->cmd, 0);
  if (cmd & CMD_RULES)
    take_rules(w);
  if (cmd & CMD_STOP)
    worker_stop(w);
}

static int worker_init(struct worker *w, const struct awf_proxy_config *base,
                       const struct awf_resolver_options *ro, char *err, size_t errlen) {
  int rc = uv_loop_init(&w->loop);
  if (rc < 0) {
    snprintf(err, errlen, "cannot start a worker: %s", uv_strerror(rc));
    return rc;
  }
  w->loop_ready = true;
  uv_async_init(&w->loop, &w->ctl, on_ctl);
  w->ctl.data = w;
  w->ctl_closed = false; /* no thread runs yet: no lock needed */
  rc = awf_resolver_new(&w->loop, ro, &w->resolver, err, errlen);
  if (rc < 0) {
    if (rc != -EINVAL)
      snprintf(err, errlen, "cannot start a worker's resolver: %s", strerror(-rc));
    return rc;
  }
  if (base->log && (rc = awf_logfile_writer_new(base->log, &w->log)) < 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  awf_resolver_set_metrics(w->resolver, &w->metrics);
  struct awf_proxy_config cfg = *base;
  cfg.resolver = w->resolver;
  cfg.log = w->log;
  cfg.metrics = &w->metrics;
  if ((rc = awf_proxy_new(&w->loop, &cfg, &w->proxy)) < 0) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  return 0;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

int awf_workers_new(unsigned n, const struct awf_proxy_config *cfg,
                    const struct awf_resolver_options *ro, awf_workers **out, char *err,
                    size_t errlen) {
  *out = NULL;
  if (n == 0)
    return 0;
  awf_workers *ws = calloc(1, sizeof(*ws) + n * sizeof(ws->w[0]));
  if (!ws) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  ws->n = n;
  pthread_mutex_init(&ws->mu, NULL);
  pthread_cond_init(&ws->switched, NULL);
  for (unsigned i = 0; i < n; i++) {
    ws->w[i].ws = ws;
    ws->w[i].ctl_closed = true; /* until it is made */
    atomic_init(&ws->w[i].cmd, 0);
    awf_metrics_init(&ws->w[i].metrics);
    int rc = worker_init(&ws->w[i], cfg, ro, err, errlen);
    if (rc < 0) {
      awf_workers_free(ws);
      return rc;
    }
  }
  ws->live = n; /* no thread runs yet: no lock needed */
  *out = ws;
  return 0;
}

unsigned awf_workers_count(const awf_workers *ws) { return ws ? ws->n : 0; }

awf_proxy *awf_workers_engine(awf_workers *ws, unsigned i) { return ws->w[i].proxy; }

const struct awf_metrics *awf_workers_metrics(const awf_workers *ws, unsigned i) {
  return &ws->w[i].metrics;
}

int awf_workers_start(awf_workers *ws) {
  for (unsigned i = 0; ws && i < ws->n; i++) {
    int rc = pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]);
    if (rc != 0)
      return -rc;
    ws->w[i].started = true;
  }
  return 0;
}

void awf_workers_stop(awf_workers *ws) {
  if (!ws)
    return;
  pthread_mutex_lock(&ws->mu);
  for (unsigned i = 0; i < ws->n; i++) {
    if (ws->w[i].ctl_closed)
      continue;
    atomic_fetch_or(&ws->w[i].cmd, CMD_STOP);
    uv_async_send(&ws->w[i].ctl);
  }
  pthread_mutex_unlock(&ws->mu);
}

void awf_workers_notify_done(awf_workers *ws, uv_async_t *done) {
  if (!ws)
    return;
  pthread_mutex_lock(&ws->mu);
  ws->done = done;
  pthread_mutex_unlock(&ws->mu);
}

void awf_workers_set_rules(awf_workers *ws, const awf_acl *acl, const awf_url_rules *url_rules,
                           const struct awf_port_set *ports) {
  if (!ws)
    return;
  pthread_mutex_lock(&ws->mu);
  ws->acl = acl;
  ws->url_rules = url_rules;
  ws->ports = ports;
  ws->rules_pending = 0;
  for (unsigned i = 0; i < ws->n; i++) {
    /* An engine gone holds no rules; one whose loop no thread runs yet is
     * set from here. */
    if (ws->w[i].ctl_closed)
      continue;
    if (!ws->w[i].started) {
      if (ws->w[i].proxy)
        awf_proxy_set_rules(ws->w[i].proxy, acl, url_rules, ports);
      continue;
    }
    ws->rules_pending++;
    atomic_fetch_or(&ws->w[i].cmd, CMD_RULES);
    uv_async_send(&ws->w[i].ctl);
  }
  while (ws->rules_pending > 0)
    pthread_cond_wait(&ws->switched, &ws->mu);
  ws->acl = NULL;
  ws->url_rules = NULL;
  ws->ports = NULL;
  pthread_mutex_unlock(&ws->mu);
}

bool awf_workers_free(awf_workers *ws) {
  if (!ws)
    return false;
  bool left_open = false;
  awf_workers_stop(ws);
  for (unsigned i = 0; i < ws->n; i++) {
    struct worker *w = &ws->w[i];
    if (w->started)
      pthread_join(w->thread, NULL);
    else if (w->loop_ready)
      worker_main(w); /* never started: its stop command runs here */
    if (w->loop_ready && uv_loop_close(&w->loop) < 0)
      left_open = true;
    awf_logfile_close(w->log); /* hands over what it still batches */
  }
  pthread_cond_destroy(&ws->switched);
  pthread_mutex_destroy(&ws->mu);
  free(ws);
  return left_open;
}

unsigned awf_workers_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return (unsigned)CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}
