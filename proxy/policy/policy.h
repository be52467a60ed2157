/* policy.h: the one judge. Every judgement of a request or connection (the
 * port, the domain ACL, --audit, the host's services, the TLS server name
 * against the CONNECT target, a DNS question, SSH by the names DNS answered)
 * is made here, from the facts the caller read off the wire, and comes back
 * as a typed verdict (reason.h). With --dlp, a request, name or question
 * that carries a token or a secret's value (dlp.h) is denied first,
 * whatever the rules would say (dlp_match; admitted and said under --audit). Pure: no I/O, no libuv, no c-ares. */
#ifndef AWF_POLICY_H
#define AWF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"
#include "dlp.h"
#include "port_set.h"
#include "reason.h"
#include "secrets.h"
#include "url_rules.h"

#define AWF_SSH_PORT 22

struct awf_host_access;
struct awf_head;
struct awf_dns_memory_name;

/* The configured facts, all caller-owned and outliving the policy. */
struct awf_policy {
  const awf_acl *acl;                        /* --allow-domains, --block-domains */
  const awf_acl *ssh_acl;                    /* --allow-ssh; NULL: none */
  const struct awf_port_set *allow_ports;    /* --allow-ports */
  const struct awf_port_set *tls_ports;      /* transparent: ports judged by the SNI */
  const struct awf_port_set *http_ports;     /* transparent: ports judged by Host */
  const struct awf_host_access *host_access; /* the host's services; NULL: none */
  const awf_url_rules *url_rules;            /* --allow-urls, --block-urls; NULL: none */
  const awf_dlp *dlp;                        /* --dlp; NULL: off */
  bool audit;                                /* admit what the ACL would deny, and say so */
  const awf_secrets *secrets;                /* --secret; NULL: none */
  bool secret_allow_plaintext;               /* --secret-allow-plaintext */
};

/* What is asked. */
enum awf_ask {
  AWF_ASK_HTTP,      /* an HTTP request (absolute-form, or Host on a redirected
                      * HTTP port): host, port, http */
  AWF_ASK_HTTPS,     /* an HTTP request inside intercepted TLS: host (the
                      * tunnel's, admitted for TLS), port, http */
  AWF_ASK_CONNECT,   /* CONNECT host:port */
  AWF_ASK_TLS_SNI,   /* a redirected TLS port: the ClientHello's SNI is the
                      * name; hello, port, name_out */
  AWF_ASK_SNI_MATCH, /* a CONNECT tunnel's ClientHello: its SNI must name the
                      * CONNECT host (host) and be admitted for TLS; hello, port */
  AWF_ASK_PORT,      /* a redirected connection: which mode its original
                      * destination gets; dst, port */
  AWF_ASK_HOST_PORT, /* redirected to the host's sandbox-side address: port */
  AWF_ASK_DNS,       /* a DNS question: host (the name), dns */
  AWF_ASK_SSH,       /* redirected to port 22: ssh */
};

/* A parsed ClientHello, as far as the judge needs it (sni.h). */
struct awf_hello_facts {
  bool complete; /* parsed to the end without error */
  bool has_sni;
  bool sni_multiple; /* more than one server name */
  const char *sni;   /* raw bytes from the wire */
  size_t sni_len;
};

struct awf_ask_facts {
  enum awf_ask kind;
  const char *host; /* HTTP, CONNECT, SNI_MATCH: the target host; DNS: the name */
  size_t host_len;
  uint16_t port;
  struct {
    const char *method; /* "GET" */
    const char *target; /* origin-form "/path?query" as sent ("" for "/") */
    size_t target_len;
    const struct awf_head *headers; /* the request's headers, for --dlp (may be NULL) */
  } http;                           /* HTTP, HTTPS: judged by the URL rules (url_rules.h) */
  struct awf_hello_facts hello;     /* TLS_SNI, SNI_MATCH */
  /* TLS_SNI: AWF_HOSTNAME_MAX + 1 bytes for the normalised SNI, set when
   * the verdict is admitted or refused by the ACL (may be NULL). */
  char *name_out;
  const struct sockaddr *dst; /* PORT: the original destination */
  struct {
    bool name_ok; /* a question was there, its name a valid DNS name */
    bool class_in;
  } dns;
  struct {
    const struct awf_dns_memory_name *names; /* dns_memory's names for dst, most recent first */
    size_t n;
    const char *dst_ip; /* the original address as text ("192.0.2.1") */
  } ssh;
};

/* PORT: the mode a redirected connection goes to. */
enum awf_mode {
  AWF_MODE_NONE = 0, /* refused */
  AWF_MODE_TLS,      /* judge the ClientHello's SNI (tunnel) */
  AWF_MODE_HTTP,     /* judge the Host header (HTTP) */
  AWF_MODE_SSH,      /* judge by the names DNS answered (ssh_gate) */
  AWF_MODE_HOST,     /* the host's sandbox-side address: raw TCP to its targets */
};

struct awf_verdict {
  enum awf_decision decision;
  /* allow: allowed, host_access or loopback, or under --audit why it would
   * have been denied; deny: why. */
  enum awf_reason reason;
  bool would_deny;    /* --audit admitted what the policy denies */
  bool host_access;   /* admitted as one of the host's services */
  enum awf_mode mode; /* PORT */
  const char *name;   /* SSH: the name judged (logged, and dialled unless
                            * dial_address); NULL: the address itself */
  bool dial_address;  /* SSH: dial the original address */
  const char *dlp;    /* reason dlp_match: the kind of what matched (never its text) */
};

/* Judge one request or connection. Never fails: every input has a verdict. */
struct awf_verdict awf_policy_judge(const struct awf_policy *p, const struct awf_ask_facts *f);

/* The reason for a domain ACL verdict ("not_allowed"...). */
enum awf_reason awf_reason_of_acl(enum awf_acl_verdict v);

/* The ACL's verdict on a name reached by an unknown protocol (DNS): admitted
 * when it is admitted for TLS or for HTTP; otherwise "blocked" if a block
 * rule matched either way, else the TLS verdict. */
enum awf_acl_verdict awf_policy_acl_any(const awf_acl *acl, const char *name, size_t len);

/* Does name end with the label sequence suffix (or equal it)? Both are
 * lower-case, dotted, without a trailing dot. */
bool awf_name_under(const char *name, size_t len, const char *suffix);

#endif
