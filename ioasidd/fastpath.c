/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fast path's daemon side: a client's shared view of its mappings
 * (libioasid/proto/view.h), kept equal to what the core would answer.
 *
 * The view is made when the client asks for it (IOASID_CMD_VIEW, the
 * memfd in the reply) and has a slot for each of the session's own IOASes
 * that the client allocated after that or looked up once.  After every
 * request the daemon patches it from the core, never from the request:
 * for the IOVA range a request may have changed, it asks the core
 * (MAPPING_NEXT, as a client would) what is mapped there now and replaces
 * the view's entries for that range, widened until it covers every entry
 * of either side that overlaps it.  So the view is a copy of the core's
 * answers, not a second implementation of map and unmap, and is patched
 * before the reply leaves: a caller whose map returned sees it in the
 * view.
 *
 * Requests that cannot change a mapping leave it alone; a request this
 * file does not know empties every slot (the client then asks the daemon
 * again, and slots come back one lookup at a time): a new command costs
 * speed, never a stale answer.  When the view is full for an IOAS, or
 * asking the core fails, that slot is turned off for good (the client
 * asks the daemon for that IOAS).  An observer's lookups may name other
 * sessions' IOASes, which this session's requests do not change: while
 * it observes, no new slot is made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/view.h"
#include "util/macros.h"

#define RESYNC_CACHE	32
#define RESYNC_ROUNDS	16

struct fastpath {
	struct server *srv;
	struct session *session;
	struct view_writer w;
	bool observing;
};

int fastpath_new(struct server *srv, struct session *session,
		 const struct session_limits *limits, struct fastpath **out,
		 char *why, size_t whylen)
{
	struct fastpath *fp = calloc(1, sizeof(*fp));
	uint64_t max = min_t(uint64_t, limits->max_mappings,
			     srv->fastpath_max_mappings);
	uint32_t slots = min_t(uint32_t, limits->max_ioas,
			       FASTPATH_MAX_IOAS);
	int r;

	if (!fp) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	r = view_writer_create(&fp->w, slots ? slots : 1,
			       max > 64 ? max : 64, why, whylen);
	if (r < 0) {
		free(fp);
		return r;
	}
	fp->srv = srv;
	fp->session = session;
	*out = fp;
	return 0;
}

void fastpath_free(struct fastpath *fp)
{
	if (!fp)
		return;
	view_writer_destroy(&fp->w);
	free(fp);
}

void fastpath_retire(struct fastpath *fp)
{
	for (uint32_t i = 0; i < fp->w.nr_slots; i++) {
		if (view_slot_state(&fp->w, (int)i) == VIEW_SLOT_FREE)
			continue;	/* not in the view: asked anyway */
		view_write_begin(&fp->w, (int)i);
		view_slot_off(&fp->w, (int)i);
		view_write_end(&fp->w, (int)i);
	}
}

int fastpath_fd(const struct fastpath *fp)
{
	return fp->w.fd;
}

static int core_next(struct fastpath *fp, uint32_t ioas_id, uint64_t iova,
		     struct ioasid_mapping *m)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAPPING_NEXT);
	op.ioas_id = ioas_id;
	op.iova = iova;
	op.out = m;
	op.out_cap = sizeof(*m);
	return core_call(fp->session, &op);
}

static uint64_t last_of(const struct ioasid_mapping *m)
{
	return m->iova + m->length - 1;
}

/*
 * Call @fn on each of the core's mappings that overlap [lo, last], in
 * IOVA order, until it returns non-zero.  0, @fn's value, or a negative
 * errno from the core.
 */
static int for_each_core(struct fastpath *fp, uint32_t ioas_id, uint64_t lo,
			 uint64_t last,
			 int (*fn)(void *arg, const struct ioasid_mapping *m),
			 void *arg)
{
	struct ioasid_mapping m;
	uint64_t pos = lo;
	int r;

	for (;;) {
		r = core_next(fp, ioas_id, pos, &m);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		if (!m.length || last_of(&m) < m.iova || m.iova > last)
			return 0;
		r = fn(arg, &m);
		if (r || last_of(&m) >= last)
			return r;
		pos = last_of(&m) + 1;
	}
}

/* What walk_core() learns: the widened range and the first mappings. */
struct walk {
	uint64_t lo, last;
	struct ioasid_mapping cache[RESYNC_CACHE];
	uint32_t n;
	bool all, widened;
};

static int widen_and_keep(void *arg, const struct ioasid_mapping *m)
{
	struct walk *w = arg;

	if (m->iova < w->lo) {
		w->lo = m->iova;
		w->widened = true;
	}
	if (last_of(m) > w->last) {
		w->last = last_of(m);
		w->widened = true;
	}
	if (w->n < RESYNC_CACHE)
		w->cache[w->n++] = *m;
	else
		w->all = false;
	return 0;
}

struct fill {
	struct view_writer *w;
	int slot;
};

static int insert_one(void *arg, const struct ioasid_mapping *m)
{
	struct fill *f = arg;

	return view_insert(f->w, f->slot, m);
}

/* Put the core's mappings in [lo, last] into the slot (inside a write). */
static int fill(struct fastpath *fp, int slot, uint32_t ioas_id, uint64_t lo,
		uint64_t last)
{
	struct fill f = { .w = &fp->w, .slot = slot };

	return for_each_core(fp, ioas_id, lo, last, insert_one, &f);
}

static void turn_off(struct fastpath *fp, int slot, uint32_t ioas_id, int r)
{
	view_slot_off(&fp->w, slot);
	log_dbg(fp->srv, "fast path: IOAS %u is no longer in the view: %s",
		ioas_id, r == -ENOSPC ? "the view is full" : strerror(-r));
}

/* Make the slot's entries for [lo, last] what the core says. */
static void resync(struct fastpath *fp, int slot, uint32_t ioas_id,
		   uint64_t lo, uint64_t last)
{
	struct walk wk = { .lo = lo, .last = last, .widened = true };
	uint32_t rounds = 0;
	int r = 0;

	if (view_slot_state(&fp->w, slot) != VIEW_SLOT_ON || lo > last)
		return;
	/* until neither side has an entry reaching out of the range */
	while (wk.widened && rounds++ < RESYNC_ROUNDS) {
		wk.widened = view_widen(&fp->w, slot, &wk.lo, &wk.last);
		wk.n = 0;
		wk.all = true;
		r = for_each_core(fp, ioas_id, wk.lo, wk.last, widen_and_keep,
				  &wk);
		if (r < 0)
			break;
	}
	view_write_begin(&fp->w, slot);
	if (r == 0 && wk.widened)
		r = -ELOOP;
	if (r == 0) {
		view_remove(&fp->w, slot, wk.lo, wk.last);
		if (wk.all)
			for (uint32_t i = 0; i < wk.n && r == 0; i++)
				r = view_insert(&fp->w, slot, &wk.cache[i]);
		else
			r = fill(fp, slot, ioas_id, wk.lo, wk.last);
	}
	if (r < 0)
		turn_off(fp, slot, ioas_id, r);
	view_write_end(&fp->w, slot);
}

/* A slot for an IOAS of the session, filled from the core. */
static void open_slot(struct fastpath *fp, uint32_t ioas_id, bool empty)
{
	int slot = view_slot_open(&fp->w, ioas_id);
	int r;

	if (slot < 0 || empty)
		return;
	view_write_begin(&fp->w, slot);
	r = fill(fp, slot, ioas_id, 0, UINT64_MAX);
	if (r < 0)
		turn_off(fp, slot, ioas_id, r);
	view_write_end(&fp->w, slot);
}

/* Does @ioas_id name an IOAS this session may read? */
static bool ioas_exists(struct fastpath *fp, uint32_t ioas_id)
{
	struct ioasid_ioas_info info;
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = ioas_id;
	op.out = &info;
	op.out_cap = sizeof(info);
	return core_call(fp->session, &op) == 0;
}

static void close_all(struct fastpath *fp, uint32_t cmd)
{
	bool any = false;

	for (uint32_t i = 0; i < fp->w.nr_slots; i++) {
		if (view_slot_state(&fp->w, (int)i) == VIEW_SLOT_FREE)
			continue;
		view_slot_close(&fp->w, (int)i);
		any = true;
	}
	if (any && cmd)
		log_dbg(fp->srv, "fast path: view emptied after command %u",
			cmd);
}

static void resync_range(struct fastpath *fp, uint32_t ioas_id, uint64_t iova,
			 uint64_t length)
{
	int slot = view_slot_find(&fp->w, ioas_id);
	uint64_t last;

	if (slot < 0 || !length)
		return;
	last = iova + length - 1 < iova ? UINT64_MAX : iova + length - 1;
	resync(fp, slot, ioas_id, iova, last);
}

/* A batch: each entry mapped (the IOVAs are the reply's data). */
static void resync_batch(struct fastpath *fp, const struct fastpath_req *req,
			 const struct ioasid_op *op)
{
	const struct ioasid_map_entry *e = req->in;
	const uint64_t *iovas = op->out;
	uint32_t nr = req->in_len / (uint32_t)sizeof(*e);

	if (req->flags & IOASID_MAP_FIXED_IOVA) {
		for (uint32_t i = 0; i < nr; i++)
			resync_range(fp, req->ioas_id, e[i].iova,
				     e[i].length);
		return;
	}
	if (op->out_len < nr * sizeof(*iovas)) {
		/* not told where they went: everything of the IOAS */
		resync_range(fp, req->ioas_id, 0, UINT64_MAX);
		return;
	}
	for (uint32_t i = 0; i < nr; i++)
		resync_range(fp, req->ioas_id, iovas[i], e[i].length);
}

void fastpath_before(const struct ioasid_op *op, struct fastpath_req *req)
{
	*req = (struct fastpath_req){
		.cmd = op->cmd, .ioas_id = op->ioas_id, .iova = op->iova,
		.length = op->length, .flags = op->flags, .in = op->in,
		.in_len = op->in_len,
	};
}

void fastpath_after(struct fastpath *fp, const struct fastpath_req *req,
		    const struct ioasid_op *op, int result)
{
	int slot;

	if (!fp)
		return;
	switch (req->cmd) {
	/* cannot change a mapping */
	case IOASID_CMD_HELLO:
	case IOASID_CMD_VIEW:
	case IOASID_CMD_RING:
	case IOASID_CMD_FILE_REGISTER:
	case IOASID_CMD_FILE_UNREGISTER:
	case IOASID_CMD_SESSION_NAME:	/* a reclaim frees the view instead */
	case IOASID_CMD_SESSION_LIST:
	case IOASID_CMD_SESSION_DROP:	/* only lingering sessions */
	case IOASID_CMD_EVENTS_DROPPED:
	case IOASID_CMD_IOAS_SET_SNOOP:
	case IOASID_CMD_IOAS_INFO:
	case IOASID_CMD_IOAS_LIST:
	case IOASID_CMD_IOVA_RANGES:
	case IOASID_CMD_ALLOW_IOVAS:	/* allowed ranges, not mappings */
	case IOASID_CMD_FILE_INFO:
	case IOASID_CMD_CONVERT:	/* page states, not mappings */
	case IOASID_CMD_DIRTY_READ:
	case IOASID_CMD_DIRTY_START:	/* tracking state, not mappings */
	case IOASID_CMD_DIRTY_STOP:
	case IOASID_CMD_IOMMU_LIST:
	case IOASID_CMD_DEVICE_LIST:
	case IOASID_CMD_DEVICE_BIND:
	case IOASID_CMD_DEVICE_UNBIND:
	case IOASID_CMD_DEVICE_ATTACH:
	case IOASID_CMD_DEVICE_DETACH:
	case IOASID_CMD_DEVICE_REPLACE:
	case IOASID_CMD_DEVICE_DMA:
	case IOASID_CMD_DOMAIN_LIST:
	case IOASID_CMD_DEVICE_INFO:
	case IOASID_CMD_VM_BIND:
	case IOASID_CMD_VM_UNBIND:
	case IOASID_CMD_VM_INFO:
	case IOASID_CMD_VM_SET_POLICY:
	case IOASID_CMD_DEVICE_SET_VM:
	case IOASID_CMD_VM_LIST:
	case IOASID_CMD_DEVICE_GET_FD:
	case IOASID_CMD_FAULT_READ:
	case IOASID_CMD_SUBSCRIBE:
	case IOASID_CMD_STATUS:
	case IOASID_CMD_EVENT_READ:
	case IOASID_CMD_SIM_HOTPLUG:
	case IOASID_CMD_MAP_USER:	/* refused by ioasidd */
	/* nested tables: stage 1 is the guest's, the IOAS keeps its maps */
	case IOASID_CMD_NESTED_ALLOC:
	case IOASID_CMD_NESTED_DESTROY:
	case IOASID_CMD_NESTED_ATTACH:
	case IOASID_CMD_NESTED_INVALIDATE:
	case IOASID_CMD_NESTED_LIST:
	/* a device's PASIDs: attachments, not mappings */
	case IOASID_CMD_DEVICE_PASID_ATTACH:
	case IOASID_CMD_DEVICE_PASID_REPLACE:
	case IOASID_CMD_DEVICE_PASID_DETACH:
	case IOASID_CMD_DEVICE_PASID_LIST:
	case IOASID_CMD_DEVICE_DMA_PASID:
	case IOASID_CMD_DEVICE_PASID_ATTACH_NESTED:
	/* fault queues: page requests and their answers */
	case IOASID_CMD_FAULT_QUEUE_ALLOC:
	case IOASID_CMD_FAULT_QUEUE_DESTROY:
	case IOASID_CMD_FAULT_QUEUE_READ:
	case IOASID_CMD_FAULT_RESPOND:
	case IOASID_CMD_FAULT_QUEUE_INFO:
	case IOASID_CMD_FAULT_QUEUE_LIST:
	/* vIOMMUs: objects over a nest-parent IOAS, not its mappings */
	case IOASID_CMD_VIOMMU_ALLOC:
	case IOASID_CMD_VIOMMU_DESTROY:
	case IOASID_CMD_VDEVICE_ALLOC:
	case IOASID_CMD_VIOMMU_NESTED_ALLOC:
	case IOASID_CMD_VIOMMU_INVALIDATE:
	case IOASID_CMD_VIOMMU_LIST:
		return;
	case IOASID_CMD_LOOKUP:
	case IOASID_CMD_MAPPING_NEXT:
		/* the client asked the daemon: next time the view answers */
		if (!fp->observing &&
		    view_slot_find(&fp->w, req->ioas_id) < 0 &&
		    (result == 0 || ioas_exists(fp, req->ioas_id)))
			open_slot(fp, req->ioas_id, false);
		return;
	case IOASID_CMD_IOAS_ALLOC:
		if (result == 0)
			open_slot(fp, op->out_id, true);
		return;
	case IOASID_CMD_IOAS_DESTROY:
		slot = view_slot_find(&fp->w, req->ioas_id);
		if (result == 0 && slot >= 0)
			view_slot_close(&fp->w, slot);
		return;
	case IOASID_CMD_OBSERVE:
		if (result == 0)
			fp->observing = req->flags & 1;
		return;
	case IOASID_CMD_MAP_FILE:
	case IOASID_CMD_MAP_FILE_ID:
		if (result == 0)
			resync_range(fp, req->ioas_id, op->out_iova,
				     req->length);
		return;
	case IOASID_CMD_COPY:
		if (result == 0)
			resync_range(fp, req->ioas_id, op->out_iova,
				     req->length);
		return;
	case IOASID_CMD_MAP_BATCH:
		if (result == 0)
			resync_batch(fp, req, op);
		return;
	case IOASID_CMD_UNMAP:
		/*
		 * Even when it failed: a backend that could not unmap may
		 * have lost pieces (core/ioas.c, unmap_failed()).  Not after
		 * the refusals that come before anything is touched.
		 */
		if (result != -EINVAL && result != -EOVERFLOW &&
		    result != -EOPNOTSUPP && result != -ENOENT)
			resync_range(fp, req->ioas_id, req->iova,
				     req->length);
		return;
	}
	close_all(fp, req->cmd);
}
