/*
 * tls.c: the session process's I/O with the client.  Plain or TLS, every
 * read and write goes through here, and every wait is a poll(2) bounded by
 * the inactivity timeout, so a client that stops reading or writing cannot
 * hold the process.  The key pair is read by the monitor as root and
 * reaches libtls from memory; nothing here opens a file after start-up.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tls.h>
#include <unistd.h>

#include "pop3d.h"

/* The TLS 1.2 cipher suites, in OpenSSL and LibreSSL syntax alike. */
#define TLS_CIPHERS	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:" \
			"DHE+CHACHA20:!aNULL"

static int
tls_load_one(const char *path, uint8_t **buf, size_t *len, int secret)
{
	struct stat	 st;

	if (stat(path, &st) == -1) {
		log_warn("%s", path);
		return -1;
	}
	/* whoever owns the key could swap it, or read it through a link */
	if (secret && st.st_uid != 0) {
		log_warnx("%s: key file must be owned by root", path);
		return -1;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		log_warnx("%s: key file must not be accessible by group or "
		    "others (chmod 600)", path);
		return -1;
	}
	if ((*buf = tls_load_file(path, len, NULL)) == NULL) {
		log_warnx("%s: cannot load: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
tls_load_keypair(struct pop3d_conf *conf)
{
	if (conf->cert_file == NULL && conf->key_file == NULL)
		return 0;
	if (conf->cert_file == NULL || conf->key_file == NULL) {
		log_warnx("-c and -k go together");
		return -1;
	}
	if (tls_load_one(conf->cert_file, &conf->cert, &conf->certlen, 0) ==
	    -1)
		return -1;
	if (tls_load_one(conf->key_file, &conf->key, &conf->keylen, 1) == -1)
		return -1;
	return 0;
}

static struct tls *
tls_server_new(struct pop3d_conf *conf)
{
	struct tls_config	*cfg;
	struct tls		*server;

	if (tls_init() == -1 || (cfg = tls_config_new()) == NULL) {
		log_warnx("cannot initialise TLS");
		return NULL;
	}
	/*
	 * TLS 1.2 and 1.3; in TLS 1.2 only ECDHE or DHE key exchange with
	 * AEAD ciphers (TLS 1.3 has nothing else): what libtls calls
	 * "secure" on LibreSSL.  libretls maps "secure" to OpenSSL's
	 * HIGH, which keeps static RSA (no forward secrecy) and CBC-SHA1,
	 * so the list is spelt out.
	 */
	if (tls_config_set_protocols(cfg, TLS_PROTOCOLS_DEFAULT) == -1 ||
	    tls_config_set_ciphers(cfg, TLS_CIPHERS) == -1 ||
	    tls_config_set_keypair_mem(cfg, conf->cert, conf->certlen,
	    conf->key, conf->keylen) == -1) {
		log_warnx("TLS key pair: %s", tls_config_error(cfg));
		tls_config_free(cfg);
		return NULL;
	}
	if ((server = tls_server()) == NULL) {
		tls_config_free(cfg);
		return NULL;
	}
	if (tls_configure(server, cfg) == -1) {
		log_warnx("TLS configuration: %s", tls_error(server));
		tls_free(server);
		server = NULL;
	}
	/* the context keeps its own copy of the key */
	tls_config_clear_keys(cfg);
	tls_config_free(cfg);
	return server;
}

static void
tls_wipe_keypair(struct pop3d_conf *conf)
{
	if (conf->key != NULL)
		tls_unload_file(conf->key, conf->keylen);
	free(conf->cert);
	conf->key = conf->cert = NULL;
	conf->keylen = conf->certlen = 0;
}

/*
 * libtls shows a certificate's dates only to the peer, so -n shakes hands
 * with itself over a socketpair and reads them from the client side.
 */
static int
tls_selftest(struct tls *server, time_t *notbefore, time_t *notafter)
{
	struct tls_config	*cfg;
	struct tls		*client = NULL, *sconn = NULL;
	int			 sv[2], i, cdone = 0, sdone = 0, rv = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return -1;
	if ((cfg = tls_config_new()) == NULL || (client = tls_client()) ==
	    NULL)
		goto out;
	tls_config_insecure_noverifycert(cfg);
	tls_config_insecure_noverifyname(cfg);
	if (tls_configure(client, cfg) == -1 ||
	    tls_connect_fds(client, sv[0], sv[0], "localhost") == -1 ||
	    tls_accept_fds(server, &sconn, sv[1], sv[1]) == -1)
		goto out;
	for (i = 0; i < 1000 && !(cdone && sdone); i++) {
		if (!cdone && (rv = tls_handshake(client)) == 0)
			cdone = 1;
		else if (rv == -1)
			break;
		if (!sdone && (rv = tls_handshake(sconn)) == 0)
			sdone = 1;
		else if (rv == -1)
			break;
	}
	rv = -1;
	if (cdone && sdone) {
		*notbefore = tls_peer_cert_notbefore(client);
		*notafter = tls_peer_cert_notafter(client);
		rv = 0;
	} else
		log_warnx("TLS self-test handshake failed: %s",
		    tls_error(sconn != NULL ? sconn : client));
 out:
	tls_free(sconn);
	tls_free(client);
	tls_config_free(cfg);
	close(sv[0]);
	close(sv[1]);
	return rv;
}

int
tls_check_keypair(struct pop3d_conf *conf)
{
	struct tls	*server;
	time_t		 now = time(NULL), notbefore, notafter;
	int		 rv;

	if (conf->cert == NULL)
		return 0;
	if ((server = tls_server_new(conf)) == NULL)
		return -1;
	rv = tls_selftest(server, &notbefore, &notafter);
	tls_free(server);
	if (rv == -1)
		return -1;
	if (notafter != -1 && notafter < now) {
		log_warnx("%s: certificate expired", conf->cert_file);
		return -1;
	}
	if (notbefore != -1 && notbefore > now) {
		log_warnx("%s: certificate not yet valid", conf->cert_file);
		return -1;
	}
	return 0;
}

/*
 * glibc's qsort(3) asks sysinfo(2) for the memory size the first time it
 * sorts more than a kilobyte, and keeps the answer; libssl sorts its
 * cipher table when it starts, which happens inside the sandbox, whose
 * filter has no sysinfo.  One sort before the sandbox goes up.
 */
static int
io_sort_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void
io_prime_qsort(void)
{
	static int	 v[1024];

	qsort(v, sizeof(v) / sizeof(v[0]), sizeof(v[0]), io_sort_cmp);
}

void
io_init(struct io *io, struct pop3d_conf *conf)
{
	/*
	 * The buffers are not cleared: nothing is read from them before it
	 * is written, and clearing OUTPUT_BUFFER would fault in every page
	 * of it before the greeting, most of which a login never uses.
	 */
	io->server = io->tls = NULL;
	io->keypair = NULL;
	io->limit = 0;
	io->rpos = io->rlen = io->wlen = 0;
	io->rfd = STDIN_FILENO;
	io->wfd = STDOUT_FILENO;
	io->timeout = conf->timeout;
	io->deadline = io_now() + conf->timeout;
	if (fcntl(io->rfd, F_SETFL, fcntl(io->rfd, F_GETFL) | O_NONBLOCK) ==
	    -1 || fcntl(io->wfd, F_SETFL,
	    fcntl(io->wfd, F_GETFL) | O_NONBLOCK) == -1)
		fatal("fcntl O_NONBLOCK");
	/*
	 * libtls costs more than the rest of a login: it starts at the
	 * first STLS (or at once with -S), from the key pair in memory,
	 * and a session that never asks for TLS never pays for it.
	 */
	if (conf->cert != NULL) {
		io->keypair = conf;
		io_prime_qsort();
	}
}

int
io_tls_configured(struct io *io)
{
	return io->keypair != NULL;
}

/* The TLS server context, made once, then the key pair is wiped. */
static int
io_tls_server(struct io *io)
{
	if (io->server != NULL)
		return 0;
	if (io->keypair == NULL)
		return -1;
	io->server = tls_server_new(io->keypair);
	tls_wipe_keypair(io->keypair);
	if (io->server == NULL) {
		io->keypair = NULL;
		log_warnx("TLS set-up failed");
		return -1;
	}
	return 0;
}

/* now + secs, but never past io->limit. */
static time_t
io_deadline(struct io *io, int secs)
{
	time_t	 deadline = io_now() + secs;

	return io->limit != 0 && io->limit < deadline ? io->limit : deadline;
}

/* Seconds on a clock that only goes forward. */
time_t
io_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Waits for fd to be ready for events until the deadline: 0 when ready,
 * -1 (errno ETIMEDOUT) when it has passed.  Deadlines, not per-wait
 * timeouts: a client that trickles a byte now and then gains nothing.
 */
static int
io_wait(int fd, short events, time_t deadline)
{
	struct pollfd	 pfd;
	time_t		 left;
	int		 n;

	pfd.fd = fd;
	pfd.events = events;
	do {
		if ((left = deadline - io_now()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, left * 1000);
	} while ((n == -1 && errno == EINTR) || n == 0);
	return n == -1 ? -1 : 0;
}

/* Writes all of buf to fd, waiting for room until the deadline; 0, or
 * -1 on error or timeout. */
static int
io_write_all(int fd, const char *buf, size_t len, time_t deadline)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			if (io_wait(fd, POLLOUT, deadline) == -1)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Writes out the TLS records collected in tout (on error they are
 * dropped: the connection is lost). */
static int
io_drain(struct io *io, time_t deadline)
{
	int	 rv;

	rv = io_write_all(io->wfd, io->tout + io->toutpos,
	    io->toutlen - io->toutpos, deadline);
	io->toutpos = io->toutlen = 0;
	return rv;
}

/*
 * libtls's output: records collect in tout; when it is full, what the
 * socket takes at once makes room, and TLS_WANT_POLLOUT says it took
 * nothing, which io_wait_tls then waits out.
 */
static ssize_t
io_tls_write_cb(struct tls *ctx, const void *buf, size_t len, void *arg)
{
	struct io	*io = arg;
	size_t		 room;
	ssize_t		 n;

	(void)ctx;
	if (len > sizeof(io->tout) - io->toutlen &&
	    io->toutpos < io->toutlen) {
		n = write(io->wfd, io->tout + io->toutpos,
		    io->toutlen - io->toutpos);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0)
			io->toutpos += n;
		memmove(io->tout, io->tout + io->toutpos,
		    io->toutlen - io->toutpos);
		io->toutlen -= io->toutpos;
		io->toutpos = 0;
	}
	if ((room = sizeof(io->tout) - io->toutlen) == 0)
		return TLS_WANT_POLLOUT;
	if (len > room)
		len = room;
	memcpy(io->tout + io->toutlen, buf, len);
	io->toutlen += len;
	return len;
}

/* libtls's input: as much as the socket has, handed out as asked. */
static ssize_t
io_tls_read_cb(struct tls *ctx, void *buf, size_t len, void *arg)
{
	struct io	*io = arg;
	ssize_t		 n;

	(void)ctx;
	if (io->tinpos == io->tinlen) {
		io->tinpos = io->tinlen = 0;
		n = read(io->rfd, io->tin, sizeof(io->tin));
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return TLS_WANT_POLLIN;
		if (n <= 0)
			return n;
		io->tinlen = n;
	}
	if (len > io->tinlen - io->tinpos)
		len = io->tinlen - io->tinpos;
	memcpy(buf, io->tin + io->tinpos, len);
	io->tinpos += len;
	return len;
}

/*
 * Waits as libtls asks: for input or for room to write.  Records still
 * collected go out first: the client may be waiting for them before it
 * sends anything, and writing them out is waiting for room.
 */
static int
io_wait_tls(struct io *io, ssize_t want, time_t deadline)
{
	if (io->toutpos < io->toutlen) {
		if (io_drain(io, deadline) == -1)
			return -1;
		if (want == TLS_WANT_POLLOUT)
			return 0;
	}
	return io_wait(want == TLS_WANT_POLLIN ? io->rfd : io->wfd,
	    want == TLS_WANT_POLLIN ? POLLIN : POLLOUT, deadline);
}

/*
 * A TLS read gives one record, and a client that pipelines sends each
 * command in its own: what else has come is read too, without waiting,
 * so that the commands are answered together, as over plain text.
 */
static ssize_t
io_tls_more(struct io *io, ssize_t got)
{
	ssize_t	 n, more = 0;

	while ((size_t)(got + more) < sizeof(io->rbuf) - io->rlen) {
		n = tls_read(io->tls, io->rbuf + io->rlen + got + more,
		    sizeof(io->rbuf) - io->rlen - got - more);
		if (n <= 0)
			break;	/* an error or the end shows at the next read */
		more += n;
	}
	return more;
}

ssize_t
io_fill(struct io *io)
{
	time_t	 deadline = io->limit != 0 && io->limit < io->deadline ?
		    io->limit : io->deadline;
	ssize_t	 n;

	if (io->rpos > 0) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen - io->rpos);
		io->rlen -= io->rpos;
		/* what was read may be a password: no copy stays behind */
		explicit_bzero(io->rbuf + io->rlen, io->rpos);
		io->rpos = 0;
	}
	if (io->rlen == sizeof(io->rbuf))
		return -1;
	for (;;) {
		if (io->tls != NULL) {
			n = tls_read(io->tls, io->rbuf + io->rlen,
			    sizeof(io->rbuf) - io->rlen);
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				if (io_wait_tls(io, n, deadline) == -1)
					return -1;
				continue;
			}
			if (n == -1)
				log_debug("TLS read: %s", tls_error(io->tls));
			if (n > 0)
				n += io_tls_more(io, n);
		} else {
			n = read(io->rfd, io->rbuf + io->rlen,
			    sizeof(io->rbuf) - io->rlen);
			if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
				if (io_wait(io->rfd, POLLIN, deadline) == -1)
					return -1;
				continue;
			}
		}
		if (n > 0)
			io->rlen += n;
		return n;
	}
}

/* Writes it all, within the timeout for the whole of it. */
static int
io_send(struct io *io, const char *buf, size_t len)
{
	time_t	 deadline = io_deadline(io, io->timeout);
	ssize_t	 n;

	if (io->tls == NULL)
		return io_write_all(io->wfd, buf, len, deadline);
	while (len > 0) {
		n = tls_write(io->tls, buf, len);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			if (io_wait_tls(io, n, deadline) == -1)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return io_drain(io, deadline);
}

int
io_flush(struct io *io)
{
	int	 rv;

	rv = io_send(io, io->wbuf, io->wlen);
	io->wlen = 0;
	return rv;
}

int
io_flush_records(struct io *io)
{
	size_t	 n = io->wlen;

	if (io->tls != NULL)
		n -= n % TLS_RECORD;
	if (io_send(io, io->wbuf, n) == -1) {
		io->wlen = 0;
		return -1;
	}
	memmove(io->wbuf, io->wbuf + n, io->wlen - n);
	io->wlen -= n;
	return 0;
}

char *
io_reserve(struct io *io, size_t n)
{
	if (n > sizeof(io->wbuf))
		return NULL;
	if (sizeof(io->wbuf) - io->wlen < n && io_flush(io) == -1)
		return NULL;
	return io->wbuf + io->wlen;
}

int
io_write(struct io *io, const void *buf, size_t n)
{
	char	*p;

	if ((p = io_reserve(io, n)) == NULL)
		return -1;
	memcpy(p, buf, n);
	io->wlen += n;
	return 0;
}

/* libtls's text without its own "handshake failed: " in front, which
 * the log line says already; never NULL. */
static const char *
tls_error_text(const char *err)
{
	const char	*lead = "handshake failed: ";

	if (err == NULL)
		return "unknown";
	if (strncmp(err, lead, strlen(lead)) == 0)
		err += strlen(lead);
	return err;
}

int
io_starttls(struct io *io)
{
	time_t	 deadline = io_deadline(io, HANDSHAKE_TIMEOUT);
	int	 rv;

	/* RFC 2595 4: nothing sent before the handshake counts after it. */
	io->rpos = io->rlen = 0;
	if (io_tls_server(io) == -1)
		return -1;
	io->tinpos = io->tinlen = io->toutpos = io->toutlen = 0;
	if (tls_accept_cbs(io->server, &io->tls, io_tls_read_cb,
	    io_tls_write_cb, io) == -1) {
		log_warnx("TLS handshake failed error=\"%s\"",
		    tls_error_text(tls_error(io->server)));
		return -1;
	}
	for (;;) {
		rv = tls_handshake(io->tls);
		if (rv == 0)
			return 0;	/* records left go with the answer */
		if (rv != TLS_WANT_POLLIN && rv != TLS_WANT_POLLOUT)
			break;
		if (io_wait_tls(io, rv, deadline) == -1) {
			log_info("TLS handshake failed reason=timed-out");
			return -1;
		}
	}
	log_info("TLS handshake failed error=\"%s\"",
	    tls_error_text(tls_error(io->tls)));
	(void)io_drain(io, deadline);	/* the alert, if the client reads */
	return -1;
}

const char *
io_tls_info(struct io *io)
{
	static char	 info[128];

	if (io->tls == NULL)
		return "no";
	snprintf(info, sizeof(info), "%s/%s", tls_conn_version(io->tls),
	    tls_conn_cipher(io->tls));
	return info;
}

void
io_close(struct io *io)
{
	if (io->tls != NULL) {
		/* best effort: the client may be gone already, and what
		 * the socket does not take at once stays unsent */
		(void)tls_close(io->tls);
		(void)io_drain(io, io_now());
	}
	/* the client sees the end now, not after the process has been
	 * torn down */
	(void)close(io->rfd);
	if (io->wfd != io->rfd)
		(void)close(io->wfd);
}
