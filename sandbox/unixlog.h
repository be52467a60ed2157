/* unixlog.h: the UNIX socket gate's decisions (unixgate.h) as access-log
 * lines and summary entries, on the supervisor's loop. The gate's threads
 * write fixed-size reports into a pipe; this end reads them, so no memory is
 * shared between the gate's threads and the loop. */
#ifndef AWF_UNIXLOG_H
#define AWF_UNIXLOG_H

#include <uv.h>

#include "denials.h"
#include "logfile.h"

typedef struct awf_unixlog awf_unixlog;

/* A pipe whose write end (*write_fd, non-blocking, close-on-exec) goes to
 * the gate (awf_unixgate_config.report_fd); log and denials may be NULL and
 * must outlive the reader. Returns 0 or -errno. */
int awf_unixlog_start(uv_loop_t *loop, awf_logfile *log, awf_denials *denials, int *write_fd,
                      awf_unixlog **out);

/* Read what is queued, then close. NULL is a no-op. */
void awf_unixlog_close(awf_unixlog *u);

#endif
