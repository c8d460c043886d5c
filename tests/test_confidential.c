/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Confidential guest memory: restricted IOASes, page-granular shared/private
 * conversion, guest_memfd, and the ordering guarantee (no DMA reaches a page
 * after its to-private conversion returned; unchanged pages never fault).
 * Runs unchanged against ioasidd when IOASID_TEST_URI=unix:PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define NIC "0000:00:01.0"
#define VIRTIO "0000:01:01.0"
#define PRIV IOASID_CONVERT_PRIVATE
#define SHARED IOASID_CONVERT_SHARED

static struct ioasid_ctx *restricted(uint32_t *ioas, uint32_t flags,
				     uint32_t *dev, const char *name)
{
	struct ioasid_ctx *ctx = test_ctx();

	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED | flags, ioas), 0);
	cr_assert_eq(ioasid_device_bind(ctx, name, -1, dev), 0);
	cr_assert_eq(ioasid_device_attach(ctx, *dev, *ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	return ctx;
}

static int convert1(struct ioasid_ctx *ctx, uint32_t ioas, uint64_t start,
		    uint64_t len, uint32_t flags)
{
	struct ioasid_iova_range r = { start, start + len - 1 };

	return ioasid_convert(ctx, ioas, &r, 1, flags, NULL);
}

static uint32_t last_fault_reason(struct ioasid_ctx *ctx)
{
	struct ioasid_fault f[8];
	uint32_t nr = 8;

	cr_assert_eq(ioasid_fault_read(ctx, f, &nr), 0);
	cr_assert_gt(nr, 0, "a fault record was queued");
	return f[nr - 1].reason;
}

Test(convert, errors)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_iova_range r = { 0x1000, 0x1fff }, bad = { 0x1000, 0x17ff };
	uint32_t plain, restr;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &plain), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED, &restr), 0);
	cr_assert_eq(ioasid_convert(ctx, plain, &r, 1, PRIV, NULL), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "not restricted"));
	cr_assert_eq(ioasid_convert(ctx, restr, &bad, 1, PRIV, NULL), -EINVAL);
	cr_assert_eq(ioasid_convert(ctx, restr, &r, 1, PRIV | SHARED, NULL), -EINVAL);
	cr_assert_eq(ioasid_convert(ctx, restr, &r, 1, 0, NULL), -EINVAL);
	cr_assert_eq(ioasid_convert(ctx, restr, &r, 1, 0x40, NULL), -EOPNOTSUPP);
	cr_assert_eq(ioasid_convert(ctx, restr, NULL, 1, PRIV, NULL), -EINVAL);
	cr_assert_eq(ioasid_convert(ctx, restr, &r, 0, PRIV, NULL), -EINVAL);
	cr_assert_eq(ioasid_convert(ctx, 999, &r, 1, PRIV, NULL), -ENOENT);
	ioasid_unref(ctx);
}

Test(convert, pages_start_private_and_flip)
{
	uint32_t ioas, nic;
	struct ioasid_ctx *ctx = restricted(&ioas, 0, &nic, NIC);
	int fd = test_memfd(4 * MiB);
	uint64_t iova = 0x200000, done, converted;
	uint8_t buf[8192], got[8192];

	memset(buf, 0x5a, sizeof(buf));
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 4 * MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, 4096, IOASID_DMA_WRITE,
				       &done), -EFAULT, "private until shared");
	cr_assert_eq(last_fault_reason(ctx), IOASID_FAULT_PRIVATE);

	struct ioasid_iova_range r = { iova + 4096, iova + 3 * 4096 - 1 };

	cr_assert_eq(ioasid_convert(ctx, ioas, &r, 1, SHARED, &converted), 0);
	cr_assert_eq(converted, 8192);
	cr_assert_eq(ioasid_convert(ctx, ioas, &r, 1, SHARED, &converted), 0);
	cr_assert_eq(converted, 0, "already shared: nothing changes");
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 4096, buf, 8192,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(pread(fd, got, 8192, 4096), 8192);
	cr_assert_arr_eq(got, buf, 8192);
	/* back to private: DMA faults, memory untouched */
	cr_assert_eq(convert1(ctx, ioas, iova + 8192, 4096, PRIV), 0);
	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 4096, buf, 8192,
				       IOASID_DMA_WRITE, &done), -EFAULT);
	cr_assert_eq(done, 4096);
	cr_assert_eq(last_fault_reason(ctx), IOASID_FAULT_PRIVATE);
	cr_assert_eq(pread(fd, got, 4096, 8192), 4096);
	memset(buf, 0x5a, sizeof(buf));
	cr_assert_arr_eq(got, buf, 4096, "the private page kept its data");
	close(fd);
	ioasid_unref(ctx);
}

Test(convert, across_mappings_and_files_in_one_batch)
{
	uint32_t ioas, nic;
	struct ioasid_ctx *ctx = restricted(&ioas, 0, &nic, NIC);
	int a = test_memfd(MiB), b = test_memfd(MiB);
	uint64_t iova = 0x100000, done, converted;
	struct ioasid_iova_range batch[3] = {
		{ 0x100000 + MiB - 8192, 0x100000 + MiB + 8191 },	/* a|b */
		{ 0x100000, 0x100fff },
		{ 0x100000 + 2 * MiB - 4096, 0x100000 + 2 * MiB - 1 },
	};
	uint8_t buf[16384];

	cr_assert_eq(ioasid_map_file(ctx, ioas, a, 0, MiB, RW | FIXED, &iova), 0);
	iova += MiB;
	cr_assert_eq(ioasid_map_file(ctx, ioas, b, 0, MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_convert(ctx, ioas, batch, 3, SHARED, &converted), 0);
	cr_assert_eq(converted, 16384 + 4096 + 4096);
	memset(buf, 0x33, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x100000 + MiB - 8192, buf,
				       sizeof(buf), IOASID_DMA_WRITE, &done), 0,
		     "one DMA across two files");
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x100000, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x101000, buf, 4096, 0, &done),
		     -EFAULT);
	cr_assert_eq(ioasid_convert(ctx, ioas, batch, 3, PRIV, &converted), 0);
	cr_assert_eq(converted, 16384 + 4096 + 4096);
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x100000, buf, 4096, 0, &done),
		     -EFAULT);
	close(a);
	close(b);
	ioasid_unref(ctx);
}

Test(convert, shared_state_survives_unmap_and_new_domains)
{
	uint32_t ioas, nic, gpu;
	struct ioasid_ctx *ctx = restricted(&ioas, 0, &nic, NIC);
	int fd = test_memfd(MiB);
	uint64_t iova = 0x100000, done;
	uint8_t buf[4096];

	cr_assert_eq(convert1(ctx, ioas, 0x100000, 8192, SHARED), -ENOENT, "%s",
		     ioasid_last_error(ctx));
	cr_assert(strstr(ioasid_last_error(ctx), "not all mapped"));
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(convert1(ctx, ioas, 0x100000 - 4096, 8192, SHARED), -ENOENT,
		     "a range half outside the mapping is refused");
	cr_assert_eq(convert1(ctx, ioas, 0x100000, 8192, SHARED), 0);
	/* the state outlives the mapping: a new one sees the same pages */
	cr_assert_eq(ioasid_unmap(ctx, ioas, 0x100000, MiB, 0, NULL), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x101000, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, 0x102000, buf, 4096, 0, &done),
		     -EFAULT);
	/* a second domain (other IOMMU) sees exactly the shared pages */
	cr_assert_eq(ioasid_device_bind(ctx, "0000:01:00.0", -1, &gpu), 0);
	cr_assert_eq(ioasid_device_attach(ctx, gpu, ioas, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, gpu, 0x101000, buf, 4096, 0, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, gpu, 0x102000, buf, 4096, 0, &done),
		     -EFAULT);
	close(fd);
	ioasid_unref(ctx);
}

Test(convert, identity_restricted_for_devices_that_do_not_translate)
{
	uint32_t ioas, virtio;
	struct ioasid_ctx *ctx = restricted(&ioas, IOASID_IOAS_IDENTITY, &virtio,
					    VIRTIO);
	struct ioasid_device_info info;
	int fd = test_memfd(MiB);
	uint64_t gpa = 0x80000000, done;
	uint8_t buf[4096] = { 9 };

	cr_assert_eq(ioasid_device_get_info(ctx, VIRTIO, &info), 0);
	cr_assert_eq(info.platform, IOASID_PLATFORM_RESTRICTED |
				    IOASID_PLATFORM_ACCESS_PLATFORM,
		     "guest-physical addresses, restricted: ACCESS_PLATFORM "
		     "must be offered and kept");
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &gpa), 0);
	cr_assert_eq(convert1(ctx, ioas, gpa, 4096, SHARED), 0);	/* bounce buffer */
	cr_assert_eq(ioasid_device_dma(ctx, virtio, gpa, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, virtio, gpa + 4096, buf, 4096,
				       IOASID_DMA_WRITE, &done), -EFAULT);
	close(fd);
	ioasid_unref(ctx);
}

/* ---- guest_memfd ---------------------------------------------------------------- */

struct gmem_args {
	uint64_t size, flags, reserved[6];
};

static int create_gmem(int *vm, int *kvm, uint64_t size, uint64_t flags)
{
	struct gmem_args a = { .size = size, .flags = flags };
	int fd;

	*kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm < 0)
		cr_skip_test("no /dev/kvm: %s", strerror(errno));
	*vm = ioctl(*kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
	cr_assert(*vm >= 0, "KVM_CREATE_VM");
	fd = ioctl(*vm, _IOWR(0xAE, 0xd4, struct gmem_args), &a);
	if (fd < 0)
		cr_skip_test("KVM lacks guest_memfd with flags 0x%llx: %s",
			     (unsigned long long)flags, strerror(errno));
	return fd;
}

Test(gmem, shared_guest_memfd_is_mapped_and_used)
{
	uint32_t ioas, nic;
	int kvm, vm, fd = create_gmem(&vm, &kvm, 2 * MiB, 3 /* MMAP|INIT_SHARED */);
	struct ioasid_ctx *ctx = restricted(&ioas, 0, &nic, NIC);
	uint64_t iova = 0x40000000, done;
	uint8_t buf[4096], back[4096];

	memset(buf, 0x77, sizeof(buf));
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 2 * MiB, RW | FIXED, &iova), 0,
		     "%s", ioasid_last_error(ctx));
	close(fd);
	cr_assert_eq(convert1(ctx, ioas, iova, 2 * MiB, SHARED), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 4096, buf, 4096,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova + 4096, back, 4096, 0, &done), 0);
	cr_assert_arr_eq(back, buf, 4096);
	ioasid_unref(ctx);
	close(vm);
	close(kvm);
}

Test(gmem, private_guest_memfd_is_refused)
{
	uint32_t ioas, plain, nic;
	int kvm, vm, fd = create_gmem(&vm, &kvm, 2 * MiB, 1 /* MMAP, private */);
	struct ioasid_ctx *ctx = restricted(&ioas, 0, &nic, NIC);
	uint64_t iova = 0x40000000, done;
	struct ioasid_ioas_info info;
	uint8_t buf[64];

	/* an unrestricted IOAS would expose the pages at once: refused */
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &plain), 0);
	cr_assert_eq(ioasid_map_file(ctx, plain, fd, 0, 2 * MiB, RW | FIXED, &iova),
		     -EPERM);
	cr_assert(strstr(ioasid_last_error(ctx), "private"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ioas_get_info(ctx, plain, &info), 0);
	cr_assert_eq(info.nr_mappings, 0);
	/* a restricted IOAS keeps it hidden; sharing it is refused, undone */
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 2 * MiB, RW | FIXED, &iova), 0);
	cr_assert_eq(convert1(ctx, ioas, iova, 2 * MiB, SHARED), -EPERM);
	cr_assert(strstr(ioasid_last_error(ctx), "private"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_dma(ctx, nic, iova, buf, sizeof(buf), 0, &done),
		     -EFAULT, "still unreachable");
	cr_assert_eq(last_fault_reason(ctx), IOASID_FAULT_PRIVATE);
	close(fd);
	ioasid_unref(ctx);
	close(vm);
	close(kvm);
}

/* ---- a conversion storm beside DMA ------------------------------------------------- */

#define STORM_PAGES 4096	/* 16 MiB */

struct storm {
	struct ioasid_ctx *ctx;
	uint32_t dev;
	uint64_t base;
	/*
	 * Pages 0..STORM_PAGES/2-1 stay shared; the others flip.  state: 0
	 * shared, 1 being made private, 2 private (the conversion returned);
	 * gen counts changes, so a DMA judges only against a state that held
	 * from before it started until after it ended.
	 */
	uint8_t private_after[STORM_PAGES];
	uint32_t gen[STORM_PAGES];
	volatile int stop;
	uint64_t faults_on_kept, reached_private, dmas;
	uint32_t seed;
};

static void *storm_dma(void *p)
{
	struct storm *s = p;
	uint32_t x = __atomic_add_fetch(&s->seed, 7919, __ATOMIC_RELAXED);
	uint8_t buf[4096];
	uint64_t done;

	while (!s->stop) {
		uint32_t page, gen;
		int r, priv, stable;

		x = x * 1103515245 + 12345;
		page = (x >> 8) % STORM_PAGES;
		/* seqlock read: an odd generation is a conversion under way */
		gen = __atomic_load_n(&s->gen[page], __ATOMIC_SEQ_CST);
		priv = __atomic_load_n(&s->private_after[page], __ATOMIC_SEQ_CST);
		r = ioasid_device_dma(s->ctx, s->dev, s->base + page * 4096ULL, buf,
				      sizeof(buf), 0, &done);
		stable = !(gen & 1) &&
			 __atomic_load_n(&s->gen[page], __ATOMIC_SEQ_CST) == gen;
		if (page < STORM_PAGES / 2 && r != 0)
			__atomic_add_fetch(&s->faults_on_kept, 1, __ATOMIC_RELAXED);
		if (page >= STORM_PAGES / 2 && priv == 2 && stable && r == 0)
			__atomic_add_fetch(&s->reached_private, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->dmas, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(convert, storm_beside_dma, .timeout = 120)
{
	static struct storm s;
	uint32_t ioas, x = 99;
	pthread_t t[2];
	int fd = test_memfd(STORM_PAGES * 4096ULL);
	uint64_t iova = 0x100000000ULL;

	memset(&s, 0, sizeof(s));
	s.ctx = restricted(&ioas, 0, &s.dev, NIC);
	s.base = iova;
	cr_assert_eq(ioasid_map_file(s.ctx, ioas, fd, 0, STORM_PAGES * 4096ULL,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(convert1(s.ctx, ioas, s.base, STORM_PAGES * 4096ULL, SHARED), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, storm_dma, &s), 0);
	while (__atomic_load_n(&s.dmas, __ATOMIC_RELAXED) < 500)
		;
	for (int i = 0; i < 3000; i++) {
		uint32_t page;
		int to_private;

		x = x * 1103515245 + 12345;
		page = STORM_PAGES / 2 + (x >> 8) % (STORM_PAGES / 2);
		to_private = !s.private_after[page];
		/* seqlock write: odd while the page's state is changing */
		__atomic_add_fetch(&s.gen[page], 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&s.private_after[page], to_private ? 1 : 0,
				 __ATOMIC_SEQ_CST);
		cr_assert_eq(convert1(s.ctx, ioas, s.base + page * 4096ULL, 4096,
				      to_private ? PRIV : SHARED), 0);
		if (to_private)	/* 2: the conversion has returned */
			__atomic_store_n(&s.private_after[page], 2, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&s.gen[page], 1, __ATOMIC_SEQ_CST);
	}
	s.stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_log_info("%llu DMAs during 3000 conversions", (unsigned long long)s.dmas);
	cr_assert_eq(s.faults_on_kept, 0, "pages that stayed shared never faulted");
	cr_assert_eq(s.reached_private, 0, "no DMA reached a page after it went private");
	close(fd);
	ioasid_unref(s.ctx);
}
