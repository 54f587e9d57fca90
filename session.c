/*
 * session.c: the session process, the only one that reads what the client
 * sends.  It runs chrooted and unprivileged, and never opens the mailbox:
 * the maildrop process hands it the index and a read-only descriptor, and
 * RETR and TOP stream from that descriptor through the LF to CRLF and
 * dot-stuffing transform.  Commands come from the table in session_verbs.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pop3d.h"

enum session_state {
	S_AUTHORIZATION = 1,
	S_TRANSACTION = 2
};

struct session {
	struct pop3d_conf	*conf;
	struct io		 io;
	int			 state;
	int			 monitor_fd;
	int			 maildrop_fd;
	int			 mailbox_fd;	/* read-only; -1: empty */
	char			 user[MAX_USER + 1];
	int			 have_user;	/* USER given, PASS awaited */
	int			 sasl_pending;	/* AUTH PLAIN awaits a line */
	int			 bad_commands;
	int			 auth_requests;	/* sent to the monitor */
	int			 discarding;	/* inside an overlong line */
	int			 quit;
	int			 progress;	/* a whole command came */
	int			 grace;		/* seconds to log in */
	int			 proxy_tls;	/* a trusted proxy ended TLS */
	int			 cleartext_logged;
	struct msgtab		 msgs;
	size_t			 ndeleted;
	size_t			 retrieved;
	long long		 retrieved_octets;
};

/*
 * Handlers get argc words, already counted against the table; they
 * return 0 when done, -1 for a bad command (it is counted).  PASS takes
 * the rest of its line as one word: a password may hold spaces.
 */
#define ARGS_REST	(-1)

/* "1 message", "2 messages" */
#define PLURAL(n)	((n) == 1 ? "" : "s")

struct verb {
	const char	*name;
	int		 states;
	int		 minargs;
	int		 maxargs;
	int		 (*handler)(struct session *, int, char **);
};

static int	cmd_user(struct session *, int, char **);
static int	cmd_pass(struct session *, int, char **);
static int	cmd_auth(struct session *, int, char **);
static int	cmd_stls(struct session *, int, char **);
static int	cmd_capa(struct session *, int, char **);
static int	cmd_quit(struct session *, int, char **);
static int	cmd_noop(struct session *, int, char **);
static int	cmd_stat(struct session *, int, char **);
static int	cmd_list(struct session *, int, char **);
static int	cmd_uidl(struct session *, int, char **);
static int	cmd_retr(struct session *, int, char **);
static int	cmd_top(struct session *, int, char **);
static int	cmd_dele(struct session *, int, char **);
static int	cmd_rset(struct session *, int, char **);

#define S_ANY	(S_AUTHORIZATION | S_TRANSACTION)

static const struct verb session_verbs[] = {
	{ "USER", S_AUTHORIZATION,	1, 1,		cmd_user },
	{ "PASS", S_AUTHORIZATION,	1, ARGS_REST,	cmd_pass },
	{ "AUTH", S_AUTHORIZATION,	0, 2,		cmd_auth },
	{ "STLS", S_AUTHORIZATION,	0, 0,		cmd_stls },
	{ "CAPA", S_ANY,		0, 0,		cmd_capa },
	{ "QUIT", S_ANY,		0, 0,		cmd_quit },
	{ "NOOP", S_TRANSACTION,	0, 0,		cmd_noop },
	{ "STAT", S_TRANSACTION,	0, 0,		cmd_stat },
	{ "LIST", S_TRANSACTION,	0, 1,		cmd_list },
	{ "UIDL", S_TRANSACTION,	0, 1,		cmd_uidl },
	{ "RETR", S_TRANSACTION,	1, 1,		cmd_retr },
	{ "TOP", S_TRANSACTION,		2, 2,		cmd_top },
	{ "DELE", S_TRANSACTION,	1, 1,		cmd_dele },
	{ "RSET", S_TRANSACTION,	0, 0,		cmd_rset },
	{ NULL, 0, 0, 0, NULL }
};

static __dead void	session_end(struct session *, const char *);

static void
reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	char	 line[512];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = snprintf(line, sizeof(line), "-ERR internal error");
	memcpy(line + n, "\r\n", 2);
	if (io_write(&s->io, line, n + 2) == -1)
		session_end(s, "connection-lost");
}

/* The tls= of the log: "TLSv1.3/CIPHER", "no", or "proxy" where a
 * trusted proxy ended the client's TLS. */
static const char *
session_tls(struct session *s)
{
	return s->proxy_tls && s->io.tls == NULL ? "proxy" :
	    io_tls_info(&s->io);
}

static int
session_login_allowed(struct session *s)
{
	return s->conf->cleartext || s->io.tls != NULL || s->proxy_tls;
}

/* The client may just have sent a password in the clear: the admin
 * hears of it once a session, with the command it came with. */
static int
session_refuse_cleartext(struct session *s, const char *command)
{
	if (!s->cleartext_logged) {
		log_info("login refused command=%s reason=%s tls=%s", command,
		    io_tls_configured(&s->io) ? "cleartext" :
		    "no-tls-configured", session_tls(s));
		s->cleartext_logged = 1;
	}
	if (io_tls_configured(&s->io))
		reply(s, "-ERR cleartext login refused, use STLS first");
	else
		reply(s, "-ERR cleartext login refused, TLS is not "
		    "configured");
	return 0;
}

/*
 * RFC 2449 section 5: what AUTHORIZATION offered is announced in both
 * states.  A session in TRANSACTION got there by a login that was then
 * allowed, so USER and SASL PLAIN stay; STLS goes (RFC 2595: only
 * before login); IMPLEMENTATION is told only to a logged-in user.
 */
static int
cmd_capa(struct session *s, int argc, char **argv)
{
	int	 authed = s->state == S_TRANSACTION;

	(void)argc;
	(void)argv;
	reply(s, "+OK capability list follows");
	reply(s, "TOP");
	if (authed || session_login_allowed(s)) {
		reply(s, "USER");
		reply(s, "SASL PLAIN");
	}
	if (!authed && io_tls_configured(&s->io) && s->io.tls == NULL)
		reply(s, "STLS");
	reply(s, "UIDL");
	reply(s, "PIPELINING");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	if (authed)
		reply(s, "IMPLEMENTATION pop3d-%s", POP3D_VERSION);
	reply(s, ".");
	return 0;
}

static int
cmd_stls(struct session *s, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!io_tls_configured(&s->io)) {
		reply(s, "-ERR STLS not available");
		return 0;
	}
	if (s->io.tls != NULL) {
		reply(s, "-ERR TLS already active");
		return 0;
	}
	reply(s, "+OK begin TLS negotiation");
	if (io_flush(&s->io) == -1)
		session_end(s, "connection-lost");
	/* RFC 2595 4: forget everything said before the handshake */
	s->have_user = 0;
	explicit_bzero(s->user, sizeof(s->user));
	s->discarding = 0;
	if (io_starttls(&s->io) == -1)
		session_end(s, NULL);	/* io_starttls said why */
	return 0;
}

static int
cmd_user(struct session *s, int argc, char **argv)
{
	(void)argc;
	if (!session_login_allowed(s))
		return session_refuse_cleartext(s, "USER");
	/* too long for anyone: PASS fails, after the same delay */
	if (strlcpy(s->user, argv[0], sizeof(s->user)) >= sizeof(s->user))
		s->user[0] = '\0';
	s->have_user = 1;
	reply(s, "+OK send PASS");
	return 0;
}

/* Tells the client why the maildrop cannot be used, from the maildrop
 * process's IPC_MAILDROP_ERR or IPC_COMMIT_ERR. */
static void
session_maildrop_error(struct session *s, struct ipc_msg *m)
{
	static const char	*codes[] = { "", "[SYS/TEMP] ", "[SYS/PERM] ",
				    "[IN-USE] " };
	char			 text[201];
	uint32_t		 code;
	size_t			 i, n;

	if (m->len < sizeof(code) || m->len > sizeof(code) + 200)
		fatalx("invalid error from maildrop");
	memcpy(&code, m->data, sizeof(code));
	n = m->len - sizeof(code);
	memcpy(text, m->data + sizeof(code), n);
	text[n] = '\0';
	for (i = 0; i < n; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			text[i] = '?';
	if (code < MAILDROP_TEMP || code > MAILDROP_INUSE)
		code = MAILDROP_TEMP;
	reply(s, "-ERR %s%s", codes[code], text);
}

/* Receives the index and the mailbox descriptor from the maildrop. */
static void
session_receive_index(struct session *s)
{
	static struct ipc_msg	 m;

	switch (msgtab_receive(&s->msgs, s->maildrop_fd, &m)) {
	case -1:
		/* it died: the client still gets an answer */
		reply(s, "-ERR [SYS/TEMP] maildrop unavailable, try again "
		    "later");
		session_end(s, "maildrop-failed");
	case 0:
		session_maildrop_error(s, &m);
		session_end(s, "maildrop-refused");
	}
	s->mailbox_fd = m.fd;
}

/*
 * Asks the monitor to check the credentials; on success the monitor has
 * forked the maildrop process and hands over the channel to it.
 */
static int
session_login(struct session *s, const char *user, const char *pass)
{
	static struct ipc_msg	 m;
	unsigned char		 buf[sizeof(struct ipc_auth) + MAX_USER +
				    MAX_PASSWORD + 64];
	struct ipc_auth		 a;
	const char		*tls = session_tls(s);
	size_t			 count;
	long long		 octets;

	a.userlen = strlen(user);
	a.passlen = strlen(pass);
	a.tlslen = strnlen(tls, 63);
	if (a.userlen > MAX_USER || a.passlen > MAX_PASSWORD) {
		a.userlen = 0;		/* fails, with the same delay */
		a.passlen = 0;
	}
	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), user, a.userlen);
	memcpy(buf + sizeof(a) + a.userlen, pass, a.passlen);
	memcpy(buf + sizeof(a) + a.userlen + a.passlen, tls, a.tlslen);
	if (ipc_send(s->monitor_fd, IPC_AUTH, buf, sizeof(a) + a.userlen +
	    a.passlen + a.tlslen, -1) == -1)
		fatal("send to monitor");
	s->auth_requests++;
	explicit_bzero(buf, sizeof(buf));
	if (ipc_recv(s->monitor_fd, PROC_MONITOR, &m) != 1)
		fatalx("invalid reply from monitor");
	switch (m.type) {
	case IPC_AUTH_OK:
		if (m.fd == -1)
			fatalx("invalid reply from monitor");
		break;
	case IPC_AUTH_FAIL:
		reply(s, "-ERR [AUTH] invalid user name or password");
		break;
	case IPC_AUTH_FINAL:
		reply(s, "-ERR [AUTH] too many failed logins");
		session_end(s, "too-many-failed-logins");
	case IPC_AUTH_INUSE:
		reply(s, "-ERR [IN-USE] maildrop already in use");
		break;
	case IPC_AUTH_TEMP:
		reply(s, "-ERR [SYS/TEMP] cannot log in now, try again later");
		break;
	default:
		fatalx("invalid reply from monitor");
	}
	if (m.type != IPC_AUTH_OK) {
		/* the monitor answers no more than this */
		if (s->auth_requests >= MAX_AUTH_REQUESTS) {
			reply(s, "-ERR [AUTH] too many login attempts");
			session_end(s, "too many login attempts");
		}
		return 0;
	}
	s->maildrop_fd = m.fd;
	strlcpy(s->user, user, sizeof(s->user));
	session_receive_index(s);
	s->state = S_TRANSACTION;
	s->io.limit = 0;	/* logged in: only -t from now on */
	msgtab_totals(&s->msgs, &count, &octets);
	reply(s, "+OK maildrop has %zu message%s (%lld octets)", count,
	    PLURAL(count), octets);
	return 0;
}

static int
cmd_pass(struct session *s, int argc, char **argv)
{
	int	 rv;

	(void)argc;
	if (!session_login_allowed(s))
		return session_refuse_cleartext(s, "PASS");
	if (!s->have_user) {
		reply(s, "-ERR USER first");
		return -1;
	}
	s->have_user = 0;
	rv = session_login(s, s->user, argv[0]);
	explicit_bzero(argv[0], strlen(argv[0]));
	return rv;
}

/* The client's PLAIN response, from AUTH's argument or its next line. */
static int
session_sasl_response(struct session *s, char *line)
{
	unsigned char	 msg[3 * MAX_SASL_FIELD + 3];
	char		*user, *pass;
	ssize_t		 len;
	int		 rv;

	s->sasl_pending = 0;
	if (strcmp(line, "*") == 0) {
		reply(s, "-ERR AUTH cancelled");
		return 0;
	}
	if (strcmp(line, "=") == 0)
		len = 0;
	else if ((len = base64_decode(line, msg, sizeof(msg) - 1)) == -1) {
		reply(s, "-ERR invalid base64 in AUTH response");
		return -1;
	}
	if (sasl_plain_parse(msg, len, &user, &pass) == -1) {
		explicit_bzero(msg, sizeof(msg));
		reply(s, "-ERR [AUTH] invalid SASL PLAIN response");
		return -1;
	}
	rv = session_login(s, user, pass);
	explicit_bzero(msg, sizeof(msg));
	return rv;
}

static int
cmd_auth(struct session *s, int argc, char **argv)
{
	if (argc == 0) {
		/* RFC 1734 style listing, which older Outlook asks for */
		reply(s, "+OK mechanisms follow");
		if (session_login_allowed(s))
			reply(s, "PLAIN");
		reply(s, ".");
		return 0;
	}
	if (strcasecmp(argv[0], "PLAIN") != 0) {
		reply(s, "-ERR unsupported SASL mechanism");
		return 0;
	}
	if (!session_login_allowed(s))
		return session_refuse_cleartext(s, "AUTH");
	s->have_user = 0;
	if (argc == 2)
		return session_sasl_response(s, argv[1]);
	s->sasl_pending = 1;
	reply(s, "+ ");
	return 0;
}

/*
 * The number of the message named by arg: 0 and a reply sent (counted as
 * a bad command with *bad) if it is not a live message.
 */
static uint32_t
session_msg(struct session *s, const char *arg, int *bad)
{
	uint32_t	 n;

	*bad = 0;
	if ((n = parse_number(arg, UINT32_MAX)) == 0) {
		reply(s, "-ERR invalid message number");
		*bad = 1;
		return 0;
	}
	if (n > s->msgs.count) {
		reply(s, "-ERR no such message");
		return 0;
	}
	if (msgtab_marked(s->msgs.deleted, n - 1)) {
		reply(s, "-ERR message %u is deleted", n);
		return 0;
	}
	return n;
}

static int
cmd_noop(struct session *s, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	reply(s, "+OK");
	return 0;
}

static int
cmd_stat(struct session *s, int argc, char **argv)
{
	size_t		 count;
	long long	 octets;

	(void)argc;
	(void)argv;
	msgtab_totals(&s->msgs, &count, &octets);
	reply(s, "+OK %zu %lld", count, octets);
	return 0;
}

/* LIST and UIDL: one message, or all of them as a multi-line reply. */
static int
session_listing(struct session *s, int argc, char **argv, int uidl)
{
	const struct msgtab	*t = &s->msgs;
	char			 id[UIDL_SIZE];
	size_t			 i, count;
	long long		 octets;
	uint32_t		 n;
	int			 bad;

	if (argc == 1) {
		if ((n = session_msg(s, argv[0], &bad)) == 0)
			return bad ? -1 : 0;
		if (uidl)
			reply(s, "+OK %u %s", n, msgtab_uidl(t, n - 1, id));
		else
			reply(s, "+OK %u %lld", n,
			    (long long)msgtab_size(t, n - 1));
		return 0;
	}
	msgtab_totals(&s->msgs, &count, &octets);
	if (uidl)
		reply(s, "+OK unique-id listing follows");
	else
		reply(s, "+OK %zu message%s (%lld octets)", count,
		    PLURAL(count), octets);
	for (i = 0; i < t->count; i++) {
		if (msgtab_marked(t->deleted, i))
			continue;
		if (uidl)
			reply(s, "%zu %s", i + 1, msgtab_uidl(t, i, id));
		else
			reply(s, "%zu %lld", i + 1,
			    (long long)msgtab_size(t, i));
	}
	reply(s, ".");
	return 0;
}

static int
cmd_list(struct session *s, int argc, char **argv)
{
	return session_listing(s, argc, argv, 0);
}

static int
cmd_uidl(struct session *s, int argc, char **argv)
{
	return session_listing(s, argc, argv, 1);
}

/*
 * Up to want octets of the mailbox at pos, from one large read kept
 * across messages: an mbox is locked for the session and its messages
 * are retrieved mostly in order, so one read serves several of them.  A
 * Maildir message's descriptor is its own and is read as asked.
 */
static const char *
session_read(struct session *s, int fd, off_t pos, size_t want, size_t *got)
{
	static char	 in[MAILBOX_READ_BUFFER];
	static off_t	 in_pos;
	static size_t	 in_len;
	ssize_t		 n;
	int		 keep = fd == s->mailbox_fd && !s->msgs.maildir;

	if (keep && pos >= in_pos && pos < in_pos + (off_t)in_len) {
		*got = in_pos + in_len - pos < want ?
		    (size_t)(in_pos + in_len - pos) : want;
		return in + (pos - in_pos);
	}
	in_len = 0;
	if ((n = pread(fd, in, keep ? sizeof(in) : want, pos)) <= 0) {
		log_warnx("mailbox read failed user=%s offset=%lld "
		    "error=\"%s\"", s->user, (long long)pos,
		    n == 0 ? "file truncated" : strerror(errno));
		session_end(s, "mailbox-read-failed");
	}
	if (keep) {
		in_pos = pos;
		in_len = n;
	}
	*got = (size_t)n < want ? (size_t)n : want;
	return in;
}

/*
 * Streams message n from the mailbox descriptor straight into the output
 * buffer through the transform; body_lines as for xform_init.
 */
static void
session_stream(struct session *s, uint32_t num, int fd, long long body_lines)
{
	struct xform	 x;
	off_t		 pos, left;
	size_t		 want, done, chunk, used, room, n;
	const char	*in;
	char		*out;

	msgtab_span(&s->msgs, num - 1, &pos, &left);
	xform_init(&x, 1, body_lines);
	while (left > 0 && !x.done) {
		want = left < MAILBOX_READ_BUFFER ? (size_t)left :
		    MAILBOX_READ_BUFFER;
		in = session_read(s, fd, pos, want, &n);
		pos += n;
		left -= n;
		for (done = 0; done < n && !x.done; done += used) {
			/* full TLS records, or large plain writes */
			room = sizeof(s->io.wbuf) - s->io.wlen;
			if (room < 2 * TLS_RECORD &&
			    io_flush_records(&s->io) == -1)
				session_end(s, "connection-lost");
			room = sizeof(s->io.wbuf) - s->io.wlen;
			chunk = n - done < room / 2 ? n - done : room / 2;
			out = s->io.wbuf + s->io.wlen;
			s->io.wlen += xform_run(&x, in + done, chunk, out,
			    &used);
		}
	}
	if ((out = io_reserve(&s->io, 5)) == NULL)
		session_end(s, "connection-lost");
	s->io.wlen += xform_end(&x, out);
	memcpy(s->io.wbuf + s->io.wlen, ".\r\n", 3);
	s->io.wlen += 3;
}

/*
 * The descriptor to stream message n from: the mailbox's, or for a
 * Maildir one the maildrop process opens for this message (closed after
 * with session_close_msg).  -1 and a reply sent if it is gone.
 */
static int
session_open_msg(struct session *s, uint32_t n)
{
	static struct ipc_msg	 m;
	uint32_t		 i = n - 1;

	if (!s->msgs.maildir)
		return s->mailbox_fd;
	if (ipc_send(s->maildrop_fd, IPC_OPEN_MSG, &i, sizeof(i), -1) == -1)
		fatal("send to maildrop");
	if (ipc_recv(s->maildrop_fd, PROC_MAILDROP, &m) != 1) {
		reply(s, "-ERR [SYS/TEMP] maildrop unavailable, try again "
		    "later");
		session_end(s, "maildrop-failed");
	}
	if (m.type == IPC_MSG_FD && m.len == 0 && m.fd != -1)
		return m.fd;
	if (m.type != IPC_MSG_GONE || m.len != 0 || m.fd != -1)
		fatalx("invalid reply from maildrop");
	reply(s, "-ERR [SYS/TEMP] message %u vanished or changed since "
	    "login", n);
	return -1;
}

static void
session_close_msg(struct session *s, int fd)
{
	if (s->msgs.maildir)
		close(fd);
}

static int
cmd_retr(struct session *s, int argc, char **argv)
{
	off_t		 size;
	uint32_t	 n;
	int		 bad, fd;

	(void)argc;
	if ((n = session_msg(s, argv[0], &bad)) == 0)
		return bad ? -1 : 0;
	if ((fd = session_open_msg(s, n)) == -1)
		return 0;
	size = msgtab_size(&s->msgs, n - 1);
	reply(s, "+OK %lld octets", (long long)size);
	session_stream(s, n, fd, -1);
	session_close_msg(s, fd);
	msgtab_mark(s->msgs.whole, n - 1);
	s->retrieved++;
	s->retrieved_octets += size;
	return 0;
}

static int
cmd_top(struct session *s, int argc, char **argv)
{
	uint32_t	 n, lines;
	int		 bad, fd;

	(void)argc;
	if ((n = session_msg(s, argv[0], &bad)) == 0)
		return bad ? -1 : 0;
	if (parse_uint(argv[1], &lines) == -1) {
		reply(s, "-ERR invalid number of lines");
		return -1;
	}
	if ((fd = session_open_msg(s, n)) == -1)
		return 0;
	reply(s, "+OK top of message follows");
	session_stream(s, n, fd, lines);
	session_close_msg(s, fd);
	return 0;
}

static int
cmd_dele(struct session *s, int argc, char **argv)
{
	uint32_t	 n;
	int		 bad;

	(void)argc;
	if ((n = session_msg(s, argv[0], &bad)) == 0)
		return bad ? -1 : 0;
	msgtab_mark(s->msgs.deleted, n - 1);
	s->ndeleted++;
	reply(s, "+OK message %u deleted", n);
	return 0;
}

static int
cmd_rset(struct session *s, int argc, char **argv)
{
	size_t		 count;
	long long	 octets;

	(void)argc;
	(void)argv;
	msgtab_reset(&s->msgs);
	s->ndeleted = 0;
	msgtab_totals(&s->msgs, &count, &octets);
	reply(s, "+OK maildrop has %zu message%s (%lld octets)", count,
	    PLURAL(count), octets);
	return 0;
}

/* QUIT in TRANSACTION: the maildrop process commits the deletions (and
 * in a Maildir marks the messages retrieved whole seen). */
static void
session_update(struct session *s)
{
	static struct ipc_msg	 m;
	uint32_t		 left;

	msgtab_send_marks(&s->msgs, s->maildrop_fd, IPC_DELETE,
	    s->msgs.deleted);
	if (s->msgs.maildir)
		msgtab_send_marks(&s->msgs, s->maildrop_fd, IPC_SEEN,
		    s->msgs.whole);
	if (ipc_send(s->maildrop_fd, IPC_COMMIT, NULL, 0, -1) == -1)
		fatal("send to maildrop");
	if (ipc_recv(s->maildrop_fd, PROC_MAILDROP, &m) != 1) {
		if (s->msgs.maildir)
			reply(s, "-ERR [SYS/TEMP] update of maildrop "
			    "interrupted, some messages may not be deleted");
		else
			reply(s, "-ERR [SYS/TEMP] update of maildrop "
			    "interrupted, it will be finished at the next login");
		s->ndeleted = 0;
		session_end(s, "maildrop-failed-in-commit");
	}
	if (m.fd != -1)
		fatalx("invalid commit reply from maildrop");
	if (m.type == IPC_COMMIT_ERR) {
		session_maildrop_error(s, &m);
		s->ndeleted = 0;
		return;
	}
	if (m.type != IPC_COMMIT_OK || m.len < sizeof(left))
		fatalx("invalid commit reply from maildrop");
	memcpy(&left, m.data, sizeof(left));
	reply(s, "+OK pop3d signing off (%u message%s left)", left,
	    PLURAL(left));
}

static int
cmd_quit(struct session *s, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	s->quit = 1;
	if (s->state == S_TRANSACTION)
		session_update(s);
	else
		reply(s, "+OK pop3d signing off");
	return 0;
}

/*
 * Counts a bad command and sends its reply (unless the handler did);
 * the last one allowed gets a goodbye instead, and the session ends.
 */
static void
session_bad(struct session *s, const char *text)
{
	if (++s->bad_commands >= MAX_BAD_COMMANDS) {
		reply(s, "-ERR too many bad commands");
		session_end(s, "too-many-bad-commands");
	}
	if (text != NULL)
		reply(s, "%s", text);
}

/* Runs one complete command line (CRLF stripped, no NUL inside). */
static void
session_command(struct session *s, char *line)
{
	const struct verb	*v;
	char			*verb, *args, *argv[2];
	size_t			 mark = s->io.wlen;
	int			 argc, bad;

	if (s->sasl_pending)
		bad = session_sasl_response(s, line);
	else {
		verb = parse_verb(line, &args);
		for (v = session_verbs; v->name != NULL; v++)
			if (strcasecmp(v->name, verb) == 0)
				break;
		if (v->name == NULL) {
			reply(s, "-ERR unknown command");
			bad = -1;
		} else if (!(v->states & s->state)) {
			reply(s, "-ERR command not valid in this state");
			bad = -1;
		} else if (v->maxargs == ARGS_REST && args != NULL)
			bad = v->handler(s, 1, &args);
		else if ((argc = parse_args(args, argv, v->maxargs)) <
		    v->minargs) {
			reply(s, "-ERR syntax error");
			bad = -1;
		} else
			bad = v->handler(s, argc, argv);
	}
	if (bad && s->bad_commands + 1 >= MAX_BAD_COMMANDS &&
	    s->io.wlen >= mark)
		s->io.wlen = mark;	/* one reply a command: the last word */
	if (bad)
		session_bad(s, NULL);
}

/*
 * Takes the complete lines out of the input buffer, in order.  An
 * overlong line gets one -ERR and is dropped up to its LF.
 */
static void
session_lines(struct session *s)
{
	struct io	*io = &s->io;
	char		*line, *lf;
	size_t		 len, max;

	while (!s->quit && io->rpos < io->rlen) {
		max = s->sasl_pending ? MAX_SASL_LINE : MAX_COMMAND_LINE;
		line = io->rbuf + io->rpos;
		lf = memchr(line, '\n', io->rlen - io->rpos);
		if (lf == NULL) {
			if (io->rlen - io->rpos < max)
				return;
			/* no LF within the limit: too long already */
			if (!s->discarding) {
				s->discarding = 1;
				s->sasl_pending = 0;
				session_bad(s, "-ERR line too long");
			}
			io->rpos = io->rlen;
			return;
		}
		io->rpos = lf - io->rbuf + 1;
		len = lf - line;
		if (s->discarding) {
			s->discarding = 0;
			continue;
		}
		if (len + (len > 0 && line[len - 1] == '\r' ? 1 : 2) > max) {
			s->sasl_pending = 0;
			session_bad(s, "-ERR line too long");
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		if (memchr(line, '\0', len) != NULL) {
			s->sasl_pending = 0;
			session_bad(s, "-ERR invalid character in command");
			continue;
		}
		s->progress = 1;
		session_command(s, line);
		/* PASS, AUTH PLAIN and its response carry a password */
		explicit_bzero(line, len);
	}
}

/* Ends the session: a normal QUIT, or why the connection is dropped (no
 * deletions happen then), as a reason= word. */
static __dead void
session_end(struct session *s, const char *why)
{
	char		 grace[64];
	const char	*q;

	if (s->state == S_AUTHORIZATION && s->io.limit != 0 &&
	    io_now() >= s->io.limit) {
		snprintf(grace, sizeof(grace), "login-timed-out seconds=%d",
		    s->grace);
		why = grace;
		(void)io_write(&s->io, "-ERR login time limit reached\r\n", 31);
	}
	(void)io_flush(&s->io);
	/* a reason of several words is quoted, to stay one field */
	q = why != NULL && strchr(why, ' ') != NULL ? "\"" : "";
	if (s->state == S_TRANSACTION)
		log_info("logout user=%s retrieved=%zu octets=%lld deleted=%zu "
		    "left=%zu tls=%s%s%s%s%s", s->user, s->retrieved,
		    s->retrieved_octets, s->quit ? s->ndeleted : 0,
		    s->msgs.count - (s->quit ? s->ndeleted : 0), session_tls(s),
		    why != NULL ? " reason=" : "", q, why != NULL ? why : "", q);
	else if (why != NULL)
		log_info("session ended before login reason=%s%s%s tls=%s", q,
		    why, q, session_tls(s));
	io_close(&s->io);
	proc_exit(0);
}

void
session_main(struct pop3d_conf *conf, int monitor_fd)
{
	static struct session	 s;
	const char		*why;
	ssize_t			 n;

	s.conf = conf;
	s.monitor_fd = monitor_fd;
	s.maildrop_fd = s.mailbox_fd = -1;
	s.state = S_AUTHORIZATION;
	/* the key pair stays in memory for libtls, which starts at STLS */
	io_init(&s.io, conf);
	s.grace = conf->timeout < LOGIN_GRACE ? conf->timeout : LOGIN_GRACE;
	s.io.limit = io_now() + s.grace;
	priv_check_fds(&monitor_fd, 1);		/* the client, the monitor */
	priv_drop(conf->session_root, conf->session_uid, conf->session_gid,
	    0);
	sandbox_session();
	TEST_INJECT(monitor_fd, "session");
#ifdef POP3D_TEST_HOOKS
	sandbox_test_escape("session");	/* prove the filter holds */
#endif
	/* from a proxy in -x, its PROXY header comes first of all */
	if (proxy_nets_match(conf->proxy_nets, conf->proxy_count,
	    &conf->peer_addr) && (why = proxy_accept(conf, s.io.rfd,
	    monitor_fd, &s.proxy_tls)) != NULL)
		session_end(&s, why);
#ifdef POP3D_TEST_HOOKS
	proxy_test_forge(monitor_fd);	/* prove the monitor checks it */
#endif
	if (conf->implicit_tls && io_starttls(&s.io) == -1)
		session_end(&s, NULL);	/* io_starttls said why */
	reply(&s, "+OK pop3d ready");
	s.progress = 1;
	for (;;) {
		if (io_flush(&s.io) == -1)
			session_end(&s, "connection-lost");
		/*
		 * The inactivity timer starts when the client has had all
		 * its answers, and only a whole command stops it: a client
		 * that sends a byte now and then makes no progress.
		 */
		if (s.progress) {
			s.io.deadline = io_now() + s.io.timeout;
			s.progress = 0;
		}
		if ((n = io_fill(&s.io)) <= 0)
			session_end(&s, n == 0 ? "connection-closed" :
			    errno == ETIMEDOUT ? "timed-out" :
			    "connection-lost");
		session_lines(&s);
		if (s.quit)
			session_end(&s, NULL);
	}
}
