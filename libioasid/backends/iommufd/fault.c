/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend's fault queues: IOMMU_FAULT_QUEUE_ALLOC gives a
 * FAULT object and its fd; the IOAS's HWPTs allocated from then on carry
 * IOMMU_HWPT_FAULT_ID_VALID and its id, so the kernel delivers the page
 * requests of the devices attached to them to that fd (struct
 * iommu_hwpt_pgfault, one per fault, groups ending with
 * IOMMU_PGFAULT_FLAGS_LAST_PAGE) and takes the answers written to it
 * (struct iommu_hwpt_page_response, the cookie of the group).  A mock
 * device's DMA to a page the IOAS lacks raises one itself
 * (IOMMU_TEST_OP_TRIGGER_IOPF) when its HWPT has a fault queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

struct be_fault {
	struct be_ioas *ioas;
	uint32_t id;			/* the kernel's FAULT object */
	int fd;				/* its fd */
};

int iommufd_fault_alloc(struct be_ioas *ioas, struct be_fault **out, int *fd)
{
	struct ifd_fault_alloc a = { .size = sizeof(a) };
	struct be_fault *f;
	int r;

	if (ioas->nest_parent)
		return -EOPNOTSUPP;	/* the kernel: not with NEST_PARENT */
	if (ioas->fault)
		return -EEXIST;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = kioctl(ioas->tenant->fd, IFD_FAULT_QUEUE_ALLOC, &a);
	if (r < 0) {
		free(f);
		return r;
	}
	f->ioas = ioas;
	f->id = a.out_fault_id;
	f->fd = (int)a.out_fault_fd;
	if (fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (*fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		r = -errno;
		close(f->fd);
		iommufd_destroy(ioas->tenant, f->id, "FAULT");
		free(f);
		return r;
	}
	ioas->fault = f;
	*out = f;
	return 0;
}

uint32_t iommufd_fault_id(const struct be_ioas *ioas)
{
	return ioas->fault ? ioas->fault->id : 0;
}

void iommufd_fault_free(struct be_fault *f)
{
	if (f->ioas && f->ioas->fault == f)
		f->ioas->fault = NULL;
	close(f->fd);
	/* refused while a HWPT holds it: it goes with the session's iommufd */
	iommufd_destroy(f->ioas->tenant, f->id, "FAULT");
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

	if (!d || !d->ioas->fault || !d->fault)
		return -ENOENT;		/* no queue: a fault */
	c.trigger_iopf.dev_id = dev->dev_id;
	c.trigger_iopf.pasid = has_pasid ? pasid : 0;
	c.trigger_iopf.grpid = 1;
	c.trigger_iopf.perm = flags & IOASID_DMA_WRITE ?
			      IFD_PGFAULT_PERM_WRITE : IFD_PGFAULT_PERM_READ;
	c.trigger_iopf.addr = iova & ~(uint64_t)4095;
	return iommufd_mock_cmd(dev->tenant, &c);
}
