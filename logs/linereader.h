/* linereader.h: lines from a descriptor in a fixed buffer: a line longer
 * than the buffer is skipped (reported as too long), so memory never grows
 * with the input, whatever it holds. For --follow, a last line without its
 * '\n' can be kept until more arrives. */
#ifndef AWF_LINEREADER_H
#define AWF_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_LINE_TOO_LONG 1u     /* longer than max_line: its bytes are not given */
#define AWF_LINE_UNTERMINATED 2u /* the input ended before its '\n' */

struct awf_linereader {
  int fd;
  char *buf;
  size_t cap, start, end;
  uint64_t lineno; /* of the last line returned, from 1 */
  uint64_t offset; /* bytes read from fd so far */
  bool skipping;   /* inside a line too long for the buffer */
};

/* 0 or -ENOMEM. fd stays the caller's. */
int awf_linereader_init(struct awf_linereader *r, int fd, size_t max_line);
void awf_linereader_free(struct awf_linereader *r);

/* The next line (without its newline) in *line and *len, its flags in *flags: 1.
 * At the end of the input: with `final`, a pending partial line is returned
 * first (AWF_LINE_UNTERMINATED); without it (following a file that grows),
 * the partial line is kept for the next call. Returns 0 there, or -errno. */
int awf_linereader_next(struct awf_linereader *r, bool final, const char **line, size_t *len,
                        unsigned *flags);

/* Start over on another descriptor (or the same one rewound), line 0. */
void awf_linereader_reset(struct awf_linereader *r, int fd);

#endif
