/*
 * fuzz_passwd.c: one line of the -a passwd file.  The input is the line
 * as auth_read_line leaves it: up to its newline, at most MAX_PASSWD_LINE
 * octets, NUL-terminated (a NUL in it ends it early, as with fgets).
 * passwd_parse_line must take exactly the lines that, split at every ':',
 * have 7 fields, a valid name, decimal ids below (uid_t)-1 and an
 * absolute home, and hand back those fields; auth_valid_name must agree
 * with a reference on every first field.
 */
#include <sys/types.h>

#include <limits.h>
#include <string.h>

#include "pop3d.h"
#include "auth.h"
#include "fuzz.h"

#define FIELDS		7
#define F_NAME		0
#define F_HASH		1
#define F_UID		2
#define F_GID		3
#define F_HOME		5

/* The name rule as a list of what is refused: empty, too long, "." and
 * "..", and any octet outside '!' to '~' or in ":/\". */
static int
ref_valid_name(const char *s)
{
	size_t		 i, len = strlen(s);
	unsigned char	 c;

	if (len == 0 || len > MAX_USER)
		return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c < '!' || c > '~' || strchr(":/\\", c) != NULL)
			return 0;
	}
	return 1;
}

/* A uid or gid: 1 to 10 digits, below 4294967295, which is (uid_t)-1,
 * "no id" to setresuid(2).  Returns 0 with *id set, or -1. */
static int
ref_id(const char *s, uint32_t *id)
{
	uint64_t	 v = 0;
	size_t		 i, len = strlen(s);

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char			 orig[MAX_PASSWD_LINE + 1];
	char			 field[FIELDS][MAX_PASSWD_LINE + 1];
	size_t			 start[FIELDS], len, i, nf, fl;
	struct auth_entry	 e;
	const char		*why = NULL;
	const uint8_t		*lf;
	char			*line;
	uint32_t		 uid = 0, gid = 0;
	int			 ok, r;

	if ((lf = memchr(data, '\n', size)) != NULL)
		size = lf - data;
	if (size > MAX_PASSWD_LINE)
		size = MAX_PASSWD_LINE;
	memcpy(orig, data, size);
	orig[size] = '\0';
	len = strlen(orig);

	/* The reference split: every ':' ends a field. */
	for (i = 0, nf = 0, fl = 0; i <= len; i++) {
		if (i < len && orig[i] != ':')
			continue;
		if (nf < FIELDS) {
			start[nf] = fl;
			memcpy(field[nf], orig + fl, i - fl);
			field[nf][i - fl] = '\0';
		}
		nf++;
		fl = i + 1;
	}
	FUZZ_CHECK(auth_valid_name(field[F_NAME]) ==
	    ref_valid_name(field[F_NAME]));
	ok = nf == FIELDS && ref_valid_name(field[F_NAME]) &&
	    ref_id(field[F_UID], &uid) == 0 &&
	    ref_id(field[F_GID], &gid) == 0 && field[F_HOME][0] == '/';

	/* Its own allocation: a read past the end is caught. */
	FUZZ_CHECK((line = malloc(len + 1)) != NULL);
	memcpy(line, orig, len + 1);
	r = passwd_parse_line(line, &e, &why);
	FUZZ_CHECK(r == (ok ? 0 : -1));
	if (r == -1)
		FUZZ_CHECK(why != NULL && why[0] != '\0');
	else {
		FUZZ_CHECK(e.name == line + start[F_NAME]);
		FUZZ_CHECK(e.hash == line + start[F_HASH]);
		FUZZ_CHECK(e.home == line + start[F_HOME]);
		FUZZ_CHECK(strcmp(e.name, field[F_NAME]) == 0);
		FUZZ_CHECK(strcmp(e.hash, field[F_HASH]) == 0);
		FUZZ_CHECK(strcmp(e.home, field[F_HOME]) == 0);
		FUZZ_CHECK(e.uid == uid && e.gid == gid);
		FUZZ_CHECK(auth_valid_name(e.name));
		FUZZ_CHECK(e.home[0] == '/' && strlen(e.home) < PATH_MAX);
		FUZZ_CHECK(strchr(e.hash, ':') == NULL);
	}
	free(line);
	return 0;
}
