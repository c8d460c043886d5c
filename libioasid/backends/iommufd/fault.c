/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's fault queues: IOMMU_FAULT_QUEUE_ALLOC gives a
 * FAULT object and its fd; the HWPTs of its target - every HWPT of an
 * IOAS, or a nested table's - carry IOMMU_HWPT_FAULT_ID_VALID and its
 * id, so the kernel delivers the page requests of the devices attached
 * to them to that fd (struct iommu_hwpt_pgfault, one per fault, groups
 * ending with IOMMU_PGFAULT_FLAGS_LAST_PAGE) and takes the answers
 * written to it (struct iommu_hwpt_page_response, the cookie of the
 * group).  A mock device's DMA to a page the IOAS lacks raises one
 * itself (IOMMU_TEST_OP_TRIGGER_IOPF) when its HWPT has a fault queue.
 *
 * The kernel takes the fault id when it allocates a HWPT, never later:
 * a queue given to a target that has HWPTs already gets new ones, with
 * its id, to which every device and PASID attached is moved by the
 * kernel's replace, and then the old HWPTs go (refault()).  Unhooking a
 * queue whose target stays is the same with no fault id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

struct be_fault {
	struct be_ioas *ioas;		/* the target, or its parent */
	struct be_nested *nested;	/* the target: a nested table */
	uint32_t id;			/* the kernel's FAULT object */
	int fd;				/* its fd */
};

/* ---- replacing a target's HWPTs ----------------------------------------- */

/* One HWPT replaced: where its id lives, the old and the new one. */
struct swap {
	uint32_t *hwpt_id;
	uint32_t old_id, new_id;
	struct be_domain *domain;	/* or the nested table's */
};

/* One attachment moved: a device (or its PASID) from old to new. */
struct move {
	struct be_device *dev;
	bool has_pasid;
	uint32_t pasid;
	uint32_t ioas_id;		/* where a mock's DMA access stays */
	const struct swap *to;
};

struct refault {
	struct be_tenant *t;
	uint32_t fault_id;		/* what the new HWPTs carry, or 0 */
	struct swap *swaps;
	uint32_t nr_swaps;
	struct move *moves;
	uint32_t nr_moves, cap_moves;
	char *why;
	size_t whylen;
};

static int add_move(struct refault *rf, struct be_device *dev, bool has_pasid,
		    uint32_t pasid, uint32_t ioas_id, const struct swap *to)
{
	struct move *m;

	if (rf->nr_moves == rf->cap_moves) {
		uint32_t cap = rf->cap_moves ? 2 * rf->cap_moves : 8;

		m = realloc(rf->moves, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		rf->moves = m;
		rf->cap_moves = cap;
	}
	rf->moves[rf->nr_moves++] = (struct move){
		.dev = dev, .has_pasid = has_pasid, .pasid = pasid,
		.ioas_id = ioas_id, .to = to,
	};
	return 0;
}

static const struct swap *swap_of(const struct refault *rf,
				  const struct be_domain *d)
{
	for (uint32_t i = 0; d && i < rf->nr_swaps; i++)
		if (rf->swaps[i].domain == d)
			return &rf->swaps[i];
	return NULL;
}

/* Who is attached to the HWPTs replaced: an IOAS's devices and PASIDs. */
static int collect_ioas(struct refault *rf, struct be_ioas *ioas)
{
	const struct swap *sw;
	int r = 0;

	for (struct be_device *dev = rf->t->devices; dev && !r;
	     dev = dev->next) {
		sw = dev->nested ? NULL : swap_of(rf, dev->domain);
		if (sw)
			r = add_move(rf, dev, false, 0, ioas->id, sw);
		for (uint32_t i = 0; !r && i < dev->nr_pasids; i++) {
			/* a PASID on a nested table stays on its HWPT */
			sw = dev->pasids[i].nested ? NULL :
			     swap_of(rf, dev->pasids[i].domain);
			if (sw)
				r = add_move(rf, dev, true,
					     dev->pasids[i].pasid, ioas->id,
					     sw);
		}
	}
	return r;
}

/* A move to @hwpt_id; the test hook may make it name no HWPT. */
static int move_to(struct refault *rf, const struct move *m,
		   uint32_t hwpt_id, bool forward)
{
	struct backend *be = rf->t->be;

	if (forward && be->refault_fail_move &&
	    !--be->refault_fail_move)
		hwpt_id = 0;		/* no object: the kernel refuses */
	if (m->has_pasid)
		return iommufd_pasid_move(m->dev, m->pasid, hwpt_id);
	return iommufd_attach_pt(m->dev, hwpt_id, m->ioas_id);
}

/*
 * The device whose move the kernel refused is on its old HWPT as far as
 * iommufd goes, and a well-behaved driver left it there; VT-d's
 * intel_iommu_attach_device() (Linux 7.3) blocks translation before the
 * checks that refuse (a device without PRI on a HWPT with a fault
 * queue), and the IOMMU core does not put the failing device back.  So
 * on VT-d the device is attached to its old HWPT afresh (detach, then
 * attach: DMA in between is blocked, as it was since the refusal).
 */
static void put_back_refused(struct refault *rf, const struct move *m)
{
	struct kvfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
	struct kvfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .pt_id = m->to->old_id,
	};

	if (m->has_pasid || m->dev->mock ||
	    m->dev->hw_type != IFD_HW_INFO_TYPE_INTEL_VTD)
		return;
	if (kioctl(m->dev->fd, KVFIO_DEVICE_DETACH_IOMMUFD_PT, &d) < 0 ||
	    kioctl(m->dev->fd, KVFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) < 0)
		err(rf->t->be->log, "iommufd: %s could not be attached to "
		    "HWPT %u again after the refused move: it may be blocked",
		    m->dev->inv->info.name, m->to->old_id);
}

static void destroy_new(struct refault *rf, uint32_t nr)
{
	for (uint32_t i = 0; i < nr; i++)
		iommufd_destroy(rf->t, rf->swaps[i].new_id, "HWPT");
}

/*
 * Replace every HWPT in rf->swaps (new_id allocated) by its new one:
 * move each attachment, then destroy the old HWPTs.  All or nothing:
 * on a refusal the moved ones go back, the new HWPTs go.
 */
static int swap_all(struct refault *rf)
{
	uint32_t done = 0;
	int r = 0;

	for (; done < rf->nr_moves; done++) {
		r = move_to(rf, &rf->moves[done], rf->moves[done].to->new_id,
			    true);
		if (r < 0)
			break;
	}
	if (r < 0) {
		const struct move *m = &rf->moves[done];

		snprintf(rf->why, rf->whylen, "the kernel refused to move %s%s "
			 "to the new HWPT: %s", m->dev->inv->info.name,
			 m->has_pasid ? "'s PASID" : "", strerror(-r));
		put_back_refused(rf, m);
		while (done--) {
			m = &rf->moves[done];
			if (move_to(rf, m, m->to->old_id, false) < 0)
				err(rf->t->be->log, "iommufd: %s could not be "
				    "put back on HWPT %u",
				    m->dev->inv->info.name, m->to->old_id);
		}
		destroy_new(rf, rf->nr_swaps);
		return r;
	}
	for (uint32_t i = 0; i < rf->nr_swaps; i++) {
		iommufd_destroy(rf->t, rf->swaps[i].old_id, "HWPT");
		*rf->swaps[i].hwpt_id = rf->swaps[i].new_id;
		if (rf->swaps[i].domain)
			rf->swaps[i].domain->fault = rf->fault_id != 0;
	}
	return 0;
}

static uint32_t fault_id_for_test(struct refault *rf)
{
	struct backend *be = rf->t->be;

	if (be->refault_bad_fault_id) {
		be->refault_bad_fault_id = false;
		return UINT32_MAX;	/* no such FAULT: ENOENT */
	}
	return rf->fault_id;
}

/* Every HWPT of @ioas gets FAULT @fault_id (0: none). */
static int refault_ioas(struct refault *rf, struct be_ioas *ioas)
{
	uint32_t nr = 0, i = 0;
	int r;

	for (struct be_domain *d = ioas->domains; d; d = d->next) {
		if (d->dirty) {
			snprintf(rf->why, rf->whylen, "HWPT %u tracks dirty "
				 "pages: the bits not read yet would be lost "
				 "with it", d->hwpt_id);
			return -EBUSY;
		}
		nr++;
	}
	if (!nr)
		return 0;
	rf->swaps = calloc(nr, sizeof(*rf->swaps));
	if (!rf->swaps)
		return -ENOMEM;
	for (struct be_domain *d = ioas->domains; d; d = d->next, i++) {
		rf->swaps[i] = (struct swap){
			.hwpt_id = &d->hwpt_id, .old_id = d->hwpt_id,
			.domain = d,
		};
		r = iommufd_domain_hwpt(d, fault_id_for_test(rf),
					&rf->swaps[i].new_id);
		if (r < 0) {
			snprintf(rf->why, rf->whylen, "IOMMU_HWPT_ALLOC of a "
				 "HWPT to replace HWPT %u: %s", d->hwpt_id,
				 strerror(-r));
			destroy_new(rf, i);
			return r;
		}
	}
	rf->nr_swaps = nr;
	r = collect_ioas(rf, ioas);
	if (r < 0) {
		destroy_new(rf, nr);
		return r;
	}
	return swap_all(rf);
}

/* Nested table @n's HWPT gets FAULT @fault_id (0: none). */
static int refault_nested(struct refault *rf, struct be_nested *n)
{
	struct be_device *alloc_dev = NULL;
	int r = 0;

	rf->swaps = calloc(1, sizeof(*rf->swaps));
	if (!rf->swaps)
		return -ENOMEM;
	rf->swaps[0] = (struct swap){
		.hwpt_id = &n->hwpt_id, .old_id = n->hwpt_id,
	};
	for (struct be_device *dev = rf->t->devices; dev && !r;
	     dev = dev->next) {
		if (dev->nested == n) {
			alloc_dev = dev;
			r = add_move(rf, dev, false, 0, n->parent->ioas->id,
				     &rf->swaps[0]);
		}
		/* and its PASIDs on the table */
		for (uint32_t i = 0; !r && i < dev->nr_pasids; i++) {
			if (dev->pasids[i].nested != n)
				continue;
			alloc_dev = alloc_dev ? alloc_dev : dev;
			r = add_move(rf, dev, true, dev->pasids[i].pasid,
				     n->parent->ioas->id, &rf->swaps[0]);
		}
	}
	if (r < 0)
		return r;
	if (!alloc_dev)
		alloc_dev = iommufd_device_on(rf->t, n->parent->unit);
	if (!alloc_dev) {
		snprintf(rf->why, rf->whylen, "no device behind %s is bound to "
			 "allocate the nested table's new HWPT for",
			 n->parent->unit->info.name);
		return -ENODEV;
	}
	r = iommufd_nested_hwpt(n, alloc_dev, fault_id_for_test(rf),
				&rf->swaps[0].new_id);
	if (r < 0) {
		snprintf(rf->why, rf->whylen, "IOMMU_HWPT_ALLOC of a nested "
			 "HWPT to replace HWPT %u: %s", n->hwpt_id,
			 strerror(-r));
		return r;
	}
	rf->nr_swaps = 1;
	return swap_all(rf);
}

static int refault(struct be_tenant *t, struct be_ioas *ioas,
		   struct be_nested *nested, uint32_t fault_id, char *why,
		   size_t whylen)
{
	struct refault rf = {
		.t = t, .fault_id = fault_id, .why = why, .whylen = whylen,
	};
	int r = nested ? refault_nested(&rf, nested) :
			 refault_ioas(&rf, ioas);

	if (r == -ENOMEM && !why[0])
		snprintf(why, whylen, "out of memory");
	if (r == 0 && rf.nr_swaps)
		dbg(t->be->log, "iommufd: %u HWPT(s) replaced by ones %s "
		    "FAULT %u, %u attachment(s) moved", rf.nr_swaps,
		    fault_id ? "with" : "without", fault_id ? fault_id :
		    nested && nested->fault ? nested->fault->id :
		    ioas->fault ? ioas->fault->id : 0, rf.nr_moves);
	free(rf.swaps);
	free(rf.moves);
	return r;
}

/* ---- the queues ---------------------------------------------------------- */

static int destroy_quiet(struct be_tenant *t, uint32_t id)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };

	return kioctl(t->fd, IFD_DESTROY, &d);
}

/* The FAULT objects the kernel let go since: forgotten. */
static void reap_dead(struct be_tenant *t)
{
	uint32_t i = 0;

	while (i < t->nr_dead_faults) {
		if (destroy_quiet(t, t->dead_faults[i]) == -EBUSY)
			i++;
		else
			t->dead_faults[i] = t->dead_faults[--t->nr_dead_faults];
	}
}

void iommufd_fault_bury(struct be_tenant *t, uint32_t id)
{
	uint32_t *v;

	/* a hand-over given up leaves the predecessor's objects alone */
	if (t->adopting || destroy_quiet(t, id) != -EBUSY)
		return;
	v = realloc(t->dead_faults, (t->nr_dead_faults + 1) * sizeof(*v));
	if (!v) {
		/* it goes with the session's iommufd */
		dbg(t->be->log, "iommufd: FAULT %u kept until the session "
		    "ends", id);
		return;
	}
	t->dead_faults = v;
	t->dead_faults[t->nr_dead_faults++] = id;
}

int iommufd_fault_alloc(struct be_ioas *ioas, struct be_nested *nested,
			struct be_fault **out, int *fd, char *why,
			size_t whylen)
{
	struct ifd_fault_alloc a = { .size = sizeof(a) };
	struct be_fault *f;
	int r;

	if (!nested && ioas->nest_parent) {
		snprintf(why, whylen, "the kernel takes no fault queue on a "
			 "nest-parent HWPT");
		return -EOPNOTSUPP;
	}
	if (nested ? nested->fault != NULL : ioas->fault != NULL)
		return -EEXIST;
	reap_dead(ioas->tenant);
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = kioctl(ioas->tenant->fd, IFD_FAULT_QUEUE_ALLOC, &a);
	if (r < 0) {
		snprintf(why, whylen, "IOMMU_FAULT_QUEUE_ALLOC: %s",
			 strerror(-r));
		free(f);
		return r;
	}
	f->ioas = ioas;
	f->nested = nested;
	f->id = a.out_fault_id;
	f->fd = (int)a.out_fault_fd;
	if (fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (*fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		r = -errno;
		snprintf(why, whylen, "the fault fd: %s", strerror(-r));
		goto fail;
	}
	/* the HWPTs that exist already: replaced by ones that carry it */
	r = refault(ioas->tenant, ioas, nested, f->id, why, whylen);
	if (r < 0) {
		close(*fd);
		goto fail;
	}
	if (nested)
		nested->fault = f;
	else
		ioas->fault = f;
	*out = f;
	return 0;
fail:
	close(f->fd);
	iommufd_fault_bury(ioas->tenant, f->id);
	free(f);
	return r;
}

uint32_t iommufd_fault_id(const struct be_ioas *ioas)
{
	return ioas->fault ? ioas->fault->id : 0;
}

uint32_t iommufd_fault_kobj_id(const struct be_fault *f)
{
	return f->id;
}

/* ---- a predecessor's queue (ioasid_ctx_import, ioasidd's upgrade) ------- */

/*
 * The kernel names the fd of every FAULT object "[iommufd-pgfault]"
 * (anon_inode_getfile()); an eventfd or another anonymous file shares
 * its inode, so the name is what tells them apart.
 */
static int check_fault_fd(int fd, char *why, size_t whylen)
{
	static const char want[] = "anon_inode:[iommufd-pgfault]";
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		snprintf(why, whylen, "its descriptor %d: %s", fd,
			 strerror(errno));
		return -EBADF;
	}
	link[n] = 0;
	if (strcmp(link, want)) {
		snprintf(why, whylen, "its descriptor %d is %s, not a fault "
			 "fd (%s)", fd, link, want);
		return -EINVAL;
	}
	return 0;
}

/*
 * Does the kernel have FAULT @id in this iommufd?  It answers no lookup
 * of it but the one IOMMU_HWPT_ALLOC makes (ENOENT unless the id is a
 * FAULT object): a HWPT like one of the target's with it, destroyed
 * again.  A target without HWPTs is not asked (its first attach is).
 * Which fd belongs to which FAULT object the kernel does not say.
 */
static int check_fault_id(struct be_ioas *ioas, struct be_nested *nested,
			  uint32_t id, char *why, size_t whylen)
{
	struct be_tenant *t = ioas->tenant;
	struct be_device *dev = NULL;
	uint32_t hwpt = 0;
	int r = 0;

	if (nested) {
		for (dev = t->devices; dev && dev->nested != nested;
		     dev = dev->next)
			;
		if (!dev)
			dev = iommufd_device_on(t, nested->parent->unit);
		r = dev ? iommufd_nested_hwpt(nested, dev, id, &hwpt) : 0;
	} else if (ioas->domains) {
		r = iommufd_domain_hwpt(ioas->domains, id, &hwpt);
	}
	if (r < 0) {
		snprintf(why, whylen, "FAULT %u: IOMMU_HWPT_ALLOC with it: %s "
			 "(no such fault object in the session's iommufd?)",
			 id, strerror(-r));
		return r;
	}
	/* iommufd_destroy() leaves everything alone while adopting */
	if (hwpt && destroy_quiet(t, hwpt) < 0)
		dbg(t->be->log, "iommufd: HWPT %u (hand-over check) stays "
		    "until the session ends", hwpt);
	return 0;
}

/* Do the target's HWPTs carry FAULT @id (adopted with it)? */
static bool hwpts_carry(struct be_ioas *ioas, struct be_nested *nested,
			uint32_t id)
{
	if (nested)
		return nested->adopted_fault == id;
	for (struct be_domain *d = ioas->domains; d; d = d->next)
		if (d->adopted_fault != id)
			return false;
	return true;
}

int iommufd_fault_adopt(struct be_ioas *ioas, struct be_nested *nested,
			int carried_fd, struct be_fault **out, int *fd,
			char *why, size_t whylen)
{
	struct be_tenant *t = ioas->tenant;
	struct be_fault *f;
	struct be_kobj k;
	int r;

	if (!iommufd_adopt_take(t, BE_KOBJ_FAULT, &k) || !k.id[0]) {
		snprintf(why, whylen, "the image names no kernel FAULT object "
			 "for it");
		return -EINVAL;
	}
	if (nested ? nested->fault != NULL : ioas->fault != NULL)
		return -EEXIST;
	r = check_fault_fd(carried_fd, why, whylen);
	if (r == 0)
		r = check_fault_id(ioas, nested, k.id[0], why, whylen);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	*f = (struct be_fault){
		.ioas = ioas, .nested = nested, .id = k.id[0],
		.fd = fcntl(carried_fd, F_DUPFD_CLOEXEC, 3),
	};
	*fd = -1;
	if (f->fd < 0 ||
	    fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (*fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		r = -errno;
		snprintf(why, whylen, "the fault fd: %s", strerror(-r));
		goto fail;
	}
	if (!hwpts_carry(ioas, nested, f->id)) {
		/*
		 * One was made again, without it: replaced by ones with it
		 * (the old ones stay until the session ends: nothing is
		 * destroyed while adopting, so that a replay given up
		 * leaves the predecessor's objects as they were).
		 */
		r = refault(t, ioas, nested, f->id, why, whylen);
		if (r < 0)
			goto fail;
		iommufd_adopt_lost(t, "FAULT %u: the HWPTs made again got it "
				   "by a replace", f->id);
	}
	if (nested) {
		nested->fault = f;
	} else {
		ioas->fault = f;
		for (struct be_domain *d = ioas->domains; d; d = d->next)
			d->fault = true;
	}
	dbg(t->be->log, "iommufd: adopted FAULT %u of %s %u", f->id,
	    nested ? "nested HWPT" : "IOAS",
	    nested ? nested->hwpt_id : ioas->id);
	*out = f;
	return 0;
fail:
	if (*fd >= 0)
		close(*fd);
	if (f->fd >= 0)
		close(f->fd);
	free(f);		/* the predecessor's object: left alone */
	return r;
}

/*
 * The target stays: its HWPTs are replaced by ones without the fault id
 * (the core checked nothing is attached to it; an IOAS then has none),
 * so that the FAULT object can go and no later device's page request
 * reaches it.
 */
int iommufd_fault_unhook(struct be_fault *f, char *why, size_t whylen)
{
	int r = refault(f->ioas->tenant, f->ioas, f->nested, 0, why, whylen);

	if (r < 0)
		return r;
	if (f->nested)
		f->nested->fault = NULL;
	else if (f->ioas->fault == f)
		f->ioas->fault = NULL;
	f->nested = NULL;		/* ->fault_free: nothing holds it */
	return 0;
}

void iommufd_fault_free(struct be_fault *f)
{
	struct be_tenant *t = f->ioas->tenant;

	close(f->fd);
	if (f->nested && f->nested->fault == f) {
		/* its table goes after it (and holds it): then it goes */
		f->nested->fault = NULL;
		f->nested->dead_fault = f->id;
		free(f);
		return;
	}
	if (!f->nested && f->ioas->fault == f)
		f->ioas->fault = NULL;
	/* the caller's descriptor may still be open: then later */
	reap_dead(t);
	iommufd_fault_bury(t, f->id);
	free(f);
}

static uint32_t core_id_of(struct be_tenant *t, uint32_t kernel_id)
{
	for (struct be_device *d = t->devices; d; d = d->next)
		if (d->dev_id == kernel_id)
			return d->core_id;
	return 0;
}

int iommufd_fault_read(struct be_fault *f, struct ioasid_page_request *out,
		       uint32_t cap, uint32_t *n)
{
	struct ifd_hwpt_pgfault buf[64];
	uint32_t want = cap < 64 ? cap : 64;
	ssize_t got;

	*n = 0;
	got = read(f->fd, buf, want * sizeof(buf[0]));
	if (got < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (uint32_t i = 0; i < (uint32_t)got / sizeof(buf[0]); i++) {
		const struct ifd_hwpt_pgfault *k = &buf[i];

		out[i] = (struct ioasid_page_request){
			.size = sizeof(out[i]),
			.flags = k->flags & IFD_PGFAULT_FLAGS_PASID_VALID ?
				 IOASID_PAGE_REQUEST_PASID : 0,
			.dev_id = core_id_of(f->ioas->tenant, k->dev_id),
			.pasid = k->pasid,
			.addr = k->addr & ~(uint64_t)4095,
			.perm = (k->perm & IFD_PGFAULT_PERM_READ ?
				 IOASID_MAP_READ : 0) |
				(k->perm & IFD_PGFAULT_PERM_WRITE ?
				 IOASID_MAP_WRITE : 0),
			.cookie = k->cookie,
		};
		(*n)++;
	}
	return 0;
}

int iommufd_fault_respond(struct be_fault *f, uint32_t cookie, uint32_t code)
{
	struct ifd_hwpt_page_response resp = { .cookie = cookie, .code = code };
	ssize_t r = write(f->fd, &resp, sizeof(resp));

	if (r == (ssize_t)sizeof(resp))
		return 0;
	/* the kernel: EINVAL for a cookie it has no group of */
	return r < 0 && errno == EINVAL ? -ENOENT : r < 0 ? -errno : -EIO;
}

/* A mock device's DMA found @iova not present: its page request. */
int iommufd_mock_page_request(struct be_device *dev, struct be_domain *d,
			      bool has_pasid, uint32_t pasid, uint64_t iova,
			      uint32_t flags)
{
	struct ifd_test_cmd c = { .op = IFD_TEST_OP_TRIGGER_IOPF };
	const struct be_nested *n = has_pasid ?
				    iommufd_pasid_nested(dev, pasid) :
				    dev->nested;
	bool queue = n ? n->fault != NULL : d && d->ioas->fault && d->fault;

	if (!queue)
		return -ENOENT;		/* no queue: a fault */
	c.trigger_iopf.dev_id = dev->dev_id;
	c.trigger_iopf.pasid = has_pasid ? pasid : 0;
	c.trigger_iopf.grpid = 1;
	c.trigger_iopf.perm = flags & IOASID_DMA_WRITE ?
			      IFD_PGFAULT_PERM_WRITE : IFD_PGFAULT_PERM_READ;
	c.trigger_iopf.addr = iova & ~(uint64_t)4095;
	return iommufd_mock_cmd(dev->tenant, &c);
}
