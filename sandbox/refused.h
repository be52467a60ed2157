/* refused.h: logs what the sandbox's firewall refused (nflog.h) as access-log
 * lines and summary entries, on the supervisor's loop: TCP to a port that is
 * not let out, UDP (QUIC included), ICMP and other protocols. The proxy never
 * sees these, so without this they would be denials nobody is told about. */
#ifndef AWF_REFUSED_H
#define AWF_REFUSED_H

#include <uv.h>

#include "denials.h"
#include "logfile.h"

typedef struct awf_refused awf_refused;

/* Watch the NFLOG socket `fd` (taken over: closed by awf_refused_close).
 * log and denials may be NULL and must outlive the watcher. Returns 0 or
 * -ENOMEM (fd is closed then). */
int awf_refused_start(uv_loop_t *loop, int fd, awf_logfile *log, awf_denials *denials,
                      awf_refused **out);

/* Read what is still queued, then close. The memory goes once the loop has
 * run the close callback. */
void awf_refused_close(awf_refused *r);

/* The log reason for a refused packet of this IP protocol. */
enum awf_reason awf_refused_reason(uint8_t proto);

#endif
