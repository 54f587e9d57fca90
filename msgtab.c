/*
 * msgtab.c: the session process's table of messages, the index the
 * maildrop process sends, kept compact because it is the one thing in the
 * session that grows with the mailbox.  An entry is 32 bytes where the
 * wire form is 104: the offset, the length and the octets added by the
 * CRLF conversion in 32-bit fields, and an mbox UIDL of 32 hex digits as
 * its 16 bytes.  What does not fit (a message of 4 GB or more, a UIDL of
 * another form: a twin's ".N", a Maildir name) is kept beside it, so
 * every answer is the one the wire form gives.  Deletion and retrieval
 * marks are bits.
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pop3d.h"

/* In msg_rec.off, above any offset MAX_MAILDROP_SIZE allows. */
#define REC_WIDE	((uint64_t)1 << 62)	/* len, size in msgtab.wide */
#define REC_POOL	((uint64_t)1 << 61)	/* the UIDL is text in pool */
#define REC_OFF		(REC_POOL - 1)

#define HEX_UIDL	32	/* digits of a plain mbox UIDL */

struct msg_rec {
	uint64_t	 off;		/* first byte served, and REC_* */
	uint32_t	 len;		/* REC_WIDE: index into wide */
	uint32_t	 extra;		/* size - len */
	unsigned char	 uidl[HEX_UIDL / 2]; /* REC_POOL: u32 offset, u8 len */
};

struct msg_wide {
	off_t		 len;
	off_t		 size;
};

/* Entries allocated first: 256 KB, which malloc maps rather than takes
 * from the heap, so a small mailbox touches a page or two of it and a
 * large one grows it by mremap(2), never leaving freed heap behind. */
#define MSGTAB_FIRST	8192

static const char	 hex[] = "0123456789abcdef";

/* Room for one more of n items of size: doubling, fatal if out of memory.
 * Large tables are mapped by malloc, so the unused part costs nothing. */
static void *
msgtab_grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t	 c = *cap;

	if (n < c)
		return p;
	c = c < MSGTAB_FIRST ? MSGTAB_FIRST : 2 * c;
	if ((p = reallocarray(p, c, size)) == NULL)
		fatal("index");
	*cap = c;
	return p;
}

/* A message index entry from the maildrop process, checked before use. */
int
msgtab_valid(const struct mbox_msg *m)
{
	size_t	 i, len;

	if (m->from == MSG_OWN_FILE ? m->off != 0 : m->from < 0 ||
	    m->off <= m->from)
		return 0;
	if (m->len < 0 ||
	    m->size < m->len || m->size > 2 * m->len + 2 ||
	    m->off > MAX_MAILDROP_SIZE || m->len > MAX_MAILDROP_SIZE)
		return 0;
	len = strnlen(m->uidl, sizeof(m->uidl));
	if (len == 0 || len > 70 || len == sizeof(m->uidl))
		return 0;
	for (i = 0; i < len; i++)
		if (m->uidl[i] < 0x21 || m->uidl[i] > 0x7e)
			return 0;
	return 1;
}

/* 32 lower-case hex digits into 16 bytes; -1 if it is not that. */
static int
msgtab_unhex(const char *uidl, unsigned char *out)
{
	const char	*a, *b;
	size_t		 i;

	if (strnlen(uidl, HEX_UIDL + 1) != HEX_UIDL)
		return -1;
	for (i = 0; i < HEX_UIDL / 2; i++) {
		if ((a = memchr(hex, uidl[2 * i], 16)) == NULL ||
		    (b = memchr(hex, uidl[2 * i + 1], 16)) == NULL)
			return -1;
		out[i] = (a - hex) << 4 | (b - hex);
	}
	return 0;
}

int
msgtab_add(struct msgtab *t, const struct mbox_msg *m)
{
	struct msg_rec	*r;
	struct msg_wide	*w;
	uint32_t	 at;
	size_t		 n;

	if (!msgtab_valid(m) || t->count >= MAX_MESSAGES)
		return -1;
	t->recs = msgtab_grow(t->recs, &t->cap, t->count, sizeof(*r));
	r = &t->recs[t->count];
	r->off = m->off;
	if (m->len <= UINT32_MAX && m->size - m->len <= UINT32_MAX) {
		r->len = m->len;
		r->extra = m->size - m->len;
	} else {
		t->wide = msgtab_grow(t->wide, &t->widecap, t->nwide,
		    sizeof(*w));
		w = &t->wide[t->nwide];
		w->len = m->len;
		w->size = m->size;
		r->off |= REC_WIDE;
		r->len = t->nwide++;
		r->extra = 0;
	}
	if (msgtab_unhex(m->uidl, r->uidl) == -1) {
		n = strlen(m->uidl);	/* 70 at most: msgtab_valid */
		while (t->poollen + n > t->poolcap)
			t->pool = msgtab_grow(t->pool, &t->poolcap,
			    t->poolcap, 1);
		memcpy(t->pool + t->poollen, m->uidl, n);
		at = t->poollen;
		memcpy(r->uidl, &at, sizeof(at));
		r->uidl[sizeof(at)] = n;
		t->poollen += n;
		r->off |= REC_POOL;
	}
	t->count++;
	return 0;
}

int
msgtab_receive(struct msgtab *t, int fd, struct ipc_msg *m)
{
	struct mbox_msg	 e;
	size_t		 i, n;

	for (;;) {
		if (ipc_recv(fd, PROC_MAILDROP, m) != 1)
			return -1;
		if (m->type == IPC_MAILDROP_ERR)
			return 0;
		if (m->type == IPC_READY && m->len == 0)
			break;
		if (m->type != IPC_INDEX || m->fd != -1 || m->len == 0 ||
		    m->len % sizeof(e) != 0)
			fatalx("invalid index from maildrop");
		for (i = 0; i < m->len; i += sizeof(e)) {
			memcpy(&e, m->data + i, sizeof(e));
			/* a Maildir's messages come one by one, never with
			 * the index */
			if (t->count == 0)
				t->maildir = e.from == MSG_OWN_FILE;
			if ((e.from == MSG_OWN_FILE) != t->maildir ||
			    msgtab_add(t, &e) == -1)
				fatalx("invalid index entry from maildrop");
		}
	}
	if (t->maildir && m->fd != -1)
		fatalx("mailbox descriptor for a Maildir from maildrop");
	if (m->fd == -1 && t->count > 0 && !t->maildir)
		fatalx("no mailbox descriptor from maildrop");
	if (m->fd != -1 && t->count == 0) {
		close(m->fd);	/* an empty file: nothing to read */
		m->fd = -1;
	}
	n = t->count / 8 + 1;
	if ((t->deleted = calloc(n, 1)) == NULL ||
	    (t->whole = calloc(n, 1)) == NULL)
		fatal("index");
	return 1;
}

void
msgtab_reset(struct msgtab *t)
{
	memset(t->deleted, 0, t->count / 8 + 1);
}

void
msgtab_span(const struct msgtab *t, size_t i, off_t *off, off_t *len)
{
	const struct msg_rec	*r = &t->recs[i];

	*off = r->off & REC_OFF;
	*len = r->off & REC_WIDE ? t->wide[r->len].len : (off_t)r->len;
}

off_t
msgtab_size(const struct msgtab *t, size_t i)
{
	const struct msg_rec	*r = &t->recs[i];

	if (r->off & REC_WIDE)
		return t->wide[r->len].size;
	return (off_t)r->len + r->extra;
}

const char *
msgtab_uidl(const struct msgtab *t, size_t i, char *buf)
{
	const struct msg_rec	*r = &t->recs[i];
	uint32_t		 at;
	size_t			 j, n;

	if (r->off & REC_POOL) {
		memcpy(&at, r->uidl, sizeof(at));
		n = r->uidl[sizeof(at)];
		memcpy(buf, t->pool + at, n);
	} else {
		for (j = 0; j < sizeof(r->uidl); j++) {
			buf[2 * j] = hex[r->uidl[j] >> 4];
			buf[2 * j + 1] = hex[r->uidl[j] & 15];
		}
		n = HEX_UIDL;
	}
	buf[n] = '\0';
	return buf;
}

int
msgtab_marked(const unsigned char *bits, size_t i)
{
	return (bits[i / 8] >> (i % 8)) & 1;
}

void
msgtab_mark(unsigned char *bits, size_t i)
{
	bits[i / 8] |= 1 << (i % 8);
}

void
msgtab_totals(const struct msgtab *t, size_t *count, long long *octets)
{
	size_t	 i;

	*count = 0;
	*octets = 0;
	for (i = 0; i < t->count; i++) {
		if (msgtab_marked(t->deleted, i))
			continue;
		(*count)++;
		*octets += msgtab_size(t, i);
	}
}

void
msgtab_send_marks(const struct msgtab *t, int fd, uint32_t type,
    const unsigned char *marks)
{
	uint32_t	 batch[IPC_MAX_PAYLOAD / sizeof(uint32_t)];
	size_t		 i, n = 0;

	for (i = 0; i < t->count; i++) {
		if (!msgtab_marked(marks, i))
			continue;
		batch[n++] = i;
		if (n == sizeof(batch) / sizeof(batch[0])) {
			if (ipc_send(fd, type, batch, n * sizeof(batch[0]),
			    -1) == -1)
				fatal("send to maildrop");
			n = 0;
		}
	}
	if (n > 0 && ipc_send(fd, type, batch, n * sizeof(batch[0]), -1) ==
	    -1)
		fatal("send to maildrop");
}
