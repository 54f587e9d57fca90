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
	libclang-rt-14-dev strace
