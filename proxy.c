/*
 * proxy.c: the PROXY protocol, versions 1 and 2 (haproxy.org's
 * proxy-protocol.txt), that a proxy in front of pop3d sends before the
 * first POP3 byte, and the -x list of networks such a header is taken
 * from.  The parsers are pure functions over bytes; proxy_accept reads
 * the header off the client descriptor, exactly its own bytes and no
 * more, so that a TLS handshake or a command after it is left unread.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pop3d.h"

static const unsigned char	 v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char		 v1_sig[] = "PROXY ";

#define V2_HEADER	16	/* signature, version/command, family, length */
#define V2_CMD_LOCAL	0x20
#define V2_CMD_PROXY	0x21
#define V2_TCP4		0x11
#define V2_TCP6		0x21
#define V2_ADDR4	12	/* two IPv4 addresses, two ports */
#define V2_ADDR6	36
#define PP2_TYPE_SSL	0x20
#define PP2_CLIENT_SSL	0x01

ssize_t
proxy_need(const unsigned char *buf, size_t n)
{
	size_t	 len, sig;

	if (n == 0)
		return 1;
	if (buf[0] == 'P') {
		sig = n < sizeof(v1_sig) - 1 ? n : sizeof(v1_sig) - 1;
		if (memcmp(buf, v1_sig, sig) != 0)
			return -1;
		if (buf[n - 1] == '\n')
			return 0;
		/* one byte at a time: the line's end is not known before */
		return n < PROXY_V1_MAX ? 1 : -1;
	}
	sig = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, sig) != 0)
		return -1;
	if (n < V2_HEADER)
		return V2_HEADER - n;
	len = (size_t)buf[14] << 8 | buf[15];
	if (len > PROXY_V2_MAX_ADDR + PROXY_V2_MAX_TLV)
		return -1;
	return n < V2_HEADER + len ? (ssize_t)(V2_HEADER + len - n) : 0;
}

/* A port in a v1 header: 1 to 5 digits, no leading zero, at most 65535. */
static int
v1_port(const char *s)
{
	size_t	 i, len = strlen(s);
	long	 v = 0;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? 0 : -1;
}

/* "PROXY TCP4|TCP6 src dst sport dport\r\n", or "PROXY UNKNOWN...". */
static int
proxy_parse_v1(const unsigned char *buf, size_t n, struct proxy_hdr *h)
{
	char		 line[PROXY_V1_MAX + 1], *p, *word[5];
	unsigned char	 src[16], dst[16];
	size_t		 i;
	int		 family;

	if (n < sizeof(v1_sig) + 1 || n > PROXY_V1_MAX ||
	    buf[n - 2] != '\r' || buf[n - 1] != '\n')
		return -1;
	memcpy(line, buf, n - 2);
	line[n - 2] = '\0';
	for (i = 0; i < n - 2; i++)
		if (line[i] < 0x20 || line[i] > 0x7e)
			return -1;
	p = line + sizeof(v1_sig) - 1;
	/* the v1 counterpart of LOCAL: what follows is to be ignored */
	if (strncmp(p, "UNKNOWN", 7) == 0 && (p[7] == '\0' || p[7] == ' ')) {
		h->local = 1;
		return 0;
	}
	for (i = 0; i < 5; i++)
		if ((word[i] = strsep(&p, " ")) == NULL || *word[i] == '\0')
			return -1;
	if (p != NULL)
		return -1;
	if (strcmp(word[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(word[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return -1;
	if (inet_pton(family, word[1], src) != 1 ||
	    inet_pton(family, word[2], dst) != 1 ||
	    v1_port(word[3]) == -1 || v1_port(word[4]) == -1)
		return -1;
	if (inet_ntop(family, src, h->src, sizeof(h->src)) == NULL)
		return -1;
	return 0;
}

/* The TLVs after the addresses: each whole; PP2_TYPE_SSL says TLS. */
static int
proxy_parse_tlv(const unsigned char *p, size_t left, struct proxy_hdr *h)
{
	size_t	 len;

	while (left > 0) {
		if (left < 3)
			return -1;
		len = (size_t)p[1] << 8 | p[2];
		if (len > left - 3)
			return -1;
		if (p[0] == PP2_TYPE_SSL) {
			/* client bits, then a 32-bit verify result */
			if (len < 5)
				return -1;
			if (p[3] & PP2_CLIENT_SSL)
				h->ssl = 1;
		}
		p += 3 + len;
		left -= 3 + len;
	}
	return 0;
}

static int
proxy_parse_v2(const unsigned char *buf, size_t n, struct proxy_hdr *h)
{
	size_t	 len, alen;
	int	 family;

	if (n < V2_HEADER || memcmp(buf, v2_sig, sizeof(v2_sig)) != 0)
		return -1;
	len = (size_t)buf[14] << 8 | buf[15];
	if (len > PROXY_V2_MAX_ADDR + PROXY_V2_MAX_TLV || n != V2_HEADER + len)
		return -1;
	if (buf[12] == V2_CMD_LOCAL) {
		/* a health check: the proxy's own connection, as it is */
		h->local = 1;
		return 0;
	}
	if (buf[12] != V2_CMD_PROXY)
		return -1;
	if (buf[13] == V2_TCP4) {
		family = AF_INET;
		alen = V2_ADDR4;
	} else if (buf[13] == V2_TCP6) {
		family = AF_INET6;
		alen = V2_ADDR6;
	} else
		return -1;
	if (len < alen || len - alen > PROXY_V2_MAX_TLV)
		return -1;
	if (inet_ntop(family, buf + V2_HEADER, h->src, sizeof(h->src)) ==
	    NULL)
		return -1;
	return proxy_parse_tlv(buf + V2_HEADER + alen, len - alen, h);
}

int
proxy_parse(const unsigned char *buf, size_t n, struct proxy_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (proxy_need(buf, n) != 0)
		return -1;
	if ((buf[0] == 'P' ? proxy_parse_v1(buf, n, h) :
	    proxy_parse_v2(buf, n, h)) == -1) {
		memset(h, 0, sizeof(*h));
		return -1;
	}
	return 0;
}

/* One network of -x: "addr" or "addr/prefix", no host bits set. */
static int
proxy_net_parse(const char *s, struct proxy_net *net)
{
	char		 addr[INET6_ADDRSTRLEN], *slash, *end;
	size_t		 i, bits;
	long		 prefix;

	memset(net, 0, sizeof(*net));
	if (strlcpy(addr, s, sizeof(addr)) >= sizeof(addr))
		return -1;
	if ((slash = strchr(addr, '/')) != NULL)
		*slash++ = '\0';
	net->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(net->family, addr, net->addr) != 1)
		return -1;
	bits = net->family == AF_INET ? 32 : 128;
	prefix = bits;
	if (slash != NULL) {
		if (*slash < '0' || *slash > '9' || (slash[0] == '0' &&
		    slash[1] != '\0'))
			return -1;
		prefix = strtol(slash, &end, 10);
		if (*end != '\0' || prefix > (long)bits)
			return -1;
	}
	net->prefix = prefix;
	for (i = prefix; i < bits; i++)
		if (net->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

int
proxy_nets_parse(const char *spec, struct proxy_net *nets, size_t *count,
    char *err, size_t errsize)
{
	char		 one[PROXY_NET_MAX_TEXT];
	const char	*p = spec, *comma;
	size_t		 len;

	*count = 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(one)) {
			snprintf(err, errsize, "empty or overlong network");
			return -1;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (*count == PROXY_MAX_NETS) {
			snprintf(err, errsize, "more than %d networks",
			    PROXY_MAX_NETS);
			return -1;
		}
		if (proxy_net_parse(one, &nets[*count]) == -1) {
			snprintf(err, errsize, "%s: not an address or a "
			    "network address/prefix without host bits", one);
			return -1;
		}
		(*count)++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

static int
proxy_net_match(const struct proxy_net *net, int family,
    const unsigned char *a)
{
	size_t	 full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != family || memcmp(net->addr, a, full) != 0)
		return 0;
	return rest == 0 ||
	    ((net->addr[full] ^ a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

int
proxy_nets_match(const struct proxy_net *nets, size_t count,
    const struct sockaddr_storage *ss)
{
	static const unsigned char	 mapped[12] = { 0, 0, 0, 0, 0, 0, 0,
					    0, 0, 0, 0xff, 0xff };
	const unsigned char		*a;
	size_t				 i;
	int				 family = ss->ss_family;

	if (family == AF_INET)
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)ss)->sin_addr;
	else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		/* an IPv4 client of a dual-stack socket */
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			a += sizeof(mapped);
		}
	} else
		return 0;
	for (i = 0; i < count; i++)
		if (proxy_net_match(&nets[i], family, a))
			return 1;
	return 0;
}

int
proxy_canonical(const char *text, char *out, size_t size)
{
	unsigned char	 a[16];
	int		 family;

	if (strnlen(text, INET6_ADDRSTRLEN) == INET6_ADDRSTRLEN)
		return -1;
	family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(family, text, a) != 1 ||
	    inet_ntop(family, a, out, size) == NULL)
		return -1;
	return 0;
}

/* Reads exactly n more bytes into buf by the deadline (monotonic s). */
static const char *
proxy_read(int fd, unsigned char *buf, size_t n, time_t deadline)
{
	struct pollfd	 pfd;
	struct timespec	 ts;
	ssize_t		 r;

	while (n > 0) {
		if ((r = read(fd, buf, n)) > 0) {
			buf += r;
			n -= r;
			continue;
		}
		if (r == 0)
			return "connection-closed";
		if (errno != EAGAIN && errno != EINTR)
			return "connection-lost";
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec >= deadline)
			return "timed-out";
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (deadline - ts.tv_sec) * 1000) == -1 &&
		    errno != EINTR)
			return "connection-lost";
	}
	return NULL;
}

const char *
proxy_accept(struct pop3d_conf *conf, int fd, int monitor_fd, int *ssl)
{
	unsigned char		 buf[V2_HEADER + PROXY_V2_MAX_ADDR +
				    PROXY_V2_MAX_TLV];
	unsigned char		 msg[sizeof(uint32_t) + INET6_ADDRSTRLEN];
	struct proxy_hdr	 h;
	struct timespec		 ts;
	const char		*why;
	uint32_t		 flags;
	size_t			 n = 0;
	ssize_t			 need;

	*ssl = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	while ((need = proxy_need(buf, n)) > 0) {
		if ((why = proxy_read(fd, buf + n, need,
		    ts.tv_sec + PROXY_HEADER_TIMEOUT)) != NULL)
			return why;
		n += need;
	}
	if (need == -1 || proxy_parse(buf, n, &h) == -1)
		return "invalid-proxy-header";
	if (h.local)
		return NULL;	/* served as the proxy itself */
	*ssl = h.ssl;
	flags = h.ssl ? IPC_PROXY_SSL : 0;
	memcpy(msg, &flags, sizeof(flags));
	n = strlen(h.src);
	memcpy(msg + sizeof(flags), h.src, n);
	if (ipc_send(monitor_fd, IPC_PROXY, msg, sizeof(flags) + n, -1) == -1)
		fatal("send to monitor");
	/* this process's own log lines name the client too */
	strlcpy(conf->via, conf->peer, sizeof(conf->via));
	strlcpy(conf->peer, h.src, sizeof(conf->peer));
	return NULL;
}

#ifdef POP3D_TEST_HOOKS
/*
 * Test builds: POP3D_TEST_FORGE_PROXY=ADDRESS makes the session process
 * claim a client address of its own, as a compromised one would, after
 * the header (if any) is read, to prove that the monitor believes only
 * one report, only from a peer in -x, and only a valid address.
 */
void
proxy_test_forge(int monitor_fd)
{
	const char	*addr = getenv("POP3D_TEST_FORGE_PROXY");
	unsigned char	 msg[sizeof(uint32_t) + 64];
	uint32_t	 flags = IPC_PROXY_SSL;
	size_t		 n;

	if (addr == NULL || (n = strlen(addr)) > 64)
		return;
	memcpy(msg, &flags, sizeof(flags));
	memcpy(msg + sizeof(flags), addr, n);
	if (ipc_send(monitor_fd, IPC_PROXY, msg, sizeof(flags) + n, -1) == -1)
		fatal("send to monitor");
}
#endif
