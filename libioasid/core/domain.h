/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domains: attaching a bound device to an IOAS through a domain of the
 * IOAS, IOMMU groups, and the domains' dirty bits.
 *
 * Attaching puts a device in a domain of an IOAS: an existing domain of
 * the same coherency class that the backend accepts, or a new one (the
 * iommufd/QEMU loop).  A domain lives while a device is attached to it.
 * A group is viable (its devices may do DMA) when all its devices are
 * attached to one IOAS.
 */
#ifndef IOASID_CORE_DOMAIN_H
#define IOASID_CORE_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "op/op.h"

struct ioas;
struct device;
struct be_domain;

struct domain {
	uint32_t id;
	struct ioas *ioas;
	const struct inv_iommu *unit;	/* the unit it was created for */
	bool enforce;			/* coherency, fixed at creation */
	struct be_domain *be;
	uint32_t nr_devices;
	uint32_t nr_nested;		/* nested tables over it (stage 2) */
	bool tracking;			/* dirty tracking on in hardware */
	struct domain *next;		/* in core->domains */
};

int domain_attach(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int domain_replace(struct session *s, struct ioas *ioas, struct ioasid_op *op);
int domain_detach(struct session *s, struct ioas *ioas, struct ioasid_op *op);
/*
 * Detach an attached @dev: 0, or -errno when the backend refuses (the
 * device is still attached, nothing changed); with @op the reason goes
 * there, else to the log.
 */
int domain_detach_device(struct core *core, struct device *dev,
			 struct ioasid_op *op);
int domain_list(struct session *s, struct ioas *ioas, struct ioasid_op *op);

struct nested;
/*
 * The domain of nest-parent @ioas a nested table for @dev's IOMMU goes
 * over: an existing one on that unit of the class the IOAS's snoop mode
 * asks for, or a new one (no device in it yet).  Counted in nr_nested
 * until domain_put_parent().
 */
int domain_get_parent(struct session *s, struct device *dev,
		      struct ioas *ioas, struct domain **out,
		      struct ioasid_op *op);
void domain_put_parent(struct core *core, struct domain *d);
/*
 * Attach @dev to nested table @n (on its parent IOAS, through its
 * stage-2 domain), or with @replace move it there from wherever it is
 * attached, without a gap.  On failure nothing changed.
 */
int domain_attach_nested(struct session *s, struct device *dev,
			 struct nested *n, bool replace, struct ioasid_op *op);
/*
 * For attachments other than the device's own (its PASIDs): put @dev in
 * a domain of @ioas of coherency class @enforce through @join->fn, which
 * asks the backend (0, -EINVAL "incompatible: try another", -errno):
 * an existing domain that takes it, else a new one (nr_devices counts
 * every attachment).  0 and *@out, or -errno with the reason in @op.
 */
struct domain_join {
	int (*fn)(struct core *core, struct device *dev, struct be_domain *d,
		  void *arg);
	void *arg;
};
int domain_join_any(struct core *core, struct device *dev, struct ioas *ioas,
		    bool enforce, const struct domain_join *join,
		    struct domain **out, struct ioasid_op *op);
/* One attachment of @d less; the last frees it. */
void domain_put(struct core *core, struct domain *d);
/* The coherency class @dev needs in @ioas (its snoop mode). */
int domain_want_enforce(const struct device *dev, const struct ioas *ioas,
			bool *enforce, struct ioasid_op *op);
int domain_dirty_read(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op);
/* Dirty tracking of every domain of the IOAS, and of those it gets. */
int domain_dirty_start(struct session *s, struct ioas *ioas,
		       struct ioasid_op *op);
int domain_dirty_stop(struct session *s, struct ioas *ioas,
		      struct ioasid_op *op);

#endif
