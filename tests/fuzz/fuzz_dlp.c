/* fuzz_dlp.c: libFuzzer target for the DLP scanner (proxy/policy/dlp.c).
 *
 * Input: a flags byte; when its low bit is set, a length byte L and a
 * literal of 8 + L % 33 bytes added as kind "secret:FUZZ"; two bytes of chunk
 * size; then the text. Checked:
 * - the streaming scanner, fed the text in chunks of that size, finds a
 *   match exactly when the block scan (as text: raw and percent-decoded)
 *   does: no match is lost across a chunk boundary, and no boundary a
 *   chunk's edge hides makes one up;
 * - awf_dlp_redact finds a match exactly when awf_dlp_scan does, for the
 *   raw, text and name views, and leaves the length alone, touching only
 *   bytes it turns into '*';
 * - every kind reported is a built-in kind or the literal's.
 */
#include "dlp.h"
#include "fuzz_check.h"

static bool known_kind(const char *k) {
  if (!strcmp(k, "secret:FUZZ"))
    return true;
  for (size_t i = 0; awf_dlp_builtin_kind(i); i++)
    if (!strcmp(k, awf_dlp_builtin_kind(i)))
      return true;
  return false;
}

static void check_redact(const awf_dlp *d, enum awf_dlp_view view, const uint8_t *s, size_t n) {
  const char *kind = awf_dlp_scan(d, view, (const char *)s, n);
  if (kind)
    FUZZ_CHECK(known_kind(kind));
  uint8_t *copy = fuzz_dup(s, n);
  int count = awf_dlp_redact(d, view, (char *)copy, n);
  FUZZ_CHECK(count >= 0);
  FUZZ_CHECK((count > 0) == (kind != NULL));
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK(copy[i] == s[i] || copy[i] == '*');
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  uint8_t flags = data[0];
  data++;
  size--;
  awf_dlp *d = awf_dlp_new();
  FUZZ_CHECK(d != NULL);
  if (flags & 1) {
    size_t len = size ? AWF_DLP_LITERAL_MIN + data[0] % 33 : 0;
    if (size < 1 + len) {
      awf_dlp_free(d);
      return 0;
    }
    FUZZ_CHECK(awf_dlp_add_literal(d, "secret:FUZZ", (const char *)data + 1, len) == 0);
    data += 1 + len;
    size -= 1 + len;
  }
  if (size < 2) {
    awf_dlp_free(d);
    return 0;
  }
  size_t step = 1 + ((size_t)data[0] << 8 | data[1]) % 8192;
  data += 2;
  size -= 2;
  uint8_t *text = fuzz_dup(data, size);

  const char *block = awf_dlp_scan(d, AWF_DLP_TEXT, (const char *)text, size);
  awf_dlp_stream *st = awf_dlp_stream_new(d, AWF_DLP_BODY_MAX);
  FUZZ_CHECK(st != NULL);
  const char *streamed = NULL;
  for (size_t i = 0; i < size && !streamed; i += step)
    streamed = awf_dlp_stream_feed(st, (const char *)text + i,
                                   size - i < step ? size - i : step);
  if (!streamed)
    streamed = awf_dlp_stream_finish(st);
  awf_dlp_stream_free(st);
  if ((block != NULL) != (streamed != NULL)) {
    fprintf(stderr, "block %s, streamed %s (chunks of %zu)\n", block ? block : "-",
            streamed ? streamed : "-", step);
    FUZZ_CHECK(0);
  }
  if (streamed)
    FUZZ_CHECK(known_kind(streamed));

  check_redact(d, AWF_DLP_RAW, text, size);
  check_redact(d, AWF_DLP_TEXT, text, size);
  check_redact(d, AWF_DLP_NAME, text, size);
  free(text);
  awf_dlp_free(d);
  return 0;
}
