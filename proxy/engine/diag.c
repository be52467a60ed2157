/* diag.c: the engine's diagnostics on stderr, filtered by the log level. */
#include <stdarg.h>
#include <stdio.h>

#include "engine.h"

void awf_proxy_diag(const awf_proxy *p, enum awf_log_level level, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level < p->cfg.log_level)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "awf-proxy: %s: %s\n", names[level], line);
}
