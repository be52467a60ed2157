/* dns_msg.h: the DNS message codec of awf's filtered DNS server (RFC 1035,
 * EDNS0 per RFC 6891). Pure functions, no I/O, no allocation: a query parser
 * over a length-checked cursor (fuzzable as is), a response builder into a
 * caller buffer with a size cap, and helpers for TCP framing and log names.
 *
 * Decisions, documented here because the server relies on them:
 * - Responses (QR=1) and packets shorter than a header are DROPPED, never
 *   answered: answering responses invites loops and reflection.
 * - Compression pointers are rejected in a query's question and in the OPT
 *   owner (FORMERR). A query's question is the first name in the message, so
 *   a pointer could only aim at the header or at itself: no honest client
 *   sends one, and refusing them removes loop handling from the attack surface.
 * - Anything after the counted sections (trailing garbage), an answer or
 *   authority record, ARCOUNT > 1, or an additional record that is not a
 *   root-owned OPT is FORMERR.
 * - Label bytes outside 0x21..0x7e or '.' inside a label are kept (raw, with
 *   ASCII letters lower-cased) and flagged by name_ok = false; the server
 *   refuses such names. The ACL validates the rest of host-name syntax. */
#ifndef AWF_DNS_MSG_H
#define AWF_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_DNS_HEADER_LEN 12
#define AWF_DNS_LABEL_MAX 63
#define AWF_DNS_NAME_MAX 253      /* presentation bytes, without trailing dot */
#define AWF_DNS_WIRE_NAME_MAX 255 /* wire bytes, with the root label */
#define AWF_DNS_UDP_MIN 512       /* plain DNS over UDP (RFC 1035 4.2.1) */
#define AWF_DNS_UDP_MAX 1232      /* our cap, and the EDNS size we advertise */
/* The reverse names of 127.0.0.1 and ::1. */
#define AWF_DNS_PTR_LOOPBACK4 "1.0.0.127.in-addr.arpa"
#define AWF_DNS_PTR_LOOPBACK6 \
  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
#define AWF_DNS_TCP_MAX 65535     /* what a 2-byte TCP length prefix allows */
#define AWF_DNS_TYPE_NAME_SIZE 12 /* buffer for awf_dns_type_name: "TYPE65535" */

enum awf_dns_rcode {
  AWF_DNS_NOERROR = 0,
  AWF_DNS_FORMERR = 1,
  AWF_DNS_SERVFAIL = 2,
  AWF_DNS_NXDOMAIN = 3,
  AWF_DNS_NOTIMP = 4,
  AWF_DNS_REFUSED = 5,
  AWF_DNS_BADVERS = 16, /* extended: needs an OPT record in the response */
};

enum awf_dns_type {
  AWF_DNS_TYPE_A = 1,
  AWF_DNS_TYPE_NS = 2,
  AWF_DNS_TYPE_CNAME = 5,
  AWF_DNS_TYPE_SOA = 6,
  AWF_DNS_TYPE_PTR = 12,
  AWF_DNS_TYPE_MX = 15,
  AWF_DNS_TYPE_TXT = 16,
  AWF_DNS_TYPE_AAAA = 28,
  AWF_DNS_TYPE_SRV = 33,
  AWF_DNS_TYPE_OPT = 41,
  AWF_DNS_TYPE_SVCB = 64,
  AWF_DNS_TYPE_HTTPS = 65,
  AWF_DNS_TYPE_ANY = 255,
};

#define AWF_DNS_CLASS_IN 1

/* What awf_dns_parse_query found, and so what the server does. */
enum awf_dns_parse_status {
  AWF_DNS_PARSE_OK = 0,       /* a well-formed query: decide and answer it */
  AWF_DNS_PARSE_FORMERR = -1, /* answer q->rcode (FORMERR) with q->id */
  AWF_DNS_PARSE_NOTIMP = -2,  /* opcode other than QUERY: answer NOTIMP */
  AWF_DNS_PARSE_BADVERS = -3, /* EDNS version > 0: answer BADVERS (with OPT) */
  AWF_DNS_PARSE_DROP = -4,    /* shorter than a header, or a response: send nothing */
};

struct awf_dns_query {
  /* Header: valid unless the status is DROP for a short packet. */
  uint16_t id;
  uint8_t opcode;
  bool rd;       /* recursion desired: copied into the response */
  bool cd;       /* checking disabled: copied too (RFC 4035 3.2.2) */
  uint8_t rcode; /* the rcode to answer with when the status is not OK/DROP */

  /* Question: valid when has_question. */
  bool has_question;
  char qname[AWF_DNS_NAME_MAX + 1]; /* dotted, lower-case, no trailing dot,
                                     * "." for the root; raw bytes (may hold
                                     * NUL when !name_ok), NUL-terminated */
  size_t qname_len;
  bool name_ok; /* not the root, and every label is 0x21..0x7e without '.' */
  uint16_t qtype;
  uint16_t qclass;
  bool class_in;                            /* qclass == IN; the server refuses other classes */
  uint8_t qwire[AWF_DNS_WIRE_NAME_MAX + 4]; /* question as sent (case kept for
                                             * 0x20-randomising resolvers) */
  size_t qwire_len;

  /* EDNS0: valid when has_edns. */
  bool has_edns;
  uint16_t edns_udp_size; /* as sent; see awf_dns_udp_limit */
  uint8_t edns_version;
  bool edns_do; /* DNSSEC OK: echoed in our OPT (RFC 3225 3) */
};

/* Parse the DNS query msg[0..len). Always fills what it could read into *q
 * (zeroed first). Returns an awf_dns_parse_status. */
int awf_dns_parse_query(const uint8_t *msg, size_t len, struct awf_dns_query *q);

/* The response size limit over UDP: 512 without EDNS, else the client's
 * size clamped to [512, AWF_DNS_UDP_MAX]. Over TCP use AWF_DNS_TCP_MAX. */
size_t awf_dns_udp_limit(const struct awf_dns_query *q);

/* One answer record. */
struct awf_dns_rr {
  const char *owner; /* dotted text (trailing dot optional); NULL: the question name */
  uint16_t type;     /* AWF_DNS_TYPE_A, _AAAA, _CNAME or _PTR */
  uint32_t ttl;
  union {
    uint8_t a[4]; /* network order */
    uint8_t aaaa[16];
    const char *target; /* CNAME or PTR target, dotted text */
  } u;
};

/* Build the response to q into out[0..min(limit, outsz)): the query's id and
 * opcode, QR=1, RA=1, RD and CD copied, rcode (any awf_dns_rcode; > 15 needs
 * q->has_edns), the question echoed when q->has_question, then rrs in order,
 * then an OPT record (advertising AWF_DNS_UDP_MAX, DO copied) when
 * q->has_edns. An owner or CNAME target equal (ignoring ASCII case) to a name
 * written in full earlier (the question: 0xC00C, an owner, a target) becomes
 * a pointer. Answers that do not fit are left out, whole records only, and
 * TC is set; the OPT record always fits (its space is held back).
 * *nanswers (may be NULL) gets the number of answers written.
 * Returns the message length, -EINVAL for a bad record (type, name syntax,
 * NULL owner without a question), a bad rcode or a NULL out, -ENOSPC when not
 * even the header, question and OPT fit. */
int awf_dns_build_response(const struct awf_dns_query *q, unsigned rcode,
                           const struct awf_dns_rr *rrs, size_t nrr, size_t limit, uint8_t *out,
                           size_t outsz, size_t *nanswers);

/* An Extended DNS Error (RFC 8914) for the OPT record of a response. */
#define AWF_DNS_OPT_EDE 15       /* the EDNS option code */
#define AWF_DNS_EDE_BLOCKED 15   /* info-code "Blocked" */
#define AWF_DNS_EDE_TEXT_MAX 200 /* extra text beyond this is cut */
struct awf_dns_ede {
  uint16_t info_code;
  const char *text; /* UTF-8 extra text, may be NULL */
};

/* awf_dns_build_response with an EDE option in the OPT record; ede may be
 * NULL, and is left out when the query had no EDNS (no OPT to carry it).
 * The option's space is held back like the OPT record's. */
int awf_dns_build_response_ede(const struct awf_dns_query *q, unsigned rcode,
                               const struct awf_dns_rr *rrs, size_t nrr,
                               const struct awf_dns_ede *ede, size_t limit, uint8_t *out,
                               size_t outsz, size_t *nanswers);

/* DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message has a 2-byte length
 * prefix. Look at the start of a stream buffer: returns 1 with *msg and *msglen
 * set when a whole message is there (consume *msglen + 2 bytes), 0 when more
 * bytes are needed, -EBADMSG for a zero length (close the connection). */
int awf_dns_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen);

/* Write the 2-byte length prefix for a message of msglen bytes (<= 65535)
 * into prefix[0..2). Returns 0 or -EMSGSIZE. */
int awf_dns_tcp_prefix(uint8_t prefix[2], size_t msglen);

/* Names in logs and summaries, in RFC 1035 master-file form (5.1): each byte
 * outside 0x21..0x7e becomes \DDD (three decimal digits), a backslash "\\",
 * and with escape_dot a '.' becomes "\." (a dot inside a label, where '.'
 * would otherwise read as a label boundary). Escapes p[0..n) into out (NUL
 * terminated) and returns the text's length; when out is too small the text
 * stops before the first escape or byte that does not fit. */
#define AWF_DNS_NAME_TEXT_SIZE (4 * AWF_DNS_NAME_MAX + 2) /* every byte as \DDD */
size_t awf_dns_escape(const uint8_t *p, size_t n, bool escape_dot, char *out, size_t outsz);

/* The question name of q in that form: labels as sent (ASCII letters
 * lower-cased), escaped, joined by '.', no trailing dot; "." for the root;
 * "" without a question. out should hold AWF_DNS_NAME_TEXT_SIZE bytes.
 * Unlike q->qname, a label holding a '.' stays one label: "a\.b.example". */
size_t awf_dns_name_text(const struct awf_dns_query *q, char *out, size_t outsz);

/* "A", "AAAA", "CNAME", ... for known types, else "TYPE<n>" written into
 * buf (AWF_DNS_TYPE_NAME_SIZE bytes). Returns a string valid while buf is. */
const char *awf_dns_type_name(uint16_t type, char *buf, size_t bufsz);

/* "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
 * "BADVERS"; "UNKNOWN" for any other value. */
const char *awf_dns_rcode_name(unsigned rcode);

/* "ok", "formerr", "notimp", "badvers", "drop". */
const char *awf_dns_parse_status_name(int status);

#endif
