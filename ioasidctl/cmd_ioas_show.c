/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl ioas show: one address space drawn as text.
 *
 * The IOVA space is cut into segments: mapped (ioasid_mapping_next walk),
 * free (allowed but unmapped), reserved (a hole between two allowed
 * ranges: a reserved region of an attached device or IOMMU, or a gap
 * left by ioasid_allow_iovas()) and disallowed (below the first or above
 * the last allowed range: the IOMMU aperture or ioasid_allow_iovas()).
 * libioasid reports only the allowed ranges, so "reserved" and
 * "disallowed" are told apart by position.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

#define MAP_COLUMNS	64
#define MIN_SPAN	(4ULL << 30)	/* draw at least 0-4G */

static const char usage[] =
	"Usage: ioasidctl ioas show IOAS [--json] [--svg FILE]\n"
	"\n"
	"Draw an address space of this session: a line of 64 columns from\n"
	"IOVA 0 (# mapped, . free, r reserved, x disallowed), every range\n"
	"of the IOVA space, the mappings with their backing files, and the\n"
	"domains and devices it is attached to.\n"
	"\n"
	"  --svg FILE   also write the same picture as SVG to FILE ('-':\n"
	"               standard output, instead of the text)\n";

enum seg_kind {		/* in drawing priority: a column shows the highest */
	SEG_FREE,
	SEG_DISALLOWED,
	SEG_RESERVED,
	SEG_MAPPED,
};

static const char seg_char[] = ".xr#";
static const char *const seg_name[] = {
	"free", "disallowed", "reserved", "mapped",
};

struct segment {
	uint64_t start, last;		/* inclusive */
	enum seg_kind kind;
};

struct view {
	uint32_t id;
	bool owner;			/* show who created it (observer) */
	struct ioasid_ioas_info info;
	struct ioasid_iova_range *allowed;
	uint32_t nr_allowed;
	uint64_t alignment;
	struct ioasid_mapping *maps;
	size_t nr_maps;
	struct ioasid_file_info *files;
	size_t nr_files;
	struct ioasid_domain_info *domains;
	uint32_t nr_domains;
	struct ioasid_nested_info *nested;	/* tables over it */
	uint32_t nr_nested;
	struct ioasid_viommu_info *viommus;	/* vIOMMUs over it */
	uint32_t nr_viommus;
	struct ioasid_vdevice_info *vdevices;	/* of those vIOMMUs */
	uint32_t nr_vdevices;
	struct ioasid_device_info *devices;	/* all of them */
	uint32_t nr_devices;
	struct view_pasid {			/* device PASIDs on it */
		uint32_t dev;			/* index in devices */
		struct ioasid_pasid_info p;
	} *pasids;
	uint32_t nr_pasids;
	struct segment *segs;
	size_t nr_segs, cap_segs;
	bool nomem;
};

static void view_free(struct view *v)
{
	free(v->allowed);
	free(v->maps);
	free(v->files);
	free(v->domains);
	free(v->nested);
	free(v->viommus);
	free(v->vdevices);
	free(v->devices);
	free(v->pasids);
	free(v->segs);
}

/* Grows an array of @elem-sized entries so that one more fits. */
static bool grow(void **v, size_t nr, size_t *cap, size_t elem)
{
	size_t n = *cap ? *cap * 2 : 32;
	void *bigger;

	if (nr < *cap)
		return true;
	bigger = realloc(*v, n * elem);
	if (!bigger)
		return false;
	*v = bigger;
	*cap = n;
	return true;
}

/* ---- gathering ----------------------------------------------------------- */

static int get_ranges(struct ctl *ctl, struct view *v)
{
	uint32_t nr = 0;
	int r;

	for (int tries = 0; tries < 8; tries++) {
		r = ioasid_iova_ranges(ctl->ctx, v->id, v->allowed, &nr,
				       &v->alignment);
		if (r != -EMSGSIZE)
			break;
		free(v->allowed);
		v->allowed = calloc(nr, sizeof(*v->allowed));
		if (!v->allowed)
			return -ENOMEM;
	}
	v->nr_allowed = nr;
	return r;
}

static int get_mappings(struct ctl *ctl, struct view *v)
{
	struct ioasid_mapping m;
	size_t cap = 0;
	uint64_t next = 0;
	int r;

	while ((r = ioasid_mapping_next(ctl->ctx, v->id, next, &m)) == 0) {
		if (!grow((void **)&v->maps, v->nr_maps, &cap, sizeof(m)))
			return -ENOMEM;
		v->maps[v->nr_maps++] = m;
		next = m.iova + m.length;
		if (next == 0)		/* the mapping ends at 2^64 */
			return 0;
	}
	return r == -ENOENT ? 0 : r;
}

static const struct ioasid_file_info *find_file(const struct view *v,
						uint32_t file_id)
{
	for (size_t i = 0; i < v->nr_files; i++)
		if (v->files[i].file_id == file_id)
			return &v->files[i];
	return NULL;
}

static int get_files(struct ctl *ctl, struct view *v)
{
	size_t cap = 0;
	int r;

	for (size_t i = 0; i < v->nr_maps; i++) {
		uint32_t id = v->maps[i].file_id;

		if (!id || find_file(v, id))
			continue;
		if (!grow((void **)&v->files, v->nr_files, &cap,
			  sizeof(*v->files)))
			return -ENOMEM;
		r = ioasid_file_get_info(ctl->ctx, v->id, id,
					 &v->files[v->nr_files]);
		if (r < 0)
			return r;
		v->nr_files++;
	}
	return 0;
}

static int cmp_domain(const void *a, const void *b)
{
	const struct ioasid_domain_info *x = a, *y = b;

	return x->domain_id < y->domain_id ? -1 : x->domain_id > y->domain_id;
}

/* The PASIDs of the devices (this session's, or an observer's all) on it. */
static int get_pasids(struct ctl *ctl, struct view *v)
{
	struct ioasid_pasid_info p[64];

	for (uint32_t i = 0; i < v->nr_devices; i++) {
		const struct ioasid_device_info *d = &v->devices[i];
		uint32_t nr = 64;
		struct view_pasid *grown;
		int r;

		if (!d->dev_id || !d->nr_pasids)
			continue;
		r = ioasid_device_pasid_list(ctl->ctx, d->dev_id, p, &nr);
		if (r == -ENOENT)
			continue;	/* gone since, or not ours to see */
		if (r < 0)
			return r;
		grown = realloc(v->pasids, (v->nr_pasids + nr) *
					   sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		v->pasids = grown;
		for (uint32_t k = 0; k < nr; k++)
			if (p[k].ioas_id == v->id)
				v->pasids[v->nr_pasids++] =
					(struct view_pasid){ i, p[k] };
	}
	return 0;
}

static int gather(struct ctl *ctl, struct view *v)
{
	int r;

	r = ioasid_ioas_get_info(ctl->ctx, v->id, &v->info);
	if (r < 0)
		return ctl_fail(ctl, r, "IOAS %u", v->id);
	r = get_ranges(ctl, v);
	if (r == 0)
		r = get_mappings(ctl, v);
	if (r == 0)
		r = get_files(ctl, v);
	if (r == 0)
		r = ctl_list_domains(ctl, v->id, &v->domains, &v->nr_domains);
	if (r == 0)
		r = ctl_list_nested(ctl, v->id, &v->nested, &v->nr_nested);
	if (r == 0)
		r = ctl_list_viommus(ctl, v->id, &v->viommus, &v->nr_viommus);
	if (r == 0)
		r = ctl_list_vdevices(ctl, v->id, &v->vdevices,
				      &v->nr_vdevices);
	if (r == 0)
		r = ctl_list_devices(ctl, &v->devices, &v->nr_devices);
	if (r == 0)
		r = get_pasids(ctl, v);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot read IOAS %u", v->id);
	qsort(v->domains, v->nr_domains, sizeof(*v->domains), cmp_domain);
	return EXIT_OK;
}

/* ---- segments ------------------------------------------------------------ */

static void push(struct view *v, uint64_t start, uint64_t last,
		 enum seg_kind kind)
{
	struct segment *prev = v->nr_segs ? &v->segs[v->nr_segs - 1] : NULL;

	if (prev && prev->kind == kind && prev->last + 1 == start) {
		prev->last = last;
		return;
	}
	if (!grow((void **)&v->segs, v->nr_segs, &v->cap_segs,
		  sizeof(*v->segs))) {
		v->nomem = true;
		return;
	}
	v->segs[v->nr_segs++] = (struct segment){ start, last, kind };
}

/* Mapped and free segments of the allowed range [start, last]. */
static void carve(struct view *v, uint64_t start, uint64_t last, size_t *mi)
{
	uint64_t cur = start;
	bool done = false;

	while (*mi < v->nr_maps && v->maps[*mi].iova < start)
		(*mi)++;
	for (; *mi < v->nr_maps && !done; (*mi)++) {
		const struct ioasid_mapping *m = &v->maps[*mi];
		uint64_t end = m->iova + (m->length - 1);

		if (m->iova > last)
			break;
		if (m->iova > cur)
			push(v, cur, m->iova - 1, SEG_FREE);
		push(v, m->iova, end, SEG_MAPPED);
		done = end >= last;
		cur = end + 1;
	}
	if (!done && cur <= last)
		push(v, cur, last, SEG_FREE);
}

static void build_segments(struct view *v)
{
	uint64_t next = 0;
	size_t mi = 0;

	for (uint32_t i = 0; i < v->nr_allowed; i++) {
		const struct ioasid_iova_range *a = &v->allowed[i];

		if (a->start > next)
			push(v, next, a->start - 1,
			     i ? SEG_RESERVED : SEG_DISALLOWED);
		carve(v, a->start, a->last, &mi);
		if (a->last == UINT64_MAX)
			return;
		next = a->last + 1;
	}
	push(v, next, UINT64_MAX, SEG_DISALLOWED);
}

/* ---- drawing ------------------------------------------------------------- */

typedef unsigned __int128 u128;

/* The power of two from 0 that shows every mapping and reserved hole. */
static u128 draw_span(const struct view *v)
{
	u128 top = MIN_SPAN, span = 1;

	for (size_t i = 0; i < v->nr_segs; i++) {
		const struct segment *s = &v->segs[i];

		if ((s->kind == SEG_MAPPED || s->kind == SEG_RESERVED) &&
		    (u128)s->last + 1 > top)
			top = (u128)s->last + 1;
	}
	while (span < top)
		span <<= 1;
	return span;
}

static const char *span_label(u128 span)
{
	static char buf[32];

	if (span > UINT64_MAX)
		return "16E";
	snprintf(buf, sizeof(buf), "%s", size_str((uint64_t)span).s);
	return buf;
}

/* What each column shows: the most important kind in it (text and SVG). */
static u128 columns(const struct view *v, enum seg_kind col[MAP_COLUMNS])
{
	u128 span = draw_span(v), width = span / MAP_COLUMNS;

	for (int c = 0; c < MAP_COLUMNS; c++)
		col[c] = SEG_FREE;
	for (size_t i = 0; i < v->nr_segs; i++) {
		const struct segment *s = &v->segs[i];
		u128 last = s->last < span ? s->last : span - 1;

		if (s->start >= span)
			continue;
		for (u128 c = s->start / width; c <= last / width; c++)
			if (s->kind > col[c])
				col[c] = s->kind;
	}
	return span;
}

static void draw(const struct view *v)
{
	enum seg_kind col[MAP_COLUMNS];
	u128 span = columns(v, col), width = span / MAP_COLUMNS;
	const char *label = span_label(span);
	char line[MAP_COLUMNS + 1];

	for (int c = 0; c < MAP_COLUMNS; c++)
		line[c] = seg_char[col[c]];
	line[MAP_COLUMNS] = '\0';
	printf("  0%*s\n", MAP_COLUMNS + 1, label);
	printf("  |%s|\n", line);
	printf("  # mapped  . free  r reserved  x disallowed  (one column: "
	       "%s)\n", size_str((uint64_t)width).s);
}

/* ---- human output -------------------------------------------------------- */

static struct str32 seg_size(const struct segment *s)
{
	struct str32 out;

	if (s->start == 0 && s->last == UINT64_MAX) {
		snprintf(out.s, sizeof(out.s), "16E");
		return out;
	}
	return size_str(s->last - s->start + 1);
}

static void print_summary(const struct view *v)
{
	const struct ioasid_ioas_info *i = &v->info;
	char flags[64];

	ioas_flags_str(i->flags, flags, sizeof(flags));
	printf("IOAS %u\n", v->id);
	if (v->owner)
		printf("  owner:       pid %u, uid %u\n", i->owner_pid,
		       i->owner_uid);
	printf("  flags:       %s\n", flags);
	printf("  snoop mode:  %s\n", snoop_mode_name(i->snoop_mode));
	printf("  mappings:    %llu, %s mapped", (unsigned long long)
	       i->nr_mappings, size_str(i->bytes_mapped).s);
	if (i->flags & IOASID_IOAS_RESTRICTED)
		printf(", %s of it private\n  shared:      %s (its state "
		       "takes %s)", size_str(i->bytes_private).s,
		       size_str(i->bytes_shared).s, size_str(i->state_bytes).s);
	printf("\n  devices:     %u on %u domain%s\n", i->nr_devices,
	       i->nr_domains, i->nr_domains == 1 ? "" : "s");
	printf("  alignment:   %s\n\n", size_str(v->alignment).s);
}

static int print_segments(const struct view *v)
{
	static const char *const hdr[] = { "START", "LAST", "KIND", ">SIZE" };
	struct table t;
	int r;

	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (size_t i = 0; i < v->nr_segs; i++) {
		table_cell(&t, "%s", hex_str(v->segs[i].start, true).s);
		table_cell(&t, "%s", hex_str(v->segs[i].last, true).s);
		table_cell(&t, "%s", seg_name[v->segs[i].kind]);
		table_cell(&t, "%s", seg_size(&v->segs[i]).s);
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static void mapping_cells(struct table *t, const struct view *v,
			  const struct ioasid_mapping *m)
{
	const struct ioasid_file_info *f = find_file(v, m->file_id);

	table_cell(t, "%s", hex_str(m->iova, true).s);
	table_cell(t, "%s", size_str(m->length).s);
	table_cell(t, "%s", prot_str(m->flags));
	table_cell(t, "%s", hex_str(m->offset, false).s);
	if (m->flags & IOASID_MAPPING_USER)
		table_cell(t, "(user memory)");
	else if (f)
		table_cell(t, "%s (%s, file %u)", f->name,
			   file_kind_name(f->kind), m->file_id);
	else
		table_cell(t, "file %u", m->file_id);
}

static int print_mappings(const struct view *v)
{
	static const char *const hdr[] = {
		"IOVA", ">LENGTH", "PROT", ">OFFSET", "FILE",
	};
	struct table t;
	int r;

	if (!v->nr_maps) {
		printf("\n  no mappings\n");
		return 0;
	}
	printf("\n  MAPPINGS\n");
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (size_t i = 0; i < v->nr_maps; i++)
		mapping_cells(&t, v, &v->maps[i]);
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int print_domains(const struct view *v)
{
	static const char *const hdr[] = {
		">DOMAIN", "IOMMU", "SNOOP", "DIRTY", "PAGE-SIZES", ">DEVICES",
	};
	struct table t;
	char sizes[64];
	int r;

	if (!v->nr_domains) {
		printf("\n  no domains (no device attached)\n");
		return 0;
	}
	printf("\n  DOMAINS\n");
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < v->nr_domains; i++) {
		const struct ioasid_domain_info *d = &v->domains[i];

		page_sizes_str(d->page_sizes, sizes, sizeof(sizes));
		table_cell(&t, "%u", d->domain_id);
		table_cell(&t, "%s", d->iommu);
		table_cell(&t, "%s", d->flags & IOASID_DOMAIN_ENFORCE_COHERENCY ?
			   "enforced" : "not-enforced");
		table_cell(&t, "%s", d->flags & IOASID_DOMAIN_DIRTY_ON ? "on" :
			   d->flags & IOASID_DOMAIN_DIRTY_TRACKING ? "yes" : "no");
		table_cell(&t, "%s", sizes);
		table_cell(&t, "%u", d->nr_devices);
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int print_nested(const struct view *v)
{
	if (!v->nr_nested)
		return 0;
	printf("\n  NESTED TABLES\n");
	return nested_table(v->nested, v->nr_nested, "  ");
}

static int print_viommus(const struct view *v)
{
	if (!v->nr_viommus)
		return 0;
	printf("\n  VIOMMUS\n");
	if (viommu_table(v->viommus, v->nr_viommus, "  ") < 0)
		return -ENOMEM;
	if (!v->nr_vdevices)
		return 0;
	printf("\n  VDEVICES\n");
	return vdevice_table(v->vdevices, v->nr_vdevices, v->devices,
			     v->nr_devices, "  ");
}

static int print_devices(const struct view *v)
{
	static const char *const hdr[] = {
		"DEVICE", ">DEV", ">DOMAIN", ">NESTED", "COHERENT", "PLATFORM",
	};
	struct table t;
	char platform[64];
	int r;

	if (!v->info.nr_devices)
		return 0;
	printf("\n  DEVICES\n");
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < v->nr_devices; i++) {
		const struct ioasid_device_info *d = &v->devices[i];

		if (d->ioas_id != v->id)
			continue;
		flag_words(d->platform, platform_names,
			   ARRAY_SIZE(platform_names), platform,
			   sizeof(platform));
		table_cell(&t, "%s", d->name);
		table_cell(&t, "%u", d->dev_id);
		table_cell(&t, "%u", d->domain_id);
		if (d->nested_id)
			table_cell(&t, "%u", d->nested_id);
		else
			table_cell(&t, "-");
		table_cell(&t, "%s", d->flags & IOASID_DEVICE_NONCOHERENT ?
			   "no" : "yes");
		table_cell(&t, "%s", platform);
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int print_pasids(const struct view *v)
{
	static const char *const hdr[] = {
		"DEVICE", ">DEV", ">PASID", ">DOMAIN", ">NESTED",
	};
	struct table t;
	int r;

	if (!v->nr_pasids)
		return 0;
	printf("\n  PASIDS\n");
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < v->nr_pasids; i++) {
		const struct ioasid_device_info *d = &v->devices[v->pasids[i].dev];

		table_cell(&t, "%s", d->name);
		table_cell(&t, "%u", d->dev_id);
		table_cell(&t, "%u", v->pasids[i].p.pasid);
		table_cell(&t, "%u", v->pasids[i].p.domain_id);
		if (v->pasids[i].p.nested_id)
			table_cell(&t, "%u", v->pasids[i].p.nested_id);
		else
			table_cell(&t, "-");
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int print_human(const struct view *v)
{
	print_summary(v);
	draw(v);
	printf("\n");
	if (print_segments(v) < 0 || print_mappings(v) < 0 ||
	    print_domains(v) < 0 || print_nested(v) < 0 ||
	    print_viommus(v) < 0 ||
	    print_devices(v) < 0 || print_pasids(v) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- SVG ----------------------------------------------------------------- */

#define SVG_W		960
#define SVG_X		32
#define SVG_COL		14		/* MAP_COLUMNS * 14 = 896 */
#define SVG_ROW		18

static const char *const seg_fill[] = {
	[SEG_FREE] = "#eeeeec", [SEG_DISALLOWED] = "#555753",
	[SEG_RESERVED] = "#f57900", [SEG_MAPPED] = "#3465a4",
};

/* @s as XML character data or attribute value. */
static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default:
			if ((unsigned char)*s < 0x20)
				fputc(' ', f);	/* not allowed in XML 1.0 */
			else
				fputc(*s, f);
		}
	}
}

static void svg_line(FILE *f, int *y, const char *cls, const char *text)
{
	fprintf(f, "  <text class=\"%s\" x=\"%d\" y=\"%d\">", cls, SVG_X,
		*y);
	xml_text(f, text);
	fputs("</text>\n", f);
	*y += SVG_ROW;
}

static void svg_bar(FILE *f, const struct view *v, int *y)
{
	enum seg_kind col[MAP_COLUMNS];
	u128 span = columns(v, col), width = span / MAP_COLUMNS;
	char text[96];

	fprintf(f, "  <g class=\"map\" data-span=\"%s\" data-column=\"%llu\">"
		"\n", span_label(span), (unsigned long long)width);
	for (int c = 0; c < MAP_COLUMNS; c++)
		fprintf(f, "    <rect class=\"col %s\" data-kind=\"%s\" "
			"x=\"%d\" y=\"%d\" width=\"%d\" height=\"28\" "
			"fill=\"%s\" stroke=\"#ffffff\"/>\n", seg_name[col[c]],
			seg_name[col[c]], SVG_X + c * SVG_COL, *y, SVG_COL,
			seg_fill[col[c]]);
	fprintf(f, "  </g>\n");
	*y += 28 + 14;
	fprintf(f, "  <text x=\"%d\" y=\"%d\">0</text>\n  <text x=\"%d\" "
		"y=\"%d\" text-anchor=\"end\">%s</text>\n", SVG_X, *y,
		SVG_X + MAP_COLUMNS * SVG_COL, *y, span_label(span));
	*y += SVG_ROW;
	for (int k = SEG_MAPPED, x = SVG_X; k >= SEG_FREE; k--, x += 150)
		fprintf(f, "  <rect x=\"%d\" y=\"%d\" width=\"12\" "
			"height=\"12\" fill=\"%s\" stroke=\"#888a85\"/><text "
			"x=\"%d\" y=\"%d\">%s</text>\n", x, *y - 11,
			seg_fill[k], x + 16, *y, seg_name[k]);
	snprintf(text, sizeof(text), "one column: %s",
		 size_str((uint64_t)width).s);
	fprintf(f, "  <text x=\"%d\" y=\"%d\">", SVG_X + 600, *y);
	xml_text(f, text);
	fputs("</text>\n", f);
	*y += SVG_ROW * 2;
}

/* A restricted IOAS: its mapped bytes, private and shared, to scale. */
static void svg_state(FILE *f, const struct view *v, int *y)
{
	const struct ioasid_ioas_info *i = &v->info;
	uint64_t total = i->bytes_mapped ? i->bytes_mapped : 1;
	int w = MAP_COLUMNS * SVG_COL;
	int wp = (int)((u128)i->bytes_private * (unsigned int)w / total);
	char text[160];

	if (!(i->flags & IOASID_IOAS_RESTRICTED))
		return;
	fprintf(f, "  <g class=\"state\" data-bytes-mapped=\"%llu\" "
		"data-bytes-private=\"%llu\" data-bytes-shared=\"%llu\">\n"
		"    <rect class=\"private\" x=\"%d\" y=\"%d\" width=\"%d\" "
		"height=\"16\" fill=\"#cc0000\"/>\n    <rect class=\"shared\" "
		"x=\"%d\" y=\"%d\" width=\"%d\" height=\"16\" "
		"fill=\"#73d216\"/>\n  </g>\n",
		(unsigned long long)i->bytes_mapped,
		(unsigned long long)i->bytes_private,
		(unsigned long long)(i->bytes_mapped - i->bytes_private),
		SVG_X, *y, wp, SVG_X + wp, *y, w - wp);
	*y += 16 + SVG_ROW;
	snprintf(text, sizeof(text), "restricted: %s mapped, %s private (red), "
		 "%s shared (green)", size_str(i->bytes_mapped).s,
		 size_str(i->bytes_private).s,
		 size_str(i->bytes_mapped - i->bytes_private).s);
	svg_line(f, y, "caption", text);
	*y += SVG_ROW;
}

static void svg_tables(FILE *f, const struct view *v, int *y)
{
	char text[256];

	svg_line(f, y, "heading", "RANGES");
	for (size_t i = 0; i < v->nr_segs; i++) {
		const struct segment *s = &v->segs[i];

		fprintf(f, "  <g class=\"segment\" data-start=\"%llu\" "
			"data-last=\"%llu\" data-kind=\"%s\">\n  ",
			(unsigned long long)s->start,
			(unsigned long long)s->last, seg_name[s->kind]);
		snprintf(text, sizeof(text), "%s  %s  %-10s %s",
			 hex_str(s->start, true).s, hex_str(s->last, true).s,
			 seg_name[s->kind], seg_size(s).s);
		svg_line(f, y, "row", text);
		fputs("  </g>\n", f);
	}
	*y += SVG_ROW / 2;
	svg_line(f, y, "heading", v->nr_maps ? "MAPPINGS" : "no mappings");
	for (size_t i = 0; i < v->nr_maps; i++) {
		const struct ioasid_mapping *m = &v->maps[i];
		const struct ioasid_file_info *fi = find_file(v, m->file_id);

		fprintf(f, "  <g class=\"mapping\" data-iova=\"%llu\" "
			"data-length=\"%llu\" data-offset=\"%llu\" "
			"data-prot=\"%s\">\n  ", (unsigned long long)m->iova,
			(unsigned long long)m->length,
			(unsigned long long)m->offset, prot_str(m->flags));
		snprintf(text, sizeof(text), "%s  %s  %s  %s  %s%s%s%s",
			 hex_str(m->iova, true).s, size_str(m->length).s,
			 prot_str(m->flags), hex_str(m->offset, false).s,
			 m->flags & IOASID_MAPPING_USER ? "(user memory)" :
			 fi ? fi->name : "file", fi ? " (" : "",
			 fi ? file_kind_name(fi->kind) : "", fi ? ")" : "");
		svg_line(f, y, "row", text);
		fputs("  </g>\n", f);
	}
	*y += SVG_ROW / 2;
	svg_line(f, y, "heading", v->nr_domains ? "DOMAINS" :
		 "no domains (no device attached)");
	for (uint32_t i = 0; i < v->nr_domains; i++) {
		const struct ioasid_domain_info *d = &v->domains[i];
		const char *snoop = d->flags & IOASID_DOMAIN_ENFORCE_COHERENCY ?
				    "enforced" : "not-enforced";

		fprintf(f, "  <g class=\"domain\" data-domain=\"%u\" "
			"data-iommu=\"", d->domain_id);
		xml_text(f, d->iommu);
		fprintf(f, "\" data-snoop=\"%s\" data-devices=\"%u\">\n  ",
			snoop, d->nr_devices);
		snprintf(text, sizeof(text), "domain %u on %s, snooping %s, "
			 "%u device(s)", d->domain_id, d->iommu, snoop,
			 d->nr_devices);
		svg_line(f, y, "row", text);
		fputs("  </g>\n", f);
	}
	for (uint32_t i = 0; i < v->nr_devices; i++) {
		const struct ioasid_device_info *d = &v->devices[i];
		bool coherent = !(d->flags & IOASID_DEVICE_NONCOHERENT);

		if (d->ioas_id != v->id)
			continue;
		fprintf(f, "  <g class=\"device\" data-name=\"");
		xml_text(f, d->name);
		fprintf(f, "\" data-domain=\"%u\" data-coherent=\"%s\">\n  ",
			d->domain_id, coherent ? "yes" : "no");
		snprintf(text, sizeof(text), "  %s (dev %u) on domain %u, %s",
			 d->name, d->dev_id, d->domain_id,
			 coherent ? "coherent" : "non-coherent");
		svg_line(f, y, "row", text);
		fputs("  </g>\n", f);
	}
}

/* The picture of print_human() as an SVG document. */
static int write_svg(FILE *f, const struct view *v)
{
	char flags[64], title[256], *body = NULL;
	size_t len = 0;
	FILE *b = open_memstream(&body, &len);
	int y = 28;

	if (!b)
		return -ENOMEM;
	ioas_flags_str(v->info.flags, flags, sizeof(flags));
	snprintf(title, sizeof(title), "IOAS %u: %s, snoop mode %s, %llu "
		 "mapping(s), %s mapped", v->id, flags,
		 snoop_mode_name(v->info.snoop_mode),
		 (unsigned long long)v->info.nr_mappings,
		 size_str(v->info.bytes_mapped).s);
	/* the body first: its height is known at its end */
	svg_line(b, &y, "title", title);
	svg_bar(b, v, &y);
	svg_state(b, v, &y);
	svg_tables(b, v, &y);
	if (fclose(b) != 0) {
		free(body);
		return -ENOMEM;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"monospace\" "
		"font-size=\"12\" xml:space=\"preserve\" data-ioas=\"%u\">\n  <title>", SVG_W, y,
		SVG_W, y, v->id);
	xml_text(f, title);
	fprintf(f, "</title>\n  <rect width=\"%d\" height=\"%d\" "
		"fill=\"#ffffff\"/>\n", SVG_W, y);
	fwrite(body, 1, len, f);
	fputs("</svg>\n", f);
	free(body);
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_ranges(struct json *j, const struct view *v)
{
	json_arr_begin(j, "allowed_ranges");
	for (uint32_t i = 0; i < v->nr_allowed; i++) {
		json_obj_begin(j, NULL);
		json_u64(j, "start", v->allowed[i].start);
		json_u64(j, "last", v->allowed[i].last);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "segments");
	for (size_t i = 0; i < v->nr_segs; i++) {
		json_obj_begin(j, NULL);
		json_u64(j, "start", v->segs[i].start);
		json_u64(j, "last", v->segs[i].last);
		json_str(j, "kind", seg_name[v->segs[i].kind]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void json_mappings(struct json *j, const struct view *v)
{
	json_arr_begin(j, "mappings");
	for (size_t i = 0; i < v->nr_maps; i++) {
		const struct ioasid_mapping *m = &v->maps[i];

		json_obj_begin(j, NULL);
		json_u64(j, "iova", m->iova);
		json_u64(j, "length", m->length);
		json_u64(j, "offset", m->offset);
		json_str(j, "prot", prot_str(m->flags));
		json_bool(j, "user", m->flags & IOASID_MAPPING_USER);
		json_id(j, "file_id", m->file_id);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "files");
	for (size_t i = 0; i < v->nr_files; i++) {
		const struct ioasid_file_info *f = &v->files[i];

		json_obj_begin(j, NULL);
		json_u64(j, "file_id", f->file_id);
		json_str(j, "name", f->name);
		json_str(j, "kind", file_kind_name(f->kind));
		json_u64(j, "size", f->file_size);
		json_u64(j, "page_size", f->page_size);
		json_u64(j, "nr_mappings", f->nr_mappings);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void json_domains(struct json *j, const struct view *v)
{
	json_arr_begin(j, "domains");
	for (uint32_t i = 0; i < v->nr_domains; i++) {
		const struct ioasid_domain_info *d = &v->domains[i];

		json_obj_begin(j, NULL);
		json_u64(j, "domain", d->domain_id);
		json_str(j, "iommu", d->iommu);
		json_bool(j, "enforce_coherency",
			  d->flags & IOASID_DOMAIN_ENFORCE_COHERENCY);
		json_bool(j, "dirty_tracking",
			  d->flags & IOASID_DOMAIN_DIRTY_TRACKING);
		json_bool(j, "dirty_on", d->flags & IOASID_DOMAIN_DIRTY_ON);
		json_arr_begin(j, "page_sizes");
		for (unsigned int bit = 0; bit < 64; bit++)
			if (d->page_sizes & (1ULL << bit))
				json_u64(j, NULL, 1ULL << bit);
		json_arr_end(j);
		json_u64(j, "nr_devices", d->nr_devices);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "devices");
	for (uint32_t i = 0; i < v->nr_devices; i++)
		if (v->devices[i].ioas_id == v->id)
			json_device(j, &v->devices[i]);
	json_arr_end(j);
}

static void print_json(const struct view *v)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_ioas_fields(&j, &v->info);
	if (v->owner)
		json_owner_fields(&j, v->info.owner_pid, v->info.owner_uid);
	json_u64(&j, "alignment", v->alignment);
	json_ranges(&j, v);
	json_mappings(&j, v);
	json_domains(&j, v);
	json_nested_array(&j, v->nested, v->nr_nested);
	json_viommu_array(&j, v->viommus, v->nr_viommus);
	json_vdevice_array(&j, v->vdevices, v->nr_vdevices, v->devices,
			   v->nr_devices);
	json_arr_begin(&j, "pasids");
	for (uint32_t i = 0; i < v->nr_pasids; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "device", v->devices[v->pasids[i].dev].name);
		json_u64(&j, "dev_id", v->devices[v->pasids[i].dev].dev_id);
		json_u64(&j, "pasid", v->pasids[i].p.pasid);
		json_u64(&j, "domain", v->pasids[i].p.domain_id);
		json_id(&j, "nested", v->pasids[i].p.nested_id);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

/* Writes the SVG to @path ("-": stdout); EXIT_OK or 1 with a message. */
static int svg_to(struct ctl *ctl, const struct view *v, const char *path)
{
	bool out = !strcmp(path, "-");
	FILE *f = out ? stdout : fopen(path, "w");
	int r;

	if (!f)
		return ctl_syserr(ctl, errno, "ioas show: cannot create %s",
				  path);
	r = write_svg(f, v);
	if (!out && fclose(f) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		return ctl_syserr(ctl, -r, "ioas show: cannot write %s", path);
	return EXIT_OK;
}

int cmd_ioas_show(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_SVG = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "svg", required_argument, NULL, OPT_SVG },
		{ 0 },
	};
	struct view v = { 0 };
	const char *svg = NULL;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c != OPT_SVG)
			return ctl_opt_status(c);
		svg = optarg;
	}
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &v.id) ?: ctl_open(ctl);
	if (r)
		return r;
	v.owner = ctl->observer;
	r = gather(ctl, &v);
	if (r == EXIT_OK) {
		build_segments(&v);
		if (v.nomem)
			r = ctl_syserr(ctl, ENOMEM, "ioas show");
	}
	if (r == EXIT_OK && svg)
		r = svg_to(ctl, &v, svg);
	if (r == EXIT_OK && svg && !strcmp(svg, "-"))
		;			/* the SVG is the output */
	else if (r == EXIT_OK && ctl->json)
		print_json(&v);
	else if (r == EXIT_OK && print_human(&v) < 0)
		r = ctl_syserr(ctl, ENOMEM, "ioas show");
	view_free(&v);
	return r;
}

/* "ioasidctl show ioas N": the ip(8)-style spelling of "ioas show N". */
int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const char show_usage[] =
		"Usage: ioasidctl show ioas IOAS [--svg FILE] [--json]\n"
		"\n"
		"The same as 'ioasidctl ioas show IOAS' (ip(8)'s word order):\n"
		"draw the address space; see 'ioasidctl ioas show --help'.\n";

	if (argc >= 2 && !strcmp(argv[1], "ioas"))
		return cmd_ioas_show(ctl, argc - 1, argv + 1);
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "help"))) {
		fputs(show_usage, stdout);
		return EXIT_OK;
	}
	return ctl_usage(ctl, "show what? \"ioasidctl show ioas N\" draws an "
			 "address space");
}
