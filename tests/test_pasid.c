/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PASIDs of a device on the simulated IOMMU through the public API:
 * the capability (ioasid_device_info.pasid_bits, the unit's PASID
 * support), attach, replace, detach and list, and DMA tagged with a
 * PASID translating through that PASID's IOAS and no other, checked
 * byte by byte against the backing memfds.  Every refusal: errno, the
 * reason, nothing changed.  Runs unchanged against ioasidd when
 * IOASID_TEST_URI=unix:PATH (tests/conformance-test_pasid.sh).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA)
#define IOVA 0x100000ull
#define LEN 0x10000ull

/* The built-in topology (libioasid/backends/sim/topology.c) */
#define GPU0 "0000:00:03.0"	/* sim0 (PASID), pasid=20, no-snoop */
#define NIC "0000:00:01.0"	/* sim0, no PASID capability */
#define GPU1 "0000:01:00.0"	/* sim1 (no PASID support) */

struct rig {
	struct ioasid_ctx *ctx;
	uint32_t dev, a, b;
	int ma, mb;
};

static void rig_up(struct rig *r)
{
	uint64_t iova = IOVA;

	r->ctx = test_ctx();
	r->ma = test_memfd(LEN);
	r->mb = test_memfd(LEN);
	cr_assert_eq(ioasid_device_bind(r->ctx, GPU0, -1, &r->dev), 0);
	cr_assert_eq(ioasid_ioas_alloc(r->ctx, 0, &r->a), 0);
	cr_assert_eq(ioasid_ioas_alloc(r->ctx, 0, &r->b), 0);
	cr_assert_eq(ioasid_map_file(r->ctx, r->a, r->ma, 0, LEN, RW, &iova),
		     0);
	iova = IOVA;
	cr_assert_eq(ioasid_map_file(r->ctx, r->b, r->mb, 0, LEN, RW, &iova),
		     0);
	cr_assert_eq(ioasid_device_attach(r->ctx, r->dev, r->a, 0), 0, "%s",
		     ioasid_last_error(r->ctx));
}

static void rig_down(struct rig *r)
{
	close(r->ma);
	close(r->mb);
	ioasid_unref(r->ctx);
}

static int dma_pasid(struct rig *r, uint32_t pasid, uint64_t off, uint8_t v)
{
	uint8_t buf[256];

	memset(buf, v, sizeof(buf));
	return ioasid_device_dma_pasid(r->ctx, r->dev, pasid, IOVA + off, buf,
				       sizeof(buf), IOASID_DMA_WRITE, NULL);
}

static uint8_t byte_at(int fd, uint64_t off)
{
	uint8_t b = 0;

	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	return b;
}

static void expect_err(struct ioasid_ctx *ctx, int r, int want,
		       const char *text)
{
	cr_assert_eq(r, -want, "got %d (%s), want -%d", r,
		     ioasid_last_error(ctx), want);
	cr_assert(strstr(ioasid_last_error(ctx), text), "\"%s\" lacks \"%s\"",
		  ioasid_last_error(ctx), text);
}

Test(pasid, capability_in_device_info)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_device_info d;

	cr_assert_eq(ioasid_device_get_info(ctx, GPU0, &d), 0);
	cr_assert_eq(d.pasid_bits, 20);
	cr_assert_eq(d.nr_pasids, 0);
	cr_assert_eq(ioasid_device_get_info(ctx, NIC, &d), 0);
	cr_assert_eq(d.pasid_bits, 0);
	ioasid_unref(ctx);
}

Test(pasid, dma_translates_through_the_pasids_ioas)
{
	struct rig r;
	struct ioasid_pasid_info p[4];
	struct ioasid_device_info d;
	uint32_t nr = 4;

	rig_up(&r);
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, 5, r.b, 0), 0,
		     "%s", ioasid_last_error(r.ctx));
	cr_assert_eq(dma_pasid(&r, 5, 0x100, 0x55), 0, "%s",
		     ioasid_last_error(r.ctx));
	cr_assert_eq(byte_at(r.mb, 0x100), 0x55, "PASID 5's DMA in B");
	cr_assert_eq(byte_at(r.ma, 0x100), 0, "and not in A");
	/* the device's own DMA still goes to A */
	cr_assert_eq(ioasid_device_dma(r.ctx, r.dev, IOVA + 0x200,
				       (uint8_t[4]){ 7, 7, 7, 7 }, 4,
				       IOASID_DMA_WRITE, NULL), 0);
	cr_assert_eq(byte_at(r.ma, 0x200), 7);
	cr_assert_eq(byte_at(r.mb, 0x200), 0);
	cr_assert_eq(ioasid_device_pasid_list(r.ctx, r.dev, p, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(p[0].pasid, 5);
	cr_assert_eq(p[0].ioas_id, r.b);
	cr_assert_neq(p[0].domain_id, 0);
	cr_assert_eq(ioasid_device_get_info(r.ctx, GPU0, &d), 0);
	cr_assert_eq(d.nr_pasids, 1);
	rig_down(&r);
}

Test(pasid, unattached_pasid_is_blocked)
{
	struct rig r;
	struct ioasid_fault f[8];
	uint32_t nr = 8;

	rig_up(&r);
	while (ioasid_fault_read(r.ctx, f, &nr) == 0 && nr)
		nr = 8;
	cr_assert_eq(dma_pasid(&r, 6, 0, 1), -EFAULT);
	cr_assert_eq(byte_at(r.ma, 0), 0);
	cr_assert_eq(byte_at(r.mb, 0), 0);
	nr = 8;
	cr_assert_eq(ioasid_fault_read(r.ctx, f, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(f[0].reason, IOASID_FAULT_BLOCKED);
	cr_assert_eq(f[0].iova, IOVA);
	rig_down(&r);
}

Test(pasid, replace_and_detach)
{
	struct rig r;
	uint32_t nr = 0;

	rig_up(&r);
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, 9, r.b, 0), 0);
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 9, r.a, 0),
		   EBUSY, "use replace");
	cr_assert_eq(ioasid_device_pasid_replace(r.ctx, r.dev, 9, r.a, 0), 0);
	cr_assert_eq(dma_pasid(&r, 9, 0x300, 0x99), 0);
	cr_assert_eq(byte_at(r.ma, 0x300), 0x99, "replaced: now in A");
	cr_assert_eq(byte_at(r.mb, 0x300), 0);
	cr_assert_eq(ioasid_device_pasid_replace(r.ctx, r.dev, 9, r.a, 0), 0,
		     "to where it is: nothing to do");
	expect_err(r.ctx, ioasid_device_pasid_replace(r.ctx, r.dev, 10, r.a,
						      0),
		   EINVAL, "not attached");
	cr_assert_eq(ioasid_device_pasid_detach(r.ctx, r.dev, 9), 0);
	cr_assert_eq(dma_pasid(&r, 9, 0x400, 0x44), -EFAULT);
	cr_assert_eq(byte_at(r.ma, 0x400), 0);
	expect_err(r.ctx, ioasid_device_pasid_detach(r.ctx, r.dev, 9), EINVAL,
		   "not attached");
	cr_assert_eq(ioasid_device_pasid_list(r.ctx, r.dev, NULL, &nr), 0);
	cr_assert_eq(nr, 0);
	rig_down(&r);
}

Test(pasid, refusals_change_nothing)
{
	struct rig r;
	uint32_t nic = 0, gpu1 = 0, c = 0, nr = 0;

	rig_up(&r);
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 0, r.b, 0),
		   EINVAL, "PASID 0");
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 1u << 20,
						     r.b, 0),
		   EINVAL, "20-bit PASID width");
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 3, r.b, 8),
		   EOPNOTSUPP, "unknown PASID attach flags");
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, 3, 999, 0),
		     -ENOENT);
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, 999, 3, r.b, 0),
		     -ENOENT);
	cr_assert_eq(ioasid_device_bind(r.ctx, NIC, -1, &nic), 0);
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, nic, 3, r.b, 0),
		   EOPNOTSUPP, "no PASID capability");
	cr_assert_eq(ioasid_device_bind(r.ctx, GPU1, -1, &gpu1), 0);
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, gpu1, 3, r.b, 0),
		   EOPNOTSUPP, "does not support PASIDs");
	/* a device that may do no-snoop DMA: only enforcing domains */
	cr_assert_eq(ioasid_ioas_alloc(r.ctx, 0, &c), 0);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(r.ctx, c, IOASID_SNOOP_ALLOW),
		     0);
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 3, c, 0),
		   EPERM, "no-snoop");
	expect_err(r.ctx, ioasid_device_dma_pasid(r.ctx, r.dev, 0, IOVA,
						  &nr, 4, 0, NULL),
		   EINVAL, "PASID 0");
	cr_assert_eq(ioasid_device_pasid_list(r.ctx, r.dev, NULL, &nr), 0);
	cr_assert_eq(nr, 0, "nothing attached by any of it");
	cr_assert_eq(ioasid_ioas_destroy(r.ctx, c), 0);
	rig_down(&r);
}

Test(pasid, holds_its_ioas_until_unbind)
{
	struct rig r;

	rig_up(&r);
	cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, 7, r.b, 0), 0);
	expect_err(r.ctx, ioasid_ioas_destroy(r.ctx, r.b), EBUSY, "PASID");
	cr_assert_eq(ioasid_device_unbind(r.ctx, r.dev), 0);
	cr_assert_eq(ioasid_ioas_destroy(r.ctx, r.b), 0, "%s",
		     ioasid_last_error(r.ctx));
	rig_down(&r);
}

Test(pasid, at_most_64_per_device)
{
	struct rig r;
	uint32_t nr = 0;

	rig_up(&r);
	for (uint32_t p = 1; p <= 64; p++)
		cr_assert_eq(ioasid_device_pasid_attach(r.ctx, r.dev, p, r.b,
							0), 0, "PASID %u: %s",
			     p, ioasid_last_error(r.ctx));
	expect_err(r.ctx, ioasid_device_pasid_attach(r.ctx, r.dev, 65, r.b, 0),
		   ENOSPC, "64 PASIDs");
	cr_assert_eq(ioasid_device_pasid_list(r.ctx, r.dev, NULL, &nr),
		     -EMSGSIZE);
	cr_assert_eq(nr, 64);
	cr_assert_eq(dma_pasid(&r, 64, 0x500, 0x64), 0);
	cr_assert_eq(byte_at(r.mb, 0x500), 0x64);
	rig_down(&r);
}
