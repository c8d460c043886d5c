/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pinning a benchmark and the ioasidd it talks to (sched_setaffinity):
 * where client and daemon sit decides what a call through the daemon
 * costs (a wakeup on another CPU of a virtual machine is tens of µs).
 */
#ifndef IOASID_BENCH_PIN_H
#define IOASID_BENCH_PIN_H

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Pin task tid (0: the caller) to cpu, or to every CPU when cpu < 0. */
static inline int bench_pin_task(pid_t tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	else
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	return sched_setaffinity(tid, sizeof(set), &set);
}

/* Every thread of process pid. */
static inline int bench_pin_process(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return bench_pin_task(pid, cpu);
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.' &&
		    bench_pin_task((pid_t)atoi(d->d_name), cpu) < 0)
			r = -1;
	closedir(dir);
	return r;
}

#endif
