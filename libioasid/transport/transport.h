/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The transport seam: how a context reaches the core.
 *
 *   embedded.c  the core lives in this process (default)
 *   remote.c    the core lives in ioasidd, reached over a socket
 *
 * Only ctx.c calls through this interface; transports call the
 * core (embedded) or the protocol code (remote), nothing else.
 */
#ifndef IOASID_TRANSPORT_H
#define IOASID_TRANSPORT_H

#include "op/op.h"

struct log_sink;

struct transport_ops {
	const char *name;
	/*
	 * uri: the URI after "unix:" (remote) or all of it (embedded); the
	 * transport logs to @log (the context's, outliving it) and writes
	 * why it failed to @errmsg.
	 */
	int (*open)(const struct log_sink *log, const char *uri, void **priv,
		    char *errmsg, size_t errlen);
	void (*close)(void *priv);
	/* Run one op; returns 0 or a negative errno (op->errmsg set). */
	int (*call)(void *priv, struct ioasid_op *op);
	/* The backend's name ("sim", "iommufd", ...). */
	const char *(*backend_name)(void *priv);
	/* Pollable fd that becomes readable when events are queued. */
	int (*event_fd)(void *priv);
	/* Take one queued event: 0, or -EAGAIN when none. */
	int (*event_read)(void *priv, struct ioasid_event *ev);
	/*
	 * Optional (embedded): the state image of the context in a new
	 * sealed memfd, *memfd (proto/image.h); 0 or -errno and @errmsg.
	 */
	int (*export_image)(void *priv, int *memfd, char *errmsg,
			    size_t errlen);
	/* Optional (embedded): open from an image instead of a URI. */
	int (*import_image)(const struct log_sink *log, int memfd, void **priv,
			    char *errmsg, size_t errlen);
};

/* Close the descriptors a state image names: 0 or -errno (@errmsg). */
int embedded_image_abandon(int memfd, char *errmsg, size_t errlen);

struct core;
/* The core behind an embedded transport's @priv (for tests). */
struct core *embedded_transport_core(void *priv);
/*
 * For tests: one request to ioasidd exactly as @op says, past the KVM
 * side that the remote transport otherwise does here first.
 */
int remote_transport_send(void *priv, struct ioasid_op *op);

/*
 * The URI's session parameters (api_session.c): @reconnect, the seconds
 * a lost connection is dialled again (as $IOASID_RECONNECT, which it
 * overrides; NULL: unchanged), and @token_file (NULL: none), rewritten
 * with the new token whenever a resume reclaims the session.  0, or
 * -EINVAL / -ENOMEM with the reason in @why.
 */
int remote_session_options(void *priv, const char *reconnect,
			   const char *token_file, char *why, size_t whylen);

extern const struct transport_ops transport_embedded;
extern const struct transport_ops transport_remote;

#endif
