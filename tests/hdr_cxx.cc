/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each public header must compile alone in C++ too. */
#include <libioasid.h>
#include <ioasid/ioasid.h>
#include <ioasid/proto.h>

int main()
{
	struct ioasid_ctx *ctx = nullptr;
	return ioasid_unref(ctx) != nullptr;
}
