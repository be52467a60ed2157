/* netaddr.c: socket addresses to and from their text form. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *awf_sockaddr_format(const struct sockaddr *sa, char *out, size_t outsz) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    snprintf(out, outsz, "%s:%u", ip, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    snprintf(out, outsz, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(out, outsz, "?");
  }
  return out;
}

char *awf_sockaddr_format_ip(const struct sockaddr *sa, char *out, size_t outsz) {
  const void *ip = sa->sa_family == AF_INET
                       ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                       : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
  if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
      !inet_ntop(sa->sa_family, ip, out, (socklen_t)outsz))
    snprintf(out, outsz, "?");
  return out;
}

static int parse_port(const char *s, uint16_t *port) {
  if (*s < '0' || *s > '9' || strlen(s) > 5)
    return -EINVAL;
  unsigned long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -EINVAL;
    v = v * 10 + (unsigned long)(*s - '0');
  }
  if (v > 65535)
    return -EINVAL;
  *port = (uint16_t)v;
  return 0;
}

int awf_sockaddr_parse(const char *s, struct sockaddr_storage *out) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon;
  uint16_t port;

  memset(out, 0, sizeof(*out));
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
      return -EINVAL;
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    if (parse_port(close + 2, &port) < 0)
      return -EINVAL;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
      return -EINVAL;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    return 0;
  }
  colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof(host) || strchr(s, ':') != colon)
    return -EINVAL;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  if (parse_port(colon + 1, &port) < 0)
    return -EINVAL;
  struct sockaddr_in *in = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
    return -EINVAL;
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  return 0;
}

void awf_sockaddr_set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  else if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

uint16_t awf_sockaddr_port(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return 0;
}

int awf_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}

socklen_t awf_sockaddr_len(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}
