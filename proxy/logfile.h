/* logfile.h: the JSONL access-log sink. Each record becomes exactly one
 * write(2) of a complete line to a file opened O_APPEND, so lines are never
 * interleaved or cut, even with several writers or a log rotator. */
#ifndef AWF_LOGFILE_H
#define AWF_LOGFILE_H

#include <stdbool.h>

#include "jsonlog.h"

typedef struct awf_logfile awf_logfile;

/* path: a file (created 0640 if missing, appended to), "-" for stdout, or
 * NULL for no log (writes succeed and go nowhere). Returns 0 or -errno. */
int awf_logfile_open(const char *path, awf_logfile **out);

/* A file the caller opened (O_WRONLY | O_APPEND), taken over: closed with
 * the log. Never reopened (awf_logfile_reopen is a no-op for it). Returns 0
 * or -ENOMEM (fd is then left open). */
int awf_logfile_open_fd(int fd, awf_logfile **out);

/* The run id: 16 hex digits drawn at random when the log was opened, put
 * in every record written through it, so runs sharing a file stay apart. */
const char *awf_logfile_run(const awf_logfile *lf);

/* Format and write one record (its run field is the log's run id). Returns 0 or -errno (the line is then lost
 * whole, never written in part; a short write is completed, EINTR retried). */
int awf_logfile_write(awf_logfile *lf, const struct awf_log_record *r);

/* A reader of every record written through lf, the `run` record included,
 * also when there is no log file (path NULL): awf counts them for the
 * GitHub step summary. fn sees the record with its run id, before it is
 * formatted; NULL removes it. */
typedef void (*awf_logfile_tap_fn)(void *ud, const struct awf_log_record *r);
void awf_logfile_set_tap(awf_logfile *lf, awf_logfile_tap_fn fn, void *ud);

/* The `run` record a process writes once at start: its version and, for awf,
 * the command it runs (argv, NULL-terminated; NULL for none). A command line
 * too long for one line is left out of the record. Returns as
 * awf_logfile_write. */
int awf_logfile_write_run(awf_logfile *lf, const char *version, const char *const *argv);

/* Batching: whole lines gather in memory (at most 64 KiB) until
 * awf_logfile_flush(), and leave in one write(2), still whole lines with
 * O_APPEND. The proxy engine turns it on and flushes once per event-loop
 * iteration, before the loop waits. Turning it off flushes. */
void awf_logfile_set_batching(awf_logfile *lf, bool on);
/* Write the batched lines. Returns 0 or -errno (those lines are counted lost). */
int awf_logfile_flush(awf_logfile *lf);

/* Reopen the same path (after rotation, on SIGHUP). On failure keeps the old
 * descriptor and returns -errno. No-op for stdout, NULL and an adopted fd. */
int awf_logfile_reopen(awf_logfile *lf);

/* Lines written and lines lost to write errors, for diagnostics. */
unsigned long awf_logfile_lost(const awf_logfile *lf);

void awf_logfile_close(awf_logfile *lf);

#endif
