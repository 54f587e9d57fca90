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
 *           "retr MESSAGES OCTETS WIRE_OCTETS SECONDS SHA256 CPU", where
 *           the digest is over every message as received, dot-unstuffed,
 *           terminators left out (bench.py compares it with the mailbox),
 *           SECONDS from the first RETR to the last octet and CPU this
 *           client's own CPU seconds in that time.
 *
 * So that the client is never what the server waits for, a download
 * keeps every octet it receives in one buffer (about the mailbox's size,
 * mapped and faulted in before the first RETR), only finds where each
 * message ends while it runs, and hashes after the last one.
 *   dele    login, STAT, DELE 1 to count, QUIT; prints "stat ...", then
 *           "quit SECONDS" from sending QUIT to the server's close.
 * Before QUIT in retr and dele, and after STAT in retr, it prints "pause"
 * and waits for a line on its standard input, so that bench.py can look
 * at the server's processes while the session is open.
 * Exit status 0, or 1 with a message on stderr.
 */
#include <sys/mman.h>
#include <sys/resource.h>
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
	size_t		 pos, len, size;
	int		 keep;		/* read on, never move what came */
	long long	 wire;		/* octets received */
	char		*raw;		/* TLS: what came, not yet decrypted */
	size_t		 rawpos, rawlen;
};

/* A message body as it came: [start, end) of conn's buffer. */
struct span {
	size_t		 start, end;
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

	size_t	 room;

	if (c->pos > 0 && !c->keep) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == c->size)
		errx(1, c->keep ? "more than the download buffer holds" :
		    "line too long");
	room = c->size - c->len < RBUF ? c->size - c->len : RBUF;
	for (;;) {
		if (c->tls != NULL) {
			r = tls_read(c->tls, c->buf + c->len, room);
			if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
				continue;
			if (r == -1)
				errx(1, "tls_read: %s", tls_error(c->tls));
		} else if ((r = read(c->fd, c->buf + c->len, room)) == -1) {
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

/*
 * libtls reads a record's header and its body with a system call each
 * from a socket of its own: given these instead, it is served from large
 * reads, as the server's is.
 */
static ssize_t
c_tls_read(struct tls *ctx, void *buf, size_t len, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 r;

	(void)ctx;
	if (c->rawpos == c->rawlen) {
		while ((r = read(c->fd, c->raw, RBUF)) == -1 && errno == EINTR)
			;
		if (r <= 0)
			return r;
		c->rawpos = 0;
		c->rawlen = r;
	}
	if (len > c->rawlen - c->rawpos)
		len = c->rawlen - c->rawpos;
	memcpy(buf, c->raw + c->rawpos, len);
	c->rawpos += len;
	return len;
}

static ssize_t
c_tls_write(struct tls *ctx, const void *buf, size_t len, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 w;

	(void)ctx;
	while ((w = write(c->fd, buf, len)) == -1 && errno == EINTR)
		;
	return w;
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
	c->size = RBUF;
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
	    NULL || (c->raw = malloc(RBUF)) == NULL)
		errx(1, "libtls set-up failed");
	tls_config_insecure_noverifycert(cfg);
	tls_config_insecure_noverifyname(cfg);
	if (tls_configure(c->tls, cfg) == -1 ||
	    tls_connect_cbs(c->tls, c_tls_read, c_tls_write, c,
	    "localhost") == -1 ||
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
		free(c->raw);
	}
	close(c->fd);
	if (!c->keep)
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
 * Gives the connection a buffer for a whole download of octets in count
 * messages: what their bodies may grow to on the wire (a line of the
 * mailbox gains a CR and perhaps a stuffed dot: twice its length at
 * most) and a reply line each.  Only what a download of the usual
 * kind needs is faulted in now; the rest comes if it is used.
 */
static void
c_keep_all(struct conn *c, long count, long long octets)
{
	size_t	 size, touch, i;
	char	*p;

	/* STAT's figures come from the server: bounded before any sum */
	if (count < 0 || octets < 0 || count > (1L << 30) ||
	    octets > (1LL << 40))
		errx(1, "STAT: %ld messages, %lld octets: out of range",
		    count, octets);
	size = 2 * (size_t)octets + 128 * (size_t)count + RBUF;
	touch = octets + octets / 8 + 64 * (size_t)count + RBUF;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		err(1, "mmap %zu", size);
	(void)madvise(p, size, MADV_HUGEPAGE);
	for (i = 0; i < touch && i < size; i += 4096)
		p[i] = 0;
	memcpy(p, c->buf + c->pos, c->len - c->pos);
	free(c->buf);
	c->buf = p;
	c->len -= c->pos;
	c->pos = 0;
	c->size = size;
	c->keep = 1;
}

/*
 * The body of the message whose reply line was just read, up to the
 * line "." that ends it.  Only a dot after an LF can begin that line (a
 * body line beginning with a dot has another put before it), and few
 * body lines begin with one, so the search is for dots, not lines.
 */
static struct span
c_body(struct conn *c)
{
	struct span	 b;
	size_t		 at = c->pos;
	char		*d;

	b.start = c->pos;	/* after the reply's LF: buf[start - 1] */
	for (;;) {
		d = memchr(c->buf + at, '.', c->len - at);
		if (d == NULL) {
			at = c->len;
		} else if ((at = d - c->buf) + 3 <= c->len) {
			if (d[-1] == '\n' && d[1] == '\r' && d[2] == '\n')
				break;
			at++;
			continue;
		}
		if (c_fill(c) == 0)
			errx(1, "RETR: connection closed");
	}
	b.end = at;
	c->pos = at + 3;
	return b;
}

/* Hashes a body with the dot that stuffs each line left out; its
 * octets. */
static long long
c_hash_body(EVP_MD_CTX *md, const char *p, const char *e)
{
	const char	*q, *d;
	long long	 stuffed = 0;
	size_t		 len = e - p;

	if (p < e && *p == '.') {
		p++;
		stuffed++;
	}
	for (q = p; (d = memchr(q, '.', e - q)) != NULL; q = d + 1) {
		if (d[-1] != '\n')
			continue;
		EVP_DigestUpdate(md, p, d - p);
		p = d + 1;
		stuffed++;
	}
	EVP_DigestUpdate(md, p, e - p);
	return (long long)len - stuffed;
}

static double
cpu_seconds(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		err(1, "getrusage");
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
mode_retr(struct conn *c, long count, long window)
{
	EVP_MD_CTX	*md;
	struct span	*body;
	unsigned char	 digest[EVP_MAX_MD_SIZE];
	char		 cmd[32];
	long		 sent = 0, done = 0, i;
	long long	 octets = 0, wire0 = c->wire;
	unsigned int	 dlen, k;
	size_t		 n;
	double		 t = now(), cpu = cpu_seconds();

	if ((body = calloc(count + 1, sizeof(*body))) == NULL)
		err(1, "calloc");
	while (done < count) {
		while (sent < count && sent - done < window) {
			n = snprintf(cmd, sizeof(cmd), "RETR %ld\r\n", ++sent);
			c_write(c, cmd, n);
		}
		c_reply(c, "RETR");
		body[done++] = c_body(c);
	}
	t = now() - t;
	cpu = cpu_seconds() - cpu;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		errx(1, "SHA-256");
	for (i = 0; i < done; i++)
		octets += c_hash_body(md, c->buf + body[i].start,
		    c->buf + body[i].end);
	EVP_DigestFinal_ex(md, digest, &dlen);
	printf("retr %ld %lld %lld %.6f ", done, octets, c->wire - wire0, t);
	for (k = 0; k < dlen; k++)
		printf("%02x", digest[k]);
	printf(" %.3f\n", cpu);
	EVP_MD_CTX_free(md);
	free(body);
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
		c_keep_all(&c, msgs, octets);
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
