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
	CHECK(ipc_send(sv[0], IPC_INDEX, big, sizeof(big), -1) == 0);
	CHECK(ipc_recv(sv[1], &m) == 1);
	CHECK_INT(m.type, ==, IPC_INDEX);
	CHECK_INT(m.len, ==, sizeof(big));
	CHECK_INT(m.fd, ==, -1);
	CHECK_MEM(m.data, big, sizeof(big));
	/* too big or of no known type: refused before sending */
	CHECK(ipc_send(sv[0], IPC_INDEX, big, sizeof(big) + 1, -1) == -1);
	CHECK(ipc_send(sv[0], IPC_TYPE_MAX, NULL, 0, -1) == -1);
	/* a descriptor arrives as the same open file */
	fd = open("/dev/null", O_RDONLY);
	CHECK(ipc_send(sv[0], IPC_READY, NULL, 0, fd) == 0);
	CHECK(ipc_recv(sv[1], &m) == 1);
	CHECK_INT(m.type, ==, IPC_READY);
	REQUIRE(m.fd != -1);
	CHECK(fstat(fd, &a) == 0 && fstat(m.fd, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	CHECK(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
	close(m.fd);
	close(fd);
	/* end of file */
	close(sv[0]);
	CHECK(ipc_recv(sv[1], &m) == 0);
	close(sv[1]);
}

static void
test_malformed_datagram(void)
{
	unsigned char	 junk[3] = { 1, 2, 3 };
	int		 sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	CHECK(send(sv[0], junk, sizeof(junk), 0) == 3);
	CHECK(ipc_recv(sv[1], &m) == -2);
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
	return unit_end();
}
