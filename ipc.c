/*
 * ipc.c: the one framed format between pop3d's processes.  Every message
 * is a single SOCK_SEQPACKET datagram, so a message arrives whole or not at
 * all; its header gives the type and the payload length, and both are
 * checked against the datagram before anyone looks at the payload.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pop3d.h"

int
ipc_send(int sock, uint32_t type, const void *data, size_t len, int fd)
{
	struct ipc_hdr	 hdr;
	struct iovec	 iov[2];
	struct msghdr	 mh;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	if (len > IPC_MAX_PAYLOAD || type == IPC_NONE ||
	    type >= IPC_TYPE_MAX) {
		errno = EINVAL;
		return -1;
	}
	hdr.type = type;
	hdr.len = len;
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)(uintptr_t)data;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = len > 0 ? 2 : 1;
	if (fd != -1) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = cmsgbuf.buf;
		mh.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&mh);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(hdr) + len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int
ipc_send_code(int sock, uint32_t type, uint32_t code, const char *text)
{
	unsigned char	 buf[sizeof(uint32_t) + 200];
	size_t		 n = strnlen(text, 200);

	memcpy(buf, &code, sizeof(code));
	memcpy(buf + sizeof(code), text, n);
	return ipc_send(sock, type, buf, sizeof(code) + n, -1);
}

int
ipc_decode(const void *buf, size_t n, struct ipc_msg *m)
{
	struct ipc_hdr	 hdr;

	if (n < sizeof(hdr))
		return -1;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.type == IPC_NONE || hdr.type >= IPC_TYPE_MAX)
		return -1;
	if (hdr.len > IPC_MAX_PAYLOAD || n != sizeof(hdr) + hdr.len)
		return -1;
	m->type = hdr.type;
	m->len = hdr.len;
	memcpy(m->data, (const unsigned char *)buf + sizeof(hdr), hdr.len);
	return 0;
}

/*
 * The contract: who may send each message, how long it may be, whether
 * it carries a descriptor, and how often one process may receive it in
 * its life.  ipc_recv checks every message against it, so no handler
 * has to check a length, and a child that sends anything else is taken
 * for compromised: the receiver treats it as malformed and exits.
 */
enum ipc_fd {
	FD_NONE,		/* never a descriptor */
	FD_MAY,			/* zero or one */
	FD_MUST			/* exactly one */
};

struct ipc_contract {
	int		 from;		/* PROC_* that may send it; 0: nobody */
	uint32_t	 minlen;
	uint32_t	 maxlen;
	uint32_t	 unit;		/* len - minlen is a multiple of it */
	enum ipc_fd	 fd;
	uint32_t	 max;		/* receptions allowed; 0: unbounded */
	int		 (*check)(const struct ipc_msg *);
};

static int	ipc_check_auth(const struct ipc_msg *);

#define AUTH_MAXLEN	(sizeof(struct ipc_auth) + MAX_USER + MAX_PASSWORD + \
			    IPC_TLS_INFO)

static const struct ipc_contract ipc_contract[IPC_TYPE_MAX] = {
	/* child -> monitor: u32 priority, then the text */
	[IPC_LOG] = { PROC_SESSION | PROC_MAILDROP, 4, 4 + MAX_LOG_LINE, 1,
	    FD_NONE, 0, NULL },
	[IPC_AUTH] = { PROC_SESSION, sizeof(struct ipc_auth), AUTH_MAXLEN, 1,
	    FD_NONE, MAX_AUTH_REQUESTS, ipc_check_auth },
	/* monitor -> session: the answers, one per IPC_AUTH */
	[IPC_AUTH_OK] = { PROC_MONITOR, 0, 0, 1, FD_MUST, 1, NULL },
	[IPC_AUTH_FAIL] = { PROC_MONITOR, 0, 0, 1, FD_NONE, MAX_AUTH_REQUESTS,
	    NULL },
	[IPC_AUTH_FINAL] = { PROC_MONITOR, 0, 0, 1, FD_NONE, 1, NULL },
	[IPC_AUTH_INUSE] = { PROC_MONITOR, 0, 0, 1, FD_NONE,
	    MAX_AUTH_REQUESTS, NULL },
	[IPC_AUTH_TEMP] = { PROC_MONITOR, 0, 0, 1, FD_NONE, MAX_AUTH_REQUESTS,
	    NULL },
	/* maildrop -> monitor: file work in a spool root controls */
	[IPC_DOTLOCK] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, MAX_MONITOR_LOCKS,
	    NULL },
	[IPC_DOTUNLOCK] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, MAX_MONITOR_LOCKS,
	    NULL },
	/* one commit a session; the journal goes after recovery and after
	 * the commit */
	[IPC_JOURNAL_CREATE] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, 1, NULL },
	[IPC_JOURNAL_REMOVE] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, 2, NULL },
	/* an old journal that no longer fits the file, set aside once */
	[IPC_JOURNAL_STALE] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, 1, NULL },
	/* monitor -> maildrop: the answers; u32 errno on failure */
	[IPC_MONITOR_OK] = { PROC_MONITOR, 0, 0, 1, FD_MAY, 0, NULL },
	[IPC_MONITOR_FAIL] = { PROC_MONITOR, 4, 4, 1, FD_NONE, 0, NULL },
	/* maildrop -> session: the index in batches, then the mailbox */
	[IPC_INDEX] = { PROC_MAILDROP, sizeof(struct mbox_msg),
	    IPC_MAX_PAYLOAD, sizeof(struct mbox_msg), FD_NONE, 0, NULL },
	[IPC_READY] = { PROC_MAILDROP, 0, 0, 1, FD_MAY, 1, NULL },
	[IPC_MAILDROP_ERR] = { PROC_MAILDROP, 4, 4 + IPC_ERROR_TEXT, 1,
	    FD_NONE, 1, NULL },
	/* session -> maildrop: u32 message indexes, then the commit */
	[IPC_DELETE] = { PROC_SESSION, 4, IPC_MAX_PAYLOAD, 4, FD_NONE, 0,
	    NULL },
	[IPC_COMMIT] = { PROC_SESSION, 0, 0, 1, FD_NONE, 1, NULL },
	[IPC_COMMIT_OK] = { PROC_MAILDROP, 4, 4, 1, FD_NONE, 1, NULL },
	[IPC_COMMIT_ERR] = { PROC_MAILDROP, 4, 4 + IPC_ERROR_TEXT, 1,
	    FD_NONE, 1, NULL },
	/* session -> monitor: u32 flags, then the client's address as the
	 * PROXY header gave it; once, before any IPC_AUTH */
	[IPC_PROXY] = { PROC_SESSION, 4, 4 + INET6_ADDRSTRLEN, 1, FD_NONE, 1,
	    NULL },
	/* Maildir: the session asks for one message file at a time, and
	 * says which were retrieved whole before the commit */
	[IPC_OPEN_MSG] = { PROC_SESSION, 4, 4, 1, FD_NONE, 0, NULL },
	[IPC_MSG_FD] = { PROC_MAILDROP, 0, 0, 1, FD_MUST, 0, NULL },
	[IPC_MSG_GONE] = { PROC_MAILDROP, 0, 0, 1, FD_NONE, 0, NULL },
	[IPC_SEEN] = { PROC_SESSION, 4, IPC_MAX_PAYLOAD, 4, FD_NONE, 0, NULL },
};

/* How many of each this process has received. */
static uint32_t	ipc_received[IPC_TYPE_MAX];

/* IPC_AUTH: the three lengths must add up to what came. */
static int
ipc_check_auth(const struct ipc_msg *m)
{
	struct ipc_auth	 a;

	memcpy(&a, m->data, sizeof(a));
	return a.userlen <= MAX_USER && a.passlen <= MAX_PASSWORD &&
	    a.tlslen <= IPC_TLS_INFO && m->len == sizeof(a) +
	    (uint64_t)a.userlen + a.passlen + a.tlslen ? 0 : -1;
}

int
ipc_allowed(const struct ipc_msg *m, int from, const char **why)
{
	const struct ipc_contract	*c;

	if (m->type == IPC_NONE || m->type >= IPC_TYPE_MAX ||
	    !(ipc_contract[m->type].from & from)) {
		*why = "not allowed from this process";
		return -1;
	}
	c = &ipc_contract[m->type];
	if (m->len < c->minlen || m->len > c->maxlen ||
	    (m->len - c->minlen) % c->unit != 0 ||
	    (c->check != NULL && c->check(m) == -1)) {
		*why = "bad length";
		return -1;
	}
	if ((c->fd == FD_NONE && m->fd != -1) ||
	    (c->fd == FD_MUST && m->fd == -1)) {
		*why = "bad descriptor";
		return -1;
	}
	if (c->max != 0 && ipc_received[m->type] >= c->max) {
		*why = "sent too often";
		return -1;
	}
	return 0;
}

int
ipc_string(char *dst, const unsigned char *src, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (src[i] < 0x20 || src[i] >= 0x7f)
			return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/*
 * Takes at most one descriptor out of the control data; any other
 * control message, or more than one descriptor, makes the message
 * malformed (and whatever descriptors came are closed).
 */
static int
ipc_take_fd(struct msghdr *mh, int *fdp)
{
	struct cmsghdr	*cmsg;
	size_t		 i, nfds;
	int		 fd, bad = 0;

	*fdp = -1;
	if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		bad = 1;
	for (cmsg = CMSG_FIRSTHDR(mh); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(mh, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			if (*fdp == -1 && !bad)
				*fdp = fd;
			else {
				close(fd);
				bad = 1;
			}
		}
	}
	if (bad && *fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
	return bad ? -1 : 0;
}

int
ipc_recv(int sock, int from, struct ipc_msg *m)
{
	static unsigned char	 buf[sizeof(struct ipc_hdr) +
				    IPC_MAX_PAYLOAD + 1];
	struct iovec		 iov;
	struct msghdr		 mh;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cmsgbuf;
	const char		*why;
	ssize_t			 n;
	int			 fd, rv, bad;

	m->fd = -1;
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	bad = ipc_take_fd(&mh, &fd) == -1;
	if (!bad && n == 0 && fd == -1)
		rv = 0;
	else if (bad || ipc_decode(buf, n, m) == -1)
		rv = -2;
	else {
		m->fd = fd;
		rv = ipc_allowed(m, from, &why) == 0 ? 1 : -2;
		if (rv == -2)
			log_warnx("IPC message %u: %s", m->type, why);
	}
	/* a password may have come: it is copied out, so wipe it here */
	explicit_bzero(buf, n > 0 ? (size_t)n : 0);
	if (rv == 1)
		ipc_received[m->type]++;
	else if (fd != -1) {
		close(fd);
		m->fd = -1;
	}
	return rv;
}
