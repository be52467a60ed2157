/* userdb.h: the invoking user, read from passwd and group files directly.
 *
 * No NSS (getpwuid, getgrouplist): a static awf binary cannot load NSS
 * modules, and the sandbox must see exactly the files it bind-mounts. The
 * files are read whole (capped) and parsed with explicit lengths, so long
 * lines, a missing final newline or NUL bytes are handled like any other
 * input.
 *
 * Line rules, for both files: a line is a run of bytes up to '\n' or the end
 * of the data. Empty lines, lines starting with '#' and NIS compat lines
 * ('+' or '-' first) are ignored. A line is malformed, and skipped, when it
 * has the wrong number of ':' fields, a NUL byte, a control byte in the
 * name, an empty name, or an id that is not a plain decimal in
 * 0..4294967294. The first well-formed line with the wanted uid wins, as
 * with getpwuid. */
#ifndef AWF_USERDB_H
#define AWF_USERDB_H

#include <stddef.h>
#include <sys/types.h>

#define AWF_USERDB_FILE_MAX (64u << 20) /* bytes read from one file at most */
#define AWF_USERDB_NAME_MAX 256         /* user name bytes, without NUL */
#define AWF_USERDB_PATH_MAX 4096        /* home and shell bytes, with NUL */

struct awf_userdb_user {
  char name[AWF_USERDB_NAME_MAX + 1];
  uid_t uid;
  gid_t gid;                       /* primary group */
  char home[AWF_USERDB_PATH_MAX];  /* "/" when the field is empty */
  char shell[AWF_USERDB_PATH_MAX]; /* "/bin/sh" when the field is empty */
};

/* Find `uid` in passwd-format data (name:passwd:uid:gid:gecos:home:shell,
 * exactly seven fields). `origin` names the data in messages (a path).
 * Returns 0; -ENOENT ("uid 1234 not found in /etc/passwd", with the number of
 * malformed lines skipped if any); -ENAMETOOLONG when the matching entry's
 * name, home or shell does not fit (message names origin:line). The home
 * directory is returned as written; the caller decides what a relative one
 * means. */
int awf_userdb_user_by_uid_mem(const char *data, size_t len, const char *origin, uid_t uid,
                               struct awf_userdb_user *out, char *err, size_t errsz);

/* The same, reading the file at `path` (at most AWF_USERDB_FILE_MAX bytes);
 * also returns the -errno of opening or reading it. */
int awf_userdb_user_by_uid(const char *path, uid_t uid, struct awf_userdb_user *out, char *err,
                           size_t errsz);

/* The group list for setgroups(2): `primary` first, then the gid of every
 * well-formed group-file line (name:passwd:gid:member,member,..., the member
 * field may be missing) whose member list holds exactly `user`, ascending,
 * without duplicates and without `primary` again. Member names are compared
 * byte for byte, not trimmed.
 * Fills gids[0..*ngids). Returns 0; -ERANGE when more than `max` groups
 * result (*ngids is then the number needed); -EINVAL for an empty user or
 * max 0. */
int awf_userdb_groups_mem(const char *data, size_t len, const char *origin, const char *user,
                          gid_t primary, gid_t *gids, size_t max, size_t *ngids, char *err,
                          size_t errsz);

/* The same, reading the file at `path`. */
int awf_userdb_groups(const char *path, const char *user, gid_t primary, gid_t *gids,
                      size_t max, size_t *ngids, char *err, size_t errsz);

/* Who runs awf. */
struct awf_userdb_invoker {
  uid_t uid;
  gid_t gid;     /* meaningful only when gid_known */
  int gid_known; /* 0: take the primary gid from the passwd entry */
  int via_sudo;  /* 1: uid (and gid) came from SUDO_UID/SUDO_GID */
};

/* Decide the invoking user from the values of SUDO_UID and SUDO_GID (either
 * may be NULL when unset) and the real uid/gid of the process.
 * SUDO_* are trusted only when the real uid is 0: sudo sets them for root,
 * and any other user could set them to pose as someone else. A SUDO_UID that
 * is not a plain decimal id in 0..4294967294 is ignored (the real ids are
 * used); a valid SUDO_UID with an invalid or missing SUDO_GID yields
 * gid_known 0. Without sudo the real uid and gid are used. Pure. */
void awf_userdb_invoker(const char *sudo_uid, const char *sudo_gid, uid_t real_uid,
                        gid_t real_gid, struct awf_userdb_invoker *out);

/* Parse a decimal user or group id: digits only (no sign, no blanks), at most
 * 4294967294 ((uid_t)-1 means "no id" to the kernel). Returns 0 or -EINVAL. */
int awf_userdb_parse_id(const char *s, size_t len, unsigned int *out);

#endif
