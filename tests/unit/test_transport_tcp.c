/* test_transport_tcp.c: the TCP transport (transport_tcp.c) over a real
 * loopback connection: reads land in the shared buffer, writes the peer does
 * not take pile up to the high-water mark (FULL) and drain (DRAINED), the
 * end of the stream reaches the owner, a shutdown is reported, and the handle
 * is closed once with on_closed after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include <cmocka.h>

#include "transport_tcp.h"

struct pair {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_tcp_t *client; /* malloc()ed: the transport frees it (heap) */
  uv_tcp_t server;  /* the accepted side, owned here */
  uv_connect_t creq;
  bool connected, accepted;
  struct awf_tcp_transport tt;
  char rbuf[4096];
  /* what the owner heard */
  int full, drained, write_errors, shutdowns, closed;
  ssize_t last_read;
  size_t bytes_read;
  /* the server side's reading */
  size_t server_read;
  char sbuf[64 * 1024];
};

static void on_accept(uv_stream_t *l, int status) {
  struct pair *p = l->data;
  assert_int_equal(status, 0);
  uv_tcp_init(&p->loop, &p->server);
  p->server.data = p;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&p->server), 0);
  p->accepted = true;
}

static void on_connect(uv_connect_t *req, int status) {
  struct pair *p = req->data;
  assert_int_equal(status, 0);
  p->connected = true;
}

static void o_read(void *owner, struct awf_transport *t, ssize_t nread, const uv_buf_t *buf) {
  struct pair *p = owner;
  assert_ptr_equal(t, &p->tt.base);
  p->last_read = nread;
  if (nread > 0) {
    assert_ptr_equal(buf->base, p->rbuf); /* the shared buffer, no copy */
    p->bytes_read += (size_t)nread;
  }
}

static void o_flow(void *owner, struct awf_transport *t, enum awf_transport_flow f) {
  struct pair *p = owner;
  (void)t;
  if (f == AWF_TRANSPORT_FULL)
    p->full++;
  else
    p->drained++;
}

static void o_write_error(void *owner, struct awf_transport *t, int status) {
  (void)t;
  (void)status;
  ((struct pair *)owner)->write_errors++;
}

static void o_shutdown(void *owner, struct awf_transport *t, int status) {
  (void)t;
  assert_int_equal(status, 0);
  ((struct pair *)owner)->shutdowns++;
}

static void o_closed(void *owner, struct awf_transport *t) {
  (void)t;
  ((struct pair *)owner)->closed++;
}

static const struct awf_transport_cbs cbs = {o_read, o_flow, o_write_error, o_shutdown,
                                             o_closed};

static void run_until(struct pair *p, const bool *flag) {
  for (int i = 0; i < 100000 && !*flag; i++)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_true(*flag);
}

static int setup(void **state) {
  struct pair *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  assert_int_equal(uv_loop_init(&p->loop), 0);
  uv_tcp_init(&p->loop, &p->listener);
  p->listener.data = p;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&p->listener, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&p->listener, 1, on_accept), 0);
  int len = sizeof(a);
  uv_tcp_getsockname(&p->listener, (struct sockaddr *)&a, &len);
  p->client = malloc(sizeof(*p->client));
  assert_non_null(p->client);
  uv_tcp_init(&p->loop, p->client);
  p->creq.data = p;
  assert_int_equal(uv_tcp_connect(&p->creq, p->client, (struct sockaddr *)&a, on_connect), 0);
  run_until(p, &p->connected);
  run_until(p, &p->accepted);
  awf_tcp_transport_wrap(&p->tt, p->client, true, &cbs, p, p->rbuf, sizeof(p->rbuf));
  *state = p;
  return 0;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static int teardown(void **state) {
  struct pair *p = *state;
  if (!p->tt.base.closing)
    awf_transport_close(&p->tt.base);
  uv_close((uv_handle_t *)&p->server, on_handle_closed);
  uv_close((uv_handle_t *)&p->listener, on_handle_closed);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  assert_int_equal(p->closed, 1);
  assert_int_equal(uv_loop_close(&p->loop), 0);
  free(p);
  return 0;
}

static void test_reads_and_eof(void **state) {
  struct pair *p = *state;
  awf_transport_want_read(&p->tt.base, true);
  assert_true(p->tt.base.reading);
  uv_buf_t b = uv_buf_init("hello", 5);
  assert_int_equal(uv_try_write((uv_stream_t *)&p->server, &b, 1), 5);
  while (p->bytes_read < 5)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_int_equal(p->bytes_read, 5);
  /* Held: no read, whatever the owner wants. */
  awf_transport_hold(&p->tt.base, true);
  assert_false(p->tt.base.reading);
  awf_transport_hold(&p->tt.base, false);
  assert_true(p->tt.base.reading);
  uv_shutdown_t sreq;
  assert_int_equal(uv_shutdown(&sreq, (uv_stream_t *)&p->server, NULL), 0);
  while (!p->tt.base.eof)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_int_equal(p->last_read, UV_EOF);
  assert_false(p->tt.base.reading);
  awf_transport_want_read(&p->tt.base, true); /* over for good */
  assert_false(p->tt.base.reading);
}

static void on_server_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  struct pair *p = h->data;
  (void)s;
  *buf = uv_buf_init(p->sbuf, sizeof(p->sbuf));
}

static void on_server_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct pair *p = st->data;
  (void)buf;
  if (nread > 0)
    p->server_read += (size_t)nread;
}

static void test_backpressure_full_then_drained(void **state) {
  struct pair *p = *state;
  static char block[64 * 1024];
  size_t sent = 0;
  /* The peer reads nothing: the kernel's buffers fill, then the queue. */
  while (!p->full && sent < (size_t)256 * 1024 * 1024) {
    uv_buf_t b = uv_buf_init(block, sizeof(block));
    assert_int_equal(awf_transport_write(&p->tt.base, &b, 1), 0);
    sent += sizeof(block);
  }
  assert_int_equal(p->full, 1);
  assert_true(p->tt.base.full);
  assert_true(awf_transport_queued(&p->tt.base) > AWF_TRANSPORT_HIGH_WATER);
  assert_int_equal(p->drained, 0);
  /* The peer reads: the queue drains under half the mark, once reported. */
  uv_read_start((uv_stream_t *)&p->server, on_server_alloc, on_server_read);
  while (p->drained == 0)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_false(p->tt.base.full);
  assert_true(awf_transport_queued(&p->tt.base) < AWF_TRANSPORT_HIGH_WATER / 2);
  while (p->server_read < sent)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_int_equal(p->server_read, sent);
  assert_int_equal(p->write_errors, 0);
}

static void test_shutdown_and_fileno(void **state) {
  struct pair *p = *state;
  assert_true(awf_transport_fileno(&p->tt.base) >= 0);
  assert_int_equal(awf_transport_shutdown(&p->tt.base), 0);
  while (p->shutdowns == 0)
    uv_run(&p->loop, UV_RUN_ONCE);
  assert_int_equal(p->shutdowns, 1);
}

static void test_unwrap_gives_the_handle_back(void **state) {
  struct pair *p = *state;
  awf_transport_want_read(&p->tt.base, true);
  uv_tcp_t *tcp = awf_tcp_transport_unwrap(&p->tt);
  assert_ptr_equal(tcp, p->client);
  assert_null(tcp->data);
  assert_false(uv_is_active((uv_handle_t *)tcp));
  /* Wrapped again (as the pool's next taker does), it closes as before. */
  awf_tcp_transport_wrap(&p->tt, tcp, true, &cbs, p, p->rbuf, sizeof(p->rbuf));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reads_and_eof, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure_full_then_drained, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_and_fileno, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unwrap_gives_the_handle_back, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
