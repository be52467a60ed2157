/* Unit tests for sandbox/pathenv.c, over a fake file system. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathenv.h"

#define TC AWF_PATHENV_TOOLCACHE
#define SYS AWF_PATHENV_SYSTEM

/* A fake tree: the directories that exist, and the listing of some of them
 * ("dir" -> "name\0name\0...\0"). */
struct listing {
    const char *dir;
    const char *names; /* NUL-separated, empty name ends */
    int rc;            /* returned by list (after emitting) */
};

struct fakefs {
    const char *const *dirs;
    const struct listing *lists;
    size_t exists_calls;
    size_t list_calls;
};

static int fake_exists(void *ud, const char *path)
{
    struct fakefs *fs = ud;
    const char *const *d;

    fs->exists_calls++;
    for (d = fs->dirs; d != NULL && *d != NULL; d++)
        if (strcmp(*d, path) == 0)
            return 1;
    return 0;
}

static int fake_list(void *ud, const char *dir, awf_pathenv_entry_fn each, void *ctx)
{
    struct fakefs *fs = ud;
    const struct listing *l;

    fs->list_calls++;
    for (l = fs->lists; l != NULL && l->dir != NULL; l++) {
        const char *n;

        if (strcmp(l->dir, dir) != 0)
            continue;
        for (n = l->names; *n != '\0'; n += strlen(n) + 1)
            if (each(ctx, n) != 0)
                break;
        return l->rc;
    }
    return -ENOENT;
}

static struct awf_pathenv_spec spec_for(struct fakefs *fs)
{
    struct awf_pathenv_spec s = { 0 };

    s.exists = fake_exists;
    s.list = fake_list;
    s.ud = fs;
    return s;
}

static char out[AWF_PATHENV_MAX];

static void build(const struct awf_pathenv_spec *s, size_t *dropped)
{
    int rc = awf_pathenv_build(s, out, sizeof out, dropped);

    assert_int_equal(rc, 0);
}

static void test_system_only(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t dropped = 99;

    (void)state;
    build(&s, &dropped);
    assert_string_equal(out, SYS);
    assert_int_equal(dropped, 0);
    assert_int_equal(fs.exists_calls, 0);
    assert_int_equal(fs.list_calls, 0);
}

static void test_awf_path_filtered_and_first(void **state)
{
    const char *dirs[] = { "/home/u/.local/bin", "/usr/bin", "/opt/tool/bin", NULL };
    struct fakefs fs = { dirs, NULL, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t dropped;

    (void)state;
    s.awf_path = "/home/u/.local/bin:/gone/bin:/usr/bin:/opt/tool/bin";
    build(&s, &dropped);
    assert_string_equal(out, "/home/u/.local/bin:/usr/bin:/opt/tool/bin:"
                             "/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin");
    assert_int_equal(dropped, 1);
}

static void test_awf_path_normalised_and_unsafe_dropped(void **state)
{
    const char *dirs[] = { "/a", "/b/c", "/", NULL };
    struct fakefs fs = { dirs, NULL, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t dropped;

    (void)state;
    /* Empty entries and "." would mean the working directory. */
    s.awf_path = ":.:bin:./x:/a/:/a//:////b//c///:/a:::/:~/bin:/b/c\x1b[1m:";
    build(&s, &dropped);
    assert_string_equal(out, "/a:/b/c:/:" SYS);
    assert_int_equal(dropped, 5); /* ".", "bin", "./x", "~/bin", the escape */
    /* exists() sees normalised paths only; duplicates are not asked again. */
    assert_int_equal(fs.exists_calls, 3);
}

static void test_github_path_last_line_first(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    static const char gp[] =
        "/first/bin\n"
        "\n"
        "relative/bin\n"
        "/second/bin\r\n"
        "/l1:/l2\n"
        "/usr/bin\n"
        "/first/bin/\n"
        "/last/bin";
    size_t dropped;

    (void)state;
    s.github_path = gp;
    s.github_path_len = sizeof gp - 1;
    build(&s, &dropped);
    /* /first/bin appears twice: its later line (prepended last) wins. */
    assert_string_equal(out, SYS ":/last/bin:/first/bin:/l1:/l2:/second/bin");
    assert_int_equal(dropped, 1);
}

static void test_github_path_nul_and_trailing_newline(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    static const char gp[] = "/ok1\n/bad\0/x\n/ok2\n\n";
    size_t dropped;

    (void)state;
    s.github_path = gp;
    s.github_path_len = sizeof gp - 1;
    build(&s, &dropped);
    assert_string_equal(out, SYS ":/ok2:/ok1");
    assert_int_equal(dropped, 1);
    /* github_path_len is honoured: nothing past it is read. */
    s.github_path_len = 4;
    build(&s, &dropped);
    assert_string_equal(out, SYS ":/ok1");
}

static void test_github_path_huge_line(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t n = 1 << 20;
    char *gp = malloc(n + 16);
    size_t dropped;

    (void)state;
    assert_non_null(gp);
    gp[0] = '/';
    memset(gp + 1, 'd', n - 1);
    memcpy(gp + n, "\n/small", 7);
    s.github_path = gp;
    s.github_path_len = n + 7;
    build(&s, &dropped);
    assert_string_equal(out, SYS ":/small");
    assert_int_equal(dropped, 1);
    free(gp);
}

static void test_entry_length_limit(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    char gp[2 * AWF_PATHENV_ENTRY_MAX + 2];
    size_t dropped, a = AWF_PATHENV_ENTRY_MAX;

    (void)state;
    gp[0] = '/';
    memset(gp + 1, 'a', a - 1);   /* exactly ENTRY_MAX bytes */
    gp[a] = '\n';
    gp[a + 1] = '/';
    memset(gp + a + 2, 'b', a);   /* ENTRY_MAX + 1 bytes */
    s.github_path = gp;
    s.github_path_len = sizeof gp;
    build(&s, &dropped);
    assert_int_equal(strlen(out), strlen(SYS) + 1 + a);
    assert_int_equal(dropped, 1);
    assert_int_equal(out[strlen(SYS) + 2], 'a');
}

static const char *const tc_dirs[] = {
    TC "/Python/3.9.19/x64/bin",
    TC "/Python/3.10.14/x64/bin",
    TC "/Python/3.12.3/x64/bin",
    TC "/Python/3.12.3/arm64/bin",
    TC "/node/20.12.2/x64/bin",
    TC "/node/18.20.2/x64/bin",
    TC "/go/1.22.2/x64/bin",
    TC "/CodeQL/2.17.0/x64/codeql", /* no bin: ignored */
    TC "/Ruby/3.3.1/arm64/bin",     /* other arch only: ignored */
    TC "/bad:tool/1.0/x64/bin",
    NULL,
};

static const struct listing tc_lists[] = {
    { TC, "node\0Python\0.\0..\0go\0CodeQL\0Ruby\0bad:tool\0bad\x01\0", 0 },
    { TC "/Python", "3.9.19\0" "3.12.3\0" "3.9.19\0" "3.10.14\0" "3.12.3.complete\0", 0 },
    { TC "/node", "18.20.2\0" "20.12.2\0", 0 },
    { TC "/go", "1.22.2\0", -EIO }, /* a failing listing contributes nothing */
    { TC "/CodeQL", "2.17.0\0", 0 },
    { TC "/Ruby", "3.3.1\0", 0 },
    { TC "/bad:tool", "1.0\0", 0 },
    { NULL, NULL, 0 },
};

static void test_toolcache(void **state)
{
    struct fakefs fs = { tc_dirs, tc_lists, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t dropped;

    (void)state;
    s.toolcache = TC;
    s.arch = "x64";
    build(&s, &dropped);
    assert_string_equal(out, SYS
                        ":" TC "/Python/3.12.3/x64/bin"
                        ":" TC "/Python/3.10.14/x64/bin"
                        ":" TC "/Python/3.9.19/x64/bin"
                        ":" TC "/node/20.12.2/x64/bin"
                        ":" TC "/node/18.20.2/x64/bin");
    assert_int_equal(dropped, 0);

    s.arch = "arm64";
    build(&s, &dropped);
    assert_string_equal(out, SYS ":" TC "/Python/3.12.3/arm64/bin:" TC "/Ruby/3.3.1/arm64/bin");

    /* The root is normalised before use. */
    s.toolcache = "/opt//hostedtoolcache/";
    s.arch = "x64";
    build(&s, &dropped);
    assert_string_equal(out, SYS
                        ":" TC "/Python/3.12.3/x64/bin"
                        ":" TC "/Python/3.10.14/x64/bin"
                        ":" TC "/Python/3.9.19/x64/bin"
                        ":" TC "/node/20.12.2/x64/bin"
                        ":" TC "/node/18.20.2/x64/bin");
    /* A relative root is refused. */
    s.toolcache = "opt/hostedtoolcache";
    fs.list_calls = 0;
    build(&s, &dropped);
    assert_string_equal(out, SYS);
    assert_int_equal(fs.list_calls, 0);
}

static void test_toolcache_skipped(void **state)
{
    struct fakefs fs = { tc_dirs, tc_lists, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);

    (void)state;
    s.toolcache = TC;
    s.arch = NULL;
    build(&s, NULL);
    assert_string_equal(out, SYS);
    s.arch = "x/64";
    build(&s, NULL);
    assert_string_equal(out, SYS);
    s.arch = "x64";
    s.toolcache = NULL;
    build(&s, NULL);
    assert_string_equal(out, SYS);
    assert_int_equal(fs.list_calls, 0);
    /* No cache on this machine. */
    s.toolcache = "/nonexistent";
    build(&s, NULL);
    assert_string_equal(out, SYS);
}

/* More versions than looked at: the newest ones are kept, whatever the
 * listing order. */
static void test_toolcache_version_bound(void **state)
{
    static char names[200 * 8 + 1];
    static char dirbuf[200][64];
    static const char *dirs[201];
    struct listing lists[3] = { { TC, "t\0", 0 }, { TC "/t", names, 0 }, { NULL, NULL, 0 } };
    struct fakefs fs = { dirs, lists, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t i, off = 0;
    char expect[256];

    (void)state;
    for (i = 0; i < 200; i++) {
        size_t v = (i * 37) % 200; /* scrambled order */

        off += (size_t)sprintf(names + off, "1.%zu", v) + 1;
        snprintf(dirbuf[i], sizeof dirbuf[i], TC "/t/1.%zu/x64/bin", i);
        dirs[i] = dirbuf[i];
    }
    names[off] = '\0';
    dirs[200] = NULL;
    s.toolcache = TC;
    s.arch = "x64";
    build(&s, NULL);
    snprintf(expect, sizeof expect, SYS ":" TC "/t/1.199/x64/bin:" TC "/t/1.198/x64/bin:");
    assert_memory_equal(out, expect, strlen(expect));
    /* 64 versions: from 1.199 down to 1.136. */
    assert_non_null(strstr(out, "/1.136/x64/bin"));
    assert_null(strstr(out, "/1.135/x64/bin"));
    snprintf(expect, sizeof expect, TC "/t/1.136/x64/bin");
    assert_string_equal(out + strlen(out) - strlen(expect), expect);
}

/* The buffer bounds the result; room is kept for the system dirs. */
static void test_bounded_output(void **state)
{
    const char *dirs[] = { "/aaaa", "/bbbb", NULL };
    struct fakefs fs = { dirs, NULL, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    char small[sizeof SYS + 6];
    size_t dropped;

    (void)state;
    s.awf_path = "/aaaa:/bbbb";
    assert_int_equal(awf_pathenv_build(&s, small, sizeof SYS, &dropped), 0);
    assert_string_equal(small, SYS);
    assert_int_equal(dropped, 2);
    assert_int_equal(awf_pathenv_build(&s, small, sizeof small, &dropped), 0);
    assert_string_equal(small, "/aaaa:" SYS);
    assert_int_equal(dropped, 1);
    assert_int_equal(awf_pathenv_build(&s, small, sizeof SYS - 1, &dropped), -EINVAL);
}

/* Thousands of entries: capped at AWF_PATHENV_ENTRIES_MAX. */
static void test_entry_count_bound(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    size_t n = 3000, i, off = 0, dropped, colons = 0;
    char *gp = malloc(n * 8);
    const char *p;

    (void)state;
    assert_non_null(gp);
    for (i = 0; i < n; i++)
        off += (size_t)sprintf(gp + off, "/%zu\n", i);
    s.github_path = gp;
    s.github_path_len = off;
    build(&s, &dropped);
    for (p = out; *p; p++)
        colons += *p == ':';
    assert_int_equal(colons + 1, AWF_PATHENV_ENTRIES_MAX);
    assert_int_equal(dropped, n + 6 - AWF_PATHENV_ENTRIES_MAX);
    assert_true(strncmp(out, SYS ":/2999:/2998:", strlen(SYS) + 13) == 0);
    free(gp);
}

static void test_bad_args(void **state)
{
    struct fakefs fs = { 0 };
    struct awf_pathenv_spec s = spec_for(&fs);

    (void)state;
    s.exists = NULL;
    assert_int_equal(awf_pathenv_build(&s, out, sizeof out, NULL), -EINVAL);
    s = spec_for(&fs);
    s.list = NULL;
    s.toolcache = TC;
    s.arch = "x64";
    assert_int_equal(awf_pathenv_build(&s, out, sizeof out, NULL), -EINVAL);
    s.arch = NULL; /* no cache wanted: list not needed */
    assert_int_equal(awf_pathenv_build(&s, out, sizeof out, NULL), 0);
    assert_int_equal(awf_pathenv_build(&s, NULL, sizeof out, NULL), -EINVAL);
}

static void test_arch(void **state)
{
    (void)state;
#if defined(__x86_64__)
    assert_string_equal(awf_pathenv_toolcache_arch(), "x64");
#elif defined(__aarch64__)
    assert_string_equal(awf_pathenv_toolcache_arch(), "arm64");
#else
    assert_null(awf_pathenv_toolcache_arch());
#endif
}

/* Everything at once, in the documented order. */
static void test_full_order(void **state)
{
    const char *dirs[] = { "/home/u/bin", TC "/go/1.22.2/x64/bin", NULL };
    const struct listing lists[] = { { TC, "go\0", 0 }, { TC "/go", "1.22.2\0", 0 },
                                     { NULL, NULL, 0 } };
    struct fakefs fs = { dirs, lists, 0, 0 };
    struct awf_pathenv_spec s = spec_for(&fs);
    static const char gp[] = "/gh/one\n" TC "/go/1.22.2/x64/bin\n";

    (void)state;
    s.awf_path = "/home/u/bin:/sbin";
    s.github_path = gp;
    s.github_path_len = sizeof gp - 1;
    s.toolcache = TC;
    s.arch = "x64";
    build(&s, NULL);
    assert_string_equal(out, "/home/u/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                             "/sbin:/bin:" TC "/go/1.22.2/x64/bin:/gh/one");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_only),
        cmocka_unit_test(test_awf_path_filtered_and_first),
        cmocka_unit_test(test_awf_path_normalised_and_unsafe_dropped),
        cmocka_unit_test(test_github_path_last_line_first),
        cmocka_unit_test(test_github_path_nul_and_trailing_newline),
        cmocka_unit_test(test_github_path_huge_line),
        cmocka_unit_test(test_entry_length_limit),
        cmocka_unit_test(test_toolcache),
        cmocka_unit_test(test_toolcache_skipped),
        cmocka_unit_test(test_toolcache_version_bound),
        cmocka_unit_test(test_bounded_output),
        cmocka_unit_test(test_entry_count_bound),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_arch),
        cmocka_unit_test(test_full_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
