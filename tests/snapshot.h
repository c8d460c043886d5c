/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state a session sees, as bytes: every IOAS with its info, IOVA
 * ranges, domains, mapping walk and files; the devices; the VMs; and
 * (optionally) the status.  Two snapshots are equal when nothing the
 * session can see changed.  For criterion tests (asserts on misuse).
 */
#ifndef IOASID_TESTS_SNAPSHOT_H
#define IOASID_TESTS_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libioasid.h>

struct snap {
	char *buf;
	size_t len;
	FILE *f;
};

enum snap_flags {
	SNAP_STATUS = 1 << 0,	/* the status too (counts of every session) */
};

void snapshot_take(struct ioasid_ctx *ctx, struct snap *s, unsigned int flags);
bool snapshot_equal(const struct snap *a, const struct snap *b);
void snapshot_free(struct snap *s);
/*
 * Export @ctx and import the image: the new context, asserted to have
 * @ctx's snapshot (SNAP_STATUS), @what saying what that means.
 */
struct ioasid_ctx *snapshot_export_import(struct ioasid_ctx *ctx,
					  const char *what);

#endif
