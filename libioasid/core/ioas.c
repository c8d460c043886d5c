/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Address spaces: mapping, unmapping (cutting anywhere), copying, IOVA
 * allocation and the allowed/reserved ranges.  The order inside every
 * operation is chosen so that a failure changes nothing:
 *   map:   reserve IOVA in the tree, program the backend, undo the
 *          reservation if the backend fails;
 *   unmap: take the range out of the backend (which invalidates IOTLBs),
 *          then out of the tree; if the tree cannot (-ENOMEM), put the
 *          range back into the backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/base.h"
#include "core/ioas.h"
#include "core/iova_tree.h"
#include "core/sharedmap.h"
#include "util/bitmap.h"
#include "util/log.h"
#include "util/macros.h"

#define MAP_FLAGS (IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)
#define PROT_FLAGS (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define MAX_ALLOC_ALIGN SZ_1G

static void backing_get(void *backing)
{
	if (backing)
		file_get(backing);
}

static void backing_put(void *backing)
{
	if (backing)
		file_put(backing);
}

static const struct iova_tree_ops tree_ops = {
	.get = backing_get,
	.put = backing_put,
};

static const struct backend_ops *be_ops(const struct ioas *ioas)
{
	return core_ops(ioas->core);
}

int ioas_create(struct session *s, uint32_t flags, struct ioas **out,
		struct ioasid_op *op)
{
	struct be_tenant *tenant;
	struct ioas *ioas;
	int r;

	if (flags & ~(uint32_t)(IOASID_IOAS_IDENTITY | IOASID_IOAS_RESTRICTED |
				IOASID_IOAS_PAGE_GRANULAR |
				IOASID_IOAS_NEST_PARENT))
		return op_fail(op, EOPNOTSUPP, "unknown IOAS flags 0x%x",
			       flags);
	/* conversions cut mappings anywhere: they must be atomic */
	if (flags & IOASID_IOAS_RESTRICTED)
		flags |= IOASID_IOAS_PAGE_GRANULAR;
	ioas = calloc(1, sizeof(*ioas));
	if (!ioas)
		return op_fail(op, ENOMEM, "out of memory");
	ioas->core = s->core;
	ioas->owner = s;
	ioas->flags = flags;
	ioas->snoop_mode = IOASID_SNOOP_AUTO;
	r = iova_tree_new(&tree_ops, &ioas->tree);
	if (r < 0) {
		free(ioas);
		return op_fail(op, -r, "out of memory");
	}
	r = core_session_tenant(s, &tenant);
	if (r < 0) {
		iova_tree_free(ioas->tree);
		free(ioas);
		return op_fail(op, -r, "the %s backend cannot open this "
			       "session's own kernel context: %s",
			       s->core->be_ops->name, strerror(-r));
	}
	r = s->core->be_ops->ioas_alloc(s->core->be, tenant, flags, &ioas->be);
	if (r < 0) {
		iova_tree_free(ioas->tree);
		free(ioas);
		return op_fail(op, -r, "the %s backend cannot create an "
			       "address space", s->core->be_ops->name);
	}
	if ((flags & IOASID_IOAS_RESTRICTED) && sharedmap_new(&ioas->shared)) {
		s->core->be_ops->ioas_free(ioas->be);
		iova_tree_free(ioas->tree);
		free(ioas);
		return op_fail(op, ENOMEM, "out of memory");
	}
	pthread_rwlock_init(&ioas->lock, NULL);
	ioas->id = core_alloc_id(s->core);
	*out = ioas;
	return 0;
}

void ioas_destroy(struct ioas *ioas)
{
	struct ioas_reservation *res, *next;

	be_ops(ioas)->ioas_free(ioas->be);
	iova_tree_free(ioas->tree);
	file_table_release(&ioas->files);
	for (res = ioas->reservations; res; res = next) {
		next = res->next;
		free(res->ranges);
		free(res);
	}
	free(ioas->allowed);
	free(ioas->blocked);
	sharedmap_free(ioas->shared);
	pthread_rwlock_destroy(&ioas->lock);
	free(ioas);
}

/* ---- argument checks ------------------------------------------------- */

static int check_map_args(const struct ioasid_op *op, uint64_t length,
			  struct ioasid_op *out)
{
	if (op->flags & ~(uint32_t)MAP_FLAGS)
		return op_fail(out, EOPNOTSUPP, "unknown map flags 0x%x",
			       op->flags & ~(uint32_t)MAP_FLAGS);
	if (!(op->flags & PROT_FLAGS))
		return op_fail(out, EINVAL,
			       "a mapping must be readable, writable or both");
	if (!length)
		return op_fail(out, EINVAL, "length is zero");
	if (!IS_ALIGNED(length, SZ_4K))
		return op_fail(out, EINVAL,
			       "length 0x%llx is not a multiple of 4 KiB",
			       (unsigned long long)length);
	if (op->flags & IOASID_MAP_FIXED_IOVA) {
		if (!IS_ALIGNED(op->iova, SZ_4K))
			return op_fail(out, EINVAL,
				       "IOVA 0x%llx is not 4 KiB aligned",
				       (unsigned long long)op->iova);
		if (op->iova + (length - 1) < op->iova)
			return op_fail(out, EOVERFLOW,
				       "IOVA 0x%llx + length 0x%llx wraps",
				       (unsigned long long)op->iova,
				       (unsigned long long)length);
	}
	return 0;
}

static int check_range_args(uint64_t iova, uint64_t length,
			    struct ioasid_op *op)
{
	if (!length)
		return op_fail(op, EINVAL, "length is zero");
	if (!IS_ALIGNED(iova, SZ_4K) || !IS_ALIGNED(length, SZ_4K))
		return op_fail(op, EINVAL,
			       "IOVA 0x%llx and length 0x%llx must be 4 KiB "
			       "aligned", (unsigned long long)iova,
			       (unsigned long long)length);
	if (iova + (length - 1) < iova)
		return op_fail(op, EOVERFLOW,
			       "IOVA 0x%llx + length 0x%llx wraps",
			       (unsigned long long)iova,
			       (unsigned long long)length);
	return 0;
}

static int check_quota(struct ioas *ioas, uint64_t pieces, uint64_t bytes,
		       struct ioasid_op *op)
{
	struct session *s = ioas->owner;

	if (s->nr_mappings + pieces > s->limits.max_mappings)
		return op_fail(op, ENOSPC, "mapping quota of %llu reached",
			       (unsigned long long)s->limits.max_mappings);
	if (s->bytes_mapped + bytes > s->limits.max_bytes_mapped)
		return op_fail(op, ENOSPC,
			       "quota of %llu bytes mapped reached",
			       (unsigned long long)s->limits.max_bytes_mapped);
	return 0;
}

/* Largest power of two dividing both, so huge pages can be used. */
static uint64_t alloc_alignment(uint64_t offset, uint64_t length)
{
	uint64_t bits = offset | length | MAX_ALLOC_ALIGN;

	return max_t(uint64_t, bits & -bits, SZ_4K);
}

/* ---- bookkeeping helpers --------------------------------------------- */

static void account(struct ioas *ioas, int64_t pieces, int64_t bytes)
{
	ioas->owner->nr_mappings += (uint64_t)pieces;
	ioas->owner->bytes_mapped += (uint64_t)bytes;
}

static uint64_t nr_mappings(struct ioas *ioas)
{
	struct iova_tree_stats st;

	iova_tree_stats(ioas->tree, &st);
	return st.nr_mappings;
}

static int tree_error(struct ioas *ioas, int r, const struct iova_area *a,
		      struct ioasid_op *op)
{
	unsigned long long iova = a->iova, last = a->iova + a->length - 1;

	switch (r) {
	case -EADDRINUSE:
		/* iommufd answers EINVAL for reserved IOVA; so do we. */
		return op_fail(op, EINVAL,
			       "IOVA 0x%llx-0x%llx is reserved or outside "
			       "the allowed ranges of IOAS %u", iova, last,
			       ioas->id);
	case -EEXIST:
		return op_fail(op, EEXIST,
			       "IOVA 0x%llx-0x%llx overlaps an existing "
			       "mapping in IOAS %u", iova, last, ioas->id);
	case -ENOSPC:
		return op_fail(op, ENOSPC,
			       "no free IOVA range of 0x%llx bytes in IOAS %u",
			       (unsigned long long)a->length, ioas->id);
	default:
		return op_fail(op, -r, "cannot map: %s", strerror(-r));
	}
}

void ioas_area_backing(const struct iova_area *a, struct be_backing *b)
{
	struct file_ref *f = a->backing;

	*b = (struct be_backing){
		.file = f,
		.fd = f ? f->fd : -1,
		.offset = f ? a->offset : 0,
		.hva = f ? NULL : (void *)(uintptr_t)a->offset,
	};
}

/* ---- what the hardware sees: everything, or only shared pages ------------ */

struct visible {
	struct ioas *ioas;
	const struct iova_area *a;
	uint64_t done;		/* bytes of @a mapped so far (for undo) */
	uint64_t first_undone;	/* undo runs below this IOVA */
};

static int map_run(void *arg, uint64_t iova, uint64_t length)
{
	struct visible *v = arg;
	struct iova_area piece = *v->a;
	struct be_backing b;
	int r;

	piece.offset += iova - v->a->iova;
	piece.iova = iova;
	ioas_area_backing(&piece, &b);
	r = be_ops(v->ioas)->map(v->ioas->be, iova, length, &b, piece.prot);
	if (r == 0)
		v->first_undone = iova + length;
	return r;
}

static int unmap_run(void *arg, uint64_t iova, uint64_t length)
{
	struct visible *v = arg;

	if (iova >= v->first_undone)
		return 1;
	length = min_t(uint64_t, length, v->first_undone - iova);
	be_ops(v->ioas)->unmap(v->ioas->be, iova, length, NULL, 0);
	return 0;
}

/*
 * Program the backend with the part of @a the hardware may see: all of it,
 * or in a restricted IOAS only its shared pages.  All or nothing.
 */
int ioas_map_visible(struct ioas *ioas, const struct iova_area *a)
{
	struct visible v = { ioas, a, 0, a->iova };
	struct be_backing b;
	int r;

	if (!ioas->shared) {
		ioas_area_backing(a, &b);
		return be_ops(ioas)->map(ioas->be, a->iova, a->length, &b,
					 a->prot);
	}
	r = sharedmap_for_each_run(ioas->shared, a->iova, a->length, true,
				   map_run, &v);
	if (r)
		sharedmap_for_each_run(ioas->shared, a->iova, a->length, true,
				       unmap_run, &v);
	return r;
}

static int backend_map_error(struct ioas *ioas, const struct iova_area *a,
			     int r, struct ioasid_op *op)
{
	const struct file_ref *f = a->backing;
	const char *name = f ? f->name : "user memory";

	if (r == -EPERM)
		return op_fail(op, EPERM, "%s at offset 0x%llx is private "
			       "guest memory: only shared ranges can be mapped",
			       name, (unsigned long long)a->offset);
	if (r == -EOPNOTSUPP && f && f->kind == IOASID_FILE_GUEST_MEMFD)
		return op_fail(op, EOPNOTSUPP, "%s cannot be mapped by the %s "
			       "backend: create it with GUEST_MEMFD_FLAG_MMAP",
			       name, be_ops(ioas)->name);
	return op_fail(op, -r, "the %s backend cannot map %s at IOVA 0x%llx: "
		       "%s", be_ops(ioas)->name, name,
		       (unsigned long long)a->iova, strerror(-r));
}

/*
 * Insert @a (its backing reference already taken) and program the
 * backend.  On failure the reference is dropped and nothing changed.
 */
static int map_area(struct ioas *ioas, struct iova_area *a, bool fixed,
		    uint64_t align, struct ioasid_op *op)
{
	int r;

	pthread_rwlock_wrlock(&ioas->lock);
	if (fixed)
		r = iova_tree_insert(ioas->tree, a);
	else
		r = iova_tree_alloc(ioas->tree, 0, UINT64_MAX, align, a,
				    &a->iova);
	pthread_rwlock_unlock(&ioas->lock);
	if (r < 0) {
		backing_put(a->backing);
		return tree_error(ioas, r, a, op);
	}

	r = ioas_map_visible(ioas, a);
	if (r < 0) {
		/* the reason names the file: say it before the file may go */
		r = backend_map_error(ioas, a, r, op);
		pthread_rwlock_wrlock(&ioas->lock);
		iova_tree_remove(ioas->tree, a->iova, a->length,
				 IOVA_TREE_MAPPINGS, NULL, NULL, NULL);
		pthread_rwlock_unlock(&ioas->lock);
		return r;
	}
	account(ioas, 1, (int64_t)a->length);
	op->out_iova = a->iova;
	return 0;
}

/* ---- map ------------------------------------------------------------- */

int ioas_map_file(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct file_ref *file;
	struct iova_area a;
	int r;

	r = check_map_args(op, op->length, op);
	if (r == 0)
		r = check_quota(ioas, 1, op->length, op);
	if (r < 0)
		return r;
	r = file_lookup_or_add(&ioas->files, op->fd, op->fd_ident, op->offset,
			       op->length, op->flags & PROT_FLAGS, &file, op);
	if (r < 0)
		return r;
	file_get(file);
	a = (struct iova_area){
		.kind = IOVA_AREA_MAPPING,
		.iova = op->iova,
		.length = op->length,
		.offset = op->offset,
		.backing = file,
		.prot = op->flags & PROT_FLAGS,
	};
	return map_area(ioas, &a, op->flags & IOASID_MAP_FIXED_IOVA,
			alloc_alignment(op->offset, op->length), op);
}

/*
 * The file's identity and access mode are those of the IOAS's own
 * reference, known since it was taken: no fstat() or fcntl() learns them
 * again (file.c: file_lookup_or_add()).  Its seals and size are checked
 * as at any map.  The access is the reference's, that is the descriptor's
 * the file was first mapped with: the session gave it then.
 */
int ioas_map_file_id(struct session *s, struct ioas *ioas,
		     struct ioasid_op *op)
{
	struct file_ref *f = file_find_id(&ioas->files, op->file_id);
	struct ioasid_fd_ident held;
	int r;

	if (!f)
		return op_fail(op, ENOENT, "IOAS %u holds no file %u (a file "
			       "is held while a mapping uses it)", ioas->id,
			       op->file_id);
	held = (struct ioasid_fd_ident){ .dev = f->key.dev, .ino = f->key.ino,
					 .flags = f->accmode };
	op->fd = f->fd;
	op->fd_ident = &held;
	r = ioas_map_file(s, ioas, op);
	op->fd = -1;
	op->fd_ident = NULL;
	return r;
}

/*
 * One line of /proc/self/maps: "start-end perms ...".  Returns false for a
 * line that does not parse (the range check then fails closed).
 */
static bool parse_maps_line(const char *l, uint64_t *start, uint64_t *end,
			    bool *r, bool *w)
{
	char *p;

	*start = strtoull(l, &p, 16);
	if (*p != '-')
		return false;
	*end = strtoull(p + 1, &p, 16);
	if (*p != ' ' || !p[1] || !p[2])
		return false;
	*r = p[1] == 'r';
	*w = p[2] == 'w';
	return *end > *start;
}

/*
 * /proc/self/maps read a line at a time through a stack buffer, without
 * allocating.  A line longer than the buffer (a long path) keeps its start,
 * which holds the fields wanted, and its tail is dropped.
 */
struct maps_reader {
	int fd;
	size_t have;		/* bytes in buf */
	size_t used;		/* bytes the line returned last takes */
	bool eof;
	bool skip;		/* dropping the tail of a long line */
	char buf[4096];
};

static void maps_fill(struct maps_reader *m)
{
	ssize_t n;

	do
		n = read(m->fd, m->buf + m->have, sizeof(m->buf) - 1 - m->have);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		m->eof = true;
	else
		m->have += (size_t)n;
}

/* The next line, NUL-terminated, or NULL at the end of the file. */
static char *maps_next_line(struct maps_reader *m)
{
	for (;;) {
		char *nl;

		m->have -= m->used;
		memmove(m->buf, m->buf + m->used, m->have);
		m->used = 0;
		nl = memchr(m->buf, '\n', m->have);
		if (nl) {
			*nl = '\0';
			m->used = (size_t)(nl + 1 - m->buf);
			if (!m->skip)
				return m->buf;
			m->skip = false;	/* the end of a long line */
		} else if (m->have == sizeof(m->buf) - 1) {
			m->buf[m->have] = '\0';
			m->used = m->have;
			if (!m->skip) {
				m->skip = true;
				return m->buf;
			}
		} else if (m->eof) {
			return NULL;
		} else {
			maps_fill(m);
		}
	}
}

enum user_range_verdict {
	USER_RANGE_GO_ON,	/* this line ends before the range's end */
	USER_RANGE_OK,
	USER_RANGE_HOLE,
	USER_RANGE_BAD_LINE,
	USER_RANGE_NO_READ,
	USER_RANGE_NO_WRITE,
};

/* What one line of maps says of [*cur, last]; a line covering *cur moves it. */
static enum user_range_verdict check_maps_line(const char *line,
					       uint64_t *cur, uint64_t last,
					       uint32_t prot)
{
	uint64_t s, e;
	bool rd, wr;

	if (!parse_maps_line(line, &s, &e, &rd, &wr))
		return USER_RANGE_BAD_LINE;
	if (e <= *cur)
		return USER_RANGE_GO_ON;	/* before the range */
	if (s > *cur)
		return USER_RANGE_HOLE;
	if ((prot & IOASID_MAP_READ) && !rd)
		return USER_RANGE_NO_READ;
	if ((prot & IOASID_MAP_WRITE) && !wr)
		return USER_RANGE_NO_WRITE;
	if (e - 1 >= last)
		return USER_RANGE_OK;
	*cur = e;
	return USER_RANGE_GO_ON;
}

static int user_range_fail(enum user_range_verdict v, uint64_t cur,
			   struct ioasid_op *op)
{
	unsigned long long a = cur;

	switch (v) {
	case USER_RANGE_OK:
	case USER_RANGE_GO_ON:
		return 0;
	case USER_RANGE_BAD_LINE:
		return op_fail(op, EFAULT, "cannot parse /proc/self/maps "
			       "while checking user address 0x%llx", a);
	case USER_RANGE_NO_READ:
		return op_fail(op, EFAULT, "user address 0x%llx is mapped "
			       "without read permission", a);
	case USER_RANGE_NO_WRITE:
		return op_fail(op, EFAULT, "user address 0x%llx is mapped "
			       "without write permission (IOASID_MAP_WRITE "
			       "asked)", a);
	case USER_RANGE_HOLE:
		break;
	}
	return op_fail(op, EFAULT, "user address 0x%llx is not mapped in this "
		       "process", a);
}

/*
 * Is every byte of [addr, addr + len) mapped in this process with the
 * access @prot asks for (IOASID_MAP_READ: readable, IOASID_MAP_WRITE:
 * writable)?  Pinning on a real kernel refuses the same with EFAULT.  Only
 * lines up to the end of the range are looked at (the file is sorted by
 * address).
 */
static int check_user_range(uint64_t addr, uint64_t len, uint32_t prot,
			    struct ioasid_op *op)
{
	struct maps_reader m = { .fd = -1 };
	enum user_range_verdict v;
	uint64_t cur = addr, last = addr + (len - 1);
	char *line;

	m.fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (m.fd < 0)
		return op_fail(op, errno == ENOMEM ? ENOMEM : EFAULT,
			       "cannot read /proc/self/maps to check user "
			       "range 0x%llx: %s", (unsigned long long)addr,
			       strerror(errno));
	do {
		line = maps_next_line(&m);
		v = line ? check_maps_line(line, &cur, last, prot)
			 : USER_RANGE_HOLE;
	} while (v == USER_RANGE_GO_ON);
	close(m.fd);
	return user_range_fail(v, cur, op);
}

int ioas_map_user(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct iova_area a;
	int r;

	r = check_map_args(op, op->length, op);
	if (r == 0)
		r = check_quota(ioas, 1, op->length, op);
	if (r < 0)
		return r;
	if (!op->offset || !IS_ALIGNED(op->offset, SZ_4K))
		return op_fail(op, EINVAL, "user address 0x%llx is NULL or "
			       "not page aligned",
			       (unsigned long long)op->offset);
	if (op->offset + (op->length - 1) < op->offset)
		return op_fail(op, EOVERFLOW, "user range wraps");
	r = check_user_range(op->offset, op->length, op->flags & PROT_FLAGS,
			     op);
	if (r < 0)
		return r;
	a = (struct iova_area){
		.kind = IOVA_AREA_MAPPING,
		.iova = op->iova,
		.length = op->length,
		.offset = op->offset,
		.prot = op->flags & PROT_FLAGS,
	};
	return map_area(ioas, &a, op->flags & IOASID_MAP_FIXED_IOVA,
			alloc_alignment(op->offset, op->length), op);
}

/* ---- unmap ----------------------------------------------------------- */

/* What an unmap will touch, gathered before anything changes. */
struct unmap_plan {
	struct ioas *ioas;
	uint64_t first, last;		/* first and last byte mapped */
	bool found;
	bool cut_in_two;		/* the range is inside one mapping */
	bool want_pieces;
	struct be_piece *v;		/* whole areas, for the backend */
	uint32_t nr, cap;
};

static int plan_piece(void *arg, const struct iova_area *piece,
		      const struct iova_area *whole)
{
	struct unmap_plan *p = arg;

	if (!p->found) {
		p->first = piece->iova;
		/* a piece short of its mapping at both ends is the whole
		 * range: a hole inside one mapping leaves two */
		p->cut_in_two = whole->iova < piece->iova &&
				whole->iova + (whole->length - 1) >
				piece->iova + (piece->length - 1);
	}
	p->found = true;
	p->last = piece->iova + piece->length - 1;
	if (!p->want_pieces)
		return 0;
	if (p->nr == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 16;
		void *v = realloc(p->v, cap * sizeof(*p->v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->nr] = (struct be_piece){
		.iova = whole->iova,
		.length = whole->length,
		.prot = whole->prot,
	};
	ioas_area_backing(whole, &p->v[p->nr].backing);
	p->nr++;
	return 0;
}

static int restore_piece(void *arg, const struct iova_area *a)
{
	return ioas_map_visible(arg, a);
}

/*
 * The tree could not drop the range after the backend did: map back what
 * the tree still has there.  Only -ENOMEM gets here.
 */
static void restore_backend(struct ioas *ioas, uint64_t iova, uint64_t len)
{
	if (iova_tree_for_each_piece(ioas->tree, iova, len, IOVA_TREE_MAPPINGS,
				     restore_piece, ioas) < 0)
		err(ioas->core->log, "IOAS %u: hardware lost mappings at "
		    "0x%llx after a failed unmap", ioas->id,
		    (unsigned long long)iova);
}

/*
 * The backend's unmap failed.  Normally nothing changed; but a composed
 * cut whose kept pieces could be put back neither cut nor whole (user
 * memory the process unmapped meanwhile) lost them in the kernel: drop
 * them here too, so that the core lists only what the hardware has, and
 * say which.
 */
static int unmap_failed(struct ioas *ioas, int r, struct ioasid_op *op)
{
	struct ioasid_iova_range lost[16];
	uint64_t first = 0, last = 0, bytes = 0, removed, before;
	size_t n, total = 0;

	if (!be_ops(ioas)->take_lost)
		goto plain;
	before = nr_mappings(ioas);
	while ((n = be_ops(ioas)->take_lost(ioas->be, lost,
					    ARRAY_SIZE(lost))) > 0) {
		for (size_t k = 0; k < n; k++) {
			uint64_t len = lost[k].last - lost[k].start + 1;

			if (!total++)
				first = lost[k].start;
			last = lost[k].last;
			removed = 0;
			pthread_rwlock_wrlock(&ioas->lock);
			/* whole kernel mappings: a cut of the tree's areas
			 * only where they differ (rare); logged if it fails */
			if (iova_tree_remove(ioas->tree, lost[k].start, len,
					     IOVA_TREE_MAPPINGS, NULL, NULL,
					     &removed) < 0)
				err(ioas->core->log, "IOAS %u: cannot drop lost "
				    "IOVA 0x%llx-0x%llx", ioas->id,
				    (unsigned long long)lost[k].start,
				    (unsigned long long)lost[k].last);
			pthread_rwlock_unlock(&ioas->lock);
			bytes += removed;
		}
	}
	if (!total)
		goto plain;
	account(ioas, (int64_t)nr_mappings(ioas) - (int64_t)before,
		-(int64_t)bytes);
	return op_fail(op, -r, "the %s backend cannot unmap: %s; undoing it "
		       "failed too, and the kernel lost %zu mapping(s) "
		       "(%llu bytes) within IOVA 0x%llx-0x%llx, which are "
		       "now unmapped here as well", be_ops(ioas)->name,
		       strerror(-r), total, (unsigned long long)bytes,
		       (unsigned long long)first, (unsigned long long)last);
plain:
	return op_fail(op, -r, "the %s backend cannot unmap: %s",
		       be_ops(ioas)->name, strerror(-r));
}

struct mark_ctx {
	uint64_t iova;
	uint64_t *bitmap;
};

static int mark_piece(void *arg, const struct iova_area *piece)
{
	const struct mark_ctx *m = arg;

	bitmap_set_range(m->bitmap, (piece->iova - m->iova) / SZ_4K,
			 piece->length / SZ_4K);
	return 0;
}

int ioas_mark_mapped(struct ioas *ioas, uint64_t iova, uint64_t length,
		     uint64_t *bitmap)
{
	struct mark_ctx m = { iova, bitmap };

	return iova_tree_for_each_piece(ioas->tree, iova, length,
					IOVA_TREE_MAPPINGS, mark_piece, &m);
}

/*
 * Unmap with IOASID_UNMAP_GET_DIRTY: the checks before anything is
 * touched.  The bitmap (op->out) has a bit per 4 KiB page from op->iova.
 */
static int check_unmap_dirty(struct ioas *ioas, struct ioasid_op *op)
{
	const struct backend_ops *ops = be_ops(ioas);
	uint64_t bytes = bitmap_bytes_4k(op->length);

	if (op->iova == 0 && op->length == UINT64_MAX)
		return op_fail(op, EINVAL, "IOASID_UNMAP_GET_DIRTY needs a "
			       "range, not all of IOAS %u", ioas->id);
	if (!ioas->dirty_on)
		return op_fail(op, EINVAL, "dirty tracking is not on for IOAS "
			       "%u (ioasid_dirty_start() first)", ioas->id);
	if (!op->out || bytes > op->out_cap)
		return op_fail(op, EMSGSIZE, "the bitmap needs %llu bytes",
			       (unsigned long long)bytes);
	if (!ops->unmap_dirty && ioas->nr_domains > ioas->nr_untracked)
		return op_fail(op, EOPNOTSUPP, "the %s backend cannot return "
			       "the dirty bits of an unmap", ops->name);
	return 0;
}

/* The backend's unmap, with the dirty bits when the caller wants them. */
static int backend_unmap(struct ioas *ioas, uint64_t iova, uint64_t length,
			 const struct be_piece *v, uint32_t nr,
			 struct ioasid_op *op)
{
	const struct backend_ops *ops = be_ops(ioas);

	if (!(op->flags & IOASID_UNMAP_GET_DIRTY))
		return ops->unmap(ioas->be, iova, length, v, nr);
	/* untracked domains (fallback): everything mapped is dirty */
	if (ioas->nr_untracked &&
	    ioas_mark_mapped(ioas, iova, length, op->out) < 0)
		return -ENOMEM;
	if (!ops->unmap_dirty)
		return ops->unmap(ioas->be, iova, length, v, nr);
	return ops->unmap_dirty(ioas->be, iova, length, v, nr, op->out,
				op->iova);
}

static int unmap_range(struct ioas *ioas, uint64_t iova, uint64_t length,
		       struct ioasid_op *op)
{
	struct unmap_plan p = {
		.ioas = ioas,
		.want_pieces = be_ops(ioas)->unmap_wants_pieces,
	};
	uint64_t removed = 0, before = nr_mappings(ioas), span;
	struct iova_tree_cursor cur;
	int r;

	if (be_ops(ioas)->unmap_prefetch)
		be_ops(ioas)->unmap_prefetch(ioas->be, iova);
	/* one descent: the walk finds the pieces, the removal starts there */
	r = iova_tree_walk_range(ioas->tree, iova, length, IOVA_TREE_MAPPINGS,
				 plan_piece, &p, &cur);
	if (r < 0) {
		free(p.v);
		return op_fail(op, -r, "cannot unmap: %s", strerror(-r));
	}
	if (!p.found) {
		if (op->flags & IOASID_UNMAP_MISSING_OK) {
			op->out_bytes = 0;
			return 0;
		}
		return op_fail(op, ENOENT,
			       "nothing is mapped at IOVA 0x%llx-0x%llx in "
			       "IOAS %u", (unsigned long long)iova,
			       (unsigned long long)(iova + length - 1),
			       ioas->id);
	}
	/* a hole inside one mapping leaves two: one mapping more (ends in
	 * two different mappings trim both and create none) */
	r = p.cut_in_two ? check_quota(ioas, 1, 0, op) : 0;
	if (r < 0) {
		free(p.v);
		return r;
	}
	span = p.last - p.first + 1;
	r = backend_unmap(ioas, p.first, span, p.v, p.nr, op);
	free(p.v);
	if (r < 0)
		return unmap_failed(ioas, r, op);
	pthread_rwlock_wrlock(&ioas->lock);
	r = iova_tree_remove_walked(ioas->tree, &cur, NULL, NULL, &removed);
	pthread_rwlock_unlock(&ioas->lock);
	if (r < 0) {
		restore_backend(ioas, p.first, span);
		return op_fail(op, -r, "cannot unmap: %s", strerror(-r));
	}
	account(ioas, (int64_t)nr_mappings(ioas) - (int64_t)before,
		-(int64_t)removed);
	op->out_bytes = removed;
	return 0;
}

static int unmap_all(struct ioas *ioas, struct ioasid_op *op)
{
	struct unmap_plan p = {
		.ioas = ioas,
		.want_pieces = be_ops(ioas)->unmap_wants_pieces,
	};
	struct iova_tree_iter it;
	struct iova_area a;
	uint64_t removed = 0, before = nr_mappings(ioas);
	int r = 0;

	iova_tree_iter_start(&it, ioas->tree, 0);
	while (r == 0 && iova_tree_iter_next(&it, &a) == 0)
		if (a.kind == IOVA_AREA_MAPPING)
			r = plan_piece(&p, &a, &a);
	if (r < 0) {
		free(p.v);
		return op_fail(op, ENOMEM, "out of memory");
	}
	op->out_bytes = 0;
	if (!p.found)
		return 0;
	/* A span of all 2^64 bytes has no length: unmap it in two steps. */
	if (p.first == 0 && p.last == UINT64_MAX)
		r = be_ops(ioas)->unmap(ioas->be, 0, SZ_4K, p.v, p.nr) ?:
		    be_ops(ioas)->unmap(ioas->be, SZ_4K, UINT64_MAX - SZ_4K + 1,
					p.v, p.nr);
	else
		r = be_ops(ioas)->unmap(ioas->be, p.first,
					p.last - p.first + 1, p.v, p.nr);
	free(p.v);
	if (r < 0)
		return unmap_failed(ioas, r, op);
	/* Removing whole areas needs no memory: this cannot fail. */
	pthread_rwlock_wrlock(&ioas->lock);
	iova_tree_remove_all(ioas->tree, IOVA_TREE_MAPPINGS, NULL, NULL,
			     &removed);
	pthread_rwlock_unlock(&ioas->lock);
	account(ioas, -(int64_t)before, -(int64_t)removed);
	op->out_bytes = removed;
	return 0;
}

int ioas_unmap(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	int r;

	if (op->flags & ~(uint32_t)(IOASID_UNMAP_MISSING_OK |
				    IOASID_UNMAP_GET_DIRTY))
		return op_fail(op, EOPNOTSUPP, "unknown unmap flags 0x%x",
			       op->flags);
	if (op->flags & IOASID_UNMAP_GET_DIRTY) {
		r = check_range_args(op->iova, op->length, op);
		if (r == 0)
			r = check_unmap_dirty(ioas, op);
		if (r < 0)
			return r;
		memset(op->out, 0, bitmap_bytes_4k(op->length));
		op->out_len = (uint32_t)bitmap_bytes_4k(op->length);
	}
	/* iova 0, length U64_MAX: everything (as IOMMU_IOAS_UNMAP) */
	if (op->iova == 0 && op->length == UINT64_MAX)
		return unmap_all(ioas, op);
	r = check_range_args(op->iova, op->length, op);
	if (r < 0)
		return r;
	return unmap_range(ioas, op->iova, op->length, op);
}

/* ---- batches: many ranges of one file, all or nothing -------------------- */

/* Lowest offset and highest end of a batch, checking each entry's shape. */
static int batch_span(const struct ioasid_map_entry *e, uint32_t nr,
		      uint64_t *lo, uint64_t *hi, uint64_t *sum,
		      struct ioasid_op *op)
{
	*lo = UINT64_MAX;
	*hi = 0;
	*sum = 0;
	for (uint32_t i = 0; i < nr; i++) {
		if (!e[i].length)
			return op_fail(op, EINVAL, "entry %u: length is zero", i);
		if (e[i].offset + e[i].length < e[i].offset)
			return op_fail(op, EOVERFLOW, "entry %u: offset + length "
				       "wraps", i);
		/* entries may map one file range many times: count each */
		*sum = *sum + e[i].length < *sum ? UINT64_MAX :
						   *sum + e[i].length;
		*lo = min_t(uint64_t, *lo, e[i].offset);
		*hi = max_t(uint64_t, *hi, e[i].offset + e[i].length);
	}
	return 0;
}

/* Map entry @i of a batch (the file was checked for the whole batch). */
static int batch_entry(struct ioas *ioas, struct file_ref *file,
		       const struct ioasid_map_entry *e, uint32_t i,
		       uint64_t *iova, struct ioasid_op *op)
{
	char why[IOASID_ERRMSG_MAX];
	struct iova_area a;
	int r;

	if (!IS_ALIGNED(e->offset | e->length, file->page_size))
		return op_fail(op, EINVAL, "entry %u: offset and length must "
			       "be multiples of 0x%llx", i,
			       (unsigned long long)file->page_size);
	if ((op->flags & IOASID_MAP_FIXED_IOVA) &&
	    (!IS_ALIGNED(e->iova, SZ_4K) ||
	     e->iova + (e->length - 1) < e->iova))
		return op_fail(op, EINVAL, "entry %u: IOVA 0x%llx is unaligned "
			       "or wraps", i, (unsigned long long)e->iova);
	file_get(file);
	a = (struct iova_area){
		.kind = IOVA_AREA_MAPPING,
		.iova = e->iova,
		.length = e->length,
		.offset = e->offset,
		.backing = file,
		.prot = op->flags & PROT_FLAGS,
	};
	r = map_area(ioas, &a, op->flags & IOASID_MAP_FIXED_IOVA,
		     alloc_alignment(e->offset, e->length), op);
	if (r < 0) {
		memcpy(why, op->errmsg, sizeof(why));
		return op_fail(op, -r, "entry %u: %s", i, why);
	}
	*iova = a.iova;
	return 0;
}

int ioas_map_batch(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	const struct ioasid_map_entry *e = op->in;
	uint32_t nr = op->in_len / sizeof(*e), i;
	uint64_t *iovas, lo = 0, hi = 0, bytes = 0, sum = 0;
	struct ioasid_op undo;
	struct file_ref *file;
	int r;

	if (!nr || op->in_len % sizeof(*e))
		return op_fail(op, EINVAL, "a batch needs whole entries of "
			       "%zu bytes", sizeof(*e));
	if (op->out_cap && op->out_cap < nr * sizeof(*iovas))
		return op_fail(op, EMSGSIZE, "room for %u IOVAs, %u entries",
			       op->out_cap / (uint32_t)sizeof(*iovas), nr);
	r = check_map_args(op, SZ_4K, op);
	if (r == 0)
		r = batch_span(e, nr, &lo, &hi, &sum, op);
	if (r == 0)
		r = check_quota(ioas, nr, sum, op);
	if (r < 0)
		return r;
	/* the IOVAs are needed to undo, whether or not the caller wants them */
	iovas = op->out_cap ? op->out : calloc(nr, sizeof(*iovas));
	if (!iovas)
		return op_fail(op, ENOMEM, "out of memory");
	/* one look at the file (kind, seals, access, size) for the batch */
	r = file_lookup_or_add(&ioas->files, op->fd, op->fd_ident, lo, hi - lo,
			       op->flags & PROT_FLAGS, &file, op);
	if (r < 0)
		goto out;
	file_get(file);		/* holds it while entries come and go */
	for (i = 0; i < nr; i++) {
		r = batch_entry(ioas, file, &e[i], i, &iovas[i], op);
		if (r < 0)
			break;
		bytes += e[i].length;
	}
	for (uint32_t k = 0; r < 0 && k < i; k++) {	/* all or nothing */
		ioasid_op_init(&undo, IOASID_CMD_UNMAP);
		unmap_range(ioas, iovas[k], e[k].length, &undo);
	}
	file_put(file);
	if (r == 0) {
		op->out_id = nr;
		op->out_bytes = bytes;
		op->out_len = op->out_cap ? nr * (uint32_t)sizeof(*iovas) : 0;
	}
out:
	if (!op->out_cap)
		free(iovas);
	return r;
}

/* ---- copy ------------------------------------------------------------ */

struct copy_state {
	struct ioas *dst, *src;
	uint64_t src_iova, dst_iova, next;	/* next: first byte not seen */
	uint32_t prot;
	uint32_t nr_done;
	uint64_t nr_pieces;		/* mappings the copy will create */
	struct ioasid_op *op;
};

/* Source pieces must cover the range without holes, with enough access. */
static int copy_check(void *arg, const struct iova_area *piece)
{
	struct copy_state *c = arg;

	if (piece->iova != c->next)
		return op_fail(c->op, ENOENT,
			       "IOVA 0x%llx of IOAS %u is not mapped",
			       (unsigned long long)c->next, c->src->id);
	if ((c->prot & piece->prot) != c->prot)
		return op_fail(c->op, EACCES,
			       "the source mapping at 0x%llx does not allow "
			       "the access asked for",
			       (unsigned long long)piece->iova);
	/* sealed since it was mapped: the copy is a new writable mapping */
	if (piece->backing) {
		int r = file_check_write_seals(piece->backing, c->prot, c->op);

		if (r < 0)
			return r;
	}
	c->next = piece->iova + piece->length;
	c->nr_pieces++;
	return 0;
}

/* @a: @piece as the destination maps it, holding a reference to its file. */
static int copy_area(struct copy_state *c, const struct iova_area *piece,
		     struct iova_area *a)
{
	struct file_ref *file = NULL;
	int r;

	if (piece->backing) {
		r = file_import(&c->dst->files, piece->backing, &file, c->op);
		if (r < 0)
			return r;
		file_get(file);
	}
	*a = *piece;
	a->backing = file;
	a->prot = c->prot;
	a->iova = c->dst_iova + (piece->iova - c->src_iova);
	return 0;
}

static int copy_piece(void *arg, const struct iova_area *piece)
{
	struct copy_state *c = arg;
	struct iova_area a;
	int r;

	r = copy_area(c, piece, &a);
	if (r < 0)
		return r;
	r = map_area(c->dst, &a, true, 0, c->op);
	if (r == 0)
		c->nr_done++;
	return r;
}

/*
 * The backend copies (->copy, iommufd's IOMMU_IOAS_COPY): the pieces go
 * into the destination's tree first, then one backend call maps them
 * all; if it fails they leave the tree again and nothing changed.
 */
struct kcopy_state {
	struct copy_state *c;
	struct be_piece *v;		/* the destination's pieces */
	uint32_t nr;
};

static int kcopy_insert(void *arg, const struct iova_area *piece)
{
	struct kcopy_state *k = arg;
	struct copy_state *c = k->c;
	struct iova_area a;
	int r;

	r = copy_area(c, piece, &a);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&c->dst->lock);
	r = iova_tree_insert(c->dst->tree, &a);
	pthread_rwlock_unlock(&c->dst->lock);
	if (r < 0) {
		backing_put(a.backing);
		return tree_error(c->dst, r, &a, c->op);
	}
	k->v[k->nr] = (struct be_piece){
		.iova = a.iova, .length = a.length, .prot = a.prot,
	};
	ioas_area_backing(&a, &k->v[k->nr].backing);
	k->nr++;
	return 0;
}

static int kernel_copy(struct copy_state *c, uint64_t length)
{
	struct kcopy_state k = { .c = c };
	struct ioasid_op *op = c->op;
	int r;

	k.v = calloc(c->nr_pieces, sizeof(*k.v));
	if (!k.v)
		return op_fail(op, ENOMEM, "out of memory");
	r = iova_tree_for_each_piece(c->src->tree, c->src_iova, length,
				     IOVA_TREE_MAPPINGS, kcopy_insert, &k);
	if (r == 0) {
		r = be_ops(c->dst)->copy(c->dst->be, c->dst_iova, c->src->be,
					 c->src_iova, length, c->prot, k.v,
					 k.nr);
		if (r < 0)
			r = op_fail(op, -r, "the %s backend cannot copy IOVA "
				    "0x%llx+0x%llx of IOAS %u: %s",
				    be_ops(c->dst)->name,
				    (unsigned long long)c->src_iova,
				    (unsigned long long)length, c->src->id,
				    strerror(-r));
	}
	if (r < 0 && k.nr) {
		pthread_rwlock_wrlock(&c->dst->lock);
		iova_tree_remove(c->dst->tree, c->dst_iova, length,
				 IOVA_TREE_MAPPINGS, NULL, NULL, NULL);
		pthread_rwlock_unlock(&c->dst->lock);
	}
	if (r == 0)
		account(c->dst, k.nr, (int64_t)length);
	free(k.v);
	return r;
}

/* Restricted IOASes map only shared pages: those copy piece by piece. */
static bool kernel_copies(const struct ioas *dst, const struct ioas *src)
{
	return be_ops(dst)->copy && !dst->shared && !src->shared;
}

int ioas_copy(struct ioas *dst, struct ioas *src, struct ioasid_op *op)
{
	struct copy_state c = {
		.dst = dst, .src = src, .src_iova = op->offset,
		.next = op->offset, .prot = op->flags & PROT_FLAGS, .op = op,
	};
	struct iova_area range = { .kind = IOVA_AREA_BLOCKED };
	int r;

	r = check_map_args(op, op->length, op);
	if (r == 0)
		r = check_range_args(op->offset, op->length, op);
	if (r < 0)
		return r;
	r = iova_tree_for_each_piece(src->tree, op->offset, op->length,
				     IOVA_TREE_MAPPINGS, copy_check, &c);
	if (r == 0 && c.next != op->offset + op->length)
		r = op_fail(op, ENOENT, "IOVA 0x%llx of IOAS %u is not mapped",
			    (unsigned long long)c.next, src->id);
	if (r == 0)
		r = check_quota(dst, c.nr_pieces, op->length, op);
	if (r < 0)
		return r;

	/* Choose the destination range: allocate it as a whole. */
	c.dst_iova = op->iova;
	if (op->flags & IOASID_MAP_FIXED_IOVA) {
		/*
		 * Free as a whole, before anything goes in: the undo below
		 * removes the whole range, which must then hold only the
		 * copy's pieces (an undo over a mapping that was there would
		 * drop it from the tree and leave it in the backend).
		 */
		r = iova_tree_first_overlap(dst->tree, c.dst_iova, op->length,
					    IOVA_TREE_MAPPINGS |
					    IOVA_TREE_BLOCKED, &range);
		if (r == 0)
			return tree_error(dst, range.kind == IOVA_AREA_BLOCKED ?
					  -EADDRINUSE : -EEXIST,
					  &(struct iova_area){
						.iova = c.dst_iova,
						.length = op->length }, op);
		if (r != -ENOENT)
			return tree_error(dst, r, &(struct iova_area){
						.iova = c.dst_iova,
						.length = op->length }, op);
	} else {
		r = iova_tree_find_free(dst->tree, 0, UINT64_MAX, op->length,
					alloc_alignment(op->offset, op->length),
					&c.dst_iova);
		if (r < 0) {
			range.length = op->length;
			return tree_error(dst, r, &range, op);
		}
	}
	if (kernel_copies(dst, src)) {
		r = kernel_copy(&c, op->length);
		if (r == 0)
			op->out_iova = c.dst_iova;
		return r;
	}
	r = iova_tree_for_each_piece(src->tree, op->offset, op->length,
				     IOVA_TREE_MAPPINGS, copy_piece, &c);
	if (r < 0) {
		/* undo the pieces already mapped */
		struct ioasid_op undo;

		ioasid_op_init(&undo, IOASID_CMD_UNMAP);
		undo.flags = IOASID_UNMAP_MISSING_OK;
		if (c.nr_done)
			unmap_range(dst, c.dst_iova, op->length, &undo);
		return r;
	}
	/* map_area accounted each piece; one copy is one request */
	op->out_iova = c.dst_iova;
	return 0;
}

/* ---- allowed and reserved ranges -------------------------------------- */

static int range_cmp(const void *a, const void *b)
{
	const struct ioasid_iova_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sort and merge overlapping or touching ranges in place. */
static void range_merge(struct core_ranges *rv)
{
	uint32_t out = 0;

	if (!rv->nr)
		return;
	qsort(rv->v, rv->nr, sizeof(*rv->v), range_cmp);
	for (uint32_t i = 1; i < rv->nr; i++) {
		struct ioasid_iova_range *cur = &rv->v[out];

		if (cur->last == UINT64_MAX || rv->v[i].start <= cur->last + 1) {
			cur->last = max_t(uint64_t, cur->last, rv->v[i].last);
			continue;
		}
		rv->v[++out] = rv->v[i];
	}
	rv->nr = out + 1;
}

/* Complement of the (sorted, merged) allowed ranges. */
static int push_disallowed(struct core_ranges *rv,
			   const struct ioasid_iova_range *allowed, uint32_t nr)
{
	uint64_t next = 0;
	int r = 0;

	for (uint32_t i = 0; i < nr && r == 0; i++) {
		if (allowed[i].start > next)
			r = core_ranges_push(rv, next, allowed[i].start - 1);
		next = allowed[i].last + 1;
		if (allowed[i].last == UINT64_MAX)
			return r;
	}
	return r ? r : core_ranges_push(rv, next, UINT64_MAX);
}

/*
 * The blocked set from allowed ranges and reservations; @skip_owner's
 * reservation is left out and @extra (owner @extra_owner) added, so the
 * caller can try a change before making it.
 */
static int compute_blocked(struct ioas *ioas,
			   const struct ioasid_iova_range *allowed,
			   uint32_t nr_allowed, const void *owner,
			   const struct ioasid_iova_range *extra,
			   uint32_t nr_extra, struct core_ranges *rv)
{
	struct ioas_reservation *res;
	int r = 0;

	if (nr_allowed)
		r = push_disallowed(rv, allowed, nr_allowed);
	for (res = ioas->reservations; res && r == 0; res = res->next)
		for (uint32_t i = 0; i < res->nr && r == 0; i++)
			if (res->owner != owner)
				r = core_ranges_push(rv, res->ranges[i].start,
					       res->ranges[i].last);
	for (uint32_t i = 0; i < nr_extra && r == 0; i++)
		r = core_ranges_push(rv, extra[i].start, extra[i].last);
	range_merge(rv);
	return r;
}

/* Page-align blocked ranges outward: the tree works in 4 KiB pages. */
static void range_align_out(struct ioasid_iova_range *r)
{
	r->start = ALIGN_DOWN(r->start, SZ_4K);
	r->last = r->last | (SZ_4K - 1);
}

/* A range's length; a range of all 2^64 bytes stops one page short. */
static uint64_t blocked_length(const struct ioasid_iova_range *r)
{
	uint64_t len = r->last - r->start + 1;

	return len ? len : UINT64_MAX & ~(SZ_4K - 1);
}

/* Page-align @rv outwards; -EADDRINUSE when a mapping lies in it. */
static int check_unmapped(struct ioas *ioas, struct core_ranges *rv,
			  struct ioasid_op *op)
{
	struct iova_area m;

	for (uint32_t i = 0; i < rv->nr; i++) {
		range_align_out(&rv->v[i]);
		if (iova_tree_first_overlap(ioas->tree, rv->v[i].start,
					    blocked_length(&rv->v[i]),
					    IOVA_TREE_MAPPINGS, &m) < 0)
			continue;
		return op_fail(op, EADDRINUSE,
			       "IOVA 0x%llx-0x%llx is mapped in IOAS %u "
			       "and would become unusable",
			       (unsigned long long)m.iova,
			       (unsigned long long)(m.iova + m.length - 1),
			       ioas->id);
	}
	return 0;
}

/* The tree's BLOCKED areas become @v (ioas->lock held for writing). */
static int insert_blocked(struct ioas *ioas,
			  const struct ioasid_iova_range *v, uint32_t nr)
{
	struct iova_area a = { .kind = IOVA_AREA_BLOCKED };
	int r = 0;

	iova_tree_remove_all(ioas->tree, IOVA_TREE_BLOCKED, NULL, NULL, NULL);
	for (uint32_t i = 0; i < nr && r == 0; i++) {
		a.iova = v[i].start;
		a.length = blocked_length(&v[i]);
		r = iova_tree_insert(ioas->tree, &a);
	}
	return r;
}

static int apply_blocked(struct ioas *ioas, struct core_ranges *rv,
			 struct ioasid_op *op)
{
	int r = check_unmapped(ioas, rv, op);

	if (r < 0)
		return r;
	range_merge(rv);
	pthread_rwlock_wrlock(&ioas->lock);
	r = insert_blocked(ioas, rv->v, rv->nr);
	/* on failure the old set goes back; the nodes just freed make room */
	if (r < 0)
		insert_blocked(ioas, ioas->blocked, ioas->nr_blocked);
	pthread_rwlock_unlock(&ioas->lock);
	if (r < 0)
		return op_fail(op, -r, "out of memory");
	free(ioas->blocked);
	ioas->blocked = rv->v;
	ioas->nr_blocked = rv->nr;
	rv->v = NULL;
	return 0;
}

static int check_ranges(const struct ioasid_iova_range *v, uint32_t nr,
			struct ioasid_op *op)
{
	for (uint32_t i = 0; i < nr; i++) {
		if (v[i].start > v[i].last)
			return op_fail(op, EINVAL, "range %u starts after it "
				       "ends", i);
		if (!IS_ALIGNED(v[i].start, SZ_4K) ||
		    !IS_ALIGNED(v[i].last + 1, SZ_4K))
			return op_fail(op, EINVAL, "range %u is not 4 KiB "
				       "aligned", i);
		for (uint32_t j = 0; j < i; j++)
			if (v[i].start <= v[j].last && v[j].start <= v[i].last)
				return op_fail(op, EINVAL,
					       "ranges %u and %u overlap", j, i);
	}
	return 0;
}

int ioas_allow_iovas(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	uint32_t nr = op->in_len / sizeof(struct ioasid_iova_range);
	struct core_ranges rv = { 0 };
	struct ioasid_iova_range *allowed = NULL;
	int r;

	if (op->in_len % sizeof(struct ioasid_iova_range))
		return op_fail(op, EINVAL, "ranges have a partial entry");
	r = check_ranges(op->in, nr, op);
	if (r < 0)
		return r;
	if (nr) {
		allowed = malloc(op->in_len);
		if (!allowed)
			return op_fail(op, ENOMEM, "out of memory");
		memcpy(allowed, op->in, op->in_len);
		qsort(allowed, nr, sizeof(*allowed), range_cmp);
	}
	r = compute_blocked(ioas, allowed, nr, NULL, NULL, 0, &rv);
	if (r < 0)
		r = op_fail(op, -r, "out of memory");
	if (r == 0)
		r = apply_blocked(ioas, &rv, op);
	free(rv.v);
	if (r < 0) {
		free(allowed);
		return r;
	}
	free(ioas->allowed);
	ioas->allowed = allowed;
	ioas->nr_allowed = nr;
	return 0;
}

static struct ioas_reservation **find_reservation(struct ioas *ioas,
						  const void *owner)
{
	struct ioas_reservation **p = &ioas->reservations;

	while (*p && (*p)->owner != owner)
		p = &(*p)->next;
	return p;
}

int ioas_set_reservation(struct ioas *ioas, const void *owner,
			 const struct ioasid_iova_range *ranges, uint32_t nr,
			 struct ioasid_op *op)
{
	struct ioas_reservation **slot = find_reservation(ioas, owner), *res;
	struct core_ranges rv = { 0 };
	int r;

	r = compute_blocked(ioas, ioas->allowed, ioas->nr_allowed, owner,
			    ranges, nr, &rv);
	if (r < 0)
		r = op_fail(op, -r, "out of memory");
	res = nr ? calloc(1, sizeof(*res)) : NULL;
	if (r == 0 && nr && (!res || !(res->ranges = malloc(nr * sizeof(*ranges)))))
		r = op_fail(op, ENOMEM, "out of memory");
	if (r == 0)
		r = apply_blocked(ioas, &rv, op);
	free(rv.v);
	if (r < 0) {
		if (res)
			free(res->ranges);
		free(res);
		return r;
	}
	if (*slot) {			/* drop the owner's old reservation */
		struct ioas_reservation *old = *slot;

		*slot = old->next;
		free(old->ranges);
		free(old);
	}
	if (res) {
		memcpy(res->ranges, ranges, nr * sizeof(*ranges));
		res->nr = nr;
		res->owner = owner;
		res->next = ioas->reservations;
		ioas->reservations = res;
	}
	return 0;
}

int ioas_iova_ranges(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct ioasid_iova_range *out = op->out;
	uint32_t cap = op->out_cap / sizeof(*out), n = 0;
	uint64_t next = 0;
	bool end = false;

	for (uint32_t i = 0; i <= ioas->nr_blocked && !end; i++) {
		uint64_t start = i < ioas->nr_blocked ? ioas->blocked[i].start :
							  0;
		uint64_t last;

		if (i < ioas->nr_blocked) {
			if (start > next) {
				if (n < cap)
					out[n] = (struct ioasid_iova_range){
						next, start - 1 };
				n++;
			}
			last = ioas->blocked[i].last;
			end = last == UINT64_MAX;
			next = last + 1;
			continue;
		}
		if (n < cap)
			out[n] = (struct ioasid_iova_range){ next, UINT64_MAX };
		n++;
	}
	op->out_len = n * (uint32_t)sizeof(*out);
	op->out_bytes = SZ_4K;	/* required IOVA alignment */
	if (n > cap)
		return op_fail(op, EMSGSIZE, "%u ranges do not fit in %u", n,
			       cap);
	return 0;
}

/* ---- queries --------------------------------------------------------- */

static void fill_mapping(const struct iova_area *a, struct ioasid_mapping *m)
{
	const struct file_ref *f = a->backing;

	*m = (struct ioasid_mapping){
		.size = sizeof(*m),
		.flags = a->prot | (f ? 0 : IOASID_MAPPING_USER),
		.iova = a->iova,
		.length = a->length,
		.offset = a->offset,
		.file_id = f ? f->id : 0,
	};
}

/*
 * A result structure: a caller built against an older, smaller version of
 * it gets the part it knows (its size field tells it there is more).
 */
static int out_struct(struct ioasid_op *op, const void *src, uint32_t size)
{
	op->out_len = min_t(uint32_t, size, op->out_cap);
	memcpy(op->out, src, op->out_len);
	return 0;
}

int ioas_lookup(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct ioasid_mapping m;
	struct iova_area a;
	int r;

	pthread_rwlock_rdlock(&ioas->lock);
	r = iova_tree_lookup(ioas->tree, op->iova, &a);
	if (r == 0 && a.kind != IOVA_AREA_MAPPING)
		r = -ENOENT;
	if (r == 0)
		fill_mapping(&a, &m);
	pthread_rwlock_unlock(&ioas->lock);
	if (r < 0)
		return op_fail(op, ENOENT, "IOVA 0x%llx is not mapped in IOAS %u",
			       (unsigned long long)op->iova, ioas->id);
	return out_struct(op, &m, sizeof(m));
}

int ioas_next(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct iova_tree_iter it;
	struct ioasid_mapping m;
	struct iova_area a;
	int r;

	pthread_rwlock_rdlock(&ioas->lock);
	iova_tree_iter_start(&it, ioas->tree, op->iova);
	while ((r = iova_tree_iter_next(&it, &a)) == 0 &&
	       a.kind != IOVA_AREA_MAPPING)
		;
	if (r == 0)
		fill_mapping(&a, &m);
	pthread_rwlock_unlock(&ioas->lock);
	if (r < 0)
		return op_fail(op, ENOENT, "no mapping at or after IOVA 0x%llx "
			       "in IOAS %u", (unsigned long long)op->iova,
			       ioas->id);
	return out_struct(op, &m, sizeof(m));
}

int ioas_file_info(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct ioasid_file_info info;
	struct file_ref *f = file_find_id(&ioas->files, op->file_id);

	if (!f)
		return op_fail(op, ENOENT, "IOAS %u has no file %u", ioas->id,
			       op->file_id);
	file_fill_info(f, &info);
	return out_struct(op, &info, sizeof(info));
}

void ioas_count(struct ioas *ioas, uint64_t *nr_mappings, uint64_t *bytes)
{
	struct iova_tree_stats st;

	iova_tree_stats(ioas->tree, &st);
	*nr_mappings = st.nr_mappings;
	*bytes = st.bytes_mapped;
}

static int count_shared(void *arg, uint64_t iova, uint64_t length)
{
	*(uint64_t *)arg += length;
	return 0;
}

static int count_private(void *arg, const struct iova_area *a)
{
	struct { struct ioas *ioas; uint64_t bytes; } *c = arg;
	uint64_t shared = 0;

	sharedmap_for_each_run(c->ioas->shared, a->iova, a->length, true,
			       count_shared, &shared);
	c->bytes += a->length - shared;
	return 0;
}

/* Bytes mapped in a restricted IOAS that are private: O(mappings + runs). */
static uint64_t mapped_private_bytes(struct ioas *ioas)
{
	struct { struct ioas *ioas; uint64_t bytes; } c = { ioas, 0 };
	struct iova_tree_iter it;
	struct iova_area a;

	iova_tree_iter_start(&it, ioas->tree, 0);
	while (iova_tree_iter_next(&it, &a) == 0)
		if (a.kind == IOVA_AREA_MAPPING)
			count_private(&c, &a);
	return c.bytes;
}

void ioas_fill_info(struct ioas *ioas, struct ioasid_ioas_info *info)
{
	struct iova_tree_stats st;

	iova_tree_stats(ioas->tree, &st);
	*info = (struct ioasid_ioas_info){
		.size = sizeof(*info),
		.flags = ioas->flags,
		.ioas_id = ioas->id,
		.snoop_mode = ioas->snoop_mode,
		.nr_mappings = st.nr_mappings,
		.bytes_mapped = st.bytes_mapped,
		.nr_devices = ioas->nr_devices,
		.nr_domains = ioas->nr_domains,
		.owner_pid = ioas->owner->pid,
		.owner_uid = ioas->owner->uid,
		.owner_session = ioas->owner->id,
		.dirty_flags = (ioas->dirty_on ? IOASID_IOAS_DIRTY_ON : 0) |
			       (ioas->dirty_fallback ?
				IOASID_IOAS_DIRTY_FALLBACK : 0) |
			       (ioas->nr_untracked ?
				IOASID_IOAS_DIRTY_UNTRACKED : 0),
		.nr_conversions = __atomic_load_n(&ioas->nr_conversions,
						  __ATOMIC_RELAXED),
		.nr_faults = __atomic_load_n(&ioas->nr_faults,
					     __ATOMIC_RELAXED),
	};
	if (ioas->shared) {
		info->state_bytes = sharedmap_mem_bytes(ioas->shared);
		info->bytes_shared = sharedmap_shared_pages(ioas->shared) *
				     SZ_4K;
		info->bytes_private = mapped_private_bytes(ioas);
	}
	/*
	 * The kernel backends pin what is mapped into a domain (private
	 * pages of a restricted IOAS are in none); the simulator pins nothing.
	 */
	if (ioas->nr_domains && strcmp(core_ops(ioas->core)->name, "sim"))
		info->bytes_pinned = info->bytes_mapped - info->bytes_private;
}

int ioas_info(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	struct ioasid_ioas_info info;

	ioas_fill_info(ioas, &info);
	return op_out_struct(op, &info, sizeof(info));
}

int ioas_set_snoop(struct session *s, struct ioas *ioas, struct ioasid_op *op)
{
	if (op->mode > IOASID_SNOOP_ALLOW)
		return op_fail(op, EINVAL, "unknown snoop mode %u", op->mode);
	if (ioas->nr_domains)
		return op_fail(op, EBUSY, "IOAS %u already has domains; their "
			       "coherency is fixed", ioas->id);
	ioas->snoop_mode = op->mode;
	return 0;
}

/* ---- replay into new domains ------------------------------------------- */

struct replay_arg {
	int (*fn)(void *arg, const struct be_piece *piece);
	void *arg;
	struct ioas *ioas;
};

struct replay_run {
	struct replay_arg *ra;
	const struct iova_area *a;
};

static int replay_piece(struct replay_arg *ra, const struct iova_area *a)
{
	struct be_piece p = { .iova = a->iova, .length = a->length,
			      .prot = a->prot };

	ioas_area_backing(a, &p.backing);
	return ra->fn(ra->arg, &p);
}

static int replay_shared_run(void *arg, uint64_t iova, uint64_t length)
{
	struct replay_run *rr = arg;
	struct iova_area piece = *rr->a;

	piece.offset += iova - rr->a->iova;
	piece.iova = iova;
	piece.length = length;
	return replay_piece(rr->ra, &piece);
}

static int replay_one(void *arg, const struct iova_area *a)
{
	struct replay_arg *ra = arg;
	struct replay_run rr = { ra, a };

	if (!ra->ioas->shared)
		return replay_piece(ra, a);
	return sharedmap_for_each_run(ra->ioas->shared, a->iova, a->length,
				      true, replay_shared_run, &rr);
}

static int replay_each(const struct be_replay *replay,
		       int (*fn)(void *arg, const struct be_piece *piece),
		       void *arg)
{
	struct ioas *ioas = replay->ioas;
	struct replay_arg ra = { fn, arg, ioas };
	int r;

	r = iova_tree_for_each_piece(ioas->tree, 0, UINT64_MAX & ~(SZ_4K - 1),
				     IOVA_TREE_MAPPINGS, replay_one, &ra);
	if (r == 0)
		r = iova_tree_for_each_piece(ioas->tree,
					     UINT64_MAX & ~(SZ_4K - 1), SZ_4K,
					     IOVA_TREE_MAPPINGS, replay_one,
					     &ra);
	return r;
}

void ioas_replay(struct ioas *ioas, struct be_replay *replay)
{
	replay->each = replay_each;
	replay->ioas = ioas;
}
