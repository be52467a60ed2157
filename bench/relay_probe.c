/* relay_probe: a bare TCP relay, to measure what the relay mechanism alone
 * costs on this machine, apart from everything else a proxy does.
 *
 *   relay_probe splice|sockmap --listen IP --to IP:PORT
 *
 * Each accepted connection is paired with a new connection to --to, and the
 * bytes between the two are moved by one of two kernel mechanisms:
 *   splice   socket -> pipe -> socket with splice(2), one blocking thread per
 *            direction: the mechanism awf-proxy's bulk tunnels use, with no
 *            event loop around it;
 *   sockmap  a BPF sk_skb verdict program redirecting each socket's incoming
 *            data to its peer's egress inside the kernel (needs CAP_BPF and
 *            CAP_NET_ADMIN): no system call per byte batch at all.
 * bench/run drives it (scenario 3c) to answer "would sockmap beat splice for
 * one tunnel stream here?" with a figure from the same run.
 *
 * It is a probe, not a relay for real traffic: in sockmap mode bytes that
 * arrived before the pair was installed are forwarded by hand, possibly after
 * newer ones, and half-closes are not passed on (the pair is closed when
 * either side ends). The load client only counts bytes, so neither matters
 * to the figure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PIPE_BYTES (1024 * 1024)
#define SOCKHASH_ENTRIES 4096

struct probe {
  int sockmap_fd; /* -1 in splice mode */
  struct sockaddr_in to;
};

struct pair {
  const struct probe *probe;
  int client, upstream;
};

struct direction {
  int src, dst;
};

static void die(const char *what) {
  fprintf(stderr, "relay_probe: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- sockmap ------------------------------------------------------------ */

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
  return i;
}

/* The verdict program: key = this socket's cookie; redirect the skb to the
 * egress of the socket stored under that key (the peer). An skb of a socket
 * with no peer entry is dropped, which cannot happen while the pair lives. */
static int load_verdict_program(int map_fd) {
  struct bpf_insn prog[] = {
      insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
      insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
      insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_0, -8, 0),
      insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
      insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, map_fd),
      insn(0, 0, 0, 0, 0),
      insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
      insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -8),
      insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
      insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
      insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  static char verifier_log[16384];
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_SK_SKB;
  a.expected_attach_type = BPF_SK_SKB_VERDICT;
  a.insns = (uintptr_t)prog;
  a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
  a.license = (uintptr_t) "GPL";
  a.log_buf = (uintptr_t)verifier_log;
  a.log_size = sizeof(verifier_log);
  a.log_level = 1;
  long fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (fd < 0) {
    int e = errno;
    fprintf(stderr, "relay_probe: the verifier said:\n%s", verifier_log);
    errno = e;
    die("cannot load the sk_skb verdict program");
  }
  return (int)fd;
}

static int sockmap_create(void) {
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_type = BPF_MAP_TYPE_SOCKHASH;
  a.key_size = sizeof(uint64_t);
  a.value_size = sizeof(uint32_t);
  a.max_entries = SOCKHASH_ENTRIES;
  long map_fd = sys_bpf(BPF_MAP_CREATE, &a);
  if (map_fd < 0)
    die("cannot create a BPF sockhash (root, or CAP_BPF and CAP_NET_ADMIN, is needed)");
  int prog_fd = load_verdict_program((int)map_fd);
  memset(&a, 0, sizeof(a));
  a.target_fd = (uint32_t)map_fd;
  a.attach_bpf_fd = (uint32_t)prog_fd;
  a.attach_type = BPF_SK_SKB_VERDICT;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
    die("cannot attach the verdict program to the sockhash");
  close(prog_fd); /* the map holds it now */
  return (int)map_fd;
}

static int socket_cookie(int fd, uint64_t *cookie) {
  socklen_t len = sizeof(*cookie);
  return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len);
}

/* Store fd under key's socket cookie: data arriving on key goes to fd. */
static int sockmap_point(int map_fd, int key_fd, int fd) {
  uint64_t key;
  uint32_t value = (uint32_t)fd;
  if (socket_cookie(key_fd, &key) < 0)
    return -1;
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_fd = (uint32_t)map_fd;
  a.key = (uintptr_t)&key;
  a.value = (uintptr_t)&value;
  a.flags = BPF_ANY;
  return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

/* Bytes queued before the pair was installed are not seen by the program
 * until more arrive, and more may never come (a full receive window). */
static void forward_queued(int src, int dst) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(src, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0)
      return;
    for (ssize_t off = 0; off < n;) {
      ssize_t m = send(dst, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (m <= 0)
        return;
      off += m;
    }
  }
}

static void relay_sockmap(const struct pair *p) {
  if (sockmap_point(p->probe->sockmap_fd, p->client, p->upstream) < 0 ||
      sockmap_point(p->probe->sockmap_fd, p->upstream, p->client) < 0) {
    fprintf(stderr, "relay_probe: cannot add a pair to the sockhash: %s\n", strerror(errno));
    return;
  }
  forward_queued(p->client, p->upstream);
  forward_queued(p->upstream, p->client);
  struct pollfd pfd[2] = {{.fd = p->client, .events = POLLRDHUP},
                          {.fd = p->upstream, .events = POLLRDHUP}};
  while (poll(pfd, 2, -1) < 0 && errno == EINTR)
    ;
  /* closing the sockets takes them out of the sockhash */
}

/* ---- splice ------------------------------------------------------------- */

static void *splice_one_way(void *arg) {
  const struct direction *d = arg;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    fprintf(stderr, "relay_probe: pipe: %s\n", strerror(errno));
    return NULL;
  }
  (void)fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_BYTES);
  for (;;) {
    ssize_t n = splice(d->src, NULL, pipefd[1], NULL, PIPE_BYTES, SPLICE_F_MOVE);
    if (n <= 0)
      break;
    while (n > 0) {
      ssize_t m = splice(pipefd[0], NULL, d->dst, NULL, (size_t)n, SPLICE_F_MOVE);
      if (m <= 0)
        goto out;
      n -= m;
    }
  }
  (void)shutdown(d->dst, SHUT_WR);
out:
  close(pipefd[0]);
  close(pipefd[1]);
  return NULL;
}

static void relay_splice(const struct pair *p) {
  struct direction up = {p->client, p->upstream}, down = {p->upstream, p->client};
  pthread_t t;
  if (pthread_create(&t, NULL, splice_one_way, &up) != 0) {
    fprintf(stderr, "relay_probe: cannot start a thread\n");
    return;
  }
  splice_one_way(&down);
  /* the way down ended: unblock the way up if it still waits */
  (void)shutdown(p->client, SHUT_RD);
  pthread_join(t, NULL);
}

/* ---- connections -------------------------------------------------------- */

static void *serve_pair(void *arg) {
  struct pair *p = arg;
  p->upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->upstream < 0 ||
      connect(p->upstream, (const struct sockaddr *)&p->probe->to, sizeof(p->probe->to)) < 0) {
    fprintf(stderr, "relay_probe: cannot connect upstream: %s\n", strerror(errno));
  } else if (p->probe->sockmap_fd >= 0) {
    relay_sockmap(p);
  } else {
    relay_splice(p);
  }
  if (p->upstream >= 0)
    close(p->upstream);
  close(p->client);
  free(p);
  return NULL;
}

static int parse_ipv4(const char *ip, uint16_t port, struct sockaddr_in *out) {
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  out->sin_port = htons(port);
  return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

static int parse_hostport(const char *s, struct sockaddr_in *out) {
  char ip[INET_ADDRSTRLEN];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof(ip))
    return -1;
  memcpy(ip, s, (size_t)(colon - s));
  ip[colon - s] = '\0';
  char *end;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (*end || port == 0 || port > 65535)
    return -1;
  return parse_ipv4(ip, (uint16_t)port, out);
}

static int listen_on(const char *ip) {
  struct sockaddr_in a;
  if (parse_ipv4(ip, 0, &a) < 0) {
    fprintf(stderr, "relay_probe: --listen %s: not an IPv4 address\n", ip);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0)
    die("cannot listen");
  socklen_t len = sizeof(a);
  if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    die("getsockname");
  printf("relay_probe: listening on %s:%u\n", ip, ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static void usage(void) {
  fprintf(stderr, "usage: relay_probe splice|sockmap --listen IP --to IP:PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 6 || strcmp(argv[2], "--listen") || strcmp(argv[4], "--to"))
    usage();
  struct probe probe = {.sockmap_fd = -1};
  if (strcmp(argv[1], "sockmap") == 0)
    probe.sockmap_fd = sockmap_create();
  else if (strcmp(argv[1], "splice") != 0)
    usage();
  if (parse_hostport(argv[5], &probe.to) < 0) {
    fprintf(stderr, "relay_probe: --to %s: want IPv4:PORT\n", argv[5]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(argv[3]);
  for (;;) {
    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      die("accept");
    }
    struct pair *p = calloc(1, sizeof(*p));
    pthread_t t;
    if (!p) {
      close(c);
      continue;
    }
    p->probe = &probe;
    p->client = c;
    p->upstream = -1;
    if (pthread_create(&t, NULL, serve_pair, p) != 0) {
      close(c);
      free(p);
      continue;
    }
    pthread_detach(t);
  }
}
