/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The differential suite: one list of scenarios (scenarios.c) run through
 * the public API on two backends with identical inputs -
 *
 *   host   backend "sim" with a topology of one VT-d-like unit and one
 *          edu-like device (diff_sim.c, part of make check);
 *   guest  backend "iommufd" on the tests/vm guest's real VT-d and edu
 *          (diff_guest.c, part of make check-vm);
 *
 * and a second, short list (the "mock_" scenarios: dirty tracking,
 * nested tables and vIOMMUs, which neither QEMU's VT-d nor the edu
 * topology has) on
 * "iommufd:mock"'s mock0 in the guest and on a sim unit that tracks and
 * nests (mock.topology);
 *
 * - each printing "DIFF <scenario>.<key> <value>" lines: return codes as
 * errno names, mapping lists, ranges, device and domain state, and data
 * checks of device DMA ("hit": the device's write landed / its read saw
 * memory; "miss": memory untouched / not seen).  compare.sh matches the
 * two; a difference is a failure unless deliberate.list names it (and
 * docs/kernel-backends.md explains it).
 *
 * How the device moves data is the only backend-specific part
 * (struct diff_dma).  The edu device can only copy between memory and its
 * own buffer, so every DMA goes through a staging page the harness maps at
 * DIFF_STAGE_IOVA for the duration of one probe, on both backends alike so
 * that what the scenarios see (file ids, allocations) stays identical.
 */
#ifndef IOASID_TESTS_DIFF_H
#define IOASID_TESTS_DIFF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libioasid.h>

#define DIFF_STAGE_IOVA	0x0ff00000ull	/* scenarios keep out of 0x0ffxxxxx */
#define DIFF_PROBE_LEN	256u

struct diff_env;

struct diff_dma {
	/* The device writes @len bytes of @data at @iova. */
	void (*write)(struct diff_env *e, uint64_t iova, const uint8_t *data,
		      uint32_t len);
	/* The device reads @len bytes at @iova into @out. */
	void (*read)(struct diff_env *e, uint64_t iova, uint8_t *out,
		     uint32_t len);
	/* The device dirties the page at @iova (mock scenarios). */
	void (*dirty)(struct diff_env *e, uint64_t iova);
};

struct diff_env {
	struct ioasid_ctx *ctx;
	const char *backend;		/* "sim" or "iommufd" */
	char dev_name[IOASID_NAME_MAX];
	uint32_t dev;			/* bound for the whole run */
	const struct diff_dma *dma;
	void *dma_priv;
	int stage_fd;			/* one page */
	FILE *out;			/* results */
	const char *prefix;		/* before "DIFF" on each line */
	/* the scenario running, and what it made (torn down after it) */
	const char *scenario;
	const char *skip;		/* set: the scenario could not run */
	uint32_t ioas[8];
	unsigned int nr_ioas;
	int fds[16];
	unsigned int nr_fds;
	uint32_t vm;
	int vm_fds[2];
	uint8_t seed;
	/* mock scenarios: the nested table format of this side */
	uint32_t nested_type;
	const void *nested_data;
	uint32_t nested_len;
	/* and its vIOMMU type (the sim's, the mock's selftest one) */
	uint32_t viommu_type;
};

/* Run every scenario; returns how many could not run (skips). */
int diff_run_all(struct diff_env *e, void (*ran)(struct diff_env *e,
						 const char *name,
						 const char *skip));
/* How many scenarios there are. */
unsigned int diff_nr_scenarios(void);
/*
 * The scenarios of a unit that tracks dirty pages and nests (iommufd:mock
 * against the sim's mock.topology), their keys prefixed "mock_".
 */
int diff_run_mock(struct diff_env *e, void (*ran)(struct diff_env *e,
						  const char *name,
						  const char *skip));
unsigned int diff_nr_mock_scenarios(void);
/* Find the edu(-like) device, 1234:11e8: 0 or -ENOENT. */
int diff_find_device(struct ioasid_ctx *ctx, char *name, size_t len);

#endif
