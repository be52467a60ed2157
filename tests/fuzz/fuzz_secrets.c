/* fuzz_secrets.c: the secrets rewriters (secrets.h) on arbitrary bytes.
 * Input: one byte choosing the dialled host and the split of the stream,
 * then the bytes. Invariants: a head rewrite keeps the length and touches
 * nothing but placeholders, and only for a bound host; streaming the bytes
 * in pieces gives exactly what one piece gives, of the same length, and no
 * whole real value survives a scrub stream. */
#include "fuzz_check.h"
#include "secrets.h"

static awf_secrets *store;

static int counter_random(void *buf, size_t len, void *arg) {
  uint8_t *b = buf;
  uint32_t *s = arg;
  for (size_t i = 0; i < len; i++) {
    *s = *s * 1103515245u + 12345u;
    b[i] = (uint8_t)(*s >> 16);
  }
  return 0;
}

static void setup(void) {
  char err[256];
  uint32_t seed = 7;
  store = awf_secrets_new();
  FUZZ_CHECK(store != NULL);
  FUZZ_CHECK(awf_secrets_add(store, "A=api.a.test", err, sizeof(err)) == 0);
  FUZZ_CHECK(awf_secrets_add(store, "B=*.b.test", err, sizeof(err)) == 0);
  FUZZ_CHECK(awf_secrets_set_value(store, 0, "sk-aaaaaaaaaaaa", 15, err, sizeof(err)) == 0);
  FUZZ_CHECK(awf_secrets_set_value(store, 1, "0123456789abcdef01", 18, err, sizeof(err)) == 0);
  FUZZ_CHECK(awf_secrets_seal(store, counter_random, &seed, err, sizeof(err)) == 0);
}

/* The whole input through a stream in pieces of `step`; returns the output length. */
static size_t stream(bool to_value, const uint8_t *in, size_t n, size_t step, char *out) {
  struct awf_secret_stream st;
  awf_secret_stream_init(&st, store, to_value, UINT64_MAX, UINT64_MAX);
  char *piece = malloc(AWF_SECRET_STREAM_OUT(n));
  FUZZ_CHECK(piece != NULL);
  size_t w = 0;
  for (size_t off = 0; off < n; off += step) {
    size_t k = n - off < step ? n - off : step;
    size_t got = awf_secret_stream_feed(&st, (const char *)in + off, k, piece);
    memcpy(out + w, piece, got);
    w += got;
  }
  size_t got = awf_secret_stream_finish(&st, piece);
  memcpy(out + w, piece, got);
  free(piece);
  return w + got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!store)
    setup();
  if (size < 1)
    return 0;
  const char *hosts[] = {"api.a.test", "x.b.test", "other.test", "b.test"};
  const char *host = hosts[data[0] & 3];
  size_t step = (size_t)(data[0] >> 2) + 1;
  const uint8_t *in = data + 1;
  size_t n = size - 1;

  char *head = (char *)fuzz_dup(in, n);
  struct awf_secret_use use = {0};
  awf_secrets_rewrite_head(store, host, strlen(host), head, n, &use);
  uint64_t bound = awf_secrets_mask_for(store, host, strlen(host));
  FUZZ_CHECK((use.injected & ~bound) == 0);
  FUZZ_CHECK((use.misdirected & bound) == 0);
  if (!use.injected)
    FUZZ_CHECK(memcmp(head, in, n) == 0);
  free(head);

  for (int dir = 0; dir < 2; dir++) {
    char *one = malloc(n + AWF_SECRET_MAX_LEN), *many = malloc(n + AWF_SECRET_MAX_LEN);
    FUZZ_CHECK(one && many);
    size_t a = stream(dir, in, n, n ? n : 1, one);
    size_t b = stream(dir, in, n, step, many);
    FUZZ_CHECK(a == n && b == n);
    FUZZ_CHECK(memcmp(one, many, n) == 0);
    if (!dir) /* values to placeholders: none is left */
      for (size_t i = 0; i < awf_secrets_count(store); i++) {
        size_t len;
        const char *v = awf_secrets_value(store, i, &len);
        FUZZ_CHECK(n < len || memmem(many, n, v, len) == NULL);
      }
    free(one);
    free(many);
  }
  return 0;
}
