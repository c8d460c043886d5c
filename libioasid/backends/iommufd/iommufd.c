/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux iommufd backend: /dev/iommu and VFIO device cdevs.
 *
 *   be_ioas    a kernel IOAS (IOMMU_IOAS_ALLOC) and the backend's record of
 *              the mappings it holds (kcommon.h: kmap)
 *   be_domain  a kernel HWPT allocated from that IOAS for a device of the
 *              unit (IOMMU_HWPT_ALLOC); the kernel mirrors the IOAS into it
 *   be_device  a VFIO cdev bound to its tenant's iommufd
 *              (VFIO_DEVICE_BIND_IOMMUFD)
 *   be_tenant  one session's own /dev/iommu: its IOASes, HWPTs and bound
 *              devices live there, so a device file handed out can name
 *              no other session's IOAS or HWPT (kernel object ids are per
 *              iommufd: iommufd_get_object(idev->ictx, ...))
 *
 * Files are mapped by fd and offset (IOMMU_IOAS_MAP_FILE) except
 * guest_memfd, which the kernel refuses there: it is mapped into this
 * process and given by address (IOMMU_IOAS_MAP), as user memory is.
 * Everything the backend allocates in the kernel is IOMMU_DESTROYed when
 * its object goes.  See README in this directory for the whole mapping
 * of seam operations to ioctls and for what is not atomic, and for which
 * file of this directory holds what.
 *
 * This file: open and close, the sessions' iommufds (tenants), the
 * inventory and hotplug, the seam's table and the white-box test hooks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/iommufd/priv.h"

void iommufd_destroy(struct be_tenant *t, uint32_t id, const char *what)
{
	struct ifd_destroy d = { .size = sizeof(d), .id = id };
	int r;

	/* a hand-over given up leaves the predecessor's objects alone */
	if (t->adopting)
		return;
	r = kioctl(t->fd, IFD_DESTROY, &d);

	if (r < 0)
		err(t->be->log, "iommufd: IOMMU_DESTROY of %s %u: %s", what, id,
		    strerror(-r));
}

/* ---- open ---------------------------------------------------------------- */

static int open_error(int e, char *errmsg, size_t errlen)
{
	if (e == ENOENT || e == ENODEV || e == ENXIO) {
		snprintf(errmsg, errlen, "this kernel has no " IOMMUFD_PATH
			 " (CONFIG_IOMMUFD)");
		return -ENODEV;
	}
	snprintf(errmsg, errlen, "cannot open " IOMMUFD_PATH ": %s",
		 strerror(e));
	return -e;
}

/*
 * iommufd before 6.6 has no IOMMU_GET_HW_INFO, IOMMU_HWPT_ALLOC nor VFIO
 * cdevs: ask for the hardware info of device id 0, which cannot exist.
 */
int iommufd_probe(int fd, char *errmsg, size_t errlen)
{
	struct ifd_hw_info hi = { .size = sizeof(hi) };
	int r = kioctl(fd, IFD_GET_HW_INFO, &hi);

	if (r == -ENOTTY || r == -EOPNOTSUPP) {
		snprintf(errmsg, errlen, "this kernel's iommufd predates "
			 "Linux 6.6 (no IOMMU_GET_HW_INFO / IOMMU_HWPT_ALLOC "
			 "/ VFIO device cdevs)");
		return -ENODEV;
	}
	return 0;
}

/* "" or NULL: real devices only; "mock" or "mock=N": N mock devices too. */
static int parse_arg(const char *arg, uint32_t *nr_mock, char *errmsg,
		     size_t errlen)
{
	char *end;
	unsigned long n;

	*nr_mock = 0;
	if (!arg || !*arg)
		return 0;
	if (!strcmp(arg, "mock")) {
		*nr_mock = MOCK_DEFAULT;
		return 0;
	}
	if (!strncmp(arg, "mock=", 5) && arg[5] >= '0' && arg[5] <= '9') {
		errno = 0;
		n = strtoul(arg + 5, &end, 10);
		if (!*end && !errno && n >= 1 && n <= MOCK_MAX) {
			*nr_mock = (uint32_t)n;
			return 0;
		}
	}
	snprintf(errmsg, errlen, "the iommufd backend's argument is \"mock\" "
		 "or \"mock=N\" (1 to %u mock devices of the kernel's selftest "
		 "driver), not \"%s\"", MOCK_MAX, arg);
	return -EINVAL;
}

/*
 * The selftest driver answers IOMMU_TEST_CMD; without CONFIG_IOMMUFD_TEST
 * the command does not exist (ENOTTY).  Op 0 is no op: EOPNOTSUPP.
 */
static int probe_mock(int fd, char *errmsg, size_t errlen)
{
	struct ifd_test_cmd c = { .size = sizeof(c), .op = 0 };
	int r = kioctl(fd, IFD_TEST_CMD, &c);

	if (r == -EOPNOTSUPP)
		return 0;
	snprintf(errmsg, errlen, "\"iommufd:mock\" needs the kernel's iommufd "
		 "selftest driver (CONFIG_IOMMUFD_TEST), which this kernel "
		 "does not have (IOMMU_TEST_CMD: %s)",
		 strerror(r < 0 ? -r : EINVAL));
	return -EOPNOTSUPP;
}

int iommufd_open(const struct log_sink *log, const char *arg,
		 struct backend **out, char *errmsg, size_t errlen)
{
	struct backend *be;
	int fd, r;

	uint32_t nr_mock = 0;
	bool mock_dirty = false, mock_nesting = false;
	char viommu_why[128] = "not probed";
	int mock_viommu = -EOPNOTSUPP;

	r = parse_arg(arg, &nr_mock, errmsg, errlen);
	if (r < 0)
		return r;
	/* only to probe: every session opens its own (tenant_open) */
	fd = open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return open_error(errno, errmsg, errlen);
	r = iommufd_probe(fd, errmsg, errlen);
	if (r == 0 && nr_mock)
		r = probe_mock(fd, errmsg, errlen);
	if (r == 0 && nr_mock)
		iommufd_mock_probe(fd, &mock_dirty, &mock_nesting);
	if (r == 0 && nr_mock)
		mock_viommu = iommufd_mock_probe_viommu(fd, viommu_why,
							sizeof(viommu_why));
	close(fd);	/* and with it whatever the probes made */
	if (r < 0)
		return r;
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->log = log;
	be->nr_mock = nr_mock;
	be->mock_dirty = mock_dirty;
	be->mock_nesting = mock_nesting;
	be->mock_viommu = mock_viommu;
	snprintf(be->mock_viommu_why, sizeof(be->mock_viommu_why), "%s",
		 viommu_why);
	snprintf(be->desc, sizeof(be->desc), IOMMUFD_PATH " (one per session%s)",
		 nr_mock ? "; selftest mock devices" : "");
	if (nr_mock)
		warn(log, "iommufd: offering %u mock device(s) of the kernel's "
		     "selftest driver (CONFIG_IOMMUFD_TEST): for tests only",
		     nr_mock);
	if (nr_mock && mock_viommu < 0)
		notice(log, "iommufd: the kernel's mock IOMMU has no vIOMMUs "
		       "(%s)", viommu_why);
	*out = be;
	return 0;
}

void iommufd_close(struct backend *be)
{
	if (be->nr_tenants)
		err(be->log, "iommufd: %u session iommufd(s) still open at "
		    "close", be->nr_tenants);
	khotplug_release(&be->hotplug);
	free(be);
}

/* ---- tenants: one /dev/iommu per session --------------------------------- */

int iommufd_tenant_open(struct backend *be, struct be_tenant **out)
{
	struct be_tenant *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->be = be;
	t->fd = open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
	if (t->fd < 0) {
		int e = errno;

		err(be->log, "iommufd: cannot open " IOMMUFD_PATH " for a "
		    "session: %s", strerror(e));
		free(t);
		return -e;
	}
	be->nr_tenants++;
	*out = t;
	return 0;
}

/*
 * After the session's last IOAS and device went.  A device file the
 * session handed out stays bound to this iommufd (the kernel keeps the
 * context while a device is bound to it), with no IOAS or HWPT left in
 * it to attach to.
 */
void iommufd_tenant_close(struct be_tenant *t)
{
	if (t->devices)
		err(t->be->log, "iommufd: a session's iommufd closed with "
		    "devices still bound");
	t->be->nr_tenants--;
	close(t->fd);			/* with it whatever is left */
	free(t->dead_faults);
	free(t);
}

const char *iommufd_describe(struct backend *be)
{
	return be->desc;
}

static bool has_cdev(const struct inv_device *d)
{
	return d->info.vfio_cdev[0] && d->vfio_dev_path[0];
}


int iommufd_inventory(struct backend *be, struct inventory *inv)
{
	char msg[256];
	int r = kinv_scan(be->log, inv, has_cdev, msg, sizeof(msg));

	if (r < 0)
		err(be->log, "iommufd: %s", msg);
	if (r == 0 && be->nr_mock)
		r = iommufd_mock_inventory(be, inv);
	else if (r == 0 && !inv->nr_devices)
		notice(be->log, "iommufd: no device has a VFIO cdev (bind one "
		       "to vfio-pci; CONFIG_VFIO_DEVICE_CDEV)");
	return r;
}

/* A device is usable while its VFIO cdev exists. */
bool iommufd_cdev_now(const char *name, char *path, size_t len)
{
	char dir[128];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/vfio-dev", name);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4)) {
			if (path)
				snprintf(path, len, "/dev/vfio/devices/%s",
					 e->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

static bool usable(const char *name)
{
	return iommufd_cdev_now(name, NULL, 0);
}

int iommufd_hotplug_fd(struct backend *be)
{
	return khotplug_fd(&be->hotplug, be->log);
}

int iommufd_hotplug_read(struct backend *be, char *name, size_t len,
			 bool *present)
{
	return khotplug_read(&be->hotplug, name, len, present, usable);
}

/* ---- white-box test hooks (iommufd.h) ------------------------------------ */

int iommufd_test_ioas_fd(const struct be_ioas *ioas)
{
	return ioas->tenant->fd;
}

int iommufd_test_device_iommufd(const struct be_device *device)
{
	return device->tenant->fd;
}

uint32_t iommufd_test_ioas_id(const struct be_ioas *ioas)
{
	return ioas->id;
}

uint32_t iommufd_test_hwpt_id(const struct be_domain *domain)
{
	return domain->hwpt_id;
}

uint32_t iommufd_test_dev_id(const struct be_device *device)
{
	return device->dev_id;
}

uint64_t iommufd_test_nr_mappings(const struct be_ioas *ioas)
{
	return ioas->map.nr;
}

uint32_t iommufd_test_mock_stdev_id(const struct be_device *device)
{
	return device->mock ? device->stdev_id : 0;
}

uint32_t iommufd_test_nested_hwpt_id(const struct be_device *device)
{
	return device->nested ? device->nested->hwpt_id : 0;
}

uint32_t iommufd_test_dead_faults(const struct be_ioas *ioas)
{
	return ioas->tenant->nr_dead_faults;
}

void iommufd_test_refault_fail(struct backend *be, bool bad_fault_id,
			       uint32_t fail_move)
{
	be->refault_bad_fault_id = bad_fault_id;
	be->refault_fail_move = fail_move;
}

uint32_t iommufd_test_pasid_hwpt_id(const struct be_device *device,
				    uint32_t pasid)
{
	for (uint32_t i = 0; i < device->nr_pasids; i++) {
		const struct ifd_pasid *p = &device->pasids[i];

		if (p->pasid == pasid)
			return p->nested ? p->nested->hwpt_id :
					   p->domain->hwpt_id;
	}
	return 0;
}

uint64_t iommufd_test_calls(const struct backend *be, enum iommufd_call c)
{
	return c < IOMMUFD_CALL_NR ? be->calls[c] : 0;
}

const struct backend_ops backend_iommufd = {
	.name = "iommufd",
	/* kcommon's record of kernel mappings replaces the core's pieces */
	.unmap_wants_pieces = false,
	/* mock devices raise page requests (IOMMU_TEST_OP_TRIGGER_IOPF) */
	.dma_page_requests = true,
	.open = iommufd_open,
	.close = iommufd_close,
	.tenant_open = iommufd_tenant_open,
	.tenant_close = iommufd_tenant_close,
	.describe = iommufd_describe,
	.inventory = iommufd_inventory,
	.ioas_alloc = iommufd_ioas_alloc,
	.ioas_free = iommufd_ioas_free,
	.map = iommufd_map,
	.unmap = iommufd_unmap,
	.take_lost = iommufd_take_lost,
	.hide_batch = iommufd_hide_batch,
	.copy = iommufd_copy,
	.domain_alloc = iommufd_domain_alloc,
	.domain_free = iommufd_domain_free,
	.device_open = iommufd_device_open,
	.device_close = iommufd_device_close,
	.attach = iommufd_attach,
	.detach = iommufd_detach,
	.device_vfio_fd = iommufd_device_vfio_fd,
	.set_dirty_tracking = iommufd_set_dirty_tracking,
	.read_dirty = iommufd_read_dirty,
	.dma = iommufd_dma,
	.pasid_attach = iommufd_pasid_attach,
	.pasid_attach_nested = iommufd_pasid_attach_nested,
	.pasid_detach = iommufd_pasid_detach,
	.dma_pasid = iommufd_dma_pasid,
	.read_faults = iommufd_read_faults,
	.take_faults_lost = iommufd_take_faults_lost,
	.unmap_dirty = iommufd_unmap_dirty,
	.unmap_dirty_atomic = false,
	.hotplug_fd = iommufd_hotplug_fd,
	.hotplug_read = iommufd_hotplug_read,
	.nested_alloc = iommufd_nested_alloc,
	.nested_free = iommufd_nested_free,
	.attach_nested = iommufd_attach_nested,
	.nested_invalidate = iommufd_nested_invalidate,
	.viommu_alloc = iommufd_viommu_alloc,
	.viommu_free = iommufd_viommu_free,
	.vdevice_alloc = iommufd_vdevice_alloc,
	.vdevice_free = iommufd_vdevice_free,
	.viommu_nested_alloc = iommufd_viommu_nested_alloc,
	.viommu_invalidate = iommufd_viommu_invalidate,
	.fault_alloc = iommufd_fault_alloc,
	.fault_adopt = iommufd_fault_adopt,
	.fault_unhook = iommufd_fault_unhook,
	.fault_free = iommufd_fault_free,
	.fault_read = iommufd_fault_read,
	.fault_respond = iommufd_fault_respond,
	.kobj = iommufd_kobj,
	.adopt = iommufd_adopt,
	.adopt_end = iommufd_adopt_end,
};
