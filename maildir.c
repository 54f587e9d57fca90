/*
 * maildir.c: the maildrop process for a Maildir.  It runs as the mail
 * user.  It scans new/ and cur/ once, at login, into an index (one entry
 * a file: its name, inode, size and CRLF size), sends the index to the
 * session process, opens one message at a time for RETR and TOP, and on
 * QUIT unlinks the deleted messages and marks the retrieved ones seen.
 * Maildir needs no lock: every change is one rename or unlink, each
 * atomic, and deliveries never touch a file once it is in new/.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPENSSL_SUPPRESS_DEPRECATED	/* SHA256_Init: see mbox.c */
#include <openssl/sha.h>

#include "pop3d.h"

#define DIR_NEW		0
#define DIR_CUR		1
static const char *const maildir_subdirs[] = { "new", "cur" };

/* A name taken apart: UNIQUE[:INFO], INFO "2,FLAGS" for flags. */
struct maildir_name {
	size_t		 uniquelen;	/* the name up to its first ':' */
	const char	*info;		/* after that ':', or NULL */
	const char	*flags;		/* after ":2,", or NULL */
	long long	 time;		/* leading digits, or -1 */
	off_t		 s_size;	/* ,S=N in the unique part, or -1 */
	off_t		 w_size;	/* ,W=N, or -1 */
};

/* One message as scanned. */
struct maildir_msg {
	char		*name;		/* its file name now */
	ino_t		 ino;		/* how it is known after a rename */
	off_t		 len;		/* file size */
	off_t		 size;		/* octets RETR sends before stuffing */
	long long	 time;		/* delivery time from the name */
	size_t		 uniquelen;	/* name[0 .. uniquelen) is the UIDL's */
	int		 dir;		/* DIR_NEW or DIR_CUR */
	int		 deleted;
	int		 seen;		/* retrieved whole: mark it seen */
};

struct maildir {
	const char		*path;		/* ends in "/" */
	int			 session_fd;
	int			 fd;		/* -1: no Maildir, it is empty */
	int			 dirfd[2];	/* new/ and cur/, -1 if absent */
	struct maildir_msg	*msgs;
	size_t			 count;
	size_t			 cap;
	off_t			 total;		/* bytes, for MAX_MAILDROP_SIZE */
	size_t			 ndeleted;
	int			 ixfd;		/* the index file, -1: none */
	struct index_file	*ix;		/* its files, during the scan */
	size_t			 nix;
	size_t			 known;		/* files it spared reading */
	int			 ixstale;	/* the index file is not md */
};

/*
 * The name parser.  A name is UNIQUE[:INFO]; INFO "2,FLAGS" carries the
 * flags.  The unique part may carry ",S=size" and ",W=size" fields
 * (Dovecot, Courier); they are the user's to write, so only reported.
 */
static int
maildir_name_parse(const char *name, struct maildir_name *mn)
{
	const char	*colon, *p, *end;
	long long	 v;
	int		 digits;

	memset(mn, 0, sizeof(*mn));
	mn->s_size = mn->w_size = -1;
	mn->time = -1;
	if ((colon = strchr(name, ':')) != NULL) {
		mn->uniquelen = colon - name;
		mn->info = colon + 1;
		if (strncmp(mn->info, "2,", 2) == 0)
			mn->flags = mn->info + 2;
	} else
		mn->uniquelen = strlen(name);
	end = name + mn->uniquelen;
	/* the delivery time: the digits the unique part starts with */
	for (p = name, v = 0, digits = 0; p < end && *p >= '0' && *p <= '9';
	    p++)
		if (++digits <= 18)
			v = v * 10 + (*p - '0');
	if (digits > 0 && digits <= 18)
		mn->time = v;
	/* ,S= and ,W= fields: digits only, up to the next ',' */
	for (p = memchr(name, ',', mn->uniquelen); p != NULL && p < end;
	    p = memchr(p + 1, ',', end - p - 1)) {
		off_t	*field = NULL;
		const char *q;

		if (end - p > 3 && p[1] == 'S' && p[2] == '=')
			field = &mn->s_size;
		else if (end - p > 3 && p[1] == 'W' && p[2] == '=')
			field = &mn->w_size;
		if (field == NULL)
			continue;
		for (q = p + 3, v = 0, digits = 0; q < end && *q >= '0' &&
		    *q <= '9'; q++)
			if (++digits <= 18)
				v = v * 10 + (*q - '0');
		if (digits > 0 && digits <= 18 && (q == end || *q == ','))
			*field = v;
	}
	return 0;
}

/*
 * The UIDL of a unique part: itself where RFC 1939 allows it (1 to 70
 * octets in 0x21-0x7E), else "sha256:" and 32 hex digits of its SHA-256.
 * A unique part never holds ':', so the two forms never meet.
 */
static void
maildir_uidl(const char *unique, size_t len, char uidl[UIDL_SIZE])
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 md[SHA256_DIGEST_LENGTH];
	SHA256_CTX		 c;
	size_t			 i;
	int			 plain = len > 0 && len <= 70;

	for (i = 0; plain && i < len; i++)
		if (unique[i] < 0x21 || unique[i] > 0x7e)
			plain = 0;
	memset(uidl, 0, UIDL_SIZE);
	if (plain) {
		memcpy(uidl, unique, len);
		return;
	}
	/* not SHA256(), which is EVP's in OpenSSL 3: see mbox.c */
	if (SHA256_Init(&c) != 1 || SHA256_Update(&c, unique, len) != 1 ||
	    SHA256_Final(md, &c) != 1)
		fatalx("SHA-256 failed");
	memcpy(uidl, "sha256:", 7);
	for (i = 0; i < 16; i++) {
		uidl[7 + 2 * i] = hex[md[i] >> 4];
		uidl[8 + 2 * i] = hex[md[i] & 15];
	}
}

/*
 * The name a message gets in cur/ once seen: the unique part, ":2," and
 * its flags with S added in ASCII order, other flags kept.  Returns 1
 * with out set, 0 if it is in cur/ with S already, -1 if its info is not
 * the "2," kind or the name would be too long (left alone then).
 */
static int
maildir_seen_name(const char *name, int in_cur, char *out, size_t outsize)
{
	struct maildir_name	 mn;
	const char		*f;
	size_t			 n;

	(void)maildir_name_parse(name, &mn);
	if (mn.info != NULL && mn.flags == NULL)
		return -1;
	if (mn.flags != NULL && strchr(mn.flags, 'S') != NULL)
		return in_cur ? 0 : (strlcpy(out, name, outsize) < outsize ?
		    1 : -1);
	if (mn.flags == NULL) {
		if ((size_t)snprintf(out, outsize, "%.*s:2,S",
		    (int)mn.uniquelen, name) >= outsize)
			return -1;
		return 1;
	}
	for (f = mn.flags; *f != '\0' && *f < 'S'; f++)
		;
	n = f - name;
	if ((size_t)snprintf(out, outsize, "%.*sS%s", (int)n, name, f) >=
	    outsize || strlen(out) > NAME_MAX)
		return -1;
	return 1;
}

/* The CRLF size of n bytes: each LF without a CR before it gains one, a
 * last line without LF gains CRLF, as the RETR transform does. */
struct crlf_count {
	off_t	 len;
	off_t	 lfs;
	int	 prev_cr;
	int	 last_lf;
};

static void
crlf_feed(struct crlf_count *c, const char *b, size_t n)
{
	const char	*p = b, *lf, *end = b + n;

	if (n == 0)
		return;
	while ((lf = memchr(p, '\n', end - p)) != NULL) {
		if (lf == b ? !c->prev_cr : lf[-1] != '\r')
			c->lfs++;
		p = lf + 1;
	}
	c->len += n;
	c->prev_cr = end[-1] == '\r';
	c->last_lf = end[-1] == '\n';
}

static off_t
crlf_size(const struct crlf_count *c)
{
	return c->len + c->lfs + (c->len > 0 && !c->last_lf ? 2 : 0);
}

/*
 * One file of new/ or cur/: a regular file of the user's, opened without
 * following a link, read whole for its CRLF size.  Returns 1 with m
 * filled (but m->name), 0 if it is not to be served (logged where that
 * is worth saying), or -1 on a read error.
 */
static int
maildir_file(struct maildir *md, int dir, const char *name,
    struct maildir_msg *m)
{
	static char		 buf[MAILBOX_READ_BUFFER];
	struct crlf_count	 c;
	struct stat		 st;
	ssize_t			 n = 0;
	int			 fd;

	fd = openat(md->dirfd[dir], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)	/* gone since readdir: not ours */
			log_warnx("maildir file skipped file=%s%s/%s "
			    "error=\"%s\"", md->path, maildir_subdirs[dir],
			    name, strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != getuid()) {
		log_warnx("maildir file skipped file=%s%s/%s "
		    "reason=not-users-file", md->path, maildir_subdirs[dir],
		    name);
		close(fd);
		return 0;
	}
	memset(&c, 0, sizeof(c));
	while (c.len < st.st_size && (n = pread(fd, buf, st.st_size - c.len <
	    (off_t)sizeof(buf) ? (size_t)(st.st_size - c.len) : sizeof(buf),
	    c.len)) > 0)
		crlf_feed(&c, buf, n);
	if (n == -1) {
		log_warn("maildir file unreadable file=%s%s/%s", md->path,
		    maildir_subdirs[dir], name);
		close(fd);
		return -1;
	}
	close(fd);
	if (c.len != st.st_size) {
		/* shortened while read: not a message as delivered */
		log_warnx("maildir file skipped file=%s%s/%s "
		    "reason=changed-while-read", md->path,
		    maildir_subdirs[dir], name);
		return 0;
	}
	m->ino = st.st_ino;
	m->len = st.st_size;
	m->size = crlf_size(&c);
	m->dir = dir;
	return 1;
}

/* Adds the messages of one directory; returns MBOX_OK or the error. */
static void	maildir_index_write(struct maildir *);

static int
index_file_order(const void *a, const void *b)
{
	return index_file_cmp(a, b);
}

/* A file of the index with this name and inode: its sizes are known. */
static const struct index_file *
maildir_index_hit(struct maildir *md, int dir, const struct dirent *de)
{
	struct index_file	 key;
	const struct index_file	*hit;

	if (md->nix == 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dir = dir;
	key.name = de->d_name;
	hit = bsearch(&key, md->ix, md->nix, sizeof(*md->ix),
	    index_file_order);
	return hit != NULL && hit->ino == de->d_ino ? hit : NULL;
}

static int
maildir_scan_dir(struct maildir *md, int dir)
{
	const struct index_file	*hit;
	struct maildir_name	 mn;
	struct maildir_msg	 m, *msgs;
	struct dirent		*de;
	DIR			*d;
	int			 fd, rv, err = MBOX_OK;

	if (md->dirfd[dir] == -1)
		return MBOX_OK;
	if ((fd = openat(md->dirfd[dir], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return MBOX_IO;
	}
	while (err == MBOX_OK && (errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		memset(&m, 0, sizeof(m));
		if ((hit = maildir_index_hit(md, dir, de)) != NULL) {
			m.ino = hit->ino;
			m.len = hit->len;
			m.size = hit->size;
			m.dir = dir;
			md->known++;
			rv = 1;
		} else if ((rv = maildir_file(md, dir, de->d_name, &m)) == 0)
			continue;
		if (rv == -1) {
			err = MBOX_IO;
			break;
		}
		if (md->count == MAX_MESSAGES ||
		    md->total > MAX_MAILDROP_SIZE - m.len) {
			err = MBOX_TOOBIG;
			break;
		}
		if (md->count == md->cap) {
			msgs = reallocarray(md->msgs, md->cap ? md->cap * 2 : 64,
			    sizeof(*msgs));
			if (msgs == NULL) {
				err = MBOX_NOMEM;
				break;
			}
			md->msgs = msgs;
			md->cap = md->cap ? md->cap * 2 : 64;
		}
		(void)maildir_name_parse(de->d_name, &mn);
		m.uniquelen = mn.uniquelen;
		m.time = mn.time;
		if ((m.name = strdup(de->d_name)) == NULL) {
			err = MBOX_NOMEM;
			break;
		}
		md->msgs[md->count++] = m;
		md->total += m.len;
	}
	if (err == MBOX_OK && errno != 0)
		err = MBOX_IO;
	closedir(d);
	return err;
}

static int
unique_cmp(const struct maildir_msg *a, const struct maildir_msg *b)
{
	size_t	 n = a->uniquelen < b->uniquelen ? a->uniquelen : b->uniquelen;
	int	 c;

	if ((c = memcmp(a->name, b->name, n)) != 0)
		return c;
	return (a->uniquelen > b->uniquelen) - (a->uniquelen < b->uniquelen);
}

/*
 * Delivery order: the time in the name, then the unique part.  Twins
 * (one unique part, so one time too) end up side by side, the one
 * served first: cur/, then the lowest name.  One sort does both.
 */
static int
delivery_order(const void *va, const void *vb)
{
	const struct maildir_msg	*a = va, *b = vb;
	int				 c;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if ((c = unique_cmp(a, b)) != 0)
		return c;
	if (a->dir != b->dir)
		return a->dir == DIR_CUR ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Two files with one unique part are one message: in delivery_order the
 * first of each run is served, the others are logged and left alone. */
static void
maildir_drop_twins(struct maildir *md)
{
	size_t	 i, keep = 0;

	for (i = 0; i < md->count; i++) {
		if (keep > 0 && unique_cmp(&md->msgs[keep - 1],
		    &md->msgs[i]) == 0) {
			log_warnx("maildir twin left alone file=%s%s/%s "
			    "served=%s/%s", md->path,
			    maildir_subdirs[md->msgs[i].dir],
			    md->msgs[i].name,
			    maildir_subdirs[md->msgs[keep - 1].dir],
			    md->msgs[keep - 1].name);
			md->total -= md->msgs[i].len;
			free(md->msgs[i].name);
			md->ixstale = 1;
			continue;
		}
		md->msgs[keep++] = md->msgs[i];
	}
	md->count = keep;
}

/* Scans new/ and cur/ into md; returns MBOX_OK or the error. */
static int
maildir_scan(struct maildir *md)
{
	int	 err;

	if ((err = maildir_scan_dir(md, DIR_NEW)) != MBOX_OK ||
	    (err = maildir_scan_dir(md, DIR_CUR)) != MBOX_OK)
		return err;
	qsort(md->msgs, md->count, sizeof(md->msgs[0]), delivery_order);
	maildir_drop_twins(md);
	return MBOX_OK;
}

/* By unique part, for maildir_relocate's search: a message (the key)
 * against an index into relocate_md->msgs. */
static const struct maildir *relocate_md;

static int
index_order(const void *va, const void *vb)
{
	const size_t	*a = va, *b = vb;

	return unique_cmp(&relocate_md->msgs[*a], &relocate_md->msgs[*b]);
}

static int
key_order(const void *vkey, const void *vb)
{
	const size_t	*b = vb;

	return unique_cmp(vkey, &relocate_md->msgs[*b]);
}

/*
 * Finds the n messages in want again, where another program (a mail
 * reader) renamed them since the scan: the same unique part and inode,
 * in new/ or cur/.  One pass over each directory; a message not found
 * keeps its old name, which no longer opens.
 */
static void
maildir_relocate(struct maildir *md, size_t *want, size_t n)
{
	struct maildir_msg	 key, *m;
	struct maildir_name	 mn;
	struct dirent		*de;
	size_t			*hit;
	char			*name;
	DIR			*d;
	int			 dir, fd;

	relocate_md = md;
	qsort(want, n, sizeof(want[0]), index_order);
	for (dir = DIR_NEW; dir <= DIR_CUR; dir++) {
		if (md->dirfd[dir] == -1 || (fd = openat(md->dirfd[dir], ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			continue;
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			(void)maildir_name_parse(de->d_name, &mn);
			key.name = de->d_name;
			key.uniquelen = mn.uniquelen;
			if ((hit = bsearch(&key, want, n, sizeof(want[0]),
			    key_order)) == NULL)
				continue;
			m = &md->msgs[*hit];
			if (m->ino != de->d_ino ||
			    (name = strdup(de->d_name)) == NULL)
				continue;
			free(m->name);
			m->name = name;
			m->dir = dir;
			md->ixstale = 1;
		}
		closedir(d);
	}
}

/* Whether message i is still at the name it is known by. */
static int
maildir_at_name(struct maildir *md, size_t i)
{
	struct maildir_msg	*m = &md->msgs[i];
	struct stat		 st;

	return md->dirfd[m->dir] != -1 && fstatat(md->dirfd[m->dir], m->name,
	    &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == m->ino;
}

/*
 * A read-only descriptor of message i for RETR and TOP, found by unique
 * part and inode; -1 if it is gone or no longer the file scanned (its
 * size changed, or it is not the user's regular file any more).
 */
static int
maildir_open_msg(struct maildir *md, size_t i)
{
	struct maildir_msg	*m = &md->msgs[i];
	struct stat		 st;
	int			 fd;

	if (!maildir_at_name(md, i))
		maildir_relocate(md, &i, 1);
	if (md->dirfd[m->dir] == -1)
		return -1;
	fd = openat(md->dirfd[m->dir], m->name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != getuid() || st.st_ino != m->ino ||
	    st.st_size != m->len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Renames message i to its seen name in cur/, unless it has one. */
static int
maildir_mark_seen(struct maildir *md, size_t i)
{
	struct maildir_msg	*m = &md->msgs[i];
	char			 to[NAME_MAX + 1], *name;
	int			 rv;

	if (maildir_seen_name(m->name, m->dir == DIR_CUR, to, sizeof(to)) <= 0)
		return 0;
	if (md->dirfd[DIR_CUR] == -1) {
		errno = ENOENT;
		return -1;
	}
#ifdef RENAME_NOREPLACE
	rv = renameat2(md->dirfd[m->dir], m->name, md->dirfd[DIR_CUR], to,
	    RENAME_NOREPLACE);
	if (rv == -1 && (errno == EINVAL || errno == ENOSYS))
#endif
	{
		/* no atomic no-replace here: check, then rename */
		if (faccessat(md->dirfd[DIR_CUR], to, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			errno = EEXIST;
			return -1;
		}
		rv = renameat(md->dirfd[m->dir], m->name, md->dirfd[DIR_CUR],
		    to);
	}
	/* where it is now, for the index written after the commit */
	if (rv == 0 && (name = strdup(to)) != NULL) {
		free(m->name);
		m->name = name;
		m->dir = DIR_CUR;
	}
	return rv;
}

/*
 * QUIT: each deleted message is unlinked, each one retrieved whole and
 * kept is marked seen, both found by unique part and inode.  Each step
 * is one atomic unlink or rename, so a crash leaves every message
 * deleted or intact; a file already gone is not an error.
 */
static int
maildir_commit(struct maildir *md)
{
	struct maildir_msg	*m;
	size_t			*want, n = 0, i, failed = 0;

	if ((want = calloc(md->count + 1, sizeof(*want))) == NULL)
		return -1;
	for (i = 0; i < md->count; i++)
		if ((md->msgs[i].deleted || md->msgs[i].seen) &&
		    !maildir_at_name(md, i))
			want[n++] = i;
	if (n > 0)
		maildir_relocate(md, want, n);
	free(want);
	for (i = 0; i < md->count; i++) {
		m = &md->msgs[i];
		if (m->deleted || m->seen)
			md->ixstale = 1;	/* left out, or renamed */
		if (m->deleted) {
#ifdef POP3D_TEST_HOOKS
			commit_crashpoint("unlink");
#endif
			if (md->dirfd[m->dir] != -1 && unlinkat(md->dirfd[m->dir],
			    m->name, 0) == -1 && errno != ENOENT) {
				log_warn("maildir delete failed file=%s%s/%s",
				    md->path, maildir_subdirs[m->dir], m->name);
				failed++;
			}
		} else if (m->seen && maildir_mark_seen(md, i) == -1 &&
		    errno != ENOENT)
			log_warn("maildir mark seen failed file=%s%s/%s",
			    md->path, maildir_subdirs[m->dir], m->name);
	}
	for (i = 0; i < 2; i++)
		if (md->dirfd[i] != -1 && fsync(md->dirfd[i]) == -1)
			log_warn("maildir fsync failed dir=%s%s", md->path,
			    maildir_subdirs[i]);
	if (failed > 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/* Tells the session process why the Maildir cannot be served; exits. */
static __dead void
maildir_refuse(struct maildir *md, uint32_t code, const char *why)
{
	log_warnx("maildrop refused mailbox=%s reason=\"%s\"", md->path,
	    why);
	if (ipc_send_code(md->session_fd, IPC_MAILDROP_ERR, code, why) == -1)
		fatal("send to session");
	proc_exit(0);
}

/* Opens the Maildir and its new/ and cur/ as only the user's own
 * directories may be; a missing one is empty. */
static void
maildir_open(struct maildir *md, char *dir, size_t size)
{
	struct stat	 st;
	size_t		 len;
	int		 i;

	len = strlcpy(dir, md->path, size);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	if ((md->fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return;
		if ((errno == ENOTDIR || errno == ELOOP) &&
		    lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
			errno = ELOOP;
		maildir_refuse(md, errno == EACCES || errno == ELOOP ||
		    errno == ENOTDIR ? MAILDROP_PERM : MAILDROP_TEMP,
		    errno == ELOOP ? "maildrop is a symbolic link" :
		    errno == ENOTDIR ? "maildrop is not a directory" :
		    "cannot open maildrop");
	}
	if (fstat(md->fd, &st) == -1 || st.st_uid != getuid())
		maildir_refuse(md, MAILDROP_PERM,
		    "maildrop is not owned by the user");
	for (i = DIR_NEW; i <= DIR_CUR; i++) {
		md->dirfd[i] = openat(md->fd, maildir_subdirs[i], O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (md->dirfd[i] == -1 && errno == ENOENT)
			continue;
		if (md->dirfd[i] == -1 || fstat(md->dirfd[i], &st) == -1 ||
		    st.st_uid != getuid())
			maildir_refuse(md, MAILDROP_PERM, "new/ or cur/ is not "
			    "a directory of the user's");
	}
}

/* Sends the index in batches, then IPC_READY without a descriptor: the
 * session asks for each message with IPC_OPEN_MSG. */
static void
maildir_send_index(struct maildir *md)
{
	static struct mbox_msg	 batch[IPC_INDEX_BATCH /
				    sizeof(struct mbox_msg)];
	const size_t		 max = sizeof(batch) / sizeof(batch[0]);
	struct maildir_msg	*m;
	size_t			 i, n = 0;

	for (i = 0; i < md->count; i++) {
		m = &md->msgs[i];
		memset(&batch[n], 0, sizeof(batch[n]));
		batch[n].from = MSG_OWN_FILE;
		batch[n].off = 0;
		batch[n].len = m->len;
		batch[n].size = m->size;
		maildir_uidl(m->name, m->uniquelen, batch[n].uidl);
		if (++n == max || i + 1 == md->count) {
			if (ipc_send(md->session_fd, IPC_INDEX, batch,
			    n * sizeof(batch[0]), -1) == -1)
				fatal("send index");
			n = 0;
		}
	}
	if (ipc_send(md->session_fd, IPC_READY, NULL, 0, -1) == -1)
		fatal("send to session");
}

/* IPC_DELETE or IPC_SEEN: message indexes, each named once. */
static void
maildir_mark(struct maildir *md, const struct ipc_msg *im)
{
	struct maildir_msg	*m;
	uint32_t		 n;
	size_t			 i;

	if (im->len % sizeof(n) != 0)
		fatalx("invalid message from session");
	for (i = 0; i < im->len / sizeof(n); i++) {
		memcpy(&n, im->data + i * sizeof(n), sizeof(n));
		if (n >= md->count)
			fatalx("invalid message number from session");
		m = &md->msgs[n];
		if (im->type == IPC_DELETE) {
			if (m->deleted)
				fatalx("invalid deletion from session");
			m->deleted = 1;
			md->ndeleted++;
		} else {
			if (m->seen)
				fatalx("invalid retrieval from session");
			m->seen = 1;
		}
	}
}

/* IPC_OPEN_MSG: a descriptor of the message, or IPC_MSG_GONE. */
static void
maildir_answer_open(struct maildir *md, const struct ipc_msg *im)
{
	uint32_t	 n;
	int		 fd;

	if (im->len != sizeof(n))
		fatalx("invalid message from session");
	memcpy(&n, im->data, sizeof(n));
	if (n >= md->count)
		fatalx("invalid message number from session");
	if ((fd = maildir_open_msg(md, n)) == -1) {
		log_info("maildir message gone mailbox=%s message=%u file=%s",
		    md->path, n + 1, md->msgs[n].name);
		if (ipc_send(md->session_fd, IPC_MSG_GONE, NULL, 0, -1) == -1)
			fatal("send to session");
		return;
	}
	if (ipc_send(md->session_fd, IPC_MSG_FD, NULL, 0, fd) == -1)
		fatal("send to session");
	close(fd);
}

/* Serves the session until it asks for the commit or goes away. */
static __dead void
maildir_serve(struct maildir *md)
{
	static struct ipc_msg	 m;
	int			 rv;

	for (;;) {
		if ((rv = ipc_recv(md->session_fd, PROC_SESSION, &m)) == 0 ||
		    (rv == -1 && errno == ECONNRESET))
			proc_exit(0);	/* session gone: change nothing */
		if (rv != 1 || m.fd != -1)
			fatalx("invalid message from session");
		if (m.type == IPC_OPEN_MSG)
			maildir_answer_open(md, &m);
		else if (m.type == IPC_DELETE || m.type == IPC_SEEN)
			maildir_mark(md, &m);
		else if (m.type == IPC_COMMIT && m.len == 0)
			break;
		else
			fatalx("invalid message from session");
	}
	if (maildir_commit(md) == -1)
		rv = ipc_send_code(md->session_fd, IPC_COMMIT_ERR,
		    MAILDROP_TEMP, "some messages could not be deleted");
	else
		rv = ipc_send_code(md->session_fd, IPC_COMMIT_OK,
		    md->count - md->ndeleted, "");
	if (rv == -1)
		fatal("send to session");
	maildir_index_write(md);
	proc_exit(0);
}

/* After the session has the messages, and after the commit (deleted
 * messages left out, renamed ones under their new names): the index,
 * for the next login. */
static void
maildir_index_write(struct maildir *md)
{
	struct index_file	*v;
	size_t			 i, n;

	if (md->ixfd == -1 || !md->ixstale)
		return;
	if ((v = calloc(md->count + 1, sizeof(*v))) == NULL) {
		log_warnx("%s: cannot write the index; no index", md->path);
		return;
	}
	for (i = n = 0; i < md->count; i++) {
		if (md->msgs[i].deleted)
			continue;
		v[n].dir = md->msgs[i].dir;
		v[n].ino = md->msgs[i].ino;
		v[n].len = md->msgs[i].len;
		v[n].size = md->msgs[i].size;
		v[n++].name = md->msgs[i].name;
	}
	qsort(v, n, sizeof(*v), index_file_order);
	if (index_maildir_write(md->ixfd, getuid(), v, n) == -1)
		log_warn("%s: cannot write the index; no index", md->path);
	else
		md->ixstale = 0;
	free(v);
}

void
maildir_main(const char *path, int session_fd, int ixfd)
{
	static struct maildir	 md;
	char			 dir[PATH_MAX];
	int			 rv;

	md.path = path;
	md.session_fd = session_fd;
	md.fd = md.dirfd[DIR_NEW] = md.dirfd[DIR_CUR] = -1;
	md.ixfd = ixfd;
	/* opened before the sandbox: a missing Maildir is an empty one */
	maildir_open(&md, dir, sizeof(dir));
	sandbox_maildrop(dir, 1);
#ifdef POP3D_TEST_HOOKS
	sandbox_test_escape("maildrop");	/* prove the sandbox holds */
#endif
	if (ixfd != -1)
		(void)index_maildir_read(ixfd, getuid(), &md.ix, &md.nix);
	/* the files of the index, and the few delivered since, in one go */
	if (md.nix > 0 && (md.msgs = index_table(md.nix + 64,
	    sizeof(*md.msgs), &md.cap)) == NULL)
		maildir_refuse(&md, MAILDROP_TEMP, mbox_strerror(MBOX_NOMEM));
	if (md.fd != -1 && (rv = maildir_scan(&md)) != MBOX_OK)
		maildir_refuse(&md, rv == MBOX_TOOBIG ? MAILDROP_PERM :
		    MAILDROP_TEMP, mbox_strerror(rv));
	/* every file of the index served, and no other: it stays as it is */
	if (md.known != md.nix || md.count != md.nix)
		md.ixstale = 1;
	free(md.ix);
	md.ix = NULL;
	md.nix = 0;
	if (ixfd != -1)
		log_debug("index used mailbox=%s how=known:%zu/%zu", path,
		    md.known, md.count);
	log_debug("scanned mailbox=%s messages=%zu octets=%lld", path,
	    md.count, (long long)md.total);
	maildir_send_index(&md);
	maildir_index_write(&md);
	maildir_serve(&md);
}
