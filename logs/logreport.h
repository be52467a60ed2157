/* logreport.h: what `awf logs` prints, and the GitHub step summary: the
 * summary (text, Markdown, JSON), the statistics, and one line of `show`.
 * Every byte that came from a log or a client is escaped for where it goes:
 * a terminal sees printable ASCII only, Markdown gets no markup or HTML
 * through, JSON stays valid. */
#ifndef AWF_LOGREPORT_H
#define AWF_LOGREPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "jsonlog.h"
#include "logagg.h"
#include "logline.h"

enum awf_report_format { AWF_REPORT_TEXT, AWF_REPORT_MARKDOWN, AWF_REPORT_JSON };

/* At most this many host rows in Markdown (a step summary is capped at
 * 1 MiB by GitHub); the rest are counted in one line. */
#define AWF_REPORT_MD_ROWS 100

struct awf_report_info {
  uint64_t malformed; /* lines that could not be read */
  const char *title;  /* Markdown heading, e.g. "awf"; NULL: none */
};

/* Append s[0..n) for Markdown text or a table cell: ASCII punctuation
 * backslash-escaped, < > & " as HTML entities, other bytes outside
 * printable ASCII as a literal \xHH. 0 or -E2BIG/-ENOMEM. */
int awf_md_escape(struct awf_buf *b, const char *s, size_t n);

/* Append s[0..n) for a terminal: printable ASCII as is, '\' as \\, every
 * other byte as \xHH (no escape sequence, C1 control or bidi override can
 * reach the terminal). */
int awf_text_escape(struct awf_buf *b, const char *s, size_t n);

/* Call awf_logagg_finish first. 0 or -errno (a write error). */
int awf_report_summary(FILE *out, awf_logagg *a, enum awf_report_format fmt,
                       const struct awf_report_info *info);
int awf_report_stats(FILE *out, awf_logagg *a, enum awf_report_format fmt,
                     const struct awf_report_info *info);

/* One record as one aligned line, '\n' included; the decision coloured when
 * color is true (ANSI red/green/yellow). 0 or -errno. */
int awf_report_show(FILE *out, const struct awf_logline *l, bool color);

#endif
