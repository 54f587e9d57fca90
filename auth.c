/*
 * auth.c: password verification in the monitor.  Credentials come from
 * the -a passwd file, read afresh at each login, or from the system
 * accounts (getpwnam and getspnam).  An unknown user, a locked account and
 * a wrong password all cost the same crypt(3) work, so the time of an
 * answer tells nothing about which it was.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"
#include "auth.h"

static struct crypt_data	 auth_crypt_data;

/*
 * A user name must be usable in a file name and a log line: printable
 * ASCII without space, ':' or '/', and not "." or "..".
 */
int
auth_valid_name(const char *name)
{
	size_t	 i, len = strlen(name);

	if (len == 0 || len > MAX_USER || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == ':' ||
		    name[i] == '/' || name[i] == '\\')
			return 0;
	}
	return 1;
}

static int
auth_parse_id(const char *s, unsigned long *id)
{
	char	*end;

	if (*s < '0' || *s > '9' || strlen(s) > 10)
		return -1;
	errno = 0;
	*id = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *id >= (unsigned long)UINT32_MAX)
		return -1;
	return 0;
}

int
passwd_parse_line(char *line, struct auth_entry *e, const char **why)
{
	char		*field[7], *p = line;
	unsigned long	 uid, gid;
	size_t		 n;

	for (n = 0; n < 7; n++) {
		field[n] = strsep(&p, ":");
		if (field[n] == NULL) {
			*why = "fewer than 7 fields";
			return -1;
		}
	}
	if (p != NULL) {
		*why = "more than 7 fields";
		return -1;
	}
	if (!auth_valid_name(field[0])) {
		*why = "invalid user name";
		return -1;
	}
	if (auth_parse_id(field[2], &uid) == -1 ||
	    auth_parse_id(field[3], &gid) == -1) {
		*why = "invalid uid or gid";
		return -1;
	}
	if (field[5][0] != '/' || strlen(field[5]) >= PATH_MAX) {
		*why = "home directory is not an absolute path";
		return -1;
	}
	e->name = field[0];
	e->hash = field[1];
	e->uid = uid;
	e->gid = gid;
	e->home = field[5];
	return 0;
}

/* A hash that can never match: locked ("*", "!..."), empty or unknown. */
static int
auth_locked_hash(const char *hash)
{
	return hash[0] == '\0' || hash[0] == '*' || hash[0] == '!';
}

static int
auth_equal(const char *a, const char *b)
{
	size_t		 i, la = strlen(a), lb = strlen(b);
	unsigned char	 diff = la != lb;

	for (i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

/* crypt(3) the password against setting; 1 if it matches hash. */
static int
auth_crypt(const char *pass, const char *setting, const char *hash)
{
	const char	*out;
	int		 ok;

	out = crypt_rn(pass, setting, &auth_crypt_data,
	    sizeof(auth_crypt_data));
	ok = out != NULL && hash != NULL && auth_equal(out, hash);
	explicit_bzero(&auth_crypt_data, sizeof(auth_crypt_data));
	return ok;
}

/* A setting of the system's default method, for users that do not exist. */
static const char *
auth_default_setting(void)
{
	static char	 setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (setting[0] == '\0' &&
	    crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof(setting)) ==
	    NULL)
		strlcpy(setting, "$6$pop3dpop3dpop3d", sizeof(setting));
	return setting;
}

static int
auth_copy_user(struct auth_user *u, const char *name, uid_t uid, gid_t gid,
    const char *home)
{
	if (strlcpy(u->name, name, sizeof(u->name)) >= sizeof(u->name) ||
	    strlcpy(u->home, home, sizeof(u->home)) >= sizeof(u->home))
		return -1;
	u->uid = uid;
	u->gid = gid;
	return 0;
}

/*
 * Reads the next line of f into buf; a line longer than the buffer is
 * consumed whole and reported with *toolong.  Returns 0 at end of file.
 */
static int
auth_read_line(FILE *f, char *buf, size_t size, int *toolong)
{
	size_t	 len;
	int	 c;

	*toolong = 0;
	if (fgets(buf, size, f) == NULL)
		return 0;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	else if (!feof(f)) {
		*toolong = 1;
		while ((c = getc(f)) != EOF && c != '\n')
			;
	}
	return 1;
}

/* The -a file must be a regular file that only root can change. */
static FILE *
auth_open_file(const char *path)
{
	struct stat	 st;
	FILE		*f;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_warn("%s", path);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("%s: not a regular file owned by root and writable "
		    "only by root", path);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		log_warn("%s", path);
		close(fd);
	}
	return f;
}

/*
 * Checks every line of the -a file; with name set, finds that user.
 * Returns the number of bad lines, or -1 if the file cannot be used.
 */
static int
auth_scan_file(const char *path, const char *name, char *found,
    size_t foundsize, char *dummy, size_t dummysize)
{
	char			 line[MAX_PASSWD_LINE + 2];
	char			 fields[MAX_PASSWD_LINE + 2];
	struct auth_entry	 e;
	const char		*why;
	FILE			*f;
	int			 toolong, bad = 0;
	unsigned long		 lineno = 0;

	if ((f = auth_open_file(path)) == NULL)
		return -1;
	while (auth_read_line(f, line, sizeof(line), &toolong)) {
		lineno++;
		if (toolong) {
			log_warnx("%s:%lu: line too long, skipped", path,
			    lineno);
			bad++;
			continue;
		}
		if (line[0] == '#' || line[0] == '\0')
			continue;
		memcpy(fields, line, sizeof(fields));
		if (passwd_parse_line(fields, &e, &why) == -1) {
			log_warnx("%s:%lu: %s, skipped", path, lineno, why);
			bad++;
			continue;
		}
		if (dummy[0] == '\0' && !auth_locked_hash(e.hash))
			strlcpy(dummy, e.hash, dummysize);
		if (name == NULL || found[0] != '\0' ||
		    strcmp(e.name, name) != 0)
			continue;
		strlcpy(found, line, foundsize);
	}
	explicit_bzero(line, sizeof(line));
	explicit_bzero(fields, sizeof(fields));
	if (ferror(f)) {
		log_warn("%s", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return bad;
}

int
auth_check_file(const char *path)
{
	char	 dummy[MAX_PASSWD_LINE + 1] = "";

	return auth_scan_file(path, NULL, NULL, 0, dummy, sizeof(dummy));
}

static int
auth_by_file(const char *path, const char *name, const char *pass,
    struct auth_user *u)
{
	char			 found[MAX_PASSWD_LINE + 2] = "";
	char			 dummy[MAX_PASSWD_LINE + 1] = "";
	struct auth_entry	 e;
	const char		*why;
	int			 ok, result;

	if (auth_scan_file(path, name, found, sizeof(found), dummy,
	    sizeof(dummy)) == -1)
		return AUTH_ERROR;
	if (dummy[0] == '\0')
		strlcpy(dummy, auth_default_setting(), sizeof(dummy));
	if (found[0] == '\0') {
		auth_crypt(pass, dummy, NULL);
		result = AUTH_UNKNOWN;
	} else if (passwd_parse_line(found, &e, &why) == -1) {
		auth_crypt(pass, dummy, NULL);
		result = AUTH_ERROR;
	} else if (e.uid == 0 || auth_locked_hash(e.hash)) {
		auth_crypt(pass, dummy, NULL);
		result = AUTH_REFUSED;
	} else {
		ok = auth_crypt(pass, e.hash, e.hash);
		result = ok ? AUTH_OK : AUTH_REFUSED;
		if (ok && auth_copy_user(u, e.name, e.uid, e.gid, e.home))
			result = AUTH_ERROR;
	}
	explicit_bzero(found, sizeof(found));
	explicit_bzero(dummy, sizeof(dummy));
	return result;
}

/* Shadow ageing: expired or inactive accounts and forced changes. */
static int
auth_shadow_expired(const struct spwd *sp)
{
	long	 today = time(NULL) / 86400;

	if (sp->sp_expire > 0 && today >= sp->sp_expire)
		return 1;
	if (sp->sp_lstchg == 0)
		return 1;
	if (sp->sp_lstchg > 0 && sp->sp_max >= 0 && sp->sp_inact >= 0 &&
	    today > sp->sp_lstchg + sp->sp_max + sp->sp_inact)
		return 1;
	return 0;
}

static int
auth_by_system(const char *name, const char *pass, struct auth_user *u)
{
	struct passwd	*pw;
	struct spwd	*sp;
	const char	*hash;
	int		 usable;

	if ((pw = getpwnam(name)) == NULL) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_UNKNOWN;
	}
	if (auth_copy_user(u, pw->pw_name, pw->pw_uid, pw->pw_gid,
	    pw->pw_dir) == -1) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_ERROR;
	}
	hash = pw->pw_passwd;
	usable = pw->pw_uid != 0;
	if ((sp = getspnam(name)) != NULL) {
		hash = sp->sp_pwdp;
		if (auth_shadow_expired(sp))
			usable = 0;
	} else if (strcmp(hash, "x") == 0)
		usable = 0;
	if (!usable || auth_locked_hash(hash)) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_REFUSED;
	}
	return auth_crypt(pass, hash, hash) ? AUTH_OK : AUTH_REFUSED;
}

int
auth_check(const char *passwd_file, const char *name, const char *pass,
    struct auth_user *u)
{
	int	 result;

	memset(u, 0, sizeof(*u));
	if (!auth_valid_name(name)) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_UNKNOWN;
	}
	if (passwd_file != NULL)
		result = auth_by_file(passwd_file, name, pass, u);
	else
		result = auth_by_system(name, pass, u);
	endpwent();
	endspent();
	return result;
}
