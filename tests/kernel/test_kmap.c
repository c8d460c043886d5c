/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel backends' record of kernel mappings and the unmap
 * composition (backends/kcommon/kmap.c), against a fake kernel that
 * behaves like iommufd: mappings cannot overlap, an unmap must cover whole
 * mappings (else ENOENT and nothing changes), and map calls can be made to
 * fail.  Runs on the host (make check); the real kernels are in
 * tests/kernel/kb_*.c (make check-vm).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <libioasid.h>

#include "backends/kcommon/kcommon.h"
#include "util/macros.h"

#define PG SZ_4K

struct fake {
	struct kmap_entry v[256];
	int nr;
	int maps, unmaps;
	int fail_map_at;	/* the n-th map call (1-based) fails; 0 never */
	int lost;
	int cuts;
	int fail_cut;		/* errno the cut fails with; 0 never */
	int fail_map_from;	/* every map call from the n-th fails */
};

static int fake_map(void *arg, const struct kmap_entry *e)
{
	struct fake *k = arg;

	if (++k->maps == k->fail_map_at)
		return -ENOMEM;
	if (k->fail_map_from && k->maps >= k->fail_map_from)
		return -EFAULT;
	for (int i = 0; i < k->nr; i++)
		if (e->iova <= k->v[i].iova + k->v[i].length - 1 &&
		    k->v[i].iova <= e->iova + e->length - 1)
			return -EEXIST;
	cr_assert_lt(k->nr, 256);
	k->v[k->nr++] = *e;
	return 0;
}

static int fake_unmap(void *arg, uint64_t iova, uint64_t length)
{
	struct fake *k = arg;
	uint64_t last = iova + length - 1;
	int out = 0;

	k->unmaps++;
	for (int i = 0; i < k->nr; i++) {
		uint64_t s = k->v[i].iova, l = s + k->v[i].length - 1;

		if (l >= iova && s <= last && (s < iova || l > last))
			return -ENOENT;		/* would cut: refused */
	}
	for (int i = 0; i < k->nr; i++) {
		uint64_t s = k->v[i].iova, l = s + k->v[i].length - 1;

		if (!(l >= iova && s <= last))
			k->v[out++] = k->v[i];
	}
	k->nr = out;
	return 0;
}

static void fake_lost(void *arg, const struct kmap_entry *e)
{
	((struct fake *)arg)->lost++;
}

/* iommufd with huge pages off: split whatever sticks out, then remove. */
static int fake_cut(void *arg, uint64_t iova, uint64_t length)
{
	struct fake *k = arg;
	uint64_t last = iova + length - 1;
	struct kmap_entry keep[256];
	int out = 0;

	k->cuts++;
	if (k->fail_cut)
		return -k->fail_cut;
	for (int i = 0; i < k->nr; i++) {
		struct kmap_entry e = k->v[i];
		uint64_t s = e.iova, l = s + e.length - 1;

		if (l < iova || s > last) {
			keep[out++] = e;
			continue;
		}
		if (s < iova) {
			keep[out] = e;
			keep[out++].length = iova - s;
		}
		if (l > last) {
			keep[out] = e;
			keep[out].iova = last + 1;
			keep[out].length = l - last;
			keep[out++].backing.offset += last + 1 - s;
		}
	}
	memcpy(k->v, keep, out * sizeof(*keep));
	k->nr = out;
	return 0;
}

static const struct kmap_ops ops = {
	.map = fake_map, .unmap = fake_unmap, .lost = fake_lost,
	.cut = fake_cut,
};

/* The kernel's mapping at @iova: its length and file offset. */
static bool kernel_has(struct fake *k, uint64_t iova, uint64_t len,
		       uint64_t offset)
{
	for (int i = 0; i < k->nr; i++)
		if (k->v[i].iova == iova)
			return k->v[i].length == len &&
			       k->v[i].backing.offset == offset;
	return false;
}

static const struct be_backing file_at0 = {
	.file = (struct file_ref *)0x1, .fd = 3, .offset = 0,
};

Test(kmap, map_and_unmap_whole)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };

	cr_assert_eq(kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3), 0);
	cr_assert_eq(k.nr, 1);
	cr_assert_eq(kmap_map(&m, &ops, &k, 0x101000, PG, &file_at0, 3),
		     -EEXIST, "the record refuses overlaps itself");
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x100000, 8 * PG), 0);
	cr_assert_eq(k.nr, 0);
	cr_assert_eq(m.nr, 0);
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x100000, 8 * PG), 0,
		     "nothing there is fine");
	kmap_release(&m);
}

Test(kmap, cut_middle_keeps_both_sides)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };

	kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3);
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x103000, 2 * PG), 0);
	cr_assert_eq(k.nr, 2);
	cr_assert(kernel_has(&k, 0x100000, 3 * PG, 0));
	cr_assert(kernel_has(&k, 0x105000, 3 * PG, 5 * PG),
		  "the tail keeps its file offset");
	cr_assert_eq(m.nr, 2);
	cr_assert_eq(k.unmaps, 1, "one unmap call");
	kmap_release(&m);
}

Test(kmap, cut_across_two_mappings)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };
	struct be_backing b2 = file_at0;

	b2.offset = 0x10000;
	kmap_map(&m, &ops, &k, 0x100000, 4 * PG, &file_at0, 3);
	kmap_map(&m, &ops, &k, 0x104000, 4 * PG, &b2, 3);
	kmap_map(&m, &ops, &k, 0x200000, PG, &file_at0, 3);
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x102000, 4 * PG), 0);
	cr_assert(kernel_has(&k, 0x100000, 2 * PG, 0));
	cr_assert(kernel_has(&k, 0x106000, 2 * PG, 0x12000));
	cr_assert(kernel_has(&k, 0x200000, PG, 0), "untouched");
	cr_assert_eq(k.nr, 3);
	kmap_release(&m);
}

Test(kmap, user_memory_pieces_move_the_address)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };
	struct be_backing u = { .fd = -1, .hva = (void *)0x7f0000000000 };

	kmap_map(&m, &ops, &k, 0x100000, 4 * PG, &u, 3);
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x100000, PG), 0);
	cr_assert_eq(k.nr, 1);
	cr_assert_eq(k.v[0].iova, 0x101000);
	cr_assert_eq((uintptr_t)k.v[0].backing.hva, 0x7f0000001000);
	kmap_release(&m);
}

Test(kmap, per_page_unmaps_never_cut)
{
	struct fake k = { 0 };
	struct kmap m = { .per_page = true };

	cr_assert_eq(kmap_map(&m, &ops, &k, 0x100000, 16 * PG, &file_at0, 3),
		     0);
	cr_assert_eq(k.nr, 16);
	cr_assert(kernel_has(&k, 0x107000, PG, 7 * PG));
	k.maps = 0;
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x103000, 3 * PG), 0);
	cr_assert_eq(k.nr, 13);
	cr_assert_eq(k.maps, 0, "nothing mapped back: no window");
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x100000, 16 * PG), 0);
	cr_assert_eq(k.nr, 0);
	kmap_release(&m);
}

Test(kmap, failed_page_map_rolls_back)
{
	struct fake k = { .fail_map_at = 5 };
	struct kmap m = { .per_page = true };

	cr_assert_eq(kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3),
		     -ENOMEM);
	cr_assert_eq(k.nr, 0, "the 4 pages mapped were taken out again");
	cr_assert_eq(m.nr, 0);
	kmap_release(&m);
}

Test(kmap, failed_remap_restores_everything)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };

	kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3);
	kmap_map(&m, &ops, &k, 0x108000, 8 * PG, &file_at0, 3);
	k.maps = 0;
	k.fail_map_at = 2;		/* the head goes back, the tail fails */
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x104000, 8 * PG), -ENOMEM);
	cr_assert_eq(k.nr, 2, "both mappings are back, whole");
	cr_assert(kernel_has(&k, 0x100000, 8 * PG, 0));
	cr_assert(kernel_has(&k, 0x108000, 8 * PG, 0));
	cr_assert_eq(m.nr, 2);
	cr_assert_eq(k.lost, 0);
	kmap_release(&m);
}

Test(kmap, lost_pieces_are_listed)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };
	struct ioasid_iova_range lost[4];

	kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3);
	kmap_map(&m, &ops, &k, 0x200000, 8 * PG, &file_at0, 3);
	k.maps = 0;
	k.fail_map_from = 1;	/* the memory is gone: nothing maps again */
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x101000, PG), -EFAULT);
	cr_assert_eq(k.lost, 1);
	cr_assert_eq(m.nr, 1, "the record holds what the kernel holds");
	cr_assert_eq(k.nr, 1);
	cr_assert_eq(kmap_take_lost(&m, lost, 4), 1);
	cr_assert_eq(lost[0].start, 0x100000);
	cr_assert_eq(lost[0].last, 0x100000 + 8 * PG - 1);
	cr_assert_eq(kmap_take_lost(&m, lost, 4), 0, "taken once");
	kmap_release(&m);
}

Test(kmap, kernel_cuts_are_one_call_and_never_remap)
{
	struct fake k = { 0 };
	struct kmap m = { .kernel_cuts = true };

	kmap_map(&m, &ops, &k, 0x100000, 64 * PG, &file_at0, 3);
	kmap_map(&m, &ops, &k, 0x200000, 8 * PG, &file_at0, 3);
	k.maps = k.unmaps = 0;
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x105000, PG), 0);
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x100000, PG), 0, "first page");
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x13f000, PG), 0, "last page");
	/* across the hole between the two mappings, cutting both */
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x120000, 0xe3000), 0);
	cr_assert_eq(k.cuts, 4, "one kernel call per unmap");
	cr_assert_eq(k.maps, 0, "nothing mapped back");
	cr_assert_eq(k.unmaps, 0, "no whole unmap either");
	cr_assert_eq(k.nr, 3);
	cr_assert_eq(m.nr, 3, "the record follows the kernel's pieces");
	cr_assert(kernel_has(&k, 0x101000, 4 * PG, PG));
	cr_assert(kernel_has(&k, 0x106000, 0x1a000, 6 * PG));
	cr_assert(kernel_has(&k, 0x203000, 5 * PG, 3 * PG));
	for (size_t i = 0; i < m.nr; i++)
		cr_assert(kernel_has(&k, m.v[i].iova, m.v[i].length,
				     m.v[i].backing.offset));
	k.fail_cut = EBUSY;
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0x102000, PG), -EBUSY);
	cr_assert_eq(m.nr, 3, "a failed cut changes nothing");
	kmap_release(&m);
}

Test(kmap, replay_after_the_kernel_lost_all)
{
	struct fake k = { 0 }, fresh = { 0 };
	struct kmap m = { 0 };

	kmap_map(&m, &ops, &k, 0x100000, 8 * PG, &file_at0, 3);
	kmap_map(&m, &ops, &k, 0x300000, PG, &file_at0, 3);
	kmap_unmap(&m, &ops, &k, 0x102000, PG);
	cr_assert_eq(kmap_replay(&m, &ops, &fresh), 0);
	cr_assert_eq(fresh.nr, 3);
	cr_assert(kernel_has(&fresh, 0x103000, 5 * PG, 3 * PG));
	fresh = (struct fake){ .fail_map_at = 3 };
	cr_assert_eq(kmap_replay(&m, &ops, &fresh), -ENOMEM);
	cr_assert_eq(fresh.nr, 0, "a failed replay leaves nothing behind");
	kmap_release(&m);
}

Test(kmap, top_of_the_address_space)
{
	struct fake k = { 0 };
	struct kmap m = { 0 };

	cr_assert_eq(kmap_map(&m, &ops, &k, 0, PG, &file_at0, 3), 0);
	cr_assert_eq(kmap_map(&m, &ops, &k, UINT64_MAX - 2 * PG + 1, PG,
			      &file_at0, 3), 0);
	cr_assert_eq(kmap_map(&m, &ops, &k, UINT64_MAX - PG + 1, PG,
			      &file_at0, 3), 0);
	cr_assert_eq(kmap_map(&m, &ops, &k, UINT64_MAX - PG + 1, 2 * PG,
			      &file_at0, 3), -EINVAL, "wraps");
	cr_assert_eq(kmap_unmap(&m, &ops, &k, 0, UINT64_MAX - PG + 1), 0);
	cr_assert_eq(k.nr, 1, "the top page stays");
	cr_assert_eq(k.unmaps, 2, "a span too long for one call: one per "
		     "mapping");
	cr_assert_eq(kmap_unmap(&m, &ops, &k, PG, UINT64_MAX - PG + 1), 0);
	cr_assert_eq(k.nr, 0);
	kmap_release(&m);
}

/* The fake kernel's IOMMU_IOAS_COPY: counts, or fails with fail_cut. */
static int fake_copy(void *arg)
{
	struct fake *k = arg;

	k->maps++;
	return k->fail_cut ? -k->fail_cut : 0;
}

Test(kmap, copy_records_one_entry_per_source_mapping)
{
	struct fake k = { 0 };
	struct kmap src = { 0 }, dst = { 0 };
	struct be_backing b2 = file_at0, dstb = file_at0;
	struct be_piece pieces[2];

	b2.offset = 0x10000;
	dstb.fd = 7;		/* the destination's own file reference */
	kmap_map(&src, &ops, &k, 0x100000, 4 * PG, &file_at0, 3);
	kmap_map(&src, &ops, &k, 0x104000, 4 * PG, &b2, 3);
	/* the core's destination pieces: [2 pages of the first][2 of the 2nd] */
	pieces[0] = (struct be_piece){ .iova = 0x900000, .length = 2 * PG,
				       .backing = dstb, .prot = 1 };
	pieces[0].backing.offset = 2 * PG;
	pieces[1] = (struct be_piece){ .iova = 0x902000, .length = 2 * PG,
				       .backing = dstb, .prot = 1 };
	pieces[1].backing.offset = 0x10000;
	k.maps = 0;
	cr_assert_eq(kmap_copy(&dst, &src, 0x900000, 0x102000, 4 * PG, 1,
			       pieces, 2, fake_copy, &k), 0);
	cr_assert_eq(k.maps, 1, "one kernel call");
	cr_assert_eq(dst.nr, 2, "one entry per source mapping in the range");
	cr_assert_eq(dst.v[0].iova, 0x900000);
	cr_assert_eq(dst.v[0].length, 2 * PG);
	cr_assert_eq(dst.v[0].backing.offset, 2 * PG);
	cr_assert_eq(dst.v[0].backing.fd, 7, "the destination's backing");
	cr_assert_eq(dst.v[0].prot, 1);
	cr_assert_eq(dst.v[1].iova, 0x902000);
	cr_assert_eq(dst.v[1].backing.offset, 0x10000);
	cr_assert_eq(src.nr, 2, "the source is unchanged");
	kmap_release(&src);
	kmap_release(&dst);
}

Test(kmap, copy_refuses_holes_overlaps_and_kernel_failure)
{
	struct fake k = { 0 };
	struct kmap src = { 0 }, dst = { 0 };
	struct be_piece p = { .iova = 0x900000, .length = 8 * PG,
			      .backing = file_at0, .prot = 3 };

	kmap_map(&src, &ops, &k, 0x100000, 2 * PG, &file_at0, 3);
	kmap_map(&src, &ops, &k, 0x104000, 2 * PG, &file_at0, 3);
	k.maps = 0;
	cr_assert_eq(kmap_copy(&dst, &src, 0x900000, 0x100000, 6 * PG, 3, &p,
			       1, fake_copy, &k), -ENOENT, "a hole");
	cr_assert_eq(kmap_copy(&dst, &src, 0x900000, 0x100000, 3 * PG, 3, &p,
			       1, fake_copy, &k), -ENOENT, "runs past the end");
	cr_assert_eq(kmap_copy(&dst, &src, 0x900000, 0x200000, PG, 3, &p, 1,
			       fake_copy, &k), -ENOENT, "nothing mapped");
	cr_assert_eq(k.maps, 0, "the kernel was never asked");
	cr_assert_eq(kmap_copy(&src, &src, 0x101000, 0x104000, PG, 3, &p, 1,
			       fake_copy, &k), -EEXIST, "destination in use");
	k.fail_cut = ENOMEM;
	cr_assert_eq(kmap_copy(&dst, &src, 0x900000, 0x100000, 2 * PG, 3, &p,
			       1, fake_copy, &k), -ENOMEM);
	cr_assert_eq(dst.nr, 0, "a failed copy records nothing");
	k.fail_cut = 0;
	cr_assert_eq(kmap_copy(&src, &src, 0x108000, 0x100000, 2 * PG, 3, &p,
			       1, fake_copy, &k), -EINVAL,
		     "the core's pieces do not cover the destination");
	kmap_release(&src);
	kmap_release(&dst);
}

Test(kernel_backends, absent_kernel_is_enodev)
{
	struct ioasid_ctx *ctx = NULL;

	if (access("/dev/iommu", F_OK) == 0 ||
	    access("/dev/vfio/vfio", F_OK) == 0)
		cr_skip_test("this machine has /dev/iommu or /dev/vfio/vfio");
	cr_assert_eq(ioasid_new("iommufd", &ctx), -ENODEV);
	cr_assert(strstr(ioasid_last_error(NULL), "/dev/iommu"), "%s",
		  ioasid_last_error(NULL));
	cr_assert_eq(ioasid_new("vfio-type1", &ctx), -ENODEV);
	cr_assert(strstr(ioasid_last_error(NULL), "/dev/vfio/vfio"));
	cr_assert_eq(ioasid_new("iommufd:extra", &ctx), -EINVAL);
}
