/* pathenv.c: see pathenv.h. */
#include "pathenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYSTEM_ENTRIES 6 /* in AWF_PATHENV_SYSTEM */

struct builder {
  const struct awf_pathenv_spec *spec;
  char *out;
  size_t outsz, len, count, dropped;
};

/* Normalise an entry into norm. Returns its length, 0 when empty, or -1
 * when it must be dropped. */
static int normalize(const char *s, size_t len, char norm[AWF_PATHENV_ENTRY_MAX + 1]) {
  size_t i, o = 0;

  if (len == 0)
    return 0;
  if (s[0] != '/')
    return -1;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c < 0x20 || c == 0x7f)
      return -1;
    if (c == '/' && o > 0 && norm[o - 1] == '/')
      continue;
    if (o == AWF_PATHENV_ENTRY_MAX)
      return -1;
    norm[o++] = (char)c;
  }
  while (o > 1 && norm[o - 1] == '/')
    o--;
  norm[o] = '\0';
  return (int)o;
}

static int already(const struct builder *b, const char *e, size_t elen) {
  const char *p = b->out, *end = b->out + b->len;

  while (p < end) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t l = colon ? (size_t)(colon - p) : (size_t)(end - p);

    if (l == elen && memcmp(p, e, elen) == 0)
      return 1;
    p += l + 1;
  }
  return 0;
}

/* Add one entry; `reserve` bytes of the buffer stay free for later ones. */
static void add(struct builder *b, const char *s, size_t len, int check_exists,
                size_t reserve) {
  char norm[AWF_PATHENV_ENTRY_MAX + 1];
  int n = normalize(s, len, norm);
  size_t need;

  if (n == 0)
    return;
  if (n < 0) {
    b->dropped++;
    return;
  }
  if (already(b, norm, (size_t)n))
    return;
  if (check_exists && !b->spec->exists(b->spec->ud, norm)) {
    b->dropped++;
    return;
  }
  need = (b->len > 0) + (size_t)n;
  if (b->count + (reserve ? SYSTEM_ENTRIES : 0) >= AWF_PATHENV_ENTRIES_MAX ||
      b->len + need + reserve + 1 > b->outsz) {
    b->dropped++;
    return;
  }
  if (b->len > 0)
    b->out[b->len++] = ':';
  memcpy(b->out + b->len, norm, (size_t)n);
  b->len += (size_t)n;
  b->out[b->len] = '\0';
  b->count++;
}

/* Add each ':'-separated entry of s[0..len). */
static void add_list(struct builder *b, const char *s, size_t len, int check_exists,
                     size_t reserve) {
  const char *p = s, *end = s + len;

  for (;;) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t l = colon ? (size_t)(colon - p) : (size_t)(end - p);

    add(b, p, l, check_exists, reserve);
    if (colon == NULL)
      break;
    p = colon + 1;
  }
}

/* $GITHUB_PATH lines, last first. */
static void add_github_path(struct builder *b, const char *data, size_t len) {
  const char *end = data + len;

  while (end > data) {
    const char *nl = memrchr(data, '\n', (size_t)(end - data));
    const char *line = nl ? nl + 1 : data;
    size_t l = (size_t)(end - line);

    if (l > 0 && line[l - 1] == '\r')
      l--;
    if (memchr(line, '\0', l) != NULL)
      b->dropped++;
    else
      add_list(b, line, l, 0, sizeof AWF_PATHENV_SYSTEM);
    if (nl == NULL)
      break;
    end = nl;
  }
}

static void add_tool_dirs(struct builder *b) {
  const struct awf_pathenv_spec *sp = b->spec;
  size_t i;

  for (i = 0; i < sp->n_tool_dirs; i++)
    if (sp->tool_dirs[i] != NULL)
      add(b, sp->tool_dirs[i], strlen(sp->tool_dirs[i]), 1, sizeof AWF_PATHENV_SYSTEM);
}

int awf_pathenv_build(const struct awf_pathenv_spec *spec, char *out, size_t outsz,
                      size_t *dropped) {
  struct builder b = {spec, out, outsz, 0, 0, 0};

  if (dropped != NULL)
    *dropped = 0;
  if (out == NULL || outsz < sizeof AWF_PATHENV_SYSTEM || spec->exists == NULL)
    return -EINVAL;
  out[0] = '\0';
  if (spec->github_path != NULL)
    add_github_path(&b, spec->github_path, spec->github_path_len);
  add_tool_dirs(&b);
  if (spec->awf_path != NULL)
    add_list(&b, spec->awf_path, strlen(spec->awf_path), 1, sizeof AWF_PATHENV_SYSTEM);
  add_list(&b, AWF_PATHENV_SYSTEM, sizeof AWF_PATHENV_SYSTEM - 1, 0, 0);
  if (dropped != NULL)
    *dropped = b.dropped;
  return 0;
}
