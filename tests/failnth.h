/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Allocation failure injection by wrapped allocators (see failnth.c). */
#ifndef IOASID_TESTS_FAILNTH_H
#define IOASID_TESTS_FAILNTH_H

#include <stdbool.h>
#include <stdint.h>

/* The counters; in a shared file when two processes take part. */
struct failnth_ctl {
	uint64_t armed;
	uint64_t fail_at;	/* the allocation (1-based) that fails */
	uint64_t count;		/* allocations since arming */
	uint64_t hit;		/* the fail_at-th allocation came (and failed) */
};

/* Fail the n-th allocation from now (once). */
void failnth_arm(uint64_t n);
/* Stop counting; true when the n-th allocation came and was failed. */
bool failnth_disarm(void);
/* Allocations seen since failnth_arm(). */
uint64_t failnth_count(void);
/* Keep the counters in the file @path (created), shared with others. */
int failnth_attach(const char *path);
/*
 * The counters in the file @path (created) without using them for this
 * process: to arm another process's allocations (a daemon built with
 * these wrappers that attached to @path).  NULL on failure (errno).
 */
struct failnth_ctl *failnth_map(const char *path);
void failnth_ctl_arm(struct failnth_ctl *c, uint64_t n);
bool failnth_ctl_disarm(struct failnth_ctl *c);

#endif
