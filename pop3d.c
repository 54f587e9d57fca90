/*
 * pop3d.c: main.  Parses the command line, checks the configuration, loads
 * the TLS key pair as root and hands over to the monitor (monitor.c).
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>


#include "pop3d.h"
#include "auth.h"

/*
 * Errors before logging is set up go to stderr and to syslog: under
 * inetd stderr may be the client's socket, which main has by then
 * pointed at /dev/null.
 */
static __dead void
startup_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static __dead void
startup_error(const char *fmt, ...)
{
	char	 msg[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pop3d: %s\n", msg);
	log_emit(LOG_ERR, msg);
	exit(1);
}

static __dead void
usage(void)
{
	fprintf(stderr, "usage: pop3d [-dnPSVv] [-a passwd-file] [-c cert-file] "
	    "[-i index-dir]\n"
	    "             [-k key-file] [-m maildrop] [-t seconds] [-u user] "
	    "[-x networks]\n");
	startup_error("invalid command line");
}

/* inetd may hand over the client's socket as stderr too. */
static void
stderr_off_the_wire(void)
{
	struct stat	 st;
	int		 fd;

	if (fstat(STDERR_FILENO, &st) == 0 && !S_ISSOCK(st.st_mode))
		return;
	if ((fd = open("/dev/null", O_WRONLY)) != -1) {
		dup2(fd, STDERR_FILENO);
		if (fd != STDERR_FILENO)
			close(fd);
	}
}

void
proc_setname(const char *name)
{
	char	 comm[16];

	snprintf(comm, sizeof(comm), "pop3d: %s", name);
	(void)prctl(PR_SET_NAME, comm, 0, 0, 0);
	log_procname(name);
}

/* The -m template may hold %u, %h and %% only; the result must be an
 * absolute path without ".." in it. */
int
maildrop_expand(const char *tmpl, const char *user, const char *home,
    char *out, size_t size)
{
	const char	*p, *add;
	char		 one[2] = "";
	size_t		 len = 0, n;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '%') {
			one[0] = *p;
			add = one;
		} else if (*++p == 'u')
			add = user;
		else if (*p == 'h')
			add = home;
		else if (*p == '%')
			add = "%";
		else
			return -1;
		n = strlen(add);
		if (len + n >= size)
			return -1;
		memcpy(out + len, add, n);
		len += n;
	}
	out[len] = '\0';
	if (out[0] != '/' || strstr(out, "/../") != NULL ||
	    (len >= 3 && strcmp(out + len - 3, "/..") == 0))
		return -1;
	return 0;
}

static void
peer_name(struct pop3d_conf *conf)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 addr[INET6_ADDRSTRLEN];
	const void		*a = NULL;
	int			 af;

	memset(&ss, 0, sizeof(ss));
	strlcpy(conf->peer, "local", sizeof(conf->peer));
	if (getpeername(STDIN_FILENO, (struct sockaddr *)&ss, &len) == -1)
		return;
	memcpy(&conf->peer_addr, &ss, sizeof(conf->peer_addr));
	af = ss.ss_family;
	if (af == AF_INET)
		a = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (af == AF_INET6) {
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		/* a dual-stack listener (xinetd's IPv6 flag): the IPv4
		 * address, as a firewall and fail2ban know it */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			af = AF_INET;
			a = (const unsigned char *)a + 12;
		}
	}
	if (a != NULL && inet_ntop(af, a, addr, sizeof(addr)))
		strlcpy(conf->peer, addr, sizeof(conf->peer));
}

/* -x: the networks whose PROXY header is believed. */
static int
proxy_nets(struct pop3d_conf *conf)
{
	char	 err[128];

	if (conf->proxy_spec == NULL)
		return 0;
	if (proxy_nets_parse(conf->proxy_spec, conf->proxy_nets,
	    &conf->proxy_count, err, sizeof(err)) == -1) {
		log_warnx("-x %s: %s", conf->proxy_spec, err);
		return -1;
	}
	return 0;
}


/* -n: a missing index directory only costs speed (each login logs it);
 * an unsafe one is an error. */
static int
configtest_index(struct pop3d_conf *conf)
{
	struct stat	 st;
	int		 fd;

	if (conf->index_dir == NULL ||
	    (stat(conf->index_dir, &st) == -1 && errno == ENOENT))
		return 0;
	if ((fd = index_dir_open(conf->index_dir)) == -1)
		return -1;
	close(fd);
	return 0;
}

/*
 * -n: each problem goes to stderr as one line, the verdict to stdout.
 */
static int
configtest(struct pop3d_conf *conf)
{
	char	 path[PATH_MAX];
	int	 bad = 0, n;

	if (conf->implicit_tls && (conf->cert_file == NULL ||
	    conf->key_file == NULL)) {
		log_warnx("-S needs -c and -k");
		bad = 1;
	} else if (!conf->cleartext && (conf->cert_file == NULL ||
	    conf->key_file == NULL)) {
		log_warnx("nobody can log in: passwords are refused without "
		    "TLS, and TLS needs -c and -k (or -P allows cleartext)");
		bad = 1;
	}
	if (check_session_user(conf) == -1)
		bad = 1;
	if (proxy_nets(conf) == -1)
		bad = 1;
	if (maildrop_expand(conf->maildrop, "user", "/home/user", path,
	    sizeof(path)) == -1) {
		log_warnx("-m %s: not an absolute path with only %%u, %%h "
		    "and %%%%", conf->maildrop);
		bad = 1;
	} else if (path[strlen(path) - 1] == '/')
		log_info("-m %s: a Maildir (new/ and cur/ are served)",
		    conf->maildrop);
	if (configtest_index(conf) == -1)
		bad = 1;
	if (conf->passwd_file != NULL) {
		if ((n = auth_check_file(conf->passwd_file)) != 0)
			bad = 1;
		if (n > 0)
			log_warnx("%s: %d bad lines", conf->passwd_file, n);
	}
	if (tls_load_keypair(conf) == -1 || tls_check_keypair(conf) == -1)
		bad = 1;
	printf("%s\n", bad ? "configuration has errors" : "configuration OK");
	return bad;
}

static int
parse_seconds(const char *s)
{
	char	*end;
	long	 n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > MAX_TIMEOUT)
		return -1;
	return n;
}

int
main(int argc, char *argv[])
{
	static struct pop3d_conf	 conf;
	int				 ch;

	/* what the super-server left open beyond 0-2 is none of ours */
	closefrom(STDERR_FILENO + 1);
	stderr_off_the_wire();
	openlog("pop3d", LOG_PID | LOG_NDELAY, LOG_MAIL);
	/* every line about this connection names the client, even a
	 * startup error */
	peer_name(&conf);
	log_peer(conf.peer, conf.via);
	conf.maildrop = DEFAULT_MAILDROP;
	conf.session_user = DEFAULT_SESSION_USER;
	conf.index_dir = DEFAULT_INDEX_DIR;
	conf.timeout = DEFAULT_TIMEOUT;
	while ((ch = getopt(argc, argv, "a:c:di:k:m:nPSt:u:Vvx:")) != -1) {
		switch (ch) {
		case 'a':
			conf.passwd_file = optarg;
			break;
		case 'c':
			conf.cert_file = optarg;
			break;
		case 'd':
			conf.debug = 1;
			break;
		case 'i':
			conf.index_dir = strcmp(optarg, "none") == 0 ? NULL :
			    optarg;
			break;
		case 'k':
			conf.key_file = optarg;
			break;
		case 'm':
			conf.maildrop = optarg;
			break;
		case 'n':
			conf.configtest = 1;
			break;
		case 'P':
			conf.cleartext = 1;
			break;
		case 'S':
			conf.implicit_tls = 1;
			break;
		case 't':
			if ((conf.timeout = parse_seconds(optarg)) == -1)
				startup_error("-t %s: not a number of seconds from 1 "
				    "to %d", optarg, MAX_TIMEOUT);
			break;
		case 'u':
			conf.session_user = optarg;
			break;
		case 'V':
			printf("pop3d %s\n", POP3D_VERSION);
			exit(0);
		case 'v':
			log_verbose = 1;
			break;
		case 'x':
			conf.proxy_spec = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (geteuid() != 0)
		startup_error("must be started as root");
	if (conf.implicit_tls && (conf.cert_file == NULL ||
	    conf.key_file == NULL) && !conf.configtest)
		startup_error("-S needs -c and -k");
	log_init(conf.debug || conf.configtest, log_verbose);
	proc_setname("monitor");
	if (conf.configtest) {
		/* a check of the files, not of a connection */
		log_peer(NULL, NULL);
		exit(configtest(&conf));
	}

	signal(SIGPIPE, SIG_IGN);
	if (check_session_user(&conf) == -1 || proxy_nets(&conf) == -1 ||
	    tls_load_keypair(&conf) == -1)
		fatalx("configuration error: check it with pop3d -n");
#ifdef POP3D_TEST_HOOKS
	/* test builds: a descriptor the children must refuse to run with */
	if (getenv("POP3D_TEST_LEAK_FD") != NULL)
		(void)open("/dev/null", O_RDONLY);
#endif
	monitor_main(&conf);
}
