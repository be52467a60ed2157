/* exitcodes.h: the exit statuses of awf, awf-proxy and awf logs, defined
 * once (docs/awf.md, docs/awf-proxy.md and the --help texts describe them). */
#ifndef AWF_COMMON_EXITCODES_H
#define AWF_COMMON_EXITCODES_H

/* awf: the command's own status, or one of these (the GNU timeout and env
 * conventions, so scripts can tell awf's failures from the command's). */
#define AWF_EXIT_TIMEOUT 124     /* --agent-timeout expired */
#define AWF_EXIT_FAILURE 125     /* awf itself failed */
#define AWF_EXIT_CANNOT_EXEC 126 /* the command exists but cannot be executed */
#define AWF_EXIT_NOT_FOUND 127   /* the command was not found */
#define AWF_EXIT_SIGNAL_BASE 128 /* 128+N: the command died of signal N */

/* awf-proxy and awf logs. */
#define AWF_EXIT_ERROR 1 /* awf-proxy could not run; awf logs: malformed input */
#define AWF_EXIT_USAGE 2 /* bad arguments */

#endif
