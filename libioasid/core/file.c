/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backing files: classification, checks and de-duplication by inode. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/file.h"
#include "util/macros.h"

#define TMPFS_MAGIC		0x01021994
#define HUGETLBFS_MAGIC		0x958458f6
#define ANON_INODE_FS_MAGIC	0x09041934
/* newer kernels (7.x) give guest_memfd its own pseudo fs ("GMEM") */
#define GUEST_MEMFD_MAGIC	0x474d454d

static void fd_link_name(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* Sets kind and page size, or says why the file cannot back DMA. */
static int classify(int fd, const struct stat *st, const char *name,
		    uint32_t *kind, uint64_t *page_size, struct ioasid_op *op)
{
	struct statfs sfs;

	if (!S_ISREG(st->st_mode))
		return op_fail(op, EOPNOTSUPP,
			       "fd %d is not a regular file (%s): only memfd, "
			       "tmpfs, hugetlbfs and guest_memfd files can be "
			       "mapped", fd, name);
	if (fstatfs(fd, &sfs) < 0)
		return op_fail(op, errno, "fstatfs of fd %d: %s", fd,
			       strerror(errno));
	*page_size = SZ_4K;
	switch ((uint32_t)sfs.f_type) {
	case TMPFS_MAGIC:
		*kind = strncmp(name, "/memfd:", 7) ? IOASID_FILE_TMPFS :
						     IOASID_FILE_MEMFD;
		return 0;
	case HUGETLBFS_MAGIC:
		*kind = strncmp(name, "/memfd:", 7) ? IOASID_FILE_HUGETLBFS :
						     IOASID_FILE_MEMFD_HUGETLB;
		*page_size = (uint64_t)sfs.f_bsize;
		return 0;
	case ANON_INODE_FS_MAGIC:
	case GUEST_MEMFD_MAGIC:
		if (strstr(name, "kvm-gmem")) {
			*kind = IOASID_FILE_GUEST_MEMFD;
			return 0;
		}
		break;
	}
	return op_fail(op, EOPNOTSUPP,
		       "%s cannot back DMA: only memfd, tmpfs, hugetlbfs and "
		       "guest_memfd files are pinned in memory (a disk file's "
		       "pages can be written back or truncated)", name);
}

/*
 * No file is asked to be sealed against shrinking: a tmpfs or hugetlbfs
 * file cannot carry that seal, so a memfd is not asked either (one rule,
 * ioasid_map_file(3)).  A shrink under a live mapping is safe on every
 * backend: the kernel's keep the pages they pinned, the simulator's DMA
 * beyond the new end faults (IOASID_FAULT_BUS_ERROR).
 */

static int check_access(int accmode, uint32_t prot, const char *name,
			struct ioasid_op *op)
{
	if ((prot & IOASID_MAP_WRITE) && accmode == O_RDONLY)
		return op_fail(op, EACCES,
			       "%s is open read-only and cannot be mapped "
			       "writable", name);
	if ((prot & IOASID_MAP_READ) && accmode == O_WRONLY)
		return op_fail(op, EACCES,
			       "%s is open write-only and cannot be mapped "
			       "readable", name);
	return 0;
}

/*
 * The file's seals.  They only grow, so a value with F_SEAL_SEAL (no more
 * can come; what a file that takes no seals gets too) or with a write seal
 * (what the write check asks about) is the answer for good; any other is
 * read again.
 */
static int file_seals(struct file_ref *f)
{
	int seals;

	if (f->seals & (F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		return f->seals;
	seals = fcntl(f->fd, F_GET_SEALS);
	/* EINVAL: a file that cannot take seals, now or later */
	f->seals = seals < 0 ? F_SEAL_SEAL : seals;
	return f->seals;
}

int file_check_write_seals(struct file_ref *f, uint32_t prot,
			   struct ioasid_op *op)
{
	int seals;

	if (!(prot & IOASID_MAP_WRITE))
		return 0;
	seals = file_seals(f);
	if (!(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return 0;
	return op_fail(op, EACCES,
		       "%s is sealed against writing (%s) and cannot be "
		       "mapped writable: devices would write what write() "
		       "may not", f->name,
		       seals & F_SEAL_WRITE ? "F_SEAL_WRITE" :
					      "F_SEAL_FUTURE_WRITE");
}

static int check_range(const struct file_ref *f, uint64_t size,
		       uint64_t offset, uint64_t length, struct ioasid_op *op)
{
	if (!IS_ALIGNED(offset, f->page_size) ||
	    !IS_ALIGNED(length, f->page_size))
		return op_fail(op, EINVAL,
			       "offset 0x%llx and length 0x%llx must be "
			       "multiples of the file's page size 0x%llx",
			       (unsigned long long)offset,
			       (unsigned long long)length,
			       (unsigned long long)f->page_size);
	if (offset + length < offset)
		return op_fail(op, EOVERFLOW, "offset + length overflows");
	if (offset + length > size)
		return op_fail(op, EINVAL,
			       "range 0x%llx+0x%llx is beyond the end of %s "
			       "(size 0x%llx)", (unsigned long long)offset,
			       (unsigned long long)length, f->name,
			       (unsigned long long)size);
	return 0;
}

/* Into both tables of @t with the next id: 0, or -ENOMEM and in neither. */
static int file_insert(struct file_table *t, struct file_ref *f,
		       struct ioasid_op *op)
{
	f->id = t->next_id + 1;
	if (hash_add(hh, t->by_key, key, sizeof(f->key), f) < 0)
		return op_fail(op, ENOMEM, "out of memory");
	if (hash_add(hh_id, t->by_id, id, sizeof(f->id), f) < 0) {
		HASH_DELETE(hh, t->by_key, f);
		return op_fail(op, ENOMEM, "out of memory");
	}
	t->next_id++;
	return 0;
}

static int file_new(struct file_table *t, int fd, const struct stat *st,
		    struct file_ref **out, struct ioasid_op *op)
{
	struct file_ref *f;
	int flags, r;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return op_fail(op, EBADF, "fd %d is not open", fd);
	if (flags & O_PATH)
		return op_fail(op, EBADF, "fd %d is an O_PATH descriptor", fd);
	f = calloc(1, sizeof(*f));
	if (!f)
		return op_fail(op, ENOMEM, "out of memory");
	fd_link_name(fd, f->name, sizeof(f->name));
	r = classify(fd, st, f->name, &f->kind, &f->page_size, op);
	if (r < 0)
		goto fail;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		r = op_fail(op, errno, "cannot keep a reference to %s: %s",
			    f->name, strerror(errno));
		goto fail;
	}
	f->accmode = flags & O_ACCMODE;
	f->key.dev = st->st_dev;
	f->key.ino = st->st_ino;
	f->table = t;
	r = file_insert(t, f, op);
	if (r < 0) {
		close(f->fd);
		goto fail;
	}
	*out = f;
	return 0;
fail:
	free(f);
	return r;
}

/*
 * The size to check [@offset, @offset + @length) against: @st's (from the
 * caller's fstat()), or for a file sealed against shrinking the size seen
 * after the seal when that covers the range (it cannot have shrunk since),
 * else fstat() now.  Records that size for the next call.
 */
static int file_size_for(struct file_ref *f, int fd, const struct stat *st,
			 uint64_t offset, uint64_t length, uint64_t *size,
			 struct ioasid_op *op)
{
	bool shrink_sealed = f->seals & F_SEAL_SHRINK;
	struct stat now;

	if (!st) {
		if (!shrink_sealed)
			shrink_sealed = file_seals(f) & F_SEAL_SHRINK;
		if (shrink_sealed && offset + length >= offset &&
		    offset + length <= f->size_floor) {
			*size = f->size_floor;
			return 0;
		}
		if (fstat(fd, &now) < 0)
			return op_fail(op, EBADF, "fd %d is not an open file",
				       fd);
		st = &now;
	}
	*size = (uint64_t)st->st_size;
	/* the seal was seen before this size: it stays a lower bound */
	if (shrink_sealed)
		f->size_floor = *size;
	return 0;
}

/*
 * @fd's file in @t, and its lasting flags (F_GETFL & (O_ACCMODE | O_PATH)).
 * From @known when the caller has it, else one fstat() (left in @st, with
 * *@have_st) and, for a file already held, one fcntl(F_GETFL).
 */
static int file_of_fd(struct file_table *t, int fd,
		      const struct ioasid_fd_ident *known, struct stat *st,
		      bool *have_st, struct file_ref **file, int *flags,
		      struct ioasid_op *op)
{
	struct file_key key;
	struct file_ref *f;
	int r;

	*have_st = !known;
	if (fd < 0 || (!known && fstat(fd, st) < 0))
		return op_fail(op, EBADF, "fd %d is not an open file", fd);
	key = known ? (struct file_key){ .dev = known->dev,
					 .ino = known->ino } :
		      (struct file_key){ .dev = st->st_dev,
					 .ino = st->st_ino };
	HASH_FIND(hh, t->by_key, &key, sizeof(key), f);
	if (f) {
		/* Same inode, but this fd may have a narrower access mode. */
		*flags = known ? known->flags : fcntl(fd, F_GETFL);
		if (*flags < 0)
			return op_fail(op, EBADF, "fd %d is not open", fd);
		if (*flags & O_PATH)
			return op_fail(op, EBADF, "fd %d is an O_PATH "
				       "descriptor", fd);
		*file = f;
		return 0;
	}
	if (known && fstat(fd, st) < 0)
		return op_fail(op, EBADF, "fd %d is not an open file", fd);
	*have_st = true;
	r = file_new(t, fd, st, file, op);
	if (r == 0)
		*flags = (*file)->accmode;
	return r;
}

/*
 * Without @known, every call pays one fstat() (identity and size) and,
 * for a file already held, one fcntl(F_GETFL) (this descriptor's access
 * mode): 600-650 + 250-330 ns on a 2-vCPU KVM guest with the mitigations
 * on (2026-12-03).  They cannot be cached by fd number: the number is
 * the caller's, and close() + open() (in any thread) reuse it for another
 * file between two calls.  A cache would need a per-call proof that the
 * number still names the open file description the core holds; the only
 * one, kcmp(KCMP_FILE) against the core's duplicate, measured 720-790 ns
 * there, more than the two calls it would replace, and needs CONFIG_KCMP.
 * Nor can fstat() alone do: the same inode may now be open read-only
 * through this descriptor while the held description is read-write, and
 * the read-only descriptor must still be refused a writable mapping
 * (EACCES).  A caller that holds the descriptor itself (ioasidd's ring
 * files) passes what it saw once as @known, and a file held and sealed
 * against shrinking needs neither call (file_size_for()).
 * The write seals are read only until they can no longer change
 * (file_seals()).
 */
int file_lookup_or_add(struct file_table *t, int fd,
		       const struct ioasid_fd_ident *known, uint64_t offset,
		       uint64_t length, uint32_t prot, struct file_ref **file,
		       struct ioasid_op *op)
{
	struct file_ref *f = NULL;
	uint64_t size = 0;
	struct stat st;
	bool have_st;
	int flags = 0, r;

	r = file_of_fd(t, fd, known, &st, &have_st, &f, &flags, op);
	if (r < 0)
		return r;
	r = check_access(flags & O_ACCMODE, prot, f->name, op);
	if (r == 0)
		r = file_check_write_seals(f, prot, op);
	if (r == 0)
		r = file_size_for(f, fd, have_st ? &st : NULL, offset, length,
				  &size, op);
	if (r == 0)
		r = check_range(f, size, offset, length, op);
	if (r < 0) {
		file_drop_unused(f);
		return r;
	}
	*file = f;
	return 0;
}

int file_size(const struct file_ref *file, uint64_t *size)
{
	struct stat st;

	if (fstat(file->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

void file_get(struct file_ref *file)
{
	file->uses++;
}

static void file_free(struct file_ref *f)
{
	struct file_table *t = f->table;

	HASH_DELETE(hh, t->by_key, f);
	HASH_DELETE(hh_id, t->by_id, f);
	if (f->be_release)
		f->be_release(f);
	close(f->fd);
	free(f);
}

void file_put(struct file_ref *file)
{
	if (--file->uses == 0)
		file_free(file);
}

void file_drop_unused(struct file_ref *file)
{
	if (file->uses == 0)
		file_free(file);
}

int file_import(struct file_table *t, struct file_ref *src,
		struct file_ref **file, struct ioasid_op *op)
{
	struct file_ref *f;

	HASH_FIND(hh, t->by_key, &src->key, sizeof(src->key), f);
	if (f) {
		*file = f;
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return op_fail(op, ENOMEM, "out of memory");
	f->fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		free(f);
		return op_fail(op, errno, "cannot keep a reference to %s: %s",
			       src->name, strerror(errno));
	}
	f->key = src->key;
	f->table = t;
	f->kind = src->kind;
	f->accmode = src->accmode;
	f->seals = src->seals;		/* the inode's, as is the floor */
	f->size_floor = src->size_floor;
	f->page_size = src->page_size;
	memcpy(f->name, src->name, sizeof(f->name));
	if (file_insert(t, f, op) < 0) {
		close(f->fd);
		free(f);
		return -ENOMEM;
	}
	*file = f;
	return 0;
}

static uint32_t highest_id(const struct file_table *t)
{
	const struct file_ref *f, *tmp;
	uint32_t max = 0;

	HASH_ITER(hh_id, t->by_id, f, tmp)
		if (f->id > max)
			max = f->id;
	return max;
}

void file_ids_rollback(struct file_table *t, uint32_t mark)
{
	if (t->next_id != mark && highest_id(t) <= mark)
		t->next_id = mark;
}

uint32_t file_ids_gap(const struct file_table *t)
{
	return t->next_id > highest_id(t) ? t->next_id : 0;
}

int file_ids_set(struct file_table *t, uint32_t next)
{
	if (next < highest_id(t))
		return -EINVAL;
	t->next_id = next;
	return 0;
}

struct file_ref *file_find_id(struct file_table *t, uint32_t id)
{
	struct file_ref *f;

	HASH_FIND(hh_id, t->by_id, &id, sizeof(id), f);
	return f;
}

void file_table_release(struct file_table *t)
{
	struct file_ref *f, *tmp;

	HASH_ITER(hh, t->by_key, f, tmp)
		file_free(f);
}

void file_fill_info(const struct file_ref *f, struct ioasid_file_info *i)
{
	uint64_t size = 0;

	file_size(f, &size);
	*i = (struct ioasid_file_info){
		.size = sizeof(*i),
		.kind = f->kind,
		.dev = f->key.dev,
		.ino = f->key.ino,
		.file_size = size,
		.page_size = f->page_size,
		.file_id = f->id,
		.nr_mappings = (uint32_t)min_t(uint64_t, f->uses, UINT32_MAX),
	};
	snprintf(i->name, sizeof(i->name), "%s", f->name);
}
