/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diff_sim - the differential scenarios on the simulated IOMMU (host side,
 * make check).  The topology files beside this file describe the QEMU
 * rig's machine: one VT-d-like unit (snoop control on / off) and an
 * edu-like device, so the inputs match the guest's.
 *
 *   diff_sim TOPOLOGY RESULTS     one run
 *   diff_sim                      both edu-sc-on/off topologies, results
 *                                 in tests/differential/sim-sc-{on,off}
 *                                 .results (as make check runs it)
 * Exit status: 0, or 1 if a run could not start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff.h"

static void sim_write(struct diff_env *e, uint64_t iova, const uint8_t *data,
		      uint32_t len)
{
	uint64_t done = 0;

	ioasid_device_dma(e->ctx, e->dev, iova, (void *)data, len,
			  IOASID_DMA_WRITE, &done);
}

static void sim_read(struct diff_env *e, uint64_t iova, uint8_t *out,
		     uint32_t len)
{
	uint64_t done = 0;

	ioasid_device_dma(e->ctx, e->dev, iova, out, len, 0, &done);
}

/* A DMA write of one byte dirties the page (mock scenarios). */
static void sim_dirty(struct diff_env *e, uint64_t iova)
{
	uint8_t b = 0x5a;
	uint64_t done = 0;

	ioasid_device_dma(e->ctx, e->dev, iova, &b, 1, IOASID_DMA_WRITE,
			  &done);
}

static const struct diff_dma sim_dma = {
	.write = sim_write,
	.read = sim_read,
	.dirty = sim_dirty,
};

/* The sim's nested tables are VT-d first-stage ones (mock scenarios). */
static const struct ioasid_nested_vtd_s1 sim_s1 = {
	.pgtbl_addr = 0x1000000, .addr_width = 48,
};

static int stage_memfd(void)
{
	int fd = memfd_create("diff-stage", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd >= 0 && (ftruncate(fd, 4096) ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int run(const char *topology, const char *results, bool mock)
{
	struct diff_env e = { .backend = "sim", .dma = &sim_dma, .prefix = "",
			      .nested_type = IOASID_NESTED_VTD_S1,
			      .nested_data = &sim_s1,
			      .nested_len = sizeof(sim_s1),
			      .viommu_type = IOASID_VIOMMU_SIM };
	struct ioasid_device_info d;
	uint32_t nr = 1;
	char uri[512];
	int r, skips;

	snprintf(uri, sizeof(uri), "sim:%s", topology);
	r = ioasid_new(uri, &e.ctx);
	if (r < 0) {
		fprintf(stderr, "diff_sim: %s: %s\n", uri, strerror(-r));
		return 1;
	}
	e.out = fopen(results, "w");
	e.stage_fd = stage_memfd();
	/* mock: the topology's one device */
	if (mock && ioasid_device_list(e.ctx, &d, &nr) == 0 && nr == 1)
		snprintf(e.dev_name, sizeof(e.dev_name), "%s", d.name);
	if (!e.out || e.stage_fd < 0 ||
	    (!mock && diff_find_device(e.ctx, e.dev_name,
				       sizeof(e.dev_name)) < 0) ||
	    ioasid_device_bind(e.ctx, e.dev_name, -1, &e.dev) < 0) {
		fprintf(stderr, "diff_sim: cannot set up %s -> %s: %s\n",
			topology, results, ioasid_last_error(e.ctx));
		ioasid_unref(e.ctx);
		return 1;
	}
	skips = mock ? diff_run_mock(&e, NULL) : diff_run_all(&e, NULL);
	printf("diff_sim: %u scenarios on %s (%d skipped) -> %s\n",
	       mock ? diff_nr_mock_scenarios() : diff_nr_scenarios(),
	       topology, skips, results);
	fclose(e.out);
	close(e.stage_fd);
	ioasid_device_unbind(e.ctx, e.dev);
	ioasid_unref(e.ctx);
	return 0;
}

int main(int argc, char **argv)
{
	const char *src = getenv("top_srcdir");
	char topo[512];
	int r = 0;

	if (argc == 3)
		return run(argv[1], argv[2], false);
	if (argc == 4 && !strcmp(argv[1], "--mock"))
		return run(argv[2], argv[3], true);
	if (argc != 1) {
		fprintf(stderr, "usage: diff_sim [[--mock] TOPOLOGY "
			"RESULTS]\n");
		return 2;
	}
	mkdir("tests", 0755);
	mkdir("tests/differential", 0755);
	snprintf(topo, sizeof(topo), "%s/tests/differential/edu-sc-on.topology",
		 src ? src : ".");
	r |= run(topo, "tests/differential/sim-sc-on.results", false);
	snprintf(topo, sizeof(topo), "%s/tests/differential/edu-sc-off.topology",
		 src ? src : ".");
	r |= run(topo, "tests/differential/sim-sc-off.results", false);
	snprintf(topo, sizeof(topo), "%s/tests/differential/mock.topology",
		 src ? src : ".");
	r |= run(topo, "tests/differential/sim-mock.results", true);
	return r;
}
