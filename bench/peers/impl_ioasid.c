/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peers workload on libioasid/core/iova_tree.c: a mapping is a MAPPING
 * area whose file offset is the address it translates to, a lookup is
 * iova_tree_lookup(), a removal iova_tree_remove() of the mapping's range.
 */
#include <stdlib.h>

#include "../../libioasid/core/iova_tree.h"
#include "peers.h"

static void *ioasid_create(uint64_t n)
{
	struct iova_tree *t;

	(void)n;
	return iova_tree_new(NULL, &t) ? NULL : t;
}

static int ioasid_insert(void *s, uint64_t iova, uint64_t len, uint64_t addr)
{
	struct iova_area a = {
		.iova = iova,
		.length = len,
		.offset = addr,
		.prot = IOVA_PROT_READ | IOVA_PROT_WRITE,
		.kind = IOVA_AREA_MAPPING,
	};

	return iova_tree_insert(s, &a);
}

static int ioasid_lookup(void *s, uint64_t iova, uint64_t *out)
{
	struct iova_area a;
	int ret = iova_tree_lookup(s, iova, &a);

	if (!ret)
		*out = a.offset + (iova - a.iova);
	return ret;
}

static int ioasid_remove(void *s, uint64_t iova, uint64_t len)
{
	uint64_t removed;
	int ret = iova_tree_remove(s, iova, len, IOVA_TREE_MAPPINGS, NULL,
				   NULL, &removed);

	return ret ? ret : removed != len;
}

static void ioasid_destroy(void *s)
{
	iova_tree_free(s);
}

const struct peers_impl peers_impl = {
	.name = "ioasid",
	.create = ioasid_create,
	.insert = ioasid_insert,
	.lookup = ioasid_lookup,
	.remove = ioasid_remove,
	.destroy = ioasid_destroy,
};
