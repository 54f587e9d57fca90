/*
 * unit_proxy.c: the PROXY protocol parser (v1 lines, v2 blocks with
 * their TLVs, the bounds of both), the reader that takes exactly the
 * header's bytes off a socket, and the -x network list.
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pop3d.h"
#include "unit.h"

static const unsigned char	 sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* Parses a whole header given as text; returns proxy_parse's answer. */
static int
parse_text(const char *text, struct proxy_hdr *h)
{
	return proxy_parse((const unsigned char *)text, strlen(text), h);
}

/* Feeds buf to proxy_need as a reader would: returns the bytes it took
 * before it said 0 (whole) or -1 (invalid, then -1). */
static ssize_t
feed(const unsigned char *buf, size_t n)
{
	size_t	 have = 0;
	ssize_t	 need;

	while ((need = proxy_need(buf, have)) > 0) {
		if (have + need > n)
			return -2;	/* wants more than there is */
		have += need;
	}
	return need == 0 ? (ssize_t)have : -1;
}

/* A v2 header: command, family, addresses and TLVs as given. */
static size_t
v2(unsigned char *out, int cmd, int fam, const void *body, size_t len)
{
	memcpy(out, sig, 12);
	out[12] = cmd;
	out[13] = fam;
	out[14] = len >> 8;
	out[15] = len & 0xff;
	memcpy(out + 16, body, len);
	return 16 + len;
}

static void
test_v1(void)
{
	struct proxy_hdr	 h;
	const char		*ok4 = "PROXY TCP4 192.0.2.7 127.0.0.1 5678 110\r\n";
	char			 line[200];

	CHECK_INT(feed((const unsigned char *)ok4, strlen(ok4)), ==,
	    strlen(ok4));
	REQUIRE(parse_text(ok4, &h) == 0);
	CHECK_STR(h.src, "192.0.2.7");
	CHECK(!h.local && !h.ssl);
	REQUIRE(parse_text("PROXY TCP6 2001:DB8:0:0::1 ::1 65535 0\r\n",
	    &h) == 0);
	CHECK_STR(h.src, "2001:db8::1");	/* canonical */
	REQUIRE(parse_text("PROXY UNKNOWN\r\n", &h) == 0);
	CHECK(h.local);
	REQUIRE(parse_text("PROXY UNKNOWN ffff::1 ::1 1 2\r\n", &h) == 0);
	CHECK(h.local);
	/* not quite a header */
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 5678 110\n", &h) ==
	    -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 5678\r\n", &h) == -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 5678 110 \r\n",
	    &h) == -1);
	CHECK(parse_text("PROXY TCP4  192.0.2.7 127.0.0.1 5678 110\r\n",
	    &h) == -1);
	CHECK(parse_text("PROXY TCP4 ::1 127.0.0.1 5678 110\r\n", &h) == -1);
	CHECK(parse_text("PROXY TCP6 192.0.2.7 ::1 5678 110\r\n", &h) == -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 65536 110\r\n",
	    &h) == -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 0110 110\r\n",
	    &h) == -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7 127.0.0.1 -1 110\r\n", &h) ==
	    -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.07 127.0.0.1 1 110\r\n", &h) ==
	    -1);
	CHECK(parse_text("PROXY UDP4 192.0.2.7 127.0.0.1 1 110\r\n", &h) ==
	    -1);
	CHECK(parse_text("PROXY TCP4 192.0.2.7\t127.0.0.1 1 110\r\n", &h) ==
	    -1);
	CHECK(parse_text("PROXY UNKNOWNX\r\n", &h) == -1);
	CHECK(parse_text("proxy TCP4 192.0.2.7 127.0.0.1 1 110\r\n", &h) ==
	    -1);
	CHECK(parse_text("USER alice\r\n", &h) == -1);
	CHECK(proxy_need((const unsigned char *)"PROXX", 5) == -1);
	CHECK(proxy_need((const unsigned char *)"USER", 4) == -1);
	CHECK(proxy_need((const unsigned char *)"PRO", 3) == 1);
	/* 107 octets is the bound, CRLF included */
	memset(line, 0, sizeof(line));
	snprintf(line, sizeof(line), "PROXY UNKNOWN %0*d\r\n", 107 - 16, 0);
	CHECK_INT(strlen(line), ==, 107);
	CHECK_INT(feed((unsigned char *)line, strlen(line)), ==, 107);
	CHECK(parse_text(line, &h) == 0);
	snprintf(line, sizeof(line), "PROXY UNKNOWN %0*d\r\n", 108 - 16, 0);
	CHECK_INT(feed((unsigned char *)line, strlen(line)), ==, -1);
	CHECK(parse_text(line, &h) == -1);
	/* two headers, or a command after one, are not one header */
	snprintf(line, sizeof(line), "%sUSER x\r\n", ok4);
	CHECK_INT(feed((unsigned char *)line, strlen(line)), ==, strlen(ok4));
	CHECK(parse_text(line, &h) == -1);
	CHECK(proxy_parse((const unsigned char *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n",
	    33, &h) == -1);
}

static void
test_v2(void)
{
	unsigned char		 buf[4096], body[4096];
	struct proxy_hdr	 h;
	size_t			 n;

	/* TCP over IPv4, no TLV */
	memcpy(body, "\xc0\x00\x02\x07\x7f\x00\x00\x01\x16\x2e\x00\x6e", 12);
	n = v2(buf, 0x21, 0x11, body, 12);
	CHECK_INT(feed(buf, n), ==, n);
	REQUIRE(proxy_parse(buf, n, &h) == 0);
	CHECK_STR(h.src, "192.0.2.7");
	CHECK(!h.ssl && !h.local);
	/* a byte short or over */
	CHECK(proxy_parse(buf, n - 1, &h) == -1);
	CHECK(proxy_parse(buf, n + 1, &h) == -1);
	CHECK(feed(buf, n - 1) == -2);
	/* UDP, UNIX, UNSPEC with PROXY: errors */
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x12, body, 12), &h) == -1);
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x31, body, 12), &h) == -1);
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x00, body, 12), &h) == -1);
	/* version 1 in a v2 block, an unknown command */
	CHECK(proxy_parse(buf, v2(buf, 0x11, 0x11, body, 12), &h) == -1);
	CHECK(proxy_parse(buf, v2(buf, 0x22, 0x11, body, 12), &h) == -1);
	/* addresses cut short */
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x11, body, 11), &h) == -1);
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 35), &h) == -1);
	/* LOCAL: any family, addresses ignored */
	REQUIRE(proxy_parse(buf, v2(buf, 0x20, 0x00, body, 0), &h) == 0);
	CHECK(h.local);
	REQUIRE(proxy_parse(buf, v2(buf, 0x20, 0x31, body, 216), &h) == 0);
	CHECK(h.local);
	/* IPv6 with an SSL TLV carrying PP2_CLIENT_SSL and a sub-TLV */
	memset(body, 0, 36);
	body[0] = 0x20;
	body[1] = 0x01;
	body[15] = 0x05;
	body[31] = 1;
	memcpy(body + 36, "\x20\x00\x0c\x01\x00\x00\x00\x00"
	    "\x21\x00\x04TLSv", 15);
	memcpy(body + 51, "\x04\x00\x02xx", 5);	/* NOOP */
	n = v2(buf, 0x21, 0x21, body, 56);
	CHECK_INT(feed(buf, n), ==, n);
	REQUIRE(proxy_parse(buf, n, &h) == 0);
	CHECK_STR(h.src, "2001::5");
	CHECK(h.ssl);
	/* the same without the client bit */
	body[39] = 0x00;
	REQUIRE(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 56), &h) == 0);
	CHECK(!h.ssl);
	body[39] = 0x01;
	/* a TLV longer than what is left, one cut in its header */
	body[38] = 0x0d;
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 56), &h) == -1);
	body[38] = 0x0c;
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 53), &h) == -1);
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 54), &h) == -1);
	/* an SSL TLV without room for its verify field */
	memcpy(body + 36, "\x20\x00\x01\x01", 4);
	CHECK(proxy_parse(buf, v2(buf, 0x21, 0x21, body, 40), &h) == -1);
	/* the TLV bound: at the limit fine, one over refused at once */
	memset(body + 36, 0, sizeof(body) - 36);
	body[36] = 0x04;
	body[37] = (PROXY_V2_MAX_TLV - 3) >> 8;
	body[38] = (PROXY_V2_MAX_TLV - 3) & 0xff;
	n = v2(buf, 0x21, 0x21, body, 36 + PROXY_V2_MAX_TLV);
	CHECK(proxy_parse(buf, n, &h) == 0);
	body[37] = (PROXY_V2_MAX_TLV - 2) >> 8;
	body[38] = (PROXY_V2_MAX_TLV - 2) & 0xff;
	n = v2(buf, 0x21, 0x21, body, 36 + PROXY_V2_MAX_TLV + 1);
	CHECK(proxy_parse(buf, n, &h) == -1);
	buf[14] = 0xff;
	buf[15] = 0xff;
	CHECK(proxy_need(buf, 16) == -1);
	/* a signature that goes wrong late */
	memcpy(buf, sig, 12);
	buf[11] = 'X';
	CHECK(proxy_need(buf, 11) == 5);
	CHECK(proxy_need(buf, 12) == -1);
}

/* The reader takes the header and leaves what follows on the socket. */
static void
test_accept(void)
{
	static struct pop3d_conf	 conf;
	const char			*hdr = "PROXY TCP4 192.0.2.9 127.0.0.1 "
					    "40000 110\r\n";
	char				 rest[16];
	int				 c[2], mon[2], ssl = 1;
	static struct ipc_msg		 m;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, c) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, mon) == 0);
	REQUIRE(fcntl(c[0], F_SETFL, O_NONBLOCK) == 0);
	strlcpy(conf.peer, "127.0.0.1", sizeof(conf.peer));
	REQUIRE(write(c[1], hdr, strlen(hdr)) == (ssize_t)strlen(hdr));
	REQUIRE(write(c[1], "\x16\x03\x01", 3) == 3);
	CHECK(proxy_accept(&conf, c[0], mon[1], &ssl) == NULL);
	CHECK(ssl == 0);
	CHECK_STR(conf.peer, "192.0.2.9");
	CHECK_STR(conf.via, "127.0.0.1");
	REQUIRE(ipc_recv(mon[0], PROC_SESSION, &m) == 1);
	CHECK_INT(m.type, ==, IPC_PROXY);
	CHECK_INT(m.len, ==, 4 + strlen("192.0.2.9"));
	CHECK_MEM(m.data + 4, "192.0.2.9", 9);
	/* what followed the header is still there, unread */
	CHECK(read(c[0], rest, sizeof(rest)) == 3);
	/* garbage, and the peer closing half-way */
	REQUIRE(write(c[1], "GET / HTTP/1.0\r\n", 16) == 16);
	CHECK_STR(proxy_accept(&conf, c[0], mon[1], &ssl),
	    "invalid-proxy-header");
	CHECK(read(c[0], rest, sizeof(rest)) == 15);	/* one byte taken */
	REQUIRE(write(c[1], "PROXY TCP4 ", 11) == 11);
	close(c[1]);
	CHECK_STR(proxy_accept(&conf, c[0], mon[1], &ssl),
	    "connection-closed");
	close(c[0]);
	close(mon[0]);
	close(mon[1]);
}

static void
test_nets(void)
{
	struct proxy_net		 nets[PROXY_MAX_NETS];
	struct sockaddr_storage		 ss;
	struct sockaddr_in		*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6		*s6 = (struct sockaddr_in6 *)&ss;
	char				 err[128], many[2048];
	size_t				 n, i;

	REQUIRE(proxy_nets_parse("127.0.0.0/8,::1/128,10.1.2.3,"
	    "fd00::/8,192.168.0.0/23", nets, &n, err, sizeof(err)) == 0);
	CHECK_INT(n, ==, 5);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	inet_pton(AF_INET, "127.9.8.7", &s4->sin_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET, "128.0.0.1", &s4->sin_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET, "10.1.2.3", &s4->sin_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET, "10.1.2.4", &s4->sin_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET, "192.168.1.255", &s4->sin_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET, "192.168.2.0", &s4->sin_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &s6->sin6_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET6, "::2", &s6->sin6_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET6, "fdff::1", &s6->sin6_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET6, "fe00::1", &s6->sin6_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	/* an IPv4 client of a dual-stack socket */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6->sin6_addr);
	CHECK(proxy_nets_match(nets, n, &ss));
	inet_pton(AF_INET6, "::ffff:128.0.0.1", &s6->sin6_addr);
	CHECK(!proxy_nets_match(nets, n, &ss));
	/* no peer address (a pipe): never a proxy */
	memset(&ss, 0, sizeof(ss));
	CHECK(!proxy_nets_match(nets, n, &ss));
	/* /0 matches its whole family */
	REQUIRE(proxy_nets_parse("0.0.0.0/0", nets, &n, err, sizeof(err)) ==
	    0);
	ss.ss_family = AF_INET;
	CHECK(proxy_nets_match(nets, n, &ss));
	ss.ss_family = AF_INET6;
	CHECK(!proxy_nets_match(nets, n, &ss));
	/* refused */
	CHECK(proxy_nets_parse("", nets, &n, err, sizeof(err)) == -1);
	CHECK(proxy_nets_parse("127.0.0.1,", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse(",127.0.0.1", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("127.0.0.1/33", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("::/129", nets, &n, err, sizeof(err)) == -1);
	CHECK(proxy_nets_parse("127.0.0.1/8", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(strstr(err, "127.0.0.1/8") != NULL);
	CHECK(proxy_nets_parse("127.0.0.0/08", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("127.0.0.0/", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("127.0.0.0/-8", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("localhost", nets, &n, err, sizeof(err)) ==
	    -1);
	CHECK(proxy_nets_parse("127.0.0.0 /8", nets, &n, err, sizeof(err)) ==
	    -1);
	/* the count bound */
	for (i = 0, n = 0; i <= PROXY_MAX_NETS; i++)
		n += snprintf(many + n, sizeof(many) - n, "%s10.0.0.1",
		    i ? "," : "");
	CHECK(proxy_nets_parse(many, nets, &n, err, sizeof(err)) == -1);
	*strrchr(many, ',') = '\0';
	CHECK(proxy_nets_parse(many, nets, &n, err, sizeof(err)) == 0);
	CHECK_INT(n, ==, PROXY_MAX_NETS);
}

static void
test_canonical(void)
{
	char	 out[INET6_ADDRSTRLEN];

	CHECK(proxy_canonical("192.0.2.1", out, sizeof(out)) == 0);
	CHECK_STR(out, "192.0.2.1");
	CHECK(proxy_canonical("2001:DB8::0:1", out, sizeof(out)) == 0);
	CHECK_STR(out, "2001:db8::1");
	CHECK(proxy_canonical("192.0.2.1 ", out, sizeof(out)) == -1);
	CHECK(proxy_canonical("evil\nline", out, sizeof(out)) == -1);
	CHECK(proxy_canonical("", out, sizeof(out)) == -1);
}

int
main(int argc, char *argv[])
{
	unit_init(argc, argv);
	UNIT_RUN(test_v1);
	UNIT_RUN(test_v2);
	UNIT_RUN(test_accept);
	UNIT_RUN(test_nets);
	UNIT_RUN(test_canonical);
	return unit_end();
}
