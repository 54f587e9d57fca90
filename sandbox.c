/*
 * sandbox.c: the last wall around each child, raised right before its
 * loop.  On Linux a seccomp filter lets a process make only the system
 * calls its loop needs, and kills it on any other; the maildrop process is
 * also confined by Landlock, where the kernel has it, to the directory of
 * its maildrop.  On OpenBSD pledge and unveil say the same.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pop3d.h"

#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define SECCOMP_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH	AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define SECCOMP_ARCH	AUDIT_ARCH_I386
void
sandbox_maildrop_file(const char *dir, const char *mbox)
{
	char	 journal[PATH_MAX];

	/* as Landlock: the directory's other files may be written, not read */
	if (unveil(dir, "wc") == -1 || unveil(mbox, "rw") == -1)
		fatal("unveil");
	if ((size_t)snprintf(journal, sizeof(journal), "%s%s", mbox,
	    JOURNAL_SUFFIX) < sizeof(journal) &&
	    access(journal, F_OK) == 0 && unveil(journal, "rw") == -1)
		fatal("unveil");
	if (unveil(NULL, NULL) == -1)
		fatal("unveil");
	if (pledge("stdio rpath wpath cpath flock sendfd recvfd", NULL) == -1)
		fatal("pledge");
}

#else
#error "sandbox.c: add this architecture's AUDIT_ARCH_ value"
#endif

/* Test and debug builds trap instead of killing, to name the call. */
#ifdef SANDBOX_DEBUG
#define SECCOMP_DENY	SECCOMP_RET_TRAP
#else
#define SECCOMP_DENY	SECCOMP_RET_KILL_PROCESS
#endif

#define ALLOW(nr)							\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),		\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SECCOMP_LO	0
#else
#define SECCOMP_LO	4
#endif
#define SECCOMP_ARG_LO(n)	(offsetof(struct seccomp_data, args[n]) + \
				    SECCOMP_LO)
#define SECCOMP_ARG_HI(n)	(offsetof(struct seccomp_data, args[n]) + \
				    4 - SECCOMP_LO)
#define SECCOMP_LOAD_NR							\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))

/*
 * nr only when its argument arg (an int: the kernel ignores the upper
 * 32 bits) is val; otherwise the call number is loaded again and the
 * following rules decide, so several values are several lines.
 */
#define ALLOW_ARG(nr, arg, val)						\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4),		\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARG_LO(arg)),	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (val), 0, 1),		\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),			\
	SECCOMP_LOAD_NR

/*
 * nr only when its argument arg (an unsigned long) has no bit outside
 * mask, as OpenSSH's SC_ALLOW_ARG_MASK: mmap without PROT_EXEC.
 */
#define ALLOW_ARG_MASK(nr, arg, mask)					\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 7),		\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARG_LO(arg)),	\
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)(mask)),	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),		\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARG_HI(arg)),	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),		\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),			\
	SECCOMP_LOAD_NR

/* nr fails with errno err, without running. */
#define FAIL_ERRNO(nr, err)						\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),		\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err))

/* The flags pthread_create gives clone: a thread, never a process. */
#define CLONE_THREAD_FLAGS	(CLONE_VM | CLONE_FS | CLONE_FILES |	\
	CLONE_SYSVSEM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SETTLS |	\
	CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/* The filter's head: the right architecture, then load the call. */
#define FILTER_HEAD							\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS,				\
	    offsetof(struct seccomp_data, arch)),			\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0),	\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),		\
	SECCOMP_LOAD_NR

/* Calls every process needs to run C at all. */
#define ALLOW_RUNTIME							\
	ALLOW(__NR_brk),		/* malloc */			\
	/* malloc, large buffers, the maildrop process's mapping of \
	 * the mbox it scans: never executable memory */		\
	ALLOW_ARG_MASK(__NR_mmap, 2, PROT_READ | PROT_WRITE),		\
	ALLOW(__NR_munmap),						\
	ALLOW(__NR_mremap),		/* realloc of the index */	\
	ALLOW(__NR_madvise),		/* free; the scan's hint */	\
	ALLOW(__NR_futex),		/* libc and libcrypto locks */	\
	ALLOW(__NR_clock_gettime),	/* when the vDSO cannot */	\
	ALLOW(__NR_getpid),		/* the log line's pid */	\
	ALLOW(__NR_sendmsg),		/* IPC, the log to the monitor */ \
	ALLOW(__NR_recvmsg),		/* IPC */			\
	ALLOW(__NR_close),						\
	ALLOW(__NR_rt_sigreturn),					\
	/* a poll or sleep interrupted by SIGSTOP resumes with it */	\
	ALLOW(__NR_restart_syscall),					\
	ALLOW(__NR_exit),						\
	ALLOW(__NR_exit_group)						\
	ALLOW_SANITIZER

#ifdef POP3D_SANITIZE
/* make SANITIZE=1 only: what the sanitizers' runtime does at exit or on
 * a report (which then ends the process all the same). */
#define ALLOW_SANITIZER ,						\
	ALLOW(__NR_sigaltstack),					\
	ALLOW(__NR_rt_sigaction),					\
	ALLOW(__NR_rt_sigprocmask),					\
	ALLOW(__NR_sched_yield),					\
	ALLOW(__NR_sched_getaffinity),	/* a thread's start */		\
	ALLOW(__NR_gettid),						\
	ALLOW(__NR_tgkill),						\
	ALLOW(__NR_prlimit64),						\
	ALLOW(__NR_write)

/* LeakSanitizer stops the world with ptrace at exit: no sandbox allows
 * that, so leaks are left to the unit tests. */
const char	*__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#else
#define ALLOW_SANITIZER
#endif

/*
 * The session process: the client socket, its two IPC sockets and the
 * read-only mailbox descriptor it is handed.  No open, no socket, no
 * exec, no kill.
 */
static const struct sock_filter session_filter[] = {
	FILTER_HEAD,
	ALLOW_RUNTIME,
	ALLOW(__NR_read),		/* the client, plain or TLS */
	ALLOW(__NR_write),
	ALLOW(__NR_poll),		/* the inactivity timeout */
	ALLOW(__NR_pread64),		/* RETR and TOP from the mailbox */
	ALLOW(__NR_getrandom),		/* libcrypto reseeding */
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_DENY)
};

/*
 * The maildrop process: its mailbox, journal and dot-lock (Landlock keeps
 * these to one directory), and its two IPC sockets.  No socket, no
 * exec, no fork.
 */
static const struct sock_filter maildrop_filter[] = {
	FILTER_HEAD,
	ALLOW_RUNTIME,
	ALLOW(__NR_openat),		/* maildrop, journal, lock files */
	ALLOW(__NR_newfstatat),		/* fstat, and the dot-lock's age */
	ALLOW(__NR_fstat),
	/* fcntl: the mailbox lock, and clearing O_NONBLOCK after open */
	ALLOW_ARG(__NR_fcntl, 1, F_SETLK),
	ALLOW_ARG(__NR_fcntl, 1, F_SETLKW),	/* waited for, to a deadline */
	ALLOW_ARG(__NR_fcntl, 1, F_SETFL),
	ALLOW(__NR_pread64),		/* scan and commit */
	ALLOW(__NR_pwrite64),		/* commit, the index file */
	ALLOW(__NR_copy_file_range),	/* commit, in the kernel */
	ALLOW(__NR_fsync),
	ALLOW(__NR_fdatasync),
	ALLOW(__NR_sync_file_range),	/* commit: writeback started early */
	ALLOW(__NR_ftruncate),
	ALLOW(__NR_lseek),		/* SEEK_DATA: a scratch area's holes */
	ALLOW(__NR_fadvise64),		/* sequential scan */
	ALLOW(__NR_linkat),		/* NFS-safe dot-lock */
	ALLOW(__NR_unlinkat),		/* dot-lock and journal removal */
	ALLOW(__NR_uname),		/* gethostname for the dot-lock */
	ALLOW(__NR_getuid),		/* owner checks */
	ALLOW(__NR_sysinfo),		/* qsort sizes its buffer by it */
	ALLOW(__NR_clock_nanosleep),	/* waiting for a busy lock */
	ALLOW(__NR_nanosleep),
	ALLOW(__NR_setitimer),		/* the deadline of a fcntl lock wait */
	ALLOW(__NR_fstatfs),		/* a dot-lock on a network fs? */
	ALLOW(__NR_renameat2),		/* a stale journal set aside */
#ifdef __NR_renameat
	ALLOW(__NR_renameat),
#endif
	ALLOW(__NR_write),		/* stderr if the monitor is gone */
#ifdef __NR_unlink
	ALLOW(__NR_unlink),
	ALLOW(__NR_link),
	ALLOW(__NR_open),
	ALLOW(__NR_stat),
	ALLOW(__NR_rename),
#endif
	/* kill(pid, 0) only: is the pid in a dot-lock alive? */
	ALLOW_ARG(__NR_kill, 1, 0),
	/*
	 * The scan's second thread (mbox.c): clone with exactly the flags
	 * of pthread_create only.  The thread shares everything and stays
	 * under this filter and this Landlock domain, as its creator's
	 * credentials (the mail user's: it starts long after the drop).
	 * clone3 reads its flags from memory, which a filter cannot: it
	 * fails with ENOSYS, and glibc falls back to clone.
	 */
	ALLOW_ARG(__NR_clone, 0, CLONE_THREAD_FLAGS),
#ifdef __NR_clone3
	FAIL_ERRNO(__NR_clone3, ENOSYS),
#endif
	ALLOW(__NR_rt_sigprocmask),	/* around the clone */
#ifdef __SIGRTMIN
	/* the first thread: glibc's handler of its setuid signal */
	ALLOW_ARG(__NR_rt_sigaction, 0, __SIGRTMIN + 1),
#endif
	ALLOW(__NR_set_robust_list),	/* the thread's start */
	/* its malloc arena grows by mprotect: never executable */
	ALLOW_ARG_MASK(__NR_mprotect, 2, PROT_READ | PROT_WRITE),
#ifdef __NR_rseq
	ALLOW(__NR_rseq),
#endif
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_DENY)
};

/*
 * The maildrop process of a Maildir: it reads new/ and cur/, opens
 * messages read-only to pass them on, and unlinks and renames at QUIT.
 * It writes no file but the index it was handed open, locks nothing and
 * makes no link.
 */
static const struct sock_filter maildir_filter[] = {
	FILTER_HEAD,
	ALLOW_RUNTIME,
	ALLOW(__NR_openat),		/* directories, messages read-only */
	ALLOW(__NR_getdents64),		/* readdir of new/ and cur/ */
	ALLOW(__NR_newfstatat),		/* is a message where it was */
	ALLOW(__NR_fstat),
	/* fdopendir checks its descriptor's mode and sets FD_CLOEXEC */
	ALLOW_ARG(__NR_fcntl, 1, F_GETFL),
	ALLOW_ARG(__NR_fcntl, 1, F_SETFD),
	ALLOW(__NR_pread64),		/* the scan's CRLF sizes, the index */
	ALLOW(__NR_pwrite64),		/* the index file, open already */
	ALLOW(__NR_ftruncate),
	ALLOW(__NR_faccessat),		/* a seen name already taken */
#ifdef __NR_faccessat2
	ALLOW(__NR_faccessat2),
#endif
	ALLOW(__NR_renameat2),		/* marking seen: new/ to cur/ */
	ALLOW(__NR_unlinkat),		/* deleting */
	ALLOW(__NR_fsync),		/* the directories, after QUIT */
	ALLOW(__NR_getuid),		/* owner checks */
	ALLOW(__NR_sysinfo),		/* qsort sizes its buffer by it */
	ALLOW(__NR_write),		/* stderr if the monitor is gone */
#ifdef __NR_renameat
	ALLOW(__NR_renameat),
#endif
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_DENY)
};

#ifdef SANDBOX_DEBUG
static void
sandbox_sigsys(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)ctx;
	fatalx("sandbox: system call %d not allowed", info->si_syscall);
}
#endif

/*
 * Test builds only: valgrind runs the guest's system calls itself and
 * cannot live under the guest's filter, so the valgrind run of the test
 * suite turns the sandbox off.  The normal binary has no such switch.
 */
static int
sandbox_disabled(void)
{
#ifdef POP3D_TEST_HOOKS
	if (getenv("POP3D_TEST_NO_SANDBOX") != NULL) {
		log_info("test build: no sandbox");
		return 1;
	}
#endif
	return 0;
}

static void
sandbox_seccomp(const struct sock_filter *filter, size_t len)
{
	struct sock_fprog	 prog;
#ifdef SANDBOX_DEBUG
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		fatal("sigaction");
#endif
	prog.len = len;
	prog.filter = (struct sock_filter *)(uintptr_t)filter;
	/* no_new_privs: the filter cannot be escaped through a setuid exec */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
		fatal("seccomp");
}

/* Rights newer than the headers of the oldest system pop3d builds on. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER	(1ULL << 13)	/* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)	/* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)	/* ABI 5 */
#endif

#define LL_FILE_RW	(LANDLOCK_ACCESS_FS_READ_FILE |			\
			    LANDLOCK_ACCESS_FS_WRITE_FILE |		\
			    LANDLOCK_ACCESS_FS_TRUNCATE)

/* Every file system right this kernel knows: all are refused unless a
 * rule grants them. */
static uint64_t
landlock_handled(int abi)
{
	uint64_t	 all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return all;
}

/*
 * Grants access (within what the ruleset handles) to path: a directory
 * and what is beneath it, or, with file set, that regular file alone
 * and only if it exists now.
 */
static void
landlock_allow(int rfd, uint64_t handled, const char *path, int file,
    uint64_t access)
{
	struct landlock_path_beneath_attr rule;
	struct stat			 st;
	int				 fd;

	fd = open(path, O_PATH | O_CLOEXEC | (file ? O_NOFOLLOW : O_DIRECTORY));
	if (fd == -1 || fstat(fd, &st) == -1 || (file && !S_ISREG(st.st_mode))) {
		/* nothing to allow: every access to it is refused */
		log_debug("Landlock: %s: %s", path, fd == -1 ? strerror(errno) :
		    "not a regular file");
		if (fd != -1)
			close(fd);
		return;
	}
	memset(&rule, 0, sizeof(rule));
	rule.allowed_access = access & handled;
	rule.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
	    &rule, 0) == -1)
		fatal("landlock_add_rule %s", path);
	close(fd);
}

/*
 * Landlock: from now on only the maildrop's files, for the operations
 * the maildrop process does on them.  With mbox set, dir is the
 * directory of the mbox file mbox: that file may be read and written;
 * in the directory, files may be listed, created, written and removed,
 * for the dot-lock and the journal, which do not exist yet and so
 * cannot have rules of their own (a file created without the right to
 * write it stays behind empty: a dot-lock must hold its pid); no other
 * file may be read.  A journal left by an interrupted commit, and a
 * dot-lock, that are there now may be read.  Without mbox, dir is a Maildir: read, and its
 * files unlinked and moved from new/ to cur/ (REFER: before ABI 2 the
 * kernel refuses such moves, and seen marking fails, logged); nothing
 * in it is written.  Skipped where the kernel lacks Landlock (the
 * seccomp filter still holds).
 */
static void
sandbox_landlock(const char *dir, const char *mbox)
{
	struct landlock_ruleset_attr	 attr;
	char				 path[PATH_MAX];
	uint64_t			 handled;
	int				 abi, rfd;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		log_debug("Landlock not available, maildrop not confined to "
		    "%s", dir);
		return;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = handled = landlock_handled(abi);
	if ((rfd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr),
	    0)) == -1)
		fatal("landlock_create_ruleset");
	if (mbox == NULL)
		landlock_allow(rfd, handled, dir, 0,
		    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		    LANDLOCK_ACCESS_FS_REFER);
	else {
		landlock_allow(rfd, handled, dir, 0,
		    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
		    LANDLOCK_ACCESS_FS_REMOVE_FILE |
		    LANDLOCK_ACCESS_FS_WRITE_FILE);
		landlock_allow(rfd, handled, mbox, 1, LL_FILE_RW);
		if ((size_t)snprintf(path, sizeof(path), "%s%s", mbox,
		    JOURNAL_SUFFIX) < sizeof(path))
			landlock_allow(rfd, handled, path, 1, LL_FILE_RW);
		/* a dot-lock already there: whose pid it holds tells if its
		 * holder is dead (one made later is judged by its age) */
		if ((size_t)snprintf(path, sizeof(path), "%s.lock", mbox) <
		    sizeof(path))
			landlock_allow(rfd, handled, path, 1,
			    LANDLOCK_ACCESS_FS_READ_FILE);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_landlock_restrict_self, rfd, 0) == -1)
		fatal("landlock_restrict_self");
	close(rfd);
}

void
sandbox_session(void)
{
	if (sandbox_disabled())
		return;
	sandbox_seccomp(session_filter,
	    sizeof(session_filter) / sizeof(session_filter[0]));
}

void
sandbox_maildrop(const char *dir, int maildir)
{
	if (sandbox_disabled())
		return;
	if (!maildir)
		fatalx("sandbox_maildrop: an mbox takes sandbox_maildrop_file");
	sandbox_landlock(dir, NULL);
	sandbox_seccomp(maildir_filter,
	    sizeof(maildir_filter) / sizeof(maildir_filter[0]));
}

void
sandbox_maildrop_file(const char *dir, const char *mbox)
{
	if (sandbox_disabled())
		return;
	sandbox_landlock(dir, mbox);
	sandbox_seccomp(maildrop_filter,
	    sizeof(maildrop_filter) / sizeof(maildrop_filter[0]));
}

#elif defined(__OpenBSD__)

void
sandbox_session(void)
{
	/* the client, the IPC sockets, and a descriptor to receive */
	if (pledge("stdio recvfd", NULL) == -1)
		fatal("pledge");
}

void
sandbox_maildrop(const char *dir, int maildir)
{
	if (unveil(dir, maildir ? "rc" : "rwc") == -1 ||
	    unveil(NULL, NULL) == -1)
		fatal("unveil");
	if (pledge(maildir ? "stdio rpath cpath sendfd recvfd" :
	    "stdio rpath wpath cpath flock sendfd recvfd", NULL) == -1)
		fatal("pledge");
}

#else
#error "pop3d has no sandbox for this system: add one to sandbox.c"
#endif

#ifdef POP3D_TEST_HOOKS
/*
 * Test builds only, right after the sandbox is up.  With
 * POP3D_TEST_SANDBOX_ESCAPE=WHO:WHAT the process WHO (session or
 * maildrop) tries WHAT (open, mmap-exec, mprotect-exec), which its
 * filter must kill it for; "1" is session:open.  With
 * POP3D_TEST_OPEN_PROBE=PATH:PATH... the maildrop process tries to read
 * each file and logs what came of it (Landlock decides).
 */
void
sandbox_test_escape(const char *who)
{
	const char	*how = getenv("POP3D_TEST_SANDBOX_ESCAPE");
	char		 probe[4096], *path, *rest;
	size_t		 n = strlen(who);
	void		*p;
	int		 fd;

	if (strcmp(who, "maildrop") == 0 &&
	    getenv("POP3D_TEST_OPEN_PROBE") != NULL) {
		strlcpy(probe, getenv("POP3D_TEST_OPEN_PROBE"), sizeof(probe));
		for (rest = probe; (path = strsep(&rest, ":")) != NULL;) {
			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			log_info("test build: open %s: %s", path,
			    fd == -1 ? strerror(errno) : "opened");
			if (fd != -1)
				close(fd);
		}
	}
	if (how != NULL && strcmp(how, "1") == 0)
		how = "session:open";
	if (how == NULL || strncmp(how, who, n) != 0 || how[n] != ':')
		return;
	how += n + 1;
	log_info("test build: trying %s", how);
	if (strcmp(how, "open") == 0)
		(void)open("/etc/passwd", O_RDONLY);
	else if (strcmp(how, "mmap-exec") == 0)
		(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else if (strcmp(how, "mprotect-exec") == 0 &&
	    (p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	    0)) != MAP_FAILED)
		(void)mprotect(p, 4096, PROT_READ | PROT_EXEC);
	log_info("test build: %s survived the sandbox", how);
}
#endif
