/*
 * unit_ipc.c: the IPC framing: the decoder refuses every malformed
 * datagram, and messages and descriptors cross a real socketpair intact.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pop3d.h"
#include "unit.h"

static struct ipc_msg	 m;

static void
test_decode(void)
{
	unsigned char	 buf[sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD + 8];
	struct ipc_hdr	 h;

	h.type = IPC_LOG;
	h.len = 3;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "abc", 3);
	REQUIRE(ipc_decode(buf, sizeof(h) + 3, &m) == 0);
	CHECK_INT(m.type, ==, IPC_LOG);
	CHECK_INT(m.len, ==, 3);
	CHECK_MEM(m.data, "abc", 3);
	CHECK(ipc_decode(buf, sizeof(h) + 2, &m) == -1);	/* short */
	CHECK(ipc_decode(buf, sizeof(h) + 4, &m) == -1);	/* long */
	CHECK(ipc_decode(buf, sizeof(h) - 1, &m) == -1);
	CHECK(ipc_decode(buf, 0, &m) == -1);
	h.type = IPC_NONE;
	memcpy(buf, &h, sizeof(h));
	CHECK(ipc_decode(buf, sizeof(h) + 3, &m) == -1);
	h.type = IPC_TYPE_MAX;
	memcpy(buf, &h, sizeof(h));
	CHECK(ipc_decode(buf, sizeof(h) + 3, &m) == -1);
	h.type = IPC_LOG;
	h.len = IPC_MAX_PAYLOAD + 1;
	memcpy(buf, &h, sizeof(h));
	CHECK(ipc_decode(buf, sizeof(h) + IPC_MAX_PAYLOAD + 1, &m) == -1);
	h.len = IPC_MAX_PAYLOAD;
	memcpy(buf, &h, sizeof(h));
	CHECK(ipc_decode(buf, sizeof(h) + IPC_MAX_PAYLOAD, &m) == 0);
	/* a length that wraps when the header is added */
	h.len = 0xffffffff;
	memcpy(buf, &h, sizeof(h));
	CHECK(ipc_decode(buf, sizeof(h) - 1, &m) == -1);
}

static void
test_roundtrip(void)
{
	static unsigned char	 big[IPC_MAX_PAYLOAD];
	struct stat		 a, b;
	int			 sv[2], fd;

	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	memset(big, 'x', sizeof(big));
	CHECK(ipc_send(sv[0], IPC_DELETE, big, sizeof(big), -1) == 0);
	CHECK(ipc_recv(sv[1], PROC_SESSION, &m) == 1);
	CHECK_INT(m.type, ==, IPC_DELETE);
	CHECK_INT(m.len, ==, sizeof(big));
	CHECK_INT(m.fd, ==, -1);
	CHECK_MEM(m.data, big, sizeof(big));
	/* too big or of no known type: refused before sending */
	CHECK(ipc_send(sv[0], IPC_INDEX, big, sizeof(big) + 1, -1) == -1);
	CHECK(ipc_send(sv[0], IPC_TYPE_MAX, NULL, 0, -1) == -1);
	/* a descriptor arrives as the same open file */
	fd = open("/dev/null", O_RDONLY);
	CHECK(ipc_send(sv[0], IPC_READY, NULL, 0, fd) == 0);
	CHECK(ipc_recv(sv[1], PROC_MAILDROP, &m) == 1);
	CHECK_INT(m.type, ==, IPC_READY);
	REQUIRE(m.fd != -1);
	CHECK(fstat(fd, &a) == 0 && fstat(m.fd, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	CHECK(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
	close(m.fd);
	close(fd);
	/* end of file */
	close(sv[0]);
	CHECK(ipc_recv(sv[1], PROC_MAILDROP, &m) == 0);
	close(sv[1]);
}

/* Sends one message on sv[0] and returns what ipc_recv on sv[1] says. */
static int
contract_try(int *sv, int from, uint32_t type, const void *data, size_t len,
    int fd)
{
	int	 rv;

	if (ipc_send(sv[0], type, data, len, fd) == -1)
		return -3;
	rv = ipc_recv(sv[1], from, &m);
	if (m.fd != -1)
		close(m.fd);
	return rv;
}

static void
test_contract(void)
{
	unsigned char	 buf[sizeof(struct ipc_auth) + 16];
	struct ipc_auth	 a;
	uint32_t	 pri = 6;
	int		 sv[2], fd, i;

	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	fd = open("/dev/null", O_RDONLY);
	/* the sender */
	CHECK(contract_try(sv, PROC_MAILDROP, IPC_AUTH, NULL, 0, -1) == -2);
	CHECK(contract_try(sv, PROC_SESSION, IPC_DOTLOCK, NULL, 0, -1) == -2);
	CHECK(contract_try(sv, PROC_MONITOR, IPC_COMMIT, NULL, 0, -1) == -2);
	/* the length */
	CHECK(contract_try(sv, PROC_MAILDROP, IPC_DOTLOCK, &pri, 4, -1) == -2);
	CHECK(contract_try(sv, PROC_SESSION, IPC_LOG, &pri, 3, -1) == -2);
	CHECK(contract_try(sv, PROC_SESSION, IPC_LOG, &pri, 4, -1) == 1);
	CHECK(contract_try(sv, PROC_SESSION, IPC_DELETE, buf, 6, -1) == -2);
	/* the descriptor: where none may come, where one must */
	CHECK(contract_try(sv, PROC_SESSION, IPC_LOG, &pri, 4, fd) == -2);
	CHECK(contract_try(sv, PROC_MONITOR, IPC_AUTH_OK, NULL, 0, -1) == -2);
	CHECK(contract_try(sv, PROC_MONITOR, IPC_AUTH_OK, NULL, 0, fd) == 1);
	/* how often: one IPC_AUTH_OK in a process's life */
	CHECK(contract_try(sv, PROC_MONITOR, IPC_AUTH_OK, NULL, 0, fd) == -2);
	CHECK(contract_try(sv, PROC_MAILDROP, IPC_JOURNAL_CREATE, NULL, 0,
	    -1) == 1);
	CHECK(contract_try(sv, PROC_MAILDROP, IPC_JOURNAL_CREATE, NULL, 0,
	    -1) == -2);
	/* IPC_AUTH: the lengths inside must add up */
	a.userlen = 5;
	a.passlen = 3;
	a.tlslen = 0;
	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), "alicepwd", 8);
	CHECK(contract_try(sv, PROC_SESSION, IPC_AUTH, buf, sizeof(a) + 7,
	    -1) == -2);
	a.passlen = 0xfffffffd;		/* wraps to the right sum */
	memcpy(buf, &a, sizeof(a));
	CHECK(contract_try(sv, PROC_SESSION, IPC_AUTH, buf, sizeof(a) + 2,
	    -1) == -2);
	a.passlen = 3;
	memcpy(buf, &a, sizeof(a));
	for (i = 0; i < MAX_AUTH_REQUESTS; i++)
		CHECK(contract_try(sv, PROC_SESSION, IPC_AUTH, buf,
		    sizeof(a) + 8, -1) == 1);
	CHECK(contract_try(sv, PROC_SESSION, IPC_AUTH, buf, sizeof(a) + 8,
	    -1) == -2);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

static void
test_string(void)
{
	char	 out[8];

	CHECK(ipc_string(out, (const unsigned char *)"TLSv1.3", 7) == 0);
	CHECK_STR(out, "TLSv1.3");
	CHECK(ipc_string(out, (const unsigned char *)"a\nb", 3) == -1);
	CHECK(ipc_string(out, (const unsigned char *)"a\177b", 3) == -1);
	CHECK(ipc_string(out, (const unsigned char *)"a\0b", 3) == -1);
}

static void
test_malformed_datagram(void)
{
	unsigned char	 junk[3] = { 1, 2, 3 };
	int		 sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	CHECK(send(sv[0], junk, sizeof(junk), 0) == 3);
	CHECK(ipc_recv(sv[1], PROC_SESSION, &m) == -2);
	close(sv[0]);
	close(sv[1]);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	UNIT_RUN(test_decode);
	UNIT_RUN(test_roundtrip);
	UNIT_RUN(test_malformed_datagram);
	UNIT_RUN(test_contract);
	UNIT_RUN(test_string);
	return unit_end();
}
