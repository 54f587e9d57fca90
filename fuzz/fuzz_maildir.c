/*
 * fuzz_maildir.c: the Maildir name parser, the UIDL rule and the seen
 * name.  The input is a file name (up to its first NUL); a byte after
 * that NUL, if any, says whether the file is in cur/.
 *
 * The parser must find the unique part up to the first ':', the info
 * after it and the flags after "2,"; the time and the ,S= and ,W= sizes
 * only where the rules in maildir.c allow them.  The UIDL must be 1 to
 * 70 octets of 0x21-0x7E: the unique part itself where it qualifies,
 * else "sha256:" and 32 hex digits.  A seen name must keep the unique
 * part, hold the flags with one S added and nothing else changed, and
 * fit in NAME_MAX.  maildir.c is included to reach its static functions.
 */
#include "../maildir.c"
#include "fuzz.h"

void
sandbox_maildrop(const char *dir, int maildir)
{
	(void)dir;
	(void)maildir;
}

/* A ,X=digits field of the unique part: 1 to 18 digits up to the end of
 * the unique part or the next ','; the last such field counts. */
static off_t
ref_field(const char *name, size_t ulen, char x)
{
	size_t		 i, j;
	off_t		 v = -1;

	for (i = 0; i + 3 < ulen; i++) {
		if (name[i] != ',' || name[i + 1] != x || name[i + 2] != '=')
			continue;
		for (j = i + 3; j < ulen && name[j] >= '0' && name[j] <= '9';
		    j++)
			;
		if (j > i + 3 && j - (i + 3) <= 18 && (j == ulen ||
		    name[j] == ','))
			v = strtoll(name + i + 3, NULL, 10);
	}
	return v;
}

static void
check_seen(const char *name, const struct maildir_name *mn, int in_cur)
{
	struct maildir_name	 out;
	char			 to[NAME_MAX + 1];
	const char		*f, *g;
	size_t			 want;
	int			 rv, had_s, added = 0;

	rv = maildir_seen_name(name, in_cur, to, sizeof(to));
	if (mn->info != NULL && mn->flags == NULL) {
		FUZZ_CHECK(rv == -1);
		return;
	}
	had_s = mn->flags != NULL && strchr(mn->flags, 'S') != NULL;
	if (had_s && in_cur) {
		FUZZ_CHECK(rv == 0);
		return;
	}
	want = had_s ? strlen(name) : mn->flags == NULL ? mn->uniquelen + 4 :
	    strlen(name) + 1;
	if (want > NAME_MAX) {
		FUZZ_CHECK(rv == -1);
		return;
	}
	FUZZ_CHECK(rv == 1 && strlen(to) == want);
	maildir_name_parse(to, &out);
	FUZZ_CHECK(out.uniquelen == mn->uniquelen &&
	    memcmp(to, name, mn->uniquelen) == 0);
	FUZZ_CHECK(out.flags != NULL && strchr(out.flags, 'S') != NULL);
	if (had_s) {
		FUZZ_CHECK(strcmp(out.flags, mn->flags) == 0);
		return;
	}
	/* the old flags, in order, with one S among them */
	f = mn->flags != NULL ? mn->flags : "";
	for (g = out.flags; *g != '\0'; g++) {
		if (*g == 'S' && !added && (*f == '\0' || *f > 'S')) {
			added = 1;
			continue;
		}
		FUZZ_CHECK(*g == *f);
		f++;
	}
	FUZZ_CHECK(added && *f == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_name	 mn;
	char			*name, uidl[UIDL_SIZE];
	const char		*colon;
	size_t			 n, i, ulen, digits;
	int			 in_cur = 0, plain;

	n = strnlen((const char *)data, size);
	if (n < size)
		in_cur = n + 1 < size && (data[n + 1] & 1);
	if ((name = malloc(n + 1)) == NULL)
		return 0;
	memcpy(name, data, n);
	name[n] = '\0';

	maildir_name_parse(name, &mn);
	colon = strchr(name, ':');
	ulen = colon != NULL ? (size_t)(colon - name) : n;
	FUZZ_CHECK(mn.uniquelen == ulen);
	FUZZ_CHECK(colon == NULL ? mn.info == NULL : mn.info == colon + 1);
	FUZZ_CHECK(mn.info != NULL && strncmp(mn.info, "2,", 2) == 0 ?
	    mn.flags == mn.info + 2 : mn.flags == NULL);
	for (digits = 0; digits < ulen && name[digits] >= '0' &&
	    name[digits] <= '9'; digits++)
		;
	FUZZ_CHECK(digits >= 1 && digits <= 18 ?
	    mn.time == strtoll(name, NULL, 10) : mn.time == -1);
	FUZZ_CHECK(mn.s_size == ref_field(name, ulen, 'S'));
	FUZZ_CHECK(mn.w_size == ref_field(name, ulen, 'W'));

	maildir_uidl(name, ulen, uidl);
	n = strnlen(uidl, sizeof(uidl));
	FUZZ_CHECK(n >= 1 && n <= 70 && n < sizeof(uidl));
	for (i = 0; i < n; i++)
		FUZZ_CHECK(uidl[i] >= 0x21 && uidl[i] <= 0x7e);
	plain = ulen >= 1 && ulen <= 70;
	for (i = 0; plain && i < ulen; i++)
		plain = name[i] >= 0x21 && name[i] <= 0x7e;
	if (plain)
		FUZZ_CHECK(n == ulen && memcmp(uidl, name, ulen) == 0);
	else
		FUZZ_CHECK(n == 39 && strncmp(uidl, "sha256:", 7) == 0);

	check_seen(name, &mn, in_cur);
	free(name);
	return 0;
}
