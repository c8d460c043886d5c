/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions on one core (what ioasidd gives each client), through the
 * internal core API: isolation (another client's ids are ENOENT), quotas,
 * the read-only observer view, and teardown of everything a session held.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "helpers.h"

static struct core *core;

static void setup(void)
{
	char err[256];

	cr_assert_eq(core_new(NULL, "sim", &core, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	core_free(core);
}

static struct session *session(const struct session_limits *limits)
{
	struct session *s;

	cr_assert_eq(core_session_new(core, limits, &s), 0);
	return s;
}

static int run(struct session *s, struct ioasid_op *op)
{
	return core_call(s, op);
}

static uint32_t ioas_alloc(struct session *s)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
	return op.out_id;
}

static int map(struct session *s, uint32_t ioas, int fd, uint64_t iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = ioas;
	op.fd = fd;
	op.length = 4096;
	op.iova = iova;
	op.flags = IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA;
	return run(s, &op);
}

static int unmap(struct session *s, uint32_t ioas, uint64_t iova)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.iova = iova;
	op.length = 4096;
	return run(s, &op);
}

static int info(struct session *s, uint32_t ioas, struct ioasid_ioas_info *i)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_INFO);
	op.ioas_id = ioas;
	op.out = i;
	op.out_cap = sizeof(*i);
	return run(s, &op);
}

static int observe(struct session *s, uint32_t on)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_OBSERVE);
	op.flags = on;
	return run(s, &op);
}

static int bind(struct session *s, const char *name, uint32_t *id)
{
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	strcpy(op.name, name);
	r = run(s, &op);
	*id = op.out_id;
	return r;
}

TestSuite(sessions, .init = setup, .fini = teardown);

Test(sessions, ids_of_others_are_enoent)
{
	struct session_limits lim = { .max_ioas = 8, .max_mappings = 100,
				      .max_bytes_mapped = 1 << 20, .max_vms = 1 };
	struct session *a = session(&lim), *b = session(&lim);
	struct ioasid_ioas_info i;
	uint32_t ioas = ioas_alloc(a), dev;
	int fd = test_memfd(1 << 20);

	cr_assert_eq(map(a, ioas, fd, 0x100000), 0);
	cr_assert_eq(info(b, ioas, &i), -ENOENT, "not EPERM: ids leak nothing");
	cr_assert_eq(map(b, ioas, fd, 0x200000), -ENOENT);
	cr_assert_eq(unmap(b, ioas, 0x100000), -ENOENT);
	cr_assert_eq(bind(a, "0000:00:01.0", &dev), 0);
	cr_assert_eq(bind(b, "0000:00:01.0", &dev), -EBUSY);
	cr_assert_eq(info(a, ioas, &i), 0);
	cr_assert_eq(i.nr_mappings, 1);
	close(fd);
	core_session_free(a);
	core_session_free(b);
}

static uint32_t device_flags(struct session *s, const char *name)
{
	struct ioasid_device_info info;
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_INFO);
	strcpy(op.name, name);
	op.out = &info;
	op.out_cap = sizeof(info);
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
	return info.flags;
}

/* Binds @name in @s, which must fail with EBUSY; the message. */
static const char *busy(struct session *s, const char *name)
{
	static struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	strcpy(op.name, name);
	cr_assert_eq(run(s, &op), -EBUSY);
	return op.errmsg;
}

/*
 * EBUSY says by whom: this session; another session of the same user, or
 * anyone's to an observer, by session, pid, name and uid; another user's
 * session to anyone else without saying whose.
 */
Test(sessions, already_bound_says_by_whom)
{
	struct session_limits admin = { .may_observe = 1 };
	struct session *holder = session(NULL), *same = session(NULL);
	struct session *other = session(NULL), *root = session(&admin);
	char want[160];
	const char *msg;
	uint32_t dev;

	core_session_set_owner(holder, 4242, 1000, "qemu");
	core_session_set_owner(same, 4343, 1000, "qemu");
	core_session_set_owner(other, 4444, 2000, "crosvm");
	core_session_set_owner(root, 1, 0, "ioasidctl");
	cr_assert_eq(bind(holder, "0000:00:01.0", &dev), 0);
	msg = busy(holder, "0000:00:01.0");
	snprintf(want, sizeof(want), "device 0000:00:01.0 is already bound by "
		 "this session (dev %u)", dev);
	cr_assert_str_eq(msg, want);
	snprintf(want, sizeof(want), "device 0000:00:01.0 is already bound by "
		 "session %u of pid 4242 (qemu), uid 1000",
		 core_session_id(holder));
	cr_assert_str_eq(busy(same, "0000:00:01.0"), want);
	msg = busy(other, "0000:00:01.0");
	cr_assert_str_eq(msg, "device 0000:00:01.0 is already bound by "
			 "another user's session");
	cr_assert_null(strstr(msg, "4242"), "no pid for another tenant");
	cr_assert_eq(observe(root, 1), 0);
	cr_assert_str_eq(busy(root, "0000:00:01.0"), want, "the administrator "
			 "is told whose it is");
	cr_assert_eq(device_flags(holder, "0000:00:01.0") &
		     (IOASID_DEVICE_BOUND | IOASID_DEVICE_OTHER_SESSION),
		     IOASID_DEVICE_BOUND, "bound here");
	cr_assert_eq(device_flags(root, "0000:00:01.0") &
		     (IOASID_DEVICE_BOUND | IOASID_DEVICE_OTHER_SESSION),
		     IOASID_DEVICE_BOUND | IOASID_DEVICE_OTHER_SESSION,
		     "an observer sees it is another session's");
	core_session_free(root);
	core_session_free(other);
	core_session_free(same);
	core_session_free(holder);
}

Test(sessions, observer_reads_but_cannot_change)
{
	struct session_limits plain = { .max_ioas = 8, .max_mappings = 100,
					.max_bytes_mapped = 1 << 20 };
	struct session_limits admin = plain;
	struct session *a = session(&plain), *b = session(&plain);
	struct session *root;
	struct ioasid_ioas_info i;
	uint32_t ioas = ioas_alloc(a);
	int fd = test_memfd(1 << 20);

	admin.may_observe = 1;
	root = session(&admin);
	cr_assert_eq(map(a, ioas, fd, 0x100000), 0);
	cr_assert_eq(observe(b, 1), -EPERM, "policy decides who may observe");
	cr_assert_eq(observe(root, 2), -EOPNOTSUPP);
	cr_assert_eq(observe(root, 1), 0);
	cr_assert_eq(info(root, ioas, &i), 0);
	cr_assert_eq(i.nr_mappings, 1);
	cr_assert_eq(unmap(root, ioas, 0x100000), -ENOENT, "read-only view");
	cr_assert_eq(map(root, ioas, fd, 0x200000), -ENOENT);
	cr_assert_eq(observe(root, 0), 0);
	cr_assert_eq(info(root, ioas, &i), -ENOENT);
	close(fd);
	core_session_free(a);
	core_session_free(b);
	core_session_free(root);
}

Test(sessions, quotas)
{
	struct session_limits lim = { .max_ioas = 1, .max_mappings = 2,
				      .max_bytes_mapped = 3 * 4096 };
	struct session *s = session(&lim);
	struct ioasid_op op;
	uint32_t ioas = ioas_alloc(s);
	int fd = test_memfd(1 << 20);

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	cr_assert_eq(run(s, &op), -ENOSPC);
	cr_assert(strstr(op.errmsg, "quota"));
	cr_assert_eq(map(s, ioas, fd, 0x100000), 0);
	cr_assert_eq(map(s, ioas, fd, 0x200000), 0);
	cr_assert_eq(map(s, ioas, fd, 0x300000), -ENOSPC, "mapping quota");
	cr_assert_eq(unmap(s, ioas, 0x100000), 0);
	cr_assert_eq(map(s, ioas, fd, 0x300000), 0, "room again after unmap");
	close(fd);
	core_session_free(s);
}

Test(sessions, free_tears_everything_down)
{
	struct session *a = session(NULL), *b = session(NULL);
	uint32_t ioas = ioas_alloc(a), dev;
	int fd = test_memfd(1 << 20), before;
	struct ioasid_op op;

	cr_assert_eq(map(a, ioas, fd, 0x100000), 0);
	close(fd);
	cr_assert_eq(bind(a, "0000:00:01.0", &dev), 0);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_ATTACH);
	op.dev_id = dev;
	op.ioas_id = ioas;
	cr_assert_eq(run(a, &op), 0, "%s", op.errmsg);
	before = test_count_fds();
	core_session_free(a);
	cr_assert_lt(test_count_fds(), before, "the memfd reference went away");
	cr_assert_eq(bind(b, "0000:00:01.0", &dev), 0, "the device is free again");
	core_session_free(b);
}

/* ---- hostile tenants: quotas on every path that creates state ----------- */

static int map_at(struct session *s, uint32_t ioas, int fd, uint64_t iova,
		  uint64_t offset, uint64_t length)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = ioas;
	op.fd = fd;
	op.offset = offset;
	op.length = length;
	op.iova = iova;
	op.flags = IOASID_MAP_READ | IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA;
	return run(s, &op);
}

static int unmap_at(struct session *s, uint32_t ioas, uint64_t iova,
		    uint64_t length, struct ioasid_op *op)
{
	ioasid_op_init(op, IOASID_CMD_UNMAP);
	op->ioas_id = ioas;
	op->iova = iova;
	op->length = length;
	return run(s, op);
}

static uint64_t mappings_of(struct session *s, uint32_t ioas)
{
	struct ioasid_ioas_info i;

	cr_assert_eq(info(s, ioas, &i), 0);
	return i.nr_mappings;
}

static int convert_at(struct session *s, uint32_t ioas, uint64_t start,
		      uint64_t length, uint32_t to, struct ioasid_op *op)
{
	static struct ioasid_iova_range r;

	r = (struct ioasid_iova_range){ start, start + (length - 1) };
	ioasid_op_init(op, IOASID_CMD_CONVERT);
	op->ioas_id = ioas;
	op->in = &r;
	op->in_len = sizeof(r);
	op->flags = to;
	return run(s, op);
}

static uint32_t restricted_alloc(struct session *s)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	op.flags = IOASID_IOAS_RESTRICTED;
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
	return op.out_id;
}

Test(sessions, unmap_that_cuts_is_a_new_mapping)
{
	struct session_limits lim = { .max_ioas = 1, .max_mappings = 2,
				      .max_bytes_mapped = 1 << 20 };
	struct session *s = session(&lim);
	uint32_t ioas = ioas_alloc(s);
	int fd = test_memfd(1 << 20);
	struct ioasid_op op;

	cr_assert_eq(map_at(s, ioas, fd, 0x100000, 0, 64 * 4096), 0);
	cr_assert_eq(unmap_at(s, ioas, 0x100000 + 4096, 4096, &op), 0,
		     "the first cut makes two mappings: %s", op.errmsg);
	cr_assert_eq(mappings_of(s, ioas), 2);
	cr_assert_eq(unmap_at(s, ioas, 0x100000 + 8 * 4096, 4096, &op),
		     -ENOSPC, "a third mapping is over the quota");
	cr_assert(strstr(op.errmsg, "quota"), "%s", op.errmsg);
	cr_assert_eq(mappings_of(s, ioas), 2, "nothing was applied");
	cr_assert_eq(unmap_at(s, ioas, 0x100000 + 2 * 4096, 4096, &op), 0,
		     "trimming an end creates nothing: %s", op.errmsg);
	cr_assert_eq(mappings_of(s, ioas), 2);
	close(fd);
	core_session_free(s);
}

Test(sessions, copy_counts_every_piece)
{
	struct session_limits lim = { .max_ioas = 2, .max_mappings = 5,
				      .max_bytes_mapped = 1 << 20 };
	struct session *s = session(&lim);
	uint32_t src = ioas_alloc(s), dst = ioas_alloc(s);
	int fd = test_memfd(1 << 20);
	struct ioasid_op op;

	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(map_at(s, src, fd, 0x100000 + i * 4096, i * 4096,
				    4096), 0);
	ioasid_op_init(&op, IOASID_CMD_COPY);
	op.ioas_id = dst;
	op.ioas_id2 = src;
	op.offset = 0x100000;
	op.length = 3 * 4096;
	op.iova = 0x400000;
	op.flags = IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA;
	cr_assert_eq(run(s, &op), -ENOSPC, "3 + 3 pieces > 5");
	cr_assert(strstr(op.errmsg, "quota"), "%s", op.errmsg);
	cr_assert_eq(mappings_of(s, dst), 0, "nothing was applied");
	op.length = 2 * 4096;
	op.errmsg[0] = 0;
	cr_assert_eq(run(s, &op), 0, "3 + 2 pieces fit: %s", op.errmsg);
	cr_assert_eq(mappings_of(s, dst), 2);
	close(fd);
	core_session_free(s);
}

Test(sessions, batch_counts_every_byte)
{
	struct session_limits lim = { .max_ioas = 1, .max_mappings = 100,
				      .max_bytes_mapped = 4 * 4096 };
	struct session *s = session(&lim);
	uint32_t ioas = ioas_alloc(s);
	int fd = test_memfd(1 << 20);
	struct ioasid_map_entry e[8];
	struct ioasid_op op;

	/* eight entries of the same file page: 8 pages mapped, span 1 */
	for (uint32_t i = 0; i < 8; i++)
		e[i] = (struct ioasid_map_entry){ .iova = 0x100000 + i * 4096,
						  .offset = 0, .length = 4096 };
	ioasid_op_init(&op, IOASID_CMD_MAP_BATCH);
	op.ioas_id = ioas;
	op.fd = fd;
	op.in = e;
	op.in_len = sizeof(e);
	op.flags = IOASID_MAP_READ | IOASID_MAP_FIXED_IOVA;
	cr_assert_eq(run(s, &op), -ENOSPC, "%s", op.errmsg);
	cr_assert(strstr(op.errmsg, "quota"), "%s", op.errmsg);
	cr_assert_eq(mappings_of(s, ioas), 0, "nothing was applied");
	op.in_len = 4 * sizeof(e[0]);
	cr_assert_eq(run(s, &op), 0, "four pages fit: %s", op.errmsg);
	close(fd);
	core_session_free(s);
}

Test(sessions, conversion_of_unmapped_iova_is_refused)
{
	struct session_limits lim = { .max_ioas = 1, .max_mappings = 100,
				      .max_bytes_mapped = UINT64_MAX,
				      .max_conversion_state = 1 << 20 };
	struct session *s = session(&lim);
	uint32_t ioas = restricted_alloc(s);
	int fd = test_memfd(1 << 20);
	struct ioasid_ioas_info i;
	struct ioasid_op op;

	cr_assert_eq(map_at(s, ioas, fd, 0x100000, 0, 1 << 20), 0);
	cr_assert_eq(convert_at(s, ioas, 0, 1ULL << 44, IOASID_CONVERT_SHARED,
				&op), -ENOENT, "2^44 bytes, mostly unmapped");
	cr_assert(strstr(op.errmsg, "not all mapped"), "%s", op.errmsg);
	cr_assert_eq(convert_at(s, ioas, 0, 1ULL << 60, IOASID_CONVERT_SHARED,
				&op), -ENOENT, "2^60 bytes");
	cr_assert_eq(convert_at(s, ioas, 0, 1ULL << 60, IOASID_CONVERT_PRIVATE,
				&op), -ENOENT, "to private as well");
	cr_assert_eq(info(s, ioas, &i), 0);
	cr_assert_eq(i.bytes_shared, 0);
	cr_assert_lt(i.state_bytes, 4096, "no state was allocated");
	cr_assert_eq(convert_at(s, ioas, 0x100000, 1 << 20,
				IOASID_CONVERT_SHARED, &op), 0, "%s", op.errmsg);
	close(fd);
	core_session_free(s);
}

Test(sessions, conversion_state_quota)
{
	/* room for one 1 GiB leaf of state (32 KiB of bits), not two */
	struct session_limits lim = { .max_ioas = 2, .max_mappings = 100,
				      .max_bytes_mapped = UINT64_MAX,
				      .max_conversion_state = 48 << 10 };
	struct session *s = session(&lim);
	uint32_t a = restricted_alloc(s), b = restricted_alloc(s);
	uint64_t gib = 1ULL << 30;
	int fd = test_memfd(4 * gib);		/* sparse: nothing is touched */
	struct ioasid_ioas_info i;
	struct ioasid_op op;

	cr_assert_eq(map_at(s, a, fd, gib, 0, 2 * gib), 0);
	cr_assert_eq(map_at(s, b, fd, gib, 2 * gib, 2 * gib), 0);
	cr_assert_eq(convert_at(s, a, gib, 2 * gib, IOASID_CONVERT_SHARED, &op),
		     -ENOSPC, "two leaves of state are over the quota");
	cr_assert(strstr(op.errmsg, "conversion state"), "%s", op.errmsg);
	cr_assert_eq(info(s, a, &i), 0);
	cr_assert_eq(i.bytes_shared, 0, "nothing was applied");
	cr_assert_eq(convert_at(s, a, gib, gib, IOASID_CONVERT_SHARED, &op), 0,
		     "%s", op.errmsg);
	cr_assert_eq(convert_at(s, b, gib, 4096, IOASID_CONVERT_SHARED, &op),
		     -ENOSPC, "the quota covers all the session's IOASes");
	cr_assert_eq(convert_at(s, a, gib + 4096, 4096, IOASID_CONVERT_SHARED, &op),
		     0, "a leaf that exists costs nothing: %s", op.errmsg);
	cr_assert_eq(convert_at(s, a, gib, gib, IOASID_CONVERT_PRIVATE, &op), 0);
	cr_assert_eq(convert_at(s, b, gib, 4096, IOASID_CONVERT_SHARED, &op), 0,
		     "private pages give their state back: %s", op.errmsg);
	close(fd);
	core_session_free(s);
}

/* ---- hotplug rights, device files --------------------------------------- */

static int hotplug(struct session *s, const char *name, uint32_t present,
		   struct ioasid_op *op)
{
	ioasid_op_init(op, IOASID_CMD_SIM_HOTPLUG);
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->flags = present;
	return run(s, op);
}

Test(sessions, hotplug_rights)
{
	static char *none[] = { NULL };
	struct session_limits tenant = { .max_ioas = 8, .max_mappings = 100,
					 .max_bytes_mapped = 1 << 20 };
	struct session_limits nodev = tenant, admin = tenant;
	struct session *a, *b, *n, *root;
	struct ioasid_op op;
	uint32_t dev;

	nodev.devices = none;		/* devices = none */
	nodev.nr_devices = 0;
	nodev.may_observe = 1;
	admin.may_observe = 1;
	a = session(&tenant);
	b = session(&tenant);
	n = session(&nodev);
	root = session(&admin);
	cr_assert_eq(bind(a, "0000:00:01.0", &dev), 0);
	cr_assert_eq(hotplug(b, "0000:00:01.0", 0, &op), -EPERM,
		     "another tenant's bound device");
	cr_assert(strstr(op.errmsg, "bound by another client"), "%s", op.errmsg);
	cr_assert_eq(hotplug(b, "0000:00:02.0", 0, &op), -EPERM,
		     "an unbound device: administrators only");
	cr_assert_eq(hotplug(n, "0000:00:02.0", 0, &op), -EPERM,
		     "devices = none touches no device");
	cr_assert(strstr(op.errmsg, "policy"), "%s", op.errmsg);
	cr_assert_eq(observe(root, 1), 0);
	cr_assert_eq(hotplug(root, "0000:00:01.0", 0, &op), -EPERM,
		     "an observer is read-only");
	cr_assert(strstr(op.errmsg, "observer"), "%s", op.errmsg);
	cr_assert_eq(bind(b, "0000:00:01.0", &dev), -EBUSY,
		     "a still has it");
	cr_assert_eq(observe(root, 0), 0);
	cr_assert_eq(hotplug(root, "0000:00:02.0", 0, &op), 0, "%s", op.errmsg);
	cr_assert_eq(hotplug(root, "0000:00:02.0", 1, &op), 0, "%s", op.errmsg);
	/* the owner may unplug its device, and plug back what it unplugged */
	cr_assert_eq(hotplug(a, "0000:00:01.0", 0, &op), 0, "%s", op.errmsg);
	cr_assert_eq(hotplug(b, "0000:00:01.0", 1, &op), -EPERM);
	cr_assert_eq(hotplug(a, "0000:00:01.0", 1, &op), 0, "%s", op.errmsg);
	cr_assert_eq(bind(b, "0000:00:01.0", &dev), 0, "back and free");
	core_session_free(a);
	core_session_free(b);
	core_session_free(n);
	core_session_free(root);
}

Test(sessions, device_fd_policy_answers_first)
{
	struct session_limits lim = { .max_ioas = 8, .max_mappings = 100,
				      .max_bytes_mapped = 1 << 20 };
	struct session *s = session(&lim);
	struct ioasid_op op;
	uint32_t dev;

	cr_assert_eq(bind(s, "0000:00:01.0", &dev), 0);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_GET_FD);
	op.dev_id = dev;
	cr_assert_eq(run(s, &op), -EPERM, "not EOPNOTSUPP: %s", op.errmsg);
	cr_assert(strstr(op.errmsg, "device-fds"), "%s", op.errmsg);
	core_session_free(s);
}

/* ---- fault records belong to the device's session ----------------------- */

static uint32_t bind_attach(struct session *s, const char *name, uint32_t ioas)
{
	struct ioasid_op op;
	uint32_t dev;

	cr_assert_eq(bind(s, name, &dev), 0);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_ATTACH);
	op.dev_id = dev;
	op.ioas_id = ioas;
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
	return dev;
}

/* DMA by a device whose group is not viable: the core records a fault */
static void dma_not_viable(struct session *s, uint32_t dev)
{
	static uint8_t buf[64];
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
	op.dev_id = dev;
	op.iova = 0x100000;
	op.length = sizeof(buf);
	op.out = buf;
	op.out_cap = sizeof(buf);
	cr_assert_eq(run(s, &op), -EFAULT, "%s", op.errmsg);
}

static uint32_t read_faults(struct session *s, struct ioasid_fault *f,
			    uint32_t cap)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_FAULT_READ);
	op.out = f;
	op.out_cap = cap * (uint32_t)sizeof(*f);
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
	return op.out_len / (uint32_t)sizeof(*f);
}

static uint64_t faults_lost(struct session *s)
{
	struct ioasid_status st;
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_STATUS);
	op.out = &st;
	op.out_cap = sizeof(st);
	cr_assert_eq(run(s, &op), 0);
	return st.faults_lost;
}

Test(sessions, departed_client_cannot_starve_fault_records)
{
	struct session_limits lim = { .max_ioas = 8, .max_mappings = 100,
				      .max_bytes_mapped = 1 << 20 };
	struct session *a = session(&lim), *b = session(&lim);
	static struct ioasid_fault f[512];
	uint32_t ioas = ioas_alloc(a), dev;
	struct ioasid_op op;

	/* 0000:00:02.0 shares group 2 with 0000:00:02.1, left unattached */
	dev = bind_attach(a, "0000:00:02.0", ioas);
	for (int i = 0; i < 300; i++)
		dma_not_viable(a, dev);
	cr_assert_eq(faults_lost(a), 300 - 256, "an overflow is counted");
	cr_assert_eq(faults_lost(b), 0, "and only for its session");
	cr_assert_eq(read_faults(b, f, 512), 0, "b sees none of a's");
	core_session_free(a);		/* leaves 256 records unread */

	ioas = ioas_alloc(b);
	dev = bind_attach(b, "0000:00:02.0", ioas);
	dma_not_viable(b, dev);
	cr_assert_eq(read_faults(b, f, 512), 1, "b's own record is there");
	cr_assert_eq(f[0].dev_id, dev);
	cr_assert_eq(f[0].reason, IOASID_FAULT_GROUP_NOT_VIABLE);
	/* unbinding takes the device's queued records with it */
	dma_not_viable(b, dev);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_UNBIND);
	op.dev_id = dev;
	cr_assert_eq(run(b, &op), 0, "%s", op.errmsg);
	dev = bind_attach(b, "0000:00:02.0", ioas);
	cr_assert_eq(read_faults(b, f, 512), 0, "purged at unbind");
	core_session_free(b);
}

/* ---- events: observers hear every session, others only their own ------- */

static void subscribe(struct session *s, uint32_t groups)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_SUBSCRIBE);
	op.flags = groups;
	cr_assert_eq(run(s, &op), 0, "%s", op.errmsg);
}

/* The next event of @s must be @type about session @about; returns it. */
static struct ioasid_event next_event(struct session *s, uint32_t type,
				      const struct session *about)
{
	struct ioasid_event ev;

	cr_assert_eq(core_session_pop_event(s, &ev), 0, "an event of type %u",
		     type);
	cr_assert_eq(ev.type, type, "type %u, expected %u", ev.type, type);
	cr_assert_eq(ev.session_id, core_session_id(about));
	cr_assert_eq(ev.pid, about->pid);
	cr_assert_eq(ev.uid, about->uid);
	return ev;
}

static void no_event(struct session *s, const char *why)
{
	struct ioasid_event ev;

	cr_assert_eq(core_session_pop_event(s, &ev), -EAGAIN,
		     "%s: got an event of type %u", why, ev.type);
}

Test(sessions, observers_hear_every_session_others_only_their_own)
{
	const uint32_t all = IOASID_EVENT_GROUP_FAULT |
			     IOASID_EVENT_GROUP_DEVICE |
			     IOASID_EVENT_GROUP_COHERENCY |
			     IOASID_EVENT_GROUP_SESSION;
	struct session_limits admin = { .may_observe = 1 };
	struct session *root = session(&admin), *a = session(NULL);
	struct session *b = session(NULL), *c;
	struct ioasid_event ev;
	uint32_t ioas, nic, gpu;
	static uint8_t buf[64];
	struct ioasid_op op;

	core_session_set_owner(root, 1, 0, "ioasidctl");
	core_session_set_owner(a, 4242, 1000, "qemu");
	core_session_set_owner(b, 4343, 2000, "crosvm");
	cr_assert_eq(observe(root, 1), 0);
	subscribe(root, all);
	subscribe(a, all);
	subscribe(b, all);

	/* a session starts: only the observer hears it */
	cr_assert_eq(core_session_new(core, NULL, &c), 0);
	core_session_set_owner(c, 4444, 3000, "cloud-hypervisor");
	ev = next_event(root, IOASID_EVENT_SESSION_START, c);
	cr_assert_eq(ev.id, core_session_id(c));
	cr_assert_str_eq(ev.name, "cloud-hypervisor");
	no_event(a, "another session's start");
	no_event(b, "another session's start");

	/* a's coherency change and fault: a and the observer */
	ioas = ioas_alloc(a);
	nic = bind_attach(a, "0000:00:01.0", ioas);
	gpu = bind_attach(a, "0000:01:00.0", ioas);
	ev = next_event(a, IOASID_EVENT_DEVICE_COHERENCY, a);
	cr_assert_eq(ev.id, gpu);
	ev = next_event(root, IOASID_EVENT_DEVICE_COHERENCY, a);
	cr_assert_str_eq(ev.name, "0000:01:00.0");
	ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
	op.dev_id = nic;
	op.iova = 0x900000;
	op.length = sizeof(buf);
	op.out = buf;
	op.out_cap = sizeof(buf);
	cr_assert_eq(run(a, &op), -EFAULT);
	ev = next_event(a, IOASID_EVENT_FAULT, a);
	cr_assert_eq(ev.iova, 0x900000);
	ev = next_event(root, IOASID_EVENT_FAULT, a);
	cr_assert_eq(ev.id, nic);
	cr_assert_eq(ev.iova, 0x900000);
	no_event(b, "another tenant's faults and coherency");
	no_event(a, "nothing more");

	/* an observer that did not subscribe to a group hears none of it */
	subscribe(root, IOASID_EVENT_GROUP_SESSION);
	cr_assert_eq(run(a, &op), -EFAULT);
	no_event(root, "not subscribed to faults");
	(void)next_event(a, IOASID_EVENT_FAULT, a);

	/* the end of a session: the observer only */
	{
		uint32_t id = core_session_id(c);

		core_session_free(c);
		cr_assert_eq(core_session_pop_event(root, &ev), 0);
		cr_assert_eq(ev.type, IOASID_EVENT_SESSION_END);
		cr_assert_eq(ev.id, id);
		cr_assert_eq(ev.session_id, id);
		cr_assert_eq(ev.pid, 4444);
		cr_assert_eq(ev.uid, 3000);
	}
	no_event(b, "another session's end");
	core_session_free(b);
	core_session_free(a);
	core_session_free(root);
}
