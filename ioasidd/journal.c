/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Crash survival: the journal of every acknowledged change, in a memfd
 * kept in the service manager's file descriptor store.
 *
 * Under a service manager (NOTIFY_SOCKET set, built with libsystemd),
 * every change a session makes is appended to the journal before its
 * reply leaves (journal_op(), from run_op(): the socket and the request
 * ring alike), and every file descriptor such a change passed (a mapped
 * memfd, a VFIO cdev, a KVM VM) goes to the fd store once, as "f<N>".
 * The journal itself is "journal.0" or "journal.1", the listening socket
 * "listen".  After a crash the service manager starts ioasidd again and
 * passes them back; journal_restore() replays the changes of every named
 * session that had not ended into a new core session, which then
 * lingers as if its client had disconnected at the crash.
 *
 * The format (version 5; versions 1 to 4 are read too): a header (its
 * size a multiple of 8), then records.  A session's J_OPEN has its uid, gid
 * and, since version 2, up to J_MAX_GROUPS supplementary groups, so the
 * policy judges a rebuilt session as it judged its client (by a
 * [group] section too).  A record is a header
 * with its total length and a checksum (FNV-1a 64 of everything after
 * the checksum), then its body; a record that reaches past the end of
 * the file is a write the crash cut short (never acknowledged) and is
 * ignored.  A record that is whole but does not check is damage: the
 * records after it are read again from the next record that checks, and
 * every session that has a record after the damage is not rebuilt (it
 * may lack a change); the log says which.
 *
 * Replay is deterministic on the simulated backend: the core's object
 * ids are set back to what they were before each change (core_set_next_id),
 * so a reclaimed session has the ids its client knows.  A replayed change
 * that does not give the recorded result ends that session's rebuild:
 * the session is torn down and named in the log; the others go on.
 *
 * Compaction (journal_compact(), rewrite()): a new memfd with only the
 * sessions still alive, re-keyed to their current ids, stored under the
 * other name before the old one is removed, so a crash at any moment
 * leaves one whole journal in the store.  Since version 3 a live
 * session is written as its state, not its history: its J_OPEN, its
 * J_NAME with the token it has, a J_BASE (the token a reclaim spent,
 * the resume counts), then the ops core_session_export() gives for it as
 * J_STATE records (replayed by core_replay(), which makes each object
 * with the id it had), since version 4 the dirty pages not read yet of
 * each IOAS that tracks them (J_DIRTY, after its DIRTY_START), its
 * counters (J_COUNTERS) and each IOAS's file id counter (J_FILES); its
 * later changes follow as J_OP records.  So the journal's size after a
 * compaction is that of the live state, however many changes came
 * before.  Device DMA and dirty reads are not changes, but each page a
 * DMA write makes dirty is a J_DIRTY record (journal_dirtied()): a crash
 * brings every dirty page back, and those read since the last
 * compaction too.  A fault queue's allocation is a J_OP with its
 * eventfd, and after any op but a read each queue the op changed is a
 * J_FAULTQ record of its whole state (since version 5; an answer's is
 * that change).  A session whose state cannot be written so (a queue
 * too big for an op) keeps its records as they were.  It
 * runs after every restore and when the journal has grown past four
 * times its size after the last compaction.  Files no kept record names
 * leave the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/codec.h"
#include "proto/image.h"
#include "util/macros.h"

#define J_MAGIC		"IOASIDJ"	/* 8 bytes with its NUL */
/* 5: fault queues; 4: dirty pages; 3: a live session's state; 2: groups */
#define J_VERSION	5u
#define R_MAGIC		0x4345524au	/* "JREC" */
#define J_MIN_COMPACT	(1u << 20)
#define J_MAX_FILES	4096u		/* FileDescriptorStoreMax= allows more */
#define J_MAX_GROUPS	1024u		/* supplementary groups of a session */

struct j_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t generation;
	uint32_t next_id;		/* the core's next id when it was made */
	uint32_t reserved[9];
};
_Static_assert(sizeof(struct j_header) == 64, "journal header");

enum j_type {
	J_OPEN = 1,	/* a session began: uid, gid; count, groups (v2) */
	J_NAME,		/* it was named: name, linger, token */
	J_TOKEN,	/* reclaimed: its new token (the same again: delivered) */
	J_END,		/* it ended */
	J_OP,		/* a change it made */
	/* version 3: a compacted session, its state instead of its history */
	J_BASE,		/* after J_OPEN and J_NAME: token, resume counts */
	J_STATE,	/* an op of its state (out_id: the id it makes) */
	J_COUNTERS,	/* an object's counters, after the J_STATE records */
	J_FILES,	/* an IOAS's next file id: struct j_files */
	/* version 4 */
	J_DIRTY,	/* a domain's dirty pages: struct j_dirty, the runs */
	/* version 5 */
	J_FAULTQ,	/* a fault queue's state: struct j_faultq, the state */
};

/* J_FAULTQ: what a queue holds now (core_fault_queues_changed()) */
struct j_faultq {
	uint32_t fault_id;
	uint32_t flags;			/* J_FAULTQ_* */
};
#define J_FAULTQ_ANSWER	0x1	/* written for a FAULT_RESPOND: a change */

struct j_dirty {
	uint32_t ioas_id, domain_id, nr_runs, reserved;
	/* then nr_runs struct ioasid_iova_range */
};

struct j_files {
	uint32_t ioas_id, next_file_id;
};

/* J_BASE: what the records before the compaction said of the session. */
struct j_base {
	uint32_t prev_ok, reserved;	/* struct rebuilt's prev_ok */
	unsigned char prev_token[IOASID_SESSION_TOKEN_LEN];
	struct ioasid_session_resume resume;
};

struct j_rec {
	uint32_t magic;
	uint32_t len;			/* the whole record, 8-byte multiple */
	uint64_t sum;			/* FNV-1a 64 of what follows */
	uint16_t type;
	uint16_t nfiles;
	uint32_t key;			/* the session's id in that run */
	uint64_t seq;			/* records since the journal began */
};
_Static_assert(sizeof(struct j_rec) == 32, "journal record");

struct j_session {
	uint32_t uid, gid, linger_s;
	char name[IOASID_NAME_MAX];
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
};

struct j_op {
	uint32_t cmd, ioas_id, ioas_id2, dev_id, vm_id, file_id, flags, mode;
	uint64_t iova, length, offset;
	char name[IOASID_NAME_MAX];
	uint32_t next_id_before, next_id_after;
	uint32_t out_id, in_len;
	uint64_t out_iova, out_bytes;
	uint32_t file[2];		/* f<N> of fd and fd2; 0: none */
	/* then in_len bytes of input */
};
/* the input follows 8-aligned: the core reads 64-bit fields in place */
_Static_assert(sizeof(struct j_op) % 8 == 0, "journal op record");

/* A file in the store: what it is, to find it again. */
struct j_file {
	uint32_t id;			/* FDNAME f<id> */
	dev_t dev;
	ino_t ino;
	int mode;			/* O_ACCMODE */
	/*
	 * while restoring, else -1; always, for a file its inode does not
	 * name (inode_is_the_file()): to tell it apart (is_file())
	 */
	int fd;
	bool used;			/* named by a kept record (compaction) */
	bool by_inode;			/* inode_is_the_file() */
};

struct journal {
	struct server *srv;
	int fd;				/* the memfd */
	uint64_t generation;
	uint64_t end;			/* where the next record goes */
	uint64_t compacted_size;
	uint64_t seq;
	struct j_file *files;
	uint32_t nr_files, cap_files, next_file;
	bool broken;
	uint32_t states;		/* sessions compacted to their state */
	bool compacting;		/* journal_compact() (the kill points) */
	uint64_t test_records;		/* test_kill_point() */
	/* pages DMA made dirty, not appended yet (dirty_flush()) */
	bool dirty_pending;
	uint32_t dirty_key;
	struct j_dirty dirty_h;
	struct ioasid_iova_range dirty_run;
};

static uint64_t fnv(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * Tests only: $IOASIDD_TEST_KILL_AFTER_RECORD=N makes the daemon SIGKILL
 * itself right after its Nth change record of this start, before that
 * change's reply leaves: the one moment a random kill almost never hits
 * (tests/test_crash.c).
 */
static void test_kill_point(struct journal *j)
{
	const char *env = getenv("IOASIDD_TEST_KILL_AFTER_RECORD");

	if (env && *env && ++j->test_records == strtoull(env, NULL, 10))
		raise(SIGKILL);
}

/* ---- writing ------------------------------------------------------------- */

static void journal_off(struct journal *j, const char *why)
{
	if (j->broken)
		return;
	j->broken = true;
	log_err(j->srv, "journal: %s: crash survival is off from now on "
		"(the journal leaves the fd store; a restart rebuilds "
		"nothing)", why);
	sd_fdstore_remove(j->generation & 1 ? "journal.1" : "journal.0");
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Append one record (@body of @len bytes) at j->end of @fd. */
static int put(struct journal *j, int fd, uint64_t *end, enum j_type type,
	       uint32_t key, uint16_t nfiles, const void *body, size_t len)
{
	size_t total = (sizeof(struct j_rec) + len + 7) & ~(size_t)7;
	unsigned char *buf = calloc(1, total);
	struct j_rec *r = (struct j_rec *)buf;
	int ret;

	if (!buf)
		return -ENOMEM;
	r->magic = R_MAGIC;
	r->len = (uint32_t)total;
	r->type = (uint16_t)type;
	r->nfiles = nfiles;
	r->key = key;
	r->seq = ++j->seq;
	if (len)
		memcpy(buf + sizeof(*r), body, len);
	r->sum = fnv(buf + offsetof(struct j_rec, type),
		     total - offsetof(struct j_rec, type));
	ret = write_all(fd, buf, total, *end);
	free(buf);
	if (ret == 0)
		*end += total;
	return ret;
}

static int append(struct journal *j, enum j_type type, uint32_t key,
		  uint16_t nfiles, const void *body, size_t len)
{
	int r;

	if (!j || j->broken)
		return 0;
	r = put(j, j->fd, &j->end, type, key, nfiles, body, len);
	if (r < 0) {
		char why[96];

		snprintf(why, sizeof(why), "cannot append: %s", strerror(-r));
		journal_off(j, why);
	}
	return r;
}

/*
 * Pages a DMA write made dirty (core_set_dirtied()): a J_DIRTY record
 * before the DMA's reply leaves (journal_op() flushes), so a crash
 * brings every bit back; a run that continues the one waiting grows it.
 * A read that clears bits is not journaled: after a crash the pages read
 * since the last compaction are dirty again (a page copied once more),
 * never one lost.
 */
static void dirty_flush(struct journal *j)
{
	unsigned char b[sizeof(j->dirty_h) + sizeof(j->dirty_run)];

	if (!j->dirty_pending)
		return;
	j->dirty_pending = false;
	memcpy(b, &j->dirty_h, sizeof(j->dirty_h));
	memcpy(b + sizeof(j->dirty_h), &j->dirty_run, sizeof(j->dirty_run));
	append(j, J_DIRTY, j->dirty_key, 0, b, sizeof(b));
}

static void journal_dirtied(void *arg, struct session *owner,
			    const struct core_dirty_bits *d)
{
	struct journal *j = arg;
	uint32_t key = core_session_id(owner);

	if (j->broken || d->nr_runs != 1)
		return;
	if (j->dirty_pending && j->dirty_key == key &&
	    j->dirty_h.ioas_id == d->ioas_id &&
	    j->dirty_h.domain_id == d->domain_id &&
	    j->dirty_run.last + 1 == d->runs[0].start) {
		j->dirty_run.last = d->runs[0].last;
		return;
	}
	dirty_flush(j);
	j->dirty_pending = true;
	j->dirty_key = key;
	j->dirty_h = (struct j_dirty){ .ioas_id = d->ioas_id,
				       .domain_id = d->domain_id,
				       .nr_runs = 1 };
	j->dirty_run = d->runs[0];
}

static struct j_file *file_by_id(struct journal *j, uint32_t id)
{
	for (uint32_t i = 0; i < j->nr_files; i++)
		if (j->files[i].id == id)
			return &j->files[i];
	return NULL;
}

static struct j_file *file_add(struct journal *j, uint32_t id)
{
	struct j_file *f;

	if (j->nr_files == j->cap_files) {
		uint32_t cap = j->cap_files ? 2 * j->cap_files : 16;

		f = realloc(j->files, cap * sizeof(*f));
		if (!f)
			return NULL;
		j->files = f;
		j->cap_files = cap;
	}
	f = &j->files[j->nr_files++];
	*f = (struct j_file){ .id = id, .fd = -1 };
	if (id >= j->next_file)
		j->next_file = id + 1;
	return f;
}

/*
 * Whether @f is @fd's file: by its inode where that names it, else by
 * the journal's own descriptor of it (kept for that: a KVM VM of one
 * session is not another's, though both are the one inode).
 */
static bool is_file(const struct j_file *f, int fd, const struct stat *st,
		    int mode, bool by_inode)
{
	if (by_inode)
		return f->dev == st->st_dev && f->ino == st->st_ino &&
		       f->mode == mode;
	return same_open_file(f->fd, fd);
}

/* The store's name for @fd, storing it once; 0 when it cannot. */
static uint32_t file_ref(struct journal *j, int fd)
{
	char name[32];
	struct j_file *f;
	struct stat st;
	int mode = fcntl(fd, F_GETFL);
	bool by_inode;

	if (fd < 0 || mode < 0 || fstat(fd, &st) < 0)
		return 0;
	mode &= O_ACCMODE;
	by_inode = inode_is_the_file(fd, &st);
	for (uint32_t i = 0; i < j->nr_files; i++) {
		f = &j->files[i];
		if (is_file(f, fd, &st, mode, by_inode))
			return f->id;
	}
	if (j->nr_files >= J_MAX_FILES)
		return 0;
	f = file_add(j, j->next_file ? j->next_file : 1);
	if (!f)
		return 0;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->mode = mode;
	f->by_inode = by_inode;
	if (!by_inode && (f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		j->nr_files--;
		return 0;
	}
	snprintf(name, sizeof(name), "f%u", f->id);
	if (sd_fdstore(name, fd) < 0) {
		close_fd(f->fd);
		j->nr_files--;
		return 0;
	}
	return f->id;
}

void journal_session_open(struct journal *j, struct session *s, uint32_t uid,
			  uint32_t gid, const gid_t *groups, size_t nr_groups)
{
	uint32_t nr = nr_groups > J_MAX_GROUPS ? J_MAX_GROUPS :
		      (uint32_t)nr_groups;
	size_t len = sizeof(struct j_session) + sizeof(uint32_t) +
		     nr * sizeof(uint32_t);
	struct j_session *b;
	uint32_t *g;

	if (!j || j->broken)
		return;
	if (nr < nr_groups)
		log_warn(j->srv, "journal: uid %u has %zu supplementary "
			 "groups; the journal keeps the first %u (a policy "
			 "section for a later one does not apply to its "
			 "session after a crash)", uid, nr_groups,
			 J_MAX_GROUPS);
	b = calloc(1, len);
	if (!b) {
		journal_off(j, "out of memory for a record");
		return;
	}
	b->uid = uid;
	b->gid = gid;
	g = (uint32_t *)(b + 1);
	g[0] = nr;
	for (uint32_t i = 0; i < nr; i++)
		g[1 + i] = groups[i];
	append(j, J_OPEN, core_session_id(s), 0, b, len);
	free(b);
}

void journal_session_named(struct journal *j, struct session *s,
			   const char *name, uint32_t linger_s,
			   const unsigned char *token)
{
	struct j_session b = { .linger_s = linger_s };

	snprintf(b.name, sizeof(b.name), "%s", name);
	memcpy(b.token, token, sizeof(b.token));
	append(j, J_NAME, core_session_id(s), 0, &b, sizeof(b));
	explicit_bzero(&b, sizeof(b));
}

void journal_session_token(struct journal *j, struct session *s,
			   const unsigned char *token)
{
	struct j_session b = {};

	memcpy(b.token, token, sizeof(b.token));
	append(j, J_TOKEN, core_session_id(s), 0, &b, sizeof(b));
	explicit_bzero(&b, sizeof(b));
}

void journal_test_kill_after_token(void)
{
	const char *env = getenv("IOASIDD_TEST_KILL_AFTER_TOKEN");

	if (env && *env)
		raise(SIGKILL);
}

void journal_session_end(struct journal *j, struct session *s)
{
	append(j, J_END, core_session_id(s), 0, NULL, 0);
}

void journal_before(struct journal *j, const struct ioasid_op *op,
		    struct journal_req *req)
{
	req->op = *op;
	req->next_id = j && !j->broken ? core_next_id(j->srv->core) : 0;
}

struct faultq_put {
	struct journal *j;
	uint32_t key, answered;		/* the queue a FAULT_RESPOND answered */
};

static int put_faultq(void *arg, uint32_t fault_id, const void *state,
		      uint32_t len)
{
	struct faultq_put *p = arg;
	struct j_faultq h = {
		.fault_id = fault_id,
		.flags = fault_id == p->answered ? J_FAULTQ_ANSWER : 0,
	};
	unsigned char *b = malloc(sizeof(h) + len);
	int r;

	if (!b)
		return -ENOMEM;
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), state, len);
	r = append(p->j, J_FAULTQ, p->key, 0, b, sizeof(h) + len);
	free(b);
	if (h.flags & J_FAULTQ_ANSWER)
		test_kill_point(p->j);
	return r;
}

/*
 * The fault queues of @s an op changed, each as a J_FAULTQ of what it
 * holds now, before the op's reply leaves (the simulator's: a page
 * request a DMA raised, an answer, a timeout).  @answered: the queue
 * a FAULT_RESPOND answered, whose record is that change (counted as
 * one: its client resumes by it).
 */
static int journal_fault_queues(struct journal *j, struct session *s,
				uint32_t answered)
{
	struct faultq_put p = { j, core_session_id(s), answered };
	int r = core_fault_queues_changed(s, put_faultq, &p);

	if (r == -ENOMEM)
		journal_off(j, "out of memory for a fault queue's record");
	return 0;
}

int journal_op(struct journal *j, struct session *s,
	       const struct journal_req *req, const struct ioasid_op *res,
	       int result)
{
	const struct ioasid_op *op = &req->op;
	bool unmap_dirty;
	struct j_op *b;
	size_t len;
	int r;

	if (j)
		dirty_flush(j);	/* what the op's DMA made dirty, first */
	if (!j || j->broken)
		return 0;
	if (op->cmd == IOASID_CMD_FAULT_RESPOND && result >= 0)
		return journal_fault_queues(j, s, op->ioas_id2);
	/* a read a crash cut off is read again: its records stay unread */
	if (op->cmd != IOASID_CMD_FAULT_QUEUE_READ)
		journal_fault_queues(j, s, 0);
	if (result < 0 || !proto_cmd_changes_state(op->cmd))
		return 0;
	len = sizeof(*b) + op->in_len;
	b = calloc(1, len);
	if (!b) {
		journal_off(j, "out of memory for a record");
		return 0;
	}
	*b = (struct j_op){
		.cmd = op->cmd, .ioas_id = op->ioas_id,
		.ioas_id2 = op->ioas_id2, .dev_id = op->dev_id,
		.vm_id = op->vm_id, .file_id = op->file_id,
		.flags = op->flags, .mode = op->mode, .iova = op->iova,
		.length = op->length, .offset = op->offset,
		.next_id_before = req->next_id,
		.next_id_after = core_next_id(j->srv->core),
		.out_id = res->out_id, .in_len = op->in_len,
		.out_iova = res->out_iova, .out_bytes = res->out_bytes,
	};
	memcpy(b->name, op->name, sizeof(b->name));
	if (op->in_len)
		memcpy(b + 1, op->in, op->in_len);
	/*
	 * An unmap that returned dirty bits replays as a plain unmap: the
	 * bits went to the client, the descriptor was its bitmap memfd.
	 */
	unmap_dirty = op->cmd == IOASID_CMD_UNMAP &&
		      (op->flags & IOASID_UNMAP_GET_DIRTY);
	if (unmap_dirty)
		b->flags &= ~(uint32_t)IOASID_UNMAP_GET_DIRTY;
	for (int i = 0; i < 2; i++) {
		int fd = i ? op->fd2 : op->fd;

		/* the eventfd ioasidd made: the one the VMM holds */
		if (op->cmd == IOASID_CMD_FAULT_QUEUE_ALLOC)
			fd = i ? -1 : res->out_fd;
		if (fd < 0 || unmap_dirty)
			continue;
		b->file[i] = file_ref(j, fd);
		if (!b->file[i]) {
			free(b);
			journal_off(j, "a file does not fit the fd store");
			return 0;
		}
	}
	r = append(j, J_OP, core_session_id(s), 0, b, len);
	free(b);
	test_kill_point(j);
	if (r == 0 && j->end > 4 * j->compacted_size &&
	    j->end > J_MIN_COMPACT)
		j->srv->compact_due = true;
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

struct rec {
	const struct j_rec *h;
	const void *body;
	size_t body_len;
};

struct j_image {
	unsigned char *map;
	size_t size;
	struct rec *recs;
	uint32_t nr;
	uint32_t *damaged_keys;		/* sessions with records after damage */
	uint32_t nr_damaged;
	uint32_t next_id;
	uint32_t version;
	uint64_t generation;
};

static bool rec_ok(const unsigned char *p, size_t left)
{
	const struct j_rec *r = (const struct j_rec *)p;

	if (left < sizeof(*r) || r->magic != R_MAGIC || r->len < sizeof(*r) ||
	    r->len % 8 || r->len > left)
		return false;
	return fnv(p + offsetof(struct j_rec, type),
		   r->len - offsetof(struct j_rec, type)) == r->sum;
}

static bool key_damaged(const struct j_image *im, uint32_t key)
{
	for (uint32_t i = 0; i < im->nr_damaged; i++)
		if (im->damaged_keys[i] == key)
			return true;
	return false;
}

static void jimage_free(struct j_image *im)
{
	if (im->map && im->map != MAP_FAILED)
		munmap(im->map, im->size);
	free(im->recs);
	free(im->damaged_keys);
	memset(im, 0, sizeof(*im));
}

/* Parse @fd; 0, or -errno with the reason logged (nothing usable). */
static int jimage_read(struct server *srv, int fd, const char *fdname,
		      struct j_image *im)
{
	const struct j_header *h;
	struct stat st;
	size_t off;
	bool damaged = false;

	memset(im, 0, sizeof(*im));
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(*h)) {
		log_err(srv, "journal %s: truncated (%lld bytes, the header "
			"has %zu): nothing to rebuild", fdname,
			(long long)st.st_size, sizeof(*h));
		return -EINVAL;
	}
	im->size = (size_t)st.st_size;
	im->map = mmap(NULL, im->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (im->map == MAP_FAILED) {
		log_err(srv, "journal %s: cannot map it: %m", fdname);
		return -errno;
	}
	h = (const struct j_header *)im->map;
	if (memcmp(h->magic, J_MAGIC, sizeof(h->magic))) {
		log_err(srv, "journal %s: not an ioasidd journal (bad magic): "
			"nothing to rebuild", fdname);
		return -EINVAL;
	}
	if (h->version > J_VERSION) {
		log_err(srv, "journal %s: version %u is newer than this "
			"ioasidd reads (%u): nothing to rebuild", fdname,
			h->version, J_VERSION);
		return -EPROTO;
	}
	if (h->version < 1 || h->header_size < sizeof(*h) ||
	    h->header_size > im->size || h->header_size % 8) {
		/* records are 8-aligned: their 64-bit fields are read in place */
		log_err(srv, "journal %s: bad header (size %u): nothing to "
			"rebuild", fdname, h->header_size);
		return -EINVAL;
	}
	im->next_id = h->next_id;
	im->version = h->version;
	im->generation = h->generation;
	im->recs = calloc(im->size / sizeof(struct j_rec) + 1,
			  sizeof(*im->recs));
	im->damaged_keys = calloc(im->size / sizeof(struct j_rec) + 1,
				  sizeof(uint32_t));
	if (!im->recs || !im->damaged_keys)
		return -ENOMEM;
	off = h->header_size;
	while (off + sizeof(struct j_rec) <= im->size) {
		const struct j_rec *r = (const void *)(im->map + off);

		if (!rec_ok(im->map + off, im->size - off)) {
			if (r->magic == R_MAGIC && r->len >= sizeof(*r) &&
			    r->len > im->size - off)
				break;		/* the cut-short last write */
			if (!damaged)
				log_err(srv, "journal %s: damaged at offset "
					"%zu: sessions with records after it "
					"are not rebuilt", fdname, off);
			damaged = true;
			off += 8;
			continue;
		}
		if (damaged && !key_damaged(im, r->key))
			im->damaged_keys[im->nr_damaged++] = r->key;
		im->recs[im->nr++] = (struct rec){
			.h = r, .body = r + 1,
			.body_len = r->len - sizeof(*r),
		};
		off += r->len;
	}
	return 0;
}

/* ---- the store's descriptors on start ------------------------------------ */

int journal_new(struct server *srv, struct journal **out)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->srv = srv;
	j->fd = -1;
	j->next_file = 1;
	core_set_dirtied(srv->core, journal_dirtied, j);
	*out = j;
	return 0;
}

/* A fresh memfd with a header, not yet stored. */
static int new_memfd(struct journal *j, uint64_t generation, uint64_t *end)
{
	struct j_header h = { .version = J_VERSION,
			      .header_size = sizeof(h),
			      .generation = generation,
			      .next_id = core_next_id(j->srv->core) };
	int fd = memfd_create("ioasidd-journal", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	memcpy(h.magic, J_MAGIC, sizeof(h.magic));
	if (write_all(fd, &h, sizeof(h), 0) < 0) {
		close(fd);
		return -EIO;
	}
	*end = sizeof(h);
	return fd;
}

static uint32_t body_u32(const struct rec *r, size_t off)
{
	uint32_t v = 0;

	if (off + 4 <= r->body_len)
		memcpy(&v, (const char *)r->body + off, 4);
	return v;
}

/* A session as the records before a compaction leave it. */
struct j_meta {
	const struct rec *open, *name;	/* the last J_OPEN, J_NAME */
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
	struct j_base base;
};

/* @key's J_OPEN, name, token, spent token and resume counts in @im. */
static void session_meta(const struct j_image *im, uint32_t key,
			 struct j_meta *m)
{
	bool name_seen = false;

	memset(m, 0, sizeof(*m));
	for (uint32_t i = 0; i < im->nr; i++) {
		const struct rec *rc = &im->recs[i];
		const struct j_session *js = rc->body;
		const struct j_op *o = rc->body;

		if (rc->h->key != key)
			continue;
		switch (rc->h->type) {
		case J_OPEN:
			m->open = rc;
			break;
		case J_NAME:
			if (rc->body_len < sizeof(*js))
				break;
			m->name = rc;
			name_seen = true;
			memcpy(m->token, js->token, sizeof(m->token));
			m->base.prev_ok = 0;
			break;
		case J_TOKEN:
			if (rc->body_len < sizeof(*js))
				break;
			m->base.prev_ok = memcmp(m->token, js->token,
						 sizeof(m->token)) != 0;
			memcpy(m->base.prev_token, m->token,
			       sizeof(m->base.prev_token));
			memcpy(m->token, js->token, sizeof(m->token));
			break;
		case J_OP:
			m->base.prev_ok = 0;
			if (!name_seen || rc->body_len < sizeof(*o))
				break;
			m->base.resume.changes++;
			m->base.resume.last_out_id = o->out_id;
			m->base.resume.last_out_iova = o->out_iova;
			m->base.resume.last_out_bytes = o->out_bytes;
			break;
		case J_FAULTQ:		/* an answer is a change */
			if (rc->body_len < sizeof(struct j_faultq) ||
			    !(((const struct j_faultq *)rc->body)->flags &
			      J_FAULTQ_ANSWER))
				break;
			m->base.prev_ok = 0;
			if (!name_seen)
				break;
			m->base.resume.changes++;
			m->base.resume.last_out_id = 0;
			m->base.resume.last_out_iova = 0;
			m->base.resume.last_out_bytes = 0;
			break;
		case J_BASE:
			if (rc->body_len >= sizeof(m->base))
				memcpy(&m->base, rc->body, sizeof(m->base));
			break;
		}
	}
	/* a spent token no reclaim can take any more is not written again */
	if (!m->base.prev_ok)
		explicit_bzero(m->base.prev_token,
			       sizeof(m->base.prev_token));
}

/* Where core_session_export() writes a session's J_STATE records. */
struct state_put {
	struct journal *j;
	int fd;
	uint64_t *end;
	uint32_t key;
	uint32_t *ioas, nr_ioas, cap_ioas;	/* the IOASes it made */
};

/* A domain's dirty pages as a J_DIRTY record. */
static int put_dirty(struct state_put *p, const struct core_dirty_bits *d)
{
	struct j_dirty h = {
		.ioas_id = d->ioas_id, .domain_id = d->domain_id,
		.nr_runs = d->nr_runs,
	};
	size_t runs = sizeof(d->runs[0]) * d->nr_runs;
	unsigned char *b = malloc(sizeof(h) + runs);
	int r;

	if (!b)
		return -ENOMEM;
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), d->runs, runs);
	r = put(p->j, p->fd, p->end, J_DIRTY, p->key, 0, b, sizeof(h) + runs);
	free(b);
	return r;
}

static int put_state(void *arg, struct ioasid_op *op, uint32_t expect_id,
		     const struct core_ioas_counters *c,
		     const struct ioasid_kobj *k,
		     const struct core_dirty_bits *dirty)
{
	struct state_put *p = arg;
	struct j_op *b;
	size_t len;
	int r;

	if (k)
		return -EOPNOTSUPP;	/* kernel objects: not journaled */
	if (dirty)
		return put_dirty(p, dirty);
	if (c)
		return put(p->j, p->fd, p->end, J_COUNTERS, p->key, 0, c,
			   sizeof(*c));
	if (op->cmd == IOASID_CMD_IOAS_ALLOC) {
		if (p->nr_ioas == p->cap_ioas) {
			uint32_t cap = p->cap_ioas ? 2 * p->cap_ioas : 8;
			uint32_t *v = realloc(p->ioas, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			p->ioas = v;
			p->cap_ioas = cap;
		}
		p->ioas[p->nr_ioas++] = expect_id;
	}
	len = sizeof(*b) + op->in_len;
	b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	*b = (struct j_op){
		.cmd = op->cmd, .ioas_id = op->ioas_id,
		.ioas_id2 = op->ioas_id2, .dev_id = op->dev_id,
		.vm_id = op->vm_id, .file_id = op->file_id,
		.flags = op->flags, .mode = op->mode, .iova = op->iova,
		.length = op->length, .offset = op->offset,
		.out_id = expect_id, .in_len = op->in_len,
	};
	memcpy(b->name, op->name, sizeof(b->name));
	if (op->in_len)
		memcpy(b + 1, op->in, op->in_len);
	for (int i = 0; i < 2; i++) {
		int fd = i ? op->fd2 : op->fd;
		struct j_file *jf;

		if (fd < 0)
			continue;
		b->file[i] = file_ref(p->j, fd);
		jf = file_by_id(p->j, b->file[i]);
		if (!jf) {
			free(b);
			return -ENOSPC;
		}
		jf->used = true;
	}
	r = put(p->j, p->fd, p->end, J_STATE, p->key, 0, b, len);
	free(b);
	return r;
}

/*
 * Session @key of @im as its live session @s (under @new_key) is now:
 * its J_OPEN, its name with the token it has, a J_BASE, then the ops
 * that make its state (core_session_export()).  -errno when the state
 * cannot be described (the caller keeps the history instead).
 */
static int put_session_state(struct journal *j, int fd, uint64_t *end,
			     const struct j_image *im, uint32_t key,
			     uint32_t new_key, struct session *s)
{
	struct state_put p = { .j = j, .fd = fd, .end = end, .key = new_key };
	struct j_session name;
	struct ioasid_op why;
	struct j_meta m;
	int r;

	session_meta(im, key, &m);
	if (!m.open)
		return -ENOENT;
	r = put(j, fd, end, J_OPEN, new_key, 0, m.open->body,
		m.open->body_len);
	if (r == 0 && m.name) {
		memcpy(&name, m.name->body, sizeof(name));
		memcpy(name.token, m.token, sizeof(name.token));
		r = put(j, fd, end, J_NAME, new_key, 0, &name, sizeof(name));
		explicit_bzero(&name, sizeof(name));
	}
	if (r == 0)
		r = put(j, fd, end, J_BASE, new_key, 0, &m.base,
			sizeof(m.base));
	explicit_bzero(&m, sizeof(m));
	if (r < 0)
		return r;
	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	r = core_session_export(s, put_state, &p, &why);
	/* then each IOAS's file id counter (the ops give the files theirs) */
	for (uint32_t i = 0; r == 0 && i < p.nr_ioas; i++) {
		struct j_files jf = { .ioas_id = p.ioas[i] };

		r = core_ioas_next_file_id(s, jf.ioas_id, &jf.next_file_id);
		if (r == 0)
			r = put(j, fd, end, J_FILES, new_key, 0, &jf,
				sizeof(jf));
	}
	free(p.ioas);
	if (r < 0)
		log_info(j->srv, "journal: session %u keeps its history: its "
			 "state cannot be written as such: %s", new_key,
			 why.errmsg[0] ? why.errmsg : strerror(-r));
	return r;
}

/* @key's records in @im, under @new_key, as they are. */
static int put_history(struct journal *j, int fd, uint64_t *end,
		       const struct j_image *im, uint32_t key,
		       uint32_t new_key)
{
	int r = 0;

	for (uint32_t i = 0; i < im->nr && r == 0; i++) {
		const struct rec *rc = &im->recs[i];

		if (rc->h->key != key)
			continue;
		if ((rc->h->type == J_OP || rc->h->type == J_STATE) &&
		    rc->body_len >= sizeof(struct j_op)) {
			const struct j_op *o = rc->body;

			for (int f = 0; f < 2; f++) {
				struct j_file *jf = file_by_id(j, o->file[f]);

				if (jf)
					jf->used = true;
			}
		}
		r = put(j, fd, end, rc->h->type, new_key, rc->h->nfiles,
			rc->body, rc->body_len);
	}
	return r;
}

/*
 * Tests only: $IOASIDD_TEST_KILL_IN_COMPACTION=written makes the daemon
 * SIGKILL itself when the journal it compacts as it grew is written anew
 * but not yet stored, =stored when it is stored and the old one not yet
 * removed.
 */
static void test_kill_in_compaction(const struct journal *j,
				    const char *when)
{
	const char *env = getenv("IOASIDD_TEST_KILL_IN_COMPACTION");

	if (j->compacting && env && !strcmp(env, when))
		raise(SIGKILL);
}

/*
 * Rewrite the journal with the sessions in @keep (old key -> new key
 * pairs): each live one as its state (put_session_state()), one whose
 * state cannot be written so, or that is not live, as its records;
 * store it, then drop the old one.
 */
static int rewrite(struct journal *j, const struct j_image *im,
		   const uint32_t (*keep)[2], uint32_t nr_keep)
{
	uint64_t end, gen = j->generation + 1;
	uint32_t states = 0;
	char name[16];
	int fd, r = 0;

	fd = new_memfd(j, gen, &end);
	if (fd < 0)
		return fd;
	for (uint32_t i = 0; i < j->nr_files; i++)
		j->files[i].used = false;
	j->seq = 0;
	for (uint32_t k = 0; im && k < nr_keep && r == 0; k++) {
		struct session *s = server_find_session(j->srv, keep[k][1]);
		uint64_t start = end, seq = j->seq;

		if (s && put_session_state(j, fd, &end, im, keep[k][0],
					   keep[k][1], s) == 0) {
			states++;
			continue;
		}
		/* what was written of it goes: its history instead */
		end = start;
		j->seq = seq;
		r = put_history(j, fd, &end, im, keep[k][0], keep[k][1]);
	}
	/* nothing of a rolled-back session's state past the end */
	if (r == 0 && ftruncate(fd, (off_t)end) < 0)
		r = -errno;
	if (r == 0)
		test_kill_in_compaction(j, "written");
	snprintf(name, sizeof(name), "journal.%u", (unsigned int)(gen & 1));
	if (r == 0)
		r = sd_fdstore(name, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	test_kill_in_compaction(j, "stored");
	/* the new one is in the store: the old one may go */
	sd_fdstore_remove(gen & 1 ? "journal.0" : "journal.1");
	close_fd(j->fd);
	j->fd = fd;
	j->end = j->compacted_size = end;
	j->generation = gen;
	j->states = states;
	for (uint32_t i = 0; i < j->nr_files;) {
		if (j->files[i].used) {
			i++;
			continue;
		}
		snprintf(name, sizeof(name), "f%u", j->files[i].id);
		sd_fdstore_remove(name);
		close_fd(j->files[i].fd);
		j->files[i] = j->files[--j->nr_files];
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------- */

struct rebuilt {
	uint32_t key;			/* in the journal */
	struct j_session sess;
	gid_t *groups;			/* supplementary, from J_OPEN */
	uint32_t nr_groups;
	bool named, ended, failed, opened, name_seen;
	/*
	 * The token a reclaim spent, while no change of the session follows
	 * its J_TOKEN: the reply with the new one may have died with the
	 * daemon, so either is taken (sessions.c).
	 */
	unsigned char prev_token[IOASID_SESSION_TOKEN_LEN];
	bool prev_ok;
	struct ioasid_session_resume resume;	/* changes since J_NAME */
	struct session *session;
	struct session_limits limits;
};

static struct rebuilt *find_rebuilt(struct rebuilt *rb, uint32_t nr,
				    uint32_t key)
{
	for (uint32_t i = 0; i < nr; i++)
		if (rb[i].key == key)
			return &rb[i];
	return NULL;
}

static void fail_rebuild(struct server *srv, struct rebuilt *b,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_rebuild(struct server *srv, struct rebuilt *b,
			 const char *fmt, ...)
{
	char why[IOASID_ERRMSG_MAX + 64];
	va_list ap;

	if (b->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err(srv, "session \"%s\" of uid %u not rebuilt: %s", b->sess.name,
		b->sess.uid, why);
	b->failed = true;
	if (b->session)
		core_session_free(b->session);
	b->session = NULL;
	policy_limits_release(&b->limits);
}

static void replay(struct journal *j, struct rebuilt *b, const struct rec *rc)
{
	struct server *srv = j->srv;
	const struct j_op *o = rc->body;
	unsigned char *out = srv->outbuf;
	struct ioasid_op op;
	int r;

	if (rc->body_len < sizeof(*o) || o->in_len > rc->body_len - sizeof(*o)) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed",
			     rc->h->seq);
		return;
	}
	ioasid_op_init(&op, o->cmd);
	op.ioas_id = o->ioas_id;
	op.ioas_id2 = o->ioas_id2;
	op.dev_id = o->dev_id;
	op.vm_id = o->vm_id;
	op.file_id = o->file_id;
	op.flags = o->flags;
	op.mode = o->mode;
	op.iova = o->iova;
	op.length = o->length;
	op.offset = o->offset;
	memcpy(op.name, o->name, sizeof(op.name));
	op.name[sizeof(op.name) - 1] = '\0';
	op.in = o->in_len ? (const void *)(o + 1) : NULL;
	op.in_len = o->in_len;
	op.out = out;
	op.out_cap = PROTO_MAX_PAYLOAD;
	for (int f = 0; f < 2; f++) {
		struct j_file *jf;

		if (!o->file[f])
			continue;
		jf = file_by_id(j, o->file[f]);
		if (!jf || jf->fd < 0) {
			fail_rebuild(srv, b, "file f%u (for %s, record %"
				     PRIu64 ") is not in the fd store",
				     o->file[f], proto_cmd_name(o->cmd),
				     rc->h->seq);
			return;
		}
		*(f ? &op.fd2 : &op.fd) = jf->fd;
	}
	if (rc->h->type == J_STATE) {
		/* an op of the compacted state: it makes the id it had */
		r = core_replay(b->session, &op, o->out_id);
		close_fd(op.out_fd);
		if (r < 0)
			fail_rebuild(srv, b, "%s (state record %" PRIu64 ") "
				     "failed again: %s",
				     proto_cmd_name(o->cmd), rc->h->seq,
				     op.errmsg);
		return;
	}
	core_set_next_id(srv->core, o->next_id_before);
	/* a fault queue's eventfd is the VMM's: as a state image has it */
	if (o->cmd == IOASID_CMD_FAULT_QUEUE_ALLOC && op.fd >= 0)
		r = core_replay(b->session, &op, o->out_id);
	else
		r = core_call(b->session, &op);
	close_fd(op.out_fd);
	if (r < 0) {
		fail_rebuild(srv, b, "%s (record %" PRIu64 ") failed again: "
			     "%s", proto_cmd_name(o->cmd), rc->h->seq,
			     op.errmsg);
		return;
	}
	if (op.out_id != o->out_id || op.out_iova != o->out_iova ||
	    core_next_id(srv->core) != o->next_id_after)
		fail_rebuild(srv, b, "%s (record %" PRIu64 ") gave another "
			     "result (id %u, not %u)", proto_cmd_name(o->cmd),
			     rc->h->seq, op.out_id, o->out_id);
}

static void replay_counters(struct server *srv, struct rebuilt *b,
			    const struct rec *rc)
{
	struct core_ioas_counters c;

	if (rc->body_len < sizeof(c)) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed",
			     rc->h->seq);
		return;
	}
	memcpy(&c, rc->body, sizeof(c));
	if (core_replay_counters(b->session, &c) < 0)
		fail_rebuild(srv, b, "record %" PRIu64 ": counters of an "
			     "object the session lacks", rc->h->seq);
}

static void replay_files(struct server *srv, struct rebuilt *b,
			 const struct rec *rc)
{
	struct j_files jf;

	if (rc->body_len < sizeof(jf)) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed",
			     rc->h->seq);
		return;
	}
	memcpy(&jf, rc->body, sizeof(jf));
	if (core_set_ioas_next_file_id(b->session, jf.ioas_id,
				       jf.next_file_id) < 0)
		fail_rebuild(srv, b, "record %" PRIu64 ": file id %u of IOAS "
			     "%u does not fit what it has", rc->h->seq,
			     jf.next_file_id, jf.ioas_id);
}

static void replay_dirty(struct server *srv, struct rebuilt *b,
			 const struct rec *rc)
{
	struct ioasid_iova_range *runs;
	struct ioasid_op why;
	struct j_dirty h;

	if (rc->body_len < sizeof(h)) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed",
			     rc->h->seq);
		return;
	}
	memcpy(&h, rc->body, sizeof(h));
	if (h.reserved || !h.nr_runs || h.nr_runs > CORE_DIRTY_MAX_RUNS ||
	    rc->body_len - sizeof(h) != (uint64_t)h.nr_runs * sizeof(*runs)) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed (%u "
			     "dirty runs)", rc->h->seq, h.nr_runs);
		return;
	}
	runs = malloc(sizeof(*runs) * h.nr_runs);
	if (!runs) {
		fail_rebuild(srv, b, "out of memory");
		return;
	}
	memcpy(runs, (const unsigned char *)rc->body + sizeof(h),
	       sizeof(*runs) * h.nr_runs);
	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	if (core_replay_dirty(b->session, &(struct core_dirty_bits){
		.ioas_id = h.ioas_id, .domain_id = h.domain_id,
		.nr_runs = h.nr_runs, .runs = runs }, &why) < 0)
		fail_rebuild(srv, b, "record %" PRIu64 ": %s", rc->h->seq,
			     why.errmsg);
	free(runs);
}

/* A fault queue's state again; true for an answer (a change counted). */
static bool replay_faultq(struct server *srv, struct rebuilt *b,
			  const struct rec *rc)
{
	struct ioasid_op why;
	struct j_faultq h;

	if (rc->body_len < sizeof(h) ||
	    rc->body_len - sizeof(h) > UINT32_MAX) {
		fail_rebuild(srv, b, "record %" PRIu64 " is malformed",
			     rc->h->seq);
		return false;
	}
	memcpy(&h, rc->body, sizeof(h));
	if (h.flags & ~(uint32_t)J_FAULTQ_ANSWER) {
		fail_rebuild(srv, b, "record %" PRIu64 " has unknown flags "
			     "0x%x", rc->h->seq, h.flags);
		return false;
	}
	if (core_replay_fault_state(b->session, h.fault_id,
				    (const unsigned char *)rc->body + sizeof(h),
				    (uint32_t)(rc->body_len - sizeof(h)),
				    &why) < 0) {
		fail_rebuild(srv, b, "record %" PRIu64 ": %s", rc->h->seq,
			     why.errmsg);
		return false;
	}
	return h.flags & J_FAULTQ_ANSWER;
}

static int open_rebuilt(struct server *srv, struct rebuilt *b)
{
	struct policy_result res;
	int r;

	policy_lookup(srv->policy, b->sess.uid, b->sess.gid, b->groups,
		      b->nr_groups, &res);
	if (!res.allow) {
		fail_rebuild(srv, b, "the policy no longer allows uid %u",
			     b->sess.uid);
		return -EACCES;
	}
	r = server_session_limits(srv, &res, &b->limits);
	if (r == 0)
		r = core_session_new(srv->core, &b->limits, &b->session);
	if (r < 0) {
		fail_rebuild(srv, b, "cannot make a session: %s",
			     strerror(-r));
		return r;
	}
	core_session_set_owner(b->session, 0, b->sess.uid, b->sess.name);
	return 0;
}

/* J_OPEN's supplementary groups (version 2), for the policy. */
static void open_groups(struct server *srv, struct rebuilt *b,
			const struct rec *rc)
{
	size_t at = sizeof(struct j_session);
	uint32_t nr = body_u32(rc, at);

	free(b->groups);
	b->groups = NULL;
	b->nr_groups = 0;
	if (at + 4 + (size_t)nr * 4 > rc->body_len || nr > J_MAX_GROUPS) {
		log_warn(srv, "journal: record %" PRIu64 " claims %u groups "
			 "it lacks: the session is judged by uid and primary "
			 "group only", rc->h->seq, nr);
		return;
	}
	b->groups = calloc(nr + 1, sizeof(*b->groups));
	if (!b->groups) {
		log_warn(srv, "journal: out of memory for the groups of "
			 "record %" PRIu64 ": the session is judged by uid "
			 "and primary group only", rc->h->seq);
		return;
	}
	for (uint32_t i = 0; i < nr; i++)
		b->groups[i] = body_u32(rc, at + 4 + 4 * (size_t)i);
	b->nr_groups = nr;
}

/* Replay @im; the sessions rebuilt linger.  Returns how many. */
static uint32_t rebuild(struct journal *j, const struct j_image *im)
{
	struct server *srv = j->srv;
	struct rebuilt *rb = calloc(im->nr + 1, sizeof(*rb));
	uint32_t nr = 0, done = 0, max_id = im->next_id, (*keep)[2];

	keep = calloc(im->nr + 1, sizeof(*keep));
	if (!rb || !keep) {
		log_err(srv, "journal: out of memory: nothing rebuilt");
		free(rb);
		free(keep);
		return 0;
	}
	/* who lives at the end, and with which name and token */
	for (uint32_t i = 0; i < im->nr; i++) {
		const struct rec *rc = &im->recs[i];
		struct rebuilt *b = find_rebuilt(rb, nr, rc->h->key);
		const struct j_session *s = rc->body;

		if (!b) {
			b = &rb[nr++];
			b->key = rc->h->key;
		}
		if ((rc->h->type == J_OPEN || rc->h->type == J_NAME ||
		     rc->h->type == J_TOKEN) && rc->body_len < sizeof(*s))
			continue;
		switch (rc->h->type) {
		case J_OPEN:
			b->opened = true;
			b->sess.uid = s->uid;
			b->sess.gid = s->gid;
			if (im->version >= 2)
				open_groups(srv, b, rc);
			break;
		case J_NAME:
			b->named = true;
			memcpy(b->sess.name, s->name, sizeof(s->name));
			b->sess.name[sizeof(b->sess.name) - 1] = '\0';
			b->sess.linger_s = s->linger_s;
			memcpy(b->sess.token, s->token, sizeof(s->token));
			b->prev_ok = false;
			break;
		case J_TOKEN:
			/* the token it has again: the new one was delivered */
			b->prev_ok = memcmp(b->sess.token, s->token,
					    sizeof(s->token)) != 0;
			memcpy(b->prev_token, b->sess.token,
			       sizeof(b->prev_token));
			memcpy(b->sess.token, s->token, sizeof(s->token));
			break;
		case J_END:
			b->ended = true;
			break;
		case J_BASE:
			/* what the compacted records said of the token */
			if (rc->body_len >= sizeof(struct j_base)) {
				const struct j_base *jb = rc->body;

				b->prev_ok = jb->prev_ok != 0;
				memcpy(b->prev_token, jb->prev_token,
				       sizeof(b->prev_token));
			}
			break;
		case J_OP:
			b->prev_ok = false;	/* its client had the token */
			if (rc->body_len >= sizeof(struct j_op) &&
			    body_u32(rc, offsetof(struct j_op,
						  next_id_after)) > max_id)
				max_id = body_u32(rc, offsetof(struct j_op,
							next_id_after));
			break;
		}
	}
	for (uint32_t i = 0; i < nr; i++) {
		struct rebuilt *b = &rb[i];

		if (b->ended || !b->named)
			continue;
		if (!b->opened) {
			b->failed = true;
			log_err(srv, "session \"%s\" not rebuilt: the journal "
				"lacks its beginning", b->sess.name);
		} else if (key_damaged(im, b->key)) {
			fail_rebuild(srv, b, "the journal is damaged before "
				     "some of its records");
		} else {
			open_rebuilt(srv, b);
		}
	}
	for (uint32_t i = 0; i < im->nr; i++) {
		const struct rec *rc = &im->recs[i];
		struct rebuilt *b = find_rebuilt(rb, nr, rc->h->key);

		if (!b || !b->session || b->failed)
			continue;
		if (rc->h->type == J_NAME)
			b->name_seen = true;
		if (rc->h->type == J_BASE &&
		    rc->body_len >= sizeof(struct j_base))
			memcpy(&b->resume,
			       &((const struct j_base *)rc->body)->resume,
			       sizeof(b->resume));
		if (rc->h->type == J_COUNTERS)
			replay_counters(srv, b, rc);
		if (rc->h->type == J_FILES)
			replay_files(srv, b, rc);
		if (rc->h->type == J_DIRTY)
			replay_dirty(srv, b, rc);
		if (rc->h->type == J_STATE)
			replay(j, b, rc);
		if (rc->h->type == J_FAULTQ && replay_faultq(srv, b, rc) &&
		    b->name_seen && !b->failed) {
			b->resume.changes++;	/* a FAULT_RESPOND */
			b->resume.last_out_id = 0;
			b->resume.last_out_iova = 0;
			b->resume.last_out_bytes = 0;
		}
		if (rc->h->type != J_OP)
			continue;
		replay(j, b, rc);
		if (b->name_seen && !b->failed) {
			const struct j_op *o = rc->body;

			b->resume.changes++;
			b->resume.last_out_id = o->out_id;
			b->resume.last_out_iova = o->out_iova;
			b->resume.last_out_bytes = o->out_bytes;
		}
	}
	core_set_next_id(srv->core, max_id);
	for (uint32_t i = 0; i < nr; i++) {
		struct rebuilt *b = &rb[i];
		int r;

		if (!b->session || b->failed)
			continue;
		r = sessions_restore(srv, b->sess.name, b->sess.uid,
				     b->sess.linger_s, b->sess.token,
				     b->prev_ok ? b->prev_token : NULL,
				     &b->resume, b->session, &b->limits);
		explicit_bzero(b->prev_token, sizeof(b->prev_token));
		if (r < 0) {
			fail_rebuild(srv, b, "%s", strerror(-r));
			continue;
		}
		keep[done][0] = b->key;
		keep[done][1] = core_session_id(b->session);
		done++;
		explicit_bzero(&b->sess.token, sizeof(b->sess.token));
	}
	/* the rebuilt sessions, under their new ids */
	if (rewrite(j, im, (const uint32_t (*)[2])keep, done) < 0)
		journal_off(j, "cannot write the compacted journal");
	for (uint32_t i = 0; i < nr; i++) {
		explicit_bzero(&rb[i].sess, sizeof(rb[i].sess));
		free(rb[i].groups);
	}
	free(rb);
	free(keep);
	return done;
}

static bool parse_file_name(const char *name, uint32_t *id)
{
	char *end;
	unsigned long v;

	if (name[0] != 'f' || !name[1])
		return false;
	errno = 0;
	v = strtoul(name + 1, &end, 10);
	if (*end || errno || !v || v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

int journal_start(struct journal *j, const int *fds, char **names,
		  unsigned int n)
{
	struct server *srv = j->srv;
	struct j_image im = {}, other = {};
	const char *jname = "";
	int jfd = -1, r;
	uint32_t restored = 0;

	/* the files first, then the newest whole journal */
	for (unsigned int i = 0; i < n; i++) {
		uint32_t id;
		struct j_file *f;
		struct stat st;
		int mode;

		if (fds[i] < 0)
			continue;
		if (parse_file_name(names[i], &id) && !file_by_id(j, id) &&
		    fstat(fds[i], &st) == 0 &&
		    (mode = fcntl(fds[i], F_GETFL)) >= 0 &&
		    (f = file_add(j, id))) {
			f->fd = fds[i];
			f->dev = st.st_dev;
			f->ino = st.st_ino;
			f->mode = mode & O_ACCMODE;
			f->by_inode = inode_is_the_file(fds[i], &st);
			continue;
		}
		if (!strcmp(names[i], "journal.0") ||
		    !strcmp(names[i], "journal.1")) {
			struct j_image cand;

			if (jimage_read(srv, fds[i], names[i], &cand) < 0) {
				jimage_free(&cand);
				sd_fdstore_remove(names[i]);
				close(fds[i]);
				continue;
			}
			/* two: a compaction was cut short; the newer wins */
			if (jfd < 0 || cand.generation > im.generation) {
				other = im;
				im = cand;
				if (jfd >= 0) {
					close(jfd);
					if (strcmp(jname, names[i]))
						sd_fdstore_remove(jname);
				}
				jfd = fds[i];
				jname = names[i];
			} else {
				jimage_free(&cand);
				close(fds[i]);
				if (strcmp(names[i], jname))
					sd_fdstore_remove(names[i]);
			}
			jimage_free(&other);
			continue;
		}
		log_warn(srv, "the fd store passed \"%s\", which ioasidd does "
			 "not know: closed", names[i]);
		sd_fdstore_remove(names[i]);
		close(fds[i]);
	}
	if (jfd >= 0) {
		j->generation = im.generation;
		j->fd = jfd;
		log_info(srv, "journal: %u record(s) to replay", im.nr);
		restored = rebuild(j, &im);
		log_info(srv, "journal: %u session(s) rebuilt", restored);
		jimage_free(&im);
		r = j->broken ? -EIO : 0;
	} else {
		if (j->nr_files)
			log_err(srv, "the fd store passed %u file(s) but no "
				"journal that can be read: nothing to rebuild",
				j->nr_files);
		r = rewrite(j, NULL, NULL, 0);
		if (r < 0)
			journal_off(j, "cannot store a new journal");
	}
	/*
	 * what is left of the store's files is the core's now (dups); we
	 * keep those their inode does not name, to tell them apart
	 */
	for (uint32_t i = 0; i < j->nr_files; i++)
		if (j->files[i].by_inode)
			close_fd(j->files[i].fd);
	return r;
}

void journal_compact(struct journal *j)
{
	struct server *srv = j->srv;
	struct j_image im;
	uint32_t (*keep)[2] = NULL, nr = 0;
	int r;

	srv->compact_due = false;
	dirty_flush(j);
	if (j->broken)
		return;
	if (jimage_read(srv, j->fd, "(current)", &im) < 0) {
		jimage_free(&im);
		journal_off(j, "cannot read it back to compact it");
		return;
	}
	keep = calloc(im.nr + 1, sizeof(*keep));
	if (!keep) {
		jimage_free(&im);
		return;			/* next time */
	}
	for (uint32_t i = 0; i < im.nr; i++) {
		const struct rec *rc = &im.recs[i];
		bool ended = false, known = false;

		for (uint32_t k = 0; k < nr; k++)
			known |= keep[k][0] == rc->h->key;
		if (known || rc->h->type != J_OPEN)
			continue;
		for (uint32_t k = i + 1; k < im.nr; k++)
			if (im.recs[k].h->key == rc->h->key &&
			    im.recs[k].h->type == J_END)
				ended = true;
		if (!ended) {
			keep[nr][0] = keep[nr][1] = rc->h->key;
			nr++;
		}
	}
	j->compacting = true;
	r = rewrite(j, &im, (const uint32_t (*)[2])keep, nr);
	j->compacting = false;
	if (r < 0)
		journal_off(j, "cannot write the compacted journal");
	else
		log_info(srv, "journal compacted: %" PRIu64 " bytes, %u "
			 "session(s), %u as their state", j->end, nr,
			 j->states);
	free(keep);
	jimage_free(&im);
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	core_set_dirtied(j->srv->core, NULL, NULL);
	close_fd(j->fd);
	for (uint32_t i = 0; i < j->nr_files; i++)
		close_fd(j->files[i].fd);
	free(j->files);
	free(j);
}

/* ---- live upgrade ---------------------------------------------------------- */

/* IMAGE_REC_DAEMON_JOURNAL: where the journal is; then the file table. */
struct journal_image {
	uint64_t generation, end, compacted_size, seq;
	uint32_t fd;			/* FD record index of the memfd */
	uint32_t nr_files, next_file, reserved;
};

struct journal_file_image {
	uint32_t id;
	int32_t mode;
	uint64_t dev, ino;
};
/*
 * Then, one per file, the FD record index of the journal's own descriptor
 * of it (j_file.fd), or J_NO_FD; an image without them is read too.
 */
#define J_NO_FD	UINT32_MAX

/*
 * The successor appends to the very memfd at the very offset: the keys
 * (session ids) and object ids are the same after an upgrade, and every
 * file it names is in the store already.  A journal that is off is not
 * handed over: crash survival stays off until the next start.
 */
int journal_export(struct journal *j, struct image_writer *w)
{
	struct journal_image ji;
	struct journal_file_image *fi;
	uint32_t *fdi;
	size_t len;
	int r;

	if (j)
		dirty_flush(j);
	if (!j || j->broken)
		return 0;
	ji = (struct journal_image){
		.generation = j->generation, .end = j->end,
		.compacted_size = j->compacted_size, .seq = j->seq,
		.nr_files = j->nr_files, .next_file = j->next_file,
	};
	r = image_put_fd(w, j->fd, &ji.fd);
	if (r < 0)
		return r;
	len = sizeof(ji) + (size_t)j->nr_files * (sizeof(*fi) + sizeof(*fdi));
	fi = calloc(1, len);
	if (!fi)
		return -ENOMEM;
	memcpy(fi, &ji, sizeof(ji));
	fdi = (uint32_t *)((char *)fi + sizeof(ji) +
			   (size_t)j->nr_files * sizeof(*fi));
	for (uint32_t i = 0; i < j->nr_files && r == 0; i++) {
		struct journal_file_image *f =
			(struct journal_file_image *)((char *)fi +
						      sizeof(ji)) + i;

		f->id = j->files[i].id;
		f->mode = j->files[i].mode;
		f->dev = (uint64_t)j->files[i].dev;
		f->ino = (uint64_t)j->files[i].ino;
		fdi[i] = J_NO_FD;
		if (j->files[i].fd >= 0)
			r = image_put_fd(w, j->files[i].fd, &fdi[i]);
	}
	if (r < 0) {
		free(fi);
		return r;
	}
	image_writer_need_version(w, 2);
	r = image_put(w, IMAGE_REC_DAEMON_JOURNAL, fi, (uint32_t)len);
	free(fi);
	return r;
}

/* The journal's own descriptor of @f, if the predecessor had one. */
static int adopt_file_fd(struct j_file *f, const char *fdi, uint32_t i,
			 image_take_fn take, void *arg)
{
	uint32_t idx;

	memcpy(&idx, fdi + i * sizeof(idx), sizeof(idx));
	if (idx == J_NO_FD)
		return 0;
	f->fd = take(arg, idx);
	if (f->fd < 0)
		return f->fd;
	f->by_inode = false;
	return 0;
}

int journal_adopt(struct server *srv, struct image *img, image_take_fn take,
		  void *arg, char *why, size_t whylen)
{
	struct journal_image ji;
	struct image_rec rec;
	struct journal *j;
	struct stat st;
	const char *fdi;
	size_t files_len;
	bool found = false;
	int fd, r;

	image_rewind(img);
	while (!found && image_next(img, &rec) > 0)
		found = rec.type == IMAGE_REC_DAEMON_JOURNAL;
	if (!found)
		return 0;		/* the predecessor had none */
	if (rec.len < sizeof(ji))
		goto bad;
	memcpy(&ji, rec.payload, sizeof(ji));
	if (ji.nr_files > J_MAX_FILES || ji.end < sizeof(struct j_header) ||
	    ji.end % 8)
		goto bad;
	files_len = sizeof(ji) + ji.nr_files * sizeof(struct journal_file_image);
	fdi = (const char *)rec.payload + files_len;
	if (rec.len == files_len)
		fdi = NULL;		/* before the descriptors */
	else if (rec.len != files_len + ji.nr_files * sizeof(uint32_t))
		goto bad;
	fd = take(arg, ji.fd);
	if (fd < 0) {
		snprintf(why, whylen, "the journal's memfd: %s",
			 strerror(-fd));
		return fd;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < ji.end) {
		close(fd);
		snprintf(why, whylen, "the journal's memfd is shorter than "
			 "the %" PRIu64 " bytes the image says", ji.end);
		return -EBADMSG;
	}
	r = journal_new(srv, &j);
	if (r < 0) {
		close(fd);
		return r;
	}
	j->fd = fd;
	j->generation = ji.generation;
	j->end = ji.end;
	j->compacted_size = ji.compacted_size;
	j->seq = ji.seq;
	j->next_file = ji.next_file ? ji.next_file : 1;
	for (uint32_t i = 0; i < ji.nr_files; i++) {
		struct journal_file_image fi;
		struct j_file *f;

		memcpy(&fi, (const char *)rec.payload + sizeof(ji) +
		       i * sizeof(fi), sizeof(fi));
		if (!fi.id || file_by_id(j, fi.id) || fi.id >= j->next_file) {
			journal_free(j);
			goto bad;
		}
		f = file_add(j, fi.id);
		if (!f) {
			journal_free(j);
			return -ENOMEM;
		}
		f->mode = fi.mode;
		f->dev = (dev_t)fi.dev;
		f->ino = (ino_t)fi.ino;
		f->by_inode = true;
		r = fdi ? adopt_file_fd(f, fdi, i, take, arg) : 0;
		if (r < 0) {
			journal_free(j);
			snprintf(why, whylen, "the journal's file f%u: %s",
				 fi.id, strerror(-r));
			return r;
		}
	}
	srv->journal = j;
	log_info(srv, "journal: taken over (%" PRIu64 " bytes, %u file(s))",
		 j->end, j->nr_files);
	return 0;
bad:
	snprintf(why, whylen, "record %u: the journal record is malformed",
		 rec.index);
	return -EBADMSG;
}
