/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl faults: take the queued DMA fault records and print them;
 * fault queues of recoverable faults (page requests) and their answers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl faults read [--time iso|monotonic] [--json]\n"
	"       ioasidctl faults [--time iso|monotonic] [--json]\n"
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
		table_cell(&t, "%s",
			   ctl_name_of_device(d, nd, f->dev_id, "?"));
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
		json_str(&j, "device",
			 ctl_name_of_device(d, nd, f->dev_id, "?"));
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

static int faults_read(struct ctl *ctl, int argc, char **argv)
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

/* ---- fault queues: page requests and their answers ---------------------- */

static const char queue_usage[] =
	"Usage: ioasidctl faults queue IOAS|NESTED [--depth N] [--timeout-ms N]\n"
	"                              [--json]\n"
	"\n"
	"Give the IOAS or nested table a fault queue: a DMA of its devices to\n"
	"a page that is not mapped then becomes a page request, which waits\n"
	"for an answer ('faults respond') instead of failing.  Prints the\n"
	"queue's id.  It keeps going after this command only in ioasidd (use\n"
	"--session or a batch).\n"
	"\n"
	"  --depth N        records and outstanding requests at most (default\n"
	"                   256, at most 4096)\n"
	"  --timeout-ms N   an unanswered request fails after N ms (default\n"
	"                   10000, at most 60000)\n";

static const char queues_usage[] =
	"Usage: ioasidctl faults queues [--json]\n"
	"\n"
	"List this session's fault queues (an observer's: everyone's) with\n"
	"their target, depth, timeout, waiting records, outstanding requests\n"
	"and counters (requests, responses, lost, timeouts).\n";

static const char requests_usage[] =
	"Usage: ioasidctl faults requests FAULT_QUEUE [--json]\n"
	"\n"
	"Take the waiting page request records of the fault queue and print\n"
	"them: cookie, device, PASID, access and page.  A first line says how\n"
	"many requests were lost because the queue was full.  In a batch,\n"
	"NAME=faults requests stores the last cookie.\n";

static const char respond_usage[] =
	"Usage: ioasidctl faults respond FAULT_QUEUE COOKIE success|invalid\n"
	"                                [--json]\n"
	"\n"
	"Answer the page request COOKIE: success (the page is there: the\n"
	"device retries) or invalid (the device's request fails).\n";

static const char free_usage[] =
	"Usage: ioasidctl faults free FAULT_QUEUE [--json]\n"
	"\n"
	"Free the fault queue (no device may be attached to its target).\n";

enum { OPT_DEPTH = 0x310, OPT_TIMEOUT };

static int parse_u32_max(struct ctl *ctl, const char *what, const char *arg,
			 uint32_t max, uint32_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || n > max)
		return ctl_usage(ctl, "%s '%s' is not a number from 0 to %u",
				 what, arg, max);
	*v = (uint32_t)n;
	return EXIT_OK;
}

static int faults_queue(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "depth", required_argument, NULL, OPT_DEPTH },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ 0 },
	};
	uint32_t target, depth = 0, timeout = 0, id;
	struct json j;
	int c, r, fd;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, queue_usage)) != -1) {
		if (c == OPT_DEPTH)
			r = parse_u32_max(ctl, "--depth", optarg,
					  IOASID_FAULT_QUEUE_DEPTH_MAX, &depth);
		else if (c == OPT_TIMEOUT)
			r = parse_u32_max(ctl, "--timeout-ms", optarg,
					  IOASID_FAULT_TIMEOUT_MS_MAX,
					  &timeout);
		else
			return ctl_opt_status(c);
		if (r)
			return r;
	}
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "IOAS or nested table id", argv[optind],
			 &target) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_fault_queue_alloc(ctl->ctx, target, depth, timeout, 0, &id,
				     &fd);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot give %u a fault queue", target);
	close(fd);	/* the session keeps the queue; we do not poll */
	ctl_set_result(ctl, id);
	if (!ctl->json) {
		printf("fault queue %u on %u\n", id, target);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "fault_queue", id);
	json_u64(&j, "target", target);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

static int faults_queues(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	static const char *const hdr[] = {
		">QUEUE", ">TARGET", ">DEPTH", ">TIMEOUT_MS", ">QUEUED",
		">OUTSTANDING", ">REQUESTS", ">RESPONSES", ">LOST",
		">TIMEOUTS",
	};
	struct ioasid_fault_queue_info *v = NULL;
	uint32_t nr = 0;
	struct table t;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, queues_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	for (;;) {
		r = ioasid_fault_queue_list(ctl->ctx, v, &nr);
		if (r != -EMSGSIZE)
			break;
		free(v);
		v = calloc(nr + 1, sizeof(*v));
		if (!v)
			return ctl_syserr(ctl, ENOMEM, "fault queues");
		nr++;
	}
	if (r < 0) {
		free(v);
		return ctl_fail(ctl, r, "cannot list the fault queues");
	}
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_arr_begin(&j, "fault_queues");
		for (uint32_t i = 0; i < nr; i++) {
			json_obj_begin(&j, NULL);
			json_u64(&j, "fault_queue", v[i].fault_id);
			json_u64(&j, "target", v[i].target_id);
			json_u64(&j, "depth", v[i].depth);
			json_u64(&j, "timeout_ms", v[i].timeout_ms);
			json_u64(&j, "queued", v[i].queued);
			json_u64(&j, "outstanding", v[i].outstanding);
			json_u64(&j, "requests", v[i].requests);
			json_u64(&j, "responses", v[i].responses);
			json_u64(&j, "lost", v[i].lost);
			json_u64(&j, "timeouts", v[i].timeouts);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
		free(v);
		return EXIT_OK;
	}
	if (!nr) {
		printf("no fault queues\n");
		free(v);
		return EXIT_OK;
	}
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < nr; i++) {
		table_cell(&t, "%u", v[i].fault_id);
		table_cell(&t, "%u", v[i].target_id);
		table_cell(&t, "%u", v[i].depth);
		table_cell(&t, "%u", v[i].timeout_ms);
		table_cell(&t, "%u", v[i].queued);
		table_cell(&t, "%u", v[i].outstanding);
		table_cell(&t, "%llu", (unsigned long long)v[i].requests);
		table_cell(&t, "%llu", (unsigned long long)v[i].responses);
		table_cell(&t, "%llu", (unsigned long long)v[i].lost);
		table_cell(&t, "%llu", (unsigned long long)v[i].timeouts);
	}
	r = table_print(&t, stdout, "") < 0 ?
	    ctl_syserr(ctl, ENOMEM, "fault queues") : EXIT_OK;
	table_free(&t);
	free(v);
	return r;
}

static int faults_requests(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	static const char *const hdr[] = {
		">COOKIE", ">DEV", "PASID", "ACCESS", "PAGE",
	};
	struct ioasid_page_request *v = NULL, *nv;
	uint32_t id, nr, n = 0, cap = 0;
	uint64_t lost = 0;
	struct table t;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, requests_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "fault queue id", argv[optind], &id) ?:
	    ctl_open(ctl);
	if (r)
		return r;
	do {
		if (cap - n < BATCH) {
			nv = realloc(v, (cap + 4 * BATCH) * sizeof(*v));
			if (!nv) {
				free(v);
				return ctl_syserr(ctl, ENOMEM, "page requests");
			}
			v = nv;
			cap += 4 * BATCH;
		}
		nr = BATCH;
		r = ioasid_fault_queue_read(ctl->ctx, id, v + n, &nr);
		n += r < 0 ? 0 : nr;
	} while (r == 0 && nr == BATCH);
	if (r < 0) {
		free(v);
		return ctl_fail(ctl, r, "cannot read fault queue %u", id);
	}
	for (uint32_t i = 0; i < n; i++)
		if (v[i].flags & IOASID_PAGE_REQUEST_OVERFLOW)
			lost += v[i].lost;
		else
			ctl_set_result(ctl, v[i].cookie);
	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_u64(&j, "fault_queue", id);
		json_u64(&j, "lost", lost);
		json_arr_begin(&j, "requests");
		for (uint32_t i = 0; i < n; i++) {
			if (v[i].flags & IOASID_PAGE_REQUEST_OVERFLOW)
				continue;
			json_obj_begin(&j, NULL);
			json_u64(&j, "cookie", v[i].cookie);
			json_u64(&j, "dev_id", v[i].dev_id);
			if (v[i].flags & IOASID_PAGE_REQUEST_PASID)
				json_u64(&j, "pasid", v[i].pasid);
			json_str(&j, "access", v[i].perm & IOASID_MAP_WRITE ?
				 "write" : "read");
			json_u64(&j, "addr", v[i].addr);
			json_u64(&j, "timestamp_ns", v[i].timestamp_ns);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
		free(v);
		return EXIT_OK;
	}
	if (lost)
		printf("%llu page requests lost: the queue was full\n",
		       (unsigned long long)lost);
	if (n == (lost ? 1u : 0u)) {
		printf("no page requests waiting\n");
		free(v);
		return EXIT_OK;
	}
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < n; i++) {
		if (v[i].flags & IOASID_PAGE_REQUEST_OVERFLOW)
			continue;
		table_cell(&t, "%u", v[i].cookie);
		table_cell(&t, "%u", v[i].dev_id);
		if (v[i].flags & IOASID_PAGE_REQUEST_PASID)
			table_cell(&t, "%u", v[i].pasid);
		else
			table_cell(&t, "-");
		table_cell(&t, "%s", v[i].perm & IOASID_MAP_WRITE ? "write" :
								    "read");
		table_cell(&t, "%s", hex_str(v[i].addr, true).s);
	}
	r = table_print(&t, stdout, "") < 0 ?
	    ctl_syserr(ctl, ENOMEM, "page requests") : EXIT_OK;
	table_free(&t);
	free(v);
	return r;
}

static int faults_respond(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t id, cookie, code;
	struct json j;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, respond_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 3, 3) ?:
	    ctl_parse_id(ctl, "fault queue id", argv[optind], &id) ?:
	    ctl_parse_id(ctl, "cookie", argv[optind + 1], &cookie);
	if (r)
		return r;
	if (!strcmp(argv[optind + 2], "success"))
		code = IOASID_PAGE_RESPONSE_SUCCESS;
	else if (!strcmp(argv[optind + 2], "invalid"))
		code = IOASID_PAGE_RESPONSE_INVALID;
	else
		return ctl_usage(ctl, "'%s' is not success or invalid",
				 argv[optind + 2]);
	r = ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_fault_respond(ctl->ctx, id, cookie, code);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot answer page request %u", cookie);
	if (!ctl->json) {
		printf("page request %u answered %s\n", cookie,
		       argv[optind + 2]);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "fault_queue", id);
	json_u64(&j, "cookie", cookie);
	json_str(&j, "response", argv[optind + 2]);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

static int faults_free(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, free_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?:
	    ctl_parse_id(ctl, "fault queue id", argv[optind], &id) ?:
	    ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_fault_queue_destroy(ctl->ctx, id);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot free fault queue %u", id);
	if (ctl->json)
		printf("{\"fault_queue\":%u,\"freed\":true}\n", id);
	else
		printf("fault queue %u freed\n", id);
	return EXIT_OK;
}

static const struct cmd faults_cmds[] = {
	{ "read", faults_read, "take and print DMA fault records (default)" },
	{ "queue", faults_queue, "give an IOAS or nested table a fault queue" },
	{ "queues", faults_queues, "list fault queues and their counters" },
	{ "requests", faults_requests, "take a fault queue's page requests" },
	{ "respond", faults_respond, "answer a page request" },
	{ "free", faults_free, "free a fault queue" },
};

static const char group_usage[] =
	"Usage: ioasidctl faults [read|queue|queues|requests|respond|free] ...\n"
	"                        [--json]\n"
	"\n"
	"DMA fault records, and fault queues of recoverable faults: page\n"
	"requests and their answers (ioasid_fault_queue_alloc(3)).\n"
	"\n"
	"Subcommands:\n";

int cmd_faults(struct ctl *ctl, int argc, char **argv)
{
	/* "faults --json SUB ..." */
	if (argc > 2 && !strcmp(argv[1], "--json") && argv[2][0] != '-') {
		ctl->json = true;
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	/* "faults" and "faults --time ...": read, as before the group */
	if (argc == 1 || (argv[1][0] == '-' && strcmp(argv[1], "-h") &&
			  strcmp(argv[1], "--help"))) {
		snprintf(ctl->cmd, sizeof(ctl->cmd), "faults");
		optind = 0;
		return faults_read(ctl, argc, argv);
	}
	return ctl_dispatch(ctl, faults_cmds, ARRAY_SIZE(faults_cmds),
			    "ioasidctl faults", group_usage, argc - 1,
			    argv + 1);
}
