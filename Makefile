# pop3d: plain make.  make; make test; make install; make clean.

PROG=	pop3d
SRCS=	pop3d.c
SRCS+=	monitor.c
SRCS+=	priv.c
SRCS+=	auth.c
SRCS+=	session.c
SRCS+=	command.c
SRCS+=	msgtab.c
SRCS+=	sasl.c
SRCS+=	maildrop.c
SRCS+=	maildir.c
SRCS+=	commit.c
SRCS+=	dotlock.c
SRCS+=	sandbox.c
SRCS+=	mbox.c
SRCS+=	mbox_fd.c
SRCS+=	xform.c
SRCS+=	index.c
SRCS+=	ipc.c
SRCS+=	log.c
SRCS+=	tls.c
SRCS+=	proxy.c
SRCS+=	testhooks.c
SRCS+=	compat/strlcpy.c
OBJS=	${SRCS:.c=.o}

CC?=		cc
PKG_CONFIG?=	pkg-config
TLS_CFLAGS!=	${PKG_CONFIG} --cflags libtls 2>/dev/null || true
TLS_LIBS!=	${PKG_CONFIG} --libs libtls 2>/dev/null || echo -ltls
# SHA-256 for the UIDL and the journal; libtls needs libcrypto anyway.
CRYPTO_LIBS!=	${PKG_CONFIG} --libs libcrypto 2>/dev/null || echo -lcrypto

WARNINGS=	-Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
		-Wshadow -Wpointer-arith -Wcast-qual -Wsign-compare
HARDENING=	-fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS?=	-O2 -g
# glibc has strlcpy only from 2.38 on: compat/strlcpy.c otherwise.
HAVE_STRLCPY!=	printf '\043include <string.h>\nint main(void){char b[2];return (int)strlcpy(b,"x",2);}\n' | \
		${CC} -D_GNU_SOURCE -x c -o /dev/null - 2>/dev/null && echo -DHAVE_STRLCPY || true
# CFLAGS and LDFLAGS are the builder's (make CFLAGS="-O2 -Werror");
# what pop3d needs is added to them.
# make SANITIZE=1: AddressSanitizer and UndefinedBehaviorSanitizer, any
# report fatal (make clean first: objects are not rebuilt by themselves).
SAN_1=		-fsanitize=address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer -DPOP3D_SANITIZE
BASECFLAGS=	-std=c11 -D_GNU_SOURCE ${HAVE_STRLCPY} ${WARNINGS} ${HARDENING} \
		${TLS_CFLAGS} ${CFLAGS}
BASELDFLAGS=	-pie -Wl,-z,relro -Wl,-z,now ${LDFLAGS}
MYCFLAGS=	${BASECFLAGS} ${SAN_${SANITIZE}}
MYLDFLAGS=	${BASELDFLAGS} ${SAN_${SANITIZE}}
LDLIBS=		${TLS_LIBS} ${CRYPTO_LIBS} -lcrypt

# make install: PREFIX, SBINDIR, MANDIR as GNU and BSD have them
# (make install PREFIX=/usr MANDIR=/usr/share/man), DESTDIR for staging.
# Nothing goes to /etc: the service files are examples to copy from.
PREFIX?=	/usr/local
SBINDIR?=	${PREFIX}/sbin
MANDIR?=	${PREFIX}/share/man
EXAMPLEDIR?=	${PREFIX}/share/examples/pop3d
EXAMPLES=	inetd.conf
EXAMPLES+=	xinetd.pop3d
EXAMPLES+=	systemd/pop3d.socket
EXAMPLES+=	systemd/pop3d@.service
EXAMPLES+=	systemd/pop3s.socket
EXAMPLES+=	systemd/pop3s@.service
EXAMPLES+=	fail2ban/filter.d/pop3d.conf
EXAMPLES+=	fail2ban/jail.d/pop3d-systemd.conf
EXAMPLES+=	fail2ban/jail.d/pop3d-logfile.conf
EXAMPLES+=	systemd/pop3d-backend.socket
EXAMPLES+=	systemd/pop3d-backend@.service
EXAMPLES+=	nginx/pop3d-proxy.conf
EXAMPLES+=	haproxy/pop3d.cfg
EXAMPLEDIRS=	systemd fail2ban/filter.d fail2ban/jail.d fail2ban nginx haproxy

UNIT=	tests/unit_mbox tests/unit_session tests/unit_auth tests/unit_ipc \
	tests/unit_proxy tests/unit_maildir tests/unit_index \
	tests/unit_dotlock tests/unit_scansplit

all: ${PROG}

.c.o:
	${CC} ${MYCFLAGS} -c -o $@ $<

${PROG}: ${OBJS}
	${CC} ${MYLDFLAGS} -o $@ ${OBJS} ${LDLIBS}

# Test-only, never installed: POP3D_CRASH_AT=N kills the maildrop
# process at the Nth write, fsync, truncate or unlink of a commit,
# POP3D_TEST_SANDBOX_ESCAPE makes the session process try to open a file
# after its sandbox is up, and POP3D_TEST_NO_SANDBOX lets valgrind run
# it.  Never built with the sanitizers: valgrind cannot run those.
pop3d-crashtest: ${SRCS} pop3d.h params.h auth.h
	${CC} ${BASECFLAGS} -DPOP3D_TEST_HOOKS ${BASELDFLAGS} -o $@ ${SRCS} \
	    ${LDLIBS}

${OBJS}: pop3d.h params.h auth.h

tests/unit_mbox: tests/unit_mbox.c tests/unit.h mbox.c mbox_fd.c xform.c \
    compat/strlcpy.o
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_mbox.c \
	    compat/strlcpy.o ${LDLIBS}

tests/unit_scansplit: tests/unit_scansplit.c tests/unit.h mbox.c mbox_fd.c \
    compat/strlcpy.o
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_scansplit.c \
	    compat/strlcpy.o ${LDLIBS}

# The unit tests include the file under test to reach its static
# functions, and link what it calls.
TESTLIBS=	command.o tls.o ipc.o log.o mbox.o mbox_fd.o xform.o index.o sasl.o proxy.o \
		compat/strlcpy.o

tests/unit_session: tests/unit_session.c tests/unit.h session.c msgtab.o \
    ${TESTLIBS}
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_session.c \
	    msgtab.o ${TESTLIBS} ${LDLIBS}

tests/unit_auth: tests/unit_auth.c tests/unit.h auth.c ${TESTLIBS}
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_auth.c \
	    ${TESTLIBS} ${LDLIBS}

tests/unit_ipc: tests/unit_ipc.c tests/unit.h ${TESTLIBS}
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_ipc.c \
	    ${TESTLIBS} ${LDLIBS}

tests/unit_proxy: tests/unit_proxy.c tests/unit.h proxy.o ipc.o log.o \
    compat/strlcpy.o
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_proxy.c proxy.o \
	    ipc.o log.o compat/strlcpy.o

tests/unit_maildir: tests/unit_maildir.c tests/unit.h maildir.c ${TESTLIBS}
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_maildir.c \
	    ${TESTLIBS} ${LDLIBS}

tests/unit_index: tests/unit_index.c tests/unit.h index.c ${TESTLIBS}
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_index.c \
	    ${TESTLIBS:index.o=} ${LDLIBS}

tests/unit_dotlock: tests/unit_dotlock.c tests/unit.h dotlock.c log.o ipc.o \
    compat/strlcpy.o
	${CC} ${MYCFLAGS} -I. ${MYLDFLAGS} -o $@ tests/unit_dotlock.c log.o \
	    ipc.o compat/strlcpy.o

test: ${PROG} pop3d-crashtest ${UNIT}
	sh tests/run

# Compares pop3d with popa3d and Dovecot on this machine, in one run;
# run as root: it installs the competitors (see bench/bench.py).  make
# bench QUICK=1: small mailboxes, a check rather than a measurement.
BENCH_1=	--quick
bench: ${PROG}
	python3 bench/bench.py ${BENCH_${QUICK}}

# make fuzz: each libFuzzer target in fuzz/ for FUZZTIME seconds (clang).
FUZZTIME=	60
fuzz:
	${MAKE} -C fuzz run FUZZTIME=${FUZZTIME}

# Static checks: cppcheck, and clang-tidy with the checks in .clang-tidy.
lint:
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	    --enable=warning,performance,portability -D__linux__ -D__x86_64__ \
	    -I. ${SRCS}
	for f in ${SRCS}; do \
		clang-tidy --quiet $$f -- -std=c11 -D_GNU_SOURCE -I. || exit 1; \
	done

# The examples name the binary where this install puts it.
install: ${PROG}
	install -d -m 755 ${DESTDIR}${SBINDIR} ${DESTDIR}${MANDIR}/man8
	install -m 755 ${PROG} ${DESTDIR}${SBINDIR}/${PROG}
	install -m 644 pop3d.8 ${DESTDIR}${MANDIR}/man8/pop3d.8
	for d in ${EXAMPLEDIRS}; do \
		install -d -m 755 ${DESTDIR}${EXAMPLEDIR}/$$d || exit 1; \
	done
	for f in ${EXAMPLES}; do \
		sed 's|/usr/local/sbin/pop3d|${SBINDIR}/pop3d|g' etc/$$f \
		    >${DESTDIR}${EXAMPLEDIR}/$$f && \
		chmod 644 ${DESTDIR}${EXAMPLEDIR}/$$f || exit 1; \
	done

uninstall:
	rm -f ${DESTDIR}${SBINDIR}/${PROG} ${DESTDIR}${MANDIR}/man8/pop3d.8
	for f in ${EXAMPLES}; do rm -f ${DESTDIR}${EXAMPLEDIR}/$$f; done
	for d in ${EXAMPLEDIRS}; do \
		rmdir ${DESTDIR}${EXAMPLEDIR}/$$d 2>/dev/null || true; \
	done
	rmdir ${DESTDIR}${EXAMPLEDIR} 2>/dev/null || true

clean:
	rm -f ${PROG} pop3d-crashtest ${OBJS} ${UNIT} tests/*.o
	${MAKE} -C fuzz clean

.PHONY: all test lint bench fuzz install uninstall clean
