/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Remote transport: talks to ioasidd (being built). */
#include <errno.h>

#include "transport/transport.h"

static int remote_open(struct ioasid_ctx *ctx, const char *uri, void **priv)
{
	return -EPROTONOSUPPORT;
}

const struct transport_ops transport_remote = {
	.name = "remote",
	.open = remote_open,
};
