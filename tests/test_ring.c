/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request ring (libioasid/proto/ring.h) through a real ioasidd.
 *
 *  - a well-behaved context's maps, unmaps and conversions go through it
 *    and give what the socket gives (the conformance suite runs every
 *    test that way; here: the results while the socket path is off);
 *  - a client that speaks the protocol itself and scribbles on its ring:
 *    requests naming unregistered files, unknown commands, another
 *    session's IOAS, garbage everywhere, then impossible indexes.  It
 *    gets errors, then a broken ring and the socket; the daemon lives,
 *    and a second session sees none of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <netlink/msg.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "libioasid.h"
#include "proto/codec.h"
#include "proto/ring.h"

#define PG	4096ULL

static struct daemon_fixture d;

static void start(void)
{
	cr_assert_eq(daemon_start(&d, NULL), 0, "ioasidd must start");
}

static void stop(void)
{
	cr_assert_eq(daemon_stop(&d), 0, "ioasidd must exit cleanly");
}

/* ---- a client that speaks the protocol itself ---------------------------- */

struct raw {
	int s;
	uint32_t seq;
	unsigned char rx[IOASID_MAX_MSG];
};

static void raw_open(struct raw *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
	cr_assert_geq(c->s, 0);
	cr_assert_eq(connect(c->s, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* One request and its reply; the reply's descriptor, if any, in out_fd. */
static int raw_call(struct raw *c, struct ioasid_op *op)
{
	union {
		char buf[PROTO_CMSG_SPACE];
		struct cmsghdr align;
	} rcontrol;
	struct iovec iov;
	const void *buf;
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct proto_msg m;
	struct nl_msg *msg;
	char why[256];
	size_t len;
	ssize_t n;
	int r;

	cr_assert_eq(proto_encode_request(op, ++c->seq, &msg, fds, &nfds), 0,
		     "%s", op->errmsg);
	buf = proto_msg_data(msg, &len);
	cr_assert_eq(send_fds_flags(c->s, buf, len, fds, (int)nfds, 0),
		     (ssize_t)len);
	nlmsg_free(msg);
	do {
		struct msghdr rh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = rcontrol.buf,
			.msg_controllen = sizeof(rcontrol.buf),
		};

		iov.iov_base = c->rx;
		iov.iov_len = sizeof(c->rx);
		n = recvmsg(c->s, &rh, MSG_CMSG_CLOEXEC);
		cr_assert_gt(n, 0, "ioasidd must answer");
		cr_assert(proto_collect_fds(&rh, fds, &nfds));
		cr_assert_eq(proto_parse(c->rx, (size_t)n, nfds,
					 PROTO_FROM_DAEMON, &m, why,
					 sizeof(why)), 0, "%s", why);
	} while (m.cmd == IOASID_CMD_EVENT);
	cr_assert_eq(proto_decode_reply(&m, fds, op, &r), 0);
	return r;
}

/* A raw client with a session (HELLO) and an IOAS of its own: its id. */
static uint32_t raw_session(struct raw *c)
{
	struct ioasid_op op;

	raw_open(c);
	ioasid_op_init(&op, IOASID_CMD_HELLO);
	cr_assert_eq(raw_call(c, &op), 0);
	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(raw_call(c, &op), 0);
	return op.out_id;
}

struct raw_ring {
	unsigned char *base;
	struct ring_header *h;
	int bell, done;
};

/* The client's end: its socket and its ring, unmapped. */
static void raw_ring_close(struct raw *c, struct raw_ring *rr)
{
	close(c->s);
	munmap(rr->base, RING_SIZE);
	close(rr->bell);
	close(rr->done);
}

static void raw_ring_open(struct raw *c, struct raw_ring *rr)
{
	struct ioasid_op op;
	int seals;

	rr->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rr->done = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* only eventfds are taken: a socket could block the daemon */
	ioasid_op_init(&op, IOASID_CMD_RING);
	op.fd = c->s;
	op.fd2 = rr->done;
	cr_assert_eq(raw_call(c, &op), -EINVAL);
	ioasid_op_init(&op, IOASID_CMD_RING);
	op.fd = rr->bell;
	op.fd2 = c->s;
	cr_assert_eq(raw_call(c, &op), -EINVAL);
	ioasid_op_init(&op, IOASID_CMD_RING);
	op.fd = rr->bell;
	op.fd2 = rr->done;
	cr_assert_eq(raw_call(c, &op), 0, "RING: %s", op.errmsg);
	cr_assert_geq(op.out_fd, 0);
	seals = fcntl(op.out_fd, F_GET_SEALS);
	cr_assert(seals & F_SEAL_SHRINK, "the daemon cannot be made to fault");
	cr_assert(seals & F_SEAL_SEAL);
	cr_assert_neq(ftruncate(op.out_fd, 0), 0);
	rr->base = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			op.out_fd, 0);
	cr_assert_neq(rr->base, MAP_FAILED);
	close(op.out_fd);
	rr->h = (struct ring_header *)rr->base;
	cr_assert_eq(rr->h->magic, RING_MAGIC);
	cr_assert_eq(rr->h->entries, RING_ENTRIES);
	ioasid_op_init(&op, IOASID_CMD_RING);
	op.fd = rr->bell;
	op.fd2 = rr->done;
	cr_assert_eq(raw_call(c, &op), -EBUSY, "one ring per session");
}

/* Publish @n requests, ring, and wait until the daemon answered them. */
static void raw_ring_push(struct raw_ring *rr, const struct ring_sqe *s,
			  uint32_t n)
{
	struct ring_sqe *q = (struct ring_sqe *)(rr->base + RING_SQ_OFF);
	struct pollfd p = { .fd = rr->done, .events = POLLIN };
	uint32_t tail = rr->h->sq_tail, want = rr->h->cq_tail + n;
	uint64_t one = 1;

	for (uint32_t i = 0; i < n; i++)
		q[(tail + i) % RING_ENTRIES] = s[i];
	__atomic_store_n(&rr->h->sq_tail, tail + n, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rr->h->cq_waiting, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(write(rr->bell, &one, sizeof(one)), sizeof(one));
	while (__atomic_load_n(&rr->h->cq_tail, __ATOMIC_ACQUIRE) != want &&
	       !(__atomic_load_n(&rr->h->flags, __ATOMIC_ACQUIRE) &
		 RING_BROKEN)) {
		/* the daemon writes the eventfd after each batch */
		cr_assert_eq(poll(&p, 1, 30000), 1, "no completion");
		cr_assert_eq(read(rr->done, &one, sizeof(one)), sizeof(one));
	}
}

static const struct ring_cqe *raw_cqe(struct raw_ring *rr, uint32_t i)
{
	return (const struct ring_cqe *)(rr->base + RING_CQ_OFF) +
	       i % RING_ENTRIES;
}

/*
 * Both ends in one process: an error completion carries its message; a
 * success writes only the entry's head (the message bytes stay as they
 * were, stale) and the client reads an empty message for it.
 */
Test(ring, success_writes_only_the_head)
{
	unsigned char *base = aligned_alloc(4096, RING_SIZE);
	struct ring_consumer rc;
	struct ring_producer rp;
	struct ring_sqe s = { .cmd = RING_CMD_UNMAP }, got;
	struct ring_cqe c = { 0 }, out;
	const struct ring_cqe *slot;

	cr_assert_not_null(base);
	memset(base, 0, RING_SIZE);
	ring_consumer_init(&rc, base);
	cr_assert_eq(ring_producer_init(&rp, base, RING_SIZE), 0);
	/* the client's CPU word is a hint: garbage changes nothing */
	((struct ring_header *)base)->client_cpu = 0xdeadbeef;
	cr_assert_not(ring_consumer_same_cpu(&rc), "no CPU is 0xdeadbeef");
	for (uint32_t i = 0; i <= RING_ENTRIES; i++) {
		s.user_data = i + 1;
		ring_submit(&rp, &s);
		cr_assert_eq(ring_take(&rc, &got), 0);
		cr_assert_eq(got.user_data, i + 1);
		c.user_data = got.user_data;
		c.result = i == 0 ? -ENOENT : 0;
		snprintf(c.errmsg, sizeof(c.errmsg), i == 0 ? "nothing there" :
			 "not to be written");
		ring_complete(&rc, &c);
		cr_assert_eq(ring_reap(&rp, &out), 0);
		cr_assert_eq(out.user_data, i + 1);
		cr_assert_eq(out.result, c.result);
		cr_assert_str_eq(out.errmsg, i == 0 ? "nothing there" : "");
	}
	/* entry 0 served the error, then (RING_ENTRIES later) a success */
	slot = (const struct ring_cqe *)(base + RING_CQ_OFF);
	cr_assert_eq(slot->result, 0);
	cr_assert_str_eq(slot->errmsg, "nothing there", "the success wrote "
			 "its message: %s", slot->errmsg);
	free(base);
}

Test(ring, scribbler_hurts_only_itself, .init = start, .fini = stop,
     .timeout = 120)
{
	struct ioasid_ctx *good;
	struct ioasid_mapping m;
	struct raw c;
	struct raw_ring rr;
	struct ioasid_op op;
	struct ring_sqe s[8];
	uint32_t good_ioas, mine, file, first;
	uint64_t iova = 0x40000000, unmapped;
	int fd = test_memfd(16 * PG);

	cr_assert_eq(ioasid_new(d.uri, &good), 0, "%s",
		     ioasid_last_error(NULL));
	cr_assert_eq(ioasid_ioas_alloc(good, 0, &good_ioas), 0);
	cr_assert_eq(ioasid_map_file(good, good_ioas, fd, 0, 4 * PG,
				     IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
				     &iova), 0, "%s", ioasid_last_error(good));

	mine = raw_session(&c);
	raw_ring_open(&c, &rr);
	ioasid_op_init(&op, IOASID_CMD_FILE_REGISTER);
	op.fd = fd;
	cr_assert_eq(raw_call(&c, &op), 0, "%s", op.errmsg);
	file = op.out_id;

	/* requests the daemon must refuse, and one it must do */
	memset(s, 0, sizeof(s));
	s[0] = (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE, .file = 0,
		.ioas_id = mine, .length = PG, .user_data = 1 };
	s[1] = (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE, .file = 65,
		.ioas_id = mine, .length = PG, .user_data = 2 };
	s[2] = (struct ring_sqe){ .cmd = 999, .user_data = 3 };
	s[3] = (struct ring_sqe){ .cmd = RING_CMD_UNMAP, .ioas_id = good_ioas,
		.iova = 0, .length = UINT64_MAX, .user_data = 4 };
	s[4] = (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE, .file = file,
		.ioas_id = good_ioas, .iova = 0x80000000, .length = PG,
		.flags = IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
		.user_data = 5 };
	s[5] = (struct ring_sqe){ .cmd = RING_CMD_CONVERT, .ioas_id = mine,
		.length = 0, .user_data = 6 };
	s[6] = (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE, .file = file,
		.ioas_id = mine, .iova = 0x80000000, .length = PG,
		.flags = IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA,
		.user_data = 7 };
	s[7] = (struct ring_sqe){ .cmd = RING_CMD_UNMAP, .ioas_id = mine,
		.iova = 0x80000000, .length = PG, .user_data = 8 };
	first = rr.h->cq_tail;
	raw_ring_push(&rr, s, 8);
	cr_assert_not(rr.h->flags & RING_BROKEN);
	for (uint32_t i = 0; i < 8; i++)
		cr_assert_eq(raw_cqe(&rr, first + i)->user_data, i + 1);
	cr_assert_eq(raw_cqe(&rr, first)->result, -EBADF);
	cr_assert_eq(raw_cqe(&rr, first + 1)->result, -EBADF);
	cr_assert_eq(raw_cqe(&rr, first + 2)->result, -EINVAL);
	cr_assert_eq(raw_cqe(&rr, first + 3)->result, -ENOENT,
		     "another session's IOAS: %s",
		     raw_cqe(&rr, first + 3)->errmsg);
	cr_assert_eq(raw_cqe(&rr, first + 4)->result, -ENOENT);
	cr_assert_eq(raw_cqe(&rr, first + 5)->result, -EINVAL);
	cr_assert_eq(raw_cqe(&rr, first + 6)->result, 0, "%s",
		     raw_cqe(&rr, first + 6)->errmsg);
	cr_assert_eq(raw_cqe(&rr, first + 6)->out_iova, 0x80000000);
	cr_assert_eq(raw_cqe(&rr, first + 7)->result, 0);
	cr_assert_eq(raw_cqe(&rr, first + 7)->out_bytes, PG);
	rr.h->cq_head = rr.h->cq_tail;

	/* garbage in every request slot, then an impossible producer index */
	srand(19);
	for (size_t i = RING_SQ_OFF; i < RING_CQ_OFF; i++)
		rr.base[i] = (unsigned char)rand();
	rr.h->sq_tail = rr.h->sq_head;
	for (int round = 0; round < 4; round++) {
		struct ring_sqe junk[RING_ENTRIES];

		for (size_t i = 0; i < sizeof(junk); i++)
			((unsigned char *)junk)[i] = (unsigned char)rand();
		for (uint32_t i = 0; i < RING_ENTRIES; i++)
			if (junk[i].cmd % 2)	/* often one it can carry */
				junk[i].cmd = RING_CMD_UNMAP;
		rr.h->cq_head = rr.h->cq_tail;
		raw_ring_push(&rr, junk, RING_ENTRIES / 2);
	}
	cr_assert_not(rr.h->flags & RING_BROKEN, "garbage requests are "
		      "errors, not a broken ring");
	rr.h->sq_tail = rr.h->sq_head + 1000;
	{
		struct pollfd p = { .fd = rr.done, .events = POLLIN };
		uint64_t one = 1;

		rr.h->cq_waiting = 1;
		cr_assert_eq(write(rr.bell, &one, sizeof(one)), sizeof(one));
		while (!(__atomic_load_n(&rr.h->flags, __ATOMIC_ACQUIRE) &
			 RING_BROKEN))
			cr_assert_eq(poll(&p, 1, 30000), 1, "never broken");
	}
	/* its socket still works */
	ioasid_op_init(&op, IOASID_CMD_IOAS_DESTROY);
	op.ioas_id = mine;
	cr_assert_eq(raw_call(&c, &op), 0, "%s", op.errmsg);

	/* the other session: untouched, and its own ring still serves it */
	cr_assert_eq(ioasid_lookup(good, good_ioas, iova + 3 * PG, &m), 0);
	cr_assert_eq(m.iova, iova);
	cr_assert_eq(m.length, 4 * PG);
	cr_assert_eq(ioasid_lookup(good, good_ioas, 0x80000000, &m), -ENOENT);
	cr_assert_eq(ioasid_unmap(good, good_ioas, iova, PG, 0, &unmapped), 0,
		     "%s", ioasid_last_error(good));
	cr_assert_eq(unmapped, PG);
	cr_assert_eq(ioasid_lookup(good, good_ioas, iova + PG, &m), 0);
	cr_assert_eq(m.iova, iova + PG);
	raw_ring_close(&c, &rr);
	close(fd);
	ioasid_unref(good);
}

/*
 * A map by file id through the ring names files of the request's IOAS
 * only: another session's IOAS, an IOAS of ours with no such file, ids 0
 * and UINT32_MAX are ENOENT, and nothing is mapped anywhere.
 */
Test(ring, map_file_id_names_only_its_ioas_files, .init = start,
     .fini = stop, .timeout = 120)
{
	const uint32_t RW = IOASID_MAP_READ | IOASID_MAP_WRITE |
			    IOASID_MAP_FIXED_IOVA;
	struct ioasid_ctx *good;
	struct ioasid_mapping m;
	struct ioasid_op op;
	struct raw_ring rr;
	struct ring_sqe s[4];
	uint32_t good_ioas, mine, first;
	uint64_t iova = 0x40000000;
	int fd = test_memfd(16 * PG);
	struct raw c;

	cr_assert_eq(ioasid_new(d.uri, &good), 0);
	cr_assert_eq(ioasid_ioas_alloc(good, 0, &good_ioas), 0);
	cr_assert_eq(ioasid_map_file(good, good_ioas, fd, 0, 4 * PG, RW,
				     &iova), 0, "%s", ioasid_last_error(good));
	cr_assert_eq(ioasid_lookup(good, good_ioas, iova, &m), 0);
	mine = raw_session(&c);
	raw_ring_open(&c, &rr);
	for (uint32_t i = 0; i < 4; i++)
		s[i] = (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE_ID,
			.file = i == 2 ? 0 : i == 3 ? UINT32_MAX : m.file_id,
			.ioas_id = i == 0 ? good_ioas : mine,
			.iova = 0x80000000, .length = PG, .flags = RW,
			.user_data = i + 1 };
	first = rr.h->cq_tail;
	raw_ring_push(&rr, s, 4);
	for (uint32_t i = 0; i < 4; i++)
		cr_assert_eq(raw_cqe(&rr, first + i)->result, -ENOENT,
			     "request %u: %d (%s)", i,
			     raw_cqe(&rr, first + i)->result,
			     raw_cqe(&rr, first + i)->errmsg);
	cr_assert_not(rr.h->flags & RING_BROKEN);
	cr_assert_eq(ioasid_lookup(good, good_ioas, 0x80000000, &m), -ENOENT);
	ioasid_op_init(&op, IOASID_CMD_LOOKUP);
	op.ioas_id = mine;
	op.iova = 0x80000000;
	op.out = &m;
	op.out_cap = sizeof(m);
	cr_assert_eq(raw_call(&c, &op), -ENOENT, "nothing mapped in ours");
	raw_ring_close(&c, &rr);
	close(fd);
	ioasid_unref(good);
}

/* One request through @rr, answered: its result (message in @why). */
static int raw_ring_one(struct raw_ring *rr, struct ring_sqe s,
			char *why, size_t len)
{
	uint32_t at = rr->h->cq_tail;

	s.user_data = at + 1;
	raw_ring_push(rr, &s, 1);
	cr_assert_not(rr->h->flags & RING_BROKEN);
	cr_assert_eq(raw_cqe(rr, at)->user_data, at + 1);
	snprintf(why, len, "%s", raw_cqe(rr, at)->errmsg);
	rr->h->cq_head = rr->h->cq_tail;
	return raw_cqe(rr, at)->result;
}

static struct ring_sqe ring_map(uint32_t ioas, uint32_t file, uint64_t iova,
				uint64_t offset, uint32_t prot)
{
	return (struct ring_sqe){ .cmd = RING_CMD_MAP_FILE, .file = file,
		.ioas_id = ioas, .iova = iova, .offset = offset,
		.length = PG, .flags = prot | IOASID_MAP_FIXED_IOVA };
}

/*
 * The daemon looks at a registered file once, not at every map: what it
 * checks there must still hold.  A read-only descriptor of a file the
 * IOAS holds read-write is refused a writable mapping; a file that shrank
 * is checked against its new size, one that grew (sealed against
 * shrinking) against that; a write seal added later refuses the next
 * writable mapping.
 */
Test(ring, registered_files_keep_their_checks, .init = start, .fini = stop,
     .timeout = 120)
{
	const uint32_t RW = IOASID_MAP_READ | IOASID_MAP_WRITE;
	int rw = test_memfd_unsealed(4 * PG), grows = test_memfd(PG), ro;
	uint32_t ioas, f_rw, f_ro, f_grows;
	struct raw_ring rr;
	struct ioasid_op op;
	char path[64], why[RING_ERRMSG];
	struct raw c;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", rw);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	ioas = raw_session(&c);
	raw_ring_open(&c, &rr);
	ioasid_op_init(&op, IOASID_CMD_FILE_REGISTER);
	op.fd = rw;
	cr_assert_eq(raw_call(&c, &op), 0, "%s", op.errmsg);
	f_rw = op.out_id;
	ioasid_op_init(&op, IOASID_CMD_FILE_REGISTER);
	op.fd = ro;
	cr_assert_eq(raw_call(&c, &op), 0, "%s", op.errmsg);
	f_ro = op.out_id;
	ioasid_op_init(&op, IOASID_CMD_FILE_REGISTER);
	op.fd = grows;
	cr_assert_eq(raw_call(&c, &op), 0, "%s", op.errmsg);
	f_grows = op.out_id;

	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_rw, 0x10000, 0, RW),
				  why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_ro, 0x20000, 0, RW),
				  why, sizeof(why)), -EACCES,
		     "a read-only descriptor of a held file: %s", why);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_ro, 0x20000, 0,
						IOASID_MAP_READ),
				  why, sizeof(why)), 0, "%s", why);

	cr_assert_eq(ftruncate(rw, PG), 0);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_rw, 0x30000, 2 * PG,
						IOASID_MAP_READ),
				  why, sizeof(why)), -EINVAL,
		     "beyond the end of a file that shrank: %s", why);

	cr_assert_eq(fcntl(rw, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_rw, 0x30000, 0, RW),
				  why, sizeof(why)), -EACCES,
		     "a seal added after the last writable map: %s", why);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_rw, 0x30000, 0,
						IOASID_MAP_READ),
				  why, sizeof(why)), 0, "%s", why);

	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_grows, 0x40000, 0,
						RW), why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_grows, 0x50000,
						2 * PG, RW),
				  why, sizeof(why)), -EINVAL, "%s", why);
	cr_assert_eq(ftruncate(grows, 4 * PG), 0);
	cr_assert_eq(raw_ring_one(&rr, ring_map(ioas, f_grows, 0x50000,
						2 * PG, RW),
				  why, sizeof(why)), 0,
		     "within the size the file grew to: %s", why);
	close(ro);
	close(rw);
	close(grows);
	close(c.s);
}

/* Maps, unmaps and conversions through the ring give the socket's answers. */
/* A client on the ring and one on the socket only, an IOAS each. */
static void two_clients(struct ioasid_ctx **ring, uint32_t *ir,
			struct ioasid_ctx **sock, uint32_t *is)
{
	cr_assert_eq(ioasid_new(d.uri, ring), 0);
	setenv("IOASID_NO_FASTPATH", "1", 1);
	cr_assert_eq(ioasid_new(d.uri, sock), 0);
	unsetenv("IOASID_NO_FASTPATH");
	cr_assert_eq(ioasid_ioas_alloc(*ring, 0, ir), 0);
	cr_assert_eq(ioasid_ioas_alloc(*sock, 0, is), 0);
}

/*
 * While the daemon spins on one client's ring it still serves the others.
 * With a spin of a second (adapting up to eight), forty socket calls of
 * another client, each right after a ring call, would each wait behind
 * the spin, forty seconds or more; the timeout is twenty.
 */
static void start_long_spin(void)
{
	struct daemon_opts o = { .ring_spin_us = "1000000" };

	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

Test(ring, a_spinning_daemon_still_serves_other_clients,
     .init = start_long_spin, .fini = stop, .timeout = 20)
{
	struct ioasid_ioas_info info;
	struct ioasid_ctx *ring, *sock;
	uint32_t ir, is;

	two_clients(&ring, &ir, &sock, &is);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(ioasid_unmap(ring, ir, 1ULL << 40, PG,
					  IOASID_UNMAP_MISSING_OK, NULL), 0,
			     "%s", ioasid_last_error(ring));
		cr_assert_eq(ioasid_ioas_get_info(sock, is, &info), 0,
			     "%s", ioasid_last_error(sock));
	}
	ioasid_unref(ring);
	ioasid_unref(sock);
}

Test(ring, same_answers_as_the_socket, .init = start, .fini = stop,
     .timeout = 120)
{
	struct ioasid_ctx *ring, *sock;
	int fd = test_memfd(64 * PG), fd2 = test_memfd(PG);
	uint64_t iova, a, b;
	uint32_t ir, is;
	int rr, rs;

	two_clients(&ring, &ir, &sock, &is);
	for (uint64_t i = 0; i < 200; i++) {
		uint64_t len = (1 + i % 3) * PG, off = (i % 7) * PG;
		uint32_t fl = IOASID_MAP_READ |
			      (i % 5 ? IOASID_MAP_FIXED_IOVA : 0) |
			      (i % 11 == 3 ? 1u << 30 : 0);	/* unknown */

		a = b = 0x100000 + i * 4 * PG;
		rr = ioasid_map_file(ring, ir, i % 13 ? fd : fd2, off, len,
				     fl, &a);
		rs = ioasid_map_file(sock, is, i % 13 ? fd : fd2, off, len,
				     fl, &b);
		cr_assert_eq(rr, rs, "map %llu: %d against %d (%s)",
			     (unsigned long long)i, rr, rs,
			     ioasid_last_error(ring));
		if (rr == 0)
			cr_assert_eq(a, b);
	}
	/* a descriptor that is not open, then one reused for another file */
	iova = 0x90000000;
	rr = ioasid_map_file(ring, ir, 1000, 0, PG, IOASID_MAP_READ |
			     IOASID_MAP_FIXED_IOVA, &iova);
	cr_assert_eq(rr, -EBADF, "%s", ioasid_last_error(ring));
	{
		int keep = dup(fd2);
		struct ioasid_mapping m;
		struct ioasid_file_info info;
		int again;

		close(fd2);
		again = test_memfd(2 * PG);	/* likely fd2's number */
		iova = 0x90000000;
		cr_assert_eq(ioasid_map_file(ring, ir, again, PG, PG,
					     IOASID_MAP_READ |
					     IOASID_MAP_FIXED_IOVA, &iova), 0,
			     "%s", ioasid_last_error(ring));
		cr_assert_eq(ioasid_lookup(ring, ir, iova, &m), 0);
		cr_assert_eq(ioasid_file_get_info(ring, ir, m.file_id, &info),
			     0);
		cr_assert_eq(info.file_size, 2 * PG,
			     "the new file, not the old");
		cr_assert_eq(ioasid_unmap(ring, ir, iova, PG, 0, NULL), 0);
		close(again);
		close(keep);
	}
	for (uint64_t i = 0; i < 100; i++) {
		uint64_t at = 0x100000 + i * 6 * PG, ua = 1, ub = 2;

		rr = ioasid_unmap(ring, ir, at, 2 * PG,
				  i % 2 ? IOASID_UNMAP_MISSING_OK : 0, &ua);
		rs = ioasid_unmap(sock, is, at, 2 * PG,
				  i % 2 ? IOASID_UNMAP_MISSING_OK : 0, &ub);
		cr_assert_eq(rr, rs, "unmap %llu: %d against %d",
			     (unsigned long long)i, rr, rs);
		if (rr == 0)
			cr_assert_eq(ua, ub);
	}
	cr_assert_eq(ioasid_unmap_all(ring, ir, &a), 0);
	cr_assert_eq(ioasid_unmap_all(sock, is, &b), 0);
	cr_assert_eq(a, b);
	close(fd);
	ioasid_unref(sock);
	ioasid_unref(ring);
}
