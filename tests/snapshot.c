/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state a session sees, as bytes (see snapshot.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "snapshot.h"

static void put(struct snap *s, const char *what, int r, const void *p,
		size_t n)
{
	fprintf(s->f, "%s %d ", what, r);
	if (r == 0 && p)
		fwrite(p, 1, n, s->f);
	fputc('\n', s->f);
}

static int cmp_pasid(const void *a, const void *b)
{
	const struct ioasid_pasid_info *x = a, *y = b;

	return x->pasid < y->pasid ? -1 : x->pasid > y->pasid;
}

/* A nest-parent IOAS's nested tables, vIOMMUs and vDEVICEs. */
static void snap_nesting(struct snap *s, struct ioasid_ctx *ctx, uint32_t id)
{
	struct ioasid_nested_info tables[16];
	struct ioasid_viommu_info viommus[16];
	struct ioasid_vdevice_info vdevs[16];
	uint32_t nr = 16;
	int r;

	memset(tables, 0, sizeof(tables));
	memset(viommus, 0, sizeof(viommus));
	memset(vdevs, 0, sizeof(vdevs));
	r = ioasid_nested_list(ctx, id, tables, &nr);
	put(s, "nested", r, tables, nr * sizeof(tables[0]));
	nr = 16;
	r = ioasid_viommu_list(ctx, id, viommus, &nr);
	put(s, "viommus", r, viommus, nr * sizeof(viommus[0]));
	nr = 16;
	r = ioasid_vdevice_list(ctx, id, vdevs, &nr);
	put(s, "vdevices", r, vdevs, nr * sizeof(vdevs[0]));
}

static void snap_ioas(struct snap *s, struct ioasid_ctx *ctx, uint32_t id)
{
	struct ioasid_ioas_info info = { 0 };
	struct ioasid_iova_range ranges[64] = { 0 };
	struct ioasid_domain_info doms[16] = { 0 };
	struct ioasid_mapping m = { 0 };
	uint64_t align = 0, iova = 0;
	uint32_t nr = 64;
	int r;

	put(s, "ioas", ioasid_ioas_get_info(ctx, id, &info), &info,
	    sizeof(info));
	r = ioasid_iova_ranges(ctx, id, ranges, &nr, &align);
	put(s, "ranges", r, ranges, nr * sizeof(ranges[0]));
	put(s, "align", r, &align, sizeof(align));
	nr = 16;
	r = ioasid_domain_list(ctx, id, doms, &nr);
	put(s, "domains", r, doms, nr * sizeof(doms[0]));
	snap_nesting(s, ctx, id);
	for (int i = 0; i < 100000; i++) {
		struct ioasid_file_info fi = { 0 };

		memset(&m, 0, sizeof(m));
		r = ioasid_mapping_next(ctx, id, iova, &m);
		put(s, "mapping", r, &m, sizeof(m));
		if (r < 0)
			break;
		if (m.file_id)
			put(s, "file", ioasid_file_get_info(ctx, id, m.file_id,
							    &fi), &fi,
			    sizeof(fi));
		if (m.iova + m.length == 0)
			break;
		iova = m.iova + m.length;
	}
}

void snapshot_take(struct ioasid_ctx *ctx, struct snap *s, unsigned int flags)
{
	struct ioasid_device_info devs[64];
	struct ioasid_status st = { 0 };
	uint32_t ids[256], nr = 256;
	int r;

	memset(devs, 0, sizeof(devs));
	s->buf = NULL;
	s->len = 0;
	s->f = open_memstream(&s->buf, &s->len);
	cr_assert(s->f, "open_memstream");
	r = ioasid_ioas_list(ctx, ids, &nr);
	put(s, "ioas_list", r, ids, nr * sizeof(ids[0]));
	for (uint32_t i = 0; r == 0 && i < nr; i++)
		snap_ioas(s, ctx, ids[i]);
	nr = 64;
	r = ioasid_device_list(ctx, devs, &nr);
	put(s, "devices", r, devs, nr * sizeof(devs[0]));
	for (uint32_t i = 0; r == 0 && i < nr; i++) {
		struct ioasid_pasid_info pasids[16];
		uint32_t np = 16;
		int rp;

		if (!devs[i].dev_id)
			continue;
		memset(pasids, 0, sizeof(pasids));
		rp = ioasid_device_pasid_list(ctx, devs[i].dev_id, pasids, &np);
		/* the library lists them in no order */
		if (rp == 0)
			qsort(pasids, np, sizeof(pasids[0]), cmp_pasid);
		put(s, "pasids", rp, pasids, np * sizeof(pasids[0]));
	}
	nr = 256;
	r = ioasid_vm_list(ctx, ids, &nr);
	put(s, "vm_list", r, ids, nr * sizeof(ids[0]));
	for (uint32_t i = 0; r == 0 && i < nr; i++) {
		struct ioasid_vm_info vi = { 0 };

		put(s, "vm", ioasid_vm_get_info(ctx, ids[i], &vi), &vi,
		    sizeof(vi));
	}
	if (flags & SNAP_STATUS) {
		r = ioasid_get_status(ctx, &st);
		put(s, "status", r, &st, sizeof(st));
	}
	fclose(s->f);
	s->f = NULL;
}

bool snapshot_equal(const struct snap *a, const struct snap *b)
{
	return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

void snapshot_free(struct snap *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = 0;
}

struct ioasid_ctx *snapshot_export_import(struct ioasid_ctx *ctx,
					  const char *what)
{
	struct ioasid_ctx *copy = NULL;
	struct snap before, after;
	int fd = -1;

	snapshot_take(ctx, &before, SNAP_STATUS);
	cr_assert_eq(ioasid_ctx_export(ctx, &fd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_ctx_import(fd, &copy), 0, "%s",
		     ioasid_last_error(NULL));
	close(fd);
	snapshot_take(copy, &after, SNAP_STATUS);
	cr_assert(snapshot_equal(&before, &after), "the imported context "
		  "has the same %s", what);
	snapshot_free(&before);
	snapshot_free(&after);
	return copy;
}
