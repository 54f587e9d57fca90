/*
 * fuzz_proxy.c: the PROXY protocol parser and the -x network list.  The
 * input is read two ways.  As the bytes a trusted peer sends: they are
 * fed to proxy_need the way proxy_accept reads them, which must never ask
 * for more than the bounds allow, and the header it takes is parsed; a
 * header accepted must satisfy the rules of proxy-protocol.txt checked
 * here apart (signature, CRLF, length field, bounds) and name a client
 * address in canonical form.  As the text of -x (up to a NUL): a list
 * accepted must hold each network's own address and refuse an address
 * with a bit flipped inside its prefix.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <string.h>

#include "pop3d.h"
#include "fuzz.h"

#define HEADER_MAX	(16 + PROXY_V2_MAX_ADDR + PROXY_V2_MAX_TLV)

static const unsigned char	 v2sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* What any accepted header must be, whatever the parser thinks. */
static void
check_header(const uint8_t *p, size_t n, const struct proxy_hdr *h)
{
	char	 canon[INET6_ADDRSTRLEN];
	size_t	 len;

	if (p[0] == 'P') {
		FUZZ_CHECK(n >= 8 && n <= PROXY_V1_MAX);
		FUZZ_CHECK(memcmp(p, "PROXY ", 6) == 0);
		FUZZ_CHECK(p[n - 2] == '\r' && p[n - 1] == '\n');
		FUZZ_CHECK(memchr(p, '\n', n - 1) == NULL);
		FUZZ_CHECK(h->local == (memcmp(p + 6, "UNKNOWN", 7) == 0));
		FUZZ_CHECK(!h->ssl);
	} else {
		FUZZ_CHECK(n >= 16 && memcmp(p, v2sig, 12) == 0);
		len = (size_t)p[14] << 8 | p[15];
		FUZZ_CHECK(n == 16 + len);
		FUZZ_CHECK(p[12] == 0x20 || p[12] == 0x21);
		FUZZ_CHECK(h->local == (p[12] == 0x20));
		if (!h->local)
			FUZZ_CHECK(p[13] == 0x11 || p[13] == 0x21);
	}
	if (h->local) {
		FUZZ_CHECK(h->src[0] == '\0');
		return;
	}
	FUZZ_CHECK(proxy_canonical(h->src, canon, sizeof(canon)) == 0);
	FUZZ_CHECK(strcmp(canon, h->src) == 0);
}

static void
check_stream(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 h;
	size_t			 have = 0;
	ssize_t			 need;

	while ((need = proxy_need(data, have)) > 0) {
		FUZZ_CHECK(have + need <= HEADER_MAX);
		if (have + need > size)
			return;
		have += need;
	}
	if (need == -1) {
		FUZZ_CHECK(proxy_parse(data, have, &h) == -1);
		return;
	}
	FUZZ_CHECK(have > 0);
	if (proxy_parse(data, have, &h) == 0)
		check_header(data, have, &h);
	/* a prefix of a header is never one */
	FUZZ_CHECK(proxy_parse(data, have - 1, &h) == -1);
}

static void
check_nets(const uint8_t *data, size_t size)
{
	static struct proxy_net	 nets[PROXY_MAX_NETS];
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;
	char			 text[1024], err[128];
	unsigned char		*a;
	size_t			 n, i, bits;

	n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, n);
	text[n] = '\0';
	if (proxy_nets_parse(text, nets, &n, err, sizeof(err)) == -1)
		return;
	FUZZ_CHECK(n >= 1 && n <= PROXY_MAX_NETS);
	for (i = 0; i < n; i++) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = nets[i].family;
		bits = nets[i].family == AF_INET ? 32 : 128;
		FUZZ_CHECK(nets[i].prefix <= bits);
		a = nets[i].family == AF_INET ?
		    (unsigned char *)&s4->sin_addr : s6->sin6_addr.s6_addr;
		memcpy(a, nets[i].addr, bits / 8);
		FUZZ_CHECK(proxy_nets_match(&nets[i], 1, &ss));
		if (nets[i].prefix > 0) {
			a[(nets[i].prefix - 1) / 8] ^=
			    0x80 >> ((nets[i].prefix - 1) % 8);
			FUZZ_CHECK(!proxy_nets_match(&nets[i], 1, &ss));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_stream(data, size);
	check_nets(data, size);
	return 0;
}
