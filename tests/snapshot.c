/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The state a session sees, as bytes (see snapshot.h). */
#include <stdlib.h>
#include <string.h>

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
