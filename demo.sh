#!/bin/sh
# Builds pop3d and serves a demo mailbox on 127.0.0.1 through systemd
# socket activation: port 1110 (STLS) and 1995 (implicit TLS).
# Run as root on Debian 12.  Stop it with: kill $(cat /run/pop3d-demo.pid)
set -e
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root" >&2
	exit 1
fi
sh tests/install-deps.sh >/dev/null
make -s pop3d

demo=/var/lib/pop3d-demo
mkdir -p "$demo"
chmod 755 "$demo"

# The unprivileged session user and its empty, root-owned chroot.
if ! getent passwd _pop3d >/dev/null; then
	mkdir -p /var/empty
	useradd --system --home-dir /var/empty --no-create-home \
	    --shell /usr/sbin/nologin _pop3d
fi
chown root:root /var/empty
chmod 755 /var/empty

# The index cache (-i), root's alone, as systemd's CacheDirectory= makes it.
mkdir -p /var/cache/pop3d
chown root:root /var/cache/pop3d
chmod 755 /var/cache/pop3d

# A mail user, a virtual password for it, and a mailbox of three messages.
if ! getent passwd pop3demo >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin pop3demo
fi
uid=$(id -u pop3demo)
gid=$(id -g pop3demo)
hash=$(openssl passwd -6 demo)
printf 'pop3demo:%s:%s:%s:demo user:/nonexistent:/usr/sbin/nologin\n' \
    "$hash" "$uid" "$gid" >"$demo/passwd"
chmod 600 "$demo/passwd"
mkdir -p "$demo/mail"
chmod 755 "$demo/mail"
cat >"$demo/mail/pop3demo" <<'MBOX'
From alice@example.org Mon Nov 23 09:00:00 2026
From: Alice <alice@example.org>
To: pop3demo@localhost
Subject: Welcome to pop3d
Date: Mon, 23 Nov 2026 09:00:00 +0000
Message-ID: <1@example.org>

Hello!  This message was served by pop3d.
.A line starting with a dot is dot-stuffed on the wire.

From bob@example.org Mon Nov 23 10:00:00 2026
From: Bob <bob@example.org>
To: pop3demo@localhost
Subject: Second message
Date: Mon, 23 Nov 2026 10:00:00 +0000
Message-ID: <2@example.org>

Delete me with DELE 2 and QUIT.

From carol@example.org Mon Nov 23 11:00:00 2026
From: Carol <carol@example.org>
To: pop3demo@localhost
Subject: Third message
Date: Mon, 23 Nov 2026 11:00:00 +0000
Message-ID: <3@example.org>

>From here on, mbox quoting is served as stored.

MBOX
chown "$uid:$gid" "$demo/mail/pop3demo"
chmod 600 "$demo/mail/pop3demo"

if [ ! -f "$demo/key.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
	    -subj /CN=localhost -keyout "$demo/key.pem" \
	    -out "$demo/cert.pem" 2>/dev/null
fi
chmod 600 "$demo/key.pem"

opts="-a $demo/passwd -m $demo/mail/%u -c $demo/cert.pem -k $demo/key.pem"
./pop3d -n $opts

# Stop an earlier demo, by its recorded PIDs.
if [ -f /run/pop3d-demo.pid ]; then
	kill $(cat /run/pop3d-demo.pid) 2>/dev/null || true
	sleep 1
fi
bin=$(pwd)/pop3d
nohup systemd-socket-activate --accept --inetd -l 127.0.0.1:1110 \
    "$bin" -d $opts >"$demo/log-1110" 2>&1 </dev/null &
p1=$!
nohup systemd-socket-activate --accept --inetd -l 127.0.0.1:1995 \
    "$bin" -d -S $opts >"$demo/log-1995" 2>&1 </dev/null &
p2=$!
echo "$p1 $p2" >/run/pop3d-demo.pid
sleep 1

cat <<EOT

pop3d is serving user pop3demo (password: demo), 3 messages, on
127.0.0.1:1110 (STLS) and 127.0.0.1:1995 (implicit TLS).  For the demo
pop3d logs with -d to $demo/log-1110 and $demo/log-1995
(in service it logs to syslog, facility mail).

Fetch message 1 with curl:
    curl -k --ssl-reqd pop3://pop3demo:demo@127.0.0.1:1110/1
    curl -k pop3s://pop3demo:demo@127.0.0.1:1995/1
List the messages:
    curl -k --ssl-reqd pop3://pop3demo:demo@127.0.0.1:1110/

Or talk POP3 yourself:
    openssl s_client -quiet -starttls pop3 -connect 127.0.0.1:1110
then type:
    USER pop3demo
    PASS demo
    LIST
    RETR 1
    QUIT

Stop the demo:
    kill \$(cat /run/pop3d-demo.pid)
EOT
