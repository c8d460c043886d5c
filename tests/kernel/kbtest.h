/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers of the kernel-backend suites that run in the tests/vm guest
 * (Linux 7.3, emulated VT-d, QEMU's edu device bound to vfio-pci):
 * TAP lines (tests/vm/guest/tap.h), the edu DMA engine through a VFIO
 * device fd, kprobe events, the kernel log, and white-box access to the
 * library's core and backend objects for raw kernel cross-checks.
 */
#ifndef IOASID_TESTS_KBTEST_H
#define IOASID_TESTS_KBTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libioasid.h>

#include "../vm/guest/tap.h"

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define EDU_BUF_ADDR	0x40000ull	/* device-side buffer, 4 KiB */
/* QEMU 7.2's edu aborts on a transfer that ends at the buffer's end. */
#define EDU_XFER_MAX	2048u
#define KB_PAGE		4096ull

struct edu {
	int devfd;			/* VFIO device fd (not owned) */
	volatile uint8_t *bar0;
	uint64_t bar_size;
};

/* Map BAR0 through the VFIO region info, check the id, enable bus master. */
int edu_open(struct edu *e, int devfd);
void edu_close(struct edu *e);
/* One transfer: memory(@iova) -> buffer, or buffer -> memory; 0 or -1. */
int edu_to_buf(struct edu *e, uint64_t iova, uint64_t buf_off, uint32_t len);
int edu_to_mem(struct edu *e, uint64_t buf_off, uint64_t iova, uint32_t len);

/* A memfd of @size bytes sealed against shrinking, filled with @fill. */
int kb_memfd(uint64_t size, uint8_t fill);
/* kb_memfd() with @pat at offset 0, then sealed with F_SEAL_WRITE. */
int kb_write_sealed_memfd(uint64_t size, uint8_t fill, const uint8_t *pat,
			  size_t len);
/*
 * TAP: a writable map of @fd at @iova is refused with EACCES and a reason
 * that names the seal @seal ("F_SEAL_WRITE"...).
 */
bool kb_writable_map_refused(struct ioasid_ctx *ctx, uint32_t ioas, int fd,
			     uint64_t iova, uint64_t len, const char *seal);
/* Pattern @seed of @len bytes into @buf. */
void kb_pattern(uint8_t *buf, size_t len, uint8_t seed);
/* Do @len bytes at @off of @fd equal @want? */
bool kb_file_equals(int fd, uint64_t off, const uint8_t *want, size_t len);
bool kb_file_is(int fd, uint64_t off, uint8_t byte, size_t len);
void kb_file_fill(int fd, uint64_t off, uint8_t byte, size_t len);

/* The edu device in the library's inventory (0: found). */
int kb_find_edu(struct ioasid_ctx *ctx, struct ioasid_device_info *info);
/* "/dev/vfio/devices/vfioN" of a device. */
void kb_cdev_path(const struct ioasid_device_info *info, char *buf,
		  size_t len);
/* IOASID_EXPECT_SNOOP from the rig: 1 on, 0 off, -1 unset. */
int kb_expect_snoop(void);
/*
 * ioasid_last_error() for a TAP line: the text when it is new since the
 * previous call, else "-" (it keeps the last failure's text forever).
 */
const char *kb_err(struct ioasid_ctx *ctx);
/* Library messages as "# lib: ..." diagnostics. */
void kb_log_to_tap(struct ioasid_ctx *ctx, int priority);

/*
 * Kernel log: a marker line, and a DMAR fault at @iova after it, waiting
 * up to @wait_ms for the fault handler (a kernel thread of a TCG guest on
 * a loaded host) to print it.
 */
void kb_kmsg(const char *marker);
/* Does the kernel log (still) hold @needle anywhere? */
bool kb_klog_contains(const char *needle);
bool kb_dmar_fault_after(const char *marker, uint64_t iova, int wait_ms);
/*
 * How long a blocked write's DMAR message may take to show: the first
 * try (when it does not show, the message may be rate-limited or the
 * fault not recorded, see kb_iommufd.c's blocked_write()), and the try
 * after the wait, when it must show.
 */
#define KB_FAULT_FIRST_MS	2000
#define KB_FAULT_RETRY_MS	30000
/*
 * A TAP diagnostic for the fault message of a blocked write, seen or not:
 * never a pass or a skip.  The blocking itself is what memory shows
 * (untouched); the message is the kernel's report of it, and VT-d does
 * not report every fault: it keeps one record per pending fault and
 * drops ("compresses") a new one of a device with a record not yet
 * cleared, which QEMU's emulation does too when the guest's handler runs
 * late on a loaded host.
 */
void kb_fault_logged(bool seen, const char *what, uint64_t iova);
/* Any DMAR fault line in the kernel log after the line with @marker? */
bool kb_any_dmar_fault_after(const char *marker);
/* edu finishes a transfer in ~100 ms of virtual time; a hang, not a wait */
#define KB_EDU_DEADLINE_S	60.0

/* kprobe events on kvm_arch_[un]register_noncoherent_dma. */
int kb_kprobes_setup(void);
void kb_kprobes_count(int *reg, int *unreg);	/* and clear */
void kb_kprobes_remove(void);

/*
 * The kernel's iommufd selftest mock devices (CONFIG_IOMMUFD_TEST):
 * kb_mock_ctx() opens an embedded context on "iommufd:mock" (units and
 * devices of the real inventory, plus the unit "iommufd_mock" and the
 * devices "mock0", "mock1"); -EOPNOTSUPP when the kernel has no selftest
 * driver (the reason in ioasid_last_error(NULL)).  kb_mock_device() finds
 * the first mock device not bound by @ctx's session: 0 and its info.
 * Binding it (ioasid_device_bind with vfio_fd -1) creates it in the
 * kernel; through ioasidd, start the daemon with --backend iommufd:mock.
 */
int kb_mock_ctx(struct ioasid_ctx **ctx);
int kb_mock_device(struct ioasid_ctx *ctx, struct ioasid_device_info *info);
/* IOMMU_TEST_OP_MD_CHECK_MAP on the HWPT mock device DEV is attached to:
 * 0 when [IOVA, IOVA + LEN) maps the pages at UPTR; -errno otherwise
 * (-ENOENT: DEV is no attached device of CTX's backend). */
int kb_mock_check_map(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova,
		      uint64_t len, void *uptr);
/* IOMMU_TEST_OP_DIRTY: the mock IOMMU sets the dirty bit of the IOPTE of
 * each 4 KiB page of BITS (bit n: IOVA + n pages, 64 pages) in the HWPT
 * DEV is attached to, as a device write would; the number of bits the
 * kernel set, -EINVAL when the HWPT is not tracking, -errno. */
int kb_mock_dirty(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova,
		  uint64_t bits);

/* White box: backend objects behind the library's ids (embedded ctx). */
struct backend;
struct be_ioas;
struct be_device;
struct be_domain;
struct backend *kb_backend(struct ioasid_ctx *ctx);
struct be_ioas *kb_be_ioas(struct ioasid_ctx *ctx, uint32_t ioas_id);
struct be_device *kb_be_device(struct ioasid_ctx *ctx, uint32_t dev_id);
/* The backend domain a device is attached through, or NULL. */
struct be_domain *kb_be_domain(struct ioasid_ctx *ctx, uint32_t dev_id);
/* The core's vIOMMU @id, and the kernel's id of it (iommufd; 0: none). */
struct viommu;
struct viommu *kb_core_viommu(struct ioasid_ctx *ctx, uint32_t id);
uint32_t kb_k_viommu(struct ioasid_ctx *ctx, uint32_t id);

#endif
