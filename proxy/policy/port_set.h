/* port_set.h: a set of TCP ports, one bit each. Pure. */
#ifndef AWF_PORT_SET_H
#define AWF_PORT_SET_H

#include <stdbool.h>
#include <stdint.h>

struct awf_port_set {
  uint8_t bits[65536 / 8];
};

static inline bool awf_port_set_has(const struct awf_port_set *s, uint16_t p) {
  return (s->bits[p >> 3] >> (p & 7)) & 1;
}
static inline void awf_port_set_add(struct awf_port_set *s, uint16_t p) {
  s->bits[p >> 3] |= (uint8_t)(1u << (p & 7));
}

#endif
