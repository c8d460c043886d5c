/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl monitor: print events as they happen, one per line. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl monitor [--count N] [--timeout SECONDS]\n"
	"                         [-t|--time iso|long|monotonic|none] [--json]\n"
	"\n"
	"Subscribe to every event group (faults, devices, coherency,\n"
	"sessions) and print each event on one line as it happens, until\n"
	"interrupted (SIGINT, SIGTERM), N events were printed, or SECONDS\n"
	"passed without an event.  With --json each line is one JSON object.\n"
	"Events belong to the session: through ioasidd, monitor sees device\n"
	"hotplug, and an observer (an administrator) every session's events\n"
	"and sessions starting and ending; in a batch it sees what the\n"
	"earlier lines caused (there it returns when no event is queued,\n"
	"unless --count or --timeout say otherwise).  Events the session's\n"
	"queue had no room for are reported by a line of their own\n"
	"(\"events-lost\").\n"
	"\n"
	"  --time iso        wall-clock time first, 2026-12-02T10:00:00.123456+01:00\n"
	"                    (the default)\n"
	"  -t, --time long   a \"Timestamp: ...\" line before each event, as ip -t\n"
	"  --time monotonic  seconds of CLOCK_MONOTONIC, as the library stamps them\n"
	"  --time none       no time\n";

enum time_format { TIME_ISO, TIME_LONG, TIME_MONOTONIC, TIME_NONE };
static enum time_format time_format;

static volatile sig_atomic_t stop;
/* the session's lost events an earlier line already told (in a batch) */
static uint64_t lost_reported;

static void on_signal(int sig)
{
	stop = 1;
}

static const char *event_name(uint32_t type)
{
	switch (type) {
	case IOASID_EVENT_FAULT:
		return "fault";
	case IOASID_EVENT_DEVICE_ADDED:
		return "device-added";
	case IOASID_EVENT_DEVICE_REMOVED:
		return "device-removed";
	case IOASID_EVENT_VM_COHERENCY:
		return "vm-coherency";
	case IOASID_EVENT_DEVICE_COHERENCY:
		return "device-coherency";
	case IOASID_EVENT_SESSION_START:
		return "session-start";
	case IOASID_EVENT_SESSION_END:
		return "session-end";
	case IOASID_EVENT_PAGE_RESPONSE:
		return "page-response";
	default:
		return "unknown";
	}
}

static void print_time(const struct ioasid_event *ev)
{
	struct timespec t;
	char buf[64];
	struct tm tm;

	switch (time_format) {
	case TIME_ISO:
		mono_iso_time(ev->timestamp_ns, buf, sizeof(buf));
		printf("%s ", buf);
		break;
	case TIME_LONG:		/* ip -t monitor */
		t = mono_to_wall(ev->timestamp_ns);
		localtime_r(&t.tv_sec, &tm);
		strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
		printf("Timestamp: %s %06ld usec\n", buf, t.tv_nsec / 1000);
		break;
	case TIME_MONOTONIC:
		printf("%llu.%06llu ", (unsigned long long)(ev->timestamp_ns /
							    1000000000ULL),
		       (unsigned long long)(ev->timestamp_ns % 1000000000ULL /
					    1000));
		break;
	case TIME_NONE:
		break;
	}
}

static void print_human(const struct ctl *ctl, const struct ioasid_event *ev)
{
	print_time(ev);
	fputs(event_name(ev->type), stdout);
	switch (ev->type) {
	case IOASID_EVENT_FAULT:
		printf(" device %s (dev %u) at IOVA %s", ev->name, ev->id,
		       hex_str(ev->iova, false).s);
		break;
	case IOASID_EVENT_DEVICE_ADDED:
		printf(" device %s", ev->name);
		break;
	case IOASID_EVENT_DEVICE_REMOVED:
		printf(" device %s", ev->name);
		if (ev->id)
			printf(" (dev %u: detached and unbound)", ev->id);
		break;
	case IOASID_EVENT_VM_COHERENCY:
		/* libioasid's verdict; whether KVM was told: ioasidctl kvm */
		printf(" VM %u: %s", ev->id, ev->arg ?
		       "WBINVD needed (a device's DMA may bypass CPU caches)" :
		       "WBINVD no longer needed");
		break;
	case IOASID_EVENT_DEVICE_COHERENCY:
		printf(" device %s (dev %u): %s", ev->name, ev->id, ev->arg ?
		       "non-coherent" : "coherent");
		break;
	case IOASID_EVENT_SESSION_START:
	case IOASID_EVENT_SESSION_END:
		printf(" session %u: pid %u, uid %u%s%s", ev->id, ev->pid,
		       ev->uid, ev->name[0] ? ", " : "", ev->name);
		break;
	default:
		printf(" id %u arg %u", ev->id, ev->arg);
	}
	/* an observer sees every session's: say whose (not for its own) */
	if (ctl->observer && ev->session_id &&
	    ev->pid != (uint32_t)getpid() &&
	    ev->type != IOASID_EVENT_SESSION_START &&
	    ev->type != IOASID_EVENT_SESSION_END)
		printf(" [session %u, pid %u, uid %u]", ev->session_id,
		       ev->pid, ev->uid);
	putchar('\n');
}

static void print_json(const struct ioasid_event *ev)
{
	struct json j;
	char buf[64];

	mono_iso_time(ev->timestamp_ns, buf, sizeof(buf));
	json_init(&j, stdout, false);
	json_obj_begin(&j, NULL);
	json_str(&j, "time", buf);
	json_u64(&j, "timestamp_ns", ev->timestamp_ns);
	json_str(&j, "type", event_name(ev->type));
	json_u64(&j, "id", ev->id);
	json_u64(&j, "arg", ev->arg);
	json_str(&j, "device", ev->name);
	if (ev->type == IOASID_EVENT_FAULT)
		json_u64(&j, "iova", ev->iova);
	json_id(&j, "session", ev->session_id);
	if (ev->session_id) {
		json_u64(&j, "pid", ev->pid);
		json_u64(&j, "uid", ev->uid);
	}
	json_obj_end(&j);
	json_finish(&j);
}

/* Says how many events were lost since *seen (the queue was full). */
static void report_lost(struct ctl *ctl, uint64_t *seen)
{
	struct ioasid_status st;
	struct json j;

	if (ioasid_get_status(ctl->ctx, &st) < 0 || st.events_lost <= *seen)
		return;
	if (ctl->json) {
		json_init(&j, stdout, false);
		json_obj_begin(&j, NULL);
		json_str(&j, "type", "events-lost");
		json_u64(&j, "count", st.events_lost - *seen);
		json_u64(&j, "total", st.events_lost);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("events-lost %llu (the queue was full; %llu in all)\n",
		       (unsigned long long)(st.events_lost - *seen),
		       (unsigned long long)st.events_lost);
	}
	fflush(stdout);
	*seen = st.events_lost;
}

/* Prints the queued events; stops after *left more (when counting). */
static int drain(struct ctl *ctl, long *left)
{
	struct ioasid_event ev;
	int r;

	while (*left != 0 && (r = ioasid_event_read(ctl->ctx, &ev)) == 0) {
		if (ctl->json)
			print_json(&ev);
		else
			print_human(ctl, &ev);
		fflush(stdout);
		if (*left > 0)
			(*left)--;
	}
	if (*left == 0 || r == -EAGAIN)
		return EXIT_OK;
	return ctl_fail(ctl, r, "cannot read events");
}

/* Waits up to @timeout_ms (-1: for ever) for events. */
static int wait_events(struct ctl *ctl, int fd, int timeout_ms, bool *idle)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	*idle = n == 0;
	if (n < 0 && errno != EINTR)
		return ctl_syserr(ctl, errno, "monitor: poll");
	return EXIT_OK;
}

static int loop(struct ctl *ctl, long count, int timeout_ms)
{
	int fd = ioasid_event_get_fd(ctl->ctx), r;
	bool idle = false;

	if (fd < 0)
		return ctl_fail(ctl, fd, "cannot wait for events");
	for (;;) {
		r = drain(ctl, &count);
		report_lost(ctl, &lost_reported);
		if (r || count == 0 || stop || idle || timeout_ms == 0)
			return r;
		r = wait_events(ctl, fd, timeout_ms, &idle);
		if (r)
			return r;
	}
}

static void catch_signals(struct sigaction *old_int,
			  struct sigaction *old_term)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	stop = 0;
	sigaction(SIGINT, &sa, old_int);
	sigaction(SIGTERM, &sa, old_term);
}

int cmd_monitor(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_COUNT = 0x300, OPT_TIMEOUT, OPT_TIME };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "time", required_argument, NULL, OPT_TIME },
		{ 0 },
	};
	static const char *const formats[] = {
		[TIME_ISO] = "iso", [TIME_LONG] = "long",
		[TIME_MONOTONIC] = "monotonic", [TIME_NONE] = "none",
	};
	struct sigaction old_int, old_term;
	uint32_t count = 0, seconds = 0;
	bool has_count = false, has_timeout = false;
	int c, r;

	time_format = TIME_ISO;
	while ((c = ctl_opt(ctl, argc, argv, "ht", opts, usage)) != -1) {
		size_t f = 0;

		if (c == 't') {
			time_format = TIME_LONG;
			continue;
		}
		if (c == OPT_TIME) {
			while (f < ARRAY_SIZE(formats) &&
			       strcmp(optarg, formats[f]))
				f++;
			if (f == ARRAY_SIZE(formats))
				return ctl_usage(ctl, "--time '%s' is not iso, "
						 "long, monotonic or none",
						 optarg);
			time_format = (enum time_format)f;
			continue;
		}
		if (c == OPT_COUNT && str_to_u32(optarg, &count) == 0 && count)
			has_count = true;
		else if (c == OPT_TIMEOUT && str_to_u32(optarg, &seconds) == 0 &&
			 seconds <= 86400)
			has_timeout = true;
		else if (c == OPT_COUNT || c == OPT_TIMEOUT)
			return ctl_usage(ctl, "'%s' is not a valid %s", optarg,
					 c == OPT_COUNT ? "count" : "timeout");
		else
			return ctl_opt_status(c);
	}
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl) ?:
	    ctl_subscribe_all(ctl);
	if (r)
		return r;
	if (ctl->batch && !has_count && !has_timeout)
		has_timeout = true;	/* seconds = 0: what is queued */
	catch_signals(&old_int, &old_term);
	r = loop(ctl, has_count ? (long)count : -1,
		 has_timeout ? (int)seconds * 1000 : -1);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return r;
}
