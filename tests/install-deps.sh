#!/bin/sh
# Installs what building pop3d and running its tests need on Debian 12.
set -e
if [ "$(id -u)" -ne 0 ]; then
	echo "tests/install-deps.sh: run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	gcc clang make pkg-config libc6-dev libtls-dev libcrypt-dev \
	systemd openssl ca-certificates curl fetchmail mpop procmail \
	python3 mandoc passwd valgrind cppcheck clang-tidy maildrop \
	libclang-rt-14-dev strace fail2ban python3-systemd openbsd-inetd \
	libselinux1 libtirpc3 libwrap0 netbase \
	nginx-light libnginx-mod-mail haproxy
# xinetd conflicts with openbsd-inetd (both are the inet-superserver):
# the tests run its binary from the package, unpacked, never installed.
xinetd_dir=/var/cache/pop3d-tests
if [ ! -x "$xinetd_dir/xinetd/usr/sbin/xinetd" ]; then
	mkdir -p "$xinetd_dir"
	chown _apt "$xinetd_dir" 2>/dev/null || true
	(cd "$xinetd_dir" && rm -f xinetd_*.deb && apt-get download -q xinetd &&
	    dpkg-deb -x xinetd_*.deb xinetd)
fi
