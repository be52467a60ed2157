/* dns_server.h: awf's allowlist-filtered DNS server, UDP and TCP on one
 * address, on the caller's libuv loop.
 *
 * What it answers (docs/awf-proxy.md, "DNS server"):
 * - A name the ACL admits (for TLS or for plain HTTP: a query does not say
 *   which) asked for A or AAAA: the resolver's addresses of that family that
 *   the destination-address policy admits, with a TTL of at most
 *   AWF_DNS_ANSWER_TTL_MAX. CNAME chains are flattened: the addresses are
 *   answered at the question name itself. None of that family left: NOERROR
 *   with no answers (NODATA). The name does not exist or has no address:
 *   NXDOMAIN. The lookup fails: SERVFAIL.
 * - An admitted name with any other type (TXT, MX, HTTPS, SVCB, ANY, ...):
 *   NODATA. Never forwarded.
 * - A name the ACL does not admit, any type: NXDOMAIN with an Extended DNS
 *   Error (RFC 8914) "Blocked" whose text names awf's policy, when the
 *   client speaks EDNS. Not REFUSED: glibc turns REFUSED into EAI_AGAIN, a
 *   "temporary failure" that npm and pip retry for a minute; NXDOMAIN fails
 *   at once (EAI_NONAME), and the EDE says it is policy, not the name's
 *   absence. Never forwarded. Invalid names and classes other than IN
 *   (malformed or unsupported queries): REFUSED.
 * - The host's names, when the config has host access (host_access.h):
 *   A and AAAA of its sandbox-side addresses, NODATA for other types,
 *   answered locally whatever the ACL says (reason host_access).
 * - Loopback, answered locally and never forwarded or counted as a denial
 *   (RFC 6761): "localhost" and names under it (A 127.0.0.1, AAAA ::1),
 *   PTR of 127.0.0.1 and ::1 ("localhost"); other names under
 *   127.in-addr.arpa: NXDOMAIN.
 * The only traffic upstream is the resolver's A/AAAA lookup of an admitted
 * name, so no other query can carry data out. */
#ifndef AWF_DNS_SERVER_H
#define AWF_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "acl.h"
#include "addr_policy.h"
#include "denials.h"
#include "dns_memory.h"
#include "dns_msg.h"
#include "host_access.h"
#include "logfile.h"
#include "metrics.h"
#include "policy.h"
#include "resolver.h"

#define AWF_DNS_ANSWER_TTL_MAX 30 /* seconds: rules may change under a cached answer */
#define AWF_DNS_DEFAULT_MAX_PENDING 1024
#define AWF_DNS_DEFAULT_MAX_TCP 128
#define AWF_DNS_DEFAULT_TCP_IDLE_MS 10000

typedef struct awf_dns_server awf_dns_server;

/* The caller owns acl, policy, resolver, log and denials; they must outlive
 * the server (until awf_dns_server_close returns). */
struct awf_dns_server_config {
  const awf_acl *acl;
  const awf_addr_policy *policy;
  awf_resolver *resolver;
  awf_logfile *log;
  awf_denials *denials;                      /* optional: collects denied names */
  bool audit;                                /* admit what the ACL denies, log would_deny */
  const struct awf_host_access *host_access; /* optional: the host's names */
  unsigned max_pending;         /* lookups in flight; beyond: SERVFAIL. 0: default */
  unsigned max_tcp;             /* TCP connections at once; beyond: closed. 0: default */
  unsigned tcp_idle_timeout_ms; /* idle TCP connection is closed. 0: default */
  /* Optional: told when an access-log line could not be written (the log
   * counts the loss; this is for a diagnostic on stderr). */
  void (*log_failed)(void *arg, int err);
  void *log_failed_arg;
  /* --allow-ssh (optional): names these rules admit are answered too, though
   * the ACL does not admit them (policy.h, AWF_ASK_DNS). */
  const awf_acl *ssh_acl;
  /* Optional: every address answered is noted with its name, for judging SSH
   * connections by the name the command resolved. */
  awf_dns_memory *memory;
  /* --dlp (optional): a question whose name carries a token or a secret's
   * value (in a label, or split across labels) is refused (dlp_match). */
  const awf_dlp *dlp;
  /* Optional: every answer counted (metrics.h), on the server's loop. */
  struct awf_metrics *metrics;
};

/* Serve DNS on `listen` over UDP and TCP (same port; port 0 picks one free
 * for both). The config is copied. *bound (may be NULL) gets the address
 * actually bound. Returns 0 or a negative errno / uv error; on error *out is
 * NULL and whatever was set up is released (run the loop to finish). */
int awf_dns_server_new(uv_loop_t *loop, const struct awf_dns_server_config *cfg,
                       const struct sockaddr *listen, struct sockaddr_storage *bound,
                       awf_dns_server **out);

/* The two halves of awf_dns_server_new, for sockets made in a network
 * namespace the server's process cannot enter (rootless awf): bind UDP and
 * TCP on one port (fds in *ufd and *tfd, the address in *bound, may be NULL;
 * TCP is not listening yet), then serve on such a pair, which the server
 * owns from then on, also on failure. 0 or a negative errno / uv error. */
int awf_dns_server_bind(const struct sockaddr *listen, int *ufd, int *tfd,
                        struct sockaddr_storage *bound);
int awf_dns_server_new_fds(uv_loop_t *loop, const struct awf_dns_server_config *cfg, int ufd,
                           int tfd, awf_dns_server **out);

/* Stop serving: lookups in flight are cancelled and logged (shutting_down,
 * no answer sent), connections closed. Once this returns the server no longer
 * touches the resolver, ACL, policy or log, so they may be closed. `done`
 * (may be NULL) runs from the loop once every handle is closed; the server
 * is freed right after it returns. */
void awf_dns_server_close(awf_dns_server *s, void (*done)(void *arg), void *arg);

/* New rules (a reload): questions judged from now on use acl; lookups in
 * flight keep the verdict they got. The server keeps no pointer into the
 * old ACL past this call. */
void awf_dns_server_set_acl(awf_dns_server *s, const awf_acl *acl);

/* ---- the decision, pure, exposed for tests ---- */

enum awf_dns_action {
  AWF_DNS_ACT_REFUSE = 0, /* REFUSED: malformed or unsupported */
  AWF_DNS_ACT_BLOCK,      /* NXDOMAIN + EDE "Blocked": the policy denies the name */
  AWF_DNS_ACT_LOCAL,      /* loopback: answered by awf_dns_local_answer */
  AWF_DNS_ACT_NODATA,     /* NOERROR, no answers, nothing asked upstream */
  AWF_DNS_ACT_RESOLVE,    /* look the name up, answer the qtype's family */
  AWF_DNS_ACT_HOST,       /* one of the host's names: answered by awf_dns_host_answer */
};

struct awf_dns_verdict {
  enum awf_dns_action action;
  enum awf_decision decision;
  enum awf_reason reason; /* allowed, host_access, loopback, not_allowed, blocked,
                           * ip_literal, invalid_name, unsupported_class,
                           * dlp_match */
  bool would_deny;        /* audit admitted it; reason says why it would not be */
  const char *dlp;        /* --dlp: the kind of a match in the name (dlp_match) */
};

/* Decide on a parsed, well-formed query (status AWF_DNS_PARSE_OK): the
 * judgement is policy.h's (AWF_ASK_DNS), turned into what to answer.
 * IP-literal names ("1.2.3.4" as a DNS name) are never looked up: NODATA
 * when an IP rule admits them, NXDOMAIN (ip_literal) otherwise. */
void awf_dns_decide(const struct awf_policy *policy, const struct awf_dns_query *q,
                    struct awf_dns_verdict *v);

/* The loopback answer for a query decided AWF_DNS_ACT_LOCAL: the rcode,
 * and in *rr (when it returns 1 record) the answer. */
size_t awf_dns_local_answer(const struct awf_dns_query *q, struct awf_dns_rr *rr,
                            unsigned *rcode);

/* A query for one of the host's names (h may be NULL: never): returns true
 * and the answer in *rr (*n is 1, or 0 for NODATA). */
bool awf_dns_host_answer(const struct awf_host_access *h, const struct awf_dns_query *q,
                         struct awf_dns_rr *rr, size_t *n);

/* The answer records for qtype (A or AAAA) from a resolved list: addresses
 * of that family the policy admits, in order, owner the question name, with
 * `ttl`. Writes at most max records. *refused (may be NULL) gets the number
 * of that family's addresses the policy refused. Returns the count. */
size_t awf_dns_select_addrs(const struct awf_addr_list *l, uint16_t qtype,
                            const awf_addr_policy *policy, uint32_t ttl, struct awf_dns_rr *rrs,
                            size_t max, size_t *refused);

#endif
