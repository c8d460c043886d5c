/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the benchmark programs share: a clock, medians, the options every
 * program knows (--quick, --full, --reps N) and what the machine says
 * about its caches.  Header-only: each program is one file plus this.
 *
 * Sizes: --quick runs 65,536 mappings only, the default 65,536 and
 * 1,048,576, --full adds 16,777,216 where a program has sizes at all.
 */
#ifndef IOASID_BENCH_H
#define IOASID_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v; the median of its k values. */
static inline double bench_median(double *v, int k)
{
	qsort(v, (size_t)k, sizeof(*v), bench_cmp_double);
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

enum { BENCH_QUICK = 1, BENCH_DEFAULT = 2, BENCH_FULL = 3 };

struct bench_opts {
	int sizes;	/* how many of 65536, 1048576, 16777216 */
	int reps;	/* 0: the program's own default */
};

static const uint64_t bench_sizes[] = { 65536, 1048576, 16777216 };

/*
 * --quick, --full, --reps N (1-16).  Returns the index of the first
 * argument it does not know (argc if none), so a program with more
 * options parses the rest.
 */
static inline int bench_parse(int argc, char **argv, struct bench_opts *o)
{
	int i;

	o->sizes = BENCH_DEFAULT;
	o->reps = 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			o->sizes = BENCH_QUICK;
		} else if (!strcmp(argv[i], "--full")) {
			o->sizes = BENCH_FULL;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			o->reps = atoi(argv[++i]);
			if (o->reps < 1 || o->reps > 16) {
				fprintf(stderr, "%s: --reps takes 1-16\n",
					argv[0]);
				exit(2);
			}
		} else {
			break;
		}
	}
	return i;
}

/*
 * Bytes of the largest cache level of cpu0 times the number of such
 * caches (sysfs), or 0 when sysfs does not say.
 */
static inline uint64_t bench_llc_bytes(void)
{
	uint64_t best = 0;
	int level_best = 0, sharing = 1;
	char path[128], buf[256];
	FILE *f;

	for (int idx = 0; idx < 16; idx++) {
		unsigned long long size;
		int level = 0, n = 0;
		char unit = 0;

		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu0/cache/index%d/level", idx);
		f = fopen(path, "r");
		if (!f)
			break;
		if (fscanf(f, "%d", &level) != 1)
			level = 0;
		fclose(f);
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fscanf(f, "%llu%c", &size, &unit);
		fclose(f);
		if (n < 1)
			continue;
		size *= unit == 'K' ? 1024ULL : unit == 'M' ? 1ULL << 20 : 1;
		if (level < level_best)
			continue;
		level_best = level;
		best = size;
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu0/cache/index%d/"
			 "shared_cpu_list", idx);
		f = fopen(path, "r");
		sharing = 1;
		if (f && fgets(buf, sizeof(buf), f)) {
			/* "0-3" or "0,2" or "0": count the CPUs */
			char *p = buf;

			sharing = 0;
			while (*p && *p != '\n') {
				long a = strtol(p, &p, 10), b = a;

				if (*p == '-')
					b = strtol(p + 1, &p, 10);
				sharing += (int)(b - a + 1);
				if (*p == ',')
					p++;
			}
			if (sharing < 1)
				sharing = 1;
		}
		if (f)
			fclose(f);
	}
	if (best) {
		long cpus = sysconf(_SC_NPROCESSORS_CONF);

		if (cpus > sharing)
			best *= (uint64_t)((cpus + sharing - 1) / sharing);
	}
	return best;
}

/* Pin the calling thread (or process, before threads) to one CPU. */
static inline int bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

#endif /* IOASID_BENCH_H */
