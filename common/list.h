/* list.h: an intrusive, circular, doubly linked list (the Linux kernel's
 * list_head, libuv's queue). A struct joins a list by embedding a
 * `struct awf_list` node; the list itself is a node used as the head, so
 * insertion and removal are O(1) without allocation and with no special
 * case for the ends. Header-only, pure.
 *
 *   struct conn { ...; struct awf_list link; };
 *   struct awf_list conns;                      awf_list_init(&conns);
 *   awf_list_push_front(&conns, &c->link);      awf_list_remove(&c->link);
 *   struct awf_list *it, *tmp;
 *   awf_list_each_safe(it, tmp, &conns) {
 *     struct conn *c = awf_list_entry(it, struct conn, link); ... }
 */
#ifndef AWF_COMMON_LIST_H
#define AWF_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct awf_list {
  struct awf_list *prev, *next;
};

/* An empty list, or an unlinked node. */
static inline void awf_list_init(struct awf_list *h) { h->prev = h->next = h; }

static inline bool awf_list_empty(const struct awf_list *h) { return h->next == h; }

static inline void awf_list_insert_between(struct awf_list *n, struct awf_list *prev,
                                           struct awf_list *next) {
  n->prev = prev;
  n->next = next;
  prev->next = n;
  next->prev = n;
}

static inline void awf_list_push_front(struct awf_list *h, struct awf_list *n) {
  awf_list_insert_between(n, h, h->next);
}

static inline void awf_list_push_back(struct awf_list *h, struct awf_list *n) {
  awf_list_insert_between(n, h->prev, h);
}

/* Unlink n from its list. n is left unlinked (pointing at itself), so
 * removing it again is harmless. */
static inline void awf_list_remove(struct awf_list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  awf_list_init(n);
}

/* The struct holding node `ptr` as its member `member`. */
#define awf_list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The first (last) entry, or NULL when the list is empty. */
#define awf_list_first(h, type, member) \
  (awf_list_empty(h) ? NULL : awf_list_entry((h)->next, type, member))
#define awf_list_last(h, type, member) \
  (awf_list_empty(h) ? NULL : awf_list_entry((h)->prev, type, member))

/* Walk the nodes front to back (back to front). The current node must stay
 * linked during the body; use the _safe form to remove it. */
#define awf_list_each(pos, h) for ((pos) = (h)->next; (pos) != (h); (pos) = (pos)->next)
#define awf_list_each_reverse(pos, h) for ((pos) = (h)->prev; (pos) != (h); (pos) = (pos)->prev)

/* Front to back, with the next node saved first: the body may remove pos. */
#define awf_list_each_safe(pos, tmp, h) \
  for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h); (pos) = (tmp), (tmp) = (pos)->next)

#endif
