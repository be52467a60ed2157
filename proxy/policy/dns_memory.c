/* dns_memory.c: the address -> names table of dns_memory.h.
 *
 * Entries live in one array, chained per address in a hash table and, unless
 * pinned, on a recency list (head: most recently answered). Free entries are
 * chained through `hnext`. Everything is an index, so the table is a few
 * allocations made once. */
#include "dns_memory.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"

#define NIL UINT32_MAX
#define NEVER UINT64_MAX

struct entry {
  uint8_t family; /* AF_INET, AF_INET6; 0: free */
  bool pinned;
  uint8_t addr[16];
  uint64_t expires_ms; /* NEVER when pinned */
  uint64_t seq;        /* when last noted: orders a lookup's names */
  uint32_t hnext;      /* hash chain, or the free list */
  uint32_t prev, next; /* recency list (not pinned) */
  char name[AWF_HOSTNAME_MAX + 1];
};

struct awf_dns_memory {
  struct entry *e;
  uint32_t cap, used, pinned;
  uint32_t *bucket;
  uint32_t nbuckets; /* a power of two */
  uint32_t free_head;
  uint32_t head, tail; /* recency list */
  uint64_t seq;
  pthread_mutex_t mu;
};

awf_dns_memory *awf_dns_memory_new(size_t max_entries) {
  if (max_entries == 0)
    max_entries = AWF_DNS_MEMORY_MAX;
  if (max_entries > (1u << 20))
    max_entries = 1u << 20;
  awf_dns_memory *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->cap = (uint32_t)max_entries;
  m->nbuckets = 1;
  while (m->nbuckets < 2 * m->cap)
    m->nbuckets <<= 1;
  m->e = calloc(m->cap, sizeof(*m->e));
  m->bucket = malloc(m->nbuckets * sizeof(*m->bucket));
  if (!m->e || !m->bucket) {
    awf_dns_memory_free(m);
    return NULL;
  }
  for (uint32_t i = 0; i < m->nbuckets; i++)
    m->bucket[i] = NIL;
  for (uint32_t i = 0; i < m->cap; i++)
    m->e[i].hnext = i + 1 < m->cap ? i + 1 : NIL;
  m->free_head = 0;
  m->head = m->tail = NIL;
  pthread_mutex_init(&m->mu, NULL);
  return m;
}

void awf_dns_memory_free(awf_dns_memory *m) {
  if (!m)
    return;
  free(m->e);
  free(m->bucket);
  free(m);
}

size_t awf_dns_memory_count(const awf_dns_memory *m) {
  pthread_mutex_lock((pthread_mutex_t *)&m->mu);
  size_t n = m->used;
  pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
  return n;
}

/* The address bytes of addr (4 or 16) into key; returns the family or 0. */
static int key_of(const struct sockaddr *sa, uint8_t key[16]) {
  memset(key, 0, 16);
  if (sa->sa_family == AF_INET) {
    memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return AF_INET;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    /* An IPv4-mapped address is the IPv4 address a client dialled over v6. */
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      memcpy(key, a6->s6_addr + 12, 4);
      return AF_INET;
    }
    memcpy(key, a6, 16);
    return AF_INET6;
  }
  return 0;
}

static uint32_t hash_of(const awf_dns_memory *m, int family, const uint8_t key[16]) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)family; /* FNV-1a */
  for (int i = 0; i < 16; i++)
    h = (h ^ key[i]) * 1099511628211ull;
  return (uint32_t)(h ^ (h >> 32)) & (m->nbuckets - 1);
}

static void list_unlink(awf_dns_memory *m, uint32_t i) {
  struct entry *x = &m->e[i];
  if (x->prev != NIL)
    m->e[x->prev].next = x->next;
  else
    m->head = x->next;
  if (x->next != NIL)
    m->e[x->next].prev = x->prev;
  else
    m->tail = x->prev;
  x->prev = x->next = NIL;
}

static void list_push_head(awf_dns_memory *m, uint32_t i) {
  struct entry *x = &m->e[i];
  x->prev = NIL;
  x->next = m->head;
  if (m->head != NIL)
    m->e[m->head].prev = i;
  m->head = i;
  if (m->tail == NIL)
    m->tail = i;
}

/* Take entry i off its hash chain and lists, and free it. */
static void drop(awf_dns_memory *m, uint32_t i) {
  struct entry *x = &m->e[i];
  uint32_t *link = &m->bucket[hash_of(m, x->family, x->addr)];
  while (*link != NIL && *link != i)
    link = &m->e[*link].hnext;
  if (*link == i)
    *link = x->hnext;
  if (x->pinned)
    m->pinned--;
  else
    list_unlink(m, i);
  x->family = 0;
  x->hnext = m->free_head;
  m->free_head = i;
  m->used--;
}

static uint32_t find(const awf_dns_memory *m, int family, const uint8_t key[16],
                     const char *name) {
  for (uint32_t i = m->bucket[hash_of(m, family, key)]; i != NIL; i = m->e[i].hnext) {
    const struct entry *x = &m->e[i];
    if (x->family == family && memcmp(x->addr, key, 16) == 0 && strcmp(x->name, name) == 0)
      return i;
  }
  return NIL;
}

static int remember(awf_dns_memory *m, const struct sockaddr *addr, const char *name,
                    uint64_t expires_ms, bool pin) {
  uint8_t key[16];
  int family = key_of(addr, key);
  size_t nl = name ? strlen(name) : 0;
  if (!family || nl == 0 || nl > AWF_HOSTNAME_MAX)
    return -EINVAL;
  uint32_t i = find(m, family, key, name);
  if (i != NIL) {
    struct entry *x = &m->e[i];
    if (x->pinned)
      return 0; /* an /etc/hosts pair outlives any answer */
    if (pin) {
      if (m->pinned >= m->cap / 2)
        return -ENOSPC;
      list_unlink(m, i);
      x->pinned = true;
      x->expires_ms = NEVER;
      m->pinned++;
      return 0;
    }
    if (expires_ms > x->expires_ms)
      x->expires_ms = expires_ms;
    x->seq = ++m->seq;
    list_unlink(m, i);
    list_push_head(m, i);
    return 0;
  }
  if (pin && m->pinned >= m->cap / 2)
    return -ENOSPC;
  if (m->free_head == NIL)
    drop(m, m->tail); /* pinned pairs are at most half: the list is not empty */
  i = m->free_head;
  struct entry *x = &m->e[i];
  m->free_head = x->hnext;
  x->family = (uint8_t)family;
  memcpy(x->addr, key, 16);
  memcpy(x->name, name, nl + 1);
  x->pinned = pin;
  x->expires_ms = pin ? NEVER : expires_ms;
  x->seq = ++m->seq;
  x->prev = x->next = NIL;
  uint32_t b = hash_of(m, family, key);
  x->hnext = m->bucket[b];
  m->bucket[b] = i;
  if (pin)
    m->pinned++;
  else
    list_push_head(m, i);
  m->used++;
  return 0;
}

int awf_dns_memory_note(awf_dns_memory *m, const struct sockaddr *addr, const char *name,
                        uint64_t now_ms, uint32_t ttl_s) {
  uint64_t expires = now_ms + ((uint64_t)ttl_s + AWF_DNS_MEMORY_GRACE_S) * 1000;
  pthread_mutex_lock(&m->mu);
  int rc = remember(m, addr, name, expires, false);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

int awf_dns_memory_pin(awf_dns_memory *m, const struct sockaddr *addr, const char *name) {
  pthread_mutex_lock(&m->mu);
  int rc = remember(m, addr, name, NEVER, true);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static size_t lookup_locked(awf_dns_memory *m, int family, const uint8_t key[16],
                            uint64_t now_ms, struct awf_dns_memory_name *out, size_t max) {
  uint64_t rank[AWF_DNS_MEMORY_NAMES_MAX];
  if (max > AWF_DNS_MEMORY_NAMES_MAX)
    max = AWF_DNS_MEMORY_NAMES_MAX;
  size_t n = 0;
  uint32_t i = m->bucket[hash_of(m, family, key)];
  while (i != NIL) {
    struct entry *x = &m->e[i];
    uint32_t next = x->hnext;
    if (x->family != family || memcmp(x->addr, key, 16) != 0) {
      i = next;
      continue;
    }
    if (!x->pinned && x->expires_ms <= now_ms) {
      drop(m, i);
      i = next;
      continue;
    }
    /* Answered names by recency, then /etc/hosts names in file order. */
    uint64_t r = x->pinned ? UINT64_MAX / 2 - x->seq : UINT64_MAX / 2 + x->seq;
    size_t at = n;
    while (at > 0 && rank[at - 1] < r)
      at--;
    if (at < max) {
      size_t last = n < max ? n : max - 1;
      memmove(&rank[at + 1], &rank[at], (last - at) * sizeof(rank[0]));
      memmove(&out[at + 1], &out[at], (last - at) * sizeof(out[0]));
      rank[at] = r;
      memcpy(out[at].name, x->name, sizeof(out[at].name));
      out[at].pinned = x->pinned;
      if (n < max)
        n++;
    }
    i = next;
  }
  return n;
}

size_t awf_dns_memory_lookup(awf_dns_memory *m, const struct sockaddr *addr, uint64_t now_ms,
                             struct awf_dns_memory_name *out, size_t max) {
  uint8_t key[16];
  int family = key_of(addr, key);
  if (!family || max == 0)
    return 0;
  pthread_mutex_lock(&m->mu);
  size_t n = lookup_locked(m, family, key, now_ms, out, max);
  pthread_mutex_unlock(&m->mu);
  return n;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

size_t awf_dns_memory_load_hosts(awf_dns_memory *m, const char *text, size_t len,
                                 bool (*keep)(const char *name, void *arg), void *arg) {
  size_t pinned = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    const char *hash = memchr(p, '#', (size_t)(le - p));
    if (hash)
      le = hash;
    /* fields: ADDRESS NAME [NAME...] */
    const char *f = p;
    struct sockaddr_storage ss;
    bool have_addr = false;
    while (f < le) {
      while (f < le && is_space(*f))
        f++;
      const char *fe = f;
      while (fe < le && !is_space(*fe))
        fe++;
      if (fe == f)
        break;
      if (!have_addr) {
        char buf[64];
        size_t fl = (size_t)(fe - f);
        if (fl >= sizeof(buf))
          break;
        memcpy(buf, f, fl);
        buf[fl] = '\0';
        memset(&ss, 0, sizeof(ss));
        if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
          ss.ss_family = AF_INET;
        else if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
          ss.ss_family = AF_INET6;
        else
          break; /* not an address (a scoped one, garbage): skip the line */
        have_addr = true;
      } else {
        char name[AWF_HOSTNAME_MAX + 1];
        if (awf_hostname_normalize(f, (size_t)(fe - f), name, sizeof(name)) >= 0 &&
            (!keep || keep(name, arg)) &&
            awf_dns_memory_pin(m, (struct sockaddr *)&ss, name) == 0)
          pinned++;
      }
      f = fe;
    }
    p = eol ? eol + 1 : end;
  }
  return pinned;
}
