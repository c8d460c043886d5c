/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each public header must compile alone, in strict C99. */
#include <libioasid.h>
#include <ioasid/ioasid.h>
#include <ioasid/proto.h>

int main(void)
{
	return 0;
}
