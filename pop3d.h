/*
 * pop3d.h: what the process roles of pop3d share.
 */
#ifndef POP3D_H
#define POP3D_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "params.h"

/* The release: pop3d -V and the IMPLEMENTATION capability. */
#define POP3D_VERSION	"0.9"

#ifndef __dead
#define __dead	__attribute__((noreturn))
#endif

#ifndef HAVE_STRLCPY
/* compat/strlcpy.c */
size_t	 strlcpy(char *, const char *, size_t);
#endif

/*
 * mbox.c: the mbox scanner and index, UIDL, and the transform RETR and TOP
 * apply.  Pure functions over bytes: no process, lock or network here.
 */
struct mbox_msg {
	off_t	 from;		/* offset of the From_ line */
	off_t	 off;		/* first byte served, after the From_ line */
	off_t	 len;		/* bytes served, blank separator excluded */
	off_t	 size;		/* octets RETR sends before dot-stuffing */
	char	 uidl[UIDL_SIZE];
};

/* mbox_msg.from of a Maildir message: a file of its own, served from
 * offset 0 through a descriptor the session asks for (IPC_OPEN_MSG). */
#define MSG_OWN_FILE	((off_t)-1)

#define SUM_LANES	4	/* of the content sum */
#define SUM_STRIPE	(SUM_LANES * 8)	/* bytes summed a step */

struct mbox_index {
	struct mbox_msg	*msgs;
	size_t		 count;
	size_t		 cap;
	off_t		 end;	/* bytes scanned: the index covers [0, end) */
	uint64_t	 sum;	/* of every byte scanned: any change shows */
	uint64_t	 sum_part[SUM_LANES]; /* the sum at end less end %
				 * SUM_LANES * 8, to resume the scan */
};

enum mbox_error {
	MBOX_OK = 0,
	MBOX_NOTMBOX,		/* not an mbox: [SYS/PERM] */
	MBOX_TOOBIG,		/* over MAX_MESSAGES or MAX_MAILDROP_SIZE */
	MBOX_NOMEM,		/* out of memory: [SYS/TEMP] */
	MBOX_IO			/* read error, errno set: [SYS/TEMP] */
};

#define MBOX_HEAD	32	/* line-start bytes kept to classify a line */

/*
 * A scan in progress.  Bytes come in chunks of any size; only a line
 * start that straddles two chunks is copied (into head), so memory does
 * not depend on line or message length.  The fields are mbox.c's own.
 */
struct mbox_scan {
	struct mbox_index	*idx;
	off_t		 pos;		/* offset of the next byte to scan */
	int		 err;		/* enum mbox_error, sticky */
	/* the current line */
	off_t		 line_start;	/* its offset */
	char		 head[MBOX_HEAD]; /* its start, while undecided */
	size_t		 headlen;
	int		 classified;	/* its start has been judged */
	int		 empty;		/* "\n": 1, "\r\n": 2, else 0 */
	int		 hashing;	/* its bytes go into the UIDL */
	int		 prev_cr;	/* its last byte so far is CR */
	/* the current message, idx->msgs[idx->count - 1] */
	int		 in_msg;	/* a From_ line has been seen */
	int		 in_from;	/* still in that From_ line */
	int		 in_headers;	/* before the first empty line */
	int		 skip_field;	/* the field is rewritten in place */
	off_t		 lfs;		/* LFs without a CR before them */
	int		 last_empty;	/* the last whole line was empty:
					 * its length, else 0 */
	int		 body_next;	/* this line ends the headers */
	off_t		 body_off;	/* where the body starts, or -1 */
	off_t		 body_lfs;	/* lfs at body_off */
	struct SHA256state_st *hash;	/* UIDL: From_ line, headers, body
					 * length; libcrypto's SHA256_CTX */
	uint64_t	 sum[SUM_LANES];	/* content sum, see content_sum */
	uint64_t	 stripes;	/* of SUM_LANES * 8 bytes summed */
	unsigned char	 carry[SUM_LANES * 8]; /* short of a stripe */
	size_t		 ncarry;
	off_t		 sum_from;	/* bytes before it are not summed */
	size_t		 known;		/* messages with their UIDL suffix
					 * already: a resumed scan's */
	size_t		 ahead;		/* the next chunk is this far on in
					 * memory, mapped: fetch it early */
};

/* mbox_index_free: frees the messages of idx and zeroes it. */
void	 mbox_index_free(struct mbox_index *);

/* mbox_index_digest: SHA-256 of the messages of idx into out; returns
 * 0, or -1 if libcrypto fails. */
#define MBOX_DIGEST	32
int	 mbox_index_digest(const struct mbox_index *,
	    unsigned char [MBOX_DIGEST]);

/* mbox_prepare: checks libcrypto's SHA-256 gives the known answer;
 * returns 0, or -1 if it does not. */
int	 mbox_prepare(void);

/* mbox_scan_init: starts a scan that fills idx, which must be zeroed or
 * hold an earlier index (its messages are freed first). */
void	 mbox_scan_init(struct mbox_scan *, struct mbox_index *);

/* mbox_scan_feed: scans the next n bytes, in chunks of any size; returns
 * MBOX_OK or the error, which stays set for the rest of the scan.  After
 * an error idx holds a partial index: mbox_index_free it.  A scan ends
 * with an error or with mbox_scan_finish, which free what it holds. */
int	 mbox_scan_feed(struct mbox_scan *, const char *, size_t);

/* mbox_scan_finish: closes the last message, gives duplicate UIDLs their
 * suffixes; returns MBOX_OK or the error. */
int	 mbox_scan_finish(struct mbox_scan *);

/* mbox_scan_close: closes the last message at the scan's position and
 * lets go of what the scan holds; returns MBOX_OK or the error. */
int	 mbox_scan_close(struct mbox_scan *);

/* mbox_scan_end: after mbox_scan_close, the index's end, content sum and
 * duplicate UIDLs; returns MBOX_OK or the error. */
int	 mbox_scan_end(struct mbox_scan *);

/* mbox_map_prepare: sets the SIGBUS handler that turns a mapped mbox
 * shrinking under the scan into a read error (ESTALE); 0, or -1. */
int	 mbox_map_prepare(void);

/* mbox_scan_how: how this process's scans take the file, as the machine
 * was asked (see SCAN_MAP): "mapped", "read", or "not asked yet". */
const char *mbox_scan_how(void);

/* mbox_scan_fd: scans fd from offset 0 up to limit bytes (or to EOF when
 * limit is -1) into idx; returns MBOX_OK or the error.  A file shorter
 * than limit is MBOX_IO with errno ESTALE (it shrank under us). */
int	 mbox_scan_fd(int, off_t, struct mbox_index *);

/* mbox_scan_resume: scans fd from the From_ line at start to EOF,
 * adding to idx, which holds the messages before start; the content sum
 * goes on from sum_part, its state at sum_from (a multiple of
 * SUM_LANES * 8, at or after start).  Returns MBOX_OK or the error
 * (MBOX_IO for arguments that do not fit); after an error idx is
 * partial: mbox_index_free it. */
int	 mbox_scan_resume(int, off_t, off_t, const uint64_t *,
	    struct mbox_index *);

/* mbox_strerror: a short text for an enum mbox_error. */
const char *mbox_strerror(int);

/* have_avx2: whether this CPU runs the AVX2 kernels of mbox.c and xform.c
 * (x86-64 only). */
int	 have_avx2(void);

/*
 * index.c: the per-user index cache of the mailbox in -i dir, read as
 * untrusted input: anything wrong with it is "no index", never an error.
 */
struct index_sample {
	size_t		 msg;		/* a message of the index */
	uint64_t	 hash;		/* of its From_ line's first bytes */
};

/* What the index records of the mailbox besides its messages. */
struct index_meta {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;		/* the index's end: all was scanned */
	struct timespec	 mtime;
	struct timespec	 ctime;
	unsigned char	 tail[8];	/* the bytes before the end */
	size_t		 nsamples;
	struct index_sample samples[INDEX_SAMPLES];
};

/* index_dir_open: opens the -i directory, checking that it and every
 * directory above it are root's (sticky ones above it allowed) and none
 * a symbolic link; returns the descriptor, or -1 after one log line. */
int	 index_dir_open(const char *);
/* index_file_open: opens or creates the index file of user in dirfd,
 * a regular file with one link, owned by uid/gid, mode 0600; returns the
 * descriptor, or -1 after one log line. */
int	 index_file_open(int, const char *, uid_t, gid_t);
/* index_open: both of the above for the monitor: the index file of
 * user in directory dir, or -1 after one log line. */
int	 index_open(const char *, const char *, uid_t, gid_t);
/* index_table: room for at least n records of a size, for free(3) and
 * realloc(3), not zeroed, in huge pages if it is large, with *cap set to
 * how many fit; NULL if out of memory. */
void	*index_table(size_t, size_t, size_t *);

/* index_read: reads the index in fd into meta and idx if it is intact
 * and was written for uid; returns 0, or -1 (idx left empty). */
int	 index_read(int, uid_t, struct index_meta *, struct mbox_index *);
/* index_write: writes meta and idx as uid's index into fd; returns 0, or
 * -1 with errno set (the file is then left empty). */
int	 index_write(int, uid_t, const struct index_meta *,
	    const struct mbox_index *);
/* A Maildir file as the index knows it. */
struct index_file {
	int		 dir;		/* 0: new/, 1: cur/ */
	ino_t		 ino;
	off_t		 len;		/* its size */
	off_t		 size;		/* octets RETR sends before stuffing */
	const char	*name;		/* read: in the array's own block */
};
/* index_file_cmp: the order of a Maildir index, by dir, then name. */
int	 index_file_cmp(const struct index_file *, const struct index_file *);
/* index_maildir_read: reads uid's Maildir index in fd into a new array
 * (*files, *count, sorted; one block with the names: free it); returns
 * 0, or -1 (no index). */
int	 index_maildir_read(int, uid_t, struct index_file **, size_t *);
/* index_maildir_write: writes count files, sorted by index_file_cmp, as
 * uid's Maildir index into fd; returns 0, or -1 with errno set (the file
 * is then left empty). */
int	 index_maildir_write(int, uid_t, const struct index_file *, size_t);
/* index_mbox_note: under the lock, after a scan of mailbox fd into idx,
 * fills meta for index_write; returns 0, or -1 when the file cannot be
 * vouched for later (it is not all scanned, or its times are too new). */
int	 index_mbox_note(int, const struct mbox_index *, struct index_meta *);
/* index_mbox_load: under the lock, fills idx from index ixfd of uid for
 * mailbox fd if the mailbox is unchanged (returns 1) or only grew (its
 * new part is scanned, returns 0); else returns -1 with idx empty. */
int	 index_mbox_load(int, int, uid_t, struct mbox_index *);

/*
 * The RETR/TOP transform: LF becomes CRLF (a CRLF stays one), a final
 * line without LF gets a CRLF, and with stuff set a line starting with
 * "." gets another.  body_lines >= 0 stops after the headers, the empty
 * line and that many body lines (TOP).
 */
struct xform {
	int		 stuff;		/* dot-stuff (RETR, TOP) or not */
	long long	 body_lines;	/* -1: the whole message; TOP: body
					 * lines still to send */
	int		 line_len;	/* bytes of the input line so far,
					 * counted up to 2 only */
	int		 prev_cr;	/* the last input byte was CR */
	int		 in_body;	/* past the empty line ending headers */
	int		 done;		/* TOP limit reached */
	int		 any;		/* a byte was written */
	int		 last_lf;	/* the last byte written was LF */
};

/* xform_init: prepares x for one message. */
void	 xform_init(struct xform *, int, long long);

/* xform_run: converts up to n input bytes into out, which has room for
 * 2 * n bytes; sets *used to the bytes consumed (fewer when the TOP limit
 * is reached, then x->done is set) and returns the bytes written. */
size_t	 xform_run(struct xform *, const char *, size_t, char *, size_t *);

/* xform_end: writes into out (room for 2) the CRLF a final line lacks;
 * returns the bytes written. */
size_t	 xform_end(struct xform *, char *);

/*
 * ipc.c: one framed format between the processes.  Each message is one
 * SOCK_SEQPACKET datagram: a header, a payload of at most IPC_MAX_PAYLOAD
 * bytes, and at most one descriptor.
 */
enum ipc_type {
	IPC_NONE = 0,
	IPC_LOG,		/* child -> monitor: u32 priority, text */
	IPC_AUTH,		/* session -> monitor: struct ipc_auth, user, pass */
	IPC_AUTH_OK,		/* monitor -> session: fd = maildrop channel */
	IPC_AUTH_FAIL,		/* monitor -> session: bad credentials */
	IPC_AUTH_FINAL,		/* monitor -> session: too many failures */
	IPC_AUTH_INUSE,		/* monitor -> session: user already in session */
	IPC_AUTH_TEMP,		/* monitor -> session: temporary failure */
	IPC_DOTLOCK,		/* maildrop -> monitor: create the dot-lock */
	IPC_DOTUNLOCK,		/* maildrop -> monitor: remove it */
	IPC_JOURNAL_CREATE,	/* maildrop -> monitor: create the journal */
	IPC_JOURNAL_REMOVE,	/* maildrop -> monitor: remove it */
	IPC_JOURNAL_STALE,	/* maildrop -> monitor: set it aside */
	IPC_MONITOR_OK,		/* monitor -> maildrop: fd = journal */
	IPC_MONITOR_FAIL,	/* monitor -> maildrop: u32 errno */
	IPC_INDEX,		/* maildrop -> session: struct mbox_msg[] */
	IPC_READY,		/* maildrop -> session: fd = mailbox, read-only */
	IPC_MAILDROP_ERR,	/* maildrop -> session: u32 code, text */
	IPC_DELETE,		/* session -> maildrop: u32 message indexes */
	IPC_COMMIT,		/* session -> maildrop: commit the deletions */
	IPC_COMMIT_OK,		/* maildrop -> session: u32 messages left */
	IPC_COMMIT_ERR,		/* maildrop -> session: u32 code, text */
	IPC_PROXY,		/* session -> monitor: u32 flags, client address
				 * from a PROXY header; once, before IPC_AUTH */
	IPC_OPEN_MSG,		/* session -> maildrop: u32 message index */
	IPC_MSG_FD,		/* maildrop -> session: fd = the message */
	IPC_MSG_GONE,		/* maildrop -> session: vanished or changed */
	IPC_SEEN,		/* session -> maildrop: u32 indexes retrieved
				 * whole, before IPC_COMMIT (Maildir) */
	IPC_TYPE_MAX
};

/* Codes carried by IPC_MAILDROP_ERR and IPC_COMMIT_ERR. */
#define MAILDROP_TEMP	1	/* [SYS/TEMP] */
#define MAILDROP_PERM	2	/* [SYS/PERM] */
#define MAILDROP_INUSE	3	/* [IN-USE] */

/* IPC_PROXY flags. */
#define IPC_PROXY_SSL	0x1	/* the client's TLS ended at the proxy */
/* The three processes, as senders in the IPC contract (ipc.c). */
#define PROC_MONITOR	0x1
#define PROC_SESSION	0x2
#define PROC_MAILDROP	0x4

struct ipc_hdr {
	uint32_t	 type;
	uint32_t	 len;
};

struct ipc_msg {
	uint32_t	 type;
	uint32_t	 len;
	int		 fd;		/* -1 when none came */
	unsigned char	 data[IPC_MAX_PAYLOAD];
};

/* IPC_AUTH: this header, then the user, the password and the TLS
 * version and cipher for the log, none NUL-terminated. */
struct ipc_auth {
	uint32_t	 userlen;
	uint32_t	 passlen;
	uint32_t	 tlslen;
};

/* Longest text of IPC_MAILDROP_ERR and IPC_COMMIT_ERR. */
#define IPC_ERROR_TEXT	200

/* Longest TLS description in IPC_AUTH ("TLSv1.3 CIPHER-NAME"). */
#define IPC_TLS_INFO	63

/* ipc_send: sends one message, with fd unless it is -1; returns 0, or -1
 * with errno set. */
int	 ipc_send(int, uint32_t, const void *, size_t, int);

/* ipc_send_code: sends type with a u32 code and text (at most 200
 * bytes of it); returns 0, or -1 with errno set. */
int	 ipc_send_code(int, uint32_t, uint32_t, const char *);

/* ipc_recv: receives one message from the process from (PROC_*) into m
 * and checks it against the contract table; returns 1, 0 on end of
 * file, -1 on a system error (errno set) and -2 on a malformed message
 * or one the contract does not allow (any descriptor closed). */
int	 ipc_recv(int, int, struct ipc_msg *);

/* ipc_decode: checks and copies the n bytes of one datagram into m
 * (m->fd untouched); returns 0, or -1 if it is malformed. */
int	 ipc_decode(const void *, size_t, struct ipc_msg *);

/* ipc_allowed: checks m (with its fd) from sender from against the
 * contract: sender, length, descriptor, and how often (counted in this
 * process); returns 0, or -1 with a reason in *why. */
int	 ipc_allowed(const struct ipc_msg *, int, const char **);

/* ipc_string: checks that the len bytes at src are printable ASCII, as a
 * log line needs, and copies them NUL-terminated into dst (room for len
 * + 1); returns 0, or -1 if any byte is not. */
int	 ipc_string(char *, const unsigned char *, size_t);

/*
 * log.c: syslog LOG_MAIL or stderr in the monitor; in the children each
 * line goes to the monitor, which logs it with the child's name.
 */
void	 log_init(int, int);
void	 log_procname(const char *);
/* log_peer: ends every later line with " from=ADDR" and, while VIA is
 * not empty, " via=VIA", both read from the pointers each time. */
void	 log_peer(const char *, const char *);
void	 log_to_monitor(int);
void	 log_emit(int, const char *);
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* proc_exit: ends a session's process with status, as fatal does,
 * without the libraries' exit handlers; nothing pop3d writes is left
 * in a stdio buffer. */
__dead void proc_exit(int);
extern int log_verbose;


/* One network of -x, in network byte order. */
struct proxy_net {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];
	unsigned int	 prefix;
};

/*
 * The configuration from the command line, set by the monitor before it
 * forks; the children get a copy.
 */
struct pop3d_conf {
	const char	*passwd_file;	/* -a, NULL for system accounts */
	const char	*cert_file;	/* -c */
	const char	*key_file;	/* -k */
	const char	*maildrop;	/* -m template */
	const char	*session_user;	/* -u */
	const char	*index_dir;	/* -i, NULL for none */
	int		 cleartext;	/* -P */
	int		 implicit_tls;	/* -S */
	int		 timeout;	/* -t */
	int		 debug;		/* -d */
	int		 configtest;	/* -n */
	uid_t		 session_uid;
	gid_t		 session_gid;
	char		 session_root[PATH_MAX];
	uint8_t		*cert;		/* PEM, loaded as root */
	size_t		 certlen;
	uint8_t		*key;
	size_t		 keylen;
	char		 peer[INET6_ADDRSTRLEN + 16];	/* the client */
	char		 via[INET6_ADDRSTRLEN + 16];	/* the proxy it came
					 * through, "" when it came direct */
	struct sockaddr_storage peer_addr;	/* the connection's peer, as
					 * the monitor saw it (AF_UNSPEC: none) */
	const char	*proxy_spec;	/* -x */
	struct proxy_net proxy_nets[PROXY_MAX_NETS];
	size_t		 proxy_count;
};

/* pop3d.c */
/* maildrop_expand: expands the -m template for user and home into out;
 * returns 0, or -1 if it is too long, not absolute or holds "..". */
int	 maildrop_expand(const char *, const char *, const char *, char *,
	    size_t);
/* proc_setname: sets the process name shown by ps and in the log. */
void	 proc_setname(const char *);

/* monitor.c */
/* monitor_main: forks the session process and serves the children's
 * requests until both are gone; never returns. */
void	 monitor_main(struct pop3d_conf *) __attribute__((noreturn));

/* priv.c */
/* priv_init: records the monitor's pid; call before forking children. */
void	 priv_init(void);
/* check_session_user: fills in the -u user's ids and chroot directory and
 * checks the directory is root's alone; returns 0, or -1 after logging. */
int	 check_session_user(struct pop3d_conf *);
/* priv_open_dir: opens directory path for the monitor to act in, walking
 * from / and checking each component as it is opened: owned by root and
 * writable by nobody else (the last also by group group_ok, or pass
 * (gid_t)-1), symbolic links followed only where root made them; returns
 * the descriptor, or -1 with errno and a reason in *why. */
int	 priv_open_dir(const char *, gid_t, const char **);
/* priv_drop: chroots to dir unless it is NULL, then becomes uid/gid with
 * gid as the only group (no groups at all when nogroups is set), and
 * proves it cannot go back; fatal on any failure. */
void	 priv_drop(const char *, uid_t, gid_t, int);
/* priv_check_fds: fatal unless the process holds descriptors 0, 1 and 2,
 * the n in keep, and no other. */
void	 priv_check_fds(const int *, size_t);

/* proxy.c */
/* A parsed PROXY header. */
struct proxy_hdr {
	int		 local;		/* v2 LOCAL or v1 UNKNOWN: no client
					 * address, the proxy's connection */
	int		 ssl;		/* v2 PP2_CLIENT_SSL was set */
	char		 src[INET6_ADDRSTRLEN];	/* the client, canonical */
};
/* proxy_need: how many more bytes the header starting with the n bytes
 * of buf needs (v1 lines one at a time), 0 if they are a whole header,
 * -1 if they cannot start one or it is over its bound. */
ssize_t	 proxy_need(const unsigned char *, size_t);
/* proxy_parse: parses the whole header of n bytes into h; returns 0, or
 * -1 if it is not exactly one valid v1 or v2 header. */
int	 proxy_parse(const unsigned char *, size_t, struct proxy_hdr *);
/* proxy_nets_parse: parses -x "net[,net...]" into at most
 * PROXY_MAX_NETS nets, setting *count; returns 0, or -1 with the reason
 * in err. */
int	 proxy_nets_parse(const char *, struct proxy_net *, size_t *, char *,
	    size_t);
/* proxy_nets_match: 1 if the address in ss is in one of the nets (an
 * IPv4-mapped IPv6 address as IPv4), else 0. */
int	 proxy_nets_match(const struct proxy_net *, size_t,
	    const struct sockaddr_storage *);
/* proxy_canonical: writes the canonical form of the IPv4 or IPv6
 * address text into out; returns 0, or -1 if it is not one. */
int	 proxy_canonical(const char *, char *, size_t);
/* proxy_accept: reads the PROXY header from fd within
 * PROXY_HEADER_TIMEOUT and reports its client address to the monitor,
 * then names that client in conf->peer and the proxy in conf->via;
 * sets *ssl if the proxy ended the client's TLS.  Returns NULL, or why
 * the connection must be dropped. */
const char *proxy_accept(struct pop3d_conf *, int, int, int *);
#ifdef POP3D_TEST_HOOKS
/* proxy_test_forge: test builds only: sends the IPC_PROXY named by
 * POP3D_TEST_FORGE_PROXY, if set. */
void	 proxy_test_forge(int);
#endif

/* sasl.c */
/* base64_decode: decodes strict base64 (whole quanta, canonical padding)
 * into out; returns the length, or -1 if invalid or over outsize. */
ssize_t	 base64_decode(const char *, unsigned char *, size_t);
/* sasl_plain_parse: splits a PLAIN message of len bytes (with room for
 * one more) into user and pass, NUL-terminated in place; the authzid must
 * be empty or the user; returns 0, or -1 if malformed. */
int	 sasl_plain_parse(unsigned char *, size_t, char **, char **);

/* command.c: parse_uint: 1 to 10 decimal digits and no overflow, 0 with
 * *n set or -1; parse_number: a message number 1 to max, or 0;
 * parse_verb: splits off the verb in place, *args the rest or NULL;
 * parse_args: at most max words split at single spaces, their number
 * or -1. */
int		 parse_uint(const char *, uint32_t *);
uint32_t	 parse_number(const char *, uint32_t);
char		*parse_verb(char *, char **);
int		 parse_args(char *, char **, int);

/* msgtab.c: the session's compact table of the messages. */
struct msg_rec;
struct msg_wide;
struct msgtab {
	struct msg_rec	*recs;
	size_t		 count;
	size_t		 cap;
	struct msg_wide	*wide;		/* lengths of 4 GB and more */
	size_t		 nwide;
	size_t		 widecap;
	char		*pool;		/* UIDLs not of 32 hex digits */
	size_t		 poollen;
	size_t		 poolcap;
	unsigned char	*deleted;	/* bits, by message index */
	unsigned char	*whole;		/* bits: retrieved whole */
	int		 maildir;	/* a descriptor per message */
};

/* msgtab_valid: 1 if the index entry from the maildrop process is
 * consistent (offsets, sizes, a UIDL of 1 to 70 printable octets). */
int	 msgtab_valid(const struct mbox_msg *);
/* msgtab_add: appends a valid entry; -1 if invalid or one too many;
 * fatal if out of memory. */
int	 msgtab_add(struct msgtab *, const struct mbox_msg *);
/* msgtab_receive: reads the index from the maildrop process on fd into
 * the table; returns 1 when it is all in (m->fd the mailbox, -1: none),
 * 0 if the maildrop refused (m is its IPC_MAILDROP_ERR), -1 if it is
 * gone; fatal on anything malformed. */
int	 msgtab_receive(struct msgtab *, int, struct ipc_msg *);
/* msgtab_reset: clears every deletion mark (RSET). */
void	 msgtab_reset(struct msgtab *);
/* msgtab_span: the offset and length of message i's served bytes. */
void	 msgtab_span(const struct msgtab *, size_t, off_t *, off_t *);
/* msgtab_size: the octets RETR of message i sends before dot-stuffing. */
off_t	 msgtab_size(const struct msgtab *, size_t);
/* msgtab_uidl: message i's UIDL written into buf (UIDL_SIZE bytes);
 * returns buf. */
const char *msgtab_uidl(const struct msgtab *, size_t, char *);
/* msgtab_marked: whether bit i of a mark array is set. */
int	 msgtab_marked(const unsigned char *, size_t);
/* msgtab_mark: sets bit i of a mark array. */
void	 msgtab_mark(unsigned char *, size_t);
/* msgtab_totals: the number and octets of the messages not deleted. */
void	 msgtab_totals(const struct msgtab *, size_t *, long long *);
/* msgtab_send_marks: sends the indexes of the marked messages to fd as
 * messages of type, in batches; fatal on failure. */
void	 msgtab_send_marks(const struct msgtab *, int, uint32_t,
	    const unsigned char *);

/* session.c */
/* session_main: runs the session process over fds 0/1; never returns. */
void	 session_main(struct pop3d_conf *, int) __attribute__((noreturn));

/* maildrop.c */
/* maildrop_main: runs the maildrop process for path as the current user,
 * talking to the session over the first fd and the monitor over the
 * second, with the user's index file on the third (-1: none); never
 * returns. */
void	 maildrop_main(const char *, int, int, int)
	    __attribute__((noreturn));

/* maildir.c */
/* maildir_main: maildrop_main for a Maildir (path ends in "/"): scans
 * new/ and cur/ (with the index in the second fd unless it is -1),
 * serves the session over the first; never returns. */
void	 maildir_main(const char *, int, int) __attribute__((noreturn));

/* commit.c */
/* commit_run: removes the messages marked in deleted from the locked
 * mailbox fd, journaling in the empty file jfd; returns 0 when done (the
 * journal may go), -2 with errno set if it failed before touching the
 * mailbox (the journal may go), or -1 with errno set (it must stay). */
int	 commit_run(int, int, const struct mbox_index *,
	    const unsigned char *);
/* commit_recover: finishes the commit recorded in journal jfd on the
 * locked mailbox fd; returns 0 when the journal may go, -2 if the file
 * no longer holds what the journal says (nothing written: set the
 * journal aside), -3 if the journal is of a format this version does
 * not know, or -1 with errno set if it cannot be finished (both files
 * left as they are, for -3 too). */
int	 commit_recover(int, int);
/* journal_set_aside: renames the journal to the stale name in directory
 * dirfd (replacing an older one) if it is a regular file owned by uid,
 * and syncs the directory; returns 0, or -1 with errno set.  For the
 * maildrop process and, in a spool it cannot write, the monitor. */
int	 journal_set_aside(int, const char *, const char *, uid_t);
#ifdef POP3D_TEST_HOOKS
void	 commit_crashpoint(const char *);
#endif

/* testhooks.c: the test build's misbehaviour on request. */
#ifdef POP3D_TEST_HOOKS
void	 test_inject(int, const char *);
void	 test_pause(const char *);
#define TEST_INJECT(sock, proc)	test_inject(sock, proc)
#define TEST_PAUSE(point)	test_pause(point)
#else
#define TEST_INJECT(sock, proc)	do { } while (0)
#define TEST_PAUSE(point)	do { } while (0)
#endif

/* The commit journal beside the maildrop: NAME.pop3d-journal, and
 * NAME.pop3d-journal.stale once set aside, one per maildrop. */
#define JOURNAL_SUFFIX	".pop3d-journal"
#define JOURNAL_STALE	".pop3d-journal.stale"

/* sandbox.c */
/* sandbox_session: confines the session process to its loop's system
 * calls on the descriptors it has; fatal on failure. */
void	 sandbox_session(void);
/* sandbox_maildrop: confines the maildrop process to its loop's system
 * calls and to the tree of directory dir, a Maildir (maildir must be
 * set: an mbox takes sandbox_maildrop_file); fatal on failure. */
void	 sandbox_maildrop(const char *, int);
/* sandbox_maildrop_file: the same for the mbox file mbox in directory
 * dir: that file (and a journal of it already there) may be read and
 * written; in dir, other files created, written, removed, not read. */
void	 sandbox_maildrop_file(const char *, const char *);
#ifdef POP3D_TEST_HOOKS
/* sandbox_test_escape: test builds: what POP3D_TEST_SANDBOX_ESCAPE and
 * POP3D_TEST_OPEN_PROBE ask process who to try once it is sandboxed. */
void	 sandbox_test_escape(const char *);
#endif

/* dotlock.c */
/* dotlock_init: learns the boot time for the stale-lock rule; call it
 * before a sandbox hides /proc (dotlock_create works without it). */
void	 dotlock_init(void);
/* dotlock_create: makes NAME.lock beside name in directory dirfd the way
 * liblockfile does (unique file, link(2)), first removing and logging a
 * stale one (a dead pid, made before boot, or DOTLOCK_STALE s old: see
 * dotlock.c); returns 0, or -1 with errno set (EEXIST: held by someone
 * else). */
int	 dotlock_create(int, const char *);
/* dotlock_exists: 1 if NAME.lock is there (or cannot be told), else 0. */
int	 dotlock_exists(int, const char *);
/* dotlock_remove: removes the NAME.lock made by dotlock_create. */
int	 dotlock_remove(int, const char *);
/* dotlock_remove_dead: removes NAME.lock if it holds the pid of the dead
 * process given; returns 1 if it did, else 0. */
int	 dotlock_remove_dead(int, const char *, pid_t);

/*
 * tls.c: the session's I/O with the client, plain or TLS, behind one
 * interface, with the inactivity timeout applied to every wait.
 */
struct tls;
struct io {
	int		 rfd;
	int		 wfd;
	int		 timeout;	/* seconds */
	time_t		 deadline;	/* for the next complete command */
	time_t		 limit;		/* no wait beyond it; 0: none */
	struct pop3d_conf *keypair;	/* NULL: TLS not configured */
	struct tls	*server;	/* NULL: not set up yet */
	struct tls	*tls;		/* NULL: TLS not active */
	size_t		 rpos;
	size_t		 rlen;
	size_t		 wlen;
	char		 rbuf[4096];
	char		 wbuf[OUTPUT_BUFFER];
	/* TLS records as they go to and come from the socket */
	size_t		 tinpos;
	size_t		 tinlen;
	size_t		 toutpos;
	size_t		 toutlen;
	char		 tin[TLS_INPUT_BUFFER];
	char		 tout[TLS_OUTPUT_BUFFER];
};

/* tls_load_keypair: reads -c and -k into conf as root; checks the key
 * file's mode; returns 0, or -1 after logging why. */
int	 tls_load_keypair(struct pop3d_conf *);
/* tls_check_keypair: -n: parses the pair, checks it matches and is
 * current; returns 0, or -1 after logging why. */
int	 tls_check_keypair(struct pop3d_conf *);
/* io_init: sets up io over fds 0/1, keeping the key pair in conf for
 * the first io_starttls; fatal on failure. */
void	 io_init(struct io *, struct pop3d_conf *);
/* io_tls_configured: 1 if io can start TLS (a key pair was given). */
int	 io_tls_configured(struct io *);
/* io_now: seconds on the monotonic clock. */
time_t	 io_now(void);
/* io_fill: reads more client input into rbuf, waiting until io->deadline
 * at most; returns the bytes read, 0 on end of file, -1 on error or
 * timeout (errno ETIMEDOUT). */
ssize_t	 io_fill(struct io *);
/* io_reserve: returns room for n (<= OUTPUT_BUFFER) bytes at the end of
 * wbuf, flushing first if needed; NULL if the flush failed. */
char	*io_reserve(struct io *, size_t);
/* io_write: buffers n bytes of output; returns 0, or -1 on error. */
int	 io_write(struct io *, const void *, size_t);
/* io_flush: writes all buffered output; returns 0, or -1 on error or
 * timeout. */
int	 io_flush(struct io *);
/* io_flush_records: writes buffered output in whole TLS records (all of
 * it when TLS is not active), keeping the rest; returns 0, or -1 on
 * error or timeout. */
int	 io_flush_records(struct io *);
/* io_starttls: discards unread input, sets up the TLS server context
 * the first time, and does the server handshake;
 * returns 0, or -1 after logging why. */
int	 io_starttls(struct io *);
/* io_tls_info: "TLSv1.3/CIPHER" for the log's tls= field, or "no". */
const char *io_tls_info(struct io *);
/* io_close: closes TLS if active, then the client's descriptors. */
void	 io_close(struct io *);

#endif
