/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The transport seam: how a context reaches the core.
 *
 *   embedded.c  the core lives in this process (default)
 *   remote.c    the core lives in ioasidd, reached over a socket
 *
 * Only ctx.c and api.c call through this interface; transports call the
 * core (embedded) or the protocol code (remote), nothing else.
 */
#ifndef IOASID_TRANSPORT_H
#define IOASID_TRANSPORT_H

#include "core/op.h"

struct ioasid_ctx;

struct transport_ops {
	const char *name;
	/* arg: the URI after "sim:" / "unix:" etc. */
	int (*open)(struct ioasid_ctx *ctx, const char *uri, void **priv);
	void (*close)(void *priv);
	/* Run one op; returns 0 or a negative errno (op->errmsg set). */
	int (*call)(void *priv, struct ioasid_op *op);
	/* The backend's name ("sim", "iommufd", ...). */
	const char *(*backend_name)(void *priv);
	/* Pollable fd that becomes readable when events are queued. */
	int (*event_fd)(void *priv);
	/* Take one queued event: 0, or -EAGAIN when none. */
	int (*event_read)(void *priv, struct ioasid_event *ev);
};

struct core;
/* The core behind an embedded context (ioasidd serves it); else NULL. */
struct core *embedded_core(struct ioasid_ctx *ctx);

extern const struct transport_ops transport_embedded;
extern const struct transport_ops transport_remote;

#endif
