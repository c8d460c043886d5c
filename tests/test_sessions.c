/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions on one core (what ioasidd gives each client), through the
 * internal core API: isolation (another client's ids are ENOENT), quotas,
 * the read-only observer view, and teardown of everything a session held.
 */
#include <errno.h>
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
