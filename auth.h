/*
 * auth.h: the monitor's password checks (auth.c).
 */
#ifndef POP3D_AUTH_H
#define POP3D_AUTH_H

#include <limits.h>

struct auth_user {
	char	 name[MAX_USER + 1];
	uid_t	 uid;
	gid_t	 gid;
	char	 home[PATH_MAX];
};

/* One parsed line of a -a file; the strings point into that line. */
struct auth_entry {
	char	*name;
	char	*hash;
	uid_t	 uid;
	gid_t	 gid;
	char	*home;
};

enum auth_result {
	AUTH_OK,		/* good credentials, *u filled in */
	AUTH_UNKNOWN,		/* no such user (never log the name) */
	AUTH_REFUSED,		/* wrong password, locked, root or expired */
	AUTH_ERROR		/* the passwd file or a lookup failed */
};

/* auth_valid_name: 1 if name is an acceptable user name, else 0. */
int	 auth_valid_name(const char *);

/* passwd_parse_line: splits a name:hash:uid:gid:gecos:home:shell line (in
 * place) into *e; returns 0, or -1 with *why set. */
int	 passwd_parse_line(char *, struct auth_entry *, const char **);

/* auth_check_file: checks the -a file; returns the number of bad lines
 * (each logged) or -1 if it cannot be used. */
int	 auth_check_file(const char *);

/* auth_check: verifies name and pass against the -a file (or the system
 * accounts if it is NULL); returns an enum auth_result. */
int	 auth_check(const char *, const char *, const char *,
	    struct auth_user *);

#endif
