/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl status: backend, topology, who holds the state, counts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl status [--json] [--format text|json|prometheus]\n"
	"\n"
	"Print the backend, its topology, the process that holds the IOMMU\n"
	"state (ioasidd, or ioasidctl itself for an embedded URI), the\n"
	"number of objects it holds for all its clients, and whether this\n"
	"ioasidctl sees every client's objects (observer) or its own only,\n"
	"and how many of this session's fault records and events were lost\n"
	"because its queues were full.\n"
	"\n"
	"  --format prometheus   the same counts, and per address space and\n"
	"                        per session, in the Prometheus text format\n"
	"                        (for node_exporter's textfile collector)\n";

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
	printf("lost:       %llu fault records, %llu events (of this session, "
	       "dropped when its queues were full)\n", (unsigned long long)st->faults_lost,
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

/* ---- Prometheus text format ---------------------------------------------- */

/* A label value with \\, \" and \n escaped, as the format asks. */
static void prom_label(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
}

static void prom_family(const char *name, const char *type,
			const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_one(const char *name, const char *type, const char *help,
		     uint64_t v)
{
	prom_family(name, type, help);
	printf("%s %llu\n", name, (unsigned long long)v);
}

/* One session's totals over its address spaces. */
struct prom_session {
	uint32_t id, pid, uid;
	uint64_t nr_ioas, nr_mappings, bytes_mapped, bytes_pinned;
};

enum ioas_metric {
	M_MAPPINGS, M_MAPPED, M_PINNED, M_PRIVATE, M_SHARED, M_STATE,
	M_DEVICES, M_DOMAINS, M_CONVERSIONS, M_FAULTS, NR_IOAS_METRICS
};

static const struct {
	const char *name, *type, *help;
} ioas_metrics[NR_IOAS_METRICS] = {
	[M_MAPPINGS] = { "ioasid_ioas_mappings", "gauge",
			 "Mappings in the address space." },
	[M_MAPPED] = { "ioasid_ioas_mapped_bytes", "gauge",
		       "Bytes mapped in the address space." },
	[M_PINNED] = { "ioasid_ioas_pinned_bytes", "gauge",
		       "Bytes the kernel keeps pinned for it: mapped into its "
		       "domains (iommufd, vfio-type1; 0 on the simulator)." },
	[M_PRIVATE] = { "ioasid_ioas_private_bytes", "gauge",
			"Mapped bytes that are private (restricted IOAS)." },
	[M_SHARED] = { "ioasid_ioas_shared_bytes", "gauge",
		       "Bytes marked shared (restricted IOAS)." },
	[M_STATE] = { "ioasid_ioas_state_bytes", "gauge",
		      "Memory its shared/private page state uses." },
	[M_DEVICES] = { "ioasid_ioas_devices", "gauge",
			"Devices attached to the address space." },
	[M_DOMAINS] = { "ioasid_ioas_domains", "gauge",
			"IOMMU domains the address space is mirrored into." },
	[M_CONVERSIONS] = { "ioasid_ioas_conversions_total", "counter",
			    "Shared/private conversions that changed it." },
	[M_FAULTS] = { "ioasid_ioas_faults_total", "counter",
		       "DMA faults of its devices (simulated devices)." },
};

static uint64_t ioas_value(const struct ioasid_ioas_info *v,
			   enum ioas_metric m)
{
	switch (m) {
	case M_MAPPINGS: return v->nr_mappings;
	case M_MAPPED: return v->bytes_mapped;
	case M_PINNED: return v->bytes_pinned;
	case M_PRIVATE: return v->bytes_private;
	case M_SHARED: return v->bytes_shared;
	case M_STATE: return v->state_bytes;
	case M_DEVICES: return v->nr_devices;
	case M_DOMAINS: return v->nr_domains;
	case M_CONVERSIONS: return v->nr_conversions;
	case M_FAULTS: return v->nr_faults;
	default: return 0;
	}
}

static void prom_owner_labels(uint32_t session, uint32_t pid, uint32_t uid)
{
	printf("session=\"%u\",pid=\"%u\",uid=\"%u\"", session, pid, uid);
}

static struct prom_session *session_of(struct prom_session *v, size_t *nr,
				       const struct ioasid_ioas_info *io)
{
	for (size_t i = 0; i < *nr; i++)
		if (v[i].id == io->owner_session)
			return &v[i];
	v[*nr] = (struct prom_session){ .id = io->owner_session,
					.pid = io->owner_pid,
					.uid = io->owner_uid };
	return &v[(*nr)++];
}

static void prom_sessions(const struct prom_session *v, size_t nr)
{
	static const char *const names[] = {
		"ioasid_session_ioas", "ioasid_session_mappings",
		"ioasid_session_mapped_bytes", "ioasid_session_pinned_bytes",
	};
	static const char *const helps[] = {
		"Address spaces the session holds.",
		"Mappings over the session's address spaces.",
		"Bytes mapped over the session's address spaces.",
		"Bytes pinned for the session's address spaces.",
	};

	for (size_t m = 0; m < ARRAY_SIZE(names); m++) {
		prom_family(names[m], "gauge", helps[m]);
		for (size_t i = 0; i < nr; i++) {
			const uint64_t val[] = {
				v[i].nr_ioas, v[i].nr_mappings,
				v[i].bytes_mapped, v[i].bytes_pinned,
			};

			printf("%s{", names[m]);
			prom_owner_labels(v[i].id, v[i].pid, v[i].uid);
			printf("} %llu\n", (unsigned long long)val[m]);
		}
	}
}

/* A limit as a sample value: all ones is no limit, +Inf. */
static void prom_limit_value(uint64_t v, uint64_t none)
{
	if (v == none)
		printf(" +Inf\n");
	else
		printf(" %llu\n", (unsigned long long)v);
}

/*
 * What the daemon knows of each session the caller may see (its uid's;
 * an observer's policy: every uid's), named or not: lost records and
 * events, and each limit of ioasidd.conf(5) next to its use.
 */
static void prom_daemon_sessions(const struct ioasid_session_info *v,
				 uint32_t nr)
{
	enum { L_IOAS, L_MAPPINGS, L_BYTES, L_VMS, L_STATE, NR_LIMITS };
	static const char *const limit_names[NR_LIMITS] = {
		[L_IOAS] = "max-ioas", [L_MAPPINGS] = "max-mappings",
		[L_BYTES] = "max-bytes-mapped", [L_VMS] = "max-vms",
		[L_STATE] = "max-conversion-state",
	};

	prom_family("ioasid_session_info", "gauge", "A session ioasidd "
		    "keeps: a connection's, or a named one lingering "
		    "(always 1).");
	for (uint32_t i = 0; i < nr; i++) {
		printf("ioasid_session_info{");
		prom_owner_labels(v[i].id, v[i].pid, v[i].uid);
		printf(",name=\"");
		prom_label(v[i].name);
		printf("\",named=\"%s\",client=\"",
		       v[i].flags & IOASID_SESSION_NAMED ? "yes" : "no");
		prom_label(v[i].client);
		printf("\",state=\"%s\"} 1\n",
		       v[i].state == IOASID_SESSION_LINGERING ? "lingering" :
								"connected");
	}
	for (int m = 0; m < 2; m++) {
		static const char *const names[] = {
			"ioasid_session_fault_records_lost_total",
			"ioasid_session_events_lost_total",
		};
		static const char *const helps[] = {
			"Fault records of the session dropped because its "
			"queue was full.",
			"Events of the session dropped because a queue was "
			"full: ioasidd's, or its client's (reported at the "
			"client's next request).",
		};

		prom_family(names[m], "counter", helps[m]);
		for (uint32_t i = 0; i < nr; i++) {
			printf("%s{", names[m]);
			prom_owner_labels(v[i].id, v[i].pid, v[i].uid);
			printf("} %llu\n", (unsigned long long)
			       (m ? v[i].events_lost : v[i].faults_lost));
		}
	}
	prom_family("ioasid_session_limit", "gauge", "A limit of the "
		    "session's ioasidd.conf section (+Inf: none).");
	for (uint32_t i = 0; i < nr; i++) {
		const uint64_t lim[NR_LIMITS] = {
			v[i].max_ioas, v[i].max_mappings,
			v[i].max_bytes_mapped, v[i].max_vms,
			v[i].max_conversion_state,
		};

		for (int l = 0; l < NR_LIMITS; l++) {
			printf("ioasid_session_limit{");
			prom_owner_labels(v[i].id, v[i].pid, v[i].uid);
			printf(",limit=\"%s\"}", limit_names[l]);
			prom_limit_value(lim[l], l == L_IOAS || l == L_VMS ?
					 UINT32_MAX : UINT64_MAX);
		}
	}
	prom_family("ioasid_session_usage", "gauge", "What the session uses "
		    "of the limit of the same name.");
	for (uint32_t i = 0; i < nr; i++) {
		const uint64_t use[NR_LIMITS] = {
			v[i].nr_ioas, v[i].nr_mappings, v[i].bytes_mapped,
			v[i].nr_vms, v[i].state_bytes,
		};

		for (int l = 0; l < NR_LIMITS; l++) {
			printf("ioasid_session_usage{");
			prom_owner_labels(v[i].id, v[i].pid, v[i].uid);
			printf(",limit=\"%s\"} %llu\n", limit_names[l],
			       (unsigned long long)use[l]);
		}
	}
}

static int print_prometheus(struct ctl *ctl, const struct ioasid_status *st)
{
	struct ioasid_session_info *listed = NULL;
	uint32_t nr_listed = 0;
	struct ioasid_ioas_info *v = NULL;
	struct prom_session *sess = NULL;
	uint32_t *ids = NULL, nr = 0, n = 0;
	size_t nr_sess = 0;
	int r;

	r = ctl_list_ioas(ctl, &ids, &nr);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot list the address spaces");
	v = calloc(nr ? nr : 1, sizeof(*v));
	sess = calloc(nr ? nr : 1, sizeof(*sess));
	if (!v || !sess) {
		free(ids), free(v), free(sess);
		return ctl_syserr(ctl, ENOMEM, "status");
	}
	for (uint32_t i = 0; i < nr; i++) {
		r = ioasid_ioas_get_info(ctl->ctx, ids[i], &v[n]);
		if (r == -ENOENT)	/* destroyed meanwhile */
			continue;
		if (r < 0) {
			free(ids), free(v), free(sess);
			return ctl_fail(ctl, r, "IOAS %u", ids[i]);
		}
		n++;
	}
	free(ids);
	ctl_note_session_view(ctl, "address spaces");

	prom_family("ioasid_info", "gauge", "Which backend serves, and who "
		    "holds the IOMMU state (always 1).");
	printf("ioasid_info{backend=\"");
	prom_label(st->backend);
	printf("\",topology=\"");
	prom_label(st->topology);
	printf("\",served_by=\"%s\",pid=\"%u\"} 1\n",
	       st->flags & 1 ? "ioasidd" : "embedded", st->pid);
	prom_one("ioasid_observer", "gauge", "1 when the figures cover every "
		 "session, 0 when only ioasidctl's own.", ctl->observer);
	prom_one("ioasid_sessions", "gauge", "Sessions (clients).",
		 st->nr_sessions);
	prom_one("ioasid_iommus", "gauge", "IOMMU units.", st->nr_iommus);
	prom_one("ioasid_devices", "gauge", "Devices the backend offers.",
		 st->nr_devices);
	prom_one("ioasid_ioas", "gauge", "Address spaces, all sessions.",
		 st->nr_ioas);
	prom_one("ioasid_domains", "gauge", "IOMMU domains, all sessions.",
		 st->nr_domains);
	prom_one("ioasid_vms", "gauge", "KVM VMs bound, all sessions.",
		 st->nr_vms);
	prom_one("ioasid_mappings", "gauge", "Mappings, all sessions.",
		 st->nr_mappings);
	prom_one("ioasid_mapped_bytes", "gauge", "Bytes mapped, all sessions.",
		 st->bytes_mapped);
	prom_one("ioasid_ctl_fault_records_lost_total", "counter",
		 "Fault records of this ioasidctl session dropped because "
		 "its queue was full.", st->faults_lost);
	prom_one("ioasid_ctl_events_lost_total", "counter", "Events of this "
		 "ioasidctl session dropped because its queue was full.",
		 st->events_lost);
	for (int m = 0; m < NR_IOAS_METRICS; m++) {
		prom_family(ioas_metrics[m].name, ioas_metrics[m].type,
			    ioas_metrics[m].help);
		for (uint32_t i = 0; i < n; i++) {
			printf("%s{ioas=\"%u\",", ioas_metrics[m].name,
			       v[i].ioas_id);
			prom_owner_labels(v[i].owner_session, v[i].owner_pid,
					  v[i].owner_uid);
			printf("} %llu\n",
			       (unsigned long long)ioas_value(&v[i], m));
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct prom_session *s = session_of(sess, &nr_sess, &v[i]);

		s->nr_ioas++;
		s->nr_mappings += v[i].nr_mappings;
		s->bytes_mapped += v[i].bytes_mapped;
		s->bytes_pinned += v[i].bytes_pinned;
	}
	prom_sessions(sess, nr_sess);
	free(v);
	free(sess);
	/* embedded: no daemon, no session list */
	r = ioasid_is_remote(ctl->ctx) ?
		ctl_list_sessions(ctl, &listed, &nr_listed) : 0;
	if (r < 0) {
		fflush(stdout);
		return ctl_fail(ctl, r, "cannot list sessions");
	}
	if (nr_listed)
		prom_daemon_sessions(listed, nr_listed);
	free(listed);
	fflush(stdout);
	return EXIT_OK;
}

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_FORMAT = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ 0 },
	};
	struct ioasid_status st;
	bool prometheus = false;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		if (c != OPT_FORMAT)
			return ctl_opt_status(c);
		if (!strcmp(optarg, "prometheus"))
			prometheus = true;
		else if (!strcmp(optarg, "json"))
			ctl->json = true;
		else if (!strcmp(optarg, "text"))
			ctl->json = false;
		else
			return ctl_usage(ctl, "format '%s' is not text, json "
					 "or prometheus", optarg);
	}
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_get_status(ctl->ctx, &st);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot read the status");
	if (prometheus)
		return print_prometheus(ctl, &st);
	if (ctl->json)
		print_json(ctl, &st);
	else
		print_human(ctl, &st);
	return EXIT_OK;
}
