/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: the wire codec (libioasid/proto/codec.c), both directions.
 *
 * Input: a 4-byte header, then one packet exactly as received.
 *   byte 0   bit 0-1: descriptors received with it (0..IOASID_MAX_FDS)
 *            bit 2:   0 a request (the daemon's side), 1 a reply or event
 *                     (the client's side)
 *   byte 1   replies: the command the client had sent
 *   byte 2-3 replies: the caller's result capacity (OUT_CAP), LE
 *
 * Oracles beyond the sanitizers:
 *   - a request that parses decodes to an op that encodes again, and that
 *     encoding parses and decodes to the same op (the codec loses nothing);
 *   - a reply decoded for a request writes only the caller's buffer (it
 *     is allocated at exactly the capacity, so ASan sees one byte more),
 *     its result is 0 or a small negative errno, its length is within
 *     the capacity except for EMSGSIZE, and a descriptor comes out only
 *     where the command returns one.
 * A broken oracle aborts: a finding like any sanitizer report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "proto/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)							\
	do {								\
		fprintf(stderr, "fuzz_codec: " __VA_ARGS__);		\
		fputc('\n', stderr);					\
		abort();						\
	} while (0)

/* Real descriptors for FD_INDEX (the encoder checks they are open). */
static int fds[IOASID_MAX_FDS] = { -1, -1 };

static void init_fds(void)
{
	for (int i = 0; i < IOASID_MAX_FDS; i++)
		if (fds[i] < 0)
			fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void same_op(const struct ioasid_op *a, const struct ioasid_op *b)
{
	if (a->cmd != b->cmd || a->ioas_id != b->ioas_id ||
	    a->ioas_id2 != b->ioas_id2 || a->dev_id != b->dev_id ||
	    a->vm_id != b->vm_id || a->file_id != b->file_id ||
	    a->flags != b->flags || a->mode != b->mode ||
	    a->iova != b->iova || a->length != b->length ||
	    a->offset != b->offset || a->fd != b->fd || a->fd2 != b->fd2 ||
	    a->out_cap != b->out_cap || a->in_len != b->in_len ||
	    strcmp(a->name, b->name) ||
	    (a->in_len && memcmp(a->in, b->in, a->in_len)))
		FAIL("request %s changed in a decode/encode/decode round trip",
		     proto_cmd_name(a->cmd));
}

static void request(const uint8_t *pkt, size_t len, unsigned int nfds)
{
	static uint64_t outbuf[PROTO_DECODE_BUF / 8];
	struct ioasid_op op, again;
	int efds[IOASID_MAX_FDS];
	unsigned int enfds;
	struct proto_msg m, m2;
	struct nl_msg *msg;
	const void *buf;
	size_t blen;
	char why[IOASID_ERRMSG_MAX];
	int r;

	if (proto_parse(pkt, len, nfds, PROTO_FROM_CLIENT, &m, why,
			sizeof(why)) < 0)
		return;
	proto_decode_request(&m, fds, &op, outbuf);
	r = proto_encode_request(&op, m.seq, &msg, efds, &enfds);
	if (r < 0) {
		/* only what cannot travel: too much input for one message */
		if (r != -E2BIG)
			FAIL("a parsed %s does not encode again: %s",
			     proto_cmd_name(m.cmd), op.errmsg);
		return;
	}
	buf = proto_msg_data(msg, &blen);
	r = proto_parse(buf, blen, enfds, PROTO_FROM_CLIENT, &m2, why,
			sizeof(why));
	if (r < 0)
		FAIL("our own encoding of %s does not parse: %s",
		     proto_cmd_name(m.cmd), why);
	proto_decode_request(&m2, efds, &again, outbuf);
	same_op(&op, &again);
	nlmsg_free(msg);
}

static void reply(const uint8_t *pkt, size_t len, unsigned int nfds,
		  uint32_t cmd, uint32_t cap)
{
	const struct proto_cmd_policy *pol;
	struct ioasid_event ev;
	struct ioasid_op op;
	struct proto_msg m;
	char why[IOASID_ERRMSG_MAX];
	unsigned char *out;
	int result = 1;

	if (proto_parse(pkt, len, nfds, PROTO_FROM_DAEMON, &m, why,
			sizeof(why)) < 0)
		return;
	if (m.cmd == IOASID_CMD_EVENT) {
		proto_decode_event(&m, &ev);
		return;
	}
	pol = proto_cmd_policy(cmd);
	if (!pol || !(pol->flags & PROTO_CMD_REQUEST))
		return;
	ioasid_op_init(&op, cmd);
	/* exactly the caller's capacity: one byte more is an ASan report */
	out = malloc(cap ? cap : 1);
	if (!out)
		return;
	op.out = out;
	op.out_cap = cap;
	op.length = cap;		/* DMA: as many bytes as the buffer */
	op.in_len = cap;		/* MAP_BATCH: entries sent */
	if (proto_decode_reply(&m, fds, &op, &result) == 0) {
		if (result > 0 || result <= -4096)
			FAIL("result %d is not 0 or -errno", result);
		if (op.out_len > cap && result != -EMSGSIZE)
			FAIL("%s: out_len %u beyond the capacity %u (%d)",
			     proto_cmd_name(cmd), op.out_len, cap, result);
		if (op.out_fd >= 0 &&
		    (result || !(pol->flags & PROTO_CMD_FD_OUT)))
			FAIL("%s: a descriptor where none belongs",
			     proto_cmd_name(cmd));
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int nfds;
	uint8_t *pkt;
	size_t len;

	if (size < 4)
		return 0;
	init_fds();
	nfds = data[0] & 3;
	if (nfds > IOASID_MAX_FDS)
		nfds = IOASID_MAX_FDS;
	/* a copy of exactly the packet: reads past it are ASan reports */
	len = size - 4;
	pkt = malloc(len ? len : 1);
	if (!pkt)
		return 0;
	memcpy(pkt, data + 4, len);
	if (data[0] & 4)
		reply(pkt, len, nfds, data[1],
		      (uint32_t)data[2] | (uint32_t)data[3] << 8);
	else
		request(pkt, len, nfds);
	free(pkt);
	return 0;
}
