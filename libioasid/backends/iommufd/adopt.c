/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iommufd backend: handing the kernel objects to a successor process
 * (ioasid_ctx_export/import, ioasidd's live upgrade and crash survival).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

/* ---- hand-over: a successor adopts the kernel objects --------------------- */

/*
 * The kernel objects live as long as their iommufd is open, in whichever
 * process.  A successor (an exec'd VMM with ioasid_ctx_import(), ioasidd
 * after an upgrade) gets the descriptors and replays the image; each
 * allocation the replay makes takes the announced object over after
 * asking the kernel that it is still there (IOMMU_IOAS_IOVA_RANGES for an
 * IOAS, IOMMU_GET_HW_INFO for a device, the attach itself for a HWPT: a
 * replace by the same HWPT changes nothing), and each mapping is checked
 * with IOMMU_IOAS_COPY into an empty IOAS (it fails unless the range is
 * wholly mapped; an IOAS without HWPTs pins nothing).  A nested HWPT and
 * a vIOMMU are checked with an IOMMU_HWPT_INVALIDATE of no entries (the
 * kernel looks the object up and its driver checks the data type), a
 * vDEVICE with the IOMMU_VDEVICE_ALLOC it would take (EEXIST: the device
 * still has one there), a PASID by its attach (a replace by the same
 * HWPT, pasid.c).  What the kernel no longer has is made again and
 * counted; nothing is ever unmapped, so the devices' DMA goes on.
 */

static void vnote_lost(struct be_tenant *t, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void vnote_lost(struct be_tenant *t, const char *fmt, va_list ap)
{
	size_t len = strlen(t->lost);

	t->nr_rebuilt++;
	if (len + 2 >= sizeof(t->lost))
		return;
	if (len)
		t->lost[len++] = ';', t->lost[len++] = ' ';
	t->lost[len] = 0;
	vsnprintf(t->lost + len, sizeof(t->lost) - len, fmt, ap);
}

static void note_lost(struct be_tenant *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note_lost(struct be_tenant *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote_lost(t, fmt, ap);
	va_end(ap);
}

void iommufd_adopt_lost(struct be_tenant *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote_lost(t, fmt, ap);
	va_end(ap);
}

int iommufd_kobj(const void *obj, uint32_t kind, struct be_kobj *out)
{
	*out = (struct be_kobj){ .kind = kind, .fd = { -1, -1 } };
	switch (kind) {
	case BE_KOBJ_TENANT:
		out->fd[0] = ((const struct be_tenant *)obj)->fd;
		return 0;
	case BE_KOBJ_IOAS:
		out->id[0] = ((const struct be_ioas *)obj)->id;
		return 0;
	case BE_KOBJ_DOMAIN: {
		const struct be_domain *d = obj;

		out->id[0] = d->hwpt_id;
		out->id[1] = d->dirty ? IOMMUFD_KOBJ_DOMAIN_DIRTY : 0;
		/* the FAULT object it was allocated with */
		if (d->fault && iommufd_fault_id(d->ioas)) {
			out->id[1] |= IOMMUFD_KOBJ_DOMAIN_FAULT;
			out->id[2] = iommufd_fault_id(d->ioas);
		}
		return 0;
	}
	case BE_KOBJ_NESTED: {
		const struct be_nested *n = obj;

		out->id[0] = n->hwpt_id;
		/* the FAULT object its HWPT carries */
		out->id[1] = n->fault ? iommufd_fault_kobj_id(n->fault) : 0;
		return 0;
	}
	case BE_KOBJ_FAULT:
		out->id[0] = iommufd_fault_kobj_id(obj);
		return 0;
	case BE_KOBJ_VIOMMU:
		out->id[0] = iommufd_test_viommu_id(obj);
		return 0;
	case BE_KOBJ_VDEVICE:
		out->id[0] = iommufd_test_vdevice_id(obj);
		return 0;
	case BE_KOBJ_DEVICE: {
		const struct be_device *dev = obj;

		out->id[0] = dev->dev_id;
		if (dev->mock) {
			out->id[1] = dev->stdev_id;
			out->id[2] = dev->park_hwpt;
			out->id[3] = dev->tenant->park_ioas;
			out->fd[0] = dev->access_fd;
		} else {
			out->fd[0] = dev->fd;
		}
		return 0;
	}
	}
	return -EINVAL;
}

int iommufd_adopt(struct backend *be, struct be_tenant *t,
			 const struct be_kobj *k)
{
	int fd;

	(void)be;
	if (k->kind < BE_KOBJ_TENANT || k->kind > BE_KOBJ_LAST)
		return -EINVAL;
	t->adopting = true;
	if (k->kind != BE_KOBJ_TENANT) {
		t->pending[k->kind] = *k;
		return 0;
	}
	if (t->devices || t->nr_parked)
		return -EBUSY;
	fd = fcntl(k->fd[0], F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	if (iommufd_probe(fd, NULL, 0) < 0) {
		close(fd);
		note_lost(t, "the session's iommufd is not one");
		return -EBADF;
	}
	close(t->fd);
	t->fd = fd;
	return 0;
}

static bool take_pending(struct be_tenant *t, uint32_t kind,
			 struct be_kobj *k)
{
	if (!t || !t->adopting || t->pending[kind].kind != kind)
		return false;
	*k = t->pending[kind];
	t->pending[kind].kind = 0;
	return true;
}

bool iommufd_adopt_take(struct be_tenant *t, uint32_t kind,
			struct be_kobj *k)
{
	return take_pending(t, kind, k);
}

/* Does the kernel still have nested HWPT or vIOMMU @id (no entries)? */
static int check_invalidate(struct be_tenant *t, uint32_t id,
			    uint32_t data_type)
{
	struct ifd_hwpt_invalidate inv = {
		.size = sizeof(inv), .hwpt_id = id, .data_type = data_type,
	};

	return kioctl(t->fd, IFD_HWPT_INVALIDATE, &inv);
}

bool iommufd_adopt_nested(struct be_tenant *t, struct be_nested *n)
{
	uint32_t type = n->type == IOASID_NESTED_SELFTEST ?
			IFD_HWPT_INVALIDATE_DATA_SELFTEST :
			IFD_HWPT_INVALIDATE_DATA_VTD_S1;
	struct be_kobj k;
	int r;

	if (!take_pending(t, BE_KOBJ_NESTED, &k) || !k.id[0])
		return false;
	r = check_invalidate(t, k.id[0], type);
	if (r < 0) {
		note_lost(t, "nested HWPT %u: %s", k.id[0], strerror(-r));
		return false;
	}
	n->hwpt_id = k.id[0];
	n->adopted_fault = k.id[1];	/* ->fault_adopt checks it */
	return true;
}

bool iommufd_adopt_viommu(struct be_tenant *t, uint32_t *viommu_id)
{
	struct be_kobj k;
	int r;

	if (!take_pending(t, BE_KOBJ_VIOMMU, &k) || !k.id[0])
		return false;
	r = check_invalidate(t, k.id[0], IFD_VIOMMU_INVALIDATE_DATA_SELFTEST);
	if (r < 0) {
		note_lost(t, "vIOMMU %u: %s", k.id[0], strerror(-r));
		return false;
	}
	*viommu_id = k.id[0];
	return true;
}

bool iommufd_adopt_vdevice(struct be_tenant *t, uint32_t viommu_id,
			   uint32_t dev_id, uint64_t virt_id, uint32_t *id)
{
	struct ifd_vdevice_alloc a = {
		.size = sizeof(a), .viommu_id = viommu_id, .dev_id = dev_id,
		.virt_id = virt_id,
	};
	struct be_kobj k;
	int r;

	if (!take_pending(t, BE_KOBJ_VDEVICE, &k) || !k.id[0])
		return false;
	/* the kernel gives a device one vDEVICE: EEXIST, it still has it */
	r = kioctl(t->fd, IFD_VDEVICE_ALLOC, &a);
	if (r == -EEXIST) {
		*id = k.id[0];
		return true;
	}
	if (r == 0) {
		/* it had lost it: this one is the new one, counted */
		note_lost(t, "vDEVICE %u: gone, made again", k.id[0]);
		*id = a.out_vdevice_id;
		return true;
	}
	note_lost(t, "vDEVICE %u: IOMMU_VDEVICE_ALLOC: %s", k.id[0],
		  strerror(-r));
	return false;
}

bool iommufd_adopt_ioas(struct be_tenant *t, struct be_ioas *ioas)
{
	struct ifd_ioas_iova_ranges q = { .size = sizeof(q) };
	struct be_kobj k;
	int r;

	if (!take_pending(t, BE_KOBJ_IOAS, &k))
		return false;
	q.ioas_id = k.id[0];
	r = kioctl(t->fd, IFD_IOAS_IOVA_RANGES, &q);
	if (r < 0 && r != -EMSGSIZE) {
		note_lost(t, "IOAS %u: %s", k.id[0], strerror(-r));
		return false;
	}
	ioas->id = k.id[0];
	ioas->adopted = true;
	return true;
}

bool iommufd_adopt_domain(struct be_tenant *t, struct be_domain *d)
{
	struct be_kobj k;

	if (!take_pending(t, BE_KOBJ_DOMAIN, &k) || !k.id[0])
		return false;
	/* checked by the attach that follows (a replace by itself) */
	d->hwpt_id = k.id[0];
	/*
	 * Tracking already: the DIRTY_START replayed after it leaves the
	 * HWPT as it is (turning it on again would clear its bits).
	 */
	d->dirty = k.id[1] & IOMMUFD_KOBJ_DOMAIN_DIRTY;
	/* with a fault queue: its FAULT_QUEUE_ALLOC, later, checks it */
	d->adopted_fault = k.id[1] & IOMMUFD_KOBJ_DOMAIN_FAULT ? k.id[2] : 0;
	return true;
}

bool iommufd_adopt_device(struct be_tenant *t, struct be_device *dev)
{
	bool mock = dev->inv->info.flags & IOASID_DEVICE_MOCK;
	struct ifd_hw_info hi = { .size = sizeof(hi) };
	struct be_kobj k;
	int r, fd;

	if (!take_pending(t, BE_KOBJ_DEVICE, &k))
		return false;
	hi.dev_id = k.id[0];
	r = kioctl(t->fd, IFD_GET_HW_INFO, &hi);
	if (r < 0) {
		note_lost(t, "device %s (dev_id %u): %s", dev->inv->info.name,
			  k.id[0], strerror(-r));
		return false;
	}
	if (k.fd[0] < 0 && (mock || dev->fd < 0)) {
		note_lost(t, "device %s: no descriptor", dev->inv->info.name);
		return false;
	}
	fd = k.fd[0] >= 0 ? fcntl(k.fd[0], F_DUPFD_CLOEXEC, 3) : -1;
	if (k.fd[0] >= 0 && fd < 0) {
		note_lost(t, "device %s: %s", dev->inv->info.name,
			  strerror(errno));
		return false;
	}
	dev->dev_id = k.id[0];
	if (mock) {
		if (!t->nr_parked++)
			t->park_ioas = k.id[3];
		dev->mock = true;
		dev->stdev_id = k.id[1];
		dev->park_hwpt = k.id[2];
		dev->access_fd = fd;
		pthread_mutex_init(&dev->fault_lock, NULL);
	} else if (fd >= 0) {
		if (dev->fd >= 0)
			close(fd);	/* the core's own is the same file */
		else
			dev->fd = fd, dev->own_fd = true;
	}
	return true;
}

int iommufd_adopt_map(struct be_ioas *ioas, const struct kmap_entry *e,
		      uint32_t flags)
{
	struct be_tenant *t = ioas->tenant;
	struct ifd_ioas_copy c = {
		.size = sizeof(c), .flags = flags, .src_ioas_id = ioas->id,
		.length = e->length, .dst_iova = e->iova, .src_iova = e->iova,
	};
	struct ifd_ioas_unmap u = { .size = sizeof(u) };
	int r;

	if (!t->check_ioas) {
		struct ifd_ioas_alloc a = { .size = sizeof(a) };

		r = kioctl(t->fd, IFD_IOAS_ALLOC, &a);
		if (r < 0)
			return r;
		t->check_ioas = a.out_ioas_id;
	}
	c.dst_ioas_id = t->check_ioas;
	r = traced(t, IOMMUFD_CALL_COPY, IFD_IOAS_COPY, &c);
	if (r < 0) {
		note_lost(t, "IOAS %u 0x%llx+0x%llx: %s", ioas->id,
			  (unsigned long long)e->iova,
			  (unsigned long long)e->length, strerror(-r));
		return r;	/* mapped again by the caller */
	}
	u.ioas_id = t->check_ioas;
	u.iova = e->iova;
	u.length = e->length;
	r = kioctl(t->fd, IFD_IOAS_UNMAP, &u);
	if (r < 0) {
		/* a check IOAS holding pages is harmless: dropped at the end */
		iommufd_destroy(t, t->check_ioas, "IOAS (hand-over check)");
		t->check_ioas = 0;
	}
	return 0;
}

int iommufd_adopt_end(struct be_tenant *t, char *why, size_t len)
{
	struct ifd_ioas_change_process cp = { .size = sizeof(cp) };
	int r;

	if (!t->adopting)
		return 0;
	t->adopting = false;
	memset(t->pending, 0, sizeof(t->pending));
	if (t->check_ioas)
		iommufd_destroy(t, t->check_ioas, "IOAS (hand-over check)");
	t->check_ioas = 0;
	/*
	 * Pinned pages are charged to the process that mapped them; move the
	 * charge here.  The kernel takes only IOMMU_IOAS_MAP_FILE mappings
	 * (EINVAL when one was mapped by address: nothing is moved then).
	 */
	r = kioctl(t->fd, IFD_IOAS_CHANGE_PROCESS, &cp);
	if (r < 0)
		note_lost(t, "pinned-page accounting stays with the "
			  "predecessor: IOMMU_IOAS_CHANGE_PROCESS: %s%s",
			  strerror(-r), r == -EINVAL ? " (a mapping by "
			  "address)" : r == -ENOTTY ? " (Linux before 6.13)" :
			  "");
	snprintf(why, len, "%s", t->lost);
	r = (int)t->nr_rebuilt;
	t->nr_rebuilt = 0;
	t->lost[0] = 0;
	return r;
}
