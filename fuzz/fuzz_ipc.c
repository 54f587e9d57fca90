/*
 * fuzz_ipc.c: the IPC frame decoder.  The input is one datagram as
 * ipc_recv gets it from the socket.  ipc_decode must take it exactly when
 * it holds a whole header with a known type and a payload length that is
 * within IPC_MAX_PAYLOAD and is what follows the header; then the type,
 * the length and the payload must be copied as they came, and the
 * descriptor, which does not come in the bytes, left alone.
 */
#include <sys/types.h>

#include <string.h>

#include "pop3d.h"
#include "fuzz.h"

/* Not a descriptor anyone could pass: shows whether m->fd was touched. */
#define FD_MARK		(-12345)

/* The reference reads the header as two words, type then length. */
_Static_assert(sizeof(struct ipc_hdr) == 2 * sizeof(uint32_t) &&
    offsetof(struct ipc_hdr, len) == sizeof(uint32_t), "ipc_hdr layout");

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ipc_msg	 m;
	const char		*why;
	uint32_t		 type = 0, len = 0;
	int			 ok, r;

	/* Host byte order: both ends are the same program. */
	if (size >= sizeof(struct ipc_hdr)) {
		memcpy(&type, data, sizeof(type));
		memcpy(&len, data + sizeof(type), sizeof(len));
	}
	ok = size >= sizeof(struct ipc_hdr) && type > IPC_NONE &&
	    type < IPC_TYPE_MAX && len <= IPC_MAX_PAYLOAD &&
	    (uint64_t)size - sizeof(struct ipc_hdr) == len;

	m.fd = FD_MARK;
	r = ipc_decode(data, size, &m);
	FUZZ_CHECK(r == (ok ? 0 : -1));
	FUZZ_CHECK(m.fd == FD_MARK);
	if (r == 0) {
		FUZZ_CHECK(m.type == type);
		FUZZ_CHECK(m.len == len);
		FUZZ_CHECK(memcmp(m.data, data + sizeof(struct ipc_hdr), len) ==
		    0);
		/* the contract decides without reading past the payload */
		m.fd = -1;
		(void)ipc_allowed(&m, PROC_MONITOR, &why);
		(void)ipc_allowed(&m, PROC_SESSION, &why);
		(void)ipc_allowed(&m, PROC_MAILDROP, &why);
	}
	return 0;
}
