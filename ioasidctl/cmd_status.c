/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl status: backend, topology, who holds the state, counts. */
#include <stdio.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl status [--json]\n"
	"\n"
	"Print the backend, its topology, the process that holds the IOMMU\n"
	"state (ioasidd, or ioasidctl itself for an embedded URI), the\n"
	"number of objects it holds for all its clients, and whether this\n"
	"ioasidctl sees every client's objects (observer) or its own only,\n"
	"and how many of this session's fault records and events were lost\n"
	"because its queues were full.\n";

static void print_human(const struct ctl *ctl, const struct ioasid_status *st)
{
	bool daemon = st->flags & 1;

	printf("uri:        %s\n", ctl->uri);
	printf("backend:    %s\n", st->backend);
	printf("topology:   %s\n", st->topology[0] ? st->topology : "-");
	printf("served by:  %s (pid %u)\n", daemon ? "ioasidd" :
	       "this ioasidctl, embedded", st->pid);
	printf("sessions:   %u\n", st->nr_sessions);
	if (daemon)
		printf("view:       %s\n", ctl->observer ? "every session "
		       "(observer)" : "this session only");
	printf("iommus:     %u\n", st->nr_iommus);
	printf("devices:    %u\n", st->nr_devices);
	printf("ioas:       %u\n", st->nr_ioas);
	printf("domains:    %u\n", st->nr_domains);
	printf("vms:        %u\n", st->nr_vms);
	printf("mappings:   %llu (%s)\n", (unsigned long long)st->nr_mappings,
	       size_str(st->bytes_mapped).s);
	printf("lost:       %llu fault records, %llu events (this session's "
	       "queues were full)\n", (unsigned long long)st->faults_lost,
	       (unsigned long long)st->events_lost);
}

static void print_json(const struct ctl *ctl, const struct ioasid_status *st)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "uri", ctl->uri);
	json_str(&j, "backend", st->backend);
	json_str(&j, "topology", st->topology);
	json_bool(&j, "daemon", st->flags & 1);
	json_bool(&j, "observer", ctl->observer);
	json_u64(&j, "pid", st->pid);
	json_u64(&j, "nr_sessions", st->nr_sessions);
	json_u64(&j, "nr_iommus", st->nr_iommus);
	json_u64(&j, "nr_devices", st->nr_devices);
	json_u64(&j, "nr_ioas", st->nr_ioas);
	json_u64(&j, "nr_domains", st->nr_domains);
	json_u64(&j, "nr_vms", st->nr_vms);
	json_u64(&j, "nr_mappings", st->nr_mappings);
	json_u64(&j, "bytes_mapped", st->bytes_mapped);
	json_u64(&j, "faults_lost", st->faults_lost);
	json_u64(&j, "events_lost", st->events_lost);
	json_obj_end(&j);
	json_finish(&j);
}

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct ioasid_status st;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_get_status(ctl->ctx, &st);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot read the status");
	if (ctl->json)
		print_json(ctl, &st);
	else
		print_human(ctl, &st);
	return EXIT_OK;
}
