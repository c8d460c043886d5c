/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOASID_CMD_MAP_BATCH: many ranges of one file in one message, all or
 * nothing.  One message per mapping costs a round trip each (two context
 * switches, ~20 us on a busy host); a batch pays it once.
 *
 * The core gets the command first.  While it does not know it yet
 * ("unknown command"), the daemon runs the batch as MAP_FILE per entry
 * and, when one fails, unmaps the entries it already mapped, so nothing
 * is half applied.  Once the core handles MAP_BATCH this path is never
 * taken and can go.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ioasidd.h"
#include "proto/codec.h"

_Static_assert(PROTO_MAX_PAYLOAD / sizeof(struct proto_map_entry) <=
	       PROTO_MAX_PAYLOAD / sizeof(uint64_t), "IOVAs fit the results");

static bool core_lacks(const struct ioasid_op *op, int r)
{
	char unknown[64];

	snprintf(unknown, sizeof(unknown), "unknown command %u", op->cmd);
	return r == -EOPNOTSUPP && !strcmp(op->errmsg, unknown);
}

static void unmap_range(struct session *s, uint32_t ioas, uint64_t iova,
			uint64_t length)
{
	struct ioasid_op op;

	ioasid_op_init(&op, IOASID_CMD_UNMAP);
	op.ioas_id = ioas;
	op.iova = iova;
	op.length = length;
	core_call(s, &op);
}

/* Map entry @e as MAP_FILE; its IOVA in *iova. */
static int map_one(struct session *s, const struct ioasid_op *batch,
		   const struct proto_map_entry *e, uint64_t *iova,
		   char *errmsg)
{
	struct ioasid_op op;
	int r;

	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = batch->ioas_id;
	op.fd = batch->fd;
	op.flags = batch->flags;
	op.iova = e->iova;
	op.offset = e->offset;
	op.length = e->length;
	r = core_call(s, &op);
	*iova = op.out_iova;
	if (r < 0)
		memcpy(errmsg, op.errmsg, IOASID_ERRMSG_MAX);
	return r;
}

static int emulate(struct session *s, struct ioasid_op *op)
{
	const struct proto_map_entry *e = op->in;
	uint32_t nr = op->in_len / sizeof(*e), i;
	/* the daemon's result buffer: room for PROTO_MAX_PAYLOAD / 8 IOVAs */
	uint64_t *iovas = op->out, iova, bytes = 0;
	char why[IOASID_ERRMSG_MAX];
	int r = 0;

	if (op->in_len % sizeof(*e) || !nr)
		return op_fail(op, EINVAL, "MAP_BATCH needs whole entries of "
			       "%zu bytes", sizeof(*e));
	if (op->out_cap && op->out_cap < nr * sizeof(*iovas))
		return op_fail(op, EMSGSIZE, "room for %u IOVAs, %u entries",
			       op->out_cap / (uint32_t)sizeof(*iovas), nr);
	for (i = 0; i < nr && r == 0; i++) {
		r = map_one(s, op, &e[i], &iova, why);
		if (r == 0) {
			iovas[i] = iova;
			bytes += e[i].length;
		}
	}
	if (r < 0) {
		/* all or nothing: undo entries 0 .. i-2 */
		for (uint32_t k = 0; k + 1 < i; k++)
			unmap_range(s, op->ioas_id, iovas[k], e[k].length);
		op->out_len = 0;
		return op_fail(op, -r, "entry %u: %s", i - 1, why);
	}
	op->out_id = nr;
	op->out_bytes = bytes;
	op->out_len = op->out_cap ? nr * (uint32_t)sizeof(*iovas) : 0;
	return 0;
}

int map_batch(struct session *s, struct ioasid_op *op)
{
	int r = core_call(s, op);

	if (!core_lacks(op, r))
		return r;
	op->errmsg[0] = '\0';
	return emulate(s, op);
}
