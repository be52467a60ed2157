/* http_proxy.h: the HTTP mode (http_proxy.c): explicit-proxy requests, and
 * plain HTTP redirected to a --http-ports port. A CONNECT admitted and
 * dialled is handed to the tunnel mode (tunnel.h). Not a public header. */
#ifndef AWF_HTTP_PROXY_H
#define AWF_HTTP_PROXY_H

struct conn;

/* Take a connection the listener accepted: read requests from it. Returns 0,
 * or a negative errno (the caller closes c). */
int http_conn_start(struct conn *c);

/* Take a connection a TLS tunnel interception opened (tunnel.h): TLS is on
 * both transports; read requests inside. Returns 0 or a negative errno. */
struct tunnel_handoff;
int http_conn_start_intercepted(struct conn *c, const struct tunnel_handoff *h);

/* Take a connection from a --secret-endpoint listener: plain HTTP from the
 * client, requests sent to ep's host over verified TLS (proxy.h). Returns 0
 * or a negative errno. */
struct awf_secret_endpoint;
int http_conn_start_endpoint(struct conn *c, const struct awf_secret_endpoint *ep);

#endif
