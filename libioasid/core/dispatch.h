/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command dispatch: which handler runs an op, under which lock.  Its entry
 * is core_call() (declared in core/core.h): the core's single door.
 */
#ifndef IOASID_CORE_DISPATCH_H
#define IOASID_CORE_DISPATCH_H

#include "core/base.h"

struct ioas;

/*
 * What every command's handler looks like (its row in <ioasid/ops.def>
 * names it): @ioas is the IOAS that op->ioas_id names when the row says
 * NEEDS_IOAS (checked, and the caller's unless READ_ONLY lets an observer
 * read anyone's), NULL otherwise.
 */
typedef int dispatch_fn(struct session *s, struct ioas *ioas,
			struct ioasid_op *op);

/* Destroy every object of @s (core->lock held). */
void dispatch_release_session(struct session *s);

#endif
