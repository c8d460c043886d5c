/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the kernel-backend guest suites (see kbtest.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "backends/backend.h"
#include "backends/iommufd/abi.h"
#include "backends/iommufd/iommufd.h"
#include "core/base.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/ioas.h"
#include "core/viommu.h"
#include "ctx.h"
#include "kbtest.h"

#define EDU_ID		0x00
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2

#define TRACEFS		"/sys/kernel/tracing"
#define KP_GROUP	"ioasid_kb"

/* ---- edu ----------------------------------------------------------------- */

static int enable_bus_master(int devfd)
{
	struct vfio_region_info ri = {
		.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	uint16_t cmd;

	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return -1;
	if (pread(devfd, &cmd, 2, (off_t)ri.offset + 4) != 2)
		return -1;
	cmd |= 0x6;	/* memory space + bus master */
	return pwrite(devfd, &cmd, 2, (off_t)ri.offset + 4) == 2 ? 0 : -1;
}

int edu_open(struct edu *e, int devfd)
{
	struct vfio_region_info ri = {
		.argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX,
	};
	void *m;

	memset(e, 0, sizeof(*e));
	e->devfd = devfd;
	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &ri) ||
	    !(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || ri.size < 0x100)
		return -1;
	m = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, devfd,
		 (off_t)ri.offset);
	if (m == MAP_FAILED)
		return -1;
	e->bar0 = m;
	e->bar_size = ri.size;
	if ((*(volatile uint32_t *)(e->bar0 + EDU_ID) & 0xff) != 0xed ||
	    enable_bus_master(devfd)) {
		edu_close(e);
		return -1;
	}
	return 0;
}

void edu_close(struct edu *e)
{
	if (e->bar0)
		munmap((void *)e->bar0, e->bar_size);
	e->bar0 = NULL;
}

static void wr64(struct edu *e, unsigned int off, uint64_t v)
{
	*(volatile uint64_t *)(e->bar0 + off) = v;
}

static uint64_t rd64(struct edu *e, unsigned int off)
{
	return *(volatile uint64_t *)(e->bar0 + off);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int edu_xfer(struct edu *e, uint64_t src, uint64_t dst, uint32_t len,
		    bool to_ram)
{
	double deadline = now() + KB_EDU_DEADLINE_S;

	if (!e->bar0 || !len || len > EDU_XFER_MAX)
		return -1;
	wr64(e, EDU_DMA_SRC, src);
	wr64(e, EDU_DMA_DST, dst);
	wr64(e, EDU_DMA_CNT, len);
	wr64(e, EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));
	while (rd64(e, EDU_DMA_CMD) & EDU_CMD_START) {
		if (now() > deadline)
			return -1;
		usleep(1000);
	}
	return 0;
}

int edu_to_buf(struct edu *e, uint64_t iova, uint64_t buf_off, uint32_t len)
{
	if (buf_off + len >= KB_PAGE)
		return -1;
	return edu_xfer(e, iova, EDU_BUF_ADDR + buf_off, len, false);
}

int edu_to_mem(struct edu *e, uint64_t buf_off, uint64_t iova, uint32_t len)
{
	if (buf_off + len >= KB_PAGE)
		return -1;
	return edu_xfer(e, EDU_BUF_ADDR + buf_off, iova, len, true);
}

/* ---- memory -------------------------------------------------------------- */

int kb_memfd(uint64_t size, uint8_t fill)
{
	int fd = memfd_create("ioasid-kb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t page[KB_PAGE];

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		close(fd);
		return -1;
	}
	memset(page, fill, sizeof(page));
	for (uint64_t off = 0; off < size; off += KB_PAGE)
		if (pwrite(fd, page, KB_PAGE, (off_t)off) != (ssize_t)KB_PAGE)
			break;
	return fd;
}

int kb_write_sealed_memfd(uint64_t size, uint8_t fill, const uint8_t *pat,
			  size_t len)
{
	int fd = kb_memfd(size, fill);

	if (fd >= 0 && (pwrite(fd, pat, len, 0) != (ssize_t)len ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool kb_writable_map_refused(struct ioasid_ctx *ctx, uint32_t ioas, int fd,
			     uint64_t iova, uint64_t len, const char *seal)
{
	char want[64];
	int r;

	snprintf(want, sizeof(want), "sealed against writing (%s)", seal);
	r = ioasid_map_file(ctx, ioas, fd, 0, len, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA, &iova);
	return tap_ok(r == -EACCES && strstr(ioasid_last_error(ctx), want),
		      "memfd sealed with %s mapped writable: %d (%s)", seal, r,
		      kb_err(ctx));
}

void kb_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

bool kb_file_equals(int fd, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	bool eq;

	if (!got)
		return false;
	eq = pread(fd, got, len, (off_t)off) == (ssize_t)len &&
	     !memcmp(got, want, len);
	free(got);
	return eq;
}

bool kb_file_is(int fd, uint64_t off, uint8_t byte, size_t len)
{
	uint8_t *want = malloc(len);
	bool eq;

	if (!want)
		return false;
	memset(want, byte, len);
	eq = kb_file_equals(fd, off, want, len);
	free(want);
	return eq;
}

void kb_file_fill(int fd, uint64_t off, uint8_t byte, size_t len)
{
	uint8_t *buf = malloc(len);

	if (!buf)
		return;
	memset(buf, byte, len);
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		tap_diag("pwrite: %s", strerror(errno));
	free(buf);
}

/* ---- inventory and environment ------------------------------------------- */

int kb_find_edu(struct ioasid_ctx *ctx, struct ioasid_device_info *info)
{
	struct ioasid_device_info v[64];
	uint32_t nr = 64;

	if (ioasid_device_list(ctx, v, &nr) < 0)
		return -1;
	for (uint32_t i = 0; i < nr; i++)
		if (v[i].vendor == EDU_VENDOR && v[i].device == EDU_DEVICE) {
			*info = v[i];
			return 0;
		}
	return -1;
}

void kb_cdev_path(const struct ioasid_device_info *info, char *buf, size_t len)
{
	snprintf(buf, len, "/dev/vfio/devices/%s", info->vfio_cdev);
}

int kb_expect_snoop(void)
{
	const char *s = getenv("IOASID_EXPECT_SNOOP");

	if (s && !strcmp(s, "on"))
		return 1;
	if (s && !strcmp(s, "off"))
		return 0;
	return -1;
}

const char *kb_err(struct ioasid_ctx *ctx)
{
	static char seen[256];
	const char *e = ioasid_last_error(ctx);

	if (!strcmp(e, seen))
		return "-";
	snprintf(seen, sizeof(seen), "%s", e);
	return e;
}

static void log_fn(void *data, int priority, const char *file, int line,
		   const char *fn, const char *format, va_list args)
{
	printf("# lib: ");
	vprintf(format, args);
	printf("\n");
	fflush(stdout);
}

void kb_log_to_tap(struct ioasid_ctx *ctx, int priority)
{
	ioasid_set_log_fn(ctx, log_fn, NULL);
	ioasid_set_log_priority(ctx, priority);
}

/* ---- kernel log ---------------------------------------------------------- */

void kb_kmsg(const char *marker)
{
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, marker, strlen(marker)) < 0)
		tap_diag("write /dev/kmsg: %s", strerror(errno));
	close(fd);
}

/*
 * A DMAR fault at @iova logged after @marker?  @diag: it was not, say
 * what the log has after the marker instead (IOMMU lines, suppressions).
 */
static bool scan_log(char *buf, const char *marker, uint64_t iova, bool diag)
{
	char want[64], *p = strstr(buf, marker);
	int shown = 0;

	snprintf(want, sizeof(want), "fault addr 0x%llx ",
		 (unsigned long long)iova);
	if (diag && !p)
		tap_diag("klog: marker \"%s\" not found", marker);
	p = p ? strchr(p, '\n') : NULL;
	while (p && *++p) {
		char *eol = strchr(p, '\n');

		if (eol)
			*eol = 0;
		if (!diag && strstr(p, "DMAR") && strstr(p, want)) {
			tap_diag("klog: %s", p);
			return true;
		}
		if (diag && shown < 12 && (strcasestr(p, "dmar") ||
					   strstr(p, "suppressed"))) {
			tap_diag("klog after the marker: %s", p);
			shown++;
		}
		p = eol;
	}
	if (diag && !shown)
		tap_diag("klog: nothing from the IOMMU after the marker");
	return false;
}

/* The kernel log as one string (free it), or NULL. */
static char *klog_text(void)
{
	int n = klogctl(10 /* SIZE_BUFFER */, NULL, 0);
	char *buf;

	if (n <= 0)
		return NULL;
	buf = calloc(1, (size_t)n + 1);
	if (buf && klogctl(3 /* READ_ALL */, buf, n) <= 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

static bool read_log(const char *marker, uint64_t iova, bool diag)
{
	char *buf = klog_text();
	bool hit = buf && scan_log(buf, marker, iova, diag);

	free(buf);
	return hit;
}

bool kb_klog_contains(const char *needle)
{
	char *buf = klog_text();
	bool hit = buf && strstr(buf, needle);

	free(buf);
	return hit;
}

/*
 * Whether the kernel logged the fault: a diagnostic, not a check (the
 * caller's check is the memory the DMA did not reach).  VT-d drops a
 * fault while one of the same device is still recorded, and rate-limits
 * the messages, so its absence proves nothing either.
 */
void kb_fault_logged(bool seen, const char *what, uint64_t iova)
{
	tap_diag("%s: %s at 0x%llx in the kernel log", what,
		 seen ? "a DMAR fault" : "no DMAR fault message (dropped: "
		 "see the klog lines above)", (unsigned long long)iova);
}

bool kb_any_dmar_fault_after(const char *marker)
{
	char *buf = klog_text();
	char *p = buf ? strstr(buf, marker) : NULL;
	bool hit = false;

	while (p && (p = strstr(p, "DMAR")) && !hit) {
		hit = strncmp(p, "DMAR: DRHD: handling fault", 26) == 0 ||
		      strstr(p, "fault addr") != NULL;
		p += 4;
	}
	free(buf);
	return hit;
}

bool kb_dmar_fault_after(const char *marker, uint64_t iova, int wait_ms)
{
	double deadline = now() + wait_ms / 1e3;

	while (!read_log(marker, iova, false)) {
		if (now() > deadline) {
			read_log(marker, iova, true);
			return false;
		}
		usleep(50000);
	}
	return true;
}

/* ---- kprobes ------------------------------------------------------------- */

static int write_file(const char *path, const char *s, bool append)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r == (ssize_t)strlen(s) ? 0 : -1;
}

void kb_kprobes_remove(void)
{
	write_file(TRACEFS "/events/" KP_GROUP "/enable", "0", false);
	write_file(TRACEFS "/kprobe_events", "-:" KP_GROUP "/ncdma_reg\n", true);
	write_file(TRACEFS "/kprobe_events", "-:" KP_GROUP "/ncdma_unreg\n",
		   true);
}

int kb_kprobes_setup(void)
{
	int reg, unreg;

	kb_kprobes_remove();
	if (write_file(TRACEFS "/kprobe_events", "p:" KP_GROUP
		       "/ncdma_reg kvm_arch_register_noncoherent_dma\n", true) ||
	    write_file(TRACEFS "/kprobe_events", "p:" KP_GROUP
		       "/ncdma_unreg kvm_arch_unregister_noncoherent_dma\n",
		       true) ||
	    write_file(TRACEFS "/events/" KP_GROUP "/enable", "1", false))
		return -1;
	kb_kprobes_count(&reg, &unreg);
	return 0;
}

void kb_kprobes_count(int *reg, int *unreg)
{
	char line[1024];
	FILE *f = fopen(TRACEFS "/trace", "r");

	*reg = *unreg = 0;
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (line[0] == '#')
				continue;
			if (strstr(line, "ncdma_reg:"))
				(*reg)++;
			else if (strstr(line, "ncdma_unreg:"))
				(*unreg)++;
		}
		fclose(f);
	}
	write_file(TRACEFS "/trace", "", false);
}

/* ---- white box ----------------------------------------------------------- */

struct backend *kb_backend(struct ioasid_ctx *ctx)
{
	struct core *core = embedded_core(ctx);

	return core ? core->be : NULL;
}

struct be_ioas *kb_be_ioas(struct ioasid_ctx *ctx, uint32_t ioas_id)
{
	struct core *core = embedded_core(ctx);
	struct ioas *ioas = NULL;

	if (core)
		HASH_FIND(hh, core->ioas_table, &ioas_id, sizeof(ioas_id),
			  ioas);
	return ioas ? ioas->be : NULL;
}

struct viommu *kb_core_viommu(struct ioasid_ctx *ctx, uint32_t id)
{
	struct core *core = embedded_core(ctx);

	for (struct viommu *v = core ? core->viommus : NULL; v; v = v->next)
		if (v->id == id)
			return v;
	return NULL;
}

uint32_t kb_k_viommu(struct ioasid_ctx *ctx, uint32_t id)
{
	struct viommu *v = kb_core_viommu(ctx, id);

	return v ? iommufd_test_viommu_id(v->be) : 0;
}

static struct device *find_device(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct core *core = embedded_core(ctx);

	for (uint32_t i = 0; core && i < core->nr_devices; i++)
		if (core->devices[i].dev_id == dev_id)
			return &core->devices[i];
	return NULL;
}

struct be_device *kb_be_device(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct device *d = find_device(ctx, dev_id);

	return d ? d->be : NULL;
}

struct be_domain *kb_be_domain(struct ioasid_ctx *ctx, uint32_t dev_id)
{
	struct device *d = find_device(ctx, dev_id);

	return d && d->domain ? d->domain->be : NULL;
}

int kb_mock_ctx(struct ioasid_ctx **ctx)
{
	return ioasid_new("iommufd:mock", ctx);
}

int kb_mock_device(struct ioasid_ctx *ctx, struct ioasid_device_info *info)
{
	struct ioasid_device_info d[64];
	uint32_t nr = 64;
	int r = ioasid_device_list(ctx, d, &nr);

	if (r < 0)
		return r;
	for (uint32_t i = 0; i < nr; i++)
		if ((d[i].flags & IOASID_DEVICE_MOCK) &&
		    !(d[i].flags & IOASID_DEVICE_BOUND)) {
			*info = d[i];
			return 0;
		}
	return -ENOENT;
}

int kb_mock_dirty(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova,
		  uint64_t bits)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct be_domain *bdom = kb_be_domain(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_DIRTY,
		.dirty = { .iova = iova, .length = 64 * KB_PAGE,
			   .page_size = KB_PAGE,
			   .uptr = (uint64_t)(uintptr_t)&bits },
	};

	if (!bd || !bdom)
		return -ENOENT;
	c.id = iommufd_test_hwpt_id(bdom);
	if (ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &c) < 0)
		return -errno;
	return (int)c.dirty.out_nr_dirty;
}

int kb_mock_check_map(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova,
		      uint64_t len, void *uptr)
{
	struct be_device *bd = kb_be_device(ctx, dev);
	struct be_domain *bdom = kb_be_domain(ctx, dev);
	struct ifd_test_cmd c = {
		.size = sizeof(c), .op = IFD_TEST_OP_MD_CHECK_MAP,
		.check_map = { .iova = iova, .length = len,
			       .uptr = (uint64_t)(uintptr_t)uptr },
	};

	if (!bd || !bdom)
		return -ENOENT;
	c.id = iommufd_test_hwpt_id(bdom);
	if (ioctl(iommufd_test_device_iommufd(bd), IFD_TEST_CMD, &c) < 0)
		return -errno;
	return 0;
}
