/* host_access.c: which names, addresses and ports are the host's services. */
#include "host_access.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "hostname.h"

static void set_ip(struct sockaddr_storage *ss, int family, const char *text) {
  memset(ss, 0, sizeof(*ss));
  ss->ss_family = (sa_family_t)family;
  if (family == AF_INET)
    inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr);
  else
    inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr);
}

void awf_host_access_default(struct awf_host_access *h) {
  memset(h, 0, sizeof(*h));
  h->names[h->n_names++] = AWF_HOST_ALIAS_NAME;
  h->names[h->n_names++] = AWF_HOST_ALIAS_NAME2;
  set_ip(&h->alias[h->n_alias++], AF_INET, AWF_HOST_ALIAS_ADDR4);
  set_ip(&h->alias[h->n_alias++], AF_INET6, AWF_HOST_ALIAS_ADDR6);
  /* Most services listen on IPv4 loopback; one bound to ::1 only is
   * reached when 127.0.0.1 refuses. */
  set_ip(&h->target[h->n_target++], AF_INET, "127.0.0.1");
  set_ip(&h->target[h->n_target++], AF_INET6, "::1");
}

static bool is_host_name(const struct awf_host_access *h, const char *host, size_t len) {
  char name[AWF_HOSTNAME_MAX + 1];
  if (!h || !host || awf_hostname_normalize(host, len, name, sizeof(name)) < 0)
    return false;
  for (size_t i = 0; i < h->n_names; i++)
    if (strcmp(name, h->names[i]) == 0)
      return true;
  return false;
}

enum awf_host_verdict awf_host_access_check(const struct awf_host_access *h, const char *host,
                                            size_t len, uint16_t port) {
  if (!is_host_name(h, host, len))
    return AWF_HOST_NONE;
  return awf_port_set_has(&h->ports, port) ? AWF_HOST_ALLOWED : AWF_HOST_PORT_DENIED;
}

bool awf_host_access_is_alias(const struct awf_host_access *h, const struct sockaddr *addr) {
  if (!h || !addr)
    return false;
  for (size_t i = 0; i < h->n_alias; i++) {
    const struct sockaddr *a = (const struct sockaddr *)&h->alias[i];
    if (a->sa_family != addr->sa_family)
      continue;
    if (a->sa_family == AF_INET && ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
                                       ((const struct sockaddr_in *)addr)->sin_addr.s_addr)
      return true;
    if (a->sa_family == AF_INET6 &&
        memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
               &((const struct sockaddr_in6 *)addr)->sin6_addr, sizeof(struct in6_addr)) == 0)
      return true;
  }
  return false;
}

int awf_host_access_targets(const struct awf_host_access *h, const char *host, size_t len,
                            uint16_t port, struct awf_addr_list *out) {
  enum awf_host_verdict v = awf_host_access_check(h, host, len, port);
  if (v == AWF_HOST_NONE)
    return -1;
  memset(out, 0, sizeof(*out));
  if (v != AWF_HOST_ALLOWED)
    return 0;
  for (size_t i = 0; i < h->n_target && i < AWF_RESOLVE_MAX_ADDRS; i++)
    out->addr[out->n++] = h->target[i];
  return (int)out->n;
}

static const struct {
  uint16_t port;
  const char *service;
} dangerous[] = {
    {22, "SSH"},
    {23, "Telnet"},
    {25, "SMTP"},
    {110, "POP3"},
    {143, "IMAP"},
    {445, "SMB"},
    {1433, "MS SQL Server"},
    {1521, "Oracle"},
    {3306, "MySQL"},
    {3389, "RDP"},
    {5432, "PostgreSQL"},
    {5984, "CouchDB"},
    {6379, "Redis"},
    {6984, "CouchDB (TLS)"},
    {8086, "InfluxDB"},
    {8088, "InfluxDB RPC"},
    {9200, "Elasticsearch"},
    {9300, "Elasticsearch transport"},
    {27017, "MongoDB"},
    {27018, "MongoDB shard"},
    {28017, "MongoDB web"},
};

const char *awf_host_port_danger(uint16_t port) {
  for (size_t i = 0; i < sizeof(dangerous) / sizeof(dangerous[0]); i++)
    if (dangerous[i].port == port)
      return dangerous[i].service;
  return NULL;
}

uint16_t awf_host_ports_first_danger(const struct awf_port_set *s) {
  uint16_t first = 0;
  for (size_t i = 0; i < sizeof(dangerous) / sizeof(dangerous[0]); i++)
    if (awf_port_set_has(s, dangerous[i].port) && (!first || dangerous[i].port < first))
      first = dangerous[i].port;
  return first;
}
