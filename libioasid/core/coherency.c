/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coherency: which devices do non-coherent DMA, and which VMs therefore
 * need WBINVD.  Judged from the domain a device is really attached to —
 * unlike the kernel's vfio_file_enforced_coherent(), which answers from
 * the IOMMU's capability (see docs/coherency.md for where that differs).
 */
#include <stdio.h>

#include "core/base.h"
#include "core/coherency.h"
#include "core/device.h"
#include "core/domain.h"
#include "core/vm.h"
#include "util/log.h"

bool coherency_may_nosnoop(const struct device *dev)
{
	uint32_t f = dev->inv->info.flags;

	/* unknown config space: assume the worst */
	return (f & (IOASID_DEVICE_NO_SNOOP | IOASID_DEVICE_NO_SNOOP_UNKNOWN)) &&
	       !dev->hinted;
}

static void emit(struct core *core, struct session *s, uint32_t type,
		 uint32_t id, uint32_t arg, const char *name)
{
	struct ioasid_event ev = { .type = type, .id = id, .arg = arg };

	snprintf(ev.name, sizeof(ev.name), "%s", name ? name : "");
	if (s)
		core_emit_to(s, IOASID_EVENT_GROUP_COHERENCY, &ev);
}

/* A VM's non-coherent count moved by @delta; register on 0->1. */
static void vm_account(struct core *core, struct vm *vm, int delta)
{
	uint32_t before = vm->nr_noncoherent;

	vm->nr_noncoherent += (uint32_t)delta;
	if (!before && vm->nr_noncoherent) {
		vm->flags |= IOASID_VM_WBINVD_NEEDED;
		vm->registrations++;
		info(core->log, "VM %u: non-coherent DMA registered (WBINVD "
		     "must flush)", vm->id);
		emit(core, vm->owner, IOASID_EVENT_VM_COHERENCY, vm->id, 1,
		     NULL);
	} else if (before && !vm->nr_noncoherent) {
		vm->flags &= ~(uint32_t)IOASID_VM_WBINVD_NEEDED;
		info(core->log, "VM %u: non-coherent DMA unregistered",
		     vm->id);
		emit(core, vm->owner, IOASID_EVENT_VM_COHERENCY, vm->id, 0,
		     NULL);
	}
}

void coherency_update(struct core *core, struct device *dev)
{
	bool now = dev->ioas && dev->domain && !dev->domain->enforce &&
		   coherency_may_nosnoop(dev);

	if (now == dev->noncoherent)
		return;
	dev->noncoherent = now;
	emit(core, dev->owner, IOASID_EVENT_DEVICE_COHERENCY, dev->dev_id,
	     now, dev->inv->info.name);
	if (dev->vm)
		vm_account(core, dev->vm, now ? 1 : -1);
}

void coherency_join_vm(struct core *core, struct device *dev, struct vm *vm)
{
	dev->vm = vm;
	vm->nr_devices++;
	if (dev->noncoherent)
		vm_account(core, vm, 1);
}

void coherency_leave_vm(struct core *core, struct device *dev)
{
	struct vm *vm = dev->vm;

	if (dev->noncoherent)
		vm_account(core, vm, -1);
	vm->nr_devices--;
	dev->vm = NULL;
}
