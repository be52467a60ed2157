/* upstream_pool.h: idle keep-alive connections to origins, kept for the next
 * request to the same host and port from any client connection. A client
 * that opens a connection per request then costs one TCP connection, not
 * two (Squid and nginx keep such a pool too).
 *
 * A parked connection is read: any byte or the server's FIN closes it, so a
 * connection taken from the pool was open a moment ago. It is still possible
 * that the server closes it just as a request goes out; the HTTP side then
 * retries a bodyless request once on a fresh connection. */
#ifndef AWF_UPSTREAM_POOL_H
#define AWF_UPSTREAM_POOL_H

#include <stdint.h>
#include <uv.h>

typedef struct awf_upool awf_upool;

/* Returns NULL when out of memory (the proxy then simply dials every time). */
awf_upool *awf_upool_new(uv_loop_t *loop);

/* Park an idle upstream: connected, its response complete, nothing queued.
 * The pool owns tcp from here (a malloc()ed handle it closes and frees);
 * host is the name it was dialled for, addr the "ip:port" it reached. */
void awf_upool_put(awf_upool *p, uv_tcp_t *tcp, const char *host, uint16_t port,
                   const char *addr);

/* The most recently parked connection for host:port, or NULL. The caller
 * owns it again (reading stopped, data unset); addr gets its "ip:port". */
uv_tcp_t *awf_upool_take(awf_upool *p, const char *host, uint16_t port, char *addr,
                         size_t addr_cap);

/* Close every parked connection and the pool; `done` runs once its handles
 * are closed (the pool is freed then). */
void awf_upool_close(awf_upool *p, void (*done)(void *arg), void *arg);

#endif
