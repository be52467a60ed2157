/* logline.h: one line of the access log (docs/access-log.md), parsed with
 * jansson and checked: an object with the fields every record carries, each
 * field of the type the schema gives it. Anything else is a malformed line,
 * with a message saying what is wrong. */
#ifndef AWF_LOGLINE_H
#define AWF_LOGLINE_H

#include <stddef.h>

#include "logagg.h"

struct awf_logline {
  struct awf_logev ev; /* what the aggregator counts */
  const char *ts, *kind, *client, *method, *url, *sni, *upstream, *resolved;
  const char *qtype, *version;
  const char *digest, *error; /* config */
  int status, answers;        /* -1: absent */
  int ok;                     /* config: 1 or 0; -1: absent */
  void *root;                 /* the parsed JSON (owned): the strings point into it */
};

/* Parse line[0..len) (no '\n'). 0, or -EINVAL with err naming the problem
 * ("not JSON: ...", "missing \"conn\"", "\"port\" is not a non-negative
 * integer"); nothing to free then. */
int awf_logline_parse(const char *line, size_t len, struct awf_logline *out, char *err,
                      size_t errlen);

void awf_logline_free(struct awf_logline *l);

#endif
