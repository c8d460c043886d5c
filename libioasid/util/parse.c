/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Number parsing shared by discovery/ and the simulated topology. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "util/parse.h"

int parse_u64(const char *s, int base, uint64_t *val)
{
	unsigned long long v;
	char *end;

	/* strtoull accepts leading blanks and a minus sign: we do not */
	if (!s || !isxdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	*val = v;
	return 0;
}
