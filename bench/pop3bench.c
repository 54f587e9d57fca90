/*
 * pop3bench.c: the benchmark's POP3 client, small and in C so that it is
 * never the limit.  make bench builds it; bench.py runs it.
 *
 *   pop3bench [-s] [-n count] [-w window] host port user pass mode
 *
 * -s: STLS first (the certificate is not checked: the server is ours).
 * Modes:
 *   stat    login, STAT, QUIT, count times; prints one line per session:
 *           "session PASS_TO_STAT_SECONDS TOTAL_SECONDS MESSAGES OCTETS"
 *   retr    login, STAT, then RETR of every message with window commands
 *           in flight; prints "stat MESSAGES OCTETS SECONDS", then
 *           "retr MESSAGES OCTETS WIRE_OCTETS SECONDS SHA256", where the
 *           digest is over every message as received, dot-unstuffed,
 *           terminators left out: bench.py compares it with the mailbox.
 *   dele    login, STAT, DELE 1 to count, QUIT; prints "stat ...", then
 *           "quit SECONDS" from sending QUIT to the server's close.
 * Before QUIT in retr and dele, and after STAT in retr, it prints "pause"
 * and waits for a line on its standard input, so that bench.py can look
 * at the server's processes while the session is open.
 * Exit status 0, or 1 with a message on stderr.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <tls.h>

#define RBUF	(256 * 1024)

struct conn {
	int		 fd;
	struct tls	*tls;
	char		*buf;
	size_t		 pos, len;
	long long	 wire;		/* octets received */
};

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
c_write(struct conn *c, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if (c->tls != NULL) {
			w = tls_write(c->tls, p, n);
			if (w == TLS_WANT_POLLIN || w == TLS_WANT_POLLOUT)
				continue;
			if (w == -1)
				errx(1, "tls_write: %s", tls_error(c->tls));
		} else if ((w = write(c->fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "write");
		}
		p += w;
		n -= w;
	}
}

/* Reads more; returns 0 at end of file. */
static ssize_t
c_fill(struct conn *c)
{
	ssize_t	 r;

	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == RBUF)
		errx(1, "line too long");
	for (;;) {
		if (c->tls != NULL) {
			r = tls_read(c->tls, c->buf + c->len, RBUF - c->len);
			if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
				continue;
			if (r == -1)
				errx(1, "tls_read: %s", tls_error(c->tls));
		} else if ((r = read(c->fd, c->buf + c->len,
		    RBUF - c->len)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "read");
		}
		c->len += r;
		c->wire += r;
		return r;
	}
}

/* The next line, LF included, NUL-terminated in place; NULL at EOF. */
static char *
c_line(struct conn *c, size_t *lenp)
{
	char	*lf, *line;

	for (;;) {
		lf = memchr(c->buf + c->pos, '\n', c->len - c->pos);
		if (lf != NULL)
			break;
		if (c_fill(c) == 0)
			return NULL;
	}
	line = c->buf + c->pos;
	*lenp = lf - line + 1;
	c->pos += *lenp;
	return line;
}

static char *
c_reply(struct conn *c, const char *what)
{
	static char	 copy[1024];
	char		*l;
	size_t		 n;

	if ((l = c_line(c, &n)) == NULL)
		errx(1, "%s: connection closed", what);
	if (n >= sizeof(copy))
		n = sizeof(copy) - 1;
	memcpy(copy, l, n);
	copy[n] = '\0';
	if (strncmp(copy, "+OK", 3) != 0)
		errx(1, "%s: %s", what, copy);
	return copy;
}

static void
c_cmd(struct conn *c, const char *fmt, const char *arg)
{
	char	 line[512];
	int	 n;

	n = snprintf(line, sizeof(line), fmt, arg);
	if (n < 0 || (size_t)n >= sizeof(line))
		errx(1, "command too long");
	c_write(c, line, n);
}

static void
c_open(struct conn *c, const char *host, int port, int stls)
{
	struct sockaddr_in	 sin;
	struct tls_config	*cfg;
	int			 one = 1;

	memset(c, 0, sizeof(*c));
	if ((c->buf = malloc(RBUF)) == NULL)
		err(1, "malloc");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		errx(1, "%s: not an IPv4 address", host);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "connect");
	c_reply(c, "greeting");
	if (!stls)
		return;
	c_cmd(c, "STLS\r\n", NULL);
	c_reply(c, "STLS");
	if ((cfg = tls_config_new()) == NULL || (c->tls = tls_client()) ==
	    NULL)
		errx(1, "libtls set-up failed");
	tls_config_insecure_noverifycert(cfg);
	tls_config_insecure_noverifyname(cfg);
	if (tls_configure(c->tls, cfg) == -1 ||
	    tls_connect_socket(c->tls, c->fd, "localhost") == -1 ||
	    tls_handshake(c->tls) == -1)
		errx(1, "TLS: %s", tls_error(c->tls));
	tls_config_free(cfg);
}

static void
c_close(struct conn *c)
{
	if (c->tls != NULL) {
		(void)tls_close(c->tls);
		tls_free(c->tls);
	}
	close(c->fd);
	free(c->buf);
}

/* USER, PASS, STAT; returns the seconds from PASS to the STAT reply. */
static double
c_login(struct conn *c, const char *user, const char *pass, long *count,
    long long *octets)
{
	double	 t;
	char	*r;

	c_cmd(c, "USER %s\r\n", user);
	c_reply(c, "USER");
	t = now();
	c_cmd(c, "PASS %s\r\n", pass);
	c_reply(c, "PASS");
	c_cmd(c, "STAT\r\n", NULL);
	r = c_reply(c, "STAT");
	t = now() - t;
	if (sscanf(r, "+OK %ld %lld", count, octets) != 2)
		errx(1, "STAT: %s", r);
	return t;
}

/* Seconds from sending QUIT to the server's close. */
static double
c_quit(struct conn *c)
{
	double	 t = now();
	size_t	 n;

	c_cmd(c, "QUIT\r\n", NULL);
	c_reply(c, "QUIT");
	while (c_line(c, &n) != NULL)
		;
	return now() - t;
}

static void
pause_here(void)
{
	char	 line[64];

	printf("pause\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		exit(1);
}

/*
 * One message after its +OK line: hashed in long spans, each dot that
 * stuffs a line left out, up to the terminating line.  Returns the
 * octets of the message.
 */
static long long
c_message(struct conn *c, EVP_MD_CTX *md)
{
	const char	*p, *e, *q, *lf;
	long long	 octets = 0;
	int		 at_start = 1;

	for (;;) {
		if (c->pos == c->len && c_fill(c) == 0)
			errx(1, "RETR: connection closed");
		p = c->buf + c->pos;
		e = c->buf + c->len;
		if (at_start && *p == '.') {
			if (e - p < 3) {
				if (c_fill(c) == 0)
					errx(1, "RETR: connection closed");
				continue;
			}
			if (p[1] == '\r' && p[2] == '\n') {
				c->pos += 3;
				return octets;
			}
			c->pos++;	/* the stuffed dot */
			at_start = 0;
			continue;
		}
		for (q = p; (lf = memchr(q, '\n', e - q)) != NULL &&
		    lf + 1 < e && lf[1] != '.'; q = lf + 1)
			;
		q = lf != NULL ? lf + 1 : e;
		EVP_DigestUpdate(md, p, q - p);
		octets += q - p;
		c->pos = q - c->buf;
		at_start = lf != NULL;
	}
}

static void
mode_retr(struct conn *c, long count, long window)
{
	EVP_MD_CTX	*md;
	unsigned char	 digest[EVP_MAX_MD_SIZE];
	char		 cmd[32];
	long		 sent = 0, done = 0;
	long long	 octets = 0, wire0 = c->wire;
	unsigned int	 dlen, i;
	size_t		 n;
	double		 t = now();

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		errx(1, "SHA-256");
	while (done < count) {
		while (sent < count && sent - done < window) {
			n = snprintf(cmd, sizeof(cmd), "RETR %ld\r\n", ++sent);
			c_write(c, cmd, n);
		}
		c_reply(c, "RETR");
		octets += c_message(c, md);
		done++;
	}
	t = now() - t;
	EVP_DigestFinal_ex(md, digest, &dlen);
	printf("retr %ld %lld %lld %.6f ", done, octets, c->wire - wire0, t);
	for (i = 0; i < dlen; i++)
		printf("%02x", digest[i]);
	printf("\n");
	EVP_MD_CTX_free(md);
}

int
main(int argc, char *argv[])
{
	struct conn	 c;
	const char	*host, *user, *pass, *mode;
	long		 count = 1, window = 64, msgs, i;
	long long	 octets;
	double		 t, login;
	int		 ch, stls = 0, port;

	while ((ch = getopt(argc, argv, "n:sw:")) != -1) {
		switch (ch) {
		case 'n':
			count = atol(optarg);
			break;
		case 's':
			stls = 1;
			break;
		case 'w':
			window = atol(optarg);
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 5 || window < 1) {
 usage:
		fprintf(stderr, "usage: pop3bench [-s] [-n count] [-w window] "
		    "host port user pass stat|retr|dele\n");
		return 1;
	}
	host = argv[0];
	port = atoi(argv[1]);
	user = argv[2];
	pass = argv[3];
	mode = argv[4];
	if (strcmp(mode, "stat") == 0) {
		for (i = 0; i < count; i++) {
			t = now();
			c_open(&c, host, port, stls);
			login = c_login(&c, user, pass, &msgs, &octets);
			c_quit(&c);
			c_close(&c);
			printf("session %.6f %.6f %ld %lld\n", login, now() - t,
			    msgs, octets);
		}
		return 0;
	}
	c_open(&c, host, port, stls);
	login = c_login(&c, user, pass, &msgs, &octets);
	printf("stat %ld %lld %.6f\n", msgs, octets, login);
	if (strcmp(mode, "retr") == 0) {
		pause_here();
		mode_retr(&c, msgs, window);
	} else if (strcmp(mode, "dele") == 0) {
		for (i = 1; i <= count; i++) {
			char	 cmd[32];
			int	 n = snprintf(cmd, sizeof(cmd), "DELE %ld\r\n", i);

			c_write(&c, cmd, n);
			c_reply(&c, "DELE");
		}
	} else
		goto usage;
	pause_here();
	printf("quit %.6f\n", c_quit(&c));
	c_close(&c);
	return 0;
}
