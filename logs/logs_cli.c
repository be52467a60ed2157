/* logs_cli.c: `awf logs`: read access logs in one pass, one line at a time
 * (bounded memory whatever their size), and print a summary, statistics or
 * the records themselves. A malformed line is reported with its number and
 * skipped; it never stops the run. */
#include "logs_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "linereader.h"
#include "logagg.h"
#include "logline.h"
#include "logreport.h"

/* Records are at most 64 KiB; a longer line is not a record. */
#define MAX_LINE (1024 * 1024)
/* Malformed lines named on stderr; past it only counted (a file of garbage
 * must not turn into as much stderr). */
#define MAX_REPORTED 1000
#define FOLLOW_POLL_MS 100

static const char usage[] =
    "Usage: awf logs summary [--format text|markdown|json] [--strict] FILE...\n"
    "       awf logs stats [--format text|json] [--strict] FILE...\n"
    "       awf logs show [--follow] [--denied] [--format pretty|json] [--strict] FILE\n"
    "Read awf access logs (JSONL, docs/access-log.md) in one pass; FILE - is stdin.\n"
    "\n"
    "  summary   per destination host: allowed and denied counts, ports, bytes sent and\n"
    "            received, the first denial's reason; denied hosts first, then by volume;\n"
    "            and the --allow-domains line that would admit the denied hosts\n"
    "  stats     totals, the top hosts, p50/p95/p99 of duration_ms, denials by reason\n"
    "  show      one aligned line per record (open records are left out)\n"
    "\n"
    "      --format FORMAT           output format (summary: text, markdown, json;\n"
    "                                stats: text, json; show: pretty, json)\n"
    "      --strict                  exit 1 when any line was malformed\n"
    "  -f, --follow                  show: keep reading as the file grows, like tail -f,\n"
    "                                across a rotation by rename\n"
    "      --denied                  show: only denials (and --audit would-denies)\n"
    "  -h, --help                    print this help and exit\n"
    "\n"
    "A malformed line (bad JSON, a missing or mistyped field, a cut last line) is\n"
    "reported on stderr with its line number and skipped. Exit status: 0; 1 when a line\n"
    "was malformed and --strict was given; 2 for a bad flag or a file that cannot be read.\n";

enum cmd { CMD_SUMMARY, CMD_STATS, CMD_SHOW };

struct opts {
  enum cmd cmd;
  const char *format;
  bool strict, follow, denied;
};

struct run {
  struct opts o;
  enum awf_report_format fmt;
  bool json_show, color;
  awf_logagg *agg;
  uint64_t malformed, reported;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("awf logs: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see awf logs --help)\n", stderr);
  return AWF_EXIT_USAGE;
}

static void malformed(struct run *r, const char *file, uint64_t lineno, const char *why) {
  r->malformed++;
  if (r->reported == MAX_REPORTED)
    fprintf(stderr, "awf logs: more malformed lines: only counted from here on\n");
  if (r->reported++ >= MAX_REPORTED)
    return;
  /* the file name is the caller's; the message may quote the line: escape both */
  struct awf_buf b;
  awf_buf_init(&b, 8192);
  if (awf_text_escape(&b, file, strlen(file)) == 0 &&
      awf_buf_printf(&b, ":%" PRIu64 ": ", lineno) == 0 &&
      awf_text_escape(&b, why, strlen(why)) == 0)
    fprintf(stderr, "awf logs: %.*s\n", (int)b.len, b.data);
  awf_buf_free(&b);
}

static bool wanted(const struct run *r, const struct awf_logline *l) {
  const char *e = l->ev.event;
  if (strcmp(e, "open") == 0)
    return false; /* the final record repeats its decision */
  if (r->o.denied)
    return strcmp(e, "run") != 0 && (l->ev.deny || l->ev.would_deny);
  return true;
}

/* One line of FILE: counted or shown, or reported. */
static int one_line(struct run *r, const char *file, uint64_t lineno, const char *line,
                    size_t len, unsigned flags) {
  char why[256];
  if (flags & AWF_LINE_TOO_LONG) {
    malformed(r, file, lineno, "longer than 1 MiB: not a record");
    return 0;
  }
  if (len == 0 && !(flags & AWF_LINE_UNTERMINATED))
    return 0; /* a blank line holds nothing */
  struct awf_logline l;
  if (awf_logline_parse(line, len, &l, why, sizeof(why)) < 0) {
    if (flags & AWF_LINE_UNTERMINATED) /* the usual cause: a writer cut short */
      snprintf(why + strlen(why), sizeof(why) - strlen(why), "; the last line, cut short");
    malformed(r, file, lineno, why);
    return 0;
  }
  int rc = 0;
  if (r->o.cmd != CMD_SHOW) {
    awf_logagg_add(r->agg, &l.ev);
  } else if (wanted(r, &l)) {
    if (r->json_show) {
      if (fwrite(line, 1, len, stdout) != len || putchar('\n') == EOF)
        rc = -EIO;
    } else {
      rc = awf_report_show(stdout, &l, r->color);
    }
  }
  awf_logline_free(&l);
  return rc;
}

/* Every line until the end of what fd holds now. 0 or -errno. */
static int drain(struct run *r, struct awf_linereader *lr, const char *file, bool final) {
  const char *line;
  size_t len;
  unsigned flags;
  int rc;
  while ((rc = awf_linereader_next(lr, final, &line, &len, &flags)) > 0) {
    int w = one_line(r, file, lr->lineno, line, len, flags);
    if (w < 0)
      return w;
  }
  return rc;
}

static int open_input(const char *file) {
  if (strcmp(file, "-") == 0)
    return STDIN_FILENO;
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    fprintf(stderr, "awf logs: %s: %s\n", file, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    fprintf(stderr, "awf logs: %s: is a directory\n", file);
    close(fd);
    return -1;
  }
  return fd;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* tail -f: after the end, wait for more; when the path names another file
 * (rotated by rename), finish the old one and go on with the new one from
 * its start; when the file shrinks (truncated), start it over. Runs until
 * a signal or an error. */
static int follow(struct run *r, struct awf_linereader *lr, int fd, const char *file) {
  for (;;) {
    int rc = drain(r, lr, file, false);
    if (rc < 0)
      return rc;
    if (fflush(stdout) != 0)
      return -errno;
    sleep_ms(FOLLOW_POLL_MS);
    struct stat now, cur;
    if (fstat(fd, &cur) < 0)
      return -errno;
    if (stat(file, &now) == 0 && (now.st_ino != cur.st_ino || now.st_dev != cur.st_dev)) {
      int nfd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
      if (nfd < 0)
        continue;                    /* gone again: keep the old one and look later */
      rc = drain(r, lr, file, true); /* what the writer added before it moved on */
      close(fd);
      fd = nfd;
      awf_linereader_reset(lr, fd);
      if (rc < 0)
        return rc;
      continue;
    }
    if (S_ISREG(cur.st_mode) && (uint64_t)cur.st_size < lr->offset) {
      if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
      awf_linereader_reset(lr, fd);
    }
  }
}

static int read_file(struct run *r, const char *file) {
  int fd = open_input(file);
  if (fd < 0)
    return -1;
  struct awf_linereader lr;
  int rc = awf_linereader_init(&lr, fd, MAX_LINE);
  if (rc == 0)
    rc = r->o.follow && fd != STDIN_FILENO ? follow(r, &lr, fd, file)
                                           : drain(r, &lr, file, true);
  awf_linereader_free(&lr);
  if (fd != STDIN_FILENO)
    close(fd);
  if (rc < 0) {
    fprintf(stderr, "awf logs: %s: %s\n", file, strerror(-rc));
    return -1;
  }
  return 0;
}

/* -1 to go on, or an exit status. */
static int parse_format(struct run *r) {
  const char *f = r->o.format;
  if (r->o.cmd == CMD_SHOW) {
    if (!f || strcmp(f, "pretty") == 0)
      return -1;
    if (strcmp(f, "json") == 0) {
      r->json_show = true;
      return -1;
    }
    return usage_error("show --format '%s': expected pretty or json", f);
  }
  if (!f || strcmp(f, "text") == 0)
    r->fmt = AWF_REPORT_TEXT;
  else if (strcmp(f, "json") == 0)
    r->fmt = AWF_REPORT_JSON;
  else if (strcmp(f, "markdown") == 0 && r->o.cmd == CMD_SUMMARY)
    r->fmt = AWF_REPORT_MARKDOWN;
  else
    return r->o.cmd == CMD_SUMMARY
               ? usage_error("summary --format '%s': expected text, markdown or json", f)
               : usage_error("stats --format '%s': expected text or json", f);
  return -1;
}

static bool want_color(void) {
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  if (nc && *nc) /* no-color.org */
    return false;
  if (term && strcmp(term, "dumb") == 0)
    return false;
  return isatty(STDOUT_FILENO);
}

/* -1 to go on, or an exit status (0 after --help). */
static int parse_args(int argc, char **argv, struct run *r) {
  static const struct option long_opts[] = {
      {"format", required_argument, 0, 'F'}, {"strict", no_argument, 0, 's'},
      {"follow", no_argument, 0, 'f'},       {"denied", no_argument, 0, 'D'},
      {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
  };
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":fh", long_opts, NULL)) != -1) {
    switch (c) {
    case 'F': r->o.format = optarg; break;
    case 's': r->o.strict = true; break;
    case 'f': r->o.follow = true; break;
    case 'D': r->o.denied = true; break;
    case 'h': fputs(usage, stdout); return 0;
    case ':': return usage_error("%s needs a value", argv[optind - 1]);
    default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if ((r->o.follow || r->o.denied) && r->o.cmd != CMD_SHOW)
    return usage_error("%s is a flag of show", r->o.follow ? "--follow" : "--denied");
  if (optind >= argc)
    return usage_error("no FILE given");
  if (r->o.cmd == CMD_SHOW && argc - optind > 1)
    return usage_error("show reads one FILE");
  if (r->o.follow && strcmp(argv[optind], "-") == 0)
    return usage_error("--follow needs a file, not stdin");
  return parse_format(r);
}

int awf_logs_main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? AWF_EXIT_USAGE : 0;
  }
  struct run r;
  memset(&r, 0, sizeof(r));
  if (strcmp(argv[1], "summary") == 0)
    r.o.cmd = CMD_SUMMARY;
  else if (strcmp(argv[1], "stats") == 0)
    r.o.cmd = CMD_STATS;
  else if (strcmp(argv[1], "show") == 0)
    r.o.cmd = CMD_SHOW;
  else
    return usage_error("unknown command '%s': summary, stats or show", argv[1]);
  int status = parse_args(argc - 1, argv + 1, &r);
  if (status >= 0)
    return status;
  status = 0;
  r.color = r.o.cmd == CMD_SHOW && !r.json_show && want_color();
  if (r.o.cmd != CMD_SHOW && !(r.agg = awf_logagg_new(0))) {
    fprintf(stderr, "awf logs: out of memory\n");
    return AWF_EXIT_USAGE;
  }
  for (int i = optind + 1; i < argc; i++)
    if (read_file(&r, argv[i]) < 0)
      status = AWF_EXIT_USAGE;
  if (r.agg) {
    awf_logagg_finish(r.agg);
    struct awf_report_info info = {.malformed = r.malformed, .title = "awf"};
    int rc = r.o.cmd == CMD_SUMMARY ? awf_report_summary(stdout, r.agg, r.fmt, &info)
                                    : awf_report_stats(stdout, r.agg, r.fmt, &info);
    if (rc < 0) {
      fprintf(stderr, "awf logs: %s\n", strerror(-rc));
      status = AWF_EXIT_USAGE;
    }
    awf_logagg_free(r.agg);
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, "awf logs: writing the output: %s\n", strerror(errno));
    status = AWF_EXIT_USAGE;
  }
  if (r.malformed)
    fprintf(stderr, "awf logs: %" PRIu64 " malformed line%s\n", r.malformed,
            r.malformed == 1 ? "" : "s");
  if (status == 0 && r.malformed && r.o.strict)
    status = AWF_EXIT_ERROR;
  return status;
}
