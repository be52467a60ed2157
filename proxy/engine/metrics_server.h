/* metrics_server.h: a tiny HTTP/1.1 server on the loop for --metrics-listen:
 * GET (or HEAD) /metrics answers the Prometheus text format 0.0.4 of what
 * the owner's collect callback sums (metrics.h), GET /healthz answers 200
 * "ok" while serving and 503 once the owner says it is stopping. Other
 * paths get 404, other methods 405. One request per connection (the answer
 * closes it); bounded: AWF_METRICS_MAX_CLIENTS connections at once (more
 * are closed at accept), a request head of at most 8 KiB, 10 s per
 * connection. Requests are parsed with llhttp. */
#ifndef AWF_METRICS_SERVER_H
#define AWF_METRICS_SERVER_H

#include <sys/socket.h>
#include <uv.h>

#include "metrics.h"

#define AWF_METRICS_MAX_CLIENTS 16

typedef struct awf_metrics_server awf_metrics_server;

struct awf_metrics_server_config {
  /* Fill *sum for one scrape: awf_metrics_sum() over every engine
   * instance, then the process-wide values (the access log's counts). */
  void (*collect)(void *arg, struct awf_metrics *sum);
  void *arg;
  struct awf_metrics_build build;
};

/* Listen on addr (*bound, may be NULL, gets the address bound), or on fd, a
 * bound TCP socket (systemd's; owned by the server from here on, also on
 * failure). The config is copied. 0 or a uv error (nothing left open). */
int awf_metrics_server_new(uv_loop_t *loop, const struct awf_metrics_server_config *cfg,
                           const struct sockaddr *addr, struct sockaddr_storage *bound,
                           awf_metrics_server **out);
int awf_metrics_server_new_fd(uv_loop_t *loop, const struct awf_metrics_server_config *cfg,
                              int fd, awf_metrics_server **out);

/* From now on /healthz answers 503 (a shutdown under way). */
void awf_metrics_server_set_stopping(awf_metrics_server *s);

/* Stop listening and close every connection; the server is freed once
 * libuv has closed its handles (run the loop). */
void awf_metrics_server_close(awf_metrics_server *s);

#endif
