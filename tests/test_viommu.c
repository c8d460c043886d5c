/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vIOMMUs on the simulated IOMMU through the public API: a vIOMMU over a
 * nest-parent IOAS, vDEVICEs giving bound devices virtual IDs on it, a
 * VT-d first-stage table allocated on it with devices attached (DMA
 * checked byte by byte at the guest-physical page the stage-1 entry
 * names), the device IOTLB keeping a stale translation until an
 * invalidation through the vIOMMU names that device's virtual ID, and
 * every refusal (the rules iommufd has: a nest-parent, one vDEVICE per
 * device, virtual IDs unique per vIOMMU, attach only with a vDEVICE,
 * destroy refused while in use).  Runs unchanged against ioasidd when
 * IOASID_TEST_URI=unix:PATH.
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

#define P (1ULL << 0)
#define W (1ULL << 1)
#define U (1ULL << 2)

/* Guest memory: a 1 MiB memfd mapped by the parent at GPA_BASE. */
#define GPA_BASE	0x40000000ULL
#define MEM_SIZE	(1 * MiB)
#define PML4		0x0000ULL
#define PDPT		0x1000ULL
#define PD		0x2000ULL
#define PT		0x3000ULL
#define PAGE_A		0x10000ULL
#define PAGE_B		0x11000ULL
#define PAGE_C		0x12000ULL
#define GVA		0x200000ULL	/* PD[1] -> PT: PT[0] A, PT[1] B */

#define NIC_VID		0x0100ULL	/* the guest's BDF 01:00.0 */
#define GPU_VID		0x0200ULL

struct guest {
	struct ioasid_ctx *ctx;
	uint32_t ioas, nic, gpu, viommu, vnic, nested;
	int fd;
	uint8_t *mem;
};

static uint64_t gpa(uint64_t off)
{
	return GPA_BASE + off;
}

static uint64_t *entry(struct guest *g, uint64_t table, unsigned int i)
{
	return (uint64_t *)(g->mem + table) + i;
}

static uint32_t bind(struct ioasid_ctx *ctx, const char *name)
{
	uint32_t id = 0;

	cr_assert_eq(ioasid_device_bind(ctx, name, -1, &id), 0, "bind %s: %s",
		     name, ioasid_last_error(ctx));
	return id;
}

static struct ioasid_nested_vtd_s1 s1_root(void)
{
	return (struct ioasid_nested_vtd_s1){
		.pgtbl_addr = gpa(PML4), .addr_width = 48,
	};
}

static int alloc_on_viommu(struct guest *g, uint32_t dev, uint32_t *id)
{
	struct ioasid_nested_vtd_s1 s1 = s1_root();

	return ioasid_viommu_nested_alloc(g->ctx, g->viommu, dev,
					  IOASID_NESTED_VTD_S1, &s1,
					  sizeof(s1), 0, id);
}

/* Guest memory in a nest-parent IOAS, NIC and GPU0 bound, a vIOMMU. */
static void guest_setup(struct guest *g)
{
	uint64_t iova = GPA_BASE;

	memset(g, 0, sizeof(*g));
	g->ctx = test_ctx();
	cr_assert_eq(ioasid_ioas_alloc(g->ctx, IOASID_IOAS_NEST_PARENT,
				       &g->ioas), 0, "%s",
		     ioasid_last_error(g->ctx));
	g->fd = test_memfd(MEM_SIZE);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->fd, 0);
	cr_assert(g->mem != MAP_FAILED);
	*entry(g, PML4, 0) = gpa(PDPT) | P | W | U;
	*entry(g, PDPT, 0) = gpa(PD) | P | W | U;
	*entry(g, PD, 1) = gpa(PT) | P | W | U;
	*entry(g, PT, 0) = gpa(PAGE_A) | P | W | U;
	*entry(g, PT, 1) = gpa(PAGE_B) | P | W | U;
	cr_assert_eq(ioasid_map_file(g->ctx, g->ioas, g->fd, 0, MEM_SIZE,
				     RW | FIXED, &iova), 0, "%s",
		     ioasid_last_error(g->ctx));
	g->nic = bind(g->ctx, NIC);
	g->gpu = bind(g->ctx, GPU0);
	cr_assert_eq(ioasid_viommu_alloc(g->ctx, g->ioas, g->nic,
					 IOASID_VIOMMU_SIM, 0, &g->viommu), 0,
		     "%s", ioasid_last_error(g->ctx));
	cr_assert_neq(g->viommu, 0);
}

/* ... the NIC's vDEVICE, a table on the vIOMMU, the NIC attached. */
static void guest_setup_attached(struct guest *g)
{
	guest_setup(g);
	cr_assert_eq(ioasid_vdevice_alloc(g->ctx, g->viommu, g->nic, NIC_VID,
					  &g->vnic), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(alloc_on_viommu(g, g->nic, &g->nested), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(ioasid_device_attach_nested(g->ctx, g->nic, g->nested, 0),
		     0, "%s", ioasid_last_error(g->ctx));
}

static void guest_teardown(struct guest *g)
{
	munmap(g->mem, MEM_SIZE);
	close(g->fd);
	ioasid_unref(g->ctx);
}

static void write_and_check(struct guest *g, uint32_t dev, uint64_t iova,
			    uint64_t off, uint8_t seed)
{
	uint8_t buf[4096];
	uint64_t done = 0;

	memset(buf, seed, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(g->ctx, dev, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE, &done), 0,
		     "DMA to 0x%llx: %s", (unsigned long long)iova,
		     ioasid_last_error(g->ctx));
	cr_assert_eq(memcmp(g->mem + off, buf, sizeof(buf)), 0,
		     "DMA to 0x%llx did not land at GPA 0x%llx",
		     (unsigned long long)iova, (unsigned long long)gpa(off));
}

static int inval(struct guest *g, struct ioasid_viommu_inval e)
{
	int32_t err = 1;
	uint32_t nr = 1;
	int r;

	r = ioasid_viommu_invalidate(g->ctx, g->viommu, &e, &nr, &err);
	cr_assert_eq(err, r, "the entry's error is the call's");
	cr_assert_eq(nr, r == 0 ? 1u : 0u);
	return r;
}

static struct ioasid_viommu_info viommu_info(struct guest *g)
{
	struct ioasid_viommu_info info[2];
	uint32_t nr = 2;

	cr_assert_eq(ioasid_viommu_list(g->ctx, g->ioas, info, &nr), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(nr, 1);
	return info[0];
}

/* ---- translation and invalidation ------------------------------------------ */

Test(viommu, dma_through_a_table_on_the_viommu)
{
	struct ioasid_vdevice_info vd[2];
	struct ioasid_viommu_info info;
	struct ioasid_device_info dinfo;
	uint32_t nr = 2;
	struct guest g;

	guest_setup_attached(&g);
	write_and_check(&g, g.nic, GVA, PAGE_A, 1);
	write_and_check(&g, g.nic, GVA + 4096, PAGE_B, 2);
	info = viommu_info(&g);
	cr_assert_eq(info.viommu_id, g.viommu);
	cr_assert_eq(info.ioas_id, g.ioas);
	cr_assert_eq(info.type, IOASID_VIOMMU_SIM);
	cr_assert_eq(info.nr_vdevices, 1);
	cr_assert_eq(info.nr_nested, 1);
	cr_assert_str_eq(info.iommu, "sim0");
	cr_assert_eq(ioasid_vdevice_list(g.ctx, g.ioas, vd, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(vd[0].vdevice_id, g.vnic);
	cr_assert_eq(vd[0].viommu_id, g.viommu);
	cr_assert_eq(vd[0].dev_id, g.nic);
	cr_assert_eq(vd[0].virt_id, NIC_VID);
	cr_assert_eq(ioasid_device_get_info(g.ctx, NIC, &dinfo), 0);
	cr_assert_eq(dinfo.nested_id, g.nested);
	cr_assert_eq(dinfo.ioas_id, g.ioas);
	cr_assert_eq(dinfo.domain_id, info.domain_id,
		     "the table is over the vIOMMU's stage-2 domain");
	guest_teardown(&g);
}

/*
 * The NIC and GPU0 on one table: an invalidation through the vIOMMU
 * drops the IOTLB of the device whose virtual ID it names, only that
 * one's, and only the range it names.
 */
Test(viommu, invalidation_names_the_device_by_virtual_id)
{
	uint32_t vgpu = 0;
	struct guest g;

	guest_setup_attached(&g);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, GPU_VID,
					  &vgpu), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.gpu, g.nested, 0),
		     0, "%s", ioasid_last_error(g.ctx));
	write_and_check(&g, g.nic, GVA, PAGE_A, 1);
	write_and_check(&g, g.gpu, GVA, PAGE_A, 2);
	/* the guest points the page elsewhere, without telling the IOMMU */
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	write_and_check(&g, g.nic, GVA, PAGE_A, 3);	/* cached: stale */
	write_and_check(&g, g.gpu, GVA, PAGE_A, 4);
	/* the GPU's whole cache: the NIC keeps its stale entry */
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = GPU_VID,
			.flags = IOASID_VIOMMU_INVAL_ALL }), 0, "%s",
		     ioasid_last_error(g.ctx));
	write_and_check(&g, g.gpu, GVA, PAGE_C, 5);	/* fresh */
	write_and_check(&g, g.nic, GVA, PAGE_A, 6);	/* still stale */
	/* the NIC, another page: still stale; its page: fresh */
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = GVA + 4096,
			.npages = 1 }), 0);
	write_and_check(&g, g.nic, GVA, PAGE_A, 7);
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = GVA, .npages = 1 }), 0);
	write_and_check(&g, g.nic, GVA, PAGE_C, 8);
	cr_assert_eq(viommu_info(&g).nr_invalidations, 3);
	guest_teardown(&g);
}

Test(viommu, attach_needs_a_vdevice_on_the_viommu)
{
	struct guest g;
	uint32_t vnic = 0;

	guest_setup(&g);
	cr_assert_eq(alloc_on_viommu(&g, g.nic, &g.nested), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.nic, g.nested, 0),
		     -ENOENT);
	cr_assert(strstr(ioasid_last_error(g.ctx), "vDEVICE"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.nic, NIC_VID,
					  &vnic), 0);
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.nic, g.nested, 0),
		     0, "%s", ioasid_last_error(g.ctx));
	write_and_check(&g, g.nic, GVA, PAGE_A, 1);
	guest_teardown(&g);
}

/* GPU0's PASID on a table on the vIOMMU: as the device, only with its vDEVICE. */
static void pasid_lands(struct guest *g, uint32_t pasid, uint64_t iova,
			uint64_t off, uint8_t seed)
{
	uint8_t buf[4096];

	memset(buf, seed, sizeof(buf));
	cr_assert_eq(ioasid_device_dma_pasid(g->ctx, g->gpu, pasid, iova, buf,
					     sizeof(buf), IOASID_DMA_WRITE,
					     NULL), 0, "%s",
		     ioasid_last_error(g->ctx));
	cr_assert_eq(memcmp(g->mem + off, buf, sizeof(buf)), 0,
		     "PASID %u DMA to 0x%llx did not land at 0x%llx", pasid,
		     (unsigned long long)iova, (unsigned long long)off);
}

Test(viommu, pasid_needs_a_vdevice_and_follows_its_invalidation)
{
	uint32_t vgpu = 0;
	struct guest g;

	guest_setup_attached(&g);
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.gpu, 5,
						       g.nested, 0), -ENOENT);
	cr_assert(strstr(ioasid_last_error(g.ctx), "vDEVICE"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, GPU_VID,
					  &vgpu), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.gpu, 5,
						       g.nested, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	pasid_lands(&g, 5, GVA, PAGE_A, 1);
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	pasid_lands(&g, 5, GVA, PAGE_A, 2);	/* cached: stale */
	/* the NIC's cache: not the GPU's PASID */
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID,
			.flags = IOASID_VIOMMU_INVAL_ALL }), 0);
	pasid_lands(&g, 5, GVA, PAGE_A, 3);
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = GPU_VID,
			.flags = IOASID_VIOMMU_INVAL_ALL }), 0, "%s",
		     ioasid_last_error(g.ctx));
	pasid_lands(&g, 5, GVA, PAGE_C, 4);	/* fresh */
	cr_assert_eq(ioasid_device_pasid_detach(g.ctx, g.gpu, 5), 0);
	guest_teardown(&g);
}

/* ---- refusals ------------------------------------------------------------------ */

Test(viommu, alloc_refusals)
{
	uint32_t id = 0, plain = 0, gpu1;
	struct guest g;

	guest_setup(&g);
	gpu1 = bind(g.ctx, GPU1);
	cr_assert_eq(ioasid_ioas_alloc(g.ctx, 0, &plain), 0);
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, plain, g.nic,
					 IOASID_VIOMMU_SIM, 0, &id), -EINVAL);
	cr_assert(strstr(ioasid_last_error(g.ctx), "nesting parent"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, g.nic, 77, 0, &id),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, g.nic,
					 IOASID_VIOMMU_SELFTEST, 0, &id),
		     -EOPNOTSUPP, "the simulator is no selftest mock");
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, g.nic,
					 IOASID_VIOMMU_SIM, 1, &id),
		     -EOPNOTSUPP);
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, gpu1,
					 IOASID_VIOMMU_SIM, 0, &id),
		     -EOPNOTSUPP, "sim1 has no nesting");
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, 999999,
					 IOASID_VIOMMU_SIM, 0, &id), -ENOENT);
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, 999999, g.nic,
					 IOASID_VIOMMU_SIM, 0, &id), -ENOENT);
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, g.nic,
					 IOASID_VIOMMU_SIM, 0, NULL), -EINVAL);
	cr_assert_eq(id, 0, "nothing came out of a refusal");
	cr_assert_eq(viommu_info(&g).viommu_id, g.viommu, "one vIOMMU only");
	guest_teardown(&g);
}

Test(viommu, vdevice_refusals)
{
	uint32_t id = 0, vnic = 0, gpu1, second = 0;
	struct ioasid_vdevice_info vd[4];
	uint32_t nr = 4;
	struct guest g;

	guest_setup(&g);
	gpu1 = bind(g.ctx, GPU1);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, gpu1, 5, &id),
		     -EINVAL, "GPU1 is behind sim1");
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.nic, NIC_VID,
					  &vnic), 0);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, NIC_VID,
					  &id), -EEXIST, "virtual ID taken");
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.nic, 7, &id),
		     -EEXIST, "one vDEVICE per device");
	cr_assert_eq(ioasid_viommu_alloc(g.ctx, g.ioas, g.nic,
					 IOASID_VIOMMU_SIM, 0, &second), 0);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, second, g.nic, 7, &id),
		     -EEXIST, "one vDEVICE per device, on any vIOMMU");
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, second, g.gpu, NIC_VID, &id),
		     0, "virtual IDs are per vIOMMU");
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, 999999, g.gpu, 1, &id),
		     -ENOENT);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, 999999, 1, &id),
		     -ENOENT);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, 1, NULL),
		     -EINVAL);
	cr_assert_eq(ioasid_vdevice_list(g.ctx, g.ioas, vd, &nr), 0);
	cr_assert_eq(nr, 2);
	/* a table on the vIOMMU for a device of another IOMMU */
	{
		struct ioasid_nested_vtd_s1 s1 = s1_root();
		struct ioasid_nested_selftest st = { .iotlb = 1 };

		cr_assert_eq(ioasid_viommu_nested_alloc(g.ctx, g.viommu, gpu1,
							IOASID_NESTED_VTD_S1,
							&s1, sizeof(s1), 0,
							&id), -EOPNOTSUPP,
			     "sim1 has no nesting");
		cr_assert_eq(ioasid_viommu_nested_alloc(g.ctx, 999999, g.nic,
							IOASID_NESTED_VTD_S1,
							&s1, sizeof(s1), 0,
							&id), -ENOENT);
		cr_assert_eq(ioasid_viommu_nested_alloc(g.ctx, g.viommu, g.nic,
							IOASID_NESTED_SELFTEST,
							&st, sizeof(st), 0,
							&id), -EOPNOTSUPP);
	}
	guest_teardown(&g);
}

Test(viommu, destroy_is_refused_while_in_use)
{
	uint32_t vgpu = 0;
	struct guest g;

	guest_setup_attached(&g);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, GPU_VID,
					  &vgpu), 0);
	cr_assert_eq(ioasid_viommu_destroy(g.ctx, g.viommu), -EBUSY);
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), -EBUSY);
	/* the wrong kind of object is no such object */
	cr_assert_eq(ioasid_vdevice_destroy(g.ctx, g.viommu), -ENOENT);
	cr_assert_eq(ioasid_viommu_destroy(g.ctx, g.vnic), -ENOENT);
	/* a vDEVICE may go while its device is attached (as in iommufd) */
	cr_assert_eq(ioasid_vdevice_destroy(g.ctx, vgpu), 0);
	cr_assert_eq(ioasid_vdevice_destroy(g.ctx, vgpu), -ENOENT);
	cr_assert_eq(ioasid_vdevice_destroy(g.ctx, g.vnic), 0);
	cr_assert_eq(ioasid_viommu_destroy(g.ctx, g.viommu), -EBUSY,
		     "the nested table holds it");
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), -EBUSY);
	cr_assert_eq(ioasid_device_detach(g.ctx, g.nic), 0);
	cr_assert_eq(ioasid_nested_destroy(g.ctx, g.nested), 0);
	cr_assert_eq(viommu_info(&g).nr_nested, 0);
	cr_assert_eq(ioasid_viommu_destroy(g.ctx, g.viommu), 0);
	cr_assert_eq(ioasid_viommu_destroy(g.ctx, g.viommu), -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(g.ctx, g.ioas), 0);
	guest_teardown(&g);
}

/* An unbind takes the device's vDEVICE with it; its ID is free again. */
Test(viommu, unbind_frees_the_vdevice)
{
	struct ioasid_vdevice_info vd[2];
	uint32_t nr = 2, vgpu = 0;
	struct guest g;

	guest_setup_attached(&g);
	cr_assert_eq(ioasid_device_unbind(g.ctx, g.nic), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_vdevice_list(g.ctx, g.ioas, vd, &nr), 0);
	cr_assert_eq(nr, 0);
	cr_assert_eq(viommu_info(&g).nr_vdevices, 0);
	cr_assert_eq(ioasid_vdevice_destroy(g.ctx, g.vnic), -ENOENT);
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, NIC_VID,
					  &vgpu), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_attach_nested(g.ctx, g.gpu, g.nested, 0),
		     0);
	write_and_check(&g, g.gpu, GVA, PAGE_A, 1);
	guest_teardown(&g);
}

Test(viommu, invalidate_reports_each_entry)
{
	struct ioasid_viommu_inval e[3] = {
		{ .virt_id = NIC_VID, .flags = IOASID_VIOMMU_INVAL_ALL },
		{ .virt_id = 0x999, .flags = IOASID_VIOMMU_INVAL_ALL },
		{ .virt_id = NIC_VID, .flags = IOASID_VIOMMU_INVAL_ALL },
	};
	struct ioasid_viommu_inval *many;
	int32_t err[3] = { 1, 1, 1 };
	uint32_t nr = 3;
	struct guest g;

	guest_setup_attached(&g);
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, g.viommu, e, &nr, err),
		     -EINVAL);
	cr_assert(strstr(ioasid_last_error(g.ctx), "virtual ID"), "%s",
		  ioasid_last_error(g.ctx));
	cr_assert_eq(nr, 1);
	cr_assert_eq(err[0], 0);
	cr_assert_eq(err[1], -EINVAL);
	cr_assert_eq(err[2], -ECANCELED);
	cr_assert_eq(viommu_info(&g).nr_invalidations, 1);

	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = 0x123, .npages = 1 }),
		     -EINVAL, "unaligned");
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = GVA }), -EINVAL,
		     "no pages");
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = 0xfffffffffffff000ULL,
			.npages = 2 }), -EOVERFLOW);
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .flags = 1 << 5 }), -EOPNOTSUPP);
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .flags = IOASID_VIOMMU_INVAL_ALL,
			.npages = 1 }), -EINVAL, "ALL takes no range");
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .flags = IOASID_VIOMMU_INVAL_ALL,
			.cache_id = 1 }), -EINVAL, "no cache ids here");
	nr = 0;
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, g.viommu, e, &nr, NULL),
		     -EINVAL);
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, g.viommu, e, NULL, NULL),
		     -EINVAL);
	nr = 1;
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, g.viommu, NULL, &nr,
					      NULL), -EINVAL);
	nr = 4097;
	many = calloc(nr, sizeof(*many));
	cr_assert(many);
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, g.viommu, many, &nr,
					      NULL), -E2BIG);
	free(many);
	nr = 1;
	cr_assert_eq(ioasid_viommu_invalidate(g.ctx, 999999, e, &nr, NULL),
		     -ENOENT);
	cr_assert_eq(viommu_info(&g).nr_invalidations, 1,
		     "refused entries are not counted");
	guest_teardown(&g);
}

Test(viommu, other_context_cannot_name_it)
{
	struct ioasid_viommu_inval e = {
		.virt_id = NIC_VID, .flags = IOASID_VIOMMU_INVAL_ALL,
	};
	struct ioasid_nested_vtd_s1 s1 = s1_root();
	struct ioasid_ctx *other = test_ctx();
	struct ioasid_viommu_info info[1];
	uint32_t nr = 1, id = 0, dev;
	struct guest g;

	guest_setup_attached(&g);
	dev = bind(other, "0000:00:02.0");
	cr_assert_eq(ioasid_viommu_destroy(other, g.viommu), -ENOENT);
	cr_assert_eq(ioasid_vdevice_destroy(other, g.vnic), -ENOENT);
	cr_assert_eq(ioasid_vdevice_alloc(other, g.viommu, dev, 9, &id),
		     -ENOENT);
	cr_assert_eq(ioasid_viommu_invalidate(other, g.viommu, &e, &nr, NULL),
		     -ENOENT);
	cr_assert_eq(ioasid_viommu_nested_alloc(other, g.viommu, dev,
						IOASID_NESTED_VTD_S1, &s1,
						sizeof(s1), 0, &id), -ENOENT);
	nr = 1;
	cr_assert_eq(ioasid_viommu_list(other, g.ioas, info, &nr), -ENOENT);
	cr_assert_eq(ioasid_viommu_alloc(other, g.ioas, dev,
					 IOASID_VIOMMU_SIM, 0, &id), -ENOENT);
	/* ours is untouched */
	cr_assert_eq(viommu_info(&g).nr_vdevices, 1);
	write_and_check(&g, g.nic, GVA, PAGE_A, 1);
	ioasid_unref(other);
	guest_teardown(&g);
}

/*
 * The state image carries the vIOMMU, its vDEVICEs, the table on it and
 * what is attached there: the imported context has them with their ids,
 * DMA goes through the table as before, and an invalidation through the
 * copy's vIOMMU still names the device by its virtual ID.
 */
Test(viommu, export_carries_it)
{
	struct ioasid_ctx *orig, *copy;
	struct ioasid_vdevice_info vd[2];
	uint32_t vgpu = 0, nr = 2, id;
	struct guest g;

	guest_setup_attached(&g);
	if (ioasid_is_remote(g.ctx)) {
		guest_teardown(&g);
		cr_skip_test("ioasid_ctx_export is an embedded context's");
	}
	cr_assert_eq(ioasid_vdevice_alloc(g.ctx, g.viommu, g.gpu, GPU_VID,
					  &vgpu), 0, "%s",
		     ioasid_last_error(g.ctx));
	cr_assert_eq(ioasid_device_pasid_attach_nested(g.ctx, g.gpu, 5,
						       g.nested, 0), 0, "%s",
		     ioasid_last_error(g.ctx));
	copy = snapshot_export_import(g.ctx, "vIOMMU, vDEVICEs, table and "
				      "ids");
	cr_assert_eq(ioasid_vdevice_list(copy, g.ioas, vd, &nr), 0);
	cr_assert_eq(nr, 2);

	orig = g.ctx;
	g.ctx = copy;
	write_and_check(&g, g.nic, GVA, PAGE_A, 1);
	pasid_lands(&g, 5, GVA + 4096, PAGE_B, 2);
	/* stale in the copy's device IOTLB until its vIOMMU invalidates */
	*entry(&g, PT, 0) = gpa(PAGE_C) | P | W | U;
	write_and_check(&g, g.nic, GVA, PAGE_A, 3);
	cr_assert_eq(inval(&g, (struct ioasid_viommu_inval){
			.virt_id = NIC_VID, .addr = GVA, .npages = 1 }), 0,
		     "%s", ioasid_last_error(copy));
	write_and_check(&g, g.nic, GVA, PAGE_C, 4);
	/* a virtual ID stays taken; a vDEVICE goes as any would */
	cr_assert_eq(ioasid_vdevice_alloc(copy, g.viommu, g.gpu, NIC_VID, &id),
		     -EEXIST);
	cr_assert_eq(ioasid_device_pasid_detach(copy, g.gpu, 5), 0);
	cr_assert_eq(ioasid_vdevice_destroy(copy, vgpu), 0, "%s",
		     ioasid_last_error(copy));
	cr_assert_eq(ioasid_viommu_destroy(copy, g.viommu), -EBUSY);
	g.ctx = orig;
	ioasid_unref(copy);
	guest_teardown(&g);
}
