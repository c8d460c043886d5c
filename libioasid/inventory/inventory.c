/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The inventory: owning arrays of IOMMU units and devices, and the few
 * helpers both producers (discovery/ and the simulated topology) use to
 * fill it, so that the two cannot drift apart in how they build it.
 *
 * A bottom module: it includes nothing of the library but util/.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inventory/inventory.h"
#include "util/macros.h"

static void release_iommu(struct inv_iommu *iommu)
{
	free(iommu->reserved);
	iommu->reserved = NULL;
	iommu->nr_reserved = 0;
}

static void release_device(struct inv_device *dev)
{
	free(dev->reserved);
	dev->reserved = NULL;
	dev->nr_reserved = 0;
}

void inventory_release(struct inventory *inv)
{
	if (!inv)
		return;
	for (uint32_t i = 0; i < inv->nr_iommus; i++)
		release_iommu(&inv->iommus[i]);
	for (uint32_t i = 0; i < inv->nr_devices; i++)
		release_device(&inv->devices[i]);
	free(inv->iommus);
	free(inv->devices);
	memset(inv, 0, sizeof(*inv));
}

struct inv_iommu *inventory_find_iommu(struct inventory *inv, const char *name)
{
	if (!inv || !name)
		return NULL;
	for (uint32_t i = 0; i < inv->nr_iommus; i++)
		if (!strcmp(inv->iommus[i].info.name, name))
			return &inv->iommus[i];
	return NULL;
}

struct inv_device *inventory_find_device(struct inventory *inv,
					 const char *name)
{
	if (!inv || !name)
		return NULL;
	for (uint32_t i = 0; i < inv->nr_devices; i++)
		if (!strcmp(inv->devices[i].info.name, name))
			return &inv->devices[i];
	return NULL;
}

/*
 * Grow an array by one zeroed element.  The arrays stay small (a machine
 * has tens of devices), so growing one at a time keeps this obvious.
 */
static int grow(void **array, uint32_t *nr, size_t elem_size, void **elem)
{
	char *bigger;

	if (*nr == UINT32_MAX)
		return -EOVERFLOW;
	bigger = realloc(*array, ((size_t)*nr + 1) * elem_size);
	if (!bigger)
		return -ENOMEM;
	*array = bigger;
	*elem = bigger + (size_t)*nr * elem_size;
	memset(*elem, 0, elem_size);
	(*nr)++;
	return 0;
}

int inventory_add_iommu(struct inventory *inv, struct inv_iommu **iommu)
{
	void *elem;
	int ret;

	ret = grow((void **)&inv->iommus, &inv->nr_iommus,
		   sizeof(*inv->iommus), &elem);
	if (ret)
		return ret;
	*iommu = elem;
	(*iommu)->info.size = sizeof((*iommu)->info);
	return 0;
}

int inventory_add_device(struct inventory *inv, struct inv_device **dev)
{
	void *elem;
	int ret;

	ret = grow((void **)&inv->devices, &inv->nr_devices,
		   sizeof(*inv->devices), &elem);
	if (ret)
		return ret;
	*dev = elem;
	(*dev)->info.size = sizeof((*dev)->info);
	(*dev)->info.group = ~0U;
	return 0;
}

/* Do [a] and [b] overlap or touch, so that they form one range? */
static int ranges_join(const struct ioasid_iova_range *a,
		       const struct ioasid_iova_range *b)
{
	if (a->start > b->start)
		return ranges_join(b, a);
	return a->last == UINT64_MAX || b->start <= a->last + 1;
}

/*
 * Add [start, last] to a sorted list of disjoint, non-touching ranges,
 * merging whatever it overlaps or touches.  The list stays sorted, so
 * users can compare it with memcmp-like exactness.
 */
int inventory_add_range(struct ioasid_iova_range **ranges, uint32_t *nr,
			uint64_t start, uint64_t last)
{
	struct ioasid_iova_range add = { .start = start, .last = last };
	struct ioasid_iova_range *list = *ranges;
	uint32_t first, end, i;
	void *slot;
	int ret;

	if (start > last)
		return -EINVAL;
	/* first: the first range not entirely below and apart from add */
	for (first = 0; first < *nr; first++)
		if (list[first].last >= start || ranges_join(&list[first], &add))
			break;
	/* end: one past the last range that joins add */
	for (end = first; end < *nr && ranges_join(&list[end], &add); end++) {
		add.start = min_t(uint64_t, add.start, list[end].start);
		add.last = max_t(uint64_t, add.last, list[end].last);
	}
	if (end > first) {
		/* replace list[first..end) by the union */
		list[first] = add;
		memmove(&list[first + 1], &list[end],
			(*nr - end) * sizeof(*list));
		*nr -= end - first - 1;
		return 0;
	}
	ret = grow((void **)ranges, nr, sizeof(**ranges), &slot);
	if (ret)
		return ret;
	list = *ranges;
	for (i = *nr - 1; i > first; i--)
		list[i] = list[i - 1];
	list[first] = add;
	return 0;
}

/* Fill each unit's nr_devices from the devices that name it. */
void inventory_count_devices(struct inventory *inv)
{
	for (uint32_t i = 0; i < inv->nr_iommus; i++)
		inv->iommus[i].info.nr_devices = 0;
	for (uint32_t i = 0; i < inv->nr_devices; i++) {
		struct inv_iommu *unit;

		unit = inventory_find_iommu(inv, inv->devices[i].info.iommu);
		if (unit)
			unit->info.nr_devices++;
	}
}

static int cmp_iommu(const void *a, const void *b)
{
	const struct inv_iommu *x = a, *y = b;

	return strcmp(x->info.name, y->info.name);
}

static int cmp_device(const void *a, const void *b)
{
	const struct inv_device *x = a, *y = b;

	return strcmp(x->info.name, y->info.name);
}

/* Order units and devices by name, so every scan lists them alike. */
void inventory_sort(struct inventory *inv)
{
	if (inv->nr_iommus > 1)
		qsort(inv->iommus, inv->nr_iommus, sizeof(*inv->iommus),
		      cmp_iommu);
	if (inv->nr_devices > 1)
		qsort(inv->devices, inv->nr_devices, sizeof(*inv->devices),
		      cmp_device);
}
