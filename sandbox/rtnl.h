/* rtnl.h: the few rtnetlink requests awf makes in the sandbox's network
 * namespace (which is the namespace of the calling thread when the socket is
 * opened). Each call waits for the kernel's acknowledgement and returns 0 or
 * a negative errno. */
#ifndef AWF_RTNL_H
#define AWF_RTNL_H

#include <netinet/in.h>

typedef struct awf_rtnl awf_rtnl;

int awf_rtnl_open(awf_rtnl **out);
void awf_rtnl_close(awf_rtnl *r);

/* Set the interface up. */
int awf_rtnl_link_up(awf_rtnl *r, int ifindex);

/* Add addr/prefix to the interface; nodad for IPv6 (usable at once). */
int awf_rtnl_addr_add(awf_rtnl *r, int family, const void *addr, unsigned prefix, int ifindex);

/* A default route out of the interface with this preferred source. */
int awf_rtnl_default_route(awf_rtnl *r, int family, const void *src, int ifindex);

#endif
