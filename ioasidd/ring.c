/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request ring's daemon side (libioasid/proto/ring.h): the memfd,
 * the client's doorbell, its registered files, and serving the ring.
 *
 * Serving: every request is copied out of the ring (ring_take()), turned
 * into an op for the client's session and run exactly as the same request
 * from the socket would be (the caller's @run: policy, core, shared view,
 * events), and its result posted.  When the ring is empty the daemon
 * keeps looking for a while (--ring-spin-us, adapted to the client's pace
 * up to RING_SPIN_ADAPT times that: adapt_spin()), then asks for the
 * doorbell and goes back to epoll.  Between looks it yields the CPU when
 * the client may be on its CPU, else spins on the pause instruction
 * (ring_relax()).  The spin ends early when anything else the daemon
 * watches is ready (server_has_work(): another client's request, this
 * client's own socket, a timer): the daemon is single-threaded, and a
 * spin that ran on would hold every other request back by up to the
 * longest spin.  One wakeup serves at most RING_BUDGET requests; then
 * the daemon rings its own doorbell and lets the other clients go first.
 * While the client's socket has replies or events it did not read, its
 * ring is not served either (@stop; as the socket's requests are not).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/image.h"
#include "proto/ring.h"
#include "util/macros.h"

#define RING_BUDGET	1024
/* The adaptive spin goes up to this many times --ring-spin-us. */
#define RING_SPIN_ADAPT	8
/* While it spins, the daemon looks at its other work this often. */
#define RING_PEEK_NS	2000

struct ring {
	struct server *srv;
	struct ring_consumer rc;
	int memfd;
	int doorbell;			/* the client's eventfd: requests */
	int done;			/* another: completions, when waited */
	int files[RING_MAX_FILES];	/* registered: ours, or -1 */
	/* what the core would look up of each at every map; valid: seen */
	struct ioasid_fd_ident idents[RING_MAX_FILES];
	bool ident_seen[RING_MAX_FILES];
	uint64_t served;
	uint64_t spin_ns;		/* this ring's spin now (adaptive) */
	uint64_t idle_since;		/* last look that found it empty */
	bool asleep;			/* went back to epoll at idle_since */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Is @fd an eventfd?  Anything else could block or lie. */
static bool is_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return !strcmp(target, "anon_inode:[eventfd]");
}

/* Our own non-blocking copy of the client's eventfd @fd, or -errno. */
static int take_eventfd(int fd)
{
	int ours, flags;

	if (fd < 0 || !is_eventfd(fd))
		return -EINVAL;
	ours = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	flags = ours < 0 ? -1 : fcntl(ours, F_GETFL);
	/* the client's file: never let a read or write of it block us */
	if (flags < 0 || fcntl(ours, F_SETFL, flags | O_NONBLOCK) < 0) {
		int e = -errno;

		close_fd(ours);
		return e;
	}
	return ours;
}

int ring_new(struct server *srv, int doorbell, int done, struct ring **out,
	     char *why, size_t whylen)
{
	struct ring *rg = calloc(1, sizeof(*rg));
	void *base;

	if (!rg) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	rg->srv = srv;
	rg->memfd = rg->doorbell = rg->done = -1;
	for (int i = 0; i < RING_MAX_FILES; i++)
		rg->files[i] = -1;
	rg->doorbell = take_eventfd(doorbell);
	rg->done = rg->doorbell < 0 ? -1 : take_eventfd(done);
	if (rg->doorbell < 0 || rg->done < 0) {
		int e = rg->doorbell < 0 ? rg->doorbell : rg->done;

		snprintf(why, whylen, "%s", e == -EINVAL ?
			 "the doorbells must be eventfds" : strerror(-e));
		ring_free(rg);
		return e;
	}
	rg->memfd = memfd_create("ioasid-ring", MFD_CLOEXEC |
				 MFD_ALLOW_SEALING);
	if (rg->memfd < 0 || ftruncate(rg->memfd, RING_SIZE) < 0 ||
	    fcntl(rg->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
		  F_SEAL_SEAL) < 0) {
		snprintf(why, whylen, "cannot make the ring's memfd: %m");
		ring_free(rg);
		return -errno;
	}
	base = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    rg->memfd, 0);
	if (base == MAP_FAILED) {
		snprintf(why, whylen, "cannot map the ring: %m");
		ring_free(rg);
		return -errno;
	}
	ring_consumer_init(&rg->rc, base);
	*out = rg;
	return 0;
}

void ring_free(struct ring *rg)
{
	if (!rg)
		return;
	if (rg->rc.base)
		munmap(rg->rc.base, RING_SIZE);
	close_fd(rg->memfd);
	close_fd(rg->doorbell);
	close_fd(rg->done);
	for (int i = 0; i < RING_MAX_FILES; i++)
		close_fd(rg->files[i]);
	free(rg);
}

int ring_take_memfd(struct ring *rg)
{
	/* ours stays, for a successor (ioasidd/upgrade.c) */
	return fcntl(rg->memfd, F_DUPFD_CLOEXEC, 0);
}

int ring_export(const struct ring *rg, struct image_writer *w,
		struct ring_image *ri)
{
	int r;

	memset(ri, 0, sizeof(*ri));
	ri->sq_head = rg->rc.sq_head;
	ri->cq_tail = rg->rc.cq_tail;
	ri->broken = rg->rc.broken;
	r = image_put_fd(w, rg->memfd, &ri->memfd);
	if (r == 0)
		r = image_put_fd(w, rg->doorbell, &ri->doorbell);
	if (r == 0)
		r = image_put_fd(w, rg->done, &ri->done);
	for (int i = 0; i < RING_MAX_FILES && r == 0; i++) {
		ri->files[i] = -1;
		if (rg->files[i] >= 0)
			r = image_put_fd(w, rg->files[i],
					 (uint32_t *)&ri->files[i]);
	}
	return r;
}

/*
 * Our descriptor @fd is registered file @i: what the core checks of it at
 * every map, seen once.  We hold @fd, so its inode and access mode stay
 * (the client shares the open file description, but F_SETFL changes
 * neither, nor O_PATH); seals and size, which can change, the core still
 * looks after.  A file we cannot look at now gets no identity: the core
 * then looks itself, and says what is wrong.
 */
static void ring_file_keep(struct ring *rg, int i, int fd)
{
	struct stat st;
	int flags = 0;

	rg->files[i] = fd;
	rg->ident_seen[i] = fd >= 0 && fstat(fd, &st) == 0 &&
			    (flags = fcntl(fd, F_GETFL)) >= 0;
	if (rg->ident_seen[i])
		rg->idents[i] = (struct ioasid_fd_ident){
			.dev = st.st_dev, .ino = st.st_ino,
			.flags = flags & (O_ACCMODE | O_PATH),
		};
}

int ring_adopt(struct server *srv, const struct ring_image *ri,
	       int (*take)(void *arg, uint32_t idx), void *arg,
	       struct ring **out)
{
	struct ring *rg = calloc(1, sizeof(*rg));
	struct stat st;
	void *base;

	if (!rg)
		return -ENOMEM;
	rg->srv = srv;
	for (int i = 0; i < RING_MAX_FILES; i++)
		rg->files[i] = -1;
	rg->memfd = take(arg, ri->memfd);
	rg->doorbell = take(arg, ri->doorbell);
	rg->done = take(arg, ri->done);
	for (int i = 0; i < RING_MAX_FILES; i++)
		if (ri->files[i] >= 0)
			ring_file_keep(rg, i, take(arg, (uint32_t)ri->files[i]));
	/* the predecessor's seals make every access safe; check them */
	if (rg->memfd < 0 || rg->doorbell < 0 || rg->done < 0 ||
	    fstat(rg->memfd, &st) < 0 || st.st_size != RING_SIZE ||
	    (fcntl(rg->memfd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
	    (F_SEAL_SHRINK | F_SEAL_GROW) ||
	    ri->sq_head - ri->cq_tail > RING_ENTRIES) {
		ring_free(rg);
		return -EBADMSG;
	}
	base = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    rg->memfd, 0);
	if (base == MAP_FAILED) {
		ring_free(rg);
		return -errno;
	}
	/* not ring_consumer_init(): the client's indexes stay as they are */
	rg->rc.base = base;
	rg->rc.sq_head = ri->sq_head;
	rg->rc.cq_tail = ri->cq_tail;
	rg->rc.broken = ri->broken;
	*out = rg;
	return 0;
}

int ring_doorbell(const struct ring *rg)
{
	return rg->doorbell;
}

int ring_file_register(struct ring *rg, int fd, uint32_t *id)
{
	for (int i = 0; i < RING_MAX_FILES; i++) {
		int ours;

		if (rg->files[i] >= 0)
			continue;
		ours = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (ours < 0)
			return -errno;
		ring_file_keep(rg, i, ours);
		*id = (uint32_t)i + 1;
		return 0;
	}
	return -ENOSPC;
}

int ring_file_unregister(struct ring *rg, uint32_t id)
{
	if (!id || id > RING_MAX_FILES || rg->files[id - 1] < 0)
		return -ENOENT;
	close_fd(rg->files[id - 1]);
	rg->ident_seen[id - 1] = false;
	return 0;
}

/* The op a request stands for; -errno for one the ring cannot carry. */
static int to_op(struct ring *rg, const struct ring_sqe *s,
		 struct ioasid_op *op, struct ioasid_iova_range *range)
{
	switch (s->cmd) {
	case RING_CMD_MAP_FILE:
		if (!s->file || s->file > RING_MAX_FILES ||
		    rg->files[s->file - 1] < 0)
			return op_fail(op, EBADF, "the ring names file %u, "
				       "which is not registered", s->file);
		ioasid_op_init(op, IOASID_CMD_MAP_FILE);
		op->fd = rg->files[s->file - 1];
		if (rg->ident_seen[s->file - 1])
			op->fd_ident = &rg->idents[s->file - 1];
		op->offset = s->offset;
		break;
	case RING_CMD_MAP_FILE_ID:
		ioasid_op_init(op, IOASID_CMD_MAP_FILE_ID);
		op->file_id = s->file;
		op->offset = s->offset;
		break;
	case RING_CMD_UNMAP:
		ioasid_op_init(op, IOASID_CMD_UNMAP);
		break;
	case RING_CMD_CONVERT:
		if (!s->length || s->iova + (s->length - 1) < s->iova)
			return op_fail(op, EINVAL, "bad conversion range");
		ioasid_op_init(op, IOASID_CMD_CONVERT);
		range->start = s->iova;
		range->last = s->iova + s->length - 1;
		op->in = range;
		op->in_len = sizeof(*range);
		break;
	default:
		return op_fail(op, EINVAL, "command %u cannot go through the "
			       "ring", s->cmd);
	}
	op->ioas_id = s->ioas_id;
	op->iova = s->iova;
	op->length = s->length;
	op->flags = s->flags;
	return 0;
}

/* Tell a client that sleeps that its completion (or a broken ring) is there. */
static void wake_client(struct ring *rg)
{
	uint64_t one = 1;

	if (write(rg->done, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_dbg(rg->srv, "cannot wake a ring's client: %m");
}

/*
 * Serve what is in the ring; 1 when it stopped for the budget (more to
 * do), 0 when empty, -EPROTO when the client broke it.
 */
static int drain(struct ring *rg, int (*run)(void *, struct ioasid_op *),
		 bool (*stop)(void *), void *arg, int *budget)
{
	struct ioasid_iova_range range;
	struct ring_sqe s;
	bool posted = false;
	int r = 0;

	while (*budget > 0 && !stop(arg)) {
		struct ring_cqe cqe = { 0 };
		struct ioasid_op op;

		r = ring_take(&rg->rc, &s);
		if (r < 0)
			break;
		(*budget)--;
		rg->served++;
		ioasid_op_init(&op, IOASID_CMD_UNSPEC);
		cqe.result = to_op(rg, &s, &op, &range);
		if (cqe.result == 0)
			cqe.result = run(arg, &op);
		cqe.user_data = s.user_data;
		cqe.out_id = op.out_id;
		cqe.out_iova = op.out_iova;
		cqe.out_bytes = op.out_bytes;
		if (cqe.result < 0)
			snprintf(cqe.errmsg, sizeof(cqe.errmsg), "%s",
				 op.errmsg);
		ring_complete(&rg->rc, &cqe);
		posted = true;
	}
	if (posted && ring_client_waits(&rg->rc))
		wake_client(rg);
	if (r == -EPROTO) {
		wake_client(rg);
		return -EPROTO;
	}
	return *budget > 0 ? 0 : 1;
}

/*
 * The spin adapts to the client: woken by a request that came less than
 * the longest spin (RING_SPIN_ADAPT x --ring-spin-us) after the ring went
 * quiet, spin half as long again as that quiet was, next time, so that a
 * client calling at that pace finds the daemon looking; a request after a
 * longer quiet brings the spin back to --ring-spin-us.  The CPU it costs
 * is bounded by the longest spin per quiet period, and none when idle.
 */
static void adapt_spin(struct ring *rg, uint64_t now)
{
	uint64_t base = rg->srv->ring_spin_ns, max = base * RING_SPIN_ADAPT;
	uint64_t quiet;

	if (!rg->spin_ns)
		rg->spin_ns = base;
	if (!rg->asleep)
		return;
	rg->asleep = false;
	quiet = now - rg->idle_since;
	if (quiet <= max)
		rg->spin_ns = quiet + quiet / 2 < max ? quiet + quiet / 2 : max;
	else
		rg->spin_ns = base;
	if (rg->spin_ns < base)
		rg->spin_ns = base;
}

int ring_serve(struct ring *rg, int (*run)(void *, struct ioasid_op *),
	       bool (*stop)(void *), void *arg)
{
	uint64_t spin, until, peek, now = now_ns();
	int budget = RING_BUDGET, r;
	uint64_t count;
	bool same;

	adapt_spin(rg, now);
	spin = rg->spin_ns;
	if (read(rg->doorbell, &count, sizeof(count)) < 0)
		count = 0;		/* EAGAIN: spurious */
	ring_set_need_wakeup(&rg->rc, false);
	for (;;) {
		r = drain(rg, run, stop, arg, &budget);
		if (r < 0)
			return r;
		if (stop(arg)) {
			/*
			 * Back-pressure: the doorbell is unwatched until the
			 * client reads its socket; ring it ourselves so the
			 * requests already there are served then.
			 */
			count = 1;
			if (write(rg->doorbell, &count, sizeof(count)) < 0)
				ring_set_need_wakeup(&rg->rc, true);
			return 0;
		}
		if (r > 0) {
			/* others first; our own doorbell brings us back */
			count = 1;
			if (write(rg->doorbell, &count, sizeof(count)) < 0)
				ring_set_need_wakeup(&rg->rc, true);
			return 0;
		}
		same = ring_consumer_same_cpu(&rg->rc);
		rg->idle_since = now_ns();
		until = rg->idle_since + spin;
		peek = rg->idle_since + RING_PEEK_NS;
		while (!ring_pending(&rg->rc) && (now = now_ns()) < until) {
			if (now >= peek) {
				if (server_has_work(rg->srv))
					break;
				peek = now + RING_PEEK_NS;
			}
			ring_relax(same);
		}
		if (ring_pending(&rg->rc))
			continue;
		/* asleep from here: a request now must ring the doorbell */
		ring_set_need_wakeup(&rg->rc, true);
		if (!ring_pending(&rg->rc)) {
			rg->asleep = true;
			return 0;
		}
		ring_set_need_wakeup(&rg->rc, false);
	}
}

void ring_break_now(struct ring *rg)
{
	ring_break(&rg->rc);
	wake_client(rg);
}
