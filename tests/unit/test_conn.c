/* test_conn.c: the connection core (conn.c) and the transport seam
 * (transport.c), driven through a fake transport held in memory and a test
 * mode that records what the core asks of it. Timers run on a real loop;
 * nothing here asserts on a wall-clock duration, only on the order of events
 * and on the loop's own clock as the core sees it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"

/* ---- a fake transport ----------------------------------------------------- */

struct fake {
  struct awf_transport base; /* first */
  bool reading;
  int read_starts, read_stops;
  bool write_now; /* take every write at once (else queue it) */
  int write_fail; /* the next write fails with this (0: none) */
  size_t queued;  /* bytes waiting */
  size_t written; /* bytes written, queued or not */
  int shutdowns;
  int shutdown_fail;
  int closes;
  bool close_pending;
};

static struct fake *fk(const struct awf_transport *t) { return (struct fake *)t; }

static int f_read_start(struct awf_transport *t) {
  fk(t)->reading = true;
  fk(t)->read_starts++;
  return 0;
}

static void f_read_stop(struct awf_transport *t) {
  fk(t)->reading = false;
  fk(t)->read_stops++;
}

static int f_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n) {
  struct fake *f = fk(t);
  if (f->write_fail) {
    int rc = f->write_fail;
    f->write_fail = 0;
    return rc;
  }
  size_t total = 0;
  for (unsigned i = 0; i < n; i++)
    total += bufs[i].len;
  f->written += total;
  if (f->write_now || total == 0)
    return 0;
  f->queued += total;
  return 1;
}

static size_t f_queued(const struct awf_transport *t) { return fk(t)->queued; }

static int f_shutdown(struct awf_transport *t) {
  fk(t)->shutdowns++;
  return fk(t)->shutdown_fail;
}

static void f_close(struct awf_transport *t) {
  fk(t)->closes++;
  fk(t)->close_pending = true;
}

static int f_fileno(const struct awf_transport *t) {
  (void)t;
  return -1;
}

static const struct awf_transport_ops fake_ops = {
    .name = "fake",
    .read_start = f_read_start,
    .read_stop = f_read_stop,
    .write = f_write,
    .queued = f_queued,
    .shutdown = f_shutdown,
    .close = f_close,
    .fileno = f_fileno,
};

/* The queue's first n bytes reached the peer: a queued write finished. */
static void fake_drain(struct fake *f, size_t n) {
  f->queued -= n;
  awf_transport_write_done(&f->base, 0);
}

static void fake_finish_close(struct fake *f) {
  if (!f->close_pending)
    return;
  f->close_pending = false;
  awf_transport_closed(&f->base);
}

static void fake_read(struct fake *f, ssize_t nread) {
  static char data[64];
  uv_buf_t b = uv_buf_init(data, sizeof(data));
  awf_transport_read_done(&f->base, nread, &b);
}

static int write_bytes(struct awf_transport *t, size_t len) {
  static char block[64 * 1024];
  int rc = 0;
  while (len > 0 && rc == 0) {
    size_t n = len < sizeof(block) ? len : sizeof(block);
    uv_buf_t b = uv_buf_init(block, (unsigned)n);
    rc = awf_transport_write(t, &b, 1);
    len -= n;
  }
  return rc;
}

/* ---- a test mode that writes down what the core asks ------------------------ */

#define EVENTS_MAX 64

static struct {
  char ev[EVENTS_MAX][32];
  int n;
  enum conn_timer timer_kind;
  uint64_t timer_now, timer_last_active;
  bool close_in_read; /* on_client_read closes the connection */
  int released;       /* awf_proxy.conn_released calls */
} rec;

static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  assert_true(rec.n < EVENTS_MAX);
  vsnprintf(rec.ev[rec.n++], sizeof(rec.ev[0]), fmt, ap);
  va_end(ap);
}

static int find(const char *ev) {
  for (int i = 0; i < rec.n; i++)
    if (!strcmp(rec.ev[i], ev))
      return i;
  return -1;
}

static int count(const char *ev) {
  int k = 0;
  for (int i = 0; i < rec.n; i++)
    k += !strcmp(rec.ev[i], ev);
  return k;
}

static void m_client_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  note("%s.client_read %zd", c->ops->name, nread);
  if (rec.close_in_read) {
    conn_close(c);
    conn_close(c); /* twice, from inside a callback */
    note("after_close_in_read");
  }
}

static void m_up_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  note("%s.up_read %zd", c->ops->name, nread);
}

static void m_drained(struct conn *c, struct awf_transport *t) {
  note("%s.drained %s", c->ops->name, t == c->client ? "client" : "up");
}

static void m_shutdown(struct conn *c, struct awf_transport *t, int status) {
  note("%s.shutdown %s %d", c->ops->name, t == c->client ? "client" : "up", status);
}

static void m_timer(struct conn *c, enum conn_timer kind) {
  note("%s.timer %s", c->ops->name, conn_timer_name(kind));
  rec.timer_kind = kind;
  rec.timer_now = uv_now(c->proxy->loop);
  rec.timer_last_active = c->last_active;
}

static void m_close(struct conn *c) {
  note("%s.on_close %s", c->ops->name, conn_state_name(c->state));
}

static void m_free(struct conn *c) {
  note("%s.free", c->ops->name);
  free(c->mode);
  c->mode = NULL;
}

static const struct conn_mode_ops mode_a = {
    .name = "a",
    .on_client_read = m_client_read,
    .on_up_read = m_up_read,
    .on_drained = m_drained,
    .on_timer = m_timer,
    .on_close = m_close,
    .free = m_free,
};
static const struct conn_mode_ops mode_b = {
    .name = "b",
    .on_client_read = m_client_read,
    .on_up_read = m_up_read,
    .on_drained = m_drained,
    .on_timer = m_timer,
    .on_close = m_close,
    .free = m_free,
};

/* ---- fixture ------------------------------------------------------------------ */

struct fx {
  uv_loop_t loop;
  awf_proxy *p;
  struct conn *c;
  struct fake client, up;
};

static void on_released(awf_proxy *p) {
  (void)p;
  rec.released++;
}

static int setup(void **state) {
  memset(&rec, 0, sizeof(rec));
  struct fx *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  assert_int_equal(uv_loop_init(&x->loop), 0);
  x->p = calloc(1, sizeof(*x->p));
  assert_non_null(x->p);
  x->p->loop = &x->loop;
  x->p->cfg.log_level = AWF_LOG_ERROR;
  x->p->cfg.header_timeout_ms = 20;
  x->p->cfg.idle_timeout_ms = 20;
  x->p->cfg.read_timeout_ms = 20;
  x->p->cfg.tunnel_idle_timeout_ms = 20;
  awf_list_init(&x->p->conns);
  x->p->conn_released = on_released;
  x->c = calloc(1, sizeof(*x->c));
  assert_non_null(x->c);
  awf_transport_init(&x->client.base, &fake_ops, &conn_transport_cbs, x->c);
  conn_open(x->c, x->p, &x->client.base);
  *state = x;
  return 0;
}

/* Let every pending close finish: the loop's (the timer) and the fakes'. */
static void finish_closes(struct fx *x) {
  fake_finish_close(&x->client);
  fake_finish_close(&x->up);
  uv_run(&x->loop, UV_RUN_NOWAIT);
}

static int teardown(void **state) {
  struct fx *x = *state;
  if (x->p->nconns > 0) {
    conn_close(x->c);
    finish_closes(x);
  }
  assert_int_equal(x->p->nconns, 0);
  assert_int_equal(uv_loop_close(&x->loop), 0);
  free(x->p);
  free(x);
  return 0;
}

static void give_mode(struct fx *x, const struct conn_mode_ops *ops, enum conn_state s) {
  conn_set_mode(x->c, ops, malloc(16), s);
}

static void attach_up(struct fx *x) {
  awf_transport_init(&x->up.base, &fake_ops, &conn_transport_cbs, x->c);
  conn_attach_up(x->c, &x->up.base);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_names(void **state) {
  (void)state;
  const char *seen[16];
  int n = 0;
  for (int s = CONN_ACCEPTED; s <= CONN_CLOSING; s++) {
    const char *name = conn_state_name((enum conn_state)s);
    assert_string_not_equal(name, "?");
    for (int i = 0; i < n; i++)
      assert_string_not_equal(name, seen[i]);
    seen[n++] = name;
  }
  assert_string_equal(conn_state_name(CONN_TUNNEL_HELLO), "tunnel_hello");
  assert_string_equal(conn_state_name((enum conn_state)99), "?");
  n = 0;
  for (int k = T_NONE; k <= T_LINGER; k++) {
    const char *name = conn_timer_name((enum conn_timer)k);
    assert_string_not_equal(name, "?");
    for (int i = 0; i < n; i++)
      assert_string_not_equal(name, seen[i]);
    seen[n++] = name;
  }
}

static void test_states_and_mode_switch(void **state) {
  struct fx *x = *state;
  assert_int_equal(x->c->state, CONN_ACCEPTED);
  assert_null(x->c->ops);
  assert_int_equal(x->p->nconns, 1);
  give_mode(x, &mode_a, CONN_HTTP);
  assert_int_equal(x->c->state, CONN_HTTP);
  assert_int_equal(rec.n, 0);
  /* A CONNECT handed over: the old mode's state is freed, once, first. */
  give_mode(x, &mode_b, CONN_TUNNEL_HELLO);
  assert_int_equal(x->c->state, CONN_TUNNEL_HELLO);
  assert_ptr_equal(x->c->ops, &mode_b);
  assert_int_equal(count("a.free"), 1);
  conn_set_state(x->c, CONN_TUNNEL);
  assert_int_equal(x->c->state, CONN_TUNNEL);
  fake_read(&x->client, 5);
  assert_int_equal(find("b.client_read 5"), 1);
  assert_int_equal(count("a.client_read 5"), 0);
}

static void test_read_routing(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  attach_up(x);
  conn_want_read(x->c, x->c->client, true);
  conn_want_read(x->c, x->c->up, true);
  assert_true(x->client.reading);
  assert_true(x->up.reading);
  fake_read(&x->client, 0); /* nothing: not passed on */
  fake_read(&x->client, 7);
  fake_read(&x->up, 9);
  fake_read(&x->up, UV_EOF);
  assert_int_equal(rec.n, 3);
  assert_string_equal(rec.ev[0], "a.client_read 7");
  assert_string_equal(rec.ev[1], "a.up_read 9");
  assert_string_equal(rec.ev[2], "a.up_read -4095");
  /* The end of a side stops its reading for good. */
  assert_true(x->up.base.eof);
  conn_want_read(x->c, x->c->up, true);
  assert_false(x->up.base.reading);
  assert_int_equal(x->up.read_starts, 1);
}

static void on_guard(uv_timer_t *t) {
  (void)t;
  note("guard");
}

/* Run the loop until the event is noted. A guard far beyond every deadline
 * here turns a timer that never fires into a failure instead of a hang. */
static void run_until_note(struct fx *x, const char *ev) {
  uv_timer_t guard;
  uv_timer_init(&x->loop, &guard);
  uv_timer_start(&guard, on_guard, 60 * 1000, 0);
  while (find(ev) < 0 && find("guard") < 0)
    uv_run(&x->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&x->loop, UV_RUN_NOWAIT);
  assert_true(find(ev) >= 0);
}

static void test_timer_reaches_mode(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  conn_set_timer(x->c, T_HEADER);
  run_until_note(x, "a.timer header");
  assert_int_equal(rec.timer_kind, T_HEADER);
  assert_int_equal(x->c->state, CONN_HTTP); /* the mode decides; the core did not close */
  /* T_NONE stops the timer: nothing more fires. */
  conn_set_timer(x->c, T_IDLE);
  conn_set_timer(x->c, T_NONE);
  assert_false(uv_is_active((uv_handle_t *)&x->c->timer));
}

static void test_timer_without_mode_closes(void **state) {
  struct fx *x = *state;
  conn_set_timer(x->c, T_HELLO);
  for (int i = 0; i < 1000 && x->c->state != CONN_CLOSING; i++)
    uv_run(&x->loop, UV_RUN_ONCE);
  assert_int_equal(x->c->state, CONN_CLOSING);
  assert_int_equal(x->client.closes, 1);
  finish_closes(x);
  assert_int_equal(x->p->nconns, 0);
}

/* Activity at half the deadline, from another timer of the same loop. */
struct toucher {
  uv_timer_t t;
  struct conn *c;
  bool fired;
};

static void on_touch(uv_timer_t *t) {
  struct toucher *k = t->data;
  conn_touch(k->c);
  k->fired = true;
  note("touch");
}

static void expire_with_touch(struct fx *x, enum conn_timer kind) {
  give_mode(x, &mode_a, CONN_TUNNEL);
  struct toucher k = {.c = x->c};
  uv_timer_init(&x->loop, &k.t);
  k.t.data = &k;
  conn_set_timer(x->c, kind);
  uv_timer_start(&k.t, on_touch, 10, 0); /* before the 20 ms deadline */
  char ev[32];
  snprintf(ev, sizeof(ev), "a.timer %s", conn_timer_name(kind));
  run_until_note(x, ev);
  assert_true(k.fired);
  assert_true(find("touch") < find(ev));
  uv_close((uv_handle_t *)&k.t, NULL);
  uv_run(&x->loop, UV_RUN_NOWAIT);
}

static void test_sliding_deadline_moves_with_activity(void **state) {
  struct fx *x = *state;
  expire_with_touch(x, T_TUNNEL);
  /* The deadline counted from the last activity, not from when it was set. */
  assert_true(rec.timer_now >= rec.timer_last_active + x->p->cfg.tunnel_idle_timeout_ms);
}

static void test_fixed_deadline_ignores_activity(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  conn_set_timer(x->c, T_HEADER);
  /* Activity far past the deadline (as if bytes kept trickling in): a head
   * deadline does not move for it (slowloris), it fires all the same. A
   * sliding one would sleep again for the better part of an hour. */
  x->c->last_active = uv_now(&x->loop) + 3600 * 1000;
  run_until_note(x, "a.timer header");
  assert_true(rec.timer_now < rec.timer_last_active);
}

static void test_backpressure(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_TUNNEL);
  attach_up(x);
  conn_want_read(x->c, x->c->client, true);
  conn_want_read(x->c, x->c->up, true);
  /* Up to the mark the upstream keeps being read. */
  assert_int_equal(write_bytes(x->c->client, AWF_TRANSPORT_HIGH_WATER), 0);
  assert_false(x->client.base.full);
  assert_true(x->up.reading);
  /* Past it, the side feeding the client stops; the client itself is still read. */
  assert_int_equal(write_bytes(x->c->client, 1), 0);
  assert_true(x->client.base.full);
  assert_false(x->up.reading);
  assert_true(x->up.base.held);
  assert_true(x->client.reading);
  /* The mode still wants it: its wish does not override the hold. */
  conn_want_read(x->c, x->c->up, true);
  assert_false(x->up.reading);
  /* A write finishing with the queue above half the mark: still held. */
  fake_drain(&x->client, 1);
  assert_false(x->up.reading);
  assert_int_equal(count("a.drained client"), 0);
  /* Under half: resumed, and the mode hears of it. */
  fake_drain(&x->client, AWF_TRANSPORT_HIGH_WATER / 2 + 1);
  assert_false(x->client.base.full);
  assert_true(x->up.reading);
  assert_int_equal(count("a.drained client"), 1);
  /* The other way round. */
  assert_int_equal(write_bytes(x->c->up, AWF_TRANSPORT_HIGH_WATER + 1), 0);
  assert_false(x->client.reading);
  assert_true(x->up.reading);
  /* A full upstream dropped holds the client no longer. */
  conn_drop_upstream(x->c);
  assert_null(x->c->up);
  assert_int_equal(x->up.closes, 1);
  assert_true(x->client.reading);
}

static void test_backpressure_on_new_upstream(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  assert_int_equal(write_bytes(x->c->client, AWF_TRANSPORT_HIGH_WATER + 1), 0);
  /* An upstream attached while the client's queue is full starts held. */
  attach_up(x);
  conn_want_read(x->c, x->c->up, true);
  assert_false(x->up.reading);
  fake_drain(&x->client, AWF_TRANSPORT_HIGH_WATER + 1);
  assert_true(x->up.reading);
}

static void test_write_now_never_full(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  attach_up(x);
  conn_want_read(x->c, x->c->up, true);
  x->client.write_now = true;
  assert_int_equal(write_bytes(x->c->client, 4 * AWF_TRANSPORT_HIGH_WATER), 0);
  assert_false(x->client.base.full);
  assert_true(x->up.reading);
  x->client.write_fail = UV_EPIPE;
  assert_int_equal(write_bytes(x->c->client, 1), UV_EPIPE);
}

static void test_close_order(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  attach_up(x);
  conn_close(x->c);
  conn_close(x->c);
  assert_int_equal(x->c->state, CONN_CLOSING);
  /* The mode logs first, while it still sees the connection whole... */
  assert_int_equal(find("a.on_close closing"), 0);
  assert_int_equal(count("a.on_close closing"), 1);
  /* ...then every handle closes, once; the mode's memory stays meanwhile. */
  assert_int_equal(x->client.closes, 1);
  assert_int_equal(x->up.closes, 1);
  assert_null(x->c->up);
  assert_int_equal(count("a.free"), 0);
  fake_read(&x->client, 3); /* a late read: nobody acts on it */
  assert_int_equal(count("a.client_read 3"), 0);
  fake_finish_close(&x->client);
  fake_finish_close(&x->up);
  assert_int_equal(count("a.free"), 0); /* the timer is still closing */
  assert_int_equal(x->p->nconns, 1);
  uv_run(&x->loop, UV_RUN_NOWAIT);
  assert_int_equal(count("a.free"), 1);
  assert_true(find("a.on_close closing") < find("a.free"));
  assert_int_equal(x->p->nconns, 0);
  assert_int_equal(rec.released, 1);
}

static void test_close_inside_read(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  rec.close_in_read = true;
  fake_read(&x->client, 1);
  /* The callback ran to its end; the close happened once, inside it. */
  assert_true(find("a.on_close closing") < find("after_close_in_read"));
  assert_int_equal(count("a.on_close closing"), 1);
  assert_int_equal(x->client.closes, 1);
  assert_int_equal(count("a.free"), 0);
  finish_closes(x);
  assert_int_equal(count("a.free"), 1);
  assert_int_equal(x->p->nconns, 0);
}

static void test_close_after_writes(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  attach_up(x);
  conn_want_read(x->c, x->c->client, true);
  conn_want_read(x->c, x->c->up, true);
  conn_close_after_writes(x->c);
  conn_close_after_writes(x->c); /* once */
  assert_int_equal(x->c->state, CONN_DRAINING);
  assert_int_equal(x->c->timer_kind, T_LINGER);
  assert_int_equal(x->client.shutdowns, 1);
  assert_false(x->client.reading);
  assert_false(x->up.reading);
  /* Nothing the mode wants restarts reading while draining. */
  conn_want_read(x->c, x->c->client, true);
  assert_false(x->client.reading);
  assert_int_equal(count("a.on_close closing"), 0);
  /* The FIN went after the last write: now it closes. */
  awf_transport_shutdown_done(x->c->client, 0);
  assert_int_equal(x->c->state, CONN_CLOSING);
  assert_int_equal(count("a.on_close closing"), 1);
  finish_closes(x);
  assert_int_equal(x->p->nconns, 0);
}

static void test_close_after_writes_shutdown_fails(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_HTTP);
  x->client.shutdown_fail = UV_ENOTCONN;
  conn_close_after_writes(x->c);
  assert_int_equal(x->c->state, CONN_CLOSING);
  assert_int_equal(x->client.closes, 1);
}

static void test_shutdown_reaches_mode(void **state) {
  struct fx *x = *state;
  static const struct conn_mode_ops with_shutdown = {
      .name = "s",
      .on_client_read = m_client_read,
      .on_up_read = m_up_read,
      .on_shutdown = m_shutdown,
      .on_close = m_close,
      .free = m_free,
  };
  give_mode(x, &with_shutdown, CONN_TUNNEL);
  attach_up(x);
  assert_int_equal(awf_transport_shutdown(x->c->up), 0); /* a FIN passed on */
  awf_transport_shutdown_done(x->c->up, UV_ECANCELED);   /* closed under it: nothing */
  assert_int_equal(count("s.shutdown up 0"), 0);
  awf_transport_shutdown_done(x->c->up, 0);
  assert_int_equal(count("s.shutdown up 0"), 1);
  assert_int_equal(x->c->state, CONN_TUNNEL); /* the mode decides when it ends */
}

static void test_write_error_closes(void **state) {
  struct fx *x = *state;
  give_mode(x, &mode_a, CONN_TUNNEL);
  attach_up(x);
  assert_int_equal(write_bytes(x->c->up, 10), 0);
  awf_transport_write_done(x->c->up, UV_ECANCELED); /* a cancel says nothing */
  assert_int_equal(x->c->state, CONN_TUNNEL);
  awf_transport_write_done(x->c->up, UV_ECONNRESET);
  assert_int_equal(x->c->state, CONN_CLOSING);
  assert_int_equal(count("a.on_close closing"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test_setup_teardown(test_states_and_mode_switch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_routing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer_reaches_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer_without_mode_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sliding_deadline_moves_with_activity, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_fixed_deadline_ignores_activity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure_on_new_upstream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_now_never_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_inside_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_after_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_after_writes_shutdown_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_reaches_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_error_closes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
