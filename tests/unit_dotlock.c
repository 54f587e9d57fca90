/*
 * unit_dotlock.c: what a dot-lock holds, and which locks are stale: a
 * dead pid, one made before the boot and an old one go; a live pid, 0,
 * an empty lock and garbage stay while they are young.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "../dotlock.c"

static char	 dir[] = "/tmp/unit_dotlock.XXXXXX";
static int	 dirfd = -1;

static void
test_pid(void)
{
	CHECK_INT(dotlock_pid("1234\n"), ==, 1234);
	CHECK_INT(dotlock_pid("1234"), ==, 1234);
	CHECK_INT(dotlock_pid("  77 \n"), ==, 77);
	CHECK_INT(dotlock_pid(""), ==, 0);
	CHECK_INT(dotlock_pid("0"), ==, 0);
	CHECK_INT(dotlock_pid("0\n"), ==, 0);
	CHECK_INT(dotlock_pid("-5\n"), ==, 0);
	CHECK_INT(dotlock_pid("+5\n"), ==, 0);
	CHECK_INT(dotlock_pid("012\n"), ==, 0);
	CHECK_INT(dotlock_pid("12x\n"), ==, 0);
	CHECK_INT(dotlock_pid("x12\n"), ==, 0);
	CHECK_INT(dotlock_pid("99999999999999999999\n"), ==, 0);
	CHECK_INT(dotlock_pid("4294967297\n"), ==, 0);
}

/* Makes mbox.lock holding text, changed age seconds ago. */
static void
make_lock(const char *text, time_t age)
{
	struct timespec	 ts[2];
	int		 fd;

	(void)unlinkat(dirfd, "mbox.lock", 0);
	fd = openat(dirfd, "mbox.lock", O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (utimensat(dirfd, "mbox.lock", ts, 0) == -1)
		abort();
}

static int
lock_there(void)
{
	struct stat	 st;

	return fstatat(dirfd, "mbox.lock", &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static pid_t
dead_pid(void)
{
	pid_t	 pid;

	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void
test_stale(void)
{
	char	 buf[32];

	REQUIRE(dirfd != -1);
	snprintf(buf, sizeof(buf), "%ld\n", (long)dead_pid());
	make_lock(buf, 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 1);
	CHECK(!lock_there());

	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	make_lock(buf, 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);
	CHECK(lock_there());
	/* the parent: alive, whoever owns it */
	snprintf(buf, sizeof(buf), "%ld\n", (long)getppid());
	make_lock(buf, 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);

	make_lock("0", 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);
	make_lock("", 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);
	make_lock("garbage\x01\xff", 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);
	CHECK(lock_there());

	/* the age rule, whatever it holds */
	make_lock("0", DOTLOCK_STALE + 5);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 1);
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	make_lock(buf, DOTLOCK_STALE + 5);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 1);
	CHECK(!lock_there());

	/* made before the boot: a live pid does not save it */
	REQUIRE(dotlock_boot > 0);
	make_lock(buf, time(NULL) - dotlock_boot + 10);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 1);

	/* nothing there is as good as stale; a directory is not a lock */
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 1);
	REQUIRE(mkdirat(dirfd, "mbox.lock", 0755) == 0);
	CHECK_INT(dotlock_stale(dirfd, "mbox.lock"), ==, 0);
	(void)unlinkat(dirfd, "mbox.lock", AT_REMOVEDIR);
}

static void
test_create(void)
{
	char	 buf[32];

	REQUIRE(dirfd != -1);
	snprintf(buf, sizeof(buf), "%ld\n", (long)dead_pid());
	make_lock(buf, 0);
	CHECK_INT(dotlock_create(dirfd, "mbox"), ==, 0);
	CHECK_INT(dotlock_exists(dirfd, "mbox"), ==, 1);
	CHECK_INT(dotlock_create(dirfd, "mbox"), ==, -1);
	CHECK_INT(errno, ==, EEXIST);
	CHECK_INT(dotlock_remove_dead(dirfd, "mbox", getpid() + 1), ==, 0);
	CHECK_INT(dotlock_remove_dead(dirfd, "mbox", getpid()), ==, 1);
	CHECK_INT(dotlock_exists(dirfd, "mbox"), ==, 0);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	log_init(1, 0);
	dotlock_init();
	if (mkdtemp(dir) != NULL)
		dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	UNIT_RUN(test_pid);
	UNIT_RUN(test_stale);
	UNIT_RUN(test_create);
	(void)unlinkat(dirfd, "mbox.lock", 0);
	rmdir(dir);
	return unit_end();
}
