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
ipc_recv(int sock, struct ipc_msg *m)
{
	static unsigned char	 buf[sizeof(struct ipc_hdr) +
				    IPC_MAX_PAYLOAD + 1];
	struct iovec		 iov;
	struct msghdr		 mh;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cmsgbuf;
	ssize_t			 n;
	int			 fd, rv;

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
	if (ipc_take_fd(&mh, &fd) == -1)
		return -2;
	if (n == 0 && fd == -1)
		return 0;
	rv = ipc_decode(buf, n, m);
	/* m is the caller's to wipe: this copy may hold a password */
	explicit_bzero(buf, n);
	if (rv == -1) {
		if (fd != -1)
			close(fd);
		return -2;
	}
	m->fd = fd;
	return 1;
}
