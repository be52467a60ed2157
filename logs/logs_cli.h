/* logs_cli.h: `awf logs summary|stats|show`: reports from access logs, for
 * any user (no root, no sandbox). */
#ifndef AWF_LOGS_CLI_H
#define AWF_LOGS_CLI_H

/* argv[0] is "logs". Returns the exit status: 0; 1 when a line was malformed
 * and --strict was given; 2 for a bad flag or a file that cannot be read. */
int awf_logs_main(int argc, char **argv);

#endif
