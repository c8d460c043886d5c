/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests for the simulated DMA engine, IOTLB invalidation and guarded copies
 * (libioasid/backends/sim), with real memfd / guest_memfd memory.  Build:
 *   gcc -std=gnu11 -I libioasid tests/test_sim_dma.c \
 *       libioasid/backends/sim/{pgtable,iotlb,dma,guarded_copy}.c \
 *       -lcriterion -lpthread
 */
#include "tsan_runner.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "backends/sim/dma.h"
#include "backends/sim/guarded_copy.h"
#include "backends/sim/iotlb.h"
#include "backends/sim/nested.h"
#include "backends/sim/pgtable.h"

#define SZ_4K	SIM_SZ_4K
#define SZ_2M	SIM_SZ_2M
#define SZ_1G	SIM_SZ_1G
#define ALL_SIZES (SZ_4K | SZ_2M | SZ_1G)
#define RW	(SIM_PROT_READ | SIM_PROT_WRITE)
#define IOVA	(1ULL << 32)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int new_memfd(size_t size, unsigned int flags)
{
	int fd = memfd_create("sim-dma-test", MFD_CLOEXEC | flags);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	return fd;
}

/* mmap fd at an address aligned to `align` (for 2 MiB leaves). */
static uint8_t *map_aligned(int fd, size_t size, size_t align)
{
	uint8_t *res, *p;
	uintptr_t a;

	res = mmap(NULL, size + align, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(res, MAP_FAILED);
	a = ((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1);
	p = mmap((void *)a, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0);
	cr_assert_eq(p, (uint8_t *)a);
	if (a > (uintptr_t)res)
		munmap(res, a - (uintptr_t)res);
	munmap(p + size, (uintptr_t)res + size + align - (uintptr_t)(p + size));
	return p;
}

static struct sim_domain *new_domain(unsigned int flags)
{
	struct sim_domain *dom = NULL;

	cr_assert_eq(sim_domain_create(48, ALL_SIZES, flags, &dom), 0);
	return dom;
}

static struct sim_dev *new_dev(uint32_t id, unsigned int flags,
			       struct sim_domain *dom)
{
	struct sim_dev *dev = NULL;

	cr_assert_eq(sim_dev_create(id, flags, 0, &dev), 0);
	if (dom)
		cr_assert_eq(sim_dev_attach(dev, dom), 0);
	return dev;
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 12));
}

static struct sim_fault one_fault(struct sim_dev *dev)
{
	struct sim_fault f[2];

	cr_assert_eq(sim_dev_read_faults(dev, f, 2), 1,
		     "expected exactly one fault record");
	return f[0];
}

static struct sim_dev_stats dev_stats(struct sim_dev *dev)
{
	struct sim_dev_stats st;

	sim_dev_get_stats(dev, &st);
	return st;
}

/* ------------------------------------------------------------------ */
/* End to end with a real memfd                                        */
/* ------------------------------------------------------------------ */

Test(sim_dma, memfd_end_to_end)
{
	size_t size = 4 * SZ_2M, off = 0x1234, len = 3 * SZ_2M / 2 + 77;
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev;
	uint8_t *mem, *pat, *back, *file;
	struct sim_xlate x;
	struct sim_fault f;
	size_t done;
	int fd;

	fd = new_memfd(size, MFD_ALLOW_SEALING);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	mem = map_aligned(fd, size, SZ_2M);
	cr_assert_eq(sim_domain_map(dom, IOVA, size, (uintptr_t)mem, RW), 0);
	cr_assert_eq(sim_domain_walk(dom, IOVA + SZ_2M, &x), 0);
	cr_assert_eq(x.size, SZ_2M, "2 MiB aligned memfd uses 2 MiB leaves");
	dev = new_dev(7, 0, dom);

	pat = malloc(len);
	back = malloc(len);
	file = malloc(len);
	fill_pattern(pat, len, 1);
	cr_assert_eq(sim_dma_write(dev, IOVA + off, pat, len, 0, &done), 0);
	cr_assert_eq(done, len);
	/* The bytes really landed in the file, at the right offsets. */
	cr_assert_eq(pread(fd, file, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(file[i], pat[i], "byte %zu", i);
	cr_assert_eq(pread(fd, file, off, 0), (ssize_t)off);
	for (size_t i = 0; i < off; i++)
		cr_assert_eq(file[i], 0, "byte %zu before the DMA", i);
	/* And read back through the IOMMU. */
	memset(back, 0, len);
	cr_assert_eq(sim_dma_read(dev, IOVA + off, back, len, 0, &done), 0);
	cr_assert_eq(done, len);
	cr_assert_eq(memcmp(back, pat, len), 0);
	cr_assert_eq(dev_stats(dev).bytes_written, len);
	cr_assert_eq(dev_stats(dev).bytes_read, len);

	/* Unmap (invalidates): DMA faults, memory untouched. */
	cr_assert_eq(sim_domain_unmap(dom, IOVA, size), (int64_t)size);
	fill_pattern(back, len, 2);
	cr_assert_eq(sim_dma_write(dev, IOVA + off, back, len, 0, &done),
		     -EFAULT);
	cr_assert_eq(done, 0);
	f = one_fault(dev);
	cr_assert_eq(f.reason, SIM_FAULT_NOT_PRESENT);
	cr_assert_eq(f.iova, IOVA + off);
	cr_assert_eq(f.dev_id, 7);
	cr_assert_eq(f.access, SIM_ACCESS_WRITE);
	cr_assert_eq(f.domain_id, dom->id);
	cr_assert_gt(f.timestamp_ns, 0);
	cr_assert_eq(pread(fd, file, len, off), (ssize_t)len);
	cr_assert_eq(memcmp(file, pat, len), 0, "memory changed after unmap");
	cr_assert_eq(sim_dma_read(dev, IOVA + off, back, 16, 0, &done),
		     -EFAULT);
	cr_assert_eq(one_fault(dev).access, SIM_ACCESS_READ);

	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(mem, size);
	close(fd);
	free(pat);
	free(back);
	free(file);
}

Test(sim_dma, partial_unmap_faults_exactly_at_hole)
{
	size_t size = SZ_2M;
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(1, 0, dom);
	uint8_t *mem, *buf = malloc(size);
	size_t done;
	int fd = new_memfd(size, 0);

	mem = map_aligned(fd, size, SZ_2M);
	cr_assert_eq(sim_domain_map(dom, IOVA, size, (uintptr_t)mem, RW), 0);
	/* Warm the IOTLB with the 2 MiB translation. */
	cr_assert_eq(sim_dma_read(dev, IOVA, buf, 64, 0, &done), 0);
	cr_assert_eq(sim_domain_unmap(dom, IOVA + 5 * SZ_4K, SZ_4K),
		     (int64_t)SZ_4K);
	fill_pattern(buf, size, 3);
	cr_assert_eq(sim_dma_write(dev, IOVA + 100, buf, size - 100, 0, &done),
		     -EFAULT);
	cr_assert_eq(done, 5 * SZ_4K - 100);
	cr_assert_eq(one_fault(dev).iova, IOVA + 5 * SZ_4K);
	cr_assert_eq(memcmp(mem + 100, buf, done), 0);
	for (size_t i = 5 * SZ_4K; i < 6 * SZ_4K; i++)
		cr_assert_eq(mem[i], 0, "hole written at %zu", i);
	/* Pages after the hole still work (split kept them mapped). */
	cr_assert_eq(sim_dma_write(dev, IOVA + 6 * SZ_4K, buf, SZ_4K, 0,
				   &done), 0);
	cr_assert_eq(memcmp(mem + 6 * SZ_4K, buf, SZ_4K), 0);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(mem, size);
	close(fd);
	free(buf);
}

Test(sim_dma, truncated_memfd_bus_error)
{
	size_t size = SZ_2M;
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(2, 0, dom);
	uint8_t buf[16 * 1024];
	struct sim_fault f;
	uint8_t *mem;
	size_t done;
	int fd = new_memfd(size, MFD_ALLOW_SEALING);

	mem = map_aligned(fd, size, SZ_2M);
	cr_assert_eq(sim_domain_map(dom, IOVA, size, (uintptr_t)mem, RW), 0);
	fill_pattern(buf, sizeof(buf), 4);
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_2M / 2 - 8192, buf,
				   sizeof(buf), 0, &done), 0);
	/* Not sealed: the owner shrinks the file under the live mapping. */
	cr_assert_eq(ftruncate(fd, SZ_2M / 2), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_2M / 2 - 8192, buf,
				   sizeof(buf), 0, &done), -EFAULT);
	cr_assert_eq(done, 8192);
	f = one_fault(dev);
	cr_assert_eq(f.reason, SIM_FAULT_BUS_ERROR);
	cr_assert_eq(f.iova, IOVA + SZ_2M / 2);
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_2M - 4096, buf, 100, 0,
				  &done), -EFAULT);
	cr_assert_eq(done, 0);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_BUS_ERROR);
	/* The process is fine and the page before the cut still works. */
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_2M / 2 - 8192, buf, 8192, 0,
				  &done), 0);
	cr_assert_eq(dev_stats(dev).faults, 2);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(mem, size);
	close(fd);
}

Test(sim_dma, vanished_hva_segv)
{
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(3, 0, dom);
	uint8_t buf[8192];
	size_t done;
	uint8_t *mem = mmap(NULL, 4 * SZ_4K, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(mem, MAP_FAILED);
	cr_assert_eq(sim_domain_map(dom, IOVA, 4 * SZ_4K, (uintptr_t)mem, RW),
		     0);
	/* The VMM unmaps memory behind the IOMMU's back. */
	cr_assert_eq(munmap(mem + 2 * SZ_4K, 2 * SZ_4K), 0);
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_4K, buf, sizeof(buf), 0,
				  &done), -EFAULT);
	cr_assert_eq(done, SZ_4K);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_SEGV);
	cr_assert_eq(mprotect(mem, SZ_4K, PROT_READ), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA, buf, 10, 0, &done), -EFAULT);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_SEGV);
	/* A bad buffer on the device side is the caller's problem: -EFAULT,
	 * no IOMMU fault record. */
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_4K, mem + 2 * SZ_4K, 8, 0,
				  &done), -EFAULT);
	cr_assert_eq(done, 0);
	cr_assert_eq(dev_stats(dev).faults, 2);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(mem, 2 * SZ_4K);
}

/* ------------------------------------------------------------------ */
/* Fault reasons, queue, counters                                      */
/* ------------------------------------------------------------------ */

Test(sim_dma, permission_blocked_range)
{
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(4, 0, NULL);
	static uint8_t mem[3 * 4096] __attribute__((aligned(4096)));
	uint8_t buf[64];
	struct sim_fault f;
	size_t done;

	/* Not attached: blocked. */
	cr_assert_eq(sim_dma_read(dev, IOVA, buf, 8, 0, &done), -EFAULT);
	f = one_fault(dev);
	cr_assert_eq(f.reason, SIM_FAULT_BLOCKED);
	cr_assert_eq(f.domain_id, 0);

	cr_assert_eq(sim_dev_attach(dev, dom), 0);
	cr_assert_eq(sim_domain_map(dom, IOVA, SZ_4K, (uintptr_t)mem,
				    SIM_PROT_READ), 0);
	cr_assert_eq(sim_domain_map(dom, IOVA + SZ_4K, SZ_4K,
				    (uintptr_t)mem + SZ_4K, SIM_PROT_WRITE), 0);
	cr_assert_eq(sim_dma_read(dev, IOVA, buf, 8, 0, &done), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA, buf, 8, 0, &done), -EACCES);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_PERMISSION);
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_4K, buf, 8, 0, &done), 0);
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_4K, buf, 8, 0, &done),
		     -EACCES);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_PERMISSION);
	/* A write spanning RO then WO stops at the first page. */
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_4K - 4, buf, 8, 0, &done),
		     -EACCES);
	cr_assert_eq(done, 0);
	cr_assert_eq(one_fault(dev).iova, IOVA + SZ_4K - 4);
	/* Beyond the 48-bit address width. */
	cr_assert_eq(sim_dma_read(dev, 1ULL << 48, buf, 8, 0, &done), -EFAULT);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_OUT_OF_RANGE);
	cr_assert_eq(sim_dma_read(dev, IOVA + 2 * SZ_4K, buf, 8, 0, &done),
		     -EFAULT);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_NOT_PRESENT);
	/* Bad flags: no DMA, no record. */
	cr_assert_eq(sim_dma_read(dev, IOVA, buf, 8, 0x100, &done), -EINVAL);
	cr_assert_eq(sim_dma_read(dev, IOVA, NULL, 8, 0, &done), -EINVAL);
	cr_assert_eq(sim_dev_read_faults(dev, &f, 1), 0);
	/* Detach blocks again; the domain refuses destruction while used. */
	cr_assert_eq(sim_domain_destroy(dom), -EBUSY);
	cr_assert_eq(sim_dev_detach(dev), 0);
	cr_assert_eq(sim_dma_read(dev, IOVA, buf, 8, 0, &done), -EFAULT);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_BLOCKED);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
}

Test(sim_dma, fault_queue_overflow_and_eventfd)
{
	struct sim_dev *dev = NULL;
	struct sim_fault f[8];
	uint64_t cnt = 0;
	uint8_t b;
	size_t done;
	int efd, i;

	cr_assert_eq(sim_dev_create(9, 0, 4, &dev), 0);
	efd = eventfd(0, EFD_NONBLOCK);
	cr_assert_geq(efd, 0);
	sim_dev_set_fault_eventfd(dev, efd);
	for (i = 0; i < 10; i++)
		cr_assert_eq(sim_dma_read(dev, IOVA + i * SZ_4K, &b, 1, 0,
					  &done), -EFAULT);
	cr_assert_eq(read(efd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	cr_assert_eq(cnt, 4);
	cr_assert_eq(dev_stats(dev).faults, 4);
	cr_assert_eq(dev_stats(dev).fault_overflows, 6);
	cr_assert_eq(sim_dev_read_faults(dev, f, 8), 4);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(f[i].iova, IOVA + i * SZ_4K, "oldest kept");
		cr_assert_eq(f[i].dev_id, 9);
		if (i)
			cr_assert_geq(f[i].timestamp_ns, f[i - 1].timestamp_ns);
	}
	cr_assert_eq(sim_dev_read_faults(dev, f, 8), 0);
	/* Room again. */
	cr_assert_eq(sim_dma_read(dev, IOVA, &b, 1, 0, &done), -EFAULT);
	cr_assert_eq(sim_dev_read_faults(dev, f, 8), 1);
	sim_dev_destroy(dev);
	close(efd);
}

Test(sim_dma, snoop_accounting)
{
	struct sim_domain *coh = new_domain(SIM_DOMAIN_ENFORCE_COHERENCY);
	struct sim_domain *nc = new_domain(0);
	struct sim_dev *ns = new_dev(1, SIM_DEV_NO_SNOOP_CAPABLE, coh);
	struct sim_dev *plain = new_dev(2, 0, nc);
	static uint8_t mem[4096] __attribute__((aligned(4096)));
	uint8_t buf[100];
	struct sim_dev_stats st;
	size_t done;

	cr_assert_eq(sim_domain_map(coh, IOVA, SZ_4K, (uintptr_t)mem, RW), 0);
	cr_assert_eq(sim_domain_map(nc, IOVA, SZ_4K, (uintptr_t)mem, RW), 0);
	/* No-snoop into an enforcing domain: forced to snoop. */
	cr_assert_eq(sim_dma_write(ns, IOVA, buf, 100, SIM_DMA_NO_SNOOP,
				   &done), 0);
	st = dev_stats(ns);
	cr_assert_eq(st.snooped_bytes, 100);
	cr_assert_eq(st.noncoherent_bytes, 0);
	/* Move the device to the non-enforcing domain: non-coherent. */
	cr_assert_eq(sim_dev_attach(ns, nc), 0);
	cr_assert_eq(sim_dma_write(ns, IOVA, buf, 100, SIM_DMA_NO_SNOOP,
				   &done), 0);
	cr_assert_eq(sim_dma_read(ns, IOVA, buf, 50, 0, &done), 0);
	st = dev_stats(ns);
	cr_assert_eq(st.snooped_bytes, 150);
	cr_assert_eq(st.noncoherent_bytes, 100);
	/* A device whose No-Snoop enable is off never issues no-snoop. */
	cr_assert_eq(sim_dma_write(plain, IOVA, buf, 100, SIM_DMA_NO_SNOOP,
				   &done), 0);
	st = dev_stats(plain);
	cr_assert_eq(st.snooped_bytes, 100);
	cr_assert_eq(st.noncoherent_bytes, 0);
	sim_dev_destroy(ns);
	sim_dev_destroy(plain);
	cr_assert_eq(sim_domain_destroy(coh), 0);
	cr_assert_eq(sim_domain_destroy(nc), 0);
}

Test(sim_dma, iotlb_hits_misses_invalidation)
{
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(1, 0, dom);
	struct sim_dev *other = new_dev(2, 0, dom);
	static uint8_t mem[2][4096] __attribute__((aligned(4096)));
	struct sim_dev_stats st;
	uint64_t hva, pgsz;
	uint8_t b[8];
	size_t done;
	int i;

	cr_assert_eq(sim_domain_map(dom, IOVA, SZ_4K, (uintptr_t)mem[0], RW),
		     0);
	for (i = 0; i < 10; i++)
		cr_assert_eq(sim_dma_read(dev, IOVA, b, 8, 0, &done), 0);
	st = dev_stats(dev);
	cr_assert_eq(st.iotlb_misses, 1);
	cr_assert_eq(st.iotlb_hits, 9);
	/* Tracking off: a write through an entry a read filled is a hit,
	 * there is no dirty bit to set. */
	cr_assert_eq(sim_dma_write(dev, IOVA, b, 8, 0, &done), 0);
	st = dev_stats(dev);
	cr_assert_eq(st.iotlb_misses, 1);
	cr_assert_eq(st.iotlb_hits, 10);
	/* Tracking on (the IOTLB is dropped): the write walks, sets D and
	 * caches that; the next write hits. */
	cr_assert_eq(sim_domain_set_dirty_tracking(dom, true), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA, b, 8, 0, &done), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA, b, 8, 0, &done), 0);
	st = dev_stats(dev);
	cr_assert_eq(st.iotlb_misses, 2);
	cr_assert_eq(st.iotlb_hits, 11);
	cr_assert_eq(sim_domain_set_dirty_tracking(dom, false), 0);
	/* Remap the IOVA elsewhere: the stale entry must be gone from every
	 * attached device. */
	cr_assert_eq(sim_dma_read(other, IOVA, b, 8, 0, &done), 0);
	cr_assert_eq(sim_domain_unmap(dom, IOVA, SZ_4K), (int64_t)SZ_4K);
	cr_assert_eq(sim_domain_map(dom, IOVA, SZ_4K, (uintptr_t)mem[1], RW),
		     0);
	cr_assert_eq(sim_dev_translate(dev, IOVA + 8, SIM_ACCESS_READ, &hva,
				       &pgsz), 0);
	cr_assert_eq(hva, (uintptr_t)mem[1] + 8);
	cr_assert_eq(pgsz, SZ_4K);
	cr_assert_eq(sim_dev_translate(other, IOVA, SIM_ACCESS_READ, &hva,
				       NULL), 0);
	cr_assert_eq(hva, (uintptr_t)mem[1]);
	st = dev_stats(dev);
	cr_assert_eq(st.iotlb_misses, 3);
	cr_assert_geq(st.iotlb_invalidations, 1);
	sim_dev_destroy(dev);
	sim_dev_destroy(other);
	cr_assert_eq(sim_domain_destroy(dom), 0);
}

Test(sim_iotlb, fill_protocol)
{
	struct sim_iotlb *tlb = malloc(sizeof(*tlb));
	struct sim_xlate x4k = { .iova = IOVA, .hva = 0x10000000, .size = SZ_4K,
				 .pte = SIM_PTE_R, .level = 1 };
	struct sim_xlate x2m = { .iova = IOVA + SZ_2M, .hva = 0x20000000,
				 .size = SZ_2M, .pte = RW | SIM_PTE_SNP,
				 .level = 2 };
	struct sim_iotlb_hit h;
	uint64_t gen;

	sim_iotlb_init(tlb);
	/* A walk that raced with an invalidation must not be cached. */
	gen = sim_iotlb_gen(tlb);
	sim_iotlb_invalidate_range(tlb, 0, 0);
	sim_iotlb_fill(tlb, gen, 5, &x4k, false);
	cr_assert(!sim_iotlb_lookup(tlb, 5, IOVA, &h));
	gen = sim_iotlb_gen(tlb);
	sim_iotlb_fill(tlb, gen, 5, &x4k, false);
	sim_iotlb_fill(tlb, gen, 5, &x2m, true);
	cr_assert(sim_iotlb_lookup(tlb, 5, IOVA + 0x123, &h));
	cr_assert_eq(h.hva, 0x10000000);
	cr_assert_eq(h.flags, SIM_PTE_R);
	cr_assert(!h.dirty);
	cr_assert(!sim_iotlb_lookup(tlb, 6, IOVA, &h), "other domain");
	cr_assert(sim_iotlb_lookup(tlb, 5, IOVA + SZ_2M + 0x1fffff, &h));
	cr_assert_eq(h.size, SZ_2M);
	cr_assert(h.dirty);
	cr_assert_eq(h.flags, RW | SIM_PTE_SNP);
	/* Ranged invalidation: a 4 KiB range drops the covering 2 MiB
	 * entry and nothing else. */
	sim_iotlb_invalidate_range(tlb, IOVA + SZ_2M + SZ_4K,
				   IOVA + SZ_2M + 2 * SZ_4K - 1);
	cr_assert(!sim_iotlb_lookup(tlb, 5, IOVA + SZ_2M, &h));
	cr_assert(sim_iotlb_lookup(tlb, 5, IOVA, &h));
	sim_iotlb_invalidate_all(tlb);
	cr_assert(!sim_iotlb_lookup(tlb, 5, IOVA, &h));
	free(tlb);
}

/*
 * Ranged invalidation takes only the slots of the pages in its range:
 * against a model of the direct-mapped arrays, random fills and random
 * invalidations (one page, a few, wrapping the array, longer than it)
 * leave exactly the entries outside every invalidated range.
 */
Test(sim_iotlb, ranged_invalidation_matches_model)
{
	enum { N4 = SIM_IOTLB_ENTRIES_4K, N2 = SIM_IOTLB_ENTRIES_2M };
	const uint64_t big = IOVA + (1ULL << 40);	/* 2 MiB entries here */
	struct sim_iotlb *tlb = malloc(sizeof(*tlb));
	uint64_t m4[N4] = { 0 }, m2[N2] = { 0 };	/* page base, 0: empty */
	uint64_t s = 0x2545f4914f6cdd1dULL;
	struct sim_iotlb_hit h;

	cr_assert_not_null(tlb);
	sim_iotlb_init(tlb);
	for (int round = 0; round < 4000; round++) {
		uint64_t r, start, len, last;
		bool in2m;

		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		r = s;
		if (r % 3) {	/* fill */
			struct sim_xlate x = { .pte = SIM_PTE_R };

			if (r & 8) {
				x.iova = big + ((r >> 8) % (4 * N2)) * SZ_2M;
				x.size = SZ_2M;
				x.level = 2;
				m2[(x.iova >> 21) % N2] = x.iova;
			} else {
				x.iova = IOVA + ((r >> 8) % (4 * N4)) * SZ_4K;
				x.size = SZ_4K;
				x.level = 1;
				m4[(x.iova >> 12) % N4] = x.iova;
			}
			x.hva = x.iova;
			sim_iotlb_fill(tlb, sim_iotlb_gen(tlb), 5, &x, false);
			continue;
		}
		/* invalidate: lengths from one byte to beyond the array */
		in2m = r & 8;
		len = (r >> 40) % 4 == 0 ? ((r >> 20) % (2 * N4 + 8)) * SZ_4K + 1 :
		      ((r >> 20) % 8) * SZ_4K + 1 + ((r >> 50) & 0xfff);
		start = (in2m ? big : IOVA) + ((r >> 8) % (4 * N4)) * SZ_4K +
			((r >> 30) & 0xfff);
		if (in2m && (r & 16))
			len *= 512;	/* many 2 MiB pages */
		last = start + len - 1;
		sim_iotlb_invalidate_range(tlb, start, last);
		for (int i = 0; i < N4; i++)
			if (m4[i] && m4[i] <= last && m4[i] + SZ_4K - 1 >= start)
				m4[i] = 0;
		for (int i = 0; i < N2; i++)
			if (m2[i] && m2[i] <= last && m2[i] + SZ_2M - 1 >= start)
				m2[i] = 0;
		for (int i = 0; i < N4; i++) {
			uint64_t page = m4[i];

			if (!page)
				continue;
			cr_assert(sim_iotlb_lookup(tlb, 5, page, &h),
				  "round %d: 4 KiB page %#llx dropped by "
				  "[%#llx, %#llx]", round,
				  (unsigned long long)page,
				  (unsigned long long)start,
				  (unsigned long long)last);
			cr_assert_eq(h.iova, page);
		}
		for (int i = 0; i < N2; i++) {
			if (!m2[i])
				continue;
			cr_assert(sim_iotlb_lookup(tlb, 5, m2[i], &h),
				  "round %d: 2 MiB page dropped", round);
			cr_assert_eq(h.size, SZ_2M);
		}
		/* and nothing in the range survived */
		for (uint64_t p = start & ~(SZ_4K - 1), n = 0;
		     p <= last && n < 4 * N4; p += SZ_4K, n++)
			cr_assert(!sim_iotlb_lookup(tlb, 5, p, &h) ||
				  !(h.iova <= last && h.iova + h.size - 1 >= start),
				  "round %d: %#llx survived", round,
				  (unsigned long long)p);
	}
	free(tlb);
}

Test(sim_dma, dirty_tracking_through_dma)
{
	struct sim_domain *dom = new_domain(0);
	struct sim_dev *dev = new_dev(1, 0, dom);
	size_t size = 2 * SZ_2M, done;
	uint64_t bm[(2 * SZ_2M / SZ_4K) / 64];
	uint8_t buf[100];
	int fd = new_memfd(size, 0);
	uint8_t *mem = map_aligned(fd, size, SZ_2M);

	cr_assert_eq(sim_domain_set_dirty_tracking(dom, true), 0);
	/* First 2 MiB as one leaf, second 2 MiB as 4 KiB leaves. */
	cr_assert_eq(sim_domain_map(dom, IOVA, SZ_2M, (uintptr_t)mem, RW), 0);
	for (size_t o = SZ_2M; o < size; o += SZ_4K)
		cr_assert_eq(sim_domain_map(dom, IOVA + o, SZ_4K,
					    (uintptr_t)mem + o, RW), 0);
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_2M + 3 * SZ_4K, buf, 100, 0,
				  &done), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_2M + 5 * SZ_4K, buf, 100, 0,
				   &done), 0);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_domain_read_and_clear_dirty(dom, IOVA, size, bm, 0),
		     0);
	for (size_t i = 0; i < sizeof(bm) / 8; i++)
		cr_assert_eq(bm[i], i == 8 ? 1ULL << 5 : 0, "word %zu", i);
	/* After a clear, a write through the (flushed) IOTLB sets D again;
	 * a write into the 2 MiB leaf marks all its pages. */
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_2M + 5 * SZ_4K, buf, 100, 0,
				   &done), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA + 7, buf, 1, 0, &done), 0);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_domain_read_and_clear_dirty(dom, IOVA, size, bm, 0),
		     0);
	for (size_t i = 0; i < 8; i++)
		cr_assert_eq(bm[i], ~0ULL);
	cr_assert_eq(bm[8], 1ULL << 5);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(sim_domain_read_and_clear_dirty(dom, IOVA, size, bm, 0),
		     0);
	for (size_t i = 0; i < sizeof(bm) / 8; i++)
		cr_assert_eq(bm[i], 0);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(mem, size);
	close(fd);
}

Test(sim_dma, attach_replace_switches_translation)
{
	struct sim_domain *a = new_domain(0), *b = new_domain(0);
	struct sim_dev *dev = new_dev(1, 0, a);
	static uint8_t mem[2][4096] __attribute__((aligned(4096)));
	uint8_t v = 0x5a;
	size_t done;

	cr_assert_eq(sim_domain_map(a, IOVA, SZ_4K, (uintptr_t)mem[0], RW), 0);
	cr_assert_eq(sim_domain_map(b, IOVA, SZ_4K, (uintptr_t)mem[1], RW), 0);
	cr_assert_eq(sim_dma_write(dev, IOVA, &v, 1, 0, &done), 0);
	cr_assert_eq(mem[0][0], 0x5a);
	cr_assert_eq(sim_dev_attach(dev, b), 0);
	v = 0xa5;
	cr_assert_eq(sim_dma_write(dev, IOVA, &v, 1, 0, &done), 0);
	cr_assert_eq(mem[1][0], 0xa5);
	cr_assert_eq(mem[0][0], 0x5a, "old domain reached after replace");
	cr_assert_eq(sim_domain_destroy(a), 0);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(b), 0);
}

/* ------------------------------------------------------------------ */
/* In-flight DMA: unmap and detach wait for it                         */
/* ------------------------------------------------------------------ */

/*
 * The device-side buffer of a DMA write is a userfaultfd page, so the DMA
 * stops in the middle of its copy -- after translating, holding the old
 * translation -- until the test resolves the fault.
 */
struct inflight {
	struct sim_dev *dev;
	struct sim_domain *dom;
	void *src;
	bool detach;		/* else unmap */
	int ret;
	size_t done;
	int64_t unmapped;
	int finished;
};

static void *inflight_dma(void *arg)
{
	struct inflight *f = arg;

	f->ret = sim_dma_write(f->dev, IOVA, f->src, SZ_4K, 0, &f->done);
	return NULL;
}

static void *inflight_invalidate(void *arg)
{
	struct inflight *f = arg;

	if (f->detach)
		sim_dev_detach(f->dev);
	else
		f->unmapped = sim_domain_unmap(f->dom, IOVA, SZ_4K);
	__atomic_store_n(&f->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int uffd_setup(void *area, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)area, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void inflight_case(bool detach)
{
	static uint8_t mem[4096] __attribute__((aligned(4096)));
	static uint8_t pattern[4096] __attribute__((aligned(4096)));
	struct inflight f = { .detach = detach };
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	struct uffdio_copy copy;
	struct uffd_msg msg;
	pthread_t dma, inv;
	uint8_t b;
	size_t done;
	int uffd;

	f.src = mmap(NULL, SZ_4K, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(f.src, MAP_FAILED);
	uffd = uffd_setup(f.src, SZ_4K);
	if (uffd < 0)
		cr_skip_test("userfaultfd not available");
	f.dom = new_domain(0);
	f.dev = new_dev(1, 0, f.dom);
	cr_assert_eq(sim_domain_map(f.dom, IOVA, SZ_4K, (uintptr_t)mem, RW),
		     0);
	pthread_create(&dma, NULL, inflight_dma, &f);
	/* The DMA is now stuck inside its copy. */
	cr_assert_eq(read(uffd, &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	cr_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);
	pthread_create(&inv, NULL, inflight_invalidate, &f);
	nanosleep(&ts, NULL);
	cr_assert_eq(__atomic_load_n(&f.finished, __ATOMIC_ACQUIRE), 0,
		     "returned while a DMA still used the old translation");
	/* Let the copy finish; only then may unmap/detach return. */
	memset(pattern, 0x3c, sizeof(pattern));
	copy = (struct uffdio_copy){ .dst = (uintptr_t)f.src,
				     .src = (uintptr_t)pattern, .len = SZ_4K };
	cr_assert_eq(ioctl(uffd, UFFDIO_COPY, &copy), 0);
	pthread_join(dma, NULL);
	pthread_join(inv, NULL);
	cr_assert_eq(f.ret, 0);
	cr_assert_eq(f.done, SZ_4K);
	cr_assert_eq(memcmp(mem, pattern, SZ_4K), 0);
	if (!detach)
		cr_assert_eq(f.unmapped, (int64_t)SZ_4K);
	cr_assert_eq(sim_dma_write(f.dev, IOVA, &b, 1, 0, &done), -EFAULT);
	cr_assert_eq(one_fault(f.dev).reason, detach ? SIM_FAULT_BLOCKED :
						   SIM_FAULT_NOT_PRESENT);
	sim_dev_destroy(f.dev);
	cr_assert_eq(sim_domain_destroy(f.dom), 0);
	close(uffd);
	munmap(f.src, SZ_4K);
}

Test(sim_dma, unmap_waits_for_inflight_dma)
{
	inflight_case(false);
}

Test(sim_dma, detach_waits_for_inflight_dma)
{
	inflight_case(true);
}

/* ------------------------------------------------------------------ */
/* guest_memfd: private pages SIGBUS when touched                      */
/* ------------------------------------------------------------------ */

#define KVMIO_ 0xAE
struct gmem_args {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
#define KVM_CREATE_VM_		_IO(KVMIO_, 0x01)
#define KVM_CREATE_GUEST_MEMFD_	_IOWR(KVMIO_, 0xd4, struct gmem_args)
#define GMEM_FLAG_MMAP		(1ULL << 0)
#define GMEM_FLAG_INIT_SHARED	(1ULL << 1)

static int guest_memfd(int *vm, uint64_t size, uint64_t flags)
{
	struct gmem_args g = { .size = size, .flags = flags };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		return -1;
	*vm = ioctl(kvm, KVM_CREATE_VM_, 0);
	close(kvm);
	if (*vm < 0)
		return -1;
	return ioctl(*vm, KVM_CREATE_GUEST_MEMFD_, &g);
}

Test(sim_dma, guest_memfd_private_page_faults)
{
	struct sim_domain *dom;
	struct sim_dev *dev;
	uint8_t buf[64], *priv, *shared;
	int vm1, vm2, fd_priv, fd_shared;
	size_t done;

	fd_priv = guest_memfd(&vm1, SZ_2M, GMEM_FLAG_MMAP);
	fd_shared = guest_memfd(&vm2, SZ_2M,
				GMEM_FLAG_MMAP | GMEM_FLAG_INIT_SHARED);
	if (fd_priv < 0 || fd_shared < 0)
		cr_skip_test("no mmap-able guest_memfd (/dev/kvm, Linux >= 6.18)");
	priv = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd_priv, 0);
	shared = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED,
		      fd_shared, 0);
	cr_assert_neq(priv, MAP_FAILED);
	cr_assert_neq(shared, MAP_FAILED);
	dom = new_domain(0);
	dev = new_dev(1, 0, dom);
	cr_assert_eq(sim_domain_map(dom, IOVA, SZ_2M, (uintptr_t)shared, RW),
		     0);
	cr_assert_eq(sim_domain_map(dom, IOVA + SZ_2M, SZ_2M, (uintptr_t)priv,
				    RW), 0);
	memset(buf, 0x11, sizeof(buf));
	cr_assert_eq(sim_dma_write(dev, IOVA, buf, 64, 0, &done), 0);
	cr_assert_eq(shared[0], 0x11);
	/* Private page: SIGBUS inside the copy, recorded, survived. */
	cr_assert_eq(sim_dma_write(dev, IOVA + SZ_2M - 32, buf, 64, 0, &done),
		     -EFAULT);
	cr_assert_eq(done, 32);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_BUS_ERROR);
	cr_assert_eq(sim_dma_read(dev, IOVA + SZ_2M + SZ_4K, buf, 64, 0,
				  &done), -EFAULT);
	cr_assert_eq(one_fault(dev).reason, SIM_FAULT_BUS_ERROR);
	sim_dev_destroy(dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	munmap(priv, SZ_2M);
	munmap(shared, SZ_2M);
	close(fd_priv);
	close(fd_shared);
	close(vm1);
	close(vm2);
}

/* ------------------------------------------------------------------ */
/* guarded_copy                                                        */
/* ------------------------------------------------------------------ */

Test(sim_guard, exact_progress_report)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *src = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *dst = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sim_guard_fault f;
	size_t done;

	cr_assert_neq(src, MAP_FAILED);
	cr_assert_neq(dst, MAP_FAILED);
	fill_pattern(src, 4 * pg, 5);
	cr_assert_eq(sim_guarded_copy(dst, src, 4 * pg, &done, &f), 0);
	cr_assert_eq(done, (size_t)(4 * pg));
	/* Source page 2 unreadable: copy from offset 100 stops there. */
	cr_assert_eq(mprotect(src + 2 * pg, pg, PROT_NONE), 0);
	memset(dst, 0, 4 * pg);
	cr_assert_eq(sim_guarded_copy(dst + 7, src + 100, 3 * pg, &done, &f),
		     -EFAULT);
	cr_assert_eq(done, (size_t)(2 * pg - 100));
	cr_assert_eq(f.signo, SIGSEGV);
	cr_assert(!f.on_dst);
	cr_assert_eq(f.addr, src + 2 * pg);
	cr_assert_eq(memcmp(dst + 7, src + 100, done), 0);
	/* Destination fault. */
	cr_assert_eq(mprotect(src + 2 * pg, pg, PROT_READ), 0);
	cr_assert_eq(mprotect(dst + pg, pg, PROT_READ), 0);
	cr_assert_eq(sim_guarded_copy(dst + 10, src, 2 * pg, &done, &f),
		     -EFAULT);
	cr_assert_eq(done, (size_t)(pg - 10));
	cr_assert(f.on_dst);
	/* Signals stay usable after recoveries. */
	for (int i = 0; i < 100; i++)
		cr_assert_eq(sim_guarded_copy(dst + 10, src, 2 * pg, &done,
					      NULL), -EFAULT);
	munmap(src, 4 * pg);
	munmap(dst, 4 * pg);
}

static sigjmp_buf foreign_env;
static volatile sig_atomic_t foreign_hits;

static void foreign_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	foreign_hits++;
	siglongjmp(foreign_env, sig);
}

Test(sim_guard, chains_foreign_faults)
{
	struct sigaction sa = { .sa_sigaction = foreign_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	uint8_t *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uint8_t dst[16];
	size_t done;
	volatile int sig;

	/* The application's handler exists before ours. */
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	cr_assert_eq(sim_guard_init(), 0);
	/* Our copy faults are ours: the app handler is not called. */
	cr_assert_eq(sim_guarded_copy(dst, p, 16, &done, NULL), -EFAULT);
	cr_assert_eq(foreign_hits, 0);
	/* A fault outside any guarded copy goes to the app's handler. */
	sig = sigsetjmp(foreign_env, 1);
	if (!sig)
		*(volatile uint8_t *)p = 1;
	cr_assert_eq(sig, SIGSEGV);
	cr_assert_eq(foreign_hits, 1);
	/* Still ours afterwards. */
	cr_assert_eq(sim_guarded_copy(dst, p, 16, &done, NULL), -EFAULT);
	cr_assert_eq(foreign_hits, 1);
	munmap(p, 4096);
}

/* ------------------------------------------------------------------ */
/* Concurrency: DMA vs hole punching on a 64 MiB region of 2 MiB leaves */
/* ------------------------------------------------------------------ */

#define CC_SIZE		(64UL << 20)
#define CC_PAGES	(CC_SIZE / SZ_4K)
#define CC_LEAVES	(CC_SIZE / SZ_2M)
#define CC_THREADS	3
#define CC_MAX_PAGES	4
#define CC_MIN_OK	1000	/* DMAs that worked, at least */

struct cc_shared {
	struct sim_domain *dom;
	struct sim_dev *dev[2];
	uint8_t *mem;
	uint8_t removing[CC_PAGES];	/* set before unmap starts */
	uint8_t removed[CC_PAGES];	/* set after unmap returned */
	uint64_t last_token[CC_PAGES];	/* owner thread only */
	uint64_t snap[CC_PAGES];	/* content right after unmap */
	int stop;
	/* progress of all DMA threads, for the main thread to wait on */
	unsigned long nr_ok, nr_faulted;
};

struct cc_thread {
	struct cc_shared *s;
	unsigned int idx;
	unsigned int seed;
	unsigned long ok, faulted, bad_fault, missed_fault, bad_data;
};

static bool cc_load(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Check one DMA result against the hole-punching oracle. */
static void cc_check(struct cc_thread *t, unsigned long pg0, size_t len,
		     long first_removed, int ret, size_t done)
{
	unsigned long fpg = pg0 + done / SZ_4K;

	__atomic_fetch_add(ret == 0 ? &t->s->nr_ok : &t->s->nr_faulted, 1,
			   __ATOMIC_RELAXED);
	if (ret == 0) {
		t->ok++;
		if (done != len || first_removed >= 0)
			t->missed_fault++;
		return;
	}
	t->faulted++;
	if (ret != -EFAULT || !cc_load(&t->s->removing[fpg]))
		t->bad_fault++;		/* fault on a page that stayed */
	if (first_removed >= 0 && fpg > (unsigned long)first_removed)
		t->missed_fault++;	/* went past a removed page */
}

static void cc_fill(uint64_t *w, size_t len, unsigned long pg0, uint64_t seq)
{
	for (size_t i = 0; i < (len + 7) / 8; i++)
		w[i] = seq << 24 | (pg0 + i * 8 / SZ_4K);
}

static void *cc_dma(void *arg)
{
	struct cc_thread *t = arg;
	struct cc_shared *s = t->s;
	struct sim_dev *dev = s->dev[t->idx == CC_THREADS - 1];
	uint64_t wbuf[CC_MAX_PAGES * 512], rbuf[CC_MAX_PAGES * 512], seq = 0;
	unsigned long leaf, pg0, npg, i;
	size_t len, done, rdone;
	long first_removed;
	int ret, rret;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		/* Thread t owns leaves t, t + 3, ...: no data races. */
		leaf = t->idx + CC_THREADS *
		       (rand_r(&t->seed) % ((CC_LEAVES - t->idx +
					    CC_THREADS - 1) / CC_THREADS));
		pg0 = leaf * 512 + rand_r(&t->seed) % 512;
		npg = 1 + rand_r(&t->seed) % CC_MAX_PAGES;
		if (pg0 % 512 + npg > 512)
			npg = 512 - pg0 % 512;
		len = npg * SZ_4K - rand_r(&t->seed) % 2048;
		first_removed = -1;
		for (i = 0; i < npg && first_removed < 0; i++)
			if (cc_load(&s->removed[pg0 + i]))
				first_removed = pg0 + i;
		cc_fill(wbuf, len, pg0, ++seq);
		ret = sim_dma_write(dev, IOVA + pg0 * SZ_4K, wbuf, len, 0,
				    &done);
		cc_check(t, pg0, len, first_removed, ret, done);
		for (i = 0; i * SZ_4K < done; i++)
			s->last_token[pg0 + i] = seq << 24 | (pg0 + i);

		rret = sim_dma_read(dev, IOVA + pg0 * SZ_4K, rbuf, len, 0,
				    &rdone);
		/* Pages removed before the write was issued are still
		 * removed: the read must fault no later. */
		cc_check(t, pg0, len, first_removed, rret, rdone);
		if (rdone > done)
			rdone = done;
		if (memcmp(rbuf, wbuf, rdone))
			t->bad_data++;
	}
	return NULL;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Main thread: punch random 4 KiB holes (splitting 2 MiB leaves). */
static unsigned long cc_punch(struct cc_shared *s)
{
	unsigned int seed = 4242;
	struct timespec t0, ts = { 0, 200000 };
	unsigned long holes = 0, pg;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (holes < 4000 && (holes < 300 || elapsed_ms(&t0) < 2000)) {
		pg = rand_r(&seed) % CC_PAGES;
		if (s->removing[pg])
			continue;
		__atomic_store_n(&s->removing[pg], 1, __ATOMIC_RELEASE);
		cr_assert_eq(sim_domain_unmap(s->dom, IOVA + pg * SZ_4K,
					      SZ_4K), (int64_t)SZ_4K);
		/* In-flight DMA has finished: the page is frozen now. */
		s->snap[pg] = *(uint64_t *)(s->mem + pg * SZ_4K);
		__atomic_store_n(&s->removed[pg], 1, __ATOMIC_RELEASE);
		holes++;
		if (holes % 8 == 0)
			nanosleep(&ts, NULL);
	}
	/*
	 * However the threads were scheduled (a loaded CI machine may have
	 * starved them while the holes were punched): stop only when they
	 * have done what the test judges, DMAs that worked and DMAs that
	 * hit a hole.  The test's timeout bounds a hang.
	 */
	while (__atomic_load_n(&s->nr_ok, __ATOMIC_RELAXED) <= CC_MIN_OK ||
	       !__atomic_load_n(&s->nr_faulted, __ATOMIC_RELAXED))
		nanosleep(&ts, NULL);
	return holes;
}

static void cc_check_faults(struct cc_shared *s, struct sim_dev *dev,
			    unsigned long expect)
{
	struct sim_dev_stats st = dev_stats(dev);
	struct sim_fault f[64];
	unsigned int n, i;

	cr_assert_eq(st.faults + st.fault_overflows, expect,
		     "every faulting DMA leaves one record");
	while ((n = sim_dev_read_faults(dev, f, 64)))
		for (i = 0; i < n; i++) {
			cr_assert_eq(f[i].reason, SIM_FAULT_NOT_PRESENT);
			cr_assert(s->removing[(f[i].iova - IOVA) / SZ_4K]);
		}
}

Test(sim_dma, concurrent_dma_vs_hole_punching, .timeout = 300)
{
	struct cc_shared *s = calloc(1, sizeof(*s));
	struct cc_thread t[CC_THREADS];
	unsigned long holes, pg, ok = 0, faulted = 0, dev_faults[2] = { 0 };
	struct sim_pgt_stats pst;
	pthread_t th[CC_THREADS];
	unsigned int i;
	int fd = new_memfd(CC_SIZE, 0);

	s->mem = map_aligned(fd, CC_SIZE, SZ_2M);
	s->dom = new_domain(0);
	cr_assert_eq(sim_domain_map(s->dom, IOVA, CC_SIZE, (uintptr_t)s->mem,
				    RW), 0);
	s->dev[0] = new_dev(100, 0, s->dom);
	s->dev[1] = new_dev(101, 0, s->dom);
	for (i = 0; i < CC_THREADS; i++) {
		t[i] = (struct cc_thread){ .s = s, .idx = i, .seed = i + 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, cc_dma, &t[i]), 0);
	}
	holes = cc_punch(s);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < CC_THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(t[i].bad_fault, 0, "thread %u: %lu faults on "
			     "mapped pages", i, t[i].bad_fault);
		cr_assert_eq(t[i].missed_fault, 0, "thread %u: %lu DMAs reached"
			     " removed pages", i, t[i].missed_fault);
		cr_assert_eq(t[i].bad_data, 0);
		ok += t[i].ok;
		faulted += t[i].faulted;
		dev_faults[i == CC_THREADS - 1] += t[i].faulted;
	}
	cr_assert_gt(ok, CC_MIN_OK, "only %lu DMAs", ok);
	cr_assert_gt(faulted, 0);
	cc_check_faults(s, s->dev[0], dev_faults[0]);
	cc_check_faults(s, s->dev[1], dev_faults[1]);
	/* Memory holds exactly the last successful write of each page:
	 * nothing was written after its unmap returned. */
	for (pg = 0; pg < CC_PAGES; pg++) {
		cr_assert_eq(*(uint64_t *)(s->mem + pg * SZ_4K),
			     s->last_token[pg], "page %lu", pg);
		if (s->removed[pg])
			cr_assert_eq(s->snap[pg], s->last_token[pg],
				     "page %lu written after its unmap", pg);
	}
	sim_pgtable_stats(s->dom->pgt, &pst);
	cr_assert_eq(pst.mapped_bytes, CC_SIZE - holes * SZ_4K);
	cr_assert_gt(pst.splits, 0);
	sim_dev_destroy(s->dev[0]);
	sim_dev_destroy(s->dev[1]);
	cr_assert_eq(sim_domain_destroy(s->dom), 0);
	munmap(s->mem, CC_SIZE);
	close(fd);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Nested (two-stage) domains                                          */
/* ------------------------------------------------------------------ */

#define S1_RWU	(SIM_S1_P | SIM_S1_RW | SIM_S1_US)
#define NEST_MEM	(4 * SZ_2M)	/* guest memory: GPA 0..8M */
#define NEST_DATA	0x100000ULL	/* GVA i*4K -> GPA NEST_DATA + i*4K */
#define NEST_PAGES	256

struct nest_env {
	uint8_t *mem;			/* guest memory, 2 MiB aligned */
	int fd;
	struct sim_domain *s2, *nd;
	struct sim_dev *dev;
};

/* Tables of @levels levels at GPA 0x1000.. mapping NEST_PAGES pages. */
static uint64_t nest_tables(struct nest_env *e, unsigned int levels)
{
	uint64_t *t[5];

	for (unsigned int l = 0; l < levels; l++)
		t[l] = (uint64_t *)(e->mem + 0x1000 * (l + 1));
	/* t[0] is the root; each level's entry 0 points at the next */
	for (unsigned int l = 0; l + 1 < levels; l++)
		t[l][0] = (0x1000ULL * (l + 2)) | S1_RWU;
	for (unsigned int i = 0; i < NEST_PAGES; i++)
		t[levels - 1][i] = (NEST_DATA + i * SZ_4K) | S1_RWU;
	return 0x1000;
}

static void nest_setup(struct nest_env *e, unsigned int width)
{
	memset(e, 0, sizeof(*e));
	e->fd = new_memfd(NEST_MEM, 0);
	e->mem = map_aligned(e->fd, NEST_MEM, SZ_2M);
	e->s2 = new_domain(0);
	cr_assert_eq(sim_domain_map(e->s2, 0, NEST_MEM, (uintptr_t)e->mem,
				    RW), 0);
	cr_assert_eq(sim_nested_create(e->s2, nest_tables(e, width == 57 ?
							  5 : 4), width,
				       &e->nd), 0);
	e->dev = new_dev(1, 0, e->nd);
}

static void nest_teardown(struct nest_env *e)
{
	sim_dev_destroy(e->dev);
	cr_assert_eq(sim_domain_destroy(e->s2), -EBUSY,
		     "a parent with a nested domain must stay");
	cr_assert_eq(sim_domain_destroy(e->nd), 0);
	cr_assert_eq(sim_domain_destroy(e->s2), 0);
	munmap(e->mem, NEST_MEM);
	close(e->fd);
}

Test(sim_nested, five_levels_and_a_1g_leaf)
{
	uint64_t *pml5 = NULL, *pml4, hva, size;
	struct nest_env e;
	size_t done;
	uint8_t v = 0x77;

	nest_setup(&e, 57);
	cr_assert_eq(sim_dma_write(e.dev, 5 * SZ_4K, &v, 1, 0, &done), 0);
	cr_assert_eq(e.mem[NEST_DATA + 5 * SZ_4K], 0x77);
	/* PML4[1] (of PML5[0]) -> PDPT at 0x8000, whose entry 0 is a
	 * 1 GiB leaf at GPA 0: GVA 512G + x is GPA x */
	pml5 = (uint64_t *)(e.mem + 0x1000);
	pml4 = (uint64_t *)(e.mem + (pml5[0] & SIM_S1_ADDR_MASK));
	pml4[1] = 0x8000 | S1_RWU;
	((uint64_t *)(e.mem + 0x8000))[0] = 0 | S1_RWU | SIM_S1_PS;
	cr_assert_eq(sim_dma_write(e.dev, (1ULL << 39) + 0x234567, &v, 1, 0,
				   &done), 0);
	cr_assert_eq(e.mem[0x234567], 0x77);
	/* the combined page is stage 2's 2 MiB leaf, not the 1 GiB one */
	cr_assert_eq(sim_dev_translate(e.dev, (1ULL << 39) + 0x234567,
				       SIM_ACCESS_READ, &hva, &size), 0);
	cr_assert_eq(size, SZ_2M);
	cr_assert_eq(hva, (uintptr_t)e.mem + 0x234567);
	/* beyond the parent's 8 MiB: a stage-2 fault at the GPA */
	cr_assert_eq(sim_dma_write(e.dev, (1ULL << 39) + NEST_MEM, &v, 1, 0,
				   &done), -EFAULT);
	{
		struct sim_fault f = one_fault(e.dev);

		cr_assert_eq(f.stage, 2);
		cr_assert_eq(f.stage_addr, NEST_MEM);
		cr_assert_eq(f.domain_id, e.nd->id);
	}
	nest_teardown(&e);
}

struct nest_dma {
	struct nest_env *e;
	unsigned int rounds;
	int bad;
};

/* Reads every page again and again; each must hold its own pattern. */
static void *nest_reader(void *arg)
{
	struct nest_dma *d = arg;
	static uint8_t buf[NEST_PAGES * SZ_4K];
	size_t done;

	for (unsigned int r = 0; r < d->rounds; r++) {
		if (sim_dma_read(d->e->dev, 0, buf, sizeof(buf), 0, &done) ||
		    done != sizeof(buf)) {
			d->bad++;
			continue;
		}
		for (unsigned int i = 0; i < NEST_PAGES; i++)
			if (buf[i * SZ_4K] != (uint8_t)i)
				d->bad++;
	}
	return NULL;
}

/*
 * DMA through both stages while the nested domain is invalidated (ranges
 * and all) and the parent maps and unmaps a range stage 1 does not use
 * (each unmap drops the nested entries): every read translates right.
 */
Test(sim_nested, dma_vs_invalidation)
{
	struct nest_env e;
	struct nest_dma d = { .e = &e, .rounds = 200 };
	uint8_t *spare;
	pthread_t th;

	nest_setup(&e, 48);
	for (unsigned int i = 0; i < NEST_PAGES; i++)
		e.mem[NEST_DATA + i * SZ_4K] = (uint8_t)i;
	spare = e.mem + 3 * SZ_2M;
	cr_assert_eq(sim_domain_unmap(e.s2, 3 * SZ_2M, SZ_2M), SZ_2M);
	cr_assert_eq(pthread_create(&th, NULL, nest_reader, &d), 0);
	for (unsigned int k = 0; k < 200; k++) {
		sim_nested_invalidate(e.nd, (k % NEST_PAGES) * SZ_4K,
				      (k % NEST_PAGES) * SZ_4K + SZ_4K - 1);
		if (k % 16 == 0)
			sim_nested_invalidate(e.nd, 0, UINT64_MAX);
		cr_assert_eq(sim_domain_map(e.s2, 3 * SZ_2M, SZ_4K,
					    (uintptr_t)spare, RW), 0);
		cr_assert_eq(sim_domain_unmap(e.s2, 3 * SZ_2M, SZ_4K), SZ_4K);
	}
	pthread_join(th, NULL);
	cr_assert_eq(d.bad, 0, "%d bad reads", d.bad);
	cr_assert_eq(dev_stats(e.dev).faults, 0);
	nest_teardown(&e);
}

/*
 * Pre-copy against a device that keeps writing: every round copies the
 * pages a read-and-clear reported into a shadow; after the device stops,
 * one last round.  The shadow must then equal memory, page for page: a
 * write that landed after the clear that reported its page, and that no
 * later read reported, would leave an old copy behind.  The device
 * rewrites a few pages all the time, through cached translations, which
 * is where such a write would slip past (iotlb.h, steps 1-3).
 */
#define PC_PAGES	16
#define PC_ROUNDS	100

struct precopy_dev {
	struct sim_dev *dev;
	bool stop;
	uint64_t writes;
};

static void *precopy_writer(void *arg)
{
	struct precopy_dev *p = arg;
	uint64_t stamp = 0;
	size_t done;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		for (unsigned int i = 0; i < PC_PAGES; i++) {
			stamp++;
			sim_dma_write(p->dev, IOVA + i * SZ_4K + 64, &stamp,
				      sizeof(stamp), 0, &done);
		}
		__atomic_add_fetch(&p->writes, PC_PAGES, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void precopy_round(struct sim_domain *dom, const uint8_t *mem,
			  uint8_t *shadow)
{
	uint64_t bm[1] = { 0 };

	cr_assert_eq(sim_domain_read_and_clear_dirty(dom, IOVA,
						     PC_PAGES * SZ_4K, bm, 0),
		     0);
	for (unsigned int i = 0; i < PC_PAGES; i++)
		if (bm[0] & (1ULL << i))
			memcpy(shadow + i * SZ_4K, mem + i * SZ_4K, SZ_4K);
}

Test(sim_dma, precopy_loses_no_write)
{
	struct sim_domain *dom = new_domain(0);
	struct precopy_dev p = { .dev = new_dev(1, 0, dom) };
	size_t size = PC_PAGES * SZ_4K;
	int fd = new_memfd(size, 0);
	uint8_t *mem = map_aligned(fd, size, SZ_4K);
	uint8_t *shadow = calloc(1, size);
	pthread_t t;

	for (size_t o = 0; o < size; o += SZ_4K)
		cr_assert_eq(sim_domain_map(dom, IOVA + o, SZ_4K,
					    (uintptr_t)mem + o, RW), 0);
	cr_assert_eq(sim_domain_set_dirty_tracking(dom, true), 0);
	memcpy(shadow, mem, size);	/* the first full copy */
	pthread_create(&t, NULL, precopy_writer, &p);
	/* rounds only once the device really writes between them */
	for (int round = 0; round < PC_ROUNDS; round++) {
		uint64_t w = __atomic_load_n(&p.writes, __ATOMIC_RELAXED);

		precopy_round(dom, mem, shadow);
		while (__atomic_load_n(&p.writes, __ATOMIC_RELAXED) == w)
			sched_yield();
	}
	__atomic_store_n(&p.stop, true, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	precopy_round(dom, mem, shadow);	/* stop-and-copy */
	for (unsigned int i = 0; i < PC_PAGES; i++)
		cr_assert_arr_eq(shadow + i * SZ_4K, mem + i * SZ_4K, SZ_4K,
				 "page %u: a write was lost (%llu writes)", i,
				 (unsigned long long)p.writes);
	sim_dev_destroy(p.dev);
	cr_assert_eq(sim_domain_destroy(dom), 0);
	free(shadow);
	munmap(mem, size);
	close(fd);
}
