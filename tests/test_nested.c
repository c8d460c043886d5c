/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nested translation on the simulated IOMMU through the public API: a
 * guest's VT-d first-stage table built in a memfd that the nest-parent
 * IOAS maps (IOVA = guest-physical address), devices attached to the
 * nested table, DMA checked byte by byte at the guest-physical page the
 * stage-1 entry names, the IOTLB keeping a stale stage-1 translation
 * until an invalidation covers it, stage-2 unmaps dropping combined
 * entries, faults at the stage that failed, and every refusal.  Runs
 * unchanged against ioasidd when IOASID_TEST_URI=unix:PATH.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "snapshot.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA

/* Devices of the built-in topology (libioasid/backends/sim/default.topology) */
#define NIC "0000:00:01.0"		/* sim0 (nesting), group 1 */
#define GPU0 "0000:00:03.0"		/* sim0, group 3 */
#define GPU1 "0000:01:00.0"		/* sim1: no nesting */
/* GPU0 has 20-bit PASIDs (sim0 supports them), and may do no-snoop DMA */

/* x86-64 paging bits of a VT-d first-stage entry */
#define P (1ULL << 0)
#define W (1ULL << 1)
#define U (1ULL << 2)
#define PS (1ULL << 7)

/*
 * Guest memory: an 8 MiB memfd, its first 64 KiB (the page tables) and
 * the rest (data) mapped as two mappings of the parent at GPA_BASE.
 */
#define GPA_BASE	0x40000000ULL
#define MEM_SIZE	(8 * MiB)
#define TABLES_SIZE	(64 * KiB)
#define PML4		0x0000ULL	/* offsets in the memfd */
#define PDPT		0x1000ULL
#define PD		0x2000ULL
#define PT		0x3000ULL
#define PAGE_A		0x10000ULL
#define PAGE_B		0x11000ULL
#define PAGE_C		0x12000ULL
#define LARGE		0x200000ULL	/* a 2 MiB page, 2 MiB aligned */
/* Guest IOVAs (stage-1 inputs) */
#define GVA		0x200000ULL	/* PD[1] -> PT: PT[0] A, PT[1] B */
#define GVA_RO		(GVA + 2 * 4096)	/* PT[2]: read-only */
#define GVA_SUPER	(GVA + 3 * 4096)	/* PT[3]: no U */
#define GVA_OUTSIDE	(GVA + 4 * 4096)	/* PT[4]: GPA not mapped */
#define GVA_LARGE	0x400000ULL	/* PD[2]: 2 MiB leaf at LARGE */
#define GVA_HOLE	0x600000ULL	/* PD[3]: not present */
#define GPA_UNMAPPED	0x70000000ULL

struct guest {
	struct ioasid_ctx *ctx;
	uint32_t ioas, dev, nested;
	int fd;
	uint8_t *mem;			/* the memfd, as the guest sees it */
};

static uint64_t gpa(uint64_t off)
{
	return GPA_BASE + off;
}

static uint64_t *entry(struct guest *g, uint64_t table, unsigned int i)
{
	return (uint64_t *)(g->mem + table) + i;
}

/* The guest's stage-1 table. */
static void build_tables(struct guest *g)
{
	*entry(g, PML4, 0) = gpa(PDPT) | P | W | U;
	*entry(g, PDPT, 0) = gpa(PD) | P | W | U;
	*entry(g, PD, 1) = gpa(PT) | P | W | U;
	*entry(g, PT, 0) = gpa(PAGE_A) | P | W | U;
	*entry(g, PT, 1) = gpa(PAGE_B) | P | W | U;
	*entry(g, PT, 2) = gpa(PAGE_C) | P | U;
	*entry(g, PT, 3) = gpa(PAGE_C) | P | W;
	*entry(g, PT, 4) = GPA_UNMAPPED | P | W | U;
	*entry(g, PD, 2) = gpa(LARGE) | P | W | U | PS;
}

static uint32_t bind(struct ioasid_ctx *ctx, const char *name)
{
	uint32_t id = 0;

	cr_assert_eq(ioasid_device_bind(ctx, name, -1, &id), 0, "bind %s: %s",
		     name, ioasid_last_error(ctx));
	return id;
}

static struct ioasid_nested_vtd_s1 s1_at(uint64_t root)
{
	return (struct ioasid_nested_vtd_s1){
		.pgtbl_addr = root, .addr_width = 48,
	};
}

static int alloc_s1(struct guest *g, uint64_t root, uint32_t *id)
{
	struct ioasid_nested_vtd_s1 s1 = s1_at(root);

	return ioasid_nested_alloc(g->ctx, g->ioas, g->dev,
				   IOASID_NESTED_VTD_S1, &s1, sizeof(s1), 0,
				   id);
}

static void guest_setup_dev(struct guest *g, const char *name);

/* Guest memory in a nest-parent IOAS and the NIC bound, not attached. */
static void guest_setup(struct guest *g)
{
	guest_setup_dev(g, NIC);
}

/* ... and device @name bound instead. */
static void guest_setup_dev(struct guest *g, const char *name)
{
	uint64_t iova;

	memset(g, 0, sizeof(*g));
	g->ctx = test_ctx();
	cr_assert_eq(ioasid_ioas_alloc(g->ctx, IOASID_IOAS_NEST_PARENT,
				       &g->ioas), 0, "%s",
		     ioasid_last_error(g->ctx));
	g->fd = test_memfd(MEM_SIZE);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->fd, 0);
	cr_assert(g->mem != MAP_FAILED);
	build_tables(g);
	iova = gpa(0);
	cr_assert_eq(ioasid_map_file(g->ctx, g->ioas, g->fd, 0, TABLES_SIZE,
				     RW | FIXED, &iova), 0, "%s",
		     ioasid_last_error(g->ctx));
	iova = gpa(TABLES_SIZE);
	cr_assert_eq(ioasid_map_file(g->ctx, g->ioas, g->fd, TABLES_SIZE,
				     MEM_SIZE - TABLES_SIZE, RW | FIXED,
				     &iova), 0, "%s",
		     ioasid_last_error(g->ctx));
	g->dev = bind(g->ctx, name);
}

/* ... and a nested table over it with the NIC attached. */
static void guest_setup_nested(struct guest *g)
{
	guest_setup(g);
	cr_assert_eq(alloc_s1(g, gpa(PML4), &g->nested), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_neq(g->nested, 0);
	cr_assert_eq(ioasid_device_attach_nested(g->ctx, g->dev, g->nested, 0),
		     0, "%s", ioasid_last_error(g->ctx));
}

static void guest_teardown(struct guest *g)
{
	munmap(g->mem, MEM_SIZE);
	close(g->fd);
	ioasid_unref(g->ctx);
}

static int dev_write(struct guest *g, uint64_t iova, const void *buf,
		     uint64_t len)
{
	uint64_t done = 0;

	return ioasid_device_dma(g->ctx, g->dev, iova, (void *)buf, len,
				 IOASID_DMA_WRITE, &done);
}

static int dev_read(struct guest *g, uint64_t iova, void *buf, uint64_t len)
{
	uint64_t done = 0;

	return ioasid_device_dma(g->ctx, g->dev, iova, buf, len, 0, &done);
}

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 37 + i * 11 + (i >> 12));
}

static void write_and_check(struct guest *g, uint64_t iova, uint64_t off,
			    size_t len, uint32_t seed)
{
	uint8_t *buf = malloc(len);

	cr_assert(buf);
	pattern(buf, len, seed);
	cr_assert_eq(dev_write(g, iova, buf, len), 0, "DMA to 0x%llx: %s",
		     (unsigned long long)iova, ioasid_last_error(g->ctx));
	cr_assert_eq(memcmp(g->mem + off, buf, len), 0,
		     "DMA to 0x%llx did not land at GPA 0x%llx",
		     (unsigned long long)iova,
		     (unsigned long long)gpa(off));
	free(buf);
}

/* The single fault record the last DMA left. */
static struct ioasid_fault one_fault(struct guest *g)
{
	struct ioasid_fault f[4];
	uint32_t nr = 4;

	cr_assert_eq(ioasid_fault_read(g->ctx, f, &nr), 0);
	cr_assert_eq(nr, 1, "%u fault records", nr);
	return f[0];
}

static void expect_fault(struct guest *g, uint32_t stage, uint32_t reason,
			 uint64_t iova, uint64_t stage_addr)
{
	struct ioasid_fault f = one_fault(g);

	cr_assert_eq(f.flags & (IOASID_FAULT_STAGE1 | IOASID_FAULT_STAGE2),
		     stage, "flags 0x%x", f.flags);
	cr_assert_eq(f.reason, reason, "reason %u", f.reason);
	cr_assert_eq(f.iova, iova, "iova 0x%llx", (unsigned long long)f.iova);
	cr_assert_eq(f.stage_addr, stage_addr, "stage_addr 0x%llx",
		     (unsigned long long)f.stage_addr);
	cr_assert_eq(f.nested_id, g->nested);
	cr_assert_eq(f.dev_id, g->dev);
}

static void invalidate_range(struct guest *g, uint64_t addr, uint64_t npages)
{
	struct ioasid_nested_inval e = { .addr = addr, .npages = npages };
	int32_t err = 1;
	uint32_t nr = 1;

	cr_assert_eq(ioasid_nested_invalidate(g->ctx, g->nested, &e, &nr,
					      &err), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(nr, 1);
	cr_assert_eq(err, 0);
}

/* ---- translation ------------------------------------------------------------ */

Test(nested, dma_lands_at_the_stage1_gpa)
{
	struct guest g;
	uint8_t back[8192];

	guest_setup_nested(&g);
	{
		struct ioasid_ioas_info info;

		cr_assert_eq(ioasid_ioas_get_info(g.ctx, g.ioas, &info), 0);
		cr_assert(info.flags & IOASID_IOAS_NEST_PARENT);
	}
	/* two 4 KiB pages of stage 1 in one DMA: A then B */
	write_and_check(&g, GVA, PAGE_A, 4096, 1);
	write_and_check(&g, GVA + 4096, PAGE_B, 4096, 2);
	write_and_check(&g, GVA + 100, PAGE_A + 100, 8000, 3);
	/* and reads come from there */
	pattern(g.mem + PAGE_A, 8192, 4);
	cr_assert_eq(dev_read(&g, GVA, back, sizeof(back)), 0);
	cr_assert_eq(memcmp(back, g.mem + PAGE_A, sizeof(back)), 0);
	/* a 2 MiB stage-1 leaf */
	write_and_check(&g, GVA_LARGE + 0x1234, LARGE + 0x1234, 3 * 4096, 5);
	write_and_check(&g, GVA_LARGE + 2 * MiB - 4096,
			LARGE + 2 * MiB - 4096, 4096, 6);
	guest_teardown(&g);
}

Test(nested, stale_until_invalidated)
{
	struct guest g;

	guest_setup_nested(&g);
	write_and_check(&g, GVA, PAGE_A, 4096, 1);
	/* the guest points the page elsewhere, without telling the IOMMU */
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	write_and_check(&g, GVA, PAGE_A, 4096, 2);	/* cached: stale */
	/* an invalidation of another range leaves it cached */
	invalidate_range(&g, GVA + 4096, 1);
	write_and_check(&g, GVA, PAGE_A, 4096, 3);
	invalidate_range(&g, GVA, 1);
	write_and_check(&g, GVA, PAGE_C, 4096, 4);	/* fresh */

	/* invalidating everything does it too */
	*entry(&g, PT, 0) = gpa(PAGE_B) | P | W | U;
	write_and_check(&g, GVA, PAGE_C, 4096, 5);
	{
		struct ioasid_nested_inval all = {
			.flags = IOASID_NESTED_INVAL_ALL,
		};
		uint32_t nr = 1;

		cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, &all,
						      &nr, NULL), 0);
		cr_assert_eq(nr, 1);
	}
	write_and_check(&g, GVA, PAGE_B, 4096, 6);

	/* a present entry removed: DMA faults once invalidated */
	*entry(&g, PT, 0) = 0;
	write_and_check(&g, GVA, PAGE_B, 4096, 7);
	invalidate_range(&g, GVA, 1);
	cr_assert_eq(dev_write(&g, GVA, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_NOT_PRESENT, GVA,
		     GVA);
	guest_teardown(&g);
}

Test(nested, stage2_unmap_drops_combined_entries)
{
	struct guest g;
	uint64_t unmapped = 0;

	guest_setup_nested(&g);
	write_and_check(&g, GVA, PAGE_A, 4096, 1);	/* now cached */
	cr_assert_eq(ioasid_unmap(g.ctx, g.ioas, gpa(TABLES_SIZE),
				  MEM_SIZE - TABLES_SIZE, 0, &unmapped), 0,
		     "%s", ioasid_last_error(g.ctx));
	cr_assert_eq(dev_write(&g, GVA, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE2, IOASID_FAULT_NOT_PRESENT, GVA,
		     gpa(PAGE_A));
	guest_teardown(&g);
}

Test(nested, faults_name_the_stage)
{
	struct guest g;
	uint8_t b = 0;

	guest_setup_nested(&g);
	cr_assert_eq(dev_write(&g, GVA_HOLE, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_NOT_PRESENT,
		     GVA_HOLE, GVA_HOLE);
	/* stage 1 gives a GPA the parent does not map */
	cr_assert_eq(dev_write(&g, GVA_OUTSIDE, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE2, IOASID_FAULT_NOT_PRESENT,
		     GVA_OUTSIDE, GPA_UNMAPPED);
	/* read-only at stage 1: reads go, writes fault */
	cr_assert_eq(dev_read(&g, GVA_RO, &b, 1), 0);
	cr_assert_eq(dev_write(&g, GVA_RO, "x", 1), -EACCES);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_PERMISSION, GVA_RO,
		     GVA_RO);
	/* a supervisor page: the device's requests are user requests */
	cr_assert_eq(dev_read(&g, GVA_SUPER, &b, 1), -EACCES);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_PERMISSION,
		     GVA_SUPER, GVA_SUPER);
	/* beyond the 48-bit stage-1 input */
	cr_assert_eq(dev_read(&g, 1ULL << 48, &b, 1), -EFAULT);
	(void)one_fault(&g);
	guest_teardown(&g);
}

Test(nested, reserved_bit_is_a_stage1_fault)
{
	struct guest g;

	guest_setup_nested(&g);
	*entry(&g, PML4, 1) = gpa(PDPT) | P | W | U | PS;	/* no 512 GiB page */
	cr_assert_eq(dev_write(&g, 1ULL << 39, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_RESERVED_BIT,
		     1ULL << 39, 1ULL << 39);
	/* a 2 MiB leaf whose address is not 2 MiB aligned */
	*entry(&g, PD, 4) = gpa(LARGE + 0x2000) | P | W | U | PS;
	cr_assert_eq(dev_write(&g, 4 * 2 * MiB, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_RESERVED_BIT,
		     4 * 2 * MiB, 4 * 2 * MiB);
	guest_teardown(&g);
}

/* A root the parent does not map faults at walk time, at stage 2. */
Test(nested, root_outside_the_parent_faults_at_walk_time)
{
	struct guest g;

	guest_setup(&g);
	cr_assert_eq(alloc_s1(&g, GPA_UNMAPPED, &g.nested), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.dev, g.nested, 0),
		     0);
	cr_assert_eq(dev_write(&g, GVA, "x", 1), -EFAULT);
	/* the PML4 entry of GVA: index 0 */
	expect_fault(&g, IOASID_FAULT_STAGE2, IOASID_FAULT_NOT_PRESENT, GVA,
		     GPA_UNMAPPED);
	guest_teardown(&g);
}

/* ---- attach, replace, listing ----------------------------------------------- */

Test(nested, replace_between_parent_and_nested)
{
	struct ioasid_nested_info info[2];
	struct ioasid_device_info dinfo;
	struct guest g;
	uint32_t nr = 2;

	guest_setup(&g);
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &g.nested), 0);
	cr_assert_eq(ioasid_device_attach(g.ctx, g.dev, g.ioas, 0), 0);
	/* directly on the parent: IOVA is the GPA */
	write_and_check(&g, gpa(PAGE_B), PAGE_B, 4096, 1);
	cr_assert_eq(ioasid_device_replace_nested(g.ctx, g.dev, g.nested, 0),
		     0, "%s", ioasid_last_error(g.ctx));
	write_and_check(&g, GVA, PAGE_A, 4096, 2);
	cr_assert_eq(ioasid_device_get_info(g.ctx, NIC, &dinfo), 0);
	cr_assert_eq(dinfo.nested_id, g.nested);
	cr_assert_eq(dinfo.ioas_id, g.ioas);
	cr_assert(dinfo.flags & IOASID_DEVICE_ATTACHED);

	cr_assert_eq(ioasid_nested_list(g.ctx, g.ioas, info, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(info[0].nested_id, g.nested);
	cr_assert_eq(info[0].ioas_id, g.ioas);
	cr_assert_eq(info[0].type, IOASID_NESTED_VTD_S1);
	cr_assert_eq(info[0].nr_devices, 1);
	cr_assert_eq(info[0].pgtbl_addr, gpa(PML4));
	cr_assert_eq(info[0].addr_width, 48);
	cr_assert_eq(info[0].domain_id, dinfo.domain_id);
	cr_assert_str_eq(info[0].iommu, "sim0");

	/* back to the parent itself */
	cr_assert_eq(ioasid_device_replace(g.ctx, g.dev, g.ioas, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	write_and_check(&g, gpa(PAGE_C), PAGE_C, 4096, 3);
	cr_assert_eq(ioasid_device_get_info(g.ctx, NIC, &dinfo), 0);
	cr_assert_eq(dinfo.nested_id, 0);
	nr = 2;
	cr_assert_eq(ioasid_nested_list(g.ctx, g.ioas, info, &nr), 0);
	cr_assert_eq(info[0].nr_devices, 0);
	/* the table can go now, and then the IOAS */
	cr_assert_eq(ioasid_device_detach(g.ctx, g.dev), 0);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), 0);
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), 0, "%s",
		     ioasid_last_error(g.ctx));
	guest_teardown(&g);
}

Test(nested, two_tables_and_two_devices)
{
	struct guest g;
	uint32_t second = 0, gpu;
	uint64_t done = 0;
	char x = 'x';

	guest_setup_nested(&g);
	gpu = bind(g.ctx, GPU0);
	/* the GPU shares the first table */
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, gpu, g.nested, 0), 0,
		     "%s", ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_dma(g.ctx, gpu, GVA, &x, 1,
				       IOASID_DMA_WRITE, &done), 0);
	cr_assert_eq(g.mem[PAGE_A], 'x');
	/* a second table over the same guest tables */
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &second), 0);
	cr_assert_neq(second, g.nested);
	/* from one nested table to another */
	cr_assert_eq(ioasid_device_replace_nested(g.ctx, g.dev, second, 0), 0,
		     "%s", ioasid_last_error(g.ctx));
	write_and_check(&g, GVA + 4096, PAGE_B, 4096, 9);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), -EBUSY);
	guest_teardown(&g);	/* the session's teardown frees it all */
}

/* ---- refusals ------------------------------------------------------------- */

Test(nested, parent_must_be_a_nesting_parent)
{
	struct ioasid_ctx *ctx = test_ctx();
	struct ioasid_nested_vtd_s1 s1 = s1_at(0x1000);
	uint32_t ioas = 0, dev, id = 0;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	dev = bind(ctx, NIC);
	cr_assert_eq(ioasid_nested_alloc(ctx, ioas, dev, IOASID_NESTED_VTD_S1,
					 &s1, sizeof(s1), 0, &id), -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "not a nesting parent"),
		  "%s", ioasid_last_error(ctx));
	cr_assert_eq(id, 0);
	ioasid_unref(ctx);
}

Test(nested, bad_data_is_refused)
{
	struct {
		struct ioasid_nested_vtd_s1 s1;
		uint64_t tail;
	} big = { .s1 = s1_at(gpa(PML4)) };
	struct ioasid_nested_vtd_s1 s1 = s1_at(gpa(PML4));
	struct ioasid_nested_selftest st = { 0 };
	struct ioasid_nested_info info[1];
	struct guest g;
	uint32_t id = 0, nr = 1, other;

	guest_setup(&g);
	/* sizes */
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1,
					 sizeof(s1) - 1, 0, &id), -EINVAL);
	cr_assert(strstr(ioasid_last_error(g.ctx), "needs"), "%s",
		  ioasid_last_error(g.ctx));
	big.tail = 1;
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &big,
					 sizeof(big), 0, &id), -E2BIG);
	/* types and flags */
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev, 77, &s1,
					 sizeof(s1), 0, &id), -EOPNOTSUPP);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 1, &id), -EOPNOTSUPP);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_SELFTEST, &st,
					 sizeof(st), 0, &id), -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(g.ctx), "VT-d first-stage"), "%s",
		  ioasid_last_error(g.ctx));
	s1.flags = 1ULL << 40;
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EOPNOTSUPP);
	s1.flags = IOASID_VTD_S1_SRE;	/* known, not simulated */
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EOPNOTSUPP);
	s1 = s1_at(gpa(PML4));
	s1.__reserved = 1;
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EOPNOTSUPP);
	/* fields */
	s1 = s1_at(gpa(PML4));
	s1.addr_width = 39;
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EINVAL);
	s1 = s1_at(gpa(PML4) + 8);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EINVAL);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, NULL, 0, 0, &id),
		     -EINVAL);
	/* objects */
	s1 = s1_at(gpa(PML4));
	cr_assert_eq(ioasid_nested_alloc(g.ctx, 999999, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -ENOENT);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, 999999,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -ENOENT);
	other = bind(g.ctx, GPU1);
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, other,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(g.ctx), "no nested translation"),
		  "%s", ioasid_last_error(g.ctx));
	/* nothing was made */
	cr_assert_eq(id, 0);
	cr_assert_eq(ioasid_nested_list(g.ctx, g.ioas, info, &nr), 0);
	cr_assert_eq(nr, 0);
	cr_assert_eq(ioasid_domain_list(g.ctx, g.ioas, NULL, &nr), 0);
	cr_assert_eq(nr, 0, "%u domains left behind", nr);
	/* a longer structure with a zero tail is fine */
	big.tail = 0;
	cr_assert_eq(ioasid_nested_alloc(g.ctx, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &big,
					 sizeof(big), 0, &id), 0, "%s",
		     ioasid_last_error(g.ctx));
	guest_teardown(&g);
}

Test(nested, busy_and_missing)
{
	struct guest g;
	uint32_t gpu1;

	guest_setup_nested(&g);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), -EBUSY);
	cr_assert(strstr(ioasid_last_error(g.ctx), "attached"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.dev, g.nested, 0),
		     -EBUSY);
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.dev, g.nested, 1u << 30),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.dev, 999999, 0),
		     -ENOENT);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, 999999), -ENOENT);
	/* a device behind another IOMMU cannot use the table */
	gpu1 = bind(g.ctx, GPU1);
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, gpu1, g.nested, 0),
		     -EINVAL);
	cr_assert_eq(ioasid_device_replace_nested(g.ctx, gpu1, g.nested, 0),
		     -EINVAL);	/* not attached */
	/* the parent stays while the table exists */
	cr_assert_eq(ioasid_device_detach(g.ctx, g.dev), 0);
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), -EBUSY);
	cr_assert(strstr(ioasid_last_error(g.ctx), "nested"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), 0);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), 0);
	guest_teardown(&g);
}

Test(nested, invalidate_reports_each_entry)
{
	struct ioasid_nested_inval v[4] = {
		{ .addr = GVA, .npages = 1 },
		{ .flags = IOASID_NESTED_INVAL_ALL },
		{ .addr = GVA + 1, .npages = 1 },	/* unaligned */
		{ .addr = GVA, .npages = 2 },
	};
	struct ioasid_nested_info info[1];
	int32_t err[4] = { 7, 7, 7, 7 };
	struct guest g;
	uint32_t nr = 4;

	guest_setup_nested(&g);
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, v, &nr, err),
		     -EINVAL);
	cr_assert(strstr(ioasid_last_error(g.ctx), "entry 2"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(nr, 2);
	cr_assert_eq(err[0], 0);
	cr_assert_eq(err[1], 0);
	cr_assert_eq(err[2], -EINVAL);
	cr_assert_eq(err[3], -ECANCELED);
	nr = 1;
	cr_assert_eq(ioasid_nested_list(g.ctx, g.ioas, info, &nr), 0);
	cr_assert_eq(info[0].nr_invalidations, 2);

	/* one bad entry of each kind, first in its request */
	struct {
		struct ioasid_nested_inval e;
		int err;
	} bad[] = {
		{ { .addr = GVA, .npages = 0 }, -EINVAL },
		{ { .addr = 4096, .flags = IOASID_NESTED_INVAL_ALL }, -EINVAL },
		{ { .addr = UINT64_MAX & ~4095ULL, .npages = 2 }, -EOVERFLOW },
		{ { .addr = 0, .npages = UINT64_MAX }, -EOVERFLOW },
		{ { .addr = GVA, .npages = 1, .flags = 1u << 9 }, -EOPNOTSUPP },
		{ { .addr = GVA, .npages = 1, .__reserved = 1 }, -EOPNOTSUPP },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int32_t e = 0;

		nr = 1;
		cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested,
						      &bad[i].e, &nr, &e),
			     bad[i].err, "case %zu", i);
		cr_assert_eq(nr, 0, "case %zu", i);
		cr_assert_eq(e, bad[i].err, "case %zu", i);
	}
	nr = 0;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, v, &nr, err),
		     -EINVAL);
	nr = 1;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, NULL, &nr, err),
		     -EINVAL);
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, v, NULL, err),
		     -EINVAL);
	nr = 4097;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, v, &nr, NULL),
		     -E2BIG);
	nr = 1;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, 999999, v, &nr, NULL),
		     -ENOENT);
	guest_teardown(&g);
}

/* Another context (through ioasidd: another session) sees nothing of it. */
Test(nested, other_context_cannot_touch_it)
{
	struct ioasid_nested_inval e = { .flags = IOASID_NESTED_INVAL_ALL };
	struct ioasid_nested_vtd_s1 s1 = s1_at(gpa(PML4));
	struct ioasid_ctx *other = test_ctx();
	struct ioasid_nested_info info[1];
	uint32_t nr = 1, id = 0, ioas = 0;
	struct guest g;

	guest_setup_nested(&g);
	cr_assert_eq(ioasid_nested_destroy(other, g.nested), -ENOENT);
	cr_assert_eq(ioasid_nested_invalidate(other, g.nested, &e, &nr, NULL),
		     -ENOENT);
	cr_assert_eq(ioasid_device_attach_nested(other, g.dev, g.nested, 0),
		     -ENOENT);
	nr = 1;
	cr_assert_eq(ioasid_nested_list(other, g.ioas, info, &nr), -ENOENT);
	cr_assert_eq(ioasid_nested_alloc(other, g.ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -ENOENT);
	/* with its own IOAS, still not with our device */
	cr_assert_eq(ioasid_ioas_alloc(other, IOASID_IOAS_NEST_PARENT, &ioas),
		     0);
	cr_assert_eq(ioasid_nested_alloc(other, ioas, g.dev,
					 IOASID_NESTED_VTD_S1, &s1, sizeof(s1),
					 0, &id), -ENOENT);
	write_and_check(&g, GVA, PAGE_A, 4096, 1);
	ioasid_unref(other);
	guest_teardown(&g);
}

/*
 * A fault queue on the nested table takes its device's page requests,
 * at stage 1 (the guest's table) and stage 2 (the parent) alike; the
 * VMM has the guest fill its table, answers, and the device goes on.
 */
Test(nested, page_requests_go_to_the_tables_fault_queue)
{
	struct ioasid_page_request q[4];
	struct ioasid_nested_inval all = {
		.flags = IOASID_NESTED_INVAL_ALL,
	};
	struct guest g;
	uint32_t fq, pfq, nr = 4, one = 1, id;
	int fd, pfd;

	guest_setup_nested(&g);
	cr_assert_eq(ioasid_fault_queue_alloc(g.ctx, g.nested, 0, 0, 0, &fq,
					      &fd), 0, "%s",
		     ioasid_last_error(g.ctx));
	/* the parent's own queue does not see the table's devices */
	cr_assert_eq(ioasid_fault_queue_alloc(g.ctx, g.ioas, 0, 0, 0, &pfq,
					      &pfd), 0);
	cr_assert_eq(dev_write(&g, GVA_HOLE, "x", 1), -EINPROGRESS, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(dev_write(&g, GVA_OUTSIDE, "x", 1), -EINPROGRESS);
	cr_assert_eq(ioasid_fault_queue_read(g.ctx, fq, q, &nr), 0);
	cr_assert_eq(nr, 2);
	cr_assert_eq(q[0].target_id, g.nested);
	cr_assert_eq(q[0].addr, GVA_HOLE, "stage 1: the IOVA the device used");
	cr_assert_eq(q[1].addr, GVA_OUTSIDE);
	nr = 4;
	cr_assert_eq(ioasid_fault_queue_read(g.ctx, pfq, q + 2, &nr), 0);
	cr_assert_eq(nr, 0);
	/* the guest maps the hole (a 2 MiB page), the VMM answers */
	*entry(&g, PD, 3) = gpa(LARGE) | P | W | U | PS;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, &all, &one,
					      NULL), 0);
	cr_assert_eq(ioasid_fault_respond(g.ctx, fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0);
	cr_assert_eq(dev_write(&g, GVA_HOLE, "y", 1), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(g.mem[LARGE], 'y');
	cr_assert_eq(ioasid_fault_respond(g.ctx, fq, q[1].cookie,
					  IOASID_PAGE_RESPONSE_INVALID), 0);
	cr_assert_eq(dev_write(&g, GVA_OUTSIDE, "x", 1), -EFAULT);
	/* the queue goes with its table */
	cr_assert_eq(ioasid_device_detach(g.ctx, g.dev), 0);
	id = g.nested;
	cr_assert_eq(ioasid_nested_destroy(g.ctx, id), 0);
	cr_assert_eq(ioasid_fault_queue_destroy(g.ctx, fq), -ENOENT);
	cr_assert_eq(ioasid_fault_queue_destroy(g.ctx, pfq), 0);
	close(fd);
	close(pfd);
	guest_teardown(&g);
}

/* ---- a device's PASID on a nested table -------------------------------------- */

#define PASID 5

/* GPU0 bound, a nested table for it, PASID 5 not attached yet. */
static void pasid_setup(struct guest *g)
{
	guest_setup_dev(g, GPU0);
	cr_assert_eq(alloc_s1(g, gpa(PML4), &g->nested), 0, "%s",
		     ioasid_last_error(g->ctx));
}

static int pasid_write(struct guest *g, uint32_t pasid, uint64_t iova,
		       const void *buf, uint64_t len)
{
	uint64_t done = 0;

	return ioasid_device_dma_pasid(g->ctx, g->dev, pasid, iova, (void *)buf,
				       len, IOASID_DMA_WRITE, &done);
}

static void pasid_lands(struct guest *g, uint32_t pasid, uint64_t iova,
			uint64_t off, uint32_t seed)
{
	uint8_t buf[4096];

	pattern(buf, sizeof(buf), seed);
	cr_assert_eq(pasid_write(g, pasid, iova, buf, sizeof(buf)), 0,
		     "PASID %u DMA to 0x%llx: %s", pasid,
		     (unsigned long long)iova, ioasid_last_error(g->ctx));
	cr_assert_eq(memcmp(g->mem + off, buf, sizeof(buf)), 0,
		     "PASID %u DMA to 0x%llx did not land at GPA 0x%llx",
		     pasid, (unsigned long long)iova,
		     (unsigned long long)gpa(off));
}

static void drain_faults(struct guest *g)
{
	struct ioasid_fault f[8];
	uint32_t nr = 8;

	while (ioasid_fault_read(g->ctx, f, &nr) == 0 && nr)
		nr = 8;
}

static void expect_refused(struct guest *g, int r, int want, const char *text)
{
	cr_assert_eq(r, -want, "got %d (%s), want -%d", r,
		     ioasid_last_error(g->ctx), want);
	cr_assert(strstr(ioasid_last_error(g->ctx), text), "\"%s\" lacks \"%s\"",
		  ioasid_last_error(g->ctx), text);
}

/* The one PASID attachment of the device. */
static struct ioasid_pasid_info one_pasid(struct guest *g)
{
	struct ioasid_pasid_info p[4];
	uint32_t nr = 4;

	cr_assert_eq(ioasid_device_pasid_list(g->ctx, g->dev, p, &nr), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(nr, 1, "%u PASIDs", nr);
	cr_assert_eq(p[0].size, sizeof(p[0]));
	return p[0];
}

Test(nested_pasid, dma_goes_through_both_stages)
{
	struct ioasid_pasid_info p;
	struct ioasid_device_info d;
	struct ioasid_nested_info ni;
	struct guest g;
	uint32_t nr = 1;

	pasid_setup(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	/* stage 1 picks the page, stage 2 the memory */
	pasid_lands(&g, PASID, GVA, PAGE_A, 1);
	pasid_lands(&g, PASID, GVA + 4096, PAGE_B, 2);
	pasid_lands(&g, PASID, GVA_LARGE + 8192, LARGE + 8192, 3);
	/* the device's own requests are attached nowhere: blocked */
	drain_faults(&g);
	cr_assert_eq(dev_write(&g, GVA, "x", 1), -EFAULT);
	cr_assert_eq(one_fault(&g).reason, IOASID_FAULT_BLOCKED);
	/* where it is, as the device's own attachment would say */
	p = one_pasid(&g);
	cr_assert_eq(p.pasid, PASID);
	cr_assert_eq(p.nested_id, g.nested);
	cr_assert_eq(p.ioas_id, g.ioas, "the parent");
	cr_assert_eq(ioasid_nested_list(g.ctx, g.ioas, &ni, &nr), 0);
	cr_assert_eq(p.domain_id, ni.domain_id, "the stage-2 domain");
	cr_assert_eq(ni.nr_devices, 0, "a PASID is no attached device");
	cr_assert_eq(ioasid_device_get_info(g.ctx, GPU0, &d), 0);
	cr_assert_eq(d.nr_pasids, 1);
	cr_assert_eq(d.ioas_id, 0);
	guest_teardown(&g);
}

Test(nested_pasid, stale_until_invalidated)
{
	struct guest g;

	pasid_setup(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	pasid_lands(&g, PASID, GVA, PAGE_A, 1);
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	pasid_lands(&g, PASID, GVA, PAGE_A, 2);	/* the PASID's IOTLB */
	invalidate_range(&g, GVA, 1);
	pasid_lands(&g, PASID, GVA, PAGE_C, 3);
	guest_teardown(&g);
}

Test(nested_pasid, faults_name_the_stage)
{
	struct guest g;

	pasid_setup(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	drain_faults(&g);
	cr_assert_eq(pasid_write(&g, PASID, GVA_HOLE, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_NOT_PRESENT,
		     GVA_HOLE, GVA_HOLE);
	cr_assert_eq(pasid_write(&g, PASID, GVA_RO, "x", 1), -EACCES);
	expect_fault(&g, IOASID_FAULT_STAGE1, IOASID_FAULT_PERMISSION, GVA_RO,
		     GVA_RO);
	cr_assert_eq(pasid_write(&g, PASID, GVA_OUTSIDE, "x", 1), -EFAULT);
	expect_fault(&g, IOASID_FAULT_STAGE2, IOASID_FAULT_NOT_PRESENT,
		     GVA_OUTSIDE, GPA_UNMAPPED);
	/* another PASID, attached nowhere: blocked, no stage */
	cr_assert_eq(pasid_write(&g, PASID + 1, GVA, "x", 1), -EFAULT);
	{
		struct ioasid_fault f = one_fault(&g);

		cr_assert_eq(f.reason, IOASID_FAULT_BLOCKED);
		cr_assert_eq(f.nested_id, 0);
	}
	guest_teardown(&g);
}

Test(nested_pasid, replace_between_ioas_and_nested)
{
	struct guest g;
	uint32_t other = 0;

	pasid_setup(&g);
	/* on the parent itself first: IOVA is the GPA */
	cr_assert_eq(ioasid_device_pasid_attach(g.ctx, g.dev, PASID, g.ioas,
						0), 0, "%s",
		     ioasid_last_error(g.ctx));
	pasid_lands(&g, PASID, gpa(PAGE_B), PAGE_B, 1);
	cr_assert_eq(one_pasid(&g).nested_id, 0);
	cr_assert_eq(ioasid_device_pasid_replace_nested(g.ctx, g.dev, PASID,
							g.nested, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	pasid_lands(&g, PASID, GVA, PAGE_A, 2);
	cr_assert_eq(one_pasid(&g).nested_id, g.nested);
	cr_assert_eq(ioasid_device_pasid_replace_nested(g.ctx, g.dev, PASID,
							g.nested, 0), 0,
		     "to where it is: nothing to do");
	/* to another nested table (its root: the PD page, 4 levels down
	 * to PAGE_A's table through other entries) */
	*entry(&g, PD, 0) = gpa(PT) | P | W | U;
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &other), 0);
	cr_assert_eq(ioasid_device_pasid_replace_nested(g.ctx, g.dev, PASID,
							other, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(one_pasid(&g).nested_id, other);
	pasid_lands(&g, PASID, 0x1000, PAGE_B, 3);	/* PD[0] -> PT[1] */
	/* the first table is free again, the second is held */
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), 0, "%s",
		     ioasid_last_error(g.ctx));
	expect_refused(&g, ioasid_nested_destroy(g.ctx, other), EBUSY,
		       "PASID");
	/* back to the parent IOAS: a move, not a no-op */
	cr_assert_eq(ioasid_device_pasid_replace(g.ctx, g.dev, PASID, g.ioas,
						 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(one_pasid(&g).nested_id, 0);
	pasid_lands(&g, PASID, gpa(PAGE_C), PAGE_C, 4);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, other), 0, "%s",
		     ioasid_last_error(g.ctx));
	guest_teardown(&g);
}

Test(nested_pasid, detach_and_unbind_free_the_table)
{
	struct guest g;
	uint32_t nr = 0;

	pasid_setup(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	expect_refused(&g, ioasid_nested_destroy(g.ctx, g.nested), EBUSY,
		       "PASID");
	cr_assert_eq(ioasid_device_pasid_detach(g.ctx, g.dev, PASID), 0, "%s",
		     ioasid_last_error(g.ctx));
	drain_faults(&g);
	cr_assert_eq(pasid_write(&g, PASID, GVA, "x", 1), -EFAULT,
		     "detached: blocked");
	cr_assert_eq(one_fault(&g).reason, IOASID_FAULT_BLOCKED);
	cr_assert_eq(ioasid_device_pasid_list(g.ctx, g.dev, NULL, &nr), 0);
	cr_assert_eq(nr, 0);
	expect_refused(&g, ioasid_device_pasid_detach(g.ctx, g.dev, PASID),
		       EINVAL, "not attached");
	/* unbinding the device takes its PASID off the table first */
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	cr_assert_eq(ioasid_device_unbind(g.ctx, g.dev), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), 0, "%s",
		     ioasid_last_error(g.ctx));
	guest_teardown(&g);
}

Test(nested_pasid, refusals_change_nothing)
{
	struct guest g;
	uint32_t nic, other = 0, nr = 0;

	pasid_setup(&g);
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev, 0,
							     g.nested, 0),
		       EINVAL, "PASID 0");
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev,
							     1u << 20,
							     g.nested, 0),
		       EINVAL, "20-bit PASID width");
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev,
							     PASID, g.nested,
							     8),
		       EOPNOTSUPP, "unknown PASID attach flags");
	expect_refused(&g, ioasid_device_pasid_attach_nested(
				   g.ctx, g.dev, PASID, g.nested,
				   IOASID_NESTED_ATTACH_REPLACE),
		       EOPNOTSUPP, "ioasid_device_pasid_replace_nested");
	expect_refused(&g, ioasid_device_pasid_replace_nested(
				   g.ctx, g.dev, PASID, g.nested,
				   IOASID_NESTED_ATTACH_REPLACE),
		       EOPNOTSUPP, "unknown flags");
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev,
							     PASID, 999999, 0),
		       ENOENT, "no nested table");
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, 999999,
							     PASID, g.nested,
							     0),
		       ENOENT, "999999");
	expect_refused(&g, ioasid_device_pasid_replace_nested(g.ctx, g.dev,
							      PASID, g.nested,
							      0),
		       EINVAL, "not attached");
	/* an IOAS id is not a nested table id */
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev,
							     PASID, g.ioas, 0),
		       ENOENT, "no nested table");
	nic = bind(g.ctx, NIC);
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, nic, PASID,
							     g.nested, 0),
		       EOPNOTSUPP, "no PASID capability");
	/* a no-snoop device's PASIDs stay on snoop-enforcing stage 2s */
	{
		struct ioasid_nested_vtd_s1 s1 = s1_at(gpa(PML4));
		uint32_t loose = 0, n = 0;

		cr_assert_eq(ioasid_ioas_alloc(g.ctx, IOASID_IOAS_NEST_PARENT,
					       &loose), 0);
		cr_assert_eq(ioasid_ioas_set_snoop_mode(g.ctx, loose,
							IOASID_SNOOP_ALLOW),
			     0, "%s", ioasid_last_error(g.ctx));
		cr_assert_eq(ioasid_nested_alloc(g.ctx, loose, g.dev,
						 IOASID_NESTED_VTD_S1, &s1,
						 sizeof(s1), 0, &n), 0, "%s",
			     ioasid_last_error(g.ctx));
		expect_refused(&g, ioasid_device_pasid_attach_nested(
					   g.ctx, g.dev, PASID, n, 0),
			       EPERM, "no-snoop");
		cr_assert_eq(ioasid_nested_destroy(g.ctx, n), 0);
	}
	cr_assert_eq(ioasid_device_pasid_list(g.ctx, g.dev, NULL, &nr), 0);
	cr_assert_eq(nr, 0, "nothing attached by any of it");
	/* attached: a second attach is refused, to anything */
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &other), 0);
	expect_refused(&g, ioasid_device_pasid_attach_nested(g.ctx, g.dev,
							     PASID, other, 0),
		       EBUSY, "use replace");
	expect_refused(&g, ioasid_device_pasid_attach(g.ctx, g.dev, PASID,
						      g.ioas, 0),
		       EBUSY, "nested table");
	cr_assert_eq(one_pasid(&g).nested_id, g.nested, "still there");
	pasid_lands(&g, PASID, GVA, PAGE_A, 1);
	guest_teardown(&g);
}

Test(nested_pasid, the_table_of_another_session_is_not_found)
{
	struct ioasid_ctx *b = test_ctx();
	struct guest g;

	pasid_setup(&g);
	/* A's device and table, named by another session */
	cr_assert_eq(ioasid_device_pasid_attach_nested(b, g.dev, PASID,
						       g.nested, 0), -ENOENT);
	ioasid_unref(b);
	guest_teardown(&g);
}

/*
 * A table made for one IOMMU, a PASID-capable device behind another: a
 * topology of two such units (embedded: the daemon's topology is the
 * built-in one, where only sim0 has both).
 */
static const char two_units[] =
	"iommu u0 snoop-control=yes page-sizes=4K,2M,1G address-width=48 nesting=yes pasid=yes\n"
	"iommu u1 snoop-control=yes page-sizes=4K,2M,1G address-width=48 nesting=yes pasid=yes\n"
	"device 0000:00:01.0 vendor=0x8086 device=0x1572 class=0x020000 iommu=u0 group=1 pasid=20\n"
	"device 0000:00:02.0 vendor=0x8086 device=0x1572 class=0x020000 iommu=u1 group=2 pasid=20\n";

Test(nested_pasid, a_table_of_another_iommu_is_refused)
{
	struct ioasid_nested_vtd_s1 s1 = s1_at(GPA_BASE);
	char path[] = "/tmp/ioasid-pasidnest-XXXXXX", uri[64];
	uint32_t ioas = 0, d0 = 0, d1 = 0, n = 0, nr = 0;
	struct ioasid_ctx *ctx;
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, two_units, sizeof(two_units) - 1),
		     (ssize_t)sizeof(two_units) - 1);
	close(fd);
	snprintf(uri, sizeof(uri), "sim:%s", path);
	cr_assert_eq(ioasid_new(uri, &ctx), 0, "%s", ioasid_last_error(NULL));
	unlink(path);
	cr_assert_eq(ioasid_device_bind(ctx, "0000:00:01.0", -1, &d0), 0);
	cr_assert_eq(ioasid_device_bind(ctx, "0000:00:02.0", -1, &d1), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &ioas), 0);
	cr_assert_eq(ioasid_nested_alloc(ctx, ioas, d0, IOASID_NESTED_VTD_S1,
					 &s1, sizeof(s1), 0, &n), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_pasid_attach_nested(ctx, d1, PASID, n, 0),
		     -EINVAL);
	cr_assert(strstr(ioasid_last_error(ctx), "made for IOMMU u0"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(ioasid_device_pasid_list(ctx, d1, NULL, &nr), 0);
	cr_assert_eq(nr, 0);
	cr_assert_eq(ioasid_device_pasid_attach_nested(ctx, d0, PASID, n, 0),
		     0, "%s", ioasid_last_error(ctx));
	ioasid_unref(ctx);
}

/* DMA by @dev of @ctx (with @pasid, 0: none) to @iova lands at @off. */
static void ctx_lands(struct guest *g, struct ioasid_ctx *ctx, uint32_t dev,
		      uint32_t pasid, uint64_t iova, uint64_t off,
		      uint32_t seed)
{
	uint8_t buf[4096];
	uint64_t done = 0;
	int r;

	pattern(buf, sizeof(buf), seed);
	if (pasid)
		r = ioasid_device_dma_pasid(ctx, dev, pasid, iova, buf,
					    sizeof(buf), IOASID_DMA_WRITE,
					    &done);
	else
		r = ioasid_device_dma(ctx, dev, iova, buf, sizeof(buf),
				      IOASID_DMA_WRITE, &done);
	cr_assert_eq(r, 0, "device %u PASID %u DMA to 0x%llx: %s", dev, pasid,
		     (unsigned long long)iova, ioasid_last_error(ctx));
	cr_assert_eq(memcmp(g->mem + off, buf, sizeof(buf)), 0,
		     "device %u PASID %u DMA to 0x%llx did not land at GPA "
		     "0x%llx", dev, pasid, (unsigned long long)iova,
		     (unsigned long long)gpa(off));
}

/*
 * The state image carries nested tables, the devices and PASIDs on them
 * and PASIDs on IOASes: the imported context has them with their ids,
 * DMA goes through both stages as before, and invalidation works.
 */
Test(nested_pasid, export_carries_it)
{
	struct ioasid_nested_inval e = { .addr = GVA, .npages = 1 };
	uint32_t nic, gone, second, nr = 1, id;
	struct ioasid_ctx *copy;
	int32_t err = 1;
	struct guest g;

	pasid_setup(&g);
	if (ioasid_is_remote(g.ctx)) {
		guest_teardown(&g);
		cr_skip_test("ioasid_ctx_export is an embedded context's");
	}
	/* a gap in the ids, a second table, the NIC on the first */
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &gone), 0);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, gone), 0);
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &second), 0);
	nic = bind(g.ctx, NIC);
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, nic, g.nested, 0), 0,
		     "%s", ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID + 1,
						       second, 0), 0);
	cr_assert_eq(ioasid_device_pasid_attach(g.ctx, g.dev, PASID + 2,
						g.ioas, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	copy = snapshot_export_import(g.ctx, "tables, PASIDs and ids");

	/* through stage 1 and 2 of the copy's tables */
	ctx_lands(&g, copy, nic, 0, GVA, PAGE_A, 1);
	ctx_lands(&g, copy, g.dev, PASID, GVA + 4096, PAGE_B, 2);
	ctx_lands(&g, copy, g.dev, PASID + 1, GVA_LARGE, LARGE, 3);
	ctx_lands(&g, copy, g.dev, PASID + 2, gpa(PAGE_C), PAGE_C, 4);
	/* its IOTLB keeps a stale entry until the copy invalidates it */
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	ctx_lands(&g, copy, nic, 0, GVA, PAGE_A, 5);
	cr_assert_eq(ioasid_nested_invalidate(copy, g.nested, &e, &nr, &err),
		     0, "%s", ioasid_last_error(copy));
	cr_assert_eq(err, 0);
	ctx_lands(&g, copy, nic, 0, GVA, PAGE_C, 6);
	/* the tables go as any would, and ids are not reused */
	cr_assert_eq(ioasid_device_pasid_detach(copy, g.dev, PASID + 1), 0);
	cr_assert_eq(ioasid_nested_destroy(copy, second), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(ioasid_nested_destroy(copy, g.nested), -EBUSY);
	cr_assert_eq(ioasid_ioas_alloc(copy, 0, &id), 0);
	cr_assert_gt(id, nic);
	ioasid_unref(copy);
	guest_teardown(&g);
}

/*
 * A nested table's fault queue crosses the hand-over with a PASID's page
 * request outstanding: the copy gives its record (the table, the PASID),
 * takes the answer, and the device's retry lands where the guest mapped.
 */
Test(nested_pasid, table_fault_queue_is_carried)
{
	struct ioasid_nested_inval all = { .flags = IOASID_NESTED_INVAL_ALL };
	struct ioasid_page_request q[4];
	struct ioasid_ctx *copy;
	uint32_t fq, nr = 4, one = 1;
	struct guest g;
	int fd;

	pasid_setup(&g);
	if (ioasid_is_remote(g.ctx)) {
		guest_teardown(&g);
		cr_skip_test("ioasid_ctx_export is an embedded context's");
	}
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	cr_assert_eq(ioasid_fault_queue_alloc(g.ctx, g.nested, 0, 0, 0, &fq,
					      &fd), 0);
	cr_assert_eq(pasid_write(&g, PASID, GVA_HOLE, "x", 1), -EINPROGRESS);
	copy = snapshot_export_import(g.ctx, "a table with a fault queue");
	cr_assert_eq(ioasid_fault_queue_read(copy, fq, q, &nr), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(nr, 1);
	cr_assert_eq(q[0].target_id, g.nested);
	cr_assert(q[0].flags & IOASID_PAGE_REQUEST_PASID);
	cr_assert_eq(q[0].pasid, PASID);
	cr_assert_eq(q[0].addr, GVA_HOLE);
	*entry(&g, PD, 3) = gpa(LARGE) | P | W | U | PS;
	cr_assert_eq(ioasid_nested_invalidate(copy, g.nested, &all, &one,
					      NULL), 0);
	cr_assert_eq(ioasid_fault_respond(copy, fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(copy));
	ctx_lands(&g, copy, g.dev, PASID, GVA_HOLE, LARGE, 9);
	ioasid_unref(copy);
	close(fd);
	guest_teardown(&g);
}

/*
 * A table whose stage-2 domain outlived the table that made it, with
 * nothing else making it first: the replay could not give the domain
 * its id, so the export is refused, naming both.
 */
Test(nested, export_refuses_an_orphaned_stage2_id)
{
	uint32_t first, second;
	struct guest g;
	char want[64];
	int fd = -1;

	guest_setup(&g);
	if (ioasid_is_remote(g.ctx)) {
		guest_teardown(&g);
		cr_skip_test("ioasid_ctx_export is an embedded context's");
	}
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &first), 0);
	cr_assert_eq(alloc_s1(&g, gpa(PML4), &second), 0);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, first), 0);
	cr_assert_eq(ioasid_ctx_export(g.ctx, &fd), -EOPNOTSUPP);
	snprintf(want, sizeof(want), "nested table %u: its stage-2 domain %u",
		 second, first - 1);
	cr_assert(strstr(ioasid_last_error(g.ctx), want), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(fd, -1);
	/* with the device on the parent, the attach makes the domain first */
	cr_assert_eq(ioasid_device_attach(g.ctx, g.dev, g.ioas, 0), 0,
		     "%s", ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_ctx_export(g.ctx, &fd), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_ctx_export_abandon(fd), 0);
	close(fd);
	guest_teardown(&g);
}

/* A PASID on a table with a fault queue: its page requests go there. */
Test(nested_pasid, page_requests_go_to_the_tables_fault_queue)
{
	struct ioasid_nested_inval all = { .flags = IOASID_NESTED_INVAL_ALL };
	struct ioasid_page_request q[4];
	uint32_t fq, pfq, nr = 4, one = 1;
	struct guest g;
	int fd, pfd;

	pasid_setup(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.dev, PASID,
						       g.nested, 0), 0);
	cr_assert_eq(ioasid_fault_queue_alloc(g.ctx, g.nested, 0, 0, 0, &fq,
					      &fd), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_fault_queue_alloc(g.ctx, g.ioas, 0, 0, 0, &pfq,
					      &pfd), 0);
	cr_assert_eq(pasid_write(&g, PASID, GVA_HOLE, "x", 1), -EINPROGRESS,
		     "%s", ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_fault_queue_read(g.ctx, fq, q, &nr), 0);
	cr_assert_eq(nr, 1, "%u requests on the table's queue", nr);
	cr_assert_eq(q[0].target_id, g.nested);
	cr_assert_eq(q[0].dev_id, g.dev);
	cr_assert(q[0].flags & IOASID_PAGE_REQUEST_PASID);
	cr_assert_eq(q[0].pasid, PASID);
	cr_assert_eq(q[0].addr, GVA_HOLE);
	nr = 4;
	cr_assert_eq(ioasid_fault_queue_read(g.ctx, pfq, q + 1, &nr), 0);
	cr_assert_eq(nr, 0, "none on the parent's");
	*entry(&g, PD, 3) = gpa(LARGE) | P | W | U | PS;
	cr_assert_eq(ioasid_nested_invalidate(g.ctx, g.nested, &all, &one,
					      NULL), 0);
	cr_assert_eq(ioasid_fault_respond(g.ctx, fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0);
	cr_assert_eq(pasid_write(&g, PASID, GVA_HOLE, "y", 1), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(g.mem[LARGE], 'y');
	cr_assert_eq(ioasid_device_pasid_detach(g.ctx, g.dev, PASID), 0);
	cr_assert_eq(ioasid_fault_queue_destroy(g.ctx, pfq), 0);
	close(fd);
	close(pfd);
	guest_teardown(&g);
}
