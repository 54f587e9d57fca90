/*
 * unit_maildir.c: the Maildir name parser (unique part, info, flags,
 * ,S= and ,W=), the UIDL rule, the seen name, the CRLF size against the
 * RETR transform, and the scan, the lookup after a rename and the commit
 * on a real directory tree.  maildir.c is included so that its static
 * functions can be tested as they are.
 */
#include "../maildir.c"
#include "unit.h"

#include <sys/stat.h>

/* The maildrop process is linked without its sandbox. */
void
sandbox_maildrop(const char *dir, int maildir)
{
	(void)dir;
	(void)maildir;
}

static void
test_name_parse(void)
{
	struct maildir_name	 mn;
	const char		*n;

	n = "1700000000.M1P2.host,S=1000,W=1030:2,FS";
	maildir_name_parse(n, &mn);
	CHECK_INT(mn.uniquelen, ==, strchr(n, ':') - n);
	CHECK_STR(mn.info, "2,FS");
	CHECK_STR(mn.flags, "FS");
	CHECK_INT(mn.time, ==, 1700000000);
	CHECK_INT(mn.s_size, ==, 1000);
	CHECK_INT(mn.w_size, ==, 1030);

	maildir_name_parse("noinfo", &mn);
	CHECK_INT(mn.uniquelen, ==, 6);
	CHECK(mn.info == NULL && mn.flags == NULL);
	CHECK_INT(mn.time, ==, -1);
	CHECK_INT(mn.s_size, ==, -1);
	CHECK_INT(mn.w_size, ==, -1);

	maildir_name_parse("123", &mn);
	CHECK_INT(mn.time, ==, 123);
	maildir_name_parse("1234567890123456789.toolong", &mn);
	CHECK_INT(mn.time, ==, -1);
	maildir_name_parse(":2,S", &mn);
	CHECK_INT(mn.uniquelen, ==, 0);
	CHECK_STR(mn.flags, "S");
	maildir_name_parse("a:1,experimental", &mn);
	CHECK_STR(mn.info, "1,experimental");
	CHECK(mn.flags == NULL);
	maildir_name_parse("a:b:2,S", &mn);
	CHECK_INT(mn.uniquelen, ==, 1);
	CHECK_STR(mn.info, "b:2,S");
	CHECK(mn.flags == NULL);
	maildir_name_parse("x:2,", &mn);
	CHECK_STR(mn.flags, "");

	/* ,S= and ,W=: digits only, whole fields, in the unique part only */
	maildir_name_parse("a,S=12x:2,", &mn);
	CHECK_INT(mn.s_size, ==, -1);
	maildir_name_parse("a,S=:2,", &mn);
	CHECK_INT(mn.s_size, ==, -1);
	maildir_name_parse("a,W=5,S=6", &mn);
	CHECK_INT(mn.w_size, ==, 5);
	CHECK_INT(mn.s_size, ==, 6);
	maildir_name_parse("a:2,S,S=7", &mn);
	CHECK_INT(mn.s_size, ==, -1);
	maildir_name_parse("a,S=99999999999999999999", &mn);
	CHECK_INT(mn.s_size, ==, -1);
	maildir_name_parse("a,X=1,S=0", &mn);
	CHECK_INT(mn.s_size, ==, 0);
	maildir_name_parse(",S=3", &mn);
	CHECK_INT(mn.s_size, ==, 3);
	CHECK_INT(mn.time, ==, -1);
}

static void
hash_uidl(const char *s, size_t n, char *out)
{
	unsigned char	 md[SHA256_DIGEST_LENGTH];
	size_t		 i;

	SHA256((const unsigned char *)s, n, md);
	strcpy(out, "sha256:");
	for (i = 0; i < 16; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static void
test_uidl(void)
{
	char	 u[UIDL_SIZE], want[UIDL_SIZE], name[100];

	maildir_uidl("1700000000.M1P2.host", 20, u);
	CHECK_STR(u, "1700000000.M1P2.host");
	/* only the unique part counts: the caller gives its length */
	maildir_uidl("abc:2,S", 3, u);
	CHECK_STR(u, "abc");
	memset(name, 'x', sizeof(name));
	maildir_uidl(name, 70, u);
	CHECK_INT(strlen(u), ==, 70);
	maildir_uidl(name, 71, u);
	hash_uidl(name, 71, want);
	CHECK_STR(u, want);
	CHECK_INT(strlen(u), ==, 39);
	maildir_uidl("tab\there", 8, u);
	hash_uidl("tab\there", 8, want);
	CHECK_STR(u, want);
	maildir_uidl("a b", 3, u);
	CHECK(strncmp(u, "sha256:", 7) == 0);
	maildir_uidl("\x7f", 1, u);
	CHECK(strncmp(u, "sha256:", 7) == 0);
	maildir_uidl("\xc3\xa9t\xc3\xa9", 6, u);
	CHECK(strncmp(u, "sha256:", 7) == 0);
	maildir_uidl("", 0, u);
	hash_uidl("", 0, want);
	CHECK_STR(u, want);
	/* different long names, different UIDLs */
	name[70] = 'y';
	maildir_uidl(name, 71, want);
	maildir_uidl(name, 72, u);
	CHECK(strcmp(u, want) != 0);
}

static void
test_seen_name(void)
{
	char	 out[NAME_MAX + 1], longname[NAME_MAX + 1];

	CHECK_INT(maildir_seen_name("a", 0, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,S");
	CHECK_INT(maildir_seen_name("a:2,", 1, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,S");
	CHECK_INT(maildir_seen_name("a:2,F", 0, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,FS");
	CHECK_INT(maildir_seen_name("a:2,RT", 1, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,RST");
	CHECK_INT(maildir_seen_name("a:2,DFPRT", 1, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,DFPRST");
	CHECK_INT(maildir_seen_name("a:2,ab", 1, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,Sab");
	CHECK_INT(maildir_seen_name("a,S=5:2,T", 0, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a,S=5:2,ST");
	/* seen already: moved out of new/ only */
	CHECK_INT(maildir_seen_name("a:2,S", 1, out, sizeof(out)), ==, 0);
	CHECK_INT(maildir_seen_name("a:2,RS", 0, out, sizeof(out)), ==, 1);
	CHECK_STR(out, "a:2,RS");
	/* info of another kind, or no room: left alone */
	CHECK_INT(maildir_seen_name("a:1,x", 0, out, sizeof(out)), ==, -1);
	CHECK_INT(maildir_seen_name("a:b:2,S", 0, out, sizeof(out)), ==, -1);
	memset(longname, 'x', NAME_MAX - 2);
	longname[NAME_MAX - 2] = '\0';
	CHECK_INT(maildir_seen_name(longname, 0, out, sizeof(out)), ==, -1);
	longname[NAME_MAX - 4] = '\0';
	CHECK_INT(maildir_seen_name(longname, 0, out, sizeof(out)), ==, 1);
	CHECK_INT(strlen(out), ==, NAME_MAX);
}

/* The CRLF size must be what the RETR transform sends before stuffing,
 * however the bytes are cut into chunks. */
static void
test_crlf_size(void)
{
	static const char	*cases[] = { "", "a", "\n", "\r", "\r\n",
				    "a\nb", "a\r\nb\n", "\n\n\r\r\n", "a\r",
				    "x\ry\r\n\nz", ".\n..\n", "\r\r\r" };
	struct crlf_count	 c, d;
	struct xform		 x;
	char			 out[64];
	size_t			 i, j, n, used, w;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = strlen(cases[i]);
		xform_init(&x, 0, -1);
		w = xform_run(&x, cases[i], n, out, &used);
		w += xform_end(&x, out + w);
		memset(&c, 0, sizeof(c));
		crlf_feed(&c, cases[i], n);
		CHECK_INT(crlf_size(&c), ==, w);
		memset(&d, 0, sizeof(d));
		for (j = 0; j < n; j++)
			crlf_feed(&d, cases[i] + j, 1);
		CHECK_INT(crlf_size(&d), ==, w);
	}
}

static char	 tree[64];

static void
put(const char *sub, const char *name, const char *data)
{
	char	 p[PATH_MAX];
	FILE	*f;

	snprintf(p, sizeof(p), "%s/%s/%s", tree, sub, name);
	if ((f = fopen(p, "w")) == NULL)
		return;
	fputs(data, f);
	fclose(f);
}

static int
exists(const char *sub, const char *name)
{
	char		 p[PATH_MAX];
	struct stat	 st;

	snprintf(p, sizeof(p), "%s/%s/%s", tree, sub, name);
	return lstat(p, &st) == 0;
}

static void
make_tree(void)
{
	char	 p[PATH_MAX];

	strlcpy(tree, "/tmp/unit_maildir.XXXXXX", sizeof(tree));
	if (mkdtemp(tree) == NULL)
		return;
	snprintf(p, sizeof(p), "%s/new", tree);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/cur", tree);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/tmp", tree);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.Sent", tree);
	mkdir(p, 0700);
}

static void
remove_tree(void)
{
	char	 cmd[sizeof(tree) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
	CHECK(system(cmd) == 0);
}

/* md on the tree, scanned; fatal paths of maildir_open never come. */
static void
scan_tree(struct maildir *md, char *path, size_t size)
{
	char	 dir[PATH_MAX];

	memset(md, 0, sizeof(*md));
	snprintf(path, size, "%s/", tree);
	md->path = path;
	md->session_fd = -1;
	md->fd = md->dirfd[0] = md->dirfd[1] = -1;
	maildir_open(md, dir, sizeof(dir));
	CHECK_INT(maildir_scan(md), ==, MBOX_OK);
}

static void
free_tree(struct maildir *md)
{
	size_t	 i;

	for (i = 0; i < md->count; i++)
		free(md->msgs[i].name);
	free(md->msgs);
	close(md->fd);
	close(md->dirfd[0]);
	close(md->dirfd[1]);
}

static void
test_scan(void)
{
	struct maildir	 md;
	char		 path[PATH_MAX], p[PATH_MAX];

	make_tree();
	put("new", "1700000300.c.host", "c\n");
	put("cur", "1700000100.a.host:2,S", "a\r\nx\n");
	put("new", "1700000200.b.host", "no newline");
	put("new", "1700000100.a.host", "twin in new/");
	put("cur", "1700000400.d.host:2,T", "twin 1");
	put("cur", "1700000400.d.host:2,ST", "twin 2");
	put("new", ".hidden", "hidden");
	put("tmp", "1700000001.tmp.host", "tmp");
	put(".Sent", "1700000002.sent.host", "sent");
	snprintf(p, sizeof(p), "%s/new/1700000500.link", tree);
	CHECK(symlink("/etc/passwd", p) == 0);
	snprintf(p, sizeof(p), "%s/new/1700000600.fifo", tree);
	(void)mkfifo(p, 0600);
	snprintf(p, sizeof(p), "%s/new/1700000700.dir", tree);
	(void)mkdir(p, 0700);
	put("new", "1700000800.other.host", "not the user's");
	snprintf(p, sizeof(p), "%s/new/1700000800.other.host", tree);
	CHECK(chown(p, getuid() + 1, getgid()) == 0);

	scan_tree(&md, path, sizeof(path));
	REQUIRE(md.count == 4);
	CHECK_STR(md.msgs[0].name, "1700000100.a.host:2,S");
	CHECK_INT(md.msgs[0].dir, ==, DIR_CUR);
	CHECK_INT(md.msgs[0].len, ==, 5);
	CHECK_INT(md.msgs[0].size, ==, 6);
	CHECK_STR(md.msgs[1].name, "1700000200.b.host");
	CHECK_INT(md.msgs[1].size, ==, 12);
	CHECK_STR(md.msgs[2].name, "1700000300.c.host");
	CHECK_INT(md.msgs[2].dir, ==, DIR_NEW);
	/* twins in one directory: the lowest name */
	CHECK_STR(md.msgs[3].name, "1700000400.d.host:2,ST");
	CHECK_INT(md.total, ==, 5 + 10 + 2 + 6);
	free_tree(&md);
	remove_tree();
}

static void
test_open_after_rename(void)
{
	struct maildir	 md;
	char		 path[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	int		 fd;

	make_tree();
	put("new", "1700000001.a.host", "message a\n");
	put("new", "1700000002.b.host", "message b\n");
	put("new", "1700000003.c.host", "message c\n");
	scan_tree(&md, path, sizeof(path));
	REQUIRE(md.count == 3);
	/* renamed by a mail reader: found by unique part and inode */
	snprintf(a, sizeof(a), "%s/new/1700000001.a.host", tree);
	snprintf(b, sizeof(b), "%s/cur/1700000001.a.host:2,RS", tree);
	CHECK(rename(a, b) == 0);
	fd = maildir_open_msg(&md, 0);
	CHECK(fd != -1);
	if (fd != -1)
		close(fd);
	CHECK_STR(md.msgs[0].name, "1700000001.a.host:2,RS");
	CHECK_INT(md.msgs[0].dir, ==, DIR_CUR);
	/* expunged: gone */
	snprintf(a, sizeof(a), "%s/new/1700000002.b.host", tree);
	CHECK(unlink(a) == 0);
	CHECK_INT(maildir_open_msg(&md, 1), ==, -1);
	/* replaced by another file of that name: not the one scanned; made
	 * before the old one goes, so that it cannot get the old inode */
	put("tmp", "1700000003.c.host", "message c\n");
	snprintf(a, sizeof(a), "%s/tmp/1700000003.c.host", tree);
	snprintf(b, sizeof(b), "%s/new/1700000003.c.host", tree);
	CHECK(rename(a, b) == 0);
	CHECK_INT(maildir_open_msg(&md, 2), ==, -1);
	free_tree(&md);
	remove_tree();
}

static void
test_commit(void)
{
	struct maildir	 md;
	char		 path[PATH_MAX], a[PATH_MAX], b[PATH_MAX];

	make_tree();
	put("new", "1700000001.a.host", "a\n");
	put("new", "1700000002.b.host:2,F", "b\n");
	put("cur", "1700000003.c.host:2,RS", "c\n");
	put("cur", "1700000004.d.host:2,T", "d\n");
	put("new", "1700000005.e.host", "e\n");
	put("new", "1700000006.f.host", "f\n");
	scan_tree(&md, path, sizeof(path));
	REQUIRE(md.count == 6);
	md.msgs[0].seen = 1;
	md.msgs[1].seen = 1;
	md.msgs[2].seen = 1;
	md.msgs[3].deleted = 1;
	md.msgs[4].deleted = md.msgs[4].seen = 1;
	md.msgs[5].deleted = 1;
	/* one renamed since the scan, one already gone */
	snprintf(a, sizeof(a), "%s/cur/1700000004.d.host:2,T", tree);
	snprintf(b, sizeof(b), "%s/cur/1700000004.d.host:2,ST", tree);
	CHECK(rename(a, b) == 0);
	snprintf(a, sizeof(a), "%s/new/1700000006.f.host", tree);
	CHECK(unlink(a) == 0);
	CHECK_INT(maildir_commit(&md), ==, 0);
	CHECK(exists("cur", "1700000001.a.host:2,S"));
	CHECK(exists("cur", "1700000002.b.host:2,FS"));
	CHECK(exists("cur", "1700000003.c.host:2,RS"));
	CHECK(!exists("cur", "1700000004.d.host:2,ST"));
	CHECK(!exists("new", "1700000005.e.host"));
	CHECK(!exists("cur", "1700000005.e.host:2,S"));
	CHECK(!exists("new", "1700000001.a.host"));
	CHECK(!exists("new", "1700000002.b.host:2,F"));
	free_tree(&md);
	remove_tree();
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	UNIT_RUN(test_name_parse);
	UNIT_RUN(test_uidl);
	UNIT_RUN(test_seen_name);
	UNIT_RUN(test_crlf_size);
	UNIT_RUN(test_scan);
	UNIT_RUN(test_open_after_rename);
	UNIT_RUN(test_commit);
	return unit_end();
}
