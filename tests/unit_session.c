/*
 * unit_session.c: the session process's parsers: numbers, verbs and
 * arguments, strict base64, SASL PLAIN, the checks on index entries
 * from the maildrop process, and the compact message table giving back
 * every entry as it came.  session.c is included so that its static
 * functions can be tested as they are.
 */
#include "../session.c"
#include "unit.h"

/* The session is linked without the monitor. */
void
priv_drop(const char *dir, uid_t uid, gid_t gid, int nogroups)
{
	(void)dir; (void)uid; (void)gid; (void)nogroups;
}

void
priv_check_fds(const int *keep, size_t n)
{
	(void)keep; (void)n;
}

void
sandbox_session(void)
{
}

static void
test_parse_uint(void)
{
	uint32_t	 n = 7;

	CHECK(parse_uint("0", &n) == 0 && n == 0);
	CHECK(parse_uint("1", &n) == 0 && n == 1);
	CHECK(parse_uint("007", &n) == 0 && n == 7);
	CHECK(parse_uint("4294967295", &n) == 0 && n == 4294967295u);
	CHECK(parse_uint("4294967296", &n) == -1);
	CHECK(parse_uint("4294967297", &n) == -1);
	CHECK(parse_uint("99999999999", &n) == -1);
	CHECK(parse_uint("00000000001", &n) == -1);
	CHECK(parse_uint("", &n) == -1);
	CHECK(parse_uint("-1", &n) == -1);
	CHECK(parse_uint("+1", &n) == -1);
	CHECK(parse_uint("1x", &n) == -1);
	CHECK(parse_uint(" 1", &n) == -1);
	CHECK(parse_uint("1 ", &n) == -1);
	CHECK(parse_uint("0x10", &n) == -1);
}

static void
test_parse_number(void)
{
	CHECK_INT(parse_number("1", 3), ==, 1);
	CHECK_INT(parse_number("3", 3), ==, 3);
	CHECK_INT(parse_number("4", 3), ==, 0);
	CHECK_INT(parse_number("0", 3), ==, 0);
	CHECK_INT(parse_number("4294967297", UINT32_MAX), ==, 0);
	CHECK_INT(parse_number("4294967295", UINT32_MAX), ==, 4294967295u);
}

static void
test_parse_verb_args(void)
{
	char	 l1[] = "LIST", l2[] = "TOP 1 10", l3[] = "TOP 1  10";
	char	 l4[] = "LIST ", l5[] = "PASS a b  c ";
	char	*args, *argv[2];

	CHECK_STR(parse_verb(l1, &args), "LIST");
	CHECK(args == NULL);
	CHECK(parse_args(args, argv, 1) == 0);

	CHECK_STR(parse_verb(l2, &args), "TOP");
	REQUIRE(parse_args(args, argv, 2) == 2);
	CHECK_STR(argv[0], "1");
	CHECK_STR(argv[1], "10");

	parse_verb(l3, &args);
	CHECK(parse_args(args, argv, 2) == -1);	/* empty word */
	parse_verb(l4, &args);
	CHECK(parse_args(args, argv, 1) == -1);	/* trailing space */
	CHECK_STR(parse_verb(l5, &args), "PASS");
	CHECK_STR(args, "a b  c ");		/* PASS takes it all */
}

static void
test_base64(void)
{
	unsigned char	 out[64];

	CHECK_INT(base64_decode("", out, sizeof(out)), ==, 0);
	CHECK_INT(base64_decode("Zg==", out, sizeof(out)), ==, 1);
	CHECK(out[0] == 'f');
	CHECK_INT(base64_decode("Zm8=", out, sizeof(out)), ==, 2);
	CHECK(memcmp(out, "fo", 2) == 0);
	CHECK_INT(base64_decode("Zm9v", out, sizeof(out)), ==, 3);
	CHECK(memcmp(out, "foo", 3) == 0);
	CHECK_INT(base64_decode("Zm9vYmFy", out, sizeof(out)), ==, 6);
	CHECK(memcmp(out, "foobar", 6) == 0);
	CHECK_INT(base64_decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", out,
	    sizeof(out)), ==, 21);
	CHECK(memcmp(out, "\0tim\0tanstaaftanstaaf", 21) == 0);
	/* refused: length, alphabet, padding place, non-zero pad bits */
	CHECK(base64_decode("Zg=", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zg", out, sizeof(out)) == -1);
	CHECK(base64_decode("Z===", out, sizeof(out)) == -1);
	CHECK(base64_decode("====", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zg=a", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zg==Zg==", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zh==", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zm9=", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zm9v YmFy", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zm9-", out, sizeof(out)) == -1);
	CHECK(base64_decode("Zm9vYmFy", out, 5) == -1);	/* too long */
}

static int
plain(const char *msg, size_t len, const char *user, const char *pass)
{
	unsigned char	 buf[1024];
	char		*u, *p;

	memcpy(buf, msg, len);
	if (sasl_plain_parse(buf, len, &u, &p) == -1)
		return user == NULL;
	return user != NULL && strcmp(u, user) == 0 && strcmp(p, pass) == 0;
}

static void
test_sasl_plain(void)
{
	unsigned char	 big[600];
	char		*u, *p;

	CHECK(plain("\0tim\0tanstaaftanstaaf", 21, "tim", "tanstaaftanstaaf"));
	CHECK(plain("tim\0tim\0pw", 10, "tim", "pw"));
	CHECK(plain("\0tim\0", 5, "tim", ""));
	CHECK(plain("bob\0tim\0pw", 10, NULL, NULL));	/* other authzid */
	CHECK(plain("\0\0pw", 4, NULL, NULL));		/* empty authcid */
	CHECK(plain("\0timpw", 6, NULL, NULL));		/* one NUL */
	CHECK(plain("timpw", 5, NULL, NULL));
	CHECK(plain("\0tim\0p\0w", 8, NULL, NULL));	/* three NULs */
	CHECK(plain("", 0, NULL, NULL));
	/* each field at most 255 octets */
	memset(big, 'a', sizeof(big));
	big[0] = '\0';
	big[256] = '\0';
	REQUIRE(sasl_plain_parse(big, 257 + 255, &u, &p) == 0);
	CHECK_INT(strlen(u), ==, 255);
	CHECK_INT(strlen(p), ==, 255);
	memset(big, 'a', sizeof(big));
	big[0] = '\0';
	big[256] = '\0';
	CHECK(sasl_plain_parse(big, 257 + 256, &u, &p) == -1); /* pass 256 */
	memset(big, 'a', sizeof(big));
	big[0] = '\0';
	big[257] = '\0';
	CHECK(sasl_plain_parse(big, 258 + 10, &u, &p) == -1); /* authcid 256 */
}

static void
test_valid_msg(void)
{
	struct mbox_msg	 m;

	memset(&m, 0, sizeof(m));
	m.from = 0;
	m.off = 10;
	m.len = 5;
	m.size = 7;
	strlcpy(m.uidl, "abc", sizeof(m.uidl));
	CHECK(msgtab_valid(&m));
	m.size = 4;
	CHECK(!msgtab_valid(&m));	/* smaller than raw */
	m.size = 13;
	CHECK(!msgtab_valid(&m));	/* more than 2 * len + 2 */
	m.size = 7;
	m.off = 0;
	CHECK(!msgtab_valid(&m));	/* body before its From_ line */
	m.off = 10;
	m.len = -1;
	CHECK(!msgtab_valid(&m));
	m.len = 5;
	m.uidl[0] = '\0';
	CHECK(!msgtab_valid(&m));
	strlcpy(m.uidl, "a b", sizeof(m.uidl));
	CHECK(!msgtab_valid(&m));
	memset(m.uidl, 'x', sizeof(m.uidl));
	CHECK(!msgtab_valid(&m));	/* not terminated */
}

/* Adds an entry to t and checks that the table gives it back. */
static void
check_roundtrip(struct msgtab *t, off_t off, off_t len, off_t size,
    const char *uidl)
{
	struct mbox_msg	 m;
	char		 id[UIDL_SIZE];
	off_t		 o, l;
	size_t		 i = t->count;

	memset(&m, 0, sizeof(m));
	m.from = off - 1;
	m.off = off;
	m.len = len;
	m.size = size;
	strlcpy(m.uidl, uidl, sizeof(m.uidl));
	CHECK(msgtab_add(t, &m) == 0);
	CHECK(t->count == i + 1);
	msgtab_span(t, i, &o, &l);
	CHECK(o == off && l == len);
	CHECK(msgtab_size(t, i) == size);
	CHECK(strcmp(msgtab_uidl(t, i, id), uidl) == 0);
}

static void
test_msgtab(void)
{
	static struct msgtab	 t;
	const off_t		 big = (off_t)5 << 30;	/* over 32 bits */
	size_t			 i, count;
	long long		 octets;

	check_roundtrip(&t, 6, 100, 110, "0123456789abcdef0123456789abcdef");
	check_roundtrip(&t, 200, 0, 0, "ffffffffffffffff0000000000000000");
	/* not 32 lower-case hex digits: kept as text */
	check_roundtrip(&t, 300, 5, 7, "0123456789abcdef0123456789abcdef.2");
	check_roundtrip(&t, 400, 5, 7, "0123456789ABCDEF0123456789abcdef");
	check_roundtrip(&t, 500, 5, 7, "0123456789abcdef0123456789abcde");
	check_roundtrip(&t, 600, 5, 7, "1700000000.M1P2.host,S=5:2,S");
	check_roundtrip(&t, 700, 5, 7, "x");
	/* lengths a 32-bit field cannot hold */
	check_roundtrip(&t, 800, big, 2 * big + 2, "a");
	check_roundtrip(&t, MAX_MAILDROP_SIZE, big, big + ((off_t)1 << 32),
	    "0123456789abcdef0123456789abcdef");
	check_roundtrip(&t, 900, UINT32_MAX, UINT32_MAX, "b");
	for (i = 0; i < 3000; i++)
		check_roundtrip(&t, 1000 + i, i, i + i / 2, i % 2 ?
		    "00112233445566778899aabbccddeeff" : "twin.1");
	if ((t.deleted = calloc(t.count / 8 + 1, 1)) == NULL)
		fatal("calloc");
	msgtab_mark(t.deleted, 0);
	msgtab_mark(t.deleted, 9);
	CHECK(msgtab_marked(t.deleted, 0) && msgtab_marked(t.deleted, 9));
	CHECK(!msgtab_marked(t.deleted, 1) && !msgtab_marked(t.deleted, 8));
	msgtab_totals(&t, &count, &octets);
	CHECK(count == t.count - 2);
	msgtab_reset(&t);
	CHECK(!msgtab_marked(t.deleted, 0) && !msgtab_marked(t.deleted, 9));
	msgtab_totals(&t, &count, &octets);
	CHECK(count == t.count);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	UNIT_RUN(test_parse_uint);
	UNIT_RUN(test_parse_number);
	UNIT_RUN(test_parse_verb_args);
	UNIT_RUN(test_base64);
	UNIT_RUN(test_sasl_plain);
	UNIT_RUN(test_valid_msg);
	UNIT_RUN(test_msgtab);
	return unit_end();
}
