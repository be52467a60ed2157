/* policy.c: the one judge (policy.h). */
#include "policy.h"

#include <string.h>

#include "dns_memory.h"
#include "dns_msg.h"
#include "host_access.h"
#include "hostname.h"
#include "http_head.h"

enum awf_reason awf_reason_of_acl(enum awf_acl_verdict v) {
  switch (v) {
  case AWF_ACL_ALLOWED: return AWF_REASON_ALLOWED;
  case AWF_ACL_NOT_ALLOWED: return AWF_REASON_NOT_ALLOWED;
  case AWF_ACL_BLOCKED: return AWF_REASON_BLOCKED;
  case AWF_ACL_IP_LITERAL: return AWF_REASON_IP_LITERAL;
  case AWF_ACL_INVALID_NAME: return AWF_REASON_INVALID_NAME;
  }
  return AWF_REASON_INVALID_NAME;
}

enum awf_acl_verdict awf_policy_acl_any(const awf_acl *acl, const char *name, size_t len) {
  enum awf_acl_verdict t = awf_acl_check(acl, name, len, AWF_PROTO_TLS);
  if (t == AWF_ACL_ALLOWED)
    return t;
  enum awf_acl_verdict h = awf_acl_check(acl, name, len, AWF_PROTO_HTTP);
  if (h == AWF_ACL_ALLOWED)
    return h;
  if (t == AWF_ACL_BLOCKED || h == AWF_ACL_BLOCKED)
    return AWF_ACL_BLOCKED;
  return t;
}

static struct awf_verdict allow(enum awf_reason r) {
  return (struct awf_verdict){.decision = AWF_ALLOW, .reason = r};
}

static struct awf_verdict deny(enum awf_reason r) {
  return (struct awf_verdict){.decision = AWF_DENY, .reason = r};
}

/* The audit rule, the one place it lives: --audit admits what the policy
 * denies and records why it would not have; a name that is not a host name
 * at all cannot be dialled, so it stays denied. */
static struct awf_verdict audited(const struct awf_policy *p, enum awf_reason r) {
  if (!p->audit || r == AWF_REASON_INVALID_NAME)
    return deny(r);
  struct awf_verdict v = allow(r);
  v.would_deny = true;
  return v;
}

static struct awf_verdict host_admitted(void) {
  struct awf_verdict v = allow(AWF_REASON_HOST_ACCESS);
  v.host_access = true;
  return v;
}

/* A host on a port, for TLS or plain HTTP. */
static struct awf_verdict judge_host(const struct awf_policy *p, const char *host, size_t len,
                                     uint16_t port, enum awf_acl_proto proto) {
  /* The host's services answer to their own port list, not to the ACL or
   * --allow-ports; another port of the host is refused even under --audit,
   * since no allowlist rule could admit it. */
  switch (awf_host_access_check(p->host_access, host, len, port)) {
  case AWF_HOST_ALLOWED: return host_admitted();
  case AWF_HOST_PORT_DENIED: return deny(AWF_REASON_HOST_PORT_NOT_ALLOWED);
  case AWF_HOST_NONE: break;
  }
  if (!awf_port_set_has(p->allow_ports, port))
    return audited(p, AWF_REASON_PORT_NOT_ALLOWED);
  enum awf_acl_verdict v = awf_acl_check(p->acl, host, len, proto);
  if (v == AWF_ACL_ALLOWED)
    return allow(AWF_REASON_ALLOWED);
  /* Admitted for the other scheme only (an https:// or http:// rule): say
   * so, since suggesting the bare name would widen the rule to both. */
  enum awf_acl_proto other = proto == AWF_PROTO_TLS ? AWF_PROTO_HTTP : AWF_PROTO_TLS;
  if (v == AWF_ACL_NOT_ALLOWED && awf_acl_check(p->acl, host, len, other) == AWF_ACL_ALLOWED)
    return audited(p, AWF_REASON_SCHEME_NOT_ALLOWED);
  return audited(p, awf_reason_of_acl(v));
}

/* An HTTP request, plain (the host judged for HTTP) or inside intercepted
 * TLS (for TLS: its tunnel was admitted as TLS), then the URL rules
 * (url_rules.h) of that scheme for a host the domain rules admit. A block
 * rule wins; a host with allow URL rules admits only what one of them
 * matches. The host's services are not judged by URL rules. */
static struct awf_verdict judge_http(const struct awf_policy *p, const struct awf_ask_facts *f,
                                     enum awf_url_scheme scheme) {
  struct awf_verdict v = judge_host(p, f->host, f->host_len, f->port,
                                    scheme == AWF_URL_HTTPS ? AWF_PROTO_TLS : AWF_PROTO_HTTP);
  if (v.decision == AWF_DENY || v.host_access)
    return v;
  /* Secrets (secrets.h): their hosts are reached over TLS only, and no
   * method that echoes the request's headers reaches an opened host. Not
   * admitted under --audit either: these guard a credential, not a rule. */
  bool secret_host = awf_secrets_any_host(p->secrets, f->host, f->host_len);
  const char *m = f->http.method ? f->http.method : "";
  if ((scheme == AWF_URL_HTTPS || secret_host) && (!strcmp(m, "TRACE") || !strcmp(m, "TRACK")))
    return deny(AWF_REASON_METHOD_NOT_ALLOWED);
  if (scheme == AWF_URL_HTTP && secret_host && !p->secret_allow_plaintext)
    return deny(AWF_REASON_SECRET_PLAINTEXT);
  if (v.would_deny || !p->url_rules)
    return v;
  switch (awf_url_rules_check(p->url_rules, scheme, f->host, f->host_len,
                              f->http.method ? f->http.method : "",
                              f->http.target ? f->http.target : "", f->http.target_len)) {
  case AWF_URL_NO_RULE:
  case AWF_URL_ALLOWED: return v;
  case AWF_URL_BLOCKED: return audited(p, AWF_REASON_URL_BLOCKED);
  case AWF_URL_NOT_ALLOWED:
  case AWF_URL_BAD_TARGET: break; /* or a path that cannot be judged unambiguously */
  }
  return audited(p, AWF_REASON_URL_NOT_ALLOWED);
}

/* Redirected TLS: the SNI is the only name there is. */
static struct awf_verdict judge_tls_sni(const struct awf_policy *p,
                                        const struct awf_ask_facts *f) {
  const struct awf_hello_facts *h = &f->hello;
  if (!h->complete)
    return deny(AWF_REASON_BAD_CLIENT_HELLO);
  if (!h->has_sni || h->sni_len == 0)
    return deny(AWF_REASON_NO_SNI);
  if (h->sni_multiple)
    return deny(AWF_REASON_BAD_CLIENT_HELLO);
  struct sockaddr_storage lit;
  if (awf_ip_literal_parse(h->sni, h->sni_len, &lit) != 0)
    return deny(AWF_REASON_IP_LITERAL); /* SNI must be a name (RFC 6066); an IP says nothing */
  char name[AWF_HOSTNAME_MAX + 1];
  if (awf_hostname_normalize(h->sni, h->sni_len, name, sizeof(name)) < 0)
    return deny(AWF_REASON_INVALID_NAME);
  if (f->name_out)
    memcpy(f->name_out, name, strlen(name) + 1);
  return judge_host(p, name, strlen(name), f->port, AWF_PROTO_TLS);
}

/* A CONNECT tunnel's ClientHello: the CONNECT host was admitted; the hello
 * may claim no other name. Under --audit a mismatch is admitted and said. */
static struct awf_verdict judge_sni_match(const struct awf_policy *p,
                                          const struct awf_ask_facts *f) {
  const struct awf_hello_facts *h = &f->hello;
  enum awf_reason r = AWF_REASON_NONE;
  char sni[AWF_HOSTNAME_MAX + 1], host[AWF_HOSTNAME_MAX + 1];
  if (!h->complete)
    r = AWF_REASON_BAD_CLIENT_HELLO;
  else if (!h->has_sni)
    r = AWF_REASON_NONE; /* nothing else is claimed */
  else if (h->sni_multiple ||
           awf_hostname_normalize(h->sni, h->sni_len, sni, sizeof(sni)) < 0 ||
           awf_hostname_normalize(f->host, f->host_len, host, sizeof(host)) < 0 ||
           strcmp(sni, host) != 0 ||
           judge_host(p, sni, strlen(sni), f->port, AWF_PROTO_TLS).decision == AWF_DENY)
    r = AWF_REASON_SNI_MISMATCH;
  if (r == AWF_REASON_NONE)
    return allow(AWF_REASON_ALLOWED);
  if (!p->audit)
    return deny(r);
  struct awf_verdict v = allow(r);
  v.would_deny = true;
  return v;
}

/* A redirected connection: its original port says what it carries. */
static struct awf_verdict judge_port(const struct awf_policy *p,
                                     const struct awf_ask_facts *f) {
  struct awf_verdict v = allow(AWF_REASON_ALLOWED);
  if (f->dst && awf_host_access_is_alias(p->host_access, f->dst)) {
    v.mode = AWF_MODE_HOST;
    return v;
  }
  if (f->port == AWF_SSH_PORT && p->ssh_acl) { /* --allow-ssh: no name on the wire */
    v.mode = AWF_MODE_SSH;
    return v;
  }
  /* A port let out but neither TLS nor HTTP has no name to judge. */
  if (!awf_port_set_has(p->allow_ports, f->port))
    return deny(AWF_REASON_PORT_NOT_ALLOWED);
  if (awf_port_set_has(p->tls_ports, f->port))
    v.mode = AWF_MODE_TLS;
  else if (awf_port_set_has(p->http_ports, f->port))
    v.mode = AWF_MODE_HTTP;
  else
    return deny(AWF_REASON_NO_PROTOCOL_FOR_PORT);
  return v;
}

static struct awf_verdict judge_host_port(const struct awf_policy *p,
                                          const struct awf_ask_facts *f) {
  if (p->host_access && awf_port_set_has(&p->host_access->ports, f->port))
    return host_admitted();
  return deny(AWF_REASON_HOST_PORT_NOT_ALLOWED);
}

bool awf_name_under(const char *name, size_t len, const char *suffix) {
  size_t sl = strlen(suffix);
  if (len == sl)
    return memcmp(name, suffix, sl) == 0;
  return len > sl && name[len - sl - 1] == '.' && memcmp(name + len - sl, suffix, sl) == 0;
}

static bool is_loopback_name(const char *name, size_t len) {
  return awf_name_under(name, len, "localhost") ||
         awf_name_under(name, len, "127.in-addr.arpa") ||
         awf_name_under(name, len, AWF_DNS_PTR_LOOPBACK6);
}

/* A DNS question. A name admitted for either protocol resolves; --allow-ssh
 * names resolve too (ssh must look them up), when no block rule matches. */
static struct awf_verdict judge_dns(const struct awf_policy *p, const struct awf_ask_facts *f) {
  if (!f->dns.name_ok)
    return deny(AWF_REASON_INVALID_NAME);
  if (!f->dns.class_in)
    return deny(AWF_REASON_UNSUPPORTED_CLASS);
  if (awf_host_access_check(p->host_access, f->host, f->host_len, 0) != AWF_HOST_NONE)
    return host_admitted();
  if (is_loopback_name(f->host, f->host_len))
    return allow(AWF_REASON_LOOPBACK);
  enum awf_acl_verdict v = awf_policy_acl_any(p->acl, f->host, f->host_len);
  if (v == AWF_ACL_ALLOWED)
    return allow(AWF_REASON_ALLOWED);
  if (v == AWF_ACL_NOT_ALLOWED && p->ssh_acl &&
      awf_acl_check(p->ssh_acl, f->host, f->host_len, AWF_PROTO_TLS) == AWF_ACL_ALLOWED)
    return allow(AWF_REASON_ALLOWED);
  return audited(p, awf_reason_of_acl(v));
}

/* SSH, by the names awf's DNS answered for the original address (ssh_gate.h). */
static struct awf_verdict judge_ssh(const struct awf_policy *p, const struct awf_ask_facts *f) {
  struct awf_verdict v = allow(AWF_REASON_ALLOWED);
  const struct awf_dns_memory_name *names = f->ssh.names;
  const char *blocked = NULL;
  for (size_t i = 0; i < f->ssh.n; i++) {
    const char *name = names[i].name;
    if (awf_policy_acl_any(p->acl, name, strlen(name)) == AWF_ACL_BLOCKED) {
      if (!blocked)
        blocked = name; /* a block always wins, for this name */
      continue;
    }
    if (awf_acl_check(p->ssh_acl, name, strlen(name), AWF_PROTO_TLS) == AWF_ACL_ALLOWED) {
      v.name = name;
      v.dial_address = names[i].pinned;
      return v;
    }
  }
  /* No name admitted: an IP rule may still admit the address itself. */
  const char *ip = f->ssh.dst_ip ? f->ssh.dst_ip : "";
  if (awf_policy_acl_any(p->acl, ip, strlen(ip)) != AWF_ACL_BLOCKED &&
      awf_acl_check(p->ssh_acl, ip, strlen(ip), AWF_PROTO_TLS) == AWF_ACL_ALLOWED) {
    v.dial_address = true;
    return v;
  }
  if (f->ssh.n == 0)
    return deny(AWF_REASON_UNKNOWN_DESTINATION); /* nothing to dial, even under --audit */
  v = deny(blocked ? AWF_REASON_BLOCKED : AWF_REASON_SSH_NOT_ALLOWED);
  v.name = blocked ? blocked : names[0].name;
  if (p->audit) {
    v.decision = AWF_ALLOW;
    v.would_deny = true;
    v.dial_address = blocked ? false : names[0].pinned;
  }
  return v;
}

/* --dlp: what the ask carries that could leave. The host or name (a token
 * in a label, or split across labels), the request's target and headers
 * (also percent-decoded). Bodies are the HTTP mode's (a stream). */
static const char *dlp_scan(const struct awf_policy *p, const struct awf_ask_facts *f) {
  const awf_dlp *d = p->dlp;
  const char *kind = NULL;
  bool http = f->kind == AWF_ASK_HTTP || f->kind == AWF_ASK_HTTPS;
  if (http && f->http.target)
    kind = awf_dlp_scan(d, AWF_DLP_TEXT, f->http.target, f->http.target_len);
  const struct awf_head *h = http ? f->http.headers : NULL;
  for (unsigned i = 0; !kind && h && i < h->n; i++) {
    const struct awf_hdr *x = &h->hdrs[i];
    kind = awf_dlp_scan(d, AWF_DLP_TEXT, awf_hdr_name(h, x), x->name_len);
    if (!kind)
      kind = awf_dlp_scan(d, AWF_DLP_TEXT, awf_hdr_val(h, x), x->val_len);
  }
  if (!kind && f->host && (http || f->kind == AWF_ASK_CONNECT || f->kind == AWF_ASK_DNS))
    kind = awf_dlp_scan(d, AWF_DLP_NAME, f->host, f->host_len);
  /* Redirected TLS and a CONNECT's ClientHello: the server name. */
  if (!kind && (f->kind == AWF_ASK_TLS_SNI || f->kind == AWF_ASK_SNI_MATCH) &&
      f->hello.has_sni && f->hello.sni)
    kind = awf_dlp_scan(d, AWF_DLP_NAME, f->hello.sni, f->hello.sni_len);
  return kind;
}

static struct awf_verdict judge_rules(const struct awf_policy *p,
                                      const struct awf_ask_facts *f) {
  switch (f->kind) {
  case AWF_ASK_HTTP: return judge_http(p, f, AWF_URL_HTTP);
  case AWF_ASK_HTTPS: return judge_http(p, f, AWF_URL_HTTPS);
  case AWF_ASK_CONNECT: return judge_host(p, f->host, f->host_len, f->port, AWF_PROTO_TLS);
  case AWF_ASK_TLS_SNI: return judge_tls_sni(p, f);
  case AWF_ASK_SNI_MATCH: return judge_sni_match(p, f);
  case AWF_ASK_PORT: return judge_port(p, f);
  case AWF_ASK_HOST_PORT: return judge_host_port(p, f);
  case AWF_ASK_DNS: return judge_dns(p, f);
  case AWF_ASK_SSH: return judge_ssh(p, f);
  }
  return deny(AWF_REASON_BAD_REQUEST);
}

struct awf_verdict awf_policy_judge(const struct awf_policy *p, const struct awf_ask_facts *f) {
  struct awf_verdict v = judge_rules(p, f);
  const char *kind = p->dlp ? dlp_scan(p, f) : NULL;
  if (!kind)
    return v;
  if (!p->audit) {
    v = deny(AWF_REASON_DLP_MATCH);
  } else if (v.decision == AWF_ALLOW && !v.would_deny) {
    /* --audit: the rules' verdict stands, said to carry a match. */
    v.would_deny = true;
    v.reason = AWF_REASON_DLP_MATCH;
  }
  v.dlp = kind;
  return v;
}
