/* logagg.h: what an access log says, per destination host, in bounded
 * memory. Fed one record at a time (a parsed line of `awf logs`, or a record
 * awf itself writes, for the GitHub step summary); memory grows with the
 * distinct hosts (capped: the rest share one "others" row), never with the
 * number of records. Pure: no I/O. */
#ifndef AWF_LOGAGG_H
#define AWF_LOGAGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct hosts kept by default; past the cap they are counted as one row. */
#define AWF_LOGAGG_MAX_HOSTS 100000
/* `open` records waiting for their final record; past this they are not
 * tracked (their final record still counts; counted in opens_untracked). */
#define AWF_LOGAGG_MAX_PENDING 65536
/* A host name longer than this is cut (and ends with "..."). */
#define AWF_LOGAGG_NAME_MAX 256
#define AWF_LOGAGG_PORTS 8

/* One record, as read from a line or taken from awf's writer. Strings need
 * not be NUL-terminated where a length is given and may hold any bytes. */
struct awf_logev {
  const char *run;    /* the run id; NULL if none */
  const char *event;  /* "open", "http", ..., "run" */
  uint64_t conn, req; /* req 0: none */
  const char *host;   /* host (dns: the name queried); NULL if none */
  size_t host_len;
  const char *original_dst; /* used when there is no host: its address */
  const char *path;         /* unix events: the socket file */
  size_t path_len;
  int port;                                  /* < 0: none */
  bool deny;                                 /* decision */
  bool would_deny;                           /* --audit */
  const char *reason;                        /* NULL: none */
  int64_t bytes_up, bytes_down, duration_ms; /* < 0: none */
  int64_t lost; /* log_lost: records the writer could not write; < 0: none */
};

struct awf_loghost {
  char name[AWF_LOGAGG_NAME_MAX + 4];
  size_t name_len;
  bool others;     /* the row of the hosts past the cap */
  uint64_t events; /* final records (and opens that never got one) */
  uint64_t allowed, denied, would_deny;
  uint64_t bytes_up, bytes_down;
  uint16_t ports[AWF_LOGAGG_PORTS];
  unsigned nports;
  bool more_ports;          /* more distinct ports than fit */
  const char *first_reason; /* first denial (or --audit would-deny): interned */
  const char *first_event;  /* its event ("http", "connect", "dns", ...): interned */
};

struct awf_logreason {
  const char *name;
  uint64_t count;
};

struct awf_logtotals {
  uint64_t records; /* every record fed, run and open included */
  uint64_t runs;    /* `run` records */
  uint64_t lost;    /* records the writer lost (the sum of `log_lost` records) */
  uint64_t events;  /* counted: final records + opens never closed */
  uint64_t allowed, denied, would_deny;
  uint64_t bytes_up, bytes_down;
  uint64_t open_only;       /* opens with no final record (awf was killed...) */
  uint64_t opens_untracked; /* opens past AWF_LOGAGG_MAX_PENDING */
  uint64_t durations;       /* records with duration_ms */
};

typedef struct awf_logagg awf_logagg;

/* max_hosts 0: AWF_LOGAGG_MAX_HOSTS. NULL when out of memory. */
awf_logagg *awf_logagg_new(size_t max_hosts);
void awf_logagg_free(awf_logagg *a);

/* Count one record. Out of memory, a new host is counted in "others". */
void awf_logagg_add(awf_logagg *a, const struct awf_logev *ev);

/* The end of the input: `open` records still waiting count for their host.
 * Call once before reading results. */
void awf_logagg_finish(awf_logagg *a);

const struct awf_logtotals *awf_logagg_totals(const awf_logagg *a);

/* Hosts in the summary's order: hosts with denials first, then by bytes
 * (up + down), then by events, then by name; the "others" row last. *out is
 * owned by a (valid until the next call or free). Returns the count, or 0
 * with *out NULL when out of memory. */
size_t awf_logagg_hosts(awf_logagg *a, const struct awf_loghost *const **out);

/* Hosts by events, most first (the top of `awf logs stats`). */
size_t awf_logagg_top_hosts(awf_logagg *a, const struct awf_loghost *const **out);

/* Denials (and would-deny) by reason, most first. */
size_t awf_logagg_reasons(awf_logagg *a, const struct awf_logreason **out);

/* The p-th percentile (0 < p <= 100) of duration_ms, or -1 when no record
 * had one. Exact below 64 ms; above, the upper bound of a log-scale bucket
 * (32 per power of two), so at most 1/32 (3.1 %) above the true value. */
int64_t awf_logagg_percentile(const awf_logagg *a, double p);

/* The --allow-domains value that would admit the denied hosts (policy
 * denials that a domain rule fixes: not_allowed, ip_literal,
 * scheme_not_allowed, also as --audit would-deny), comma-separated, into
 * out; names that are not plain host names or look like data encoded in a
 * label are left out. Returns the length written (0: none); cut at a whole
 * name when out is too small. */
size_t awf_logagg_allow_domains(awf_logagg *a, char *out, size_t outsz);

#endif
