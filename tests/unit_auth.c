/*
 * unit_auth.c: the passwd-file parser and the password checks of the
 * monitor, against real crypt(3) hashes in a temporary -a file.  Runs as
 * root: the file must be root-owned for auth.c to use it.
 */
#include "../auth.c"
#include "unit.h"

static char	 passwd_path[] = "/tmp/unit_auth.XXXXXX";

static void
write_passwd(const char *text, mode_t mode)
{
	FILE	*f;

	if ((f = fopen(passwd_path, "w")) == NULL)
		return;
	fputs(text, f);
	fclose(f);
	chmod(passwd_path, mode);
}

static void
test_valid_name(void)
{
	char	 long_name[MAX_USER + 2];

	CHECK(auth_valid_name("alice"));
	CHECK(auth_valid_name("alice@example.org"));
	CHECK(auth_valid_name("a.b-c_d"));
	CHECK(!auth_valid_name(""));
	CHECK(!auth_valid_name("."));
	CHECK(!auth_valid_name(".."));
	CHECK(!auth_valid_name("a/b"));
	CHECK(!auth_valid_name("a:b"));
	CHECK(!auth_valid_name("a b"));
	CHECK(!auth_valid_name("a\tb"));
	CHECK(!auth_valid_name("\xc3\xa9"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	CHECK(!auth_valid_name(long_name));
	long_name[MAX_USER] = '\0';
	CHECK(auth_valid_name(long_name));
}

static int
parses(const char *text)
{
	char			 line[512];
	struct auth_entry	 e;
	const char		*why;

	strlcpy(line, text, sizeof(line));
	return passwd_parse_line(line, &e, &why) == 0;
}

static void
test_parse_line(void)
{
	char			 line[] = "bob:$6$x$y:1001:100:Bob:/home/bob:/bin/sh";
	struct auth_entry	 e;
	const char		*why;

	REQUIRE(passwd_parse_line(line, &e, &why) == 0);
	CHECK_STR(e.name, "bob");
	CHECK_STR(e.hash, "$6$x$y");
	CHECK_INT(e.uid, ==, 1001);
	CHECK_INT(e.gid, ==, 100);
	CHECK_STR(e.home, "/home/bob");
	CHECK(parses("a:h:1:1:::/bin/sh") == 0);	/* home not absolute */
	CHECK(parses("a:h:1:1::/:"));
	CHECK(!parses("a:h:1:1::/"));			/* six fields */
	CHECK(!parses("a:h:1:1::/::"));			/* eight fields */
	CHECK(!parses(":h:1:1::/:"));			/* no name */
	CHECK(!parses("a:h:x:1::/:"));
	CHECK(!parses("a:h:1:-1::/:"));
	CHECK(!parses("a:h:4294967295:1::/:"));		/* (uid_t)-1 */
	CHECK(!parses("a:h:99999999999:1::/:"));
	CHECK(!parses("a:h::1::/:"));
	CHECK(!parses("a:h:1 :1::/:"));
	CHECK(!parses(""));
}

static void
test_check_file(void)
{
	struct auth_user	 u;
	char			 text[2048];
	const char		*h;

	/* sha512crypt of "secret", made here so the test needs no tool */
	h = crypt("secret", "$6$unitsalt");
	REQUIRE(h != NULL);
	snprintf(text, sizeof(text),
	    "# virtual users\n"
	    "\n"
	    "broken line\n"
	    "alice:%s:61001:61002:Alice:/home/alice:/bin/false\n"
	    "root2:%s:0:0::/root:/bin/sh\n"
	    "locked:!%s:61003:61003::/:/bin/sh\n"
	    "star:*:61004:61004::/:/bin/sh\n"
	    "empty::61005:61005::/:/bin/sh\n"
	    "alice:%s:61009:61009::/dup:/bin/sh\n", h, h, h, h);
	write_passwd(text, 0600);
	CHECK_INT(auth_check_file(passwd_path), ==, 1);
	CHECK_INT(auth_check(passwd_path, "alice", "secret", &u), ==,
	    AUTH_OK);
	CHECK_STR(u.name, "alice");
	CHECK_INT(u.uid, ==, 61001);
	CHECK_INT(u.gid, ==, 61002);
	CHECK_STR(u.home, "/home/alice");
	CHECK_INT(auth_check(passwd_path, "alice", "Secret", &u), ==,
	    AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "alice", "", &u), ==, AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "nobody", "secret", &u), ==,
	    AUTH_UNKNOWN);
	CHECK_INT(auth_check(passwd_path, "root2", "secret", &u), ==,
	    AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "locked", "secret", &u), ==,
	    AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "star", "*", &u), ==, AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "empty", "", &u), ==, AUTH_REFUSED);
	CHECK_INT(auth_check(passwd_path, "a/b", "secret", &u), ==,
	    AUTH_UNKNOWN);
	/* a file others may write is not trusted at all */
	write_passwd(text, 0622);
	CHECK_INT(auth_check(passwd_path, "alice", "secret", &u), ==,
	    AUTH_ERROR);
	CHECK_INT(auth_check_file(passwd_path), ==, -1);
}

static void
test_long_line(void)
{
	struct auth_user	 u;
	char			 text[MAX_PASSWD_LINE * 3];
	const char		*h = crypt("pw", "$6$unitsalt");
	size_t			 n;

	REQUIRE(h != NULL);
	memset(text, 'x', MAX_PASSWD_LINE + 10);
	n = MAX_PASSWD_LINE + 10;
	n += snprintf(text + n, sizeof(text) - n,
	    ":%s:61001:61001::/:/bin/sh\nbob:%s:61002:61002::/:/bin/sh\n",
	    h, h);
	write_passwd(text, 0600);
	CHECK_INT(auth_check_file(passwd_path), ==, 1);
	CHECK_INT(auth_check(passwd_path, "bob", "pw", &u), ==, AUTH_OK);
}

/* The dummy for unknown users is the costliest hash: the cost model
 * must order what libxcrypt writes. */
static void
test_cost(void)
{
	char	 best[CRYPT_OUTPUT_SIZE] = "";

	CHECK(auth_cost("$y$jBT$abc$def") > auth_cost("$y$j9T$abc$def"));
	CHECK(auth_cost("$y$j9T$abc$def") > auth_cost("$6$saltsalt$hash"));
	CHECK(auth_cost("$6$rounds=50000$s$h") > auth_cost("$6$saltsalt$hash"));
	CHECK(auth_cost("$6$saltsalt$hash") > auth_cost("$1$salt$hash"));
	CHECK(auth_cost("$2b$12$abcdefghijklmnopqrstuv") >
	    auth_cost("$2b$10$abcdefghijklmnopqrstuv"));
	CHECK(auth_cost("$2b$10$abcdefghijklmnopqrstuv") >
	    auth_cost("$6$saltsalt$hash"));
	CHECK(auth_cost("unknown") == 0);
	CHECK(auth_cost("$y$") == 0);
	CHECK(auth_cost("$2b$1") == 0);
	auth_costlier(best, "$6$saltsalt$hash");
	auth_costlier(best, "$y$j9T$abc$def");
	auth_costlier(best, "$2b$05$abcdefghijklmnopqrstuv");
	CHECK_STR(best, "$y$j9T$abc$def");
	/* what the system default is made of, whatever login.defs says */
	CHECK(auth_cost(auth_default_setting()) >=
	    auth_cost("$y$j9T$abc$def"));
}

int
main(int argc, char *argv[])
{
	int	 fd, rv;

	if ((fd = mkstemp(passwd_path)) == -1)
		return 1;
	close(fd);
	log_init(1, 0);
	unit_init(argc, argv);
	UNIT_RUN(test_valid_name);
	UNIT_RUN(test_parse_line);
	UNIT_RUN(test_check_file);
	UNIT_RUN(test_long_line);
	UNIT_RUN(test_cost);
	rv = unit_end();
	unlink(passwd_path);
	return rv;
}
