/* build_info.h: what `awf --version` and `awf-proxy --version` print. The
 * version comes from project() in CMakeLists.txt, the commit from git at
 * build time, the flavour from the build options (cmake/build_info.cmake). */
#ifndef AWF_BUILD_INFO_H
#define AWF_BUILD_INFO_H

#include <stdio.h>

extern const char awf_build_version[];
extern const char awf_build_commit[];
/* "static" or "dynamic", the nftables backend, the sanitizers if any. */
extern const char awf_build_flavour[];

/* "PROG VERSION (commit C; FLAVOUR)\n" on out. */
static inline void awf_build_print(FILE *out, const char *prog) {
  fprintf(out, "%s %s (commit %s; %s)\n", prog, awf_build_version, awf_build_commit,
          awf_build_flavour);
}

#endif
