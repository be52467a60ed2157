/* fuzz_check.h: what the fuzz targets share. An invariant that fails aborts,
 * which libFuzzer reports as a crash and saves the input for; assert() is
 * not used because NDEBUG builds would silently drop the checks. */
#ifndef AWF_FUZZ_CHECK_H
#define AWF_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

/* The libFuzzer entry point; declared here so -Wmissing-prototypes-style
 * checks see a prototype. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size heap copy, so AddressSanitizer flags a read one byte past
 * the given length (a prefix of the fuzz input would not: the rest of the
 * input lies behind it). Never returns NULL. */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  FUZZ_CHECK(p != NULL);
  if (n)
    memcpy(p, data, n);
  return p;
}

/* A NUL-terminated copy, for APIs that take C strings. */
static inline char *fuzz_strdup(const uint8_t *data, size_t n) {
  char *p = malloc(n + 1);
  FUZZ_CHECK(p != NULL);
  if (n)
    memcpy(p, data, n);
  p[n] = '\0';
  return p;
}

/* FNV-1a of the input: derives choices (prefix lengths, buffer sizes) from
 * the input itself, so every run of one input does the same thing. */
static inline uint32_t fuzz_hash(const uint8_t *data, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ data[i]) * 16777619u;
  return h;
}

#endif
