/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command dispatch: which handler runs an op, under which lock.  Its entry
 * is core_call() (declared in core/core.h): the core's single door.
 */
#ifndef IOASID_CORE_DISPATCH_H
#define IOASID_CORE_DISPATCH_H

#include "core/base.h"

/* Destroy every object of @s (core->lock held). */
void dispatch_release_session(struct session *s);

#endif
