/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd's live upgrade (ioasidd(8), LIVE UPGRADE) on the simulated
 * IOMMU: clients under load (map, unmap and cuts, conversions, detach and
 * attach, DMA checked in the memfd), each keeping its own record of what
 * it was acknowledged, while the daemon re-executes itself several times;
 * then no call failed and each client's state is its record.  A binary
 * that cannot take over, and one that cannot read the image's version,
 * leave the old daemon serving with everything; only root may ask.
 * Dirty tracking comes through with the pages not read yet.
 *
 * No sleeps: the main thread waits for the clients' progress counters.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <libioasid.h>

#include "daemon_fixture.h"
#include "helpers.h"
#include "snapshot.h"

#define PG		4096ULL
#define PAGES		64
#define BASE		0x100000ULL
#define RW		(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED		IOASID_MAP_FIXED_IOVA
#define NR_CLIENTS	3
#define UPGRADES	3
#define OPS_BETWEEN	25
#define CONFIG "[daemon]\nsocket-mode = 0666\n" \
	"[user 0]\ndevices = all\nobserve = yes\nallow-noncoherent = yes\n" \
	"[user 65534]\ndevices = none\n"

static const char *const devices[NR_CLIENTS] = {
	"0000:00:01.0", "0000:00:03.0", "0000:01:02.0",
};

static struct daemon_fixture d;

struct client {
	int idx;
	struct ioasid_ctx *ctx;
	uint32_t ioas, dev;
	int ram;
	/* the record of what was acknowledged */
	bool mapped[PAGES], shared[PAGES], attached;
	unsigned int seed;
	uint64_t ops;			/* atomic: progress */
	int failed;			/* the first failed call, or 0 */
	char why[320];
	bool stop;			/* atomic */
};

static void start(const char *binary)
{
	struct daemon_opts o = { .config = CONFIG, .log_level = "debug" };

	if (geteuid() != 0)
		cr_skip_test("only root may upgrade ioasidd");
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	if (binary)
		setenv("IOASIDD", binary, 1);
	cr_assert_eq(daemon_start(&d, &o), 0, "ioasidd must start");
}

static void stop(void)
{
	if (d.pid > 0)
		cr_assert_eq(daemon_stop(&d), 0, "ioasidd stops cleanly");
	unsetenv("IOASIDD");
	unsetenv("IOASIDD_TEST_IMAGE_MAX_VERSION");
}

/* Upgrade; the fixture follows the new pid (we are its subreaper). */
static int upgrade(struct ioasid_ctx *ctx, const char *binary)
{
	uint32_t pid = 0;
	pid_t old = d.pid;
	int r = ioasid_daemon_upgrade(ctx, binary, &pid);

	if (r == 0) {
		cr_assert_neq((pid_t)pid, old, "a new process serves");
		cr_assert_eq(waitpid(old, NULL, 0), old, "the old one exits");
		d.pid = (pid_t)pid;
	}
	return r;
}

static bool fail(struct client *c, int r, const char *what)
{
	if (r == 0)
		return false;
	snprintf(c->why, sizeof(c->why), "client %d, op %llu: %s: %d (%s)",
		 c->idx, (unsigned long long)c->ops, what, r,
		 ioasid_last_error(c->ctx));
	c->failed = r;
	return true;
}

static void pick(struct client *c, uint64_t *a, uint64_t *n)
{
	*a = (uint64_t)rand_r(&c->seed) % PAGES;
	*n = 1 + (uint64_t)rand_r(&c->seed) % 4;
	if (*a + *n > PAGES)
		*n = PAGES - *a;
}

static bool range_free(const struct client *c, uint64_t a, uint64_t n)
{
	for (uint64_t i = a; i < a + n; i++)
		if (c->mapped[i])
			return false;
	return true;
}

/* One acknowledged change (or a DMA check); true when a call failed. */
static bool step(struct client *c)
{
	uint64_t a, n, done;
	int r;

	pick(c, &a, &n);
	switch (rand_r(&c->seed) % 6) {
	case 0: {
		uint64_t iova = BASE + a * PG;

		if (!range_free(c, a, n))
			return false;
		r = ioasid_map_file(c->ctx, c->ioas, c->ram, a * PG, n * PG,
				    RW | FIXED, &iova);
		if (fail(c, r, "map"))
			return true;
		for (uint64_t i = a; i < a + n; i++)
			c->mapped[i] = true;
		return false;
	}
	case 1:		/* unmap, cutting whatever lies across the ends */
		if (range_free(c, a, n))
			return false;	/* ENOENT: nothing to unmap */
		r = ioasid_unmap(c->ctx, c->ioas, BASE + a * PG, n * PG, 0,
				 NULL);
		if (fail(c, r, "unmap"))
			return true;
		for (uint64_t i = a; i < a + n; i++)
			c->mapped[i] = false;
		return false;
	case 2: {
		struct ioasid_iova_range rg = { BASE + a * PG,
						BASE + (a + n) * PG - 1 };
		bool to = rand_r(&c->seed) & 1;

		for (uint64_t i = a; i < a + n; i++)
			if (!c->mapped[i])
				return false;	/* ENOENT: only mapped */
		r = ioasid_convert(c->ctx, c->ioas, &rg, 1,
				   to ? IOASID_CONVERT_SHARED :
					IOASID_CONVERT_PRIVATE, NULL);
		if (fail(c, r, "convert"))
			return true;
		for (uint64_t i = a; i < a + n; i++)
			c->shared[i] = to;
		return false;
	}
	case 3: {
		unsigned char buf[PG], got[PG];

		if (!c->mapped[a] || !c->shared[a] || !c->attached)
			return false;
		memset(buf, (int)(c->ops & 0xff), sizeof(buf));
		r = ioasid_device_dma(c->ctx, c->dev, BASE + a * PG, buf, PG,
				      IOASID_DMA_WRITE, &done);
		if (fail(c, r, "DMA"))
			return true;
		if (pread(c->ram, got, PG, (off_t)(a * PG)) != (ssize_t)PG ||
		    memcmp(got, buf, PG))
			return fail(c, -EIO, "DMA did not land");
		return false;
	}
	case 4: {	/* a lookup: from the shared view while it serves */
		struct ioasid_mapping m = { 0 };

		r = ioasid_lookup(c->ctx, c->ioas, BASE + a * PG, &m);
		if (r == -ENOENT && !c->mapped[a])
			return false;
		if (fail(c, r, "lookup"))
			return true;
		if (!c->mapped[a] || m.offset + (BASE + a * PG - m.iova) !=
				     a * PG)
			return fail(c, -ESTALE, "a lookup is not the record");
		return false;
	}
	default:
		r = c->attached ? ioasid_device_detach(c->ctx, c->dev) :
			ioasid_device_attach(c->ctx, c->dev, c->ioas, 0);
		if (fail(c, r, c->attached ? "detach" : "attach"))
			return true;
		c->attached = !c->attached;
		return false;
	}
}

static void *load(void *arg)
{
	struct client *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (step(c))
			break;
		__atomic_add_fetch(&c->ops, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void client_setup(struct client *c, int idx)
{
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->seed = 1234u + (unsigned int)idx;
	cr_assert_eq(ioasid_new(d.uri, &c->ctx), 0);
	c->ram = test_memfd(PAGES * PG);
	cr_assert_eq(ioasid_ioas_alloc(c->ctx, IOASID_IOAS_RESTRICTED,
				       &c->ioas), 0);
	cr_assert_eq(ioasid_device_bind(c->ctx, devices[idx], -1, &c->dev), 0,
		     "%s", ioasid_last_error(c->ctx));
	cr_assert_eq(ioasid_device_attach(c->ctx, c->dev, c->ioas, 0), 0,
		     "%s", ioasid_last_error(c->ctx));
	c->attached = true;
}

/* The daemon's state is the client's record. */
static void check_record(struct client *c)
{
	struct ioasid_ioas_info info = { 0 };
	bool seen[PAGES] = { false };
	struct ioasid_mapping m;
	uint64_t iova = 0, nr_shared = 0;

	for (;;) {
		memset(&m, 0, sizeof(m));
		if (ioasid_mapping_next(c->ctx, c->ioas, iova, &m) < 0)
			break;
		cr_assert_eq(m.offset, m.iova - BASE, "client %d: a piece "
			     "keeps its file offset", c->idx);
		for (uint64_t p = m.iova; p < m.iova + m.length; p += PG)
			seen[(p - BASE) / PG] = true;
		iova = m.iova + m.length;
	}
	for (int i = 0; i < PAGES; i++) {
		cr_assert_eq(seen[i], c->mapped[i], "client %d: page %d "
			     "mapped %d, its record says %d", c->idx, i,
			     seen[i], c->mapped[i]);
		nr_shared += c->shared[i];
	}
	cr_assert_eq(ioasid_ioas_get_info(c->ctx, c->ioas, &info), 0);
	cr_assert_eq(info.bytes_shared, nr_shared * PG, "client %d: shared "
		     "pages", c->idx);
	cr_assert_eq(info.nr_devices, c->attached ? 1u : 0u);
}

Test(upgrade, under_load_no_call_fails, .timeout = 300)
{
	struct client cl[NR_CLIENTS];
	pthread_t th[NR_CLIENTS];
	struct ioasid_ctx *admin;

	start(NULL);
	cr_assert_eq(ioasid_new(d.uri, &admin), 0);
	for (int i = 0; i < NR_CLIENTS; i++)
		client_setup(&cl[i], i);
	for (int i = 0; i < NR_CLIENTS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, load, &cl[i]), 0);
	for (int k = 0; k < UPGRADES; k++) {
		uint64_t want[NR_CLIENTS];

		for (int i = 0; i < NR_CLIENTS; i++)
			want[i] = __atomic_load_n(&cl[i].ops,
						  __ATOMIC_ACQUIRE) +
				  OPS_BETWEEN;
		/* each client makes progress between two upgrades */
		for (int i = 0; i < NR_CLIENTS; i++)
			while (__atomic_load_n(&cl[i].ops, __ATOMIC_ACQUIRE) <
			       want[i] && !cl[i].failed)
				sched_yield();
		cr_assert_eq(upgrade(admin, NULL), 0, "upgrade %d: %s", k,
			     ioasid_last_error(admin));
	}
	for (int i = 0; i < NR_CLIENTS; i++) {
		uint64_t want = __atomic_load_n(&cl[i].ops, __ATOMIC_ACQUIRE) +
				OPS_BETWEEN;

		while (__atomic_load_n(&cl[i].ops, __ATOMIC_ACQUIRE) < want &&
		       !cl[i].failed)
			sched_yield();
	}
	for (int i = 0; i < NR_CLIENTS; i++) {
		__atomic_store_n(&cl[i].stop, true, __ATOMIC_RELEASE);
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < NR_CLIENTS; i++) {
		cr_assert_eq(cl[i].failed, 0, "%s", cl[i].why);
		cr_assert_gt(cl[i].ops, UPGRADES * OPS_BETWEEN);
		check_record(&cl[i]);
		ioasid_unref(cl[i].ctx);
		close(cl[i].ram);
	}
	ioasid_unref(admin);
	stop();
}

/* A failed upgrade: the same daemon, the same state, still serving. */
static void refused_keeps_serving(const char *binary, int want,
				  const char *reason)
{
	struct client c;
	struct snap before, after;
	struct ioasid_ctx *admin;
	pid_t pid = d.pid;
	int r;

	cr_assert_eq(ioasid_new(d.uri, &admin), 0);
	client_setup(&c, 0);
	for (int i = 0; i < 40; i++)
		cr_assert(!step(&c), "%s", c.why);
	snapshot_take(c.ctx, &before, 0);
	r = upgrade(admin, binary);
	cr_assert_eq(r, want, "%d (%s)", r, ioasid_last_error(admin));
	cr_assert(strstr(ioasid_last_error(admin), reason), "%s",
		  ioasid_last_error(admin));
	cr_assert_eq(d.pid, pid);
	cr_assert(daemon_alive(&d));
	snapshot_take(c.ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after), "nothing lost");
	for (int i = 0; i < 40; i++)
		cr_assert(!step(&c), "%s", c.why);
	check_record(&c);
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(c.ctx);
	close(c.ram);
	ioasid_unref(admin);
}

Test(upgrade, bad_binary_leaves_the_old_one, .timeout = 120)
{
	start(NULL);
	refused_keeps_serving("/bin/false", -ENOEXEC, "exited before");
	refused_keeps_serving("/nonexistent/ioasidd", -ENOEXEC,
			      "cannot be executed");
	stop();
}

Test(upgrade, newer_image_version_refused, .timeout = 120)
{
	char path[4096];

	/* a test build that reads no image version: as an older binary */
	snprintf(path, sizeof(path), "%s", daemon_binary());
	*strrchr(path, '/') = '\0';
	*strrchr(path, '/') = '\0';
	strncat(path, "/tests/ioasidd-failnth", sizeof(path) - strlen(path) - 1);
	if (access(path, X_OK) < 0)
		cr_skip_test("no %s", path);
	setenv("IOASIDD_TEST_IMAGE_MAX_VERSION", "0", 1);
	start(path);
	refused_keeps_serving(NULL, -EPROTONOSUPPORT, "version 1");
	stop();
}

/*
 * A session with nested tables, PASIDs, a vIOMMU and its vDEVICEs: the
 * successor rebuilds them with their ids (the snapshot is the same), DMA
 * goes through both stages as before, and invalidation still works.
 */
Test(upgrade, nested_tables_pasids_and_viommus_come_through,
     .timeout = 120)
{
	int memfd = test_memfd(1 << 20);
	struct snap before, after;
	struct test_nesting t;
	struct ioasid_ctx *ctx;

	start(NULL);
	cr_assert_eq(ioasid_new(d.uri, &ctx), 0);
	test_nesting_build(ctx, memfd, &t);
	test_nesting_check(ctx, memfd, &t, "before the upgrade");
	snapshot_take(ctx, &before, 0);
	cr_assert_eq(upgrade(ctx, NULL), 0, "%s", ioasid_last_error(ctx));
	snapshot_take(ctx, &after, 0);
	cr_assert(snapshot_equal(&before, &after),
		  "the successor has the same tables, PASIDs, vIOMMU, "
		  "vDEVICEs and ids");
	test_nesting_check(ctx, memfd, &t, "after the upgrade");
	/* and a second time: the successor's own image carries them too */
	cr_assert_eq(upgrade(ctx, NULL), 0, "%s", ioasid_last_error(ctx));
	test_nesting_check(ctx, memfd, &t, "after the second upgrade");
	snapshot_free(&before);
	snapshot_free(&after);
	ioasid_unref(ctx);
	close(memfd);
	stop();
}

#define DIRTY_IOVA	0x400000ULL	/* 2 MiB aligned: 2 MiB leaves */
#define DIRTY_LEN	(8ULL << 20)
#define DIRTY_WORDS	(DIRTY_LEN / PG / 64)

static void dirty_write(struct ioasid_ctx *ctx, uint32_t dev, uint64_t iova)
{
	uint8_t buf[64] = { 0x77 };
	uint64_t done = 0;

	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
}

static void dirty_bits(struct ioasid_ctx *ctx, uint32_t ioas, uint32_t flags,
		       uint64_t *bm)
{
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, DIRTY_IOVA, DIRTY_LEN, bm,
				       flags), 0, "%s", ioasid_last_error(ctx));
}

/*
 * Dirty tracking through two upgrades: still on, and a read gives
 * exactly the pages written and not read yet (2 MiB leaves and 4 KiB
 * ones, some read and cleared before), then tracks on.
 */
Test(upgrade, dirty_pages_come_through, .timeout = 120)
{
	uint64_t want[DIRTY_WORDS], got[DIRTY_WORDS], iova = DIRTY_IOVA;
	struct ioasid_ctx *ctx;
	uint32_t ioas, nic;
	unsigned int n = 0;
	int ram = test_memfd(6 << 20);

	start(NULL);
	cr_assert_eq(ioasid_new(d.uri, &ctx), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, ram, 0, 4 << 20, RW | FIXED,
				     &iova), 0);
	iova = DIRTY_IOVA + (5 << 20) + 0x3000;
	cr_assert_eq(ioasid_map_file(ctx, ioas, ram, 4 << 20, 1 << 20,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_device_bind(ctx, devices[0], -1, &nic), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nic, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0, "%s",
		     ioasid_last_error(ctx));
	dirty_write(ctx, nic, DIRTY_IOVA + 0x1000);
	dirty_write(ctx, nic, DIRTY_IOVA + (5 << 20) + 0x4000);
	dirty_bits(ctx, ioas, 0, got);	/* read: clean again */
	dirty_write(ctx, nic, DIRTY_IOVA + (2 << 20) + 0x5000);
	dirty_write(ctx, nic, DIRTY_IOVA + (5 << 20) + 0x20000);
	dirty_write(ctx, nic, DIRTY_IOVA + (5 << 20) + 0x21000);
	dirty_bits(ctx, ioas, IOASID_DIRTY_NO_CLEAR, want);
	for (size_t i = 0; i < DIRTY_WORDS; i++)
		n += (unsigned int)__builtin_popcountll(want[i]);
	cr_assert_eq(n, 512 + 2, "a 2 MiB leaf and two 4 KiB pages: %u", n);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(upgrade(ctx, NULL), 0, "%s",
			     ioasid_last_error(ctx));
		dirty_bits(ctx, ioas, IOASID_DIRTY_NO_CLEAR, got);
		cr_assert_arr_eq(got, want, sizeof(want), "upgrade %d: the "
				 "pages not read yet", round + 1);
	}
	dirty_bits(ctx, ioas, 0, got);
	cr_assert_arr_eq(got, want, sizeof(want));
	dirty_bits(ctx, ioas, 0, got);
	memset(want, 0, sizeof(want));
	cr_assert_arr_eq(got, want, sizeof(want), "read: all clean");
	dirty_write(ctx, nic, DIRTY_IOVA + (5 << 20) + 0x40000);
	dirty_bits(ctx, ioas, 0, got);
	want[((5 << 20) + 0x40000) / PG / 64] =
		1ULL << (((5 << 20) + 0x40000) / PG % 64);
	cr_assert_arr_eq(got, want, sizeof(want), "and it tracks on");
	ioasid_unref(ctx);
	close(ram);
	stop();
}

/* A map and its unmap in @ioas; the file id the map gave. */
static uint32_t map_unmap_file(struct ioasid_ctx *ctx, uint32_t ioas,
			       int memfd)
{
	struct ioasid_mapping m = { .file_id = 0 };
	uint64_t iova = BASE;

	cr_assert_eq(ioasid_map_file(ctx, ioas, memfd, 0, PG, RW | FIXED,
				     &iova), 0, "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_lookup(ctx, ioas, iova, &m), 0);
	cr_assert_eq(ioasid_unmap(ctx, ioas, iova, PG, 0, NULL), 0);
	return m.file_id;
}

/*
 * The ops of the image give each mapped file its id, but an IOAS whose
 * files went keeps counting: the successor's next file gets the id the
 * predecessor's would have, not one a file had before.
 */
Test(upgrade, the_file_id_counter_comes_through, .timeout = 120)
{
	int memfd = test_memfd(1 << 20), memfd2 = test_memfd(1 << 20);
	struct ioasid_ctx *ctx;
	uint32_t ioas, first;

	start(NULL);
	cr_assert_eq(ioasid_new(d.uri, &ctx), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	first = map_unmap_file(ctx, ioas, memfd);
	cr_assert_eq(upgrade(ctx, NULL), 0, "%s", ioasid_last_error(ctx));
	cr_assert_eq(map_unmap_file(ctx, ioas, memfd2), first + 1,
		     "the next file id, as without the upgrade");
	ioasid_unref(ctx);
	close(memfd);
	close(memfd2);
	stop();
}

static int fq_write(struct ioasid_ctx *ctx, uint32_t dev, uint64_t pg,
		    uint8_t v)
{
	uint8_t buf[PG];
	uint64_t done;

	memset(buf, v, sizeof(buf));
	return ioasid_device_dma(ctx, dev, BASE + pg * PG, buf, PG,
				 IOASID_DMA_WRITE, &done);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * A fault queue comes through: the page requests outstanding, the
 * records not read yet, the cookies the VMM holds, and the eventfd it
 * got over the socket, which the successor signals.
 */
Test(upgrade, fault_queue_comes_through, .timeout = 120)
{
	struct ioasid_page_request q[4];
	uint32_t dev, ioas, fq, nr = 1, early;
	int ram = test_memfd(4 * PG), efd;
	struct ioasid_ctx *ctx;
	uint64_t iova = BASE;
	uint8_t b;

	start(NULL);
	cr_assert_eq(ioasid_new(d.uri, &ctx), 0);
	cr_assert_eq(ioasid_device_bind(ctx, devices[0], -1, &dev), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, ram, 0, PG, RW | FIXED,
				     &iova), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_fault_queue_alloc(ctx, ioas, 8, 60000, 0, &fq,
					      &efd), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(fq_write(ctx, dev, 1, 0x11), -EINPROGRESS);
	cr_assert_eq(fq_write(ctx, dev, 2, 0x22), -EINPROGRESS);
	cr_assert_eq(ioasid_fault_queue_read(ctx, fq, q, &nr), 0);
	cr_assert_eq(nr, 1);
	early = q[0].cookie;

	cr_assert_eq(upgrade(ctx, NULL), 0, "%s", ioasid_last_error(ctx));
	cr_assert(fd_readable(efd), "the eventfd the client holds signals");
	nr = 4;
	cr_assert_eq(ioasid_fault_queue_read(ctx, fq, q, &nr), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(nr, 1, "the record not read yet");
	cr_assert_eq(q[0].addr, BASE + 2 * PG);
	cr_assert(!fd_readable(efd));
	/* a second upgrade carries what the successor has */
	cr_assert_eq(upgrade(ctx, NULL), 0, "%s", ioasid_last_error(ctx));
	for (uint64_t pg = 1; pg <= 2; pg++) {
		iova = BASE + pg * PG;
		cr_assert_eq(ioasid_map_file(ctx, ioas, ram, pg * PG, PG,
					     RW | FIXED, &iova), 0);
	}
	cr_assert_eq(ioasid_fault_respond(ctx, fq, early,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_fault_respond(ctx, fq, q[0].cookie,
					  IOASID_PAGE_RESPONSE_SUCCESS), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(fq_write(ctx, dev, 1, 0x11), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(fq_write(ctx, dev, 2, 0x22), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(pread(ram, &b, 1, 2 * PG), 1);
	cr_assert_eq(b, 0x22, "the device's DMA completed");
	cr_assert_eq(fq_write(ctx, dev, 3, 0x33), -EINPROGRESS);
	cr_assert(fd_readable(efd), "and new requests signal it");
	ioasid_unref(ctx);
	close(efd);
	close(ram);
	stop();
}

/* Our child (we are the subreaper) that is not @old: the successor. */
static pid_t find_successor(pid_t old)
{
	char path[64], buf[512];
	pid_t found = 0;

	for (pid_t p = 2; p < 4194304 && !found; p++) {
		FILE *f;
		int ppid;
		char *close_paren;

		if (p == old)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) &&
		    (close_paren = strrchr(buf, ')')) &&
		    sscanf(close_paren + 2, "%*c %d", &ppid) == 1 &&
		    ppid == getpid() && strstr(buf, "(ioasidd"))
			found = p;
		fclose(f);
	}
	return found;
}

Test(upgrade, sigusr2, .timeout = 120)
{
	struct client c;
	pid_t old;

	start(NULL);
	client_setup(&c, 0);
	for (int i = 0; i < 40; i++)
		cr_assert(!step(&c), "%s", c.why);
	old = d.pid;
	cr_assert_eq(kill(old, SIGUSR2), 0);
	cr_assert_eq(waitpid(old, NULL, 0), old, "the old process exits");
	d.pid = find_successor(old);
	cr_assert_gt(d.pid, 0, "a successor serves");
	for (int i = 0; i < 40; i++)
		cr_assert(!step(&c), "%s", c.why);
	check_record(&c);
	ioasid_unref(c.ctx);
	close(c.ram);
	stop();
}

static int nobody_upgrades(void)
{
	struct ioasid_ctx *ctx;
	int r;

	if (ioasid_new(d.uri, &ctx) < 0)
		return 1;
	r = ioasid_daemon_upgrade(ctx, NULL, NULL);
	ioasid_unref(ctx);
	return r == -EPERM ? 0 : 2;
}

Test(upgrade, refusals, .timeout = 60)
{
	struct ioasid_ctx *emb;
	int status;
	pid_t pid;

	cr_assert_eq(ioasid_new("sim", &emb), 0);
	cr_assert_eq(ioasid_daemon_upgrade(emb, NULL, NULL), -EOPNOTSUPP);
	cr_assert_eq(ioasid_daemon_upgrade(NULL, NULL, NULL), -EINVAL);
	ioasid_unref(emb);
	start(NULL);
	{
		struct ioasid_ctx *ctx;

		cr_assert_eq(ioasid_new(d.uri, &ctx), 0);
		cr_assert_eq(ioasid_daemon_upgrade(ctx, "", NULL), -EINVAL);
		ioasid_unref(ctx);
	}
	/* ioasidctl daemon upgrade, end to end */
	{
		char cmd[16384], path[4096], out[256] = "";
		unsigned int npid = 0;
		pid_t old = d.pid;
		FILE *p;

		snprintf(path, sizeof(path), "%s", daemon_binary());
		*strrchr(path, '/') = '\0';
		*strrchr(path, '/') = '\0';
		snprintf(cmd, sizeof(cmd), "%s/ioasidctl/ioasidctl --uri %s "
			 "daemon upgrade", path, d.uri);
		p = popen(cmd, "r");
		cr_assert(p);
		cr_assert(fgets(out, sizeof(out), p));
		cr_assert_eq(pclose(p), 0, "%s", out);
		cr_assert_eq(sscanf(out, "ioasidd upgraded: pid %u", &npid), 1,
			     "%s", out);
		cr_assert_eq(waitpid(old, NULL, 0), old);
		d.pid = (pid_t)npid;
	}
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(100);
		_exit(nobody_upgrades());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "nobody may not upgrade (%d)", WEXITSTATUS(status));
	stop();
}

/*
 * One test at a time: each makes the test process the subreaper of its
 * daemons, and criterion's runner leaks (LeakSanitizer sees 48 bytes of
 * its own) when workers that reap grandchildren run side by side.
 */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
