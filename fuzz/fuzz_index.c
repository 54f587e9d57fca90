/*
 * fuzz_index.c: the index file parsers (index_read, index_maildir_read)
 * and the check of a mailbox against an index (index_mbox_load).  The
 * input:
 *
 *	byte 0		flags: 1 seals the index with a good checksum, so
 *			that the fields behind it are reached; 2 also points
 *			its header at the mailbox below (uid, dev, ino,
 *			times), so that the unchanged and grown paths run
 *	bytes 1-2	n, the length of the index (little-endian)
 *	n bytes		the index file
 *	the rest	a mailbox
 *
 * Whatever it holds, an index that is read must give entries the session
 * accepts (msgtab_valid), in file order inside the indexed end, and
 * must write back to the same bytes, and so must a Maildir index read
 * from them; a mailbox checked against it must
 * give an index the session accepts, or none.  index.c is included for
 * its checksum, to seal the input.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "../session.c"
#include "../index.c"
#include "fuzz.h"

/* A good checksum for the n bytes at b, as index.c computes it. */
static void
seal(unsigned char *b, size_t n)
{
	if (n >= CHECK_SIZE)
		put64(b + n - CHECK_SIZE, hash_word(hash_words(HASH_SEED, b,
		    (n - CHECK_SIZE) & ~(size_t)7), n - CHECK_SIZE));
}

static int
memfile(const void *b, size_t n)
{
	int	 fd;

	FUZZ_CHECK((fd = memfd_create("fuzz_index", MFD_CLOEXEC)) != -1);
	FUZZ_CHECK(n == 0 || write(fd, b, n) == (ssize_t)n);
	return fd;
}

static void
check_entries(const struct mbox_index *idx)
{
	size_t	 i;

	FUZZ_CHECK(idx->count <= MAX_MESSAGES);
	for (i = 0; i < idx->count; i++) {
		FUZZ_CHECK(msgtab_valid(&idx->msgs[i]));
		FUZZ_CHECK(idx->msgs[i].off + idx->msgs[i].len <= idx->end);
		if (i > 0)
			FUZZ_CHECK(idx->msgs[i].from >= idx->msgs[i - 1].off +
			    idx->msgs[i - 1].len);
	}
}

/* The same bytes as a Maildir index: sorted, sane, written back alike. */
static void
check_maildir(int ixfd, const unsigned char *ix, size_t n)
{
	struct index_file	*files;
	unsigned char		*back;
	size_t			 count, i;
	int			 fd2;

	if (index_maildir_read(ixfd, getuid(), &files, &count) == -1) {
		FUZZ_CHECK(files == NULL && count == 0);
		return;
	}
	for (i = 0; i < count; i++) {
		FUZZ_CHECK(files[i].dir == 0 || files[i].dir == 1);
		FUZZ_CHECK(files[i].name[0] != '\0' && files[i].name[0] != '.');
		FUZZ_CHECK(strchr(files[i].name, '/') == NULL);
		FUZZ_CHECK(files[i].size >= files[i].len &&
		    files[i].size <= 2 * files[i].len + 2);
		if (i > 0)
			FUZZ_CHECK(index_file_cmp(&files[i - 1], &files[i]) < 0);
	}
	fd2 = memfile(NULL, 0);
	FUZZ_CHECK(index_maildir_write(fd2, getuid(), files, count) == 0);
	FUZZ_CHECK((back = malloc(n + 1)) != NULL);
	FUZZ_CHECK(pread(fd2, back, n + 1, 0) == (ssize_t)n);
	FUZZ_CHECK(memcmp(back, ix, n) == 0);
	free(back);
	free(files);
	close(fd2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index_meta	 meta, meta2;
	struct mbox_index	 idx, idx2;
	struct stat		 st;
	unsigned char		*ix, *back;
	size_t			 n;
	int			 ixfd, mfd, fd2, rv, flags;

	if (size < 3)
		return 0;
	flags = data[0];
	n = data[1] | (size_t)data[2] << 8;
	if (n > size - 3)
		n = size - 3;
	FUZZ_CHECK((ix = malloc(n + 1)) != NULL);
	memcpy(ix, data + 3, n);
	mfd = memfile(data + 3 + n, size - 3 - n);
	FUZZ_CHECK(fstat(mfd, &st) == 0);
	if ((flags & 2) && n >= HDR_SIZE) {
		put32(ix + H_UID, getuid());
		put64(ix + H_DEV, st.st_dev);
		put64(ix + H_INO, st.st_ino);
		put64(ix + H_MTIME, st.st_mtim.tv_sec);
		put64(ix + H_MTIME_NS, st.st_mtim.tv_nsec);
		put64(ix + H_CTIME, st.st_ctim.tv_sec);
		put64(ix + H_CTIME_NS, st.st_ctim.tv_nsec);
	}
	if (flags & 1)
		seal(ix, n);
	ixfd = memfile(ix, n);

	if (index_read(ixfd, getuid(), &meta, &idx) == 0) {
		check_entries(&idx);
		FUZZ_CHECK(meta.nsamples <= INDEX_SAMPLES);
		/* written back: the very same bytes */
		fd2 = memfile(NULL, 0);
		FUZZ_CHECK(index_write(fd2, getuid(), &meta, &idx) == 0);
		FUZZ_CHECK((back = malloc(n + 1)) != NULL);
		FUZZ_CHECK(pread(fd2, back, n + 1, 0) == (ssize_t)n);
		FUZZ_CHECK(memcmp(back, ix, n) == 0);
		FUZZ_CHECK(index_read(fd2, getuid(), &meta2, &idx2) == 0);
		FUZZ_CHECK(idx2.count == idx.count);
		free(back);
		mbox_index_free(&idx2);
		close(fd2);
	} else
		FUZZ_CHECK(idx.count == 0 && idx.msgs == NULL);
	mbox_index_free(&idx);

	check_maildir(ixfd, ix, n);

	rv = index_mbox_load(ixfd, mfd, getuid(), &idx);
	FUZZ_CHECK(rv >= -1 && rv <= 1);
	if (rv >= 0)
		check_entries(&idx);
	else
		FUZZ_CHECK(idx.count == 0 && idx.msgs == NULL);
	mbox_index_free(&idx);
	close(ixfd);
	close(mfd);
	free(ix);
	return 0;
}
