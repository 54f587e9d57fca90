/*
 * testhooks.c: misbehaviour on request, for the test build only
 * (pop3d-crashtest, -DPOP3D_TEST_HOOKS); the installed pop3d has none of
 * it.  The end-to-end tests use it to play a compromised child and to
 * hold a process at one instant while they race it.
 */
#ifdef POP3D_TEST_HOOKS
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pop3d.h"

/*
 * A well-formed IPC_AUTH for alice with a wrong password; its TLS field
 * is tls, which may try to forge a log line.
 */
static size_t
test_auth_request(unsigned char *buf, const char *tls)
{
	struct ipc_auth	 a = { 5, 14, 0 };

	a.tlslen = strlen(tls);
	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), "alicewrong-password", 19);
	memcpy(buf + sizeof(a) + 19, tls, a.tlslen);
	return sizeof(a) + 19 + a.tlslen;
}

/* ipc_send, or by hand for a type ipc_send would not send. */
static int
test_send(int sock, uint32_t type, const unsigned char *buf, size_t len,
    unsigned int fd)
{
	static unsigned char	 raw[sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD];
	struct ipc_hdr		 h = { type, len };
	struct iovec		 iov = { raw, sizeof(h) + len };
	struct msghdr		 mh;

	if (type > IPC_NONE && type < IPC_TYPE_MAX)
		return ipc_send(sock, type, buf, len, fd ? 0 : -1);
	memcpy(raw, &h, sizeof(h));
	memcpy(raw + sizeof(h), buf, len);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	return sendmsg(sock, &mh, 0) == -1 ? -1 : 0;
}

/*
 * POP3D_TEST_IPC="proc:type:len:fd:count;...": the process named proc
 * ("session", "maildrop") sends count requests of that type, with len
 * zero bytes (or "auth", "authlf": see above) and with fd 0 attached if fd is 1,
 * to the monitor, as a compromised process would.
 */
void
test_inject(int sock, const char *proc)
{
	static unsigned char	 buf[IPC_MAX_PAYLOAD];
	const char		*spec = getenv("POP3D_TEST_IPC");
	char			 who[16], lenword[16];
	unsigned int		 type, fd, count, i;
	size_t			 len;

	for (; spec != NULL && *spec != '\0'; spec = strchr(spec, ';')) {
		if (*spec == ';')
			spec++;
		if (sscanf(spec, "%15[a-z]:%u:%15[a-z0-9]:%u:%u", who, &type,
		    lenword, &fd, &count) != 5 || strcmp(who, proc) != 0)
			continue;
		if (strcmp(lenword, "auth") == 0)
			len = test_auth_request(buf, "no TLS");
		else if (strcmp(lenword, "authlf") == 0)
			len = test_auth_request(buf,
			    "x\n[monitor] login user=root");
		else
			len = strtoul(lenword, NULL, 10);
		if (len > sizeof(buf))
			len = sizeof(buf);
		for (i = 0; i < count; i++)
			if (test_send(sock, type, buf, len, fd) == -1)
				log_warn("test: send %u", type);
		log_info("test: sent %u requests of type %u", count, type);
	}
}

/* POP3D_TEST_PAUSE="point:seconds": holds the process at that point. */
void
test_pause(const char *point)
{
	const char	*spec = getenv("POP3D_TEST_PAUSE");
	size_t		 n = strlen(point);
	struct timespec	 ts;

	if (spec == NULL || strncmp(spec, point, n) != 0 || spec[n] != ':')
		return;
	ts.tv_sec = atoi(spec + n + 1);
	ts.tv_nsec = 0;
	log_info("test: paused at %s", point);
	while (nanosleep(&ts, &ts) == -1)
		;
	log_info("test: going on from %s", point);
}
#endif
