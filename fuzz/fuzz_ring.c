/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the daemon's end of the request ring
 * (libioasid/proto/ring.c), against a client that writes anything
 * anywhere in the ring between the daemon's reads.
 *
 * Input: records of nine bytes, an opcode and a little-endian u64:
 *   op % 4 == 0  the client writes the u64's low 4 (op & 4) or 8 bytes
 *                at byte (arg >> 32) % RING_SIZE of the ring
 *   op % 4 == 1  the client publishes arg % 256 more requests (sq_tail)
 *   op % 4 == 2  the client consumes arg % 256 completions (cq_head)
 *   op % 4 == 3  the daemon takes up to arg % 128 requests, completing
 *                each
 * Oracles: ring_take() returns only 0, -EAGAIN, -ENOSPC or -EPROTO, and
 * -EPROTO for ever after the first (RING_BROKEN set then); the daemon's
 * private indexes move by one per request taken and completion posted,
 * whatever the client wrote; what it took is what the slot held; and
 * nothing outside the ring is touched (a PROT_NONE page follows it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proto/ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ring_consumer rc;
	struct ring_header *h;
	unsigned char *area;
	bool broken = false;
	uint32_t taken = 0, completed = 0;

	/* the ring, then a page nobody may touch */
	area = mmap(NULL, RING_SIZE + 4096, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED ||
	    mprotect(area, RING_SIZE, PROT_READ | PROT_WRITE) < 0)
		abort();
	ring_consumer_init(&rc, area);
	h = (struct ring_header *)area;
	for (size_t pos = 0; pos + 9 <= size; pos += 9) {
		uint8_t op = data[pos];
		uint64_t arg;

		memcpy(&arg, data + pos + 1, 8);
		switch (op % 4) {
		case 0:
			memcpy(area + (arg >> 32) % (RING_SIZE - 7), &arg,
			       op & 4 ? 4 : 8);
			break;
		case 1:
			h->sq_tail += (uint32_t)(arg % 256);
			break;
		case 2:
			h->cq_head += (uint32_t)(arg % 256);
			break;
		case 3:
			for (uint64_t k = 0; k < arg % 128; k++) {
				struct ring_cqe cqe = { 0 };
				struct ring_sqe s, *slot;
				uint32_t head = rc.sq_head;
				int r;

				slot = (struct ring_sqe *)(area + RING_SQ_OFF) +
				       head % RING_ENTRIES;
				r = ring_take(&rc, &s);
				if (r != 0 && r != -EAGAIN && r != -ENOSPC &&
				    r != -EPROTO)
					abort();
				if (broken && r != -EPROTO)
					abort();
				if (r == -EPROTO) {
					/* set when it broke (the client may
					 * clear it later: its own loss) */
					if (!broken && !(h->flags & RING_BROKEN))
						abort();
					broken = true;
					break;
				}
				if (r < 0)
					break;
				/* one copy of what the slot held */
				if (rc.sq_head != head + 1 ||
				    memcmp(&s, slot, offsetof(struct ring_sqe,
							      reserved)))
					abort();
				taken++;
				cqe.user_data = s.user_data;
				cqe.result = -EINVAL;
				memcpy(cqe.errmsg, "fuzz", 5);
				ring_complete(&rc, &cqe);
				completed++;
				if (rc.cq_tail != completed ||
				    rc.sq_head != taken)
					abort();
			}
			break;
		}
	}
	munmap(area, RING_SIZE + 4096);
	return 0;
}
