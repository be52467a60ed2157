/* rootfs.h: the sandbox's filesystem (chroot mode). Called as root in the
 * sandbox's PID 1 (new mount and PID namespaces, before privileges are
 * dropped), it replaces the process's root with a fresh tmpfs holding the
 * host's binaries and a few /etc files read-only, the user's home and /tmp
 * read-write, and its own /dev, /proc, /sys, /run and /var.
 *
 * What is mounted how (host paths on the left):
 *   read-only, recursive (submounts too), nosuid, nodev:
 *     /usr /bin /sbin /lib /lib32 /lib64 /libx32 /opt, those that exist; a top
 *     level symlink (merged /usr: /bin -> usr/bin) is recreated, not bound;
 *     /etc entries of a fixed list (certificates, passwd, group, ld.so cache
 *     and config, alternatives, NSS and resolver-independent network files,
 *     time zone, locale, shell profiles, tool configs), /etc/java-* and
 *     /etc/python3*; /etc symlinks are recreated too. Never shadow, gshadow,
 *     sudoers, ssh host keys; /etc/ssl/private and /etc/pki/tls/private are
 *     covered by an empty read-only tmpfs.
 *   awf's own files (in the root tmpfs, read-only once built):
 *     /etc/resolv.conf (spec->resolv_conf, 0644), /etc/hostname ("awf").
 *   trust in the run's CA (spec->trust, --ssl-bump), in the root tmpfs:
 *     AWF_TRUST_BUNDLE (the host's bundle then the CA), AWF_TRUST_CA (the CA
 *     alone), AWF_TRUST_P12 (Java's truststore); a directory of links bound
 *     read-only over /etc/ssl/certs when the host has one (every host entry,
 *     through the host's directory bound read-only at /etc/awf/host-certs,
 *     ca-certificates.crt leading to AWF_TRUST_BUNDLE, and the CA under its
 *     subject hash <hash>.<n>, the first n free); AWF_TRUST_BUNDLE bound
 *     read-only over /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem and
 *     /etc/pki/tls/cert.pem where the host has a file there that is not
 *     already the bundle through a link.
 *   read-write, recursive, nosuid, nodev:
 *     the home (if it exists, at its passwd path, even inside a read-only
 *     tree; an empty tmpfs of the user's with fresh_home), /tmp (or a fresh
 *     tmpfs, mode 1777, with private_tmp), then the -v mounts in order
 *     (read-only ones as above).
 *   fresh: /dev (tmpfs 0755 nosuid nodev noexec: null zero full random
 *     urandom tty bound from the host, a new devpts instance with ptmx, shm
 *     tmpfs 1777, fd/stdin/stdout/stderr symlinks); /run (empty tmpfs, so no
 *     Docker socket); /var (empty tmpfs with /var/tmp 1777, and /var/run,
 *     /var/lock symlinks where the host has them); /sys (a new read-only
 *     sysfs, which shows the sandbox's network devices, with the host's
 *     /sys/fs/cgroup bound read-only; a read-only bind of the host's /sys if
 *     sysfs cannot be mounted); /proc (a new procfs of the PID namespace,
 *     nosuid nodev noexec, with /proc/sys, /proc/sysrq-trigger, /proc/irq
 *     and /proc/bus read-only: a uid 0 without capabilities could otherwise
 *     write sysctls).
 *   Everything else of the host (/root, /srv, /var/log, /home of others, the
 *   host's resolv.conf) is absent. The root tmpfs is made read-only last.
 *
 * Nothing propagates to the host: every mount is made a slave first, and the
 * root tmpfs is first mounted on /tmp of the sandbox's own mount namespace.
 * Missing targets of the home and -v mounts are created in the sandbox; when
 * a target lies in a read-write host tree (the home, /tmp) that creates the
 * directory or empty file on the host too, as docker -v does.
 *
 * What the command may have left in its writable trees in an earlier run is
 * not trusted: -v host paths are resolved without following symbolic links
 * owned by spec->uid (hostpath.h; a command run as root owns what root owns,
 * so for uid 0 no link can be told apart: give such a command no read-write
 * -v tree that later -v paths pass through), and the home and -v trees are
 * copied from the host while its root is reachable but placed only after it
 * is detached, so no link in the sandbox leads a target onto the host's root. */
#ifndef AWF_ROOTFS_H
#define AWF_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Most -v mounts accepted. */
#define AWF_ROOTFS_MAX_MOUNTS 1024u

/* The sandbox's host name (UTS namespace, /etc/hostname, /etc/hosts). */
#define AWF_SANDBOX_HOSTNAME "awf"

struct awf_rootfs_mount {
  const char *host;    /* absolute; must exist */
  const char *sandbox; /* absolute, not "/", no ".." component */
  bool read_only;
};

/* --ssl-bump: what the sandbox needs to trust the run's CA (truststore.h
 * makes it). The paths are the sandbox's; the files die with its root. */
#define AWF_TRUST_DIR "/etc/awf"
#define AWF_TRUST_BUNDLE AWF_TRUST_DIR "/ca-certificates.crt"
#define AWF_TRUST_CA AWF_TRUST_DIR "/run-ca.crt"
#define AWF_TRUST_P12 AWF_TRUST_DIR "/truststore.p12"

struct awf_rootfs_trust {
  const char *bundle; /* the host's bundle then the run's CA (PEM) */
  size_t bundle_len;
  const char *ca_pem; /* the run's CA alone (PEM; never its key) */
  size_t ca_pem_len;
  const unsigned char *p12; /* Java's PKCS#12 truststore; NULL: none */
  size_t p12_len;
  unsigned long ca_hash; /* X509_subject_name_hash of the CA */
};

struct awf_rootfs_spec {
  const char *home; /* the user's home (from passwd): bound read-write if it exists */
  bool fresh_home;  /* true: an empty tmpfs (0700, uid's) at home instead of the host's */
  bool private_tmp; /* true: fresh tmpfs on /tmp; false: host /tmp bound rw */
  const struct awf_rootfs_mount *mounts; /* -v HOST:SANDBOX[:ro|rw], later over earlier */
  size_t n_mounts;
  const char *resolv_conf; /* contents of the sandbox's /etc/resolv.conf; NULL: no file */
  const char *hosts;       /* contents of the sandbox's /etc/hosts; NULL: the host's is bound */
  const struct awf_rootfs_trust *trust; /* --ssl-bump's CA files; NULL: none */
  uid_t uid; /* the command's: owns a fresh home; its links in -v paths are refused */
  gid_t gid; /* with groups: -v host paths are resolved with these rights */
  const gid_t *groups;
  size_t ngroups;
};

/* Build the sandbox's root and enter it (pivot_root, old root detached, cwd
 * "/"), then mount the new /proc. The spec is checked and every host path
 * resolved before anything is mounted, so a bad -v changes nothing.
 * Returns 0, or a negative errno with a message in err naming the step, the
 * path and the reason (e.g. "-v /data:/data: host path /data: No such file
 * or directory"). After a failure midway the mount namespace is unusable:
 * report and exit. Allocates nothing with malloc itself (this may run in a
 * child cloned from a threaded process); realpath(3) may, for long paths. */
int awf_rootfs_build(const struct awf_rootfs_spec *spec, char *err, size_t errlen);

/* Where a path of the sandbox comes from on the host, by the same mount
 * table awf_rootfs_build uses: the host path (in out) when the sandbox
 * path lies in a system tree, the home, the host /tmp (not with private_tmp)
 * or a -v mount (the last one that covers it wins); 0, or -ENOENT when the
 * sandbox shows no host file there, -ENAMETOOLONG. Pure: nothing is looked
 * up on disk. Used to keep PATH to directories the sandbox has. */
int awf_rootfs_host_path_of(const struct awf_rootfs_spec *spec, const char *path, char *out,
                            size_t outlen);

#endif
