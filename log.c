/*
 * log.c: logging for all three processes.  The monitor writes to syslog
 * (LOG_MAIL) or, with -d, to stderr.  The children are chrooted and
 * sandboxed and cannot reach /dev/log, so they hand each line to the
 * monitor, which logs it under the child's name.
 *
 * Every line is an event in words followed by key=value fields (values
 * with spaces in double quotes), and every line of a connection ends
 * with the client's address, " from=ADDR", added here at the one place
 * lines are written, so that no caller can forget it and the lines a
 * child hands over get it too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "pop3d.h"

int		 log_verbose;
static int	 log_stderr;
static int	 log_monitor_fd = -1;
static const char *log_name = "monitor";
static const char *log_from;	/* the client's address, or NULL */
static const char *log_via;	/* the proxy it came through, or "" */

/* log_init: -d sends the log to stderr, -v enables debug lines. */
void
log_init(int debug, int verbose)
{
	log_stderr = debug;
	log_verbose = verbose;
	if (!debug)
		openlog("pop3d", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_procname: names this process in the log ("[session] ..."). */
void
log_procname(const char *name)
{
	log_name = name;
}

/* log_peer: ends every line from now on with " from=ADDR", and
 * " via=PROXY" while via is not empty; both are read at each line, so
 * whoever corrects the address later (a PROXY header) corrects the log. */
void
log_peer(const char *addr, const char *via)
{
	log_from = addr;
	log_via = via;
}

/*
 * log_to_monitor: from now on, send every line to the monitor over fd.
 * A child must reach no log but through the monitor, which checks what
 * it says: the syslog socket the monitor opened goes, and stderr (with
 * -d the admin's log, under systemd the journal) becomes /dev/null.
 */
void
log_to_monitor(int fd)
{
	int	 null;

	log_monitor_fd = fd;
	closelog();
	if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1 ||
	    dup2(null, STDERR_FILENO) == -1)
		fatal("/dev/null");
	if (null != STDERR_FILENO)
		close(null);
}

/* log_emit: writes one finished line at priority pri; a control
 * character in it (from a field a client chose) becomes '?', so that one
 * line stays one line for the tools that read the log. */
void
log_emit(int pri, const char *text)
{
	unsigned char	 buf[sizeof(uint32_t) + MAX_LOG_LINE];
	char		 line[MAX_LOG_LINE], peer[128];
	uint32_t	 p = pri;
	size_t		 i, n;
	int		 saved = errno;

	n = strnlen(text, sizeof(line) - 1);
	for (i = 0; i < n; i++)
		line[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ?
		    '?' : text[i];
	line[n] = '\0';

	if (log_monitor_fd != -1) {
		n = strnlen(line, MAX_LOG_LINE);
		memcpy(buf, &p, sizeof(p));
		memcpy(buf + sizeof(p), line, n);
		if (ipc_send(log_monitor_fd, IPC_LOG, buf, sizeof(p) + n,
		    -1) == 0) {
			errno = saved;
			return;
		}
		/* The monitor is gone: stderr is all that is left. */
	}
	peer[0] = '\0';
	if (log_from != NULL)
		snprintf(peer, sizeof(peer), " from=%s%s%s", log_from,
		    log_via != NULL && *log_via != '\0' ? " via=" : "",
		    log_via != NULL ? log_via : "");
	if (log_stderr || log_monitor_fd != -1)
		fprintf(stderr, "pop3d[%ld]: [%s] %s%s\n", (long)getpid(),
		    log_name, line, peer);
	else
		syslog(pri, "[%s] %s%s", log_name, line, peer);
	errno = saved;
}

static void
log_vformat(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char	 line[MAX_LOG_LINE];
	size_t	 n;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (errstr != NULL) {
		n = strlen(line);
		snprintf(line + n, sizeof(line) - n, " error=\"%s\"", errstr);
	}
	log_emit(pri, line);
}

void
log_warn(const char *fmt, ...)
{
	const char	*errstr = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vformat(LOG_WARNING, errstr, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vformat(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vformat(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vformat(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

/*
 * exit(3) would run the libraries' exit handlers and destructors
 * (libcrypto's among them), which only free memory the kernel is about
 * to take back, and in a forked child write to pages shared with the
 * monitor, each write a copy.  The sanitizer build exits normally, so
 * that LeakSanitizer still looks for leaks at the end.
 */
void
proc_exit(int status)
{
#ifdef POP3D_SANITIZE
	exit(status);
#else
	_exit(status);
#endif
}

void
fatal(const char *fmt, ...)
{
	const char	*errstr = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vformat(LOG_ERR, errstr, fmt, ap);
	va_end(ap);
	_exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vformat(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
	_exit(1);
}
