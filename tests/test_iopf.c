/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recoverable faults on the simulated IOMMU through the public API: a
 * fault queue per IOAS, its eventfd, page request records, answers
 * (success: the device's retry completes; invalid: it fails), overflow
 * counted and reported, timeouts, PASID-tagged requests, the wait of an
 * embedded DMA thread, and every refusal (errno, reason, nothing
 * changed).  Runs unchanged against ioasidd when IOASID_TEST_URI=unix:PATH
 * (tests/conformance-test_iopf.sh): the eventfd then comes over
 * SCM_RIGHTS.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)
#define PG 4096ull
#define IOVA 0x100000ull
#define LEN (16 * PG)

#define NIC "0000:00:01.0"	/* sim0 */
#define GPU0 "0000:00:03.0"	/* sim0 (PASID), pasid=20 */

struct rig {
	struct ioasid_ctx *ctx;
	uint32_t dev, ioas, fq;
	int mem, fd;
};

/* Page 0 of IOVA is mapped, the rest of LEN is not. */
static void rig_up(struct rig *r, const char *dev, uint32_t depth,
		   uint32_t timeout_ms)
{
	uint64_t iova = IOVA;

	r->ctx = test_ctx();
	r->mem = test_memfd(LEN);
	cr_assert_eq(ioasid_device_bind(r->ctx, dev, -1, &r->dev), 0, "%s",
		     ioasid_last_error(r->ctx));
	cr_assert_eq(ioasid_ioas_alloc(r->ctx, 0, &r->ioas), 0);
	cr_assert_eq(ioasid_map_file(r->ctx, r->ioas, r->mem, 0, PG, RW,
				     &iova), 0);
	cr_assert_eq(ioasid_device_attach(r->ctx, r->dev, r->ioas, 0), 0,
		     "%s", ioasid_last_error(r->ctx));
	cr_assert_eq(ioasid_fault_queue_alloc(r->ctx, r->ioas, depth,
					      timeout_ms, 0, &r->fq, &r->fd),
		     0, "%s", ioasid_last_error(r->ctx));
	cr_assert_geq(r->fd, 0);
}

static void rig_down(struct rig *r)
{
	close(r->fd);
	close(r->mem);
	ioasid_unref(r->ctx);
}

static void expect_err(struct ioasid_ctx *ctx, int r, int want,
		       const char *text)
{
	cr_assert_eq(r, -want, "got %d (%s), want -%d", r,
		     ioasid_last_error(ctx), want);
	cr_assert(strstr(ioasid_last_error(ctx), text), "\"%s\" lacks \"%s\"",
		  ioasid_last_error(ctx), text);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int dma_write(struct rig *r, uint64_t iova, uint64_t len, uint8_t v,
		     uint64_t *done)
{
	static uint8_t buf[LEN];

	memset(buf, v, len);
	return ioasid_device_dma(r->ctx, r->dev, iova, buf, len,
				 IOASID_DMA_WRITE, done);
}

static uint8_t byte_at(int fd, uint64_t off)
{
	uint8_t b = 0;

	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	return b;
}

/* Map page @pg of the memfd at IOVA + pg * PG. */
static void map_page(struct rig *r, uint64_t pg)
{
	uint64_t iova = IOVA + pg * PG;

	cr_assert_eq(ioasid_map_file(r->ctx, r->ioas, r->mem, pg * PG, PG, RW,
				     &iova), 0, "%s", ioasid_last_error(r->ctx));
}

static uint32_t read_all(struct rig *r, struct ioasid_page_request *q,
			 uint32_t cap)
{
	uint32_t nr = cap;

	cr_assert_eq(ioasid_fault_queue_read(r->ctx, r->fq, q, &nr), 0, "%s",
		     ioasid_last_error(r->ctx));
	return nr;
}

Test(iopf, round_trip_success_resumes_the_device)
{
	struct ioasid_page_request q[4];
	struct ioasid_fault_queue_info info;
	struct rig r;
	uint64_t done = 99;

	rig_up(&r, NIC, 0, 0);
	cr_assert_not(readable(r.fd), "nothing queued yet");
	/* two pages: the first is mapped, the second is asked for */
	cr_assert_eq(dma_write(&r, IOVA + PG - 16, 32, 0x5a, &done),
		     -EINPROGRESS, "%s", ioasid_last_error(r.ctx));
	cr_assert_eq(done, 16, "the mapped part went through");
	cr_assert(strstr(ioasid_last_error(r.ctx), "page request"));
	cr_assert(readable(r.fd), "the fault fd polls readable");
	cr_assert_eq(read_all(&r, q, 4), 1);
	cr_assert_eq(q[0].size, sizeof(q[0]));
	cr_assert_eq(q[0].fault_id, r.fq);
	cr_assert_eq(q[0].target_id, r.ioas);
	cr_assert_eq(q[0].dev_id, r.dev);
	cr_assert_eq(q[0].addr, IOVA + PG);
	cr_assert_eq(q[0].perm, IOASID_MAP_WRITE);
	cr_assert_eq(q[0].flags, 0, "no PASID, no overflow");
	cr_assert_neq(q[0].cookie, 0);
	cr_assert_not(readable(r.fd), "read: not readable any more");
	/* the device retries before the answer: still outstanding, no
	 * second record */
	cr_assert_eq(dma_write(&r, IOVA + PG, 16, 0x5a, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q + 1, 3), 0);
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.outstanding, 1);
	cr_assert_eq(info.queued, 0);
	/* the handler maps the page and answers; the device resumes */
	map_page(&r, 1);
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(r.ctx));
	cr_assert_eq(dma_write(&r, IOVA + PG, 16, 0x5a, &done), 0, "%s",
		     ioasid_last_error(r.ctx));
	cr_assert_eq(done, 16);
	cr_assert_eq(byte_at(r.mem, PG - 16), 0x5a);
	cr_assert_eq(byte_at(r.mem, PG + 15), 0x5a);
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.fault_id, r.fq);
	cr_assert_eq(info.target_id, r.ioas);
	cr_assert_eq(info.depth, IOASID_FAULT_QUEUE_DEPTH_DEFAULT);
	cr_assert_eq(info.timeout_ms, IOASID_FAULT_TIMEOUT_MS_DEFAULT);
	cr_assert_eq(info.requests, 1);
	cr_assert_eq(info.responses, 1);
	cr_assert_eq(info.outstanding, 0);
	cr_assert_eq(info.lost, 0);
	/* answered twice: refused, nothing changed */
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					       IOASID_PAGE_RESPONSE_SUCCESS),
		   ENOENT, "no outstanding page request");
	rig_down(&r);
}

Test(iopf, invalid_fails_the_devices_request)
{
	struct ioasid_page_request q[2];
	struct ioasid_fault f[8];
	struct rig r;
	uint32_t nr = 8;

	rig_up(&r, NIC, 0, 0);
	while (ioasid_fault_read(r.ctx, f, &nr) == 0 && nr)
		nr = 8;
	cr_assert_eq(dma_write(&r, IOVA + 2 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_INVALID), 0);
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					       IOASID_PAGE_RESPONSE_SUCCESS),
		   EALREADY, "answered already");
	expect_err(r.ctx, dma_write(&r, IOVA + 2 * PG, 8, 1, NULL), EFAULT,
		   "answered invalid");
	/* a page request is not an unrecoverable fault record */
	nr = 8;
	cr_assert_eq(ioasid_fault_read(r.ctx, f, &nr), 0);
	cr_assert_eq(nr, 0);
	/* the device may ask again */
	cr_assert_eq(dma_write(&r, IOVA + 2 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	cr_assert_neq(q[0].cookie, 0);
	rig_down(&r);
}

Test(iopf, success_without_the_page_asks_again)
{
	struct ioasid_page_request q[2];
	struct rig r;

	rig_up(&r, NIC, 0, 0);
	cr_assert_eq(dma_write(&r, IOVA + 3 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0);
	cr_assert_eq(dma_write(&r, IOVA + 3 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q + 1, 1), 1);
	cr_assert_neq(q[1].cookie, q[0].cookie);
	rig_down(&r);
}

Test(iopf, bad_answers_change_nothing)
{
	struct ioasid_page_request q[2];
	struct ioasid_fault_queue_info info;
	struct ioasid_ctx *other;
	struct rig r;
	uint32_t nr = 2, ofq;
	int ofd;

	rig_up(&r, NIC, 0, 0);
	cr_assert_eq(dma_write(&r, IOVA + PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq, q[0].cookie + 1,
					       IOASID_PAGE_RESPONSE_SUCCESS),
		   ENOENT, "no outstanding page request");
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq, 0,
					       IOASID_PAGE_RESPONSE_SUCCESS),
		   ENOENT, "no outstanding page request");
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq, q[0].cookie, 2),
		   EINVAL, "response code");
	expect_err(r.ctx, ioasid_fault_respond(r.ctx, r.fq + 1000,
					       q[0].cookie,
					       IOASID_PAGE_RESPONSE_SUCCESS),
		   ENOENT, "no fault queue");
	/* another client cannot see, read, answer or free it */
	other = test_ctx();
	expect_err(other, ioasid_fault_respond(other, r.fq, q[0].cookie,
					       IOASID_PAGE_RESPONSE_INVALID),
		   ENOENT, "no fault queue");
	expect_err(other, ioasid_fault_queue_read(other, r.fq, q + 1, &nr),
		   ENOENT, "no fault queue");
	expect_err(other, ioasid_fault_queue_info(other, r.fq, &info), ENOENT,
		   "no fault queue");
	expect_err(other, ioasid_fault_queue_destroy(other, r.fq), ENOENT,
		   "no fault queue");
	expect_err(other, ioasid_fault_queue_alloc(other, r.ioas, 0, 0, 0,
						   &ofq, &ofd),
		   ENOENT, "no IOAS or nested table");
	nr = 4;
	cr_assert_eq(ioasid_fault_queue_list(other, (struct
			ioasid_fault_queue_info[4]){ 0 }, &nr), 0);
	cr_assert_eq(nr, 0, "another client's queues are not listed");
	ioasid_unref(other);
	/* still outstanding: the right answer works */
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.outstanding, 1);
	cr_assert_eq(info.responses, 0);
	map_page(&r, 1);
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0);
	cr_assert_eq(dma_write(&r, IOVA + PG, 8, 1, NULL), 0);
	rig_down(&r);
}

Test(iopf, overflow_is_counted_and_reported)
{
	struct ioasid_page_request q[8];
	struct ioasid_fault_queue_info info;
	struct rig r;

	rig_up(&r, NIC, 2, 0);
	cr_assert_eq(dma_write(&r, IOVA + 1 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(dma_write(&r, IOVA + 2 * PG, 8, 1, NULL), -EINPROGRESS);
	expect_err(r.ctx, dma_write(&r, IOVA + 3 * PG, 8, 1, NULL), EFAULT,
		   "is full");
	expect_err(r.ctx, dma_write(&r, IOVA + 4 * PG, 8, 1, NULL), EFAULT,
		   "is full");
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.lost, 2);
	cr_assert_eq(info.requests, 2);
	cr_assert_eq(info.depth, 2);
	cr_assert_eq(read_all(&r, q, 8), 3);
	cr_assert_eq(q[0].flags, IOASID_PAGE_REQUEST_OVERFLOW);
	cr_assert_eq(q[0].lost, 2);
	cr_assert_eq(q[0].cookie, 0);
	cr_assert_eq(q[1].addr, IOVA + PG);
	cr_assert_eq(q[2].addr, IOVA + 2 * PG);
	cr_assert_not(readable(r.fd));
	/* reported once */
	cr_assert_eq(read_all(&r, q, 8), 0);
	/* answered, there is room again */
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[1].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0);
	cr_assert_eq(dma_write(&r, IOVA + 3 * PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.lost, 2);
	rig_down(&r);
}

Test(iopf, unanswered_requests_time_out)
{
	struct ioasid_page_request q[2];
	struct ioasid_fault_queue_info info;
	struct timespec ts = { .tv_nsec = 1000000 };
	struct rig r;
	int ret, n;

	rig_up(&r, NIC, 0, 1);
	cr_assert_eq(dma_write(&r, IOVA + PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	/* wait for the 1 ms timeout to pass, however long that takes */
	for (n = 0; n < 10000; n++) {
		ret = dma_write(&r, IOVA + PG, 8, 1, NULL);
		if (ret != -EINPROGRESS)
			break;
		nanosleep(&ts, NULL);
	}
	expect_err(r.ctx, ret, ETIMEDOUT, "not answered within 1 ms");
	cr_assert_eq(ioasid_fault_queue_info(r.ctx, r.fq, &info), 0);
	cr_assert_eq(info.timeouts, 1);
	cr_assert_eq(info.outstanding, 0);
	ret = ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
				   IOASID_PAGE_RESPONSE_SUCCESS);
	cr_assert(ret == -ENOENT || ret == -ETIMEDOUT, "late answer: %d", ret);
	rig_down(&r);
}

Test(iopf, pasid_requests_carry_the_pasid)
{
	struct ioasid_page_request q[2];
	struct rig r;
	uint8_t buf[8] = { 0 };

	rig_up(&r, GPU0, 0, 0);
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, 7, r.ioas, 0), 0,
		     "%s", ioasid_last_error(r.ctx));
	cr_assert_eq(ioasid_device_dma_pasid(r.ctx, r.dev, 7, IOVA + 5 * PG,
					     buf, sizeof(buf), 0, NULL),
		     -EINPROGRESS, "%s", ioasid_last_error(r.ctx));
	cr_assert_eq(read_all(&r, q, 2), 1);
	cr_assert_eq(q[0].flags, IOASID_PAGE_REQUEST_PASID);
	cr_assert_eq(q[0].pasid, 7);
	cr_assert_eq(q[0].perm, IOASID_MAP_READ);
	cr_assert_eq(q[0].addr, IOVA + 5 * PG);
	/* the same page without the PASID is another request */
	cr_assert_eq(ioasid_device_dma(r.ctx, r.dev, IOVA + 5 * PG, buf,
				       sizeof(buf), 0, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q + 1, 1), 1);
	cr_assert_eq(q[1].flags, 0);
	cr_assert_eq(ioasid_device_pasid_detach(r.ctx, r.dev, 7), 0);
	rig_down(&r);
}

Test(iopf, answer_is_an_event)
{
	struct ioasid_page_request q[2];
	struct ioasid_event ev;
	struct rig r;
	int ret;

	rig_up(&r, NIC, 0, 0);
	cr_assert_eq(ioasid_event_subscribe(r.ctx, IOASID_EVENT_GROUP_FAULT),
		     0);
	cr_assert_eq(dma_write(&r, IOVA + PG, 8, 1, NULL), -EINPROGRESS);
	cr_assert_eq(read_all(&r, q, 2), 1);
	cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_INVALID), 0);
	while ((ret = ioasid_event_read(r.ctx, &ev)) == 0 &&
	       ev.type != IOASID_EVENT_PAGE_RESPONSE)
		;
	cr_assert_eq(ret, 0, "a page response event");
	cr_assert_eq(ev.id, r.dev);
	cr_assert_eq(ev.iova, IOVA + PG);
	cr_assert_eq(ev.arg, IOASID_PAGE_RESPONSE_INVALID);
	rig_down(&r);
}

Test(iopf, alloc_and_destroy_refusals)
{
	struct ioasid_fault_queue_info l[4];
	struct rig r;
	uint32_t id, nr = 4, other;
	int fd, fds;

	rig_up(&r, NIC, 0, 0);
	fds = test_count_fds();
	expect_err(r.ctx, ioasid_fault_queue_alloc(r.ctx, r.ioas, 0, 0, 0,
						   &id, &fd),
		   EEXIST, "already has fault queue");
	cr_assert_eq(ioasid_ioas_alloc(r.ctx, 0, &other), 0);
	expect_err(r.ctx, ioasid_fault_queue_alloc(r.ctx, other,
				IOASID_FAULT_QUEUE_DEPTH_MAX + 1, 0, 0, &id,
				&fd), EINVAL, "depth");
	expect_err(r.ctx, ioasid_fault_queue_alloc(r.ctx, other, 0,
				IOASID_FAULT_TIMEOUT_MS_MAX + 1, 0, &id, &fd),
		   EINVAL, "timeout");
	expect_err(r.ctx, ioasid_fault_queue_alloc(r.ctx, other, 0, 0, 1 << 3,
						   &id, &fd),
		   EOPNOTSUPP, "flags");
	expect_err(r.ctx, ioasid_fault_queue_alloc(r.ctx, 0, 0, 0, 0, &id,
						   &fd),
		   ENOENT, "no IOAS or nested table");
	cr_assert_eq(ioasid_fault_queue_alloc(r.ctx, other, 0, 0, 0, &id,
					      NULL), -EINVAL);
	cr_assert_eq(test_count_fds(), fds, "no descriptor leaked");
	cr_assert_eq(ioasid_fault_queue_list(r.ctx, l, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(l[0].fault_id, r.fq);
	expect_err(r.ctx, ioasid_fault_queue_destroy(r.ctx, r.fq), EBUSY,
		   "still attached");
	cr_assert_eq(ioasid_device_detach(r.ctx, r.dev), 0);
	cr_assert_eq(ioasid_fault_queue_destroy(r.ctx, r.fq), 0);
	expect_err(r.ctx, ioasid_fault_queue_destroy(r.ctx, r.fq), ENOENT,
		   "no fault queue");
	/* a queue goes with its IOAS */
	cr_assert_eq(ioasid_fault_queue_alloc(r.ctx, other, 0, 0, 0, &id, &fd),
		     0);
	cr_assert_eq(ioasid_ioas_destroy(r.ctx, other), 0);
	expect_err(r.ctx, ioasid_fault_queue_destroy(r.ctx, id), ENOENT,
		   "no fault queue");
	close(fd);
	rig_down(&r);
}

Test(iopf, without_a_queue_it_is_a_fault)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t dev, ioas;
	uint8_t buf[8] = { 0 };

	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &dev), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, dev, IOVA, buf, sizeof(buf),
				       IOASID_DMA_WRITE, NULL), -EFAULT);
	ioasid_unref(ctx);
}

struct waiter {
	struct rig *r;
	int ret;
	uint64_t done;
};

static void *dma_thread(void *arg)
{
	struct waiter *w = arg;
	static uint8_t buf[3 * PG];

	memset(buf, 0x77, sizeof(buf));
	w->ret = ioasid_device_dma(w->r->ctx, w->r->dev, IOVA, buf,
				   sizeof(buf), IOASID_DMA_WRITE |
				   IOASID_DMA_PAGE_WAIT, &w->done);
	return NULL;
}

/* An embedded device thread waits for the answers; through ioasidd the
 * daemon refuses the wait (one thread serves every client). */
Test(iopf, dma_thread_waits_for_the_handler)
{
	struct ioasid_page_request q[2];
	struct pollfd p;
	struct waiter w = { 0 };
	struct rig r;
	pthread_t t;
	uint8_t buf[8];
	int handled = 0;

	rig_up(&r, NIC, 0, 0);
	w.r = &r;
	if (ioasid_is_remote(r.ctx)) {
		expect_err(r.ctx, ioasid_device_dma(r.ctx, r.dev, IOVA + PG,
						    buf, 8,
						    IOASID_DMA_PAGE_WAIT,
						    NULL),
			   EOPNOTSUPP, "does not wait");
		rig_down(&r);
		return;
	}
	cr_assert_eq(pthread_create(&t, NULL, dma_thread, &w), 0);
	/* the handler: pages 1 and 2 are asked for, one after the other */
	while (handled < 2) {
		p = (struct pollfd){ .fd = r.fd, .events = POLLIN };
		cr_assert_eq(poll(&p, 1, 20000), 1, "a page request came");
		if (read_all(&r, q, 2) == 0)
			continue;
		cr_assert_eq(q[0].addr, IOVA + (handled + 1) * PG);
		map_page(&r, handled + 1);
		cr_assert_eq(ioasid_fault_respond(r.ctx, r.fq, q[0].cookie,
					IOASID_PAGE_RESPONSE_SUCCESS), 0);
		handled++;
	}
	pthread_join(t, NULL);
	cr_assert_eq(w.ret, 0, "the device's DMA completed");
	cr_assert_eq(w.done, 3 * PG);
	cr_assert_eq(byte_at(r.mem, 0), 0x77);
	cr_assert_eq(byte_at(r.mem, 3 * PG - 1), 0x77);
	rig_down(&r);
}
