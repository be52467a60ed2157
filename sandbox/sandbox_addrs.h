/* sandbox_addrs.h: the fixed ports and names awf uses inside the sandbox's
 * network namespace, shared by the supervisor (which listens on them) and the
 * network step (which redirects to them). Constants only. */
#ifndef AWF_SANDBOX_ADDRS_H
#define AWF_SANDBOX_ADDRS_H

/* The sandbox's fixed addresses (inside its own network namespace). The
 * ports are below 1024, which the command (no CAP_NET_BIND_SERVICE) can
 * never bind: its own servers may take any port it can bind, 3128 and
 * 15001 included, and none is awf's. Not on a browser's list of refused
 * ports either. */
#define AWF_SANDBOX_PROXY_PORT 312       /* explicit proxy: HTTP(S)_PROXY */
#define AWF_SANDBOX_TRANSPARENT_PORT 151 /* nftables redirect target */
#define AWF_SANDBOX_DNS_PORT 153         /* DNS redirect target */
/* --secret-endpoint: the Nth (from 0) listens on 127.0.0.1:(this + N). */
#define AWF_SANDBOX_ENDPOINT_PORT 320
/* NO_PROXY inside: all of loopback is the sandbox's own. Clients that read
 * no CIDR (wget, python urllib) still skip the proxy for the usual names. */
#define AWF_SANDBOX_NO_PROXY "localhost,127.0.0.1,127.0.0.0/8,::1"

#endif
