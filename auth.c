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
#include <ctype.h>
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

/* The index of c in crypt(3)'s alphabet "./0-9A-Za-z", or -1. */
static int
auth_itoa64(int c)
{
	static const char	 alphabet[] =
	    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	const char		*p;

	if (c == '\0' || (p = strchr(alphabet, c)) == NULL)
		return -1;
	return p - alphabet;
}

static double
auth_pow2(int n)
{
	double	 d = 1;

	while (n-- > 0)
		d *= 2;
	return d;
}

/*
 * A rough cost of a hash or setting in microseconds, measured once on a
 * current x86 core: enough to tell which of two is costlier.  0 for a
 * method not known here (it is then never taken as the dummy).
 */
static double
auth_cost(const char *h)
{
	const char	*r;
	int		 n, m;

	if (strncmp(h, "$y$", 3) == 0 || strncmp(h, "$gy$", 4) == 0) {
		/* yescrypt: flags, then log2(N) - 1 and r - 1 */
		h += h[1] == 'y' ? 3 : 4;
		if (h[0] == '\0' || (n = auth_itoa64(h[1])) == -1 || (m = auth_itoa64(h[2])) ==
		    -1 || n > 30)
			return 0;
		return 0.46 * (m + 1) * auth_pow2(n + 1);
	}
	if (strncmp(h, "$6$", 3) == 0 || strncmp(h, "$5$", 3) == 0) {
		n = (r = strstr(h, "$rounds=")) == h + 2 ?
		    (int)strtol(r + 8, NULL, 10) : 5000;
		return (h[1] == '6' ? 0.32 : 0.26) * (n < 1000 ? 1000 : n);
	}
	if (h[0] == '$' && h[1] == '2' && h[2] != '\0' && h[3] == '$' &&
	    isdigit((unsigned char)h[4]) && isdigit((unsigned char)h[5]))
		return 66 * auth_pow2((h[4] - '0') * 10 + h[5] - '0');
	if (strncmp(h, "$1$", 3) == 0)
		return 100;
	return 0;
}

/* Keeps in best (size CRYPT_OUTPUT_SIZE) the costlier of it and h. */
static void
auth_costlier(char *best, const char *h)
{
	if (auth_cost(h) > auth_cost(best))
		strlcpy(best, h, CRYPT_OUTPUT_SIZE);
}

/* The number an /etc/login.defs line "KEY N" sets, or def. */
static unsigned long
auth_login_defs(FILE *f, const char *key, unsigned long def)
{
	char	 line[256], *p;
	size_t	 n = strlen(key);

	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, key, n) == 0 && (p[n] == ' ' || p[n] == '\t'))
			def = strtoul(p + n, NULL, 10);
	}
	return def;
}

/* A setting of the method /etc/login.defs names, at its costliest. */
static void
auth_login_defs_setting(char *out)
{
	char	 line[256], *p;
	FILE	*f;
	const char *prefix = NULL;
	unsigned long count = 0;

	if ((f = fopen(PATH_LOGIN_DEFS, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "ENCRYPT_METHOD", 14) != 0)
			continue;
		p += 14 + strspn(p + 14, " \t");
		if (strncmp(p, "SHA512", 6) == 0 || strncmp(p, "SHA256", 6) == 0) {
			prefix = p[4] == '1' ? "$6$" : "$5$";
			count = auth_login_defs(f, "SHA_CRYPT_MAX_ROUNDS",
			    auth_login_defs(f, "SHA_CRYPT_MIN_ROUNDS", 5000));
		} else if (strncmp(p, "YESCRYPT", 8) == 0) {
			prefix = "$y$";
			count = auth_login_defs(f, "YESCRYPT_COST_FACTOR", 5);
		} else if (strncmp(p, "BCRYPT", 6) == 0) {
			prefix = "$2b$";
			count = auth_login_defs(f, "BCRYPT_MAX_ROUNDS",
			    auth_login_defs(f, "BCRYPT_MIN_ROUNDS", 13));
		}
		break;
	}
	fclose(f);
	if (prefix != NULL)
		(void)crypt_gensalt_rn(prefix, count, NULL, 0, out,
		    CRYPT_GENSALT_OUTPUT_SIZE);
}

/*
 * For users that do not exist, and accounts that may not log in: the
 * work of the costliest hash that could be in use, so that the time
 * and the CPU a failure costs do not tell an unknown name from a known
 * one.  With system accounts that is the costlier of what login.defs
 * sets and yescrypt at its default cost, which Debian's pam_unix writes
 * whatever login.defs says.
 */
static const char *
auth_default_setting(void)
{
	static char	 setting[CRYPT_OUTPUT_SIZE];
	char		 defs[CRYPT_OUTPUT_SIZE] = "";

	if (setting[0] != '\0')
		return setting;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    CRYPT_GENSALT_OUTPUT_SIZE) == NULL)
		strlcpy(setting, "$6$pop3dpop3dpop3d", sizeof(setting));
	auth_login_defs_setting(defs);
	auth_costlier(setting, defs);
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
		if (!auth_locked_hash(e.hash) && strlen(e.hash) < dummysize)
			auth_costlier(dummy, e.hash);
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
	char	 dummy[CRYPT_OUTPUT_SIZE] = "";

	return auth_scan_file(path, NULL, NULL, 0, dummy, sizeof(dummy));
}

static int
auth_by_file(const char *path, const char *name, const char *pass,
    struct auth_user *u)
{
	char			 found[MAX_PASSWD_LINE + 2] = "";
	char			 dummy[CRYPT_OUTPUT_SIZE] = "";
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
	} else if (e.uid == 0 || e.gid == 0 || auth_locked_hash(e.hash)) {
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
	/* past its maximum age the password must be changed at a login
	 * that can ask for a new one, which POP3 cannot, whether or not an
	 * inactivity period follows */
	if (sp->sp_lstchg > 0 && sp->sp_max >= 0 &&
	    today > sp->sp_lstchg + sp->sp_max)
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
	/* a name service may answer another name than was asked: it goes
	 * into file names and the log, so it is checked as the client's */
	if (!auth_valid_name(pw->pw_name) || strcmp(pw->pw_name, name) != 0) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_ERROR;
	}
	if (auth_copy_user(u, pw->pw_name, pw->pw_uid, pw->pw_gid,
	    pw->pw_dir) == -1) {
		auth_crypt(pass, auth_default_setting(), NULL);
		return AUTH_ERROR;
	}
	hash = pw->pw_passwd;
	usable = pw->pw_uid != 0 && pw->pw_gid != 0;
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
	if (passwd_file == NULL && !auth_valid_name(name)) {
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
