/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd against real clients (tests/daemon_fixture.c: one daemon per
 * test, in a private directory): sessions, isolation, quotas, uids,
 * events, descriptors, back-pressure, shutdown, reload, socket
 * activation.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>

#include "proto_fixture.h"

/* ========================================================================== */
/* the daemon                                                                 */
/* ========================================================================== */

TestSuite(daemon, .init = setup_daemon, .fini = stop_quietly, .timeout = 60);

Test(daemon, hello_backend_and_status)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_status st;

	cr_assert(ioasid_is_remote(a));
	cr_assert_str_eq(ioasid_get_backend(a), "sim");
	cr_assert_eq(ioasid_get_status(a, &st), 0, "%s",
		     ioasid_last_error(a));
	cr_assert(st.flags & 1, "answered by ioasidd");
	cr_assert_eq(st.pid, (uint32_t)d.pid);
	cr_assert_geq(st.nr_sessions, 2);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

Test(daemon, pipelined_requests_are_answered_in_order)
{
	int s = raw_connect();
	struct raw m;

	for (uint32_t seq = 7; seq < 12; seq++) {
		raw_begin(&m, IOASID_CMD_IOAS_LIST, seq);
		raw_u32(&m, IOASID_ATTR_OUT_CAP, 64);
		raw_send(s, &m, NULL, 0);
	}
	for (uint32_t seq = 7; seq < 12; seq++)
		expect_ok(s, seq);
	close(s);
	expect_clean_exit();
}

Test(daemon, clients_cannot_name_each_others_objects)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_ioas_info info;
	struct ioasid_mapping map;
	uint32_t ioas_a, ioas_b, dev_a, dev_b, ids[8], nr = 8;
	uint64_t iova = 0x100000, done;
	int fd = test_memfd(MiB);
	char buf[64];

	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas_a), 0);
	cr_assert_eq(ioasid_ioas_alloc(b, 0, &ioas_b), 0);
	cr_assert_eq(ioasid_map_file(a, ioas_a, fd, 0, MiB, RW | FIXED, &iova),
		     0);
	cr_assert_eq(ioasid_device_bind(a, NIC, -1, &dev_a), 0, "%s",
		     ioasid_last_error(a));

	cr_assert_eq(ioasid_ioas_get_info(b, ioas_a, &info), -ENOENT);
	cr_assert_eq(ioasid_lookup(b, ioas_a, 0x100000, &map), -ENOENT);
	cr_assert_eq(ioasid_map_file(b, ioas_a, fd, 0, 4096, RW, &iova),
		     -ENOENT);
	cr_assert_eq(ioasid_unmap_all(b, ioas_a, NULL), -ENOENT);
	iova = 0;
	cr_assert_eq(ioasid_copy(b, ioas_b, ioas_a, 0x100000, 4096, RW, &iova),
		     -ENOENT);
	cr_assert_eq(ioasid_ioas_destroy(b, ioas_a), -ENOENT);
	cr_assert_eq(ioasid_ioas_list(b, ids, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_assert_eq(ids[0], ioas_b);
	cr_assert_eq(ioasid_device_unbind(b, dev_a), -ENOENT);
	cr_assert_eq(ioasid_device_attach(b, dev_a, ioas_b, 0), -ENOENT);
	cr_assert_eq(ioasid_device_dma(b, dev_a, 0x100000, buf, sizeof(buf), 0,
				       &done), -ENOENT);
	cr_assert_neq(ioasid_device_bind(b, NIC, -1, &dev_b), 0,
		      "a device has one owner");
	cr_assert_str_neq(ioasid_last_error(b), "");
	/* A's objects are all still there */
	cr_assert_eq(ioasid_lookup(a, ioas_a, 0x100000, &map), 0);
	cr_assert_eq(ioasid_device_attach(a, dev_a, ioas_a, 0), 0);
	close(fd);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

/* Descriptors passed in are closed after each op; teardown closes dups. */
Test(daemon, no_descriptor_leaks)
{
	struct ioasid_ctx *probe = remote_ctx();
	int before = settled_fds(probe, 1);
	struct ioasid_ctx *ctx = remote_ctx();
	int with_client = settled_fds(probe, 2);
	uint32_t ioas;
	uint64_t iova;
	int fd = test_memfd(4 * MiB);

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	/*
	 * The first map sets up the request ring: its two eventfds and the
	 * registered file stay while the client does.
	 */
	iova = 0x1000000;
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 0x10000, RW | FIXED,
				     &iova), 0);
	with_client = daemon_count_fds(&d) - 1;	/* less the IOAS's dup */
	for (int i = 1; i < 64; i++) {
		iova = 0x1000000 + (uint64_t)i * 0x10000;
		cr_assert_eq(ioasid_map_file(ctx, ioas, fd,
					     (uint64_t)i * 0x10000, 0x10000,
					     RW | FIXED, &iova), 0);
	}
	/* one dup per file held by the IOAS, nothing per request */
	cr_assert_leq(daemon_count_fds(&d), with_client + 1);
	/* failing requests close their descriptor too */
	iova = 0x1000000;
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 0x10000, RW | FIXED,
				     &iova), -EEXIST);
	cr_assert_eq(ioasid_map_file(ctx, 4242, fd, 0, 0x10000, RW, &iova),
		     -ENOENT);
	cr_assert_leq(daemon_count_fds(&d), with_client + 1);
	cr_assert_eq(ioasid_ioas_destroy(ctx, ioas), 0);
	expect_daemon_fds(with_client);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW, &iova), 0);
	ioasid_unref(ctx);		/* disconnect tears the IOAS down */
	expect_daemon_fds(before);
	close(fd);
	ioasid_unref(probe);
	expect_clean_exit();
}

Test(daemon, client_killed_mid_request)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int before = settled_fds(ctx, 1);
	int status;
	pid_t pid;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* a client with objects, pipelining requests, then killed */
		struct ioasid_ctx *c = NULL;
		uint32_t ioas;
		uint64_t iova = 0;
		int fd = memfd_create("x", MFD_ALLOW_SEALING), s;
		struct raw m;

		if (fd < 0 || ftruncate(fd, MiB) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0 ||
		    ioasid_new(d.uri, &c) < 0 ||
		    ioasid_ioas_alloc(c, 0, &ioas) < 0 ||
		    ioasid_map_file(c, ioas, fd, 0, MiB, RW, &iova) < 0)
			_exit(1);
		s = raw_connect();
		for (uint32_t i = 1; i < 50; i++) {
			raw_begin(&m, IOASID_CMD_MAP_FILE, i);
			raw_u32(&m, IOASID_ATTR_IOAS_ID, ioas);
			raw_u32(&m, IOASID_ATTR_FD_INDEX, 0);
			raw_u64(&m, IOASID_ATTR_OFFSET, 0);
			raw_u64(&m, IOASID_ATTR_IOVA, 0);
			raw_u64(&m, IOASID_ATTR_LENGTH, 4096);
			raw_u32(&m, IOASID_ATTR_FLAGS, RW);
			if (send_fds(s, m.b, m.len, &fd, 1) < 0)
				break;
		}
		raise(SIGKILL);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the child got as far as its kill");
	bystander_ok(ctx);
	cr_assert(daemon_alive(&d));
	cr_assert_eq(settled_fds(ctx, 1), before, "its session and files are "
		     "gone");
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* A client that never reads its replies stalls nobody else. */
Test(daemon, slow_reader_does_not_stall_others)
{
	struct ioasid_ctx *ctx = remote_ctx();
	int s = raw_connect();
	uint32_t sent = 0;
	struct raw m;
	struct timespec t0, t1;

	fcntl(s, F_SETFL, O_NONBLOCK);
	for (;;) {
		raw_begin(&m, IOASID_CMD_IOAS_LIST, sent + 1);
		raw_u32(&m, IOASID_ATTR_OUT_CAP, 4096);
		if (send_fds(s, m.b, m.len, NULL, 0) < 0) {
			cr_assert_eq(errno, EAGAIN);
			break;
		}
		if (++sent == 100000)
			break;
	}
	cr_assert_gt(sent, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++)
		bystander_ok(ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 3, "others are served promptly");
	/* every reply arrives, in order, once the client reads */
	fcntl(s, F_SETFL, 0);
	for (uint32_t seq = 1; seq <= sent; seq++)
		expect_ok(s, seq);
	close(s);
	bystander_ok(ctx);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, quotas_from_the_policy)
{
	struct ioasid_ctx *ctx;
	uint32_t a, b, c;
	uint64_t iova;
	int fd = test_memfd(MiB);
	struct ioasid_ioas_info info;

	restart_daemon(user_section("max-ioas = 2\nmax-mappings = 3\n"
				    "max-bytes-mapped = 64K\n"));
	ctx = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &a), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &b), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &c), -ENOSPC);
	cr_assert(strstr(ioasid_last_error(ctx), "quota"), "%s",
		  ioasid_last_error(ctx));
	for (int i = 0; i < 3; i++) {
		iova = 0x100000 + (uint64_t)i * 0x10000;
		cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 4096, RW | FIXED,
					     &iova), 0);
	}
	iova = 0x800000;
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 4096, RW | FIXED, &iova),
		     -ENOSPC, "mapping quota");
	cr_assert_eq(ioasid_map_file(ctx, b, fd, 0, 4096, RW | FIXED, &iova),
		     -ENOSPC, "the quota is per client, not per IOAS");
	cr_assert_eq(ioasid_unmap_all(ctx, a, NULL), 0);
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 68 * 1024, RW | FIXED,
				     &iova), -ENOSPC, "byte quota");
	cr_assert_str_neq(ioasid_last_error(ctx), "");
	cr_assert_eq(ioasid_ioas_get_info(ctx, a, &info), 0);
	cr_assert_eq(info.nr_mappings, 0, "nothing half-applied");
	cr_assert_eq(ioasid_map_file(ctx, a, fd, 0, 64 * 1024, RW | FIXED,
				     &iova), 0);
	close(fd);
	ioasid_unref(ctx);
	expect_clean_exit();
}

/*
 * A nested table is an address space too: max-ioas counts it, so a
 * client cannot make the daemon hold tables without bound.
 */
Test(daemon, nested_tables_count_against_max_ioas)
{
	struct ioasid_nested_vtd_s1 s1 = {
		.pgtbl_addr = 0x1000, .addr_width = 48,
	};
	uint32_t parent, dev, n1, n2 = 0, other = 0;
	struct ioasid_ctx *ctx;

	restart_daemon(user_section("max-ioas = 2\n"
				    "devices = 0000:00:01.0\n"));
	ctx = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &parent),
		     0);
	cr_assert_eq(ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_nested_alloc(ctx, parent, dev, IOASID_NESTED_VTD_S1,
					 &s1, sizeof(s1), 0, &n1), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_nested_alloc(ctx, parent, dev, IOASID_NESTED_VTD_S1,
					 &s1, sizeof(s1), 0, &n2), -ENOSPC,
		     "a third address space past max-ioas = 2");
	cr_assert(strstr(ioasid_last_error(ctx), "quota"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(n2, 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), -ENOSPC,
		     "the nested table holds the second place");
	cr_assert_eq(ioasid_nested_destroy(ctx, n1), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0,
		     "a destroyed table gives its place back");
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* A vIOMMU is held state too: max-ioas counts it with IOASes. */
Test(daemon, viommus_count_against_max_ioas)
{
	uint32_t parent, dev, v1, v2 = 0, other = 0;
	struct ioasid_ctx *ctx;

	restart_daemon(user_section("max-ioas = 2\n"
				    "devices = 0000:00:01.0\n"));
	ctx = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(ctx, IOASID_IOAS_NEST_PARENT, &parent),
		     0);
	cr_assert_eq(ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev), 0,
		     "%s", ioasid_last_error(ctx));
	cr_assert_eq(ioasid_viommu_alloc(ctx, parent, dev, IOASID_VIOMMU_SIM,
					 0, &v1), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(ioasid_viommu_alloc(ctx, parent, dev, IOASID_VIOMMU_SIM,
					 0, &v2), -ENOSPC,
		     "a third address space past max-ioas = 2");
	cr_assert(strstr(ioasid_last_error(ctx), "vIOMMUs"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_eq(v2, 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), -ENOSPC,
		     "the vIOMMU holds the second place");
	cr_assert_eq(ioasid_viommu_destroy(ctx, v1), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0,
		     "a destroyed vIOMMU gives its place back");
	ioasid_unref(ctx);
	expect_clean_exit();
}

/* Run @fn as uid/gid 65534 in a child; its exit code is the verdict. */
static int as_nobody(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		_exit(fn());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int nobody_is_refused_by_policy(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	if (r != -EACCES)
		return 1;
	if (!strstr(ioasid_last_error(NULL), "not allowed"))
		return 2;
	return 0;
}

static int nobody_cannot_reach_the_socket(void)
{
	struct ioasid_ctx *ctx = NULL;
	int r = ioasid_new(d.uri, &ctx);

	if (r != -EACCES)
		return 1;
	return strstr(ioasid_last_error(NULL), "permission denied") ? 0 : 2;
}

static int nobody_gets_default_limits(void)
{
	struct ioasid_ctx *ctx = NULL;
	uint32_t a, b, dev;

	if (ioasid_new(d.uri, &ctx) < 0)
		return 1;
	if (ioasid_ioas_alloc(ctx, 0, &a) < 0)
		return 2;
	if (ioasid_ioas_alloc(ctx, 0, &b) != -ENOSPC)
		return 3;
	if (ioasid_device_bind(ctx, NIC, -1, &dev) == 0)
		return 4;		/* devices = none */
	ioasid_unref(ctx);
	return 0;
}

Test(daemon, second_uid_is_judged_by_its_own_policy)
{
	struct ioasid_ctx *ctx;

	if (geteuid() != 0)
		cr_skip_test("needs root to switch to uid 65534");
	/* socket mode 0660, root's group: nobody cannot even connect */
	cr_assert_eq(as_nobody(nobody_cannot_reach_the_socket), 0);

	restart_daemon("[daemon]\nsocket-mode = 0666\n"
		       "[default]\nallow = no\n");
	cr_assert_eq(as_nobody(nobody_is_refused_by_policy), 0);
	ctx = remote_ctx();		/* root is still served */
	bystander_ok(ctx);
	ioasid_unref(ctx);

	restart_daemon("[daemon]\nsocket-mode = 0666\n"
		       "[default]\nmax-ioas = 1\ndevices = none\n");
	cr_assert_eq(as_nobody(nobody_gets_default_limits), 0);
	expect_clean_exit();
}

/* Events queued in the daemon arrive as EVENT messages. */
Test(daemon, fault_events_reach_subscribers)
{
	struct ioasid_ctx *a = remote_ctx(), *b = remote_ctx();
	struct ioasid_event ev;
	struct pollfd p;
	uint32_t ioas, dev;
	uint64_t done = 0;
	char buf[4096];
	int efd;

	cr_assert_eq(ioasid_event_subscribe(a, IOASID_EVENT_GROUP_FAULT), 0,
		     "%s", ioasid_last_error(a));
	cr_assert_eq(ioasid_event_subscribe(a, 1U << 20), -EOPNOTSUPP);
	efd = ioasid_event_get_fd(a);
	cr_assert_geq(efd, 0);
	cr_assert_eq(ioasid_event_read(a, &ev), -EAGAIN);
	cr_assert_geq(ioasid_event_get_fd(b), 0);

	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(a, NIC, -1, &dev), 0);
	cr_assert_eq(ioasid_device_attach(a, dev, ioas, 0), 0, "%s",
		     ioasid_last_error(a));
	cr_assert_lt(ioasid_device_dma(a, dev, 0x40000000, buf, sizeof(buf),
				       0, &done), 0, "unmapped: a fault");

	/* events a call causes arrive before its reply, as embedded */
	p = (struct pollfd){ .fd = efd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 1, "readable as soon as the call returns");
	cr_assert_eq(ioasid_event_read(a, &ev), 0);
	cr_assert_eq(ev.type, IOASID_EVENT_FAULT);
	cr_assert_eq(ev.id, dev);
	cr_assert_str_eq(ev.name, NIC);
	cr_assert_eq(ev.iova, 0x40000000);
	cr_assert_eq(ioasid_event_read(a, &ev), -EAGAIN);
	p.revents = 0;
	cr_assert_eq(poll(&p, 1, 0), 0, "not readable once drained");
	/* b never subscribed */
	cr_assert_eq(ioasid_event_read(b, &ev), -EAGAIN);
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

/*
 * DMA larger than one message is split transparently; a dirty bitmap
 * larger than one goes through the connection's memfd.
 */
Test(daemon, large_dma_and_dirty_bitmaps_are_chunked)
{
	struct ioasid_ctx *ctx = remote_ctx();
	const size_t len = 600 * 1024;
	uint8_t *out = malloc(len), *in = malloc(len);
	uint64_t iova = 8 * GiB + 0x100000, done = 0, *bitmap;
	uint64_t bits = 12 * GiB / 4096, page;
	uint32_t ioas, dev;
	int fd = test_memfd(MiB);

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NIC, -1, &dev), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, MiB, RW | FIXED, &iova),
		     0, "%s", ioasid_last_error(ctx));
	bitmap = calloc(bits / 64, sizeof(*bitmap));
	cr_assert_eq(ioasid_dirty_start(ctx, ioas, 0), 0);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, iova, MiB, bitmap, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, out, len,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(done, len);
	cr_assert_eq(pread(fd, in, len, 0), (ssize_t)len);
	cr_assert_arr_eq(in, out, len, "the device wrote every byte");
	memset(in, 0, len);
	cr_assert_eq(ioasid_device_dma(ctx, dev, iova, in, len, 0, &done), 0);
	cr_assert_eq(done, len);
	cr_assert_arr_eq(in, out, len, "and reads them back");
	/* a fault half-way reports the bytes done, as embedded */
	cr_assert_lt(ioasid_device_dma(ctx, dev, iova + MiB - 4096, in,
				       300 * 1024, 0, &done), 0);
	cr_assert_eq(done, 4096);

	/* 12 GiB of IOVA: a 384 KiB bitmap, more than one message */
	memset(bitmap, 0, bits / 8);
	cr_assert_eq(ioasid_dirty_read(ctx, ioas, 0, 12 * GiB, bitmap, 0), 0,
		     "%s", ioasid_last_error(ctx));
	page = iova / 4096;
	cr_assert(bitmap[page / 64] & (1ULL << (page % 64)),
		  "a page the device wrote is dirty");
	page = (iova + len + 4096) / 4096;
	cr_assert_not(bitmap[page / 64] & (1ULL << (page % 64)));
	free(bitmap);
	free(in);
	free(out);
	close(fd);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, observing_other_clients_needs_the_policy)
{
	struct ioasid_ctx *a, *b;
	struct ioasid_ioas_info info;
	uint32_t ioas;

	restart_daemon(user_section("observe = no\n"));
	a = remote_ctx();
	cr_assert_eq(ioasid_set_observer(a, 1), -EPERM);
	cr_assert(strstr(ioasid_last_error(a), "policy"), "%s",
		  ioasid_last_error(a));
	ioasid_unref(a);

	restart_daemon(user_section("observe = yes\n"));
	a = remote_ctx();
	b = remote_ctx();
	cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0);
	cr_assert_eq(ioasid_ioas_get_info(b, ioas, &info), -ENOENT);
	cr_assert_eq(ioasid_set_observer(b, 1), 0, "%s",
		     ioasid_last_error(b));
	cr_assert_eq(ioasid_ioas_get_info(b, ioas, &info), 0, "%s",
		     ioasid_last_error(b));
	cr_assert_eq(info.ioas_id, ioas);
	cr_assert_eq(ioasid_ioas_destroy(b, ioas), -ENOENT, "read-only");
	ioasid_unref(b);
	ioasid_unref(a);
	expect_clean_exit();
}

static uint64_t raw_nr_mappings(int s, uint32_t ioas)
{
	struct ioasid_ioas_info info;
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = ioas;
	op.out = &info;
	op.out_cap = sizeof(info);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	return info.nr_mappings;
}

/* Many ranges of one file in one message, all or nothing. */
Test(daemon, map_batch_is_all_or_nothing)
{
	struct ioasid_map_entry e[3] = {
		{ .iova = 0x100000, .offset = 0, .length = 4096 },
		{ .iova = 0x200000, .offset = 8192, .length = 8192 },
		{ .iova = 0x300000, .offset = 4096, .length = 4096 },
	};
	uint64_t iovas[3] = { 0 };
	int fd = test_memfd(MiB), s = raw_connect();
	struct ioasid_ctx *probe = remote_ctx();
	int before;
	struct ioasid_op op;
	uint32_t ioas;

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(codec_call(s, &op), 0);
	ioas = op.out_id;
	before = settled_fds(probe, 2);

	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas;
	op.fd = fd;
	op.flags = RW | FIXED;
	op.in = e;
	op.in_len = sizeof(e);
	op.out = iovas;
	op.out_cap = sizeof(iovas);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	cr_assert_eq(op.out_id, 3);
	cr_assert_eq(op.out_bytes, 16384);
	cr_assert_eq(iovas[1], 0x200000);
	cr_assert_eq(raw_nr_mappings(s, ioas), 3);

	/* the third entry overlaps: the first two are undone */
	e[0].iova = 0x400000;
	e[1].iova = 0x500000;
	e[2].iova = 0x200000;
	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas;
	op.fd = fd;
	op.flags = RW | FIXED;
	op.in = e;
	op.in_len = sizeof(e);
	cr_assert_eq(codec_call(s, &op), -EEXIST);
	cr_assert(strstr(op.errmsg, "entry 2"), "%s", op.errmsg);
	cr_assert_eq(raw_nr_mappings(s, ioas), 3, "nothing half-applied");

	/* a torn entry */
	op.cmd = IOASID_CMD_MAP_BATCH;
	op.in_len = sizeof(e[0]) + 1;
	op.errmsg[0] = '\0';
	cr_assert_eq(codec_call(s, &op), -EINVAL);
	cr_assert_str_neq(op.errmsg, "");
	cr_assert_eq(settled_fds(probe, 2), before + 1, "one dup of the file");
	close(s);
	close(fd);
	ioasid_unref(probe);
	expect_clean_exit();
}

/* ---- device descriptors and owners ------------------------------------ */

static uint32_t raw_bind(int s, const char *name)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	snprintf(op.name, sizeof(op.name), "%s", name);
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	return op.out_id;
}

static int raw_get_fd(int s, uint32_t dev, struct ioasid_op *op)
{
	int r;

	ioasid_op_init(op, IOASID_CMD_DEVICE_GET_FD);
	op->dev_id = dev;
	r = codec_call(s, op);
	cr_assert_eq(rx_nfds, 0, "no descriptor left over");
	return r;
}

static int raw_set_vm(int s, uint32_t dev, uint32_t vm, uint32_t flags,
		      struct ioasid_op *op)
{
	ioasid_op_init(op, IOASID_CMD_DEVICE_SET_VM);
	op->dev_id = dev;
	op->vm_id = vm;
	op->flags = flags;
	return codec_call(s, op);
}

/* A VM and its kvm-vfio device bound over @s; 0 without /dev/kvm. */
static uint32_t raw_vm(int s)
{
	struct kvm_create_device cd = { .type = 4 /* VFIO */ };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1;
	struct ioasid_op op;

	if (kvm >= 0)
		vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (kvm >= 0)
		close(kvm);
	if (vm < 0)
		return 0;
	cr_assert_eq(ioctl(vm, KVM_CREATE_DEVICE, &cd), 0);
	ioasid_op_init(&op, IOASID_CMD_VM_BIND);
	op.fd = vm;
	op.fd2 = (int)cd.fd;
	op.flags = IOASID_VM_KVM_VFIO_CREATED;
	cr_assert_eq(codec_call(s, &op), 0, "%s", op.errmsg);
	close((int)cd.fd);
	close(vm);
	return op.out_id;
}

/*
 * Simulated devices have no VFIO file: no descriptor in the reply, and
 * no client may claim it registered one with KVM.
 */
Test(daemon, device_get_fd_and_client_registration_are_checked)
{
	struct ioasid_ctx *probe = remote_ctx();
	int before = settled_fds(probe, 1), s = raw_connect();
	struct ioasid_op op;
	uint32_t dev, vm;

	dev = raw_bind(s, NIC);
	cr_assert_eq(raw_get_fd(s, dev, &op), -EOPNOTSUPP);
	cr_assert(strstr(op.errmsg, "no VFIO file"), "%s", op.errmsg);
	cr_assert_eq(op.out_fd, -1);
	cr_assert_eq(raw_get_fd(s, 4242, &op), -ENOENT);
	cr_assert(strstr(op.errmsg, "no bound device 4242"), "%s", op.errmsg);
	/* another client's device is not there */
	{
		int other = raw_connect();

		cr_assert_eq(raw_get_fd(other, dev, &op), -ENOENT);
		close(other);
	}
	cr_assert_eq(raw_set_vm(s, dev, 0, 2, &op), -EOPNOTSUPP);
	cr_assert(strstr(op.errmsg, "unknown set_vm flags 0x2"), "%s",
		  op.errmsg);
	cr_assert_eq(raw_set_vm(s, dev, 0, IOASID_SET_VM_CLIENT_REGISTERED,
				&op), -EINVAL);
	cr_assert(strstr(op.errmsg, "needs a VM"), "%s", op.errmsg);
	vm = raw_vm(s);
	if (vm) {
		cr_assert_eq(raw_set_vm(s, dev, vm,
					IOASID_SET_VM_CLIENT_REGISTERED, &op),
			     -EINVAL);
		cr_assert(strstr(op.errmsg, "no VFIO file"), "%s", op.errmsg);
		cr_assert_eq(raw_set_vm(s, dev, vm, 0, &op), 0, "%s",
			     op.errmsg);
	} else {
		cr_log_warn("no /dev/kvm: the VM half is not checked");
	}
	close(s);
	settled_fds(probe, 1);
	expect_daemon_fds(before);	/* its session and VM are gone */
	ioasid_unref(probe);
	expect_clean_exit();
}

/* Run @fn in a child that keeps its objects until told to go. */
static pid_t child_client(void (*fn)(int ready_fd), int *go_fd)
{
	int ready[2], go[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		fn(ready[1]);
		if (read(go[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the child client is ready");
	close(ready[0]);
	*go_fd = go[1];
	return pid;
}

/* A client with an IOAS and (with /dev/kvm) a VM; says "1" or "0". */
static void owner_client(int ready_fd)
{
	struct ioasid_ctx *ctx = NULL;
	uint32_t ioas, vm;
	int kvm, vm_fd = -1;
	char c = '0';

	if (ioasid_new(d.uri, &ctx) < 0 || ioasid_ioas_alloc(ctx, 0, &ioas))
		_exit(3);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0)
		vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm_fd >= 0 && ioasid_vm_bind(ctx, vm_fd, -1, &vm) == 0)
		c = '1';
	if (write(ready_fd, &c, 1) != 1)
		_exit(4);
}

/* Observers see whose the IOASes and VMs are: pid and uid of the peer. */
Test(daemon, observers_see_owners)
{
	struct ioasid_ctx *admin = remote_ctx();
	struct ioasid_ioas_info info;
	struct ioasid_vm_info vi;
	uint32_t ids[8], nr = 8, mine;
	int go, status, found = 0;
	pid_t pid = child_client(owner_client, &go);

	cr_assert_eq(ioasid_ioas_alloc(admin, 0, &mine), 0);
	cr_assert_eq(ioasid_set_observer(admin, 1), 0, "%s",
		     ioasid_last_error(admin));
	cr_assert_eq(ioasid_ioas_list(admin, ids, &nr), 0);
	cr_assert_eq(nr, 2);
	for (uint32_t i = 0; i < nr; i++) {
		cr_assert_eq(ioasid_ioas_get_info(admin, ids[i], &info), 0);
		cr_assert_eq(info.owner_uid, (uint32_t)getuid());
		cr_assert_eq(info.owner_pid, ids[i] == mine ?
			     (uint32_t)getpid() : (uint32_t)pid,
			     "IOAS %u: owner pid %u", ids[i], info.owner_pid);
	}
	nr = 8;
	cr_assert_eq(ioasid_vm_list(admin, ids, &nr), 0);
	for (uint32_t i = 0; i < nr; i++) {
		cr_assert_eq(ioasid_vm_get_info(admin, ids[i], &vi), 0);
		cr_assert_eq(vi.owner_pid, (uint32_t)pid);
		cr_assert_eq(vi.owner_uid, (uint32_t)getuid());
		found++;
	}
	cr_log_info("%d VM(s) of the child seen", found);
	cr_assert_eq(write(go, "x", 1), 1);
	close(go);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ioasid_unref(admin);
	expect_clean_exit();
}

Test(daemon, map_user_is_refused_with_a_reason)
{
	struct ioasid_ctx *ctx = remote_ctx();
	void *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t iova = 0;
	uint32_t ioas;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_user(ctx, ioas, buf, 4096, RW, &iova),
		     -EOPNOTSUPP);
	cr_assert(strstr(ioasid_last_error(ctx), "ioasid_map_file"), "%s",
		  ioasid_last_error(ctx));
	munmap(buf, 4096);
	ioasid_unref(ctx);
	expect_clean_exit();
}

Test(daemon, shutdown_disconnects_clients_cleanly)
{
	struct ioasid_ctx *ctx = remote_ctx();
	uint32_t ioas;
	struct stat st;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	expect_clean_exit();
	cr_assert_eq(stat(d.sock, &st), -1, "the socket file is removed");
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), -ECONNRESET);
	cr_assert(strstr(ioasid_last_error(ctx), "lost"), "%s",
		  ioasid_last_error(ctx));
	ioasid_unref(ctx);
}

Test(daemon, sighup_reloads_the_policy_for_new_clients)
{
	struct ioasid_ctx *old = remote_ctx(), *ctx = NULL;
	int r = 0;

	cr_assert_eq(daemon_write_config(&d, user_section("allow = no\n")), 0);
	kill(d.pid, SIGHUP);
	for (int i = 0; i < SETTLE_TRIES; i++) {
		r = ioasid_new(d.uri, &ctx);
		if (r < 0)
			break;
		ioasid_unref(ctx);
		sleep_ms(2);
	}
	cr_assert_eq(r, -EACCES, "new clients get the new policy");
	bystander_ok(old);		/* existing clients keep theirs */
	ioasid_unref(old);
	expect_clean_exit();
}

Test(daemon, bad_config_is_refused_with_a_line_number)
{
	struct daemon_opts o = {
		.config = "[default]\nmax-ioas = lots\n", .no_wait = true,
	};
	char line[512], all[4096] = "";
	FILE *f;

	expect_clean_exit();
	cr_assert_eq(daemon_start(&d, &o), 0);
	for (int i = 0; i < SETTLE_TRIES && daemon_alive(&d); i++)
		sleep_ms(2);
	cr_assert_not(daemon_alive(&d));
	f = fopen(d.log, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		strncat(all, line, sizeof(all) - strlen(all) - 1);
	fclose(f);
	cr_assert(strstr(all, "ioasidd.conf:2:"), "log: %s", all);
	unlink(d.log);			/* expected: do not print it */
	cr_assert_eq(daemon_stop(&d), 1, "exit status 1");
}

Test(daemon, socket_activation)
{
#ifdef HAVE_LIBSYSTEMD
	struct daemon_opts o = { .socket_activation = true };
	struct ioasid_ctx *ctx;
	struct stat st;

	expect_clean_exit();
	cr_assert_eq(daemon_start(&d, &o), 0);
	ctx = remote_ctx();
	bystander_ok(ctx);
	ioasid_unref(ctx);
	cr_assert_eq(kill(d.pid, SIGTERM), 0);
	for (int i = 0; i < SETTLE_TRIES && daemon_alive(&d); i++)
		sleep_ms(2);
	cr_assert_eq(d.status, 0);
	cr_assert_eq(stat(d.sock, &st), 0, "systemd's socket stays");
	daemon_stop(&d);
#else
	cr_skip_test("built without libsystemd");
#endif
}

Test(daemon, connect_errors_are_explained)
{
	struct ioasid_ctx *ctx = (void *)1;
	char uri[PATH_MAX + 16];

	snprintf(uri, sizeof(uri), "unix:%s/nothing-here", d.dir);
	cr_assert_eq(ioasid_new(uri, &ctx), -ENOENT);
	cr_assert(strstr(ioasid_last_error(NULL), "is ioasidd running"), "%s",
		  ioasid_last_error(NULL));
	cr_assert_eq(ctx, (void *)1);
	expect_clean_exit();
	/* a socket file nobody listens on */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path),
			 "/tmp/ioasid-dead-%d.sock", (int)getpid());
		unlink(sa.sun_path);
		cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(s);
		snprintf(uri, sizeof(uri), "unix:%s", sa.sun_path);
		cr_assert_eq(ioasid_new(uri, &ctx), -ECONNREFUSED);
		cr_assert(strstr(ioasid_last_error(NULL), "not running"));
		unlink(sa.sun_path);
	}
}
