/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of backends a URI can name. */
#include <string.h>

#include "backends/backend.h"
#include "util/macros.h"

static const struct backend_ops *const backends[] = {
	&backend_sim,
	&backend_iommufd,
	&backend_vfio_type1,
};

const struct backend_ops *backend_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}
