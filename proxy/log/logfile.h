/* logfile.h: the JSONL access-log sink. Records leave as whole lines, in
 * write(2)s of whole lines to a file opened O_APPEND, so lines are never
 * interleaved, even with several writers or a log rotator, and never cut:
 * a write cut short (a full disk) is taken back in a regular file, or
 * completed first thing later on a pipe. Lines that cannot be written (no
 * room, a quota, EIO, a stdout pipe not read) wait in memory, in order, up
 * to AWF_LOGFILE_BACKLOG_MAX bytes, and each later write or flush tries
 * again; past that they are lost and counted, and a log_lost record is
 * written where they are missing once the log takes lines again. A regular
 * file gets AWF_LOGFILE_RESERVE bytes reserved past its end (fallocate,
 * size unchanged), renewed as they are used, so filling its filesystem
 * does not stop the next lines. */
#ifndef AWF_LOGFILE_H
#define AWF_LOGFILE_H

#include <stdbool.h>

#include "jsonlog.h"

#define AWF_LOGFILE_BACKLOG_MAX (8 * 1024 * 1024)
#define AWF_LOGFILE_RESERVE (4 * 1024 * 1024)

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

/* Format and write one record (its run field is the log's run id). Returns
 * 0, or -errno when that is news: a record that cannot be formatted (too
 * long: lost, counted), the log starting to fail (the lines wait in memory),
 * or, once per outage, lines starting to be lost. While the log keeps
 * failing, 0. */
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

/* Batching: whole lines gather in memory (64 KiB at most) until
 * awf_logfile_flush(), and leave in one write(2), still whole lines with
 * O_APPEND. The proxy engine turns it on and flushes once per event-loop
 * iteration, before the loop waits. Turning it off flushes. */
void awf_logfile_set_batching(awf_logfile *lf, bool on);
/* Write the lines waiting (batched, or kept while the log failed). Returns
 * as awf_logfile_write. */
int awf_logfile_flush(awf_logfile *lf);

/* Reopen the same path (after rotation, on SIGHUP). On failure keeps the old
 * descriptor and returns -errno. No-op for stdout, NULL and an adopted fd. */
int awf_logfile_reopen(awf_logfile *lf);

/* Lines lost for good so far (the backlog full, a record too long, an
 * error that will not pass), and lines waiting in memory to be written. */
unsigned long awf_logfile_lost(const awf_logfile *lf);
/* Records handed to awf_logfile_write (0 without a file): those written,
 * waiting and lost (log_lost records not counted); the log's and all its
 * writers' (an atomic count: any thread may ask). */
unsigned long awf_logfile_taken(const awf_logfile *lf);
unsigned long awf_logfile_pending(const awf_logfile *lf);

/* At exit (close does it too): a last try at the waiting lines (waiting
 * for a stalled pipe once), and a log_lost record if lines were lost. Lines
 * still not written are lost then. Returns the lines lost over the log's
 * life (0: the log is complete); *err, if not NULL, gets the last write
 * error (-errno, 0 for none). Once only; later calls just report. */
unsigned long awf_logfile_finish(awf_logfile *lf, int *err);

/* Several threads: every call on a log holds its mutex, so any thread may
 * use it. For an engine per thread (awf-proxy --workers), a writer is
 * cheaper: a handle of the same log whose lines are formatted and batched
 * without the lock, and handed to the log (under it, written in one
 * write(2) of whole lines) when the batch is a chunk, at every
 * awf_logfile_flush(), or at once when it is not batching. A writer's lines
 * stay in its order; the run id, tap, counters and reopen are the log's.
 * Close every writer (it hands its batch over) before the log. Returns 0
 * or -ENOMEM. */
int awf_logfile_writer_new(awf_logfile *lf, awf_logfile **out);

void awf_logfile_close(awf_logfile *lf);

#endif
