/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl faults: take the queued DMA fault records and print them. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl faults [--time iso|monotonic] [--json]\n"
	"\n"
	"Take every queued DMA fault record of this session's devices\n"
	"(oldest first) and print it: time, device, access, IOVA and\n"
	"reason.  Reading removes them from the queue.\n"
	"\n"
	"  --time iso        wall-clock time, 2026-12-02T10:00:00.123456+01:00\n"
	"                    (the default)\n"
	"  --time monotonic  seconds of CLOCK_MONOTONIC, as the library stamps them\n";

#define BATCH 64

static bool monotonic;

struct fault_list {
	struct ioasid_fault *v;
	size_t nr, cap;
};

static int read_all(struct ctl *ctl, struct fault_list *l)
{
	uint32_t nr;
	int r;

	do {
		if (l->cap - l->nr < BATCH) {
			size_t cap = l->cap + 4 * BATCH;
			void *v = realloc(l->v, cap * sizeof(*l->v));

			if (!v)
				return -ENOMEM;
			l->v = v;
			l->cap = cap;
		}
		nr = BATCH;
		r = ioasid_fault_read(ctl->ctx, l->v + l->nr, &nr);
		if (r < 0)
			return r;
		l->nr += nr;
	} while (nr == BATCH);
	return 0;
}

static const char *dev_name(const struct ioasid_device_info *d, uint32_t nr,
			    uint32_t dev_id)
{
	for (uint32_t i = 0; i < nr; i++)
		if (d[i].dev_id == dev_id)
			return d[i].name;
	return "?";
}

static const char *access_str(const struct ioasid_fault *f)
{
	return f->flags & IOASID_MAP_WRITE ? "write" : "read";
}

/* 1 or 2 for a nested table's fault, else 0. */
static unsigned int stage_of(const struct ioasid_fault *f)
{
	if (f->flags & IOASID_FAULT_STAGE1)
		return 1;
	return f->flags & IOASID_FAULT_STAGE2 ? 2 : 0;
}

static int print_table(const struct fault_list *l,
		       const struct ioasid_device_info *d, uint32_t nd,
		       uint64_t lost)
{
	static const char *const hdr[] = {
		">TIME", "DEVICE", ">DEV", "ACCESS", "IOVA", "REASON",
	};
	struct table t;
	int r;

	if (lost)
		printf("%llu fault records lost: the queue was full\n",
		       (unsigned long long)lost);
	if (!l->nr) {
		printf("no faults queued\n");
		return 0;
	}
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (size_t i = 0; i < l->nr; i++) {
		const struct ioasid_fault *f = &l->v[i];

		char when[64];

		if (monotonic)
			snprintf(when, sizeof(when), "%llu.%06llu",
				 (unsigned long long)(f->timestamp_ns /
						      1000000000ULL),
				 (unsigned long long)(f->timestamp_ns %
						      1000000000ULL / 1000));
		else
			mono_iso_time(f->timestamp_ns, when, sizeof(when));
		table_cell(&t, "%s", when);
		table_cell(&t, "%s", dev_name(d, nd, f->dev_id));
		table_cell(&t, "%u", f->dev_id);
		table_cell(&t, "%s", access_str(f));
		table_cell(&t, "%s", hex_str(f->iova, true).s);
		if (stage_of(f))
			table_cell(&t, "%s (nested %u, stage %u at %s)",
				   fault_reason_name(f->reason), f->nested_id,
				   stage_of(f), hex_str(f->stage_addr, true).s);
		else
			table_cell(&t, "%s", fault_reason_name(f->reason));
	}
	r = table_print(&t, stdout, "");
	table_free(&t);
	return r;
}

static void print_json(const struct fault_list *l,
		       const struct ioasid_device_info *d, uint32_t nd,
		       uint64_t lost)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "records_lost", lost);
	json_arr_begin(&j, "faults");
	for (size_t i = 0; i < l->nr; i++) {
		const struct ioasid_fault *f = &l->v[i];
		char when[64];

		mono_iso_time(f->timestamp_ns, when, sizeof(when));
		json_obj_begin(&j, NULL);
		json_str(&j, "time", when);
		json_u64(&j, "timestamp_ns", f->timestamp_ns);
		json_str(&j, "device", dev_name(d, nd, f->dev_id));
		json_u64(&j, "dev_id", f->dev_id);
		json_str(&j, "access", access_str(f));
		json_u64(&j, "iova", f->iova);
		json_str(&j, "reason", fault_reason_name(f->reason));
		/* nested tables: which one, the stage, what it refused */
		json_id(&j, "nested", f->nested_id);
		json_u64(&j, "stage", stage_of(f));
		json_u64(&j, "stage_addr", f->stage_addr);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

int cmd_faults(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_TIME = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "time", required_argument, NULL, OPT_TIME },
		{ 0 },
	};
	struct fault_list l = { 0 };
	struct ioasid_device_info *d = NULL;
	struct ioasid_status st = { 0 };
	uint32_t nd = 0;
	int c, r;

	monotonic = false;
	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c != OPT_TIME)
			return ctl_opt_status(c);
		if (!strcmp(optarg, "monotonic"))
			monotonic = true;
		else if (strcmp(optarg, "iso"))
			return ctl_usage(ctl, "--time '%s' is not iso or "
					 "monotonic", optarg);
	}
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = read_all(ctl, &l);
	if (r == 0)
		r = ctl_list_devices(ctl, &d, &nd);
	/* records the queue had no room for (a daemon before it: 0) */
	if (r == 0)
		r = ioasid_get_status(ctl->ctx, &st);
	if (r < 0) {
		r = ctl_fail(ctl, r, "cannot read faults");
	} else if (ctl->json) {
		print_json(&l, d, nd, st.faults_lost);
	} else if (print_table(&l, d, nd, st.faults_lost) < 0) {
		r = ctl_syserr(ctl, ENOMEM, "faults");
	}
	free(l.v);
	free(d);
	return r;
}
