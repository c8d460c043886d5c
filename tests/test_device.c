/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices on the simulated IOMMU through the public API: listing, bind,
 * attach/detach/replace, domains, groups, reserved regions, and DMA that is
 * checked byte by byte against the backing memfd; the VFIO file of a
 * device (none when simulated), KVM VMs with simulated devices, and who
 * owns what.  Runs unchanged against ioasidd when IOASID_TEST_URI=unix:PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA

/* Devices of the built-in topology (libioasid/backends/sim/default.topology) */
#define NIC "0000:00:01.0"		/* sim0, group 1 */
#define FN0 "0000:00:02.0"		/* sim0, group 2 with FN1 */
#define FN1 "0000:00:02.1"
#define GPU0 "0000:00:03.0"		/* sim0 (snoop control), no-snoop */
#define GPU1 "0000:01:00.0"		/* sim1 (no snoop control), no-snoop */
#define VIRTIO "0000:01:01.0"		/* sim1, cannot translate */
#define NVME "0000:01:02.0"		/* sim1, no-snoop unknown */

static uint32_t bind(struct ioasid_ctx *ctx, const char *name)
{
	uint32_t id = 0;

	cr_assert_eq(ioasid_device_bind(ctx, name, -1, &id), 0, "bind %s: %s",
		     name, ioasid_last_error(ctx));
	return id;
}

static struct ioasid_device_info info_of(struct ioasid_ctx *ctx,
					 const char *name)
{
	struct ioasid_device_info info;

	cr_assert_eq(ioasid_device_get_info(ctx, name, &info), 0);
	return info;
}

static uint32_t nr_domains(struct ioasid_ctx *ctx, uint32_t ioas)
{
	uint32_t nr = 0;

	cr_assert(ioasid_domain_list(ctx, ioas, NULL, &nr) == 0 ||
		  nr > 0);
	return nr;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 12));
}

/* ---- inventory ----------------------------------------------------------------- */

Test(inventory, default_topology)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_iommu_info iommus[4];
	struct ioasid_device_info devs[16];
	uint32_t ni = 4, nd = 16, small = 1;
	struct ioasid_status st;

	cr_assert_eq(ioasid_iommu_list(ctx, iommus, &ni), 0);
	cr_assert_eq(ni, 2);
	cr_assert_str_eq(iommus[0].name, "sim0");
	cr_assert(iommus[0].flags & IOASID_IOMMU_SNOOP_CONTROL);
	cr_assert_not(iommus[1].flags & IOASID_IOMMU_SNOOP_CONTROL);
	cr_assert_eq(ioasid_device_list(ctx, devs, &nd), 0);
	cr_assert_eq(nd, 7);
	cr_assert_eq(ioasid_device_list(ctx, devs, &small), -EMSGSIZE);
	cr_assert_eq(small, 7);
	cr_assert_eq(ioasid_get_status(ctx, &st), 0);
	cr_assert_str_eq(st.backend, "sim");
	cr_assert_eq(st.nr_devices, 7);
	cr_assert_eq(st.nr_iommus, 2);
	cr_assert_eq(ioasid_device_get_info(ctx, "0000:99:00.0",
					    &devs[0]), -ENOENT);
	cr_assert_eq(ioasid_device_get_info(ctx, NULL, &devs[0]), -EINVAL);
	ioasid_unref(ctx);
}

Test(inventory, bind_unbind)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t id, id2;

	id = bind(ctx, NIC);
	cr_assert_neq(id, 0);
	cr_assert(info_of(ctx, NIC).flags & IOASID_DEVICE_BOUND);
	cr_assert_eq(info_of(ctx, NIC).dev_id, id);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &id2), -EBUSY);
	cr_assert_eq(ioasid_device_bind(ctx, "nope", -1, &id2), -ENOENT);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, NULL), -EINVAL);
	cr_assert_eq(ioasid_device_unbind(ctx, id), 0);
	{
		/* a VFIO file is a character device: a pipe is not one */
		int p[2];

		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		id2 = 77;
		cr_assert_eq(ioasid_device_bind(ctx, NIC, p[0], &id2),
			     -EINVAL, "%s", ioasid_last_error(ctx));
		cr_assert(strstr(ioasid_last_error(ctx), "not a character "
				 "device"), "%s", ioasid_last_error(ctx));
		cr_assert_eq(id2, 77);
		cr_assert_not(info_of(ctx, NIC).flags & IOASID_DEVICE_BOUND);
		close(p[1]);
		cr_assert_eq(ioasid_device_bind(ctx, NIC, p[1], &id2),
			     -EBADF, "a closed descriptor");
		close(p[0]);
	}
	id = bind(ctx, NIC);
	cr_assert_eq(ioasid_device_unbind(ctx, id), 0);
	cr_assert_eq(ioasid_device_unbind(ctx, id), -ENOENT);
	cr_assert_not(info_of(ctx, NIC).flags & IOASID_DEVICE_BOUND);
	ioasid_unref(ctx);
}

/* ---- attach and domains ------------------------------------------------------- */

Test(attach, shares_or_creates_domains)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), gpu0 = bind(ctx, GPU0);
	uint32_t gpu1 = bind(ctx, GPU1), other;

	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 1);
	cr_assert_eq(ioasid_device_attach(ctx, gpu0, ioas, 0), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 1, "same unit, same class: shared");
	cr_assert_eq(info_of(ctx, NIC).domain_id, info_of(ctx, GPU0).domain_id);
	cr_assert_eq(ioasid_device_attach(ctx, gpu1, ioas, 0), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 2, "other unit: a new domain");
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), -EBUSY);
	cr_assert_eq(ioasid_ioas_destroy(ctx, ioas), -EBUSY);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(ctx, ioas, IOASID_SNOOP_ALLOW),
		     -EBUSY);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_eq(ioasid_device_attach(ctx, 4242, ioas, 0), -ENOENT);
	cr_assert_eq(ioasid_device_attach(ctx, nic, 4242, 0), -ENOENT);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0x80), -EOPNOTSUPP);

	cr_assert_eq(ioasid_device_detach(ctx, gpu1), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 1, "empty domain freed");
	cr_assert_eq(ioasid_device_detach(ctx, gpu1), -EINVAL);
	cr_assert_eq(ioasid_device_detach(ctx, nic), 0);
	cr_assert_eq(ioasid_device_detach(ctx, gpu0), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 0);
	cr_assert_eq(ioasid_ioas_destroy(ctx, ioas), 0);
	ioasid_unref(ctx);
}

Test(attach, enforce_mode_refuses_unit_without_snoop_control)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t gpu1 = bind(ctx, GPU1);

	cr_assert_eq(ioasid_ioas_set_snoop_mode(ctx, ioas, IOASID_SNOOP_ENFORCE), 0);
	cr_assert_eq(ioasid_device_attach(ctx, gpu1, ioas, 0), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "no snoop control"),
		  "reason: %s", ioasid_last_error(ctx));
	cr_assert(strstr(ioasid_last_error(ctx), "enforce mode"));
	cr_assert_eq(nr_domains(ctx, ioas), 0, "nothing was created");
	cr_assert_not(info_of(ctx, GPU1).flags & IOASID_DEVICE_ATTACHED);
	ioasid_unref(ctx);
}

Test(attach, non_translating_device_needs_identity)
{
	uint32_t ioas, ident;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t virtio = bind(ctx, VIRTIO);

	cr_assert_eq(ioasid_device_attach(ctx, virtio, ioas, 0), -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "does not support IOVA translation"));
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_IDENTITY |
				       IOASID_IOAS_RESTRICTED, &ident), 0);
	cr_assert_eq(ioasid_device_attach(ctx, virtio, ident, 0), 0);
	cr_assert_eq(info_of(ctx, VIRTIO).platform,
		     IOASID_PLATFORM_RESTRICTED | IOASID_PLATFORM_ACCESS_PLATFORM);
	ioasid_unref(ctx);
}

Test(attach, platform_query)
{
	uint32_t plain, ident;
	struct ioasid_ctx *ctx = test_ctx_ioas(&plain);
	uint32_t nic = bind(ctx, NIC), virtio = bind(ctx, VIRTIO);

	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_IDENTITY, &ident), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, plain, 0), 0);
	cr_assert_eq(info_of(ctx, NIC).platform,
		     IOASID_PLATFORM_IOVA | IOASID_PLATFORM_ACCESS_PLATFORM);
	cr_assert_eq(ioasid_device_attach(ctx, virtio, ident, 0), 0);
	cr_assert_eq(info_of(ctx, VIRTIO).platform, 0,
		     "identity, unrestricted: ACCESS_PLATFORM not needed");
	ioasid_unref(ctx);
}

Test(attach, reserved_regions_and_aperture)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), gpu1 = bind(ctx, GPU1);
	struct ioasid_iova_range r[8];
	uint32_t nr = 8;
	int fd = test_memfd(MiB);
	uint64_t iova = 0xfee00000;

	/* a mapping in the MSI window blocks the attach, changing nothing */
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), -EADDRINUSE);
	cr_assert_eq(nr_domains(ctx, ioas), 0);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, 4096, 0, NULL), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), 0);
	cr_assert_eq(nr, 2, "hole at the MSI window, end at 2^48");
	cr_assert_eq(r[0].last, 0xfedfffff);
	cr_assert_eq(r[1].start, 0xfef00000);
	cr_assert_eq(r[1].last, (1ULL << 48) - 1);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW | FIXED, &iova),
		     -EINVAL, "reserved IOVA");
	/* sim1 addresses 39 bits: a mapping above blocks it */
	iova = 1ULL << 40;
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4096, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, gpu1, ioas, 0), -EADDRINUSE);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, 4096, 0, NULL), 0);
	cr_assert_eq(ioasid_device_attach(ctx, gpu1, ioas, 0), 0);
	nr = 8;
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), 0);
	cr_assert_eq(r[nr - 1].last, (1ULL << 39) - 1);
	/* detaching gives the space back */
	cr_assert_eq(ioasid_device_detach(ctx, gpu1), 0);
	cr_assert_eq(ioasid_device_detach(ctx, nic), 0);
	nr = 8;
	cr_assert_eq(ioasid_iova_ranges(ctx, ioas, r, &nr, NULL), 0);
	cr_assert_eq(nr, 1);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- DMA ------------------------------------------------------------------------- */

Test(dma, write_read_unmap_fault)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(4 * MiB);
	static uint8_t pattern[64 * 1024], back[64 * 1024], file[64 * 1024];
	struct ioasid_fault faults[4];
	uint32_t nr = 4;
	uint64_t iova = 0x100000, done;

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, MiB, 2 * MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	fill(pattern, sizeof(pattern), 7);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 12288, pattern,
				       sizeof(pattern), IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(done, sizeof(pattern));
	/* the bytes landed in the memfd at the mapped offset */
	cr_assert_eq(pread(fd, file, sizeof(file), MiB + 12288), (ssize_t)sizeof(file));
	cr_assert_arr_eq(file, pattern, sizeof(pattern));
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 12288, back, sizeof(back),
				       0, &done), 0);
	cr_assert_arr_eq(back, pattern, sizeof(pattern));

	/* after unmap returns, DMA faults and memory stays untouched */
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova + 16384, 4096, 0, NULL), 0);
	fill(pattern, sizeof(pattern), 9);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 12288, pattern,
				       sizeof(pattern), IOASID_DMA_WRITE, &done),
		     -EFAULT);
	cr_assert_eq(done, 4096, "stopped at the hole");
	cr_assert_eq(pread(fd, file, 4096, MiB + 16384), 4096);
	fill(back, sizeof(back), 7);
	cr_assert_arr_eq(file, back + 4096, 4096, "the unmapped page kept its data");
	cr_assert_eq(ioasid_fault_read(ctx, faults, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(faults[0].dev_id, nic);
	cr_assert_eq(faults[0].iova, iova + 16384);
	cr_assert_eq(faults[0].reason, IOASID_FAULT_NOT_PRESENT);
	cr_assert_eq(faults[0].flags, IOASID_MAP_WRITE);
	nr = 4;
	cr_assert_eq(ioasid_fault_read(ctx, faults, &nr), 0);
	cr_assert_eq(nr, 0, "records are consumed");
	close(fd);
	ioasid_unref(ctx);
}

static struct ioasid_status status_of(struct ioasid_ctx *ctx)
{
	struct ioasid_status st;

	cr_assert_eq(ioasid_get_status(ctx, &st), 0, "%s",
		     ioasid_last_error(ctx));
	return st;
}

/* @n DMA writes to an IOVA nothing is mapped at: one fault each */
static void faulting_dma(struct ioasid_ctx *ctx, uint32_t dev, int n)
{
	uint8_t byte = 0x5a;
	uint64_t done;

	for (int i = 0; i < n; i++)
		cr_assert_eq(ioasid_device_dma(ctx, dev, 0x40000000, &byte, 1,
					       IOASID_DMA_WRITE, &done),
			     -EFAULT, "%s", ioasid_last_error(ctx));
}

Test(dma, full_device_fault_log_counts_what_it_drops)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	static struct ioasid_fault f[512];
	uint32_t nr = 512;

	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(status_of(ctx).faults_lost, 0);
	/* the simulated device's own log keeps the oldest 256 */
	faulting_dma(ctx, nic, 300);
	cr_assert_eq(status_of(ctx).faults_lost, 300 - 256,
		     "the records the device's log dropped are counted");
	cr_assert_eq(ioasid_fault_read(ctx, f, &nr), 0);
	cr_assert_eq(nr, 256, "the oldest 256 were kept");
	/* room again: the next one is queued, not lost, and never uncounted */
	faulting_dma(ctx, nic, 1);
	nr = 512;
	cr_assert_eq(ioasid_fault_read(ctx, f, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(status_of(ctx).faults_lost, 300 - 256);
	/* drops not yet told are counted when the device is unbound */
	faulting_dma(ctx, nic, 260);
	cr_assert_eq(ioasid_device_unbind(ctx, nic), 0);
	cr_assert_eq(status_of(ctx).faults_lost, 300 - 256 + 4);
	ioasid_unref(ctx);
}

Test(events, full_queue_counts_what_it_drops)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	struct ioasid_event ev;
	int n = 0, r;

	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_event_subscribe(ctx, IOASID_EVENT_GROUP_FAULT), 0);
	cr_assert_eq(status_of(ctx).events_lost, 0);
	/* one fault event each; nobody reads: the queue keeps 1024 */
	faulting_dma(ctx, nic, 1100);
	cr_assert_eq(status_of(ctx).events_lost, 1100 - 1024,
		     "the events the full queue dropped are counted");
	while ((r = ioasid_event_read(ctx, &ev)) == 0) {
		cr_assert_eq(ev.type, IOASID_EVENT_FAULT);
		n++;
	}
	cr_assert_eq(r, -EAGAIN);
	cr_assert_eq(n, 1024, "the oldest 1024 were kept");
	faulting_dma(ctx, nic, 1);
	cr_assert_eq(ioasid_event_read(ctx, &ev), 0, "room again");
	cr_assert_eq(status_of(ctx).events_lost, 1100 - 1024);
	ioasid_unref(ctx);
}

Test(dma, permission_and_blocked)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint8_t buf[4096] = { 1 };
	uint64_t iova = 0x200000, done;
	struct ioasid_fault f;
	uint32_t nr = 1;

	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 4096, 0, &done), -EFAULT,
		     "attached nowhere: blocked");
	cr_assert_eq(ioasid_fault_read(ctx, &f, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(f.reason, IOASID_FAULT_BLOCKED);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, IOASID_MAP_READ | FIXED,
				     &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 4096, IOASID_DMA_WRITE,
				       &done), -EACCES);
	nr = 1;
	cr_assert_eq(ioasid_fault_read(ctx, &f, &nr), 0);
	cr_assert_eq(f.reason, IOASID_FAULT_PERMISSION);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, NULL, 4096, 0, &done), -EINVAL);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 4096, 0x100, &done),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_device_dma(ctx, 999, iova, buf, 4096, 0, &done), -ENOENT);
	close(fd);
	ioasid_unref(ctx);
}

/* Maps 1 MiB of @fd at @iova, shrinks the file to a page, DMAs across. */
static void shrink_under_mapping(struct ioasid_ctx *ctx, uint32_t ioas,
				 uint32_t nic, int fd, uint64_t iova)
{
	uint8_t buf[8192];
	uint64_t done;
	struct ioasid_fault f;
	uint32_t nr = 1;

	cr_assert_eq(ftruncate(fd, MiB), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 8192, 0, &done), 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);	/* shrink under the mapping */
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 8192, 0, &done), -EFAULT);
	cr_assert_eq(done, 4096);
	cr_assert_eq(ioasid_fault_read(ctx, &f, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(f.reason, IOASID_FAULT_BUS_ERROR);
	cr_assert_eq(f.iova, iova + 4096);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, MiB, 0, NULL), 0,
		     "the mapping is still there, whole: %s",
		     ioasid_last_error(ctx));
}

/*
 * One rule for every kind of file: nothing is asked against shrinking.
 * A tmpfs file and a memfd without seals both map; shrunk under a live
 * mapping, a simulated device's DMA beyond the new end faults
 * (bus-error) and nothing crashes.
 */
Test(dma, truncated_file_faults_not_crashes)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	char path[] = "/dev/shm/ioasid-trunc-XXXXXX";
	int fd = mkstemp(path), memfd = test_memfd_unsealed(MiB);

	cr_assert(fd >= 0, "tmpfs file in /dev/shm");
	unlink(path);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	shrink_under_mapping(ctx, ioas, nic, fd, 0x400000);
	shrink_under_mapping(ctx, ioas, nic, memfd, 0x800000);
	close(memfd);
	close(fd);
	ioasid_unref(ctx);
}

Test(dma, domains_of_one_ioas_stay_identical)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), gpu1 = bind(ctx, GPU1);
	int fd = test_memfd(8 * MiB);
	static uint8_t a[2 * MiB], b[2 * MiB];
	uint64_t iova = 0, done;

	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4 * MiB, RW, &iova), 0);
	/* a second domain, created after the mapping: replayed into it */
	cr_assert_eq(ioasid_device_attach(ctx, gpu1, ioas, 0), 0);
	cr_assert_eq(nr_domains(ctx, ioas), 2);
	fill(a, sizeof(a), 3);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + MiB, a, sizeof(a),
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, gpu1, iova + MiB, b, sizeof(b), 0,
				       &done), 0);
	cr_assert_arr_eq(a, b, sizeof(a));
	/* a cut is seen by both */
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova + 2 * MiB, 4096, 0, NULL), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 2 * MiB, b, 4096, 0, &done),
		     -EFAULT);
	cr_assert_eq(ioasid_device_dma(ctx, gpu1, iova + 2 * MiB, b, 4096, 0, &done),
		     -EFAULT);
	cr_assert_eq(ioasid_device_dma(ctx, gpu1, iova + 2 * MiB + 4096, b, 4096, 0,
				       &done), 0);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- groups ----------------------------------------------------------------------- */

Test(group, partial_group_cannot_dma)
{
	uint32_t ioas, other;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t f0 = bind(ctx, FN0), f1 = bind(ctx, FN1);
	int fd = test_memfd(MiB);
	uint8_t buf[4096];
	uint64_t iova = 0, done;
	struct ioasid_fault f;
	uint32_t nr = 1;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW, &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, f0, ioas, 0), 0);
	cr_assert_not(info_of(ctx, FN0).flags & IOASID_DEVICE_GROUP_VIABLE);
	cr_assert_eq(ioasid_device_dma(ctx, f0, iova, buf, 4096, 0, &done), -EFAULT);
	cr_assert(strstr(ioasid_last_error(ctx), "not viable"));
	cr_assert_eq(ioasid_fault_read(ctx, &f, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(f.reason, IOASID_FAULT_GROUP_NOT_VIABLE);
	/* a group-mate cannot go elsewhere */
	cr_assert_eq(ioasid_device_attach(ctx, f1, other, 0), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "group"));
	cr_assert_eq(ioasid_device_attach(ctx, f1, ioas, 0), 0);
	cr_assert(info_of(ctx, FN0).flags & IOASID_DEVICE_GROUP_VIABLE);
	cr_assert_eq(ioasid_device_dma(ctx, f0, iova, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, f1, iova, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_detach(ctx, f1), 0);
	cr_assert_eq(ioasid_device_dma(ctx, f0, iova, buf, 4096, 0, &done), -EFAULT);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- replace without a gap -------------------------------------------------------- */

struct dma_loop {
	struct ioasid_ctx *ctx;
	uint32_t dev;
	uint64_t iova;
	volatile int stop;
	volatile uint64_t ok, bad;
};

static void *dma_thread(void *p)
{
	struct dma_loop *l = p;
	uint8_t buf[4096];
	uint64_t done;

	while (!l->stop) {
		if (ioasid_device_dma(l->ctx, l->dev, l->iova, buf, sizeof(buf), 0,
				      &done) == 0)
			l->ok++;
		else
			l->bad++;
	}
	return NULL;
}

Test(replace, moves_without_a_window)
{
	uint32_t a, b;
	struct dma_loop l = { 0 };
	int fd = test_memfd(MiB);
	uint64_t iova = 0x100000;
	pthread_t t;

	l.ctx = test_ctx_ioas(&a);
	cr_assert_eq(ioasid_ioas_alloc(l.ctx, 0, &b), 0);
	cr_assert_eq(ioasid_map_file(l.ctx, a, fd, 0, MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_map_file(l.ctx, b, fd, 0, MiB, RW | FIXED, &iova), 0);
	l.dev = bind(l.ctx, NIC);
	l.iova = iova;
	cr_assert_eq(ioasid_device_replace(l.ctx, l.dev, b, 0), -EINVAL,
		     "not attached yet");
	cr_assert_eq(ioasid_device_attach(l.ctx, l.dev, a, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, dma_thread, &l), 0);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(ioasid_device_replace(l.ctx, l.dev, i % 2 ? a : b, 0), 0);
	while (l.ok < 1000)
		;
	l.stop = 1;
	pthread_join(t, NULL);
	cr_assert_eq(l.bad, 0, "DMA never saw a gap: %llu faults",
		     (unsigned long long)l.bad);
	cr_assert_eq(info_of(l.ctx, NIC).ioas_id, a);
	cr_assert_eq(nr_domains(l.ctx, b), 0, "old domain released");
	close(fd);
	ioasid_unref(l.ctx);
}

/* ---- concurrency: DMA while holes are punched ------------------------------------- */

#define STORM_PAGES 2048	/* 8 MiB */

struct storm {
	struct ioasid_ctx *ctx;
	uint32_t dev;
	uint64_t base;
	uint8_t removed[STORM_PAGES];	/* set before unmap, read by DMA */
	uint8_t gone[STORM_PAGES];	/* set after unmap returned */
	volatile int stop;
	uint64_t faults_on_kept, missed_faults, dmas;
	uint32_t seed;
};

static void *storm_dma(void *p)
{
	struct storm *s = p;
	uint32_t x = s->seed;
	uint8_t buf[4096];
	uint64_t done;

	while (!s->stop) {
		uint32_t page;
		int gone_before, removed_after, r;

		x = x * 1103515245 + 12345;
		page = (x >> 8) % STORM_PAGES;
		gone_before = __atomic_load_n(&s->gone[page], __ATOMIC_ACQUIRE);
		r = ioasid_device_dma(s->ctx, s->dev, s->base + page * 4096ULL, buf,
				      sizeof(buf), 0, &done);
		removed_after = __atomic_load_n(&s->removed[page], __ATOMIC_ACQUIRE);
		if (r < 0 && !removed_after)
			__atomic_add_fetch(&s->faults_on_kept, 1, __ATOMIC_RELAXED);
		if (r == 0 && gone_before)
			__atomic_add_fetch(&s->missed_faults, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->dmas, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(concurrency, dma_during_hole_punching, .timeout = 120)
{
	static struct storm s;
	pthread_t t[3];
	int fd = test_memfd(STORM_PAGES * 4096ULL);
	uint64_t iova = 0x40000000;
	uint32_t ioas, x = 12345;

	memset(&s, 0, sizeof(s));
	s.ctx = test_ctx_ioas(&ioas);
	s.dev = bind(s.ctx, NIC);
	s.base = iova;
	cr_assert_eq(ioasid_map_file(s.ctx, ioas, fd, 0, STORM_PAGES * 4096ULL,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(s.ctx, s.dev, ioas, 0), 0);
	for (int i = 0; i < 3; i++) {
		s.seed = (uint32_t)i * 7777 + 1;
		cr_assert_eq(pthread_create(&t[i], NULL, storm_dma, &s), 0);
	}
	while (__atomic_load_n(&s.dmas, __ATOMIC_RELAXED) < 1000)
		;	/* the DMA threads are running */
	for (int i = 0; i < STORM_PAGES / 2; i++) {
		uint32_t page;

		x = x * 1103515245 + 12345;
		page = (x >> 8) % STORM_PAGES;
		if (s.removed[page])
			continue;
		__atomic_store_n(&s.removed[page], 1, __ATOMIC_RELEASE);
		cr_assert_eq(ioasid_unmap(s.ctx, ioas, s.base + page * 4096ULL, 4096,
					  0, NULL), 0);
		__atomic_store_n(&s.gone[page], 1, __ATOMIC_RELEASE);
	}
	s.stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_log_info("%llu DMAs during the storm", (unsigned long long)s.dmas);
	cr_assert_gt(s.dmas, 0);
	cr_assert_eq(s.faults_on_kept, 0, "pages that stayed mapped never faulted");
	cr_assert_eq(s.missed_faults, 0, "no DMA reached a page after its unmap");
	close(fd);
	ioasid_unref(s.ctx);
}

/* ---- dirty tracking --------------------------------------------------------------- */

Test(dirty, dma_writes_set_bits)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 0x800000, done, bitmap[4];
	uint8_t buf[4096] = { 0 };

	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), -EINVAL,
		     "not started");
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 5 * 4096, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 9 * 4096, buf, 4096, 0,
				       &done), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap,
				       IOASID_DIRTY_NO_CLEAR), 0);
	cr_assert_eq(bitmap[0], 1ULL << 5, "only the written page: 0x%llx",
		     (unsigned long long)bitmap[0]);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), 0);
	cr_assert_eq(bitmap[0], 1ULL << 5);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), 0);
	cr_assert_eq(bitmap[0], 0, "cleared by the previous read");
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, 0, bitmap, 0), -EINVAL);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0x10),
		     -EOPNOTSUPP);
	close(fd);
	ioasid_unref(ctx);
}

/*
 * The leaf size shows in dirty tracking: a DMA write marks the whole leaf
 * dirty.  A 2 MiB-aligned mapping gets a 2 MiB leaf, except on a
 * page-granular IOAS, whose domains have 4 KiB leaves only.
 */
static unsigned int dirty_pages_after_one_write(uint32_t ioas_flags)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t ioas, nic = bind(ctx, NIC), nr = 1, n = 0;
	struct ioasid_domain_info dom;
	int fd = test_memfd(2 * MiB);
	uint64_t iova = 2 * MiB, done, bitmap[8];
	uint8_t buf[64] = { 1 };

	cr_assert_eq(ioasid_ioas_alloc(ctx, ioas_flags, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 2 * MiB, RW | FIXED,
				     &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_domain_list(ctx, ioas, &dom, &nr), 0);
	if (ioas_flags & IOASID_IOAS_PAGE_GRANULAR)
		cr_assert_eq(dom.page_sizes, 4096, "4 KiB entries only: 0x%llx",
			     (unsigned long long)dom.page_sizes);
	else
		cr_assert(dom.page_sizes & (2 * MiB));
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, 2 * MiB, bitmap, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 7 * 4096, buf,
				       sizeof(buf), IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, 2 * MiB, bitmap, 0), 0);
	for (unsigned int i = 0; i < 8; i++)
		n += (unsigned int)__builtin_popcountll(bitmap[i]);
	close(fd);
	ioasid_unref(ctx);
	return n;
}

Test(dirty, page_granular_ioas_has_4k_leaves)
{
	cr_assert_eq(dirty_pages_after_one_write(IOASID_IOAS_PAGE_GRANULAR), 1);
	cr_assert_eq(dirty_pages_after_one_write(0), 512,
		     "a large-page IOAS maps 2 MiB with one leaf");
}

/* ---- hotplug ------------------------------------------------------------------- */

Test(hotplug, unplug_detaches_unbinds_and_tells)
{
	uint32_t ioas;
	struct ioasid_ctx *ctx = test_ctx_ioas(&ioas);
	uint32_t nic = bind(ctx, NIC), again;
	struct ioasid_event ev;
	struct pollfd pfd;
	uint8_t buf[64];
	uint64_t done;

	cr_assert_eq(ioasid_event_subscribe(ctx, IOASID_EVENT_GROUP_DEVICE), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_event_read(ctx, &ev), -EAGAIN);
	cr_assert_eq(ioasid_sim_hotplug(ctx, NIC, 0), 0);
	pfd = (struct pollfd){ .fd = ioasid_event_get_fd(ctx), .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 1000), 1, "the event fd wakes the caller");
	cr_assert_eq(ioasid_event_read(ctx, &ev), 0);
	cr_assert_eq(ev.type, IOASID_EVENT_DEVICE_REMOVED);
	cr_assert_eq(ev.id, nic);
	cr_assert_str_eq(ev.name, NIC);
	cr_assert(info_of(ctx, NIC).flags & IOASID_DEVICE_REMOVED);
	cr_assert_not(info_of(ctx, NIC).flags & IOASID_DEVICE_BOUND);
	cr_assert_eq(nr_domains(ctx, ioas), 0, "detached: its domain went");
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0, buf, sizeof(buf), 0, &done),
		     -ENOENT);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &again), -ENODEV);
	cr_assert_eq(ioasid_sim_hotplug(ctx, NIC, 1), 0);
	cr_assert_eq(ioasid_event_read(ctx, &ev), 0);
	cr_assert_eq(ev.type, IOASID_EVENT_DEVICE_ADDED);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &again), 0);
	cr_assert_eq(ioasid_sim_hotplug(ctx, "0000:99:00.0", 0), -ENOENT);
	cr_assert_eq(ioasid_sim_hotplug(ctx, NIC, 2), -EOPNOTSUPP);
	cr_assert_eq(ioasid_sim_hotplug(ctx, NULL, 0), -EINVAL);
	ioasid_unref(ctx);
}

Test(hotplug, owner_hears_even_unsubscribed)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t nic = bind(ctx, NIC);
	struct ioasid_event ev;

	cr_assert_eq(ioasid_sim_hotplug(ctx, NIC, 0), 0);
	cr_assert_eq(ioasid_event_read(ctx, &ev), 0);
	cr_assert_eq(ev.type, IOASID_EVENT_DEVICE_REMOVED);
	cr_assert_eq(ev.id, nic);
	/* plug it back: through a shared ioasidd other tests need it */
	cr_assert_eq(ioasid_sim_hotplug(ctx, NIC, 1), 0);
	ioasid_unref(ctx);
}

/* ---- the VFIO file, VMs and owners ------------------------------------------------- */

Test(vfio_fd, simulated_devices_have_none)
{
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t nic = bind(ctx, NIC);
	int fd = -7, before = test_count_fds();

	if (ioasid_is_remote(ctx)) {
		/* the conformance policy has no device-fds: asked first */
		cr_assert_eq(ioasid_device_get_fd(ctx, nic, &fd), -EPERM);
		cr_assert(strstr(ioasid_last_error(ctx), "device-fds"), "%s",
			  ioasid_last_error(ctx));
	} else {
		cr_assert_eq(ioasid_device_get_fd(ctx, nic, &fd), -EOPNOTSUPP);
		cr_assert(strstr(ioasid_last_error(ctx), "no VFIO file"), "%s",
			  ioasid_last_error(ctx));
		cr_assert(strstr(ioasid_last_error(ctx), NIC),
			  "the reason names it");
	}
	cr_assert_eq(fd, -7, "out-parameter untouched");
	cr_assert_eq(test_count_fds(), before, "no descriptor appeared");
	cr_assert_eq(ioasid_device_get_fd(ctx, nic, NULL), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "ioasid_device_get_fd"));
	cr_assert_eq(ioasid_device_get_fd(NULL, nic, &fd), -EINVAL);
	ioasid_unref(ctx);
}

Test(vfio_fd, unknown_and_foreign_devices)
{
	struct ioasid_ctx *a = test_ctx(), *b = test_ctx();
	uint32_t dev = bind(a, NIC);
	int fd = -7, before = test_count_fds();

	cr_assert_eq(ioasid_device_get_fd(a, 4242, &fd), -ENOENT);
	cr_assert(strstr(ioasid_last_error(a), "no bound device 4242"), "%s",
		  ioasid_last_error(a));
	cr_assert_eq(ioasid_device_get_fd(a, 0, &fd), -ENOENT);
	/* embedded: another core; through ioasidd: another client */
	cr_assert_eq(ioasid_device_get_fd(b, dev, &fd), -ENOENT);
	cr_assert_eq(ioasid_device_unbind(a, dev), 0);
	cr_assert_eq(ioasid_device_get_fd(a, dev, &fd), -ENOENT,
		     "unbound: gone");
	cr_assert_eq(fd, -7);
	cr_assert_eq(test_count_fds(), before);
	ioasid_unref(b);
	ioasid_unref(a);
}

static struct ioasid_vm_info vm_of(struct ioasid_ctx *ctx, uint32_t vm)
{
	struct ioasid_vm_info info;

	cr_assert_eq(ioasid_vm_get_info(ctx, vm, &info), 0, "%s",
		     ioasid_last_error(ctx));
	return info;
}

/*
 * A simulated device joins, moves between and leaves VMs (through
 * ioasidd: with no kvm-vfio work in the VMM, there is no VFIO file), and
 * nothing the library keeps for the VMs outlives them.
 */
Test(vfio_fd, simulated_device_in_vms)
{
	int vm_fd = test_kvm_vm(), vm2_fd = test_kvm_vm();
	int before = test_count_fds();
	struct ioasid_ctx *ctx = test_ctx();
	int with_ctx = test_count_fds();
	uint32_t ioas, dev, vm, vm2;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	dev = bind(ctx, GPU1);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, -1, &vm), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_vm_bind(ctx, vm2_fd, -1, &vm2), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(vm_of(ctx, vm).nr_devices, 1);
	cr_assert_eq(vm_of(ctx, vm).nr_noncoherent, 1, "no snoop control");
	cr_assert(vm_of(ctx, vm).flags & IOASID_VM_WBINVD_NEEDED);
	cr_assert_eq(vm_of(ctx, vm).owner_pid, (uint32_t)getpid());
	cr_assert_eq(vm_of(ctx, vm).owner_uid, (uint32_t)getuid());
	cr_assert_eq(vm_of(ctx, vm).nr_kvm_files, 0, "a simulated device has "
		     "no VFIO file: KVM was never told");
	cr_assert_not(info_of(ctx, GPU1).flags & IOASID_DEVICE_KVM_FILE);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, 4242), -ENOENT);
	cr_assert(strstr(ioasid_last_error(ctx), "no VM 4242"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(vm_of(ctx, vm).nr_devices, 1, "a failed move changes "
		     "nothing");
	cr_assert_eq(ioasid_device_set_vm(ctx, 4242, vm), -ENOENT);
	/* move, leave, come back; unbinding takes it out */
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm2), 0);
	cr_assert_eq(vm_of(ctx, vm).nr_devices, 0);
	cr_assert_eq(vm_of(ctx, vm2).nr_noncoherent, 1);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm2), 0, "again: no-op");
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, 0), 0);
	cr_assert_eq(vm_of(ctx, vm2).nr_devices, 0);
	cr_assert_not(vm_of(ctx, vm2).flags & IOASID_VM_WBINVD_NEEDED);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm), 0);
	cr_assert_eq(ioasid_device_unbind(ctx, dev), 0);
	cr_assert_eq(vm_of(ctx, vm).nr_devices, 0);
	cr_assert_eq(vm_of(ctx, vm).nr_noncoherent, 0);
	/* the VMs go; the VMM's descriptors are its own */
	cr_assert_eq(ioasid_vm_unbind(ctx, vm), 0);
	cr_assert_eq(ioasid_vm_unbind(ctx, vm), -ENOENT);
	cr_assert_eq(ioasid_vm_unbind(ctx, vm2), 0);
	cr_assert_eq(test_count_fds(), with_ctx, "the library keeps no "
		     "descriptor of an unbound VM");
	cr_assert_eq(ioasid_vm_bind(ctx, 0, -1, &vm), -EINVAL,
		     "stdin is no KVM VM");
	cr_assert(strstr(ioasid_last_error(ctx), "not a KVM VM"), "%s",
		  ioasid_last_error(ctx));
	ioasid_unref(ctx);
	cr_assert_eq(test_count_fds(), before);
	close(vm2_fd);
	close(vm_fd);
}

/* A VM the context still holds when it goes away leaves nothing open. */
Test(vfio_fd, context_release_closes_what_vms_kept)
{
	int vm_fd = test_kvm_vm(), before = test_count_fds();
	struct ioasid_ctx *ctx = test_ctx();
	uint32_t dev, vm;

	dev = bind(ctx, NIC);
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, -1, &vm), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm), 0);
	ioasid_unref(ctx);
	cr_assert_eq(test_count_fds(), before);
	close(vm_fd);
}

Test(owner, ioas_says_who_created_it)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_ioas_info info;
	uint32_t ioas;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	memset(&info, 0xa5, sizeof(info));
	cr_assert_eq(ioasid_ioas_get_info(ctx, ioas, &info), 0);
	cr_assert_eq(info.size, sizeof(info));
	cr_assert_eq(info.owner_pid, (uint32_t)getpid());
	cr_assert_eq(info.owner_uid, (uint32_t)getuid());
	ioasid_unref(ctx);
}
