/*
 * params.h: every limit of pop3d in one place, each with its reason.
 */
#ifndef POP3D_PARAMS_H
#define POP3D_PARAMS_H

/*
 * Symbolic links the monitor follows on the way to a directory it acts
 * in (only links root made; /var/mail may be one).  SYMLOOP_MAX is 40.
 */
#define MAX_SYMLINKS		8

/* The group that may write the mail spool directory itself (Debian's
 * /var/mail is root:mail 2775); see priv_open_dir. */
#define SPOOL_GROUP		"mail"

/* Unprivileged user of the session process, and its chroot (its home). */
#define DEFAULT_SESSION_USER	"_pop3d"

/* Where mail is, unless -m says otherwise: %u user name, %h home. */
#define DEFAULT_MAILDROP	"/var/mail/%u"

/*
 * Root-owned directory holding one lock file per user for the length of a
 * session, so a second concurrent session gets [IN-USE] (RFC 3206).
 */
#define PATH_SESSION_LOCKS	"/run/pop3d"

/*
 * RFC 1939 section 3: the autologout timer must be at least 10 minutes.
 * -t may shorten it (tests, hostile networks) but not below 1 second.
 */
#define DEFAULT_TIMEOUT		600
#define MAX_TIMEOUT		86400

/*
 * Pre-login deadline: a connection that has not logged in this many
 * seconds after it was accepted is closed, whatever it sends, so that
 * an unauthenticated client cannot hold its processes with CAPA or NOOP
 * now and then (OpenSSH's LoginGraceTime is 120 s; Dovecot and OpenSSH
 * both stay under 180).  It is a total time, not an inactivity timer.
 * A -t shorter than this shortens it too: a client allowed to be idle
 * only -t seconds gains nothing from a longer login, and so the tests
 * run the real binary with a short grace instead of a test switch.
 */
#define LOGIN_GRACE		120

/* Time a TLS handshake may take before the client is dropped (RFC 8314). */
#define HANDSHAKE_TIMEOUT	30

/*
 * RFC 2449 section 4: a command line is at most 255 octets including the
 * CRLF.  Anything longer gets one -ERR and is discarded up to its LF.
 */
#define MAX_COMMAND_LINE	255

/*
 * An AUTH PLAIN continuation carries base64 of authzid NUL authcid NUL
 * passwd, each at most 255 octets (RFC 4616): 767 octets, 1024 in base64,
 * plus the CRLF.
 */
#define MAX_SASL_LINE		1030

/* RFC 4616 section 2: each SASL PLAIN field is at most 255 octets. */
#define MAX_SASL_FIELD		255

/* Longest user name and password accepted from a client (RFC 1939 USER/PASS
 * arguments fit in one command line). */
#define MAX_USER		64
#define MAX_PASSWORD		255

/* Bad commands a client may send before the session is ended. */
#define MAX_BAD_COMMANDS	20

/* Failed logins per session; each one also costs the client a delay. */
#define MAX_AUTH_FAILURES	3

/*
 * Login attempts of any outcome per session (wrong password, [IN-USE],
 * [SYS/TEMP]): the monitor refuses a request past it as coming from a
 * compromised session process, and the session process ends the
 * connection before it.
 */
#define MAX_AUTH_REQUESTS	6
#define AUTH_FAILURE_DELAY	2	/* seconds */

/*
 * After the last allowed failure the session process has this long to
 * tell the client and exit before the monitor kills it (seconds).
 */
#define SESSION_END_GRACE	5

/*
 * How long a login waits for the user's session lock before it gets
 * [IN-USE]: the previous session lets go of it a moment after its client
 * has the answer to QUIT, and a client may log in again at once; a few
 * scheduler delays of a busy host (milliseconds).
 */
#define USERLOCK_WAIT_MS	500

/*
 * The largest maildrop accepted.  The index costs about 100 bytes a
 * message in the session process, and in the maildrop process while it
 * scans and commits, so a million messages bound both near 100 MB.  Beyond it: -ERR [SYS/PERM], nothing touched.
 */
#define MAX_MESSAGES		1000000
#define MAX_MAILDROP_SIZE	((off_t)1 << 40)	/* 1 TB */

/*
 * A first scan of an mbox at least this large is split in two at a From_
 * line near its middle, and the second half is scanned by a thread on
 * another CPU: reading a file out of the page cache is the kernel's copy,
 * and two CPUs copy nearly twice as fast.  Below it the thread's start
 * (tens of microseconds) would not pay.  The thread's stack: the scan
 * keeps its buffers on the heap.
 */
#define SCAN_SPLIT_MIN		((off_t)8 << 20)	/* 8 MB */

/*
 * An mbox is scanned mapped (1) or read (0), or (-1) whichever the
 * machine does faster, asked once per process by the first scan of
 * SCAN_PROBE_MIN bytes or more (mbox_fd.c, scan_ask_machine), on
 * SCAN_PROBE bytes of it; smaller scans before that read.  The answer
 * differs by machine as much as the cost does: 1 GB scanned on two CPUs
 * in 88 ms mapped and 118 ms read on one, while another, a virtual
 * machine whose page table changes trap to the hypervisor, maps 1 GB in
 * 0.42 s and reads it in 0.05 s.  The probe takes a fraction of a
 * millisecond; 1 MB is some hundred microseconds either way, well above
 * the clock's noise.
 */
#ifndef SCAN_MAP
#define SCAN_MAP		(-1)
#endif
#define SCAN_PROBE		((off_t)1 << 20)	/* 1 MB */
#define SCAN_PROBE_MIN		((off_t)8 << 20)	/* 8 MB */
#define SCAN_THREAD_STACK	(256 * 1024)

/*
 * The commit's scratch area (commit.c), where a short move stages its
 * bytes before they go to their place: a hole grown at the end of the
 * mailbox for the commit's length.  A step stages at most this much,
 * and at most half the free space; each step costs four fsyncs, so a
 * 200 MB mailbox is four steps.  256 MB would make it one, but every
 * reader of a mailbox a crash left mid-commit then reads 256 MB of
 * zeros until the next login (the crash tests read it at every crash
 * point, four times slower).  It is capped because the staged bytes
 * take that much more disk (and user quota, which fstatvfs does not
 * show) until the step is done.  It is part of the journal's format
 * (J4).
 */
#define COMMIT_SCRATCH		(64 * 1024 * 1024)

/*
 * A commit's copy starts the writeback of every COMMIT_PUSH bytes it
 * wrote: whole requests to the disk, yet early, so that the fsync after
 * the copy waits only for its last part.
 */
#define COMMIT_PUSH		(4 * 1024 * 1024)

/* What the system's password tools are set to write (auth.c). */
#define PATH_LOGIN_DEFS		"/etc/login.defs"

/* Longest line of a -a passwd file; longer lines are skipped and logged. */
#define MAX_PASSWD_LINE		1024

/*
 * Waiting for a busy mailbox, in milliseconds.  A delivery agent holds
 * its locks for one delivery, well under a second; 10 s leaves room for
 * a queue of them on a loaded machine and is still short of the 30 s or
 * more clients wait for a reply to PASS.  The fcntl lock is waited for
 * in the kernel, woken by a timer at the deadline and then every
 * LOCK_TICK ms; a busy dot-lock is looked at every DOTLOCK_POLL ms (a
 * delivery is ~10 ms, a look is one fstatat) and tried again at least
 * every LOCK_RETRY ms, in case its holder died.  A dot-lock taken the
 * moment it went waits LOCK_GRAB ms at most for the fcntl lock, which
 * only an agent that waits for that dot-lock can then hold.
 */
#define LOCK_WAIT		10000
#define LOCK_TICK		50
#define DOTLOCK_POLL		20
#define LOCK_RETRY		1000
#define LOCK_GRAB		200

/*
 * Dot-lock requests the monitor answers for one maildrop process: two
 * lock cycles a session (scan, commit), each trying at most this often
 * while a delivery agent holds the lock; more is a compromised process.
 */
#define MAX_MONITOR_LOCKS	4096

/* liblockfile's rule: a dot-lock older than this is stale (seconds). */
#define DOTLOCK_STALE		300

/*
 * Largest IPC payload.  Index entries and deletions go in batches that
 * fit; everything else is much smaller.
 */
#define IPC_MAX_PAYLOAD		65536

/*
 * The index goes to the session process in batches of at most this
 * many octets: each datagram is received into a buffer of
 * IPC_MAX_PAYLOAD (twice: the socket's and the message's), and a small
 * one touches only a few pages of them for the rest of the session.  A
 * thousand sends for a million messages cost nothing next to the scan.
 */
#define IPC_INDEX_BATCH		8192

/* Longest log line a child may hand to the monitor. */
#define MAX_LOG_LINE		512

/*
 * Output is built in buffers of this size so that TLS writes full-size
 * 16 KB records (RFC 8446 5.1: TLS_RECORD, the most a record holds) and
 * plain writes few system calls.  Larger is not faster: with this, the
 * mailbox read buffer, libssl's and the socket's pages the session
 * stays in the CPU's cache (a 1 GB download, medians of 5: plain 0.34
 * s of CPU, STLS 0.64, against 0.35 and 0.66 at 256 KB each).
 */
#define OUTPUT_BUFFER		(128 * 1024)
#define TLS_RECORD		16384

/*
 * libtls over a descriptor makes a system call for every record it
 * writes and two (header, then body) for every record it reads.  The
 * session gives it buffers instead: what it encrypts collects here and
 * goes out in one write for a whole OUTPUT_BUFFER of plaintext (its
 * records are 22 octets longer in TLS 1.3: the room of two records more
 * holds that), and input is read as much as has come, up to a record
 * and its overhead (RFC 8446 5.2: 2^14 + 256).
 */
#define TLS_OUTPUT_BUFFER	(OUTPUT_BUFFER + 2 * TLS_RECORD)
#define TLS_INPUT_BUFFER	(TLS_RECORD + 256)

/*
 * Read size when streaming a message from the mailbox; the transform
 * writes at most twice as much.  An mbox is read in blocks of this size
 * whatever the message's: one read serves the messages after it too.
 * Of the size of OUTPUT_BUFFER, for the same reason.
 */
#define MAILBOX_READ_BUFFER	(128 * 1024)

/*
 * The PROXY protocol (haproxy.org proxy-protocol.txt).  A v1 header is
 * one line of at most 107 octets with its CRLF (section 2.1).  A v2
 * header's address block is at most 216 octets (two AF_UNIX paths,
 * section 2.2), and the TLVs after it are bounded here: the proxies in
 * use send a few dozen octets (HAProxy's send-proxy-v2-ssl with the
 * client certificate's CN, SNI and a unique id stays well under this).
 */
#define PROXY_V1_MAX		107
#define PROXY_V2_MAX_ADDR	216
#define PROXY_V2_MAX_TLV	2048

/*
 * A trusted proxy sends its header at once, before it waits for the
 * greeting; a peer in -x that has not sent it by then is dropped, so
 * that it cannot hold a session process open for the whole -t timeout.
 */
#define PROXY_HEADER_TIMEOUT	3

/* Networks -x may name, and the longest one as text ("addr/prefix"). */
#define PROXY_MAX_NETS		32
#define PROXY_NET_MAX_TEXT	(INET6_ADDRSTRLEN + 4)

/*
 * The index cache (index.c): where it is kept unless -i says otherwise,
 * a root-owned directory holding one file per user.
 */
#define DEFAULT_INDEX_DIR	"/var/cache/pop3d"

/*
 * A mailbox that grew is checked, besides the separator at the old end,
 * at this many From_ lines of the index (the last one always), each on
 * its first INDEX_FROM_CHECK bytes: a few small reads from a file of any
 * size, yet a rewrite that moved messages around must dodge them all.
 */
#define INDEX_SAMPLES		32
#define INDEX_FROM_CHECK	256

/*
 * A change in the same clock tick as the scan would leave the mailbox's
 * times as the index recorded them.  Under the lock the scan waits until
 * the clock has moved past the mailbox's ctime, at most this long (ms; a
 * tick is 1 to 10 ms); a file system with coarser times gets no index.
 */
#define INDEX_RACY_WAIT		50

/*
 * A scan resumed from the index gives duplicate suffixes to the messages
 * it added by comparing each with all before it, up to this many of them
 * (a later login finds a few); past it, through a hash table of all.
 */
#define MBOX_SUFFIX_LINEAR	64

/*
 * The maildrop process's allocations of this size and more are mappings
 * of their own (glibc's M_MMAP_THRESHOLD, fixed): a message table freed
 * or outgrown goes back to the kernel at once instead of staying
 * resident in the heap until the next malloc_trim.  glibc's default.
 */
#define MAILDROP_MMAP_THRESHOLD	(128 * 1024)

/*
 * The size of a huge page (x86-64, arm64 with 4 KB pages): the index's
 * tables of a later login at least this large are asked for in them.
 */
#define INDEX_HUGE_PAGE		(2 * 1024 * 1024)

/*
 * UIDL: 32 hex digits of the hash, then ".N" for exact duplicates (mbox),
 * or a Maildir name's unique part: at most 70 octets (RFC 1939 section
 * 7), and the NUL.
 */
#define UIDL_SIZE		72

#endif
