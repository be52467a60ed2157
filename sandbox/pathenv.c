/* pathenv.c: see pathenv.h. */
#include "pathenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 255

struct builder {
    const struct awf_pathenv_spec *spec;
    char *out;
    size_t outsz, len, count, dropped;
};

/* Normalise an entry into norm. Returns its length, 0 when empty, or -1
 * when it must be dropped. */
static int normalize(const char *s, size_t len, char norm[AWF_PATHENV_ENTRY_MAX + 1])
{
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

static int already(const struct builder *b, const char *e, size_t elen)
{
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
static void add(struct builder *b, const char *s, size_t len, int check_exists, size_t reserve)
{
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
    if (b->count == AWF_PATHENV_ENTRIES_MAX || b->len + need + reserve + 1 > b->outsz) {
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
                     size_t reserve)
{
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
static void add_github_path(struct builder *b, const char *data, size_t len)
{
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
            add_list(b, line, l, 0, 0);
        if (nl == NULL)
            break;
        end = nl;
    }
}

/* A bounded set of directory names, kept sorted by cmp; when full, the
 * names that sort last are the ones left out, so the result does not depend
 * on the listing order. */
struct names {
    char (*v)[NAME_MAX_BYTES + 1];
    size_t n, cap;
    int (*cmp)(const char *, const char *);
};

static int name_ok(const char *s)
{
    size_t i, len = strlen(s);

    if (len == 0 || len > NAME_MAX_BYTES || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f || c == '/' || c == ':')
            return 0;
    }
    return 1;
}

static int names_add(void *ctx, const char *name)
{
    struct names *ns = ctx;
    size_t lo = 0, hi = ns->n;

    if (name == NULL || !name_ok(name))
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ns->cmp(ns->v[mid], name);

        if (c == 0 && strcmp(ns->v[mid], name) == 0)
            return 0;
        if (c <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ns->cap)
        return 0;
    if (ns->n == ns->cap)
        ns->n--;
    memmove(ns->v[lo + 1], ns->v[lo], (ns->n - lo) * sizeof ns->v[0]);
    strcpy(ns->v[lo], name);
    ns->n++;
    return 0;
}

static int by_name(const char *a, const char *b)
{
    return strcmp(a, b);
}

static int newest_first(const char *a, const char *b)
{
    int c = strverscmp(b, a);

    return c != 0 ? c : strcmp(a, b);
}

static int names_init(struct names *ns, size_t cap, int (*cmp)(const char *, const char *))
{
    ns->v = malloc(cap * sizeof ns->v[0]);
    ns->n = 0;
    ns->cap = cap;
    ns->cmp = cmp;
    return ns->v ? 0 : -ENOMEM;
}

static void add_tool(struct builder *b, const char *root, const char *tool,
                     struct names *versions)
{
    const struct awf_pathenv_spec *sp = b->spec;
    char dir[AWF_PATHENV_ENTRY_MAX + 1];
    size_t i;
    int n;

    n = snprintf(dir, sizeof dir, "%s/%s", root, tool);
    if (n < 0 || (size_t)n >= sizeof dir)
        return;
    versions->n = 0;
    if (sp->list(sp->ud, dir, names_add, versions) < 0)
        versions->n = 0;
    for (i = 0; i < versions->n; i++) {
        char bin[AWF_PATHENV_ENTRY_MAX + 2];

        n = snprintf(bin, sizeof bin, "%s/%s/%s/%s/bin", root, tool,
                     versions->v[i], sp->arch);
        if (n < 0 || (size_t)n >= sizeof bin) {
            b->dropped++;
            continue;
        }
        if (sp->exists(sp->ud, bin))
            add(b, bin, (size_t)n, 0, 0);
    }
}

static int add_toolcache(struct builder *b)
{
    const struct awf_pathenv_spec *sp = b->spec;
    struct names tools, versions;
    char root[AWF_PATHENV_ENTRY_MAX + 1];
    size_t i;

    if (sp->toolcache == NULL || sp->arch == NULL || !name_ok(sp->arch) ||
        normalize(sp->toolcache, strlen(sp->toolcache), root) <= 0)
        return 0;
    /* "/" as the root would give "//tool": make it the empty prefix. */
    if (strcmp(root, "/") == 0)
        root[0] = '\0';
    if (names_init(&tools, AWF_PATHENV_TOOLS_MAX, by_name) < 0)
        return -ENOMEM;
    if (names_init(&versions, AWF_PATHENV_VERSIONS_MAX, newest_first) < 0) {
        free(tools.v);
        return -ENOMEM;
    }
    if (sp->list(sp->ud, root[0] ? root : "/", names_add, &tools) < 0)
        tools.n = 0;
    for (i = 0; i < tools.n; i++)
        add_tool(b, root, tools.v[i], &versions);
    free(tools.v);
    free(versions.v);
    return 0;
}

int awf_pathenv_build(const struct awf_pathenv_spec *spec, char *out, size_t outsz,
                      size_t *dropped)
{
    struct builder b = { spec, out, outsz, 0, 0, 0 };
    int rc;

    if (dropped != NULL)
        *dropped = 0;
    if (out == NULL || outsz < sizeof AWF_PATHENV_SYSTEM || spec->exists == NULL ||
        (spec->toolcache != NULL && spec->arch != NULL && spec->list == NULL))
        return -EINVAL;
    out[0] = '\0';
    if (spec->awf_path != NULL)
        add_list(&b, spec->awf_path, strlen(spec->awf_path), 1, sizeof AWF_PATHENV_SYSTEM);
    add_list(&b, AWF_PATHENV_SYSTEM, sizeof AWF_PATHENV_SYSTEM - 1, 0, 0);
    if (spec->github_path != NULL)
        add_github_path(&b, spec->github_path, spec->github_path_len);
    rc = add_toolcache(&b);
    if (dropped != NULL)
        *dropped = b.dropped;
    return rc;
}

const char *awf_pathenv_toolcache_arch(void)
{
#if defined(__x86_64__)
    return "x64";
#elif defined(__aarch64__)
    return "arm64";
#else
    return NULL;
#endif
}
