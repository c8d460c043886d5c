/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl kvm: the VMs of this session, whether each needs WBINVD, and
 * which devices on which domains make it so (show); and, for batches and
 * demos, create a VM and put devices in it (create, add, remove, policy).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ioasidctl.h"

static const char group_usage[] =
	"Usage: ioasidctl kvm [show|create|add|remove|policy] ...\n"
	"\n"
	"KVM VMs of this session (without a subcommand: show).  KVM makes\n"
	"the guest's WBINVD really flush caches only while a device in the\n"
	"VM may do non-coherent DMA: no-snoop enabled, on a domain that does\n"
	"not force snooping.\n"
	"\n"
	"Subcommands:\n";

/* What kvm show needs to explain a device. */
struct kvm_view {
	struct ioasid_device_info *devs;
	uint32_t nr_devs;
	struct ioasid_iommu_info *units;
	uint32_t nr_units;
};

static void view_free(struct kvm_view *v)
{
	free(v->devs);
	free(v->units);
}

static const struct ioasid_iommu_info *find_unit(const struct kvm_view *v,
						 const char *name)
{
	for (uint32_t i = 0; i < v->nr_units; i++)
		if (!strcmp(v->units[i].name, name))
			return &v->units[i];
	return NULL;
}

/* ---- why a device is coherent or not ------------------------------------- */

static void why_not_enforced(struct ctl *ctl, const struct kvm_view *v,
			     const struct ioasid_device_info *d, char *buf,
			     size_t len)
{
	const struct ioasid_iommu_info *u = find_unit(v, d->iommu);
	struct ioasid_ioas_info ioas;

	if (ioasid_ioas_get_info(ctl->ctx, d->ioas_id, &ioas) == 0 &&
	    ioas.snoop_mode == IOASID_SNOOP_ALLOW)
		snprintf(buf, len, "IOAS %u is in snoop mode allow",
			 d->ioas_id);
	else if (u && !(u->flags & IOASID_IOMMU_SNOOP_CONTROL))
		snprintf(buf, len, "its IOMMU %s has no snoop control",
			 d->iommu);
	else
		snprintf(buf, len, "the domain was created without "
			 "enforcement");
}

static void reason(struct ctl *ctl, const struct kvm_view *v,
		   const struct ioasid_device_info *d, char *buf, size_t len)
{
	char why[128];

	if (!d->ioas_id) {
		snprintf(buf, len, "not attached: it does no DMA");
	} else if (d->flags & IOASID_DEVICE_NONCOHERENT) {
		why_not_enforced(ctl, v, d, why, sizeof(why));
		snprintf(buf, len, "%s, and domain %u does not force snooping: "
			 "%s", d->flags & IOASID_DEVICE_NO_SNOOP ?
			 "Enable No Snoop is set" :
			 "its config space is unreadable, so no-snoop is "
			 "assumed", d->domain_id, why);
	} else if (d->flags & IOASID_DEVICE_NO_SNOOP_HINTED) {
		snprintf(buf, len, "the VMM promised it issues no no-snoop "
			 "DMA");
	} else if (!(d->flags & (IOASID_DEVICE_NO_SNOOP |
				 IOASID_DEVICE_NO_SNOOP_UNKNOWN))) {
		snprintf(buf, len, "Enable No Snoop is clear: all its DMA "
			 "snoops");
	} else {
		snprintf(buf, len, "domain %u on %s forces snooping",
			 d->domain_id, d->iommu);
	}
}

/* ---- show ---------------------------------------------------------------- */

static const char show_usage[] =
	"Usage: ioasidctl kvm show [--json]\n"
	"\n"
	"For each VM of this session: whether WBINVD must really flush, the\n"
	"device counts, and for each device its domain and why its DMA is\n"
	"coherent or not.  When ioasidd lets ioasidctl observe, the VMs of\n"
	"every client, each with the pid and uid of the client that bound\n"
	"it.\n";

static void json_vm_device(struct ctl *ctl, struct json *j,
			   const struct kvm_view *v,
			   const struct ioasid_device_info *d)
{
	char why[384];

	reason(ctl, v, d, why, sizeof(why));
	json_obj_begin(j, NULL);
	json_str(j, "name", d->name);
	json_u64(j, "dev_id", d->dev_id);
	json_id(j, "ioas", d->ioas_id);
	json_id(j, "domain", d->domain_id);
	json_str(j, "iommu", d->iommu);
	json_bool(j, "coherent", !(d->flags & IOASID_DEVICE_NONCOHERENT));
	json_str(j, "reason", why);
	json_bool(j, "kvm_file", d->flags & IOASID_DEVICE_KVM_FILE);
	json_obj_end(j);
}

static void json_vm(struct ctl *ctl, struct json *j, const struct kvm_view *v,
		    const struct ioasid_vm_info *vm)
{
	json_obj_begin(j, NULL);
	json_u64(j, "vm", vm->vm_id);
	if (ctl->observer)
		json_owner_fields(j, vm->owner_pid, vm->owner_uid);
	json_bool(j, "wbinvd_needed", vm->flags & IOASID_VM_WBINVD_NEEDED);
	json_bool(j, "forbid_noncoherent",
		  vm->flags & IOASID_VM_FORBID_NONCOHERENT);
	json_bool(j, "kvm_vfio_created",
		  vm->flags & IOASID_VM_KVM_VFIO_CREATED);
	json_u64(j, "nr_devices", vm->nr_devices);
	json_u64(j, "nr_noncoherent", vm->nr_noncoherent);
	json_bool(j, "kvm_told", vm->nr_kvm_files);
	json_u64(j, "nr_kvm_files", vm->nr_kvm_files);
	json_u64(j, "registrations", vm->registrations);
	json_arr_begin(j, "devices");
	for (uint32_t i = 0; i < v->nr_devs; i++)
		if (v->devs[i].vm_id == vm->vm_id)
			json_vm_device(ctl, j, v, &v->devs[i]);
	json_arr_end(j);
	json_obj_end(j);
}

/*
 * What KVM really knows: only the VFIO files in the VM's kvm-vfio device
 * (KVM_DEV_VFIO_FILE_ADD) tell it of a device, and it then judges that
 * device's coherency itself.  Simulated devices have no VFIO file.
 */
static void print_kvm_told(const struct ioasid_vm_info *vm)
{
	if (!vm->nr_devices)
		printf("  KVM told: nothing (no device in the VM)\n");
	else if (!vm->nr_kvm_files)
		printf("  KVM told: no (no device of the VM has a VFIO file, so "
		       "no KVM_DEV_VFIO_FILE_ADD ran;\n  KVM keeps treating "
		       "the guest's WBINVD as a no-op)\n");
	else
		printf("  KVM told: the VFIO files of %u of %u device(s) are in "
		       "its kvm-vfio device\n  (KVM_DEV_VFIO_FILE_ADD); KVM "
		       "judges their coherency itself, from their IOMMU\n",
		       vm->nr_kvm_files, vm->nr_devices);
}

static void id_cell(struct table *t, uint32_t id)
{
	if (id)
		table_cell(t, "%u", id);
	else
		table_cell(t, "-");
}

static int print_vm(struct ctl *ctl, const struct kvm_view *v,
		    const struct ioasid_vm_info *vm)
{
	static const char *const hdr[] = {
		"DEVICE", ">DEV", ">IOAS", ">DOMAIN", "IOMMU", "COHERENT",
		"KVM", "WHY",
	};
	struct table t;
	char why[384];
	int r;

	printf("VM %u: WBINVD %s\n", vm->vm_id,
	       vm->flags & IOASID_VM_WBINVD_NEEDED ?
	       "needed (a device's DMA may bypass CPU caches)" :
	       "not needed (all DMA snoops CPU caches)");
	if (ctl->observer)
		printf("  owner: pid %u, uid %u\n", vm->owner_pid,
		       vm->owner_uid);
	print_kvm_told(vm);
	printf("  devices: %u, non-coherent: %u, times needed: %llu, "
	       "policy: %s, kvm-vfio device: %s\n", vm->nr_devices,
	       vm->nr_noncoherent, (unsigned long long)vm->registrations,
	       vm->flags & IOASID_VM_FORBID_NONCOHERENT ?
	       "forbid non-coherent" : "allow non-coherent",
	       vm->flags & IOASID_VM_KVM_VFIO_CREATED ? "created by ioasid" :
	       "from the VMM");
	if (!vm->nr_devices)
		return 0;
	table_init(&t, hdr, ARRAY_SIZE(hdr));
	for (uint32_t i = 0; i < v->nr_devs; i++) {
		const struct ioasid_device_info *d = &v->devs[i];

		if (d->vm_id != vm->vm_id)
			continue;
		reason(ctl, v, d, why, sizeof(why));
		table_cell(&t, "%s", d->name);
		table_cell(&t, "%u", d->dev_id);
		id_cell(&t, d->ioas_id);
		id_cell(&t, d->domain_id);
		table_cell(&t, "%s", d->iommu);
		table_cell(&t, "%s", d->flags & IOASID_DEVICE_NONCOHERENT ?
			   "no" : "yes");
		table_cell(&t, "%s", d->flags & IOASID_DEVICE_KVM_FILE ?
			   "told" : "no-file");
		table_cell(&t, "%s", why);
	}
	r = table_print(&t, stdout, "  ");
	table_free(&t);
	return r;
}

static int show_vms(struct ctl *ctl, const struct kvm_view *v,
		    const uint32_t *ids, uint32_t nr)
{
	struct ioasid_vm_info vm;
	struct json j;
	int r;

	if (ctl->json) {
		json_init(&j, stdout, true);
		json_obj_begin(&j, NULL);
		json_arr_begin(&j, "vms");
	} else if (!nr) {
		printf("no VMs in this session (see 'ioasidctl kvm create')\n");
	}
	for (uint32_t i = 0; i < nr; i++) {
		r = ioasid_vm_get_info(ctl->ctx, ids[i], &vm);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return ctl_fail(ctl, r, "VM %u", ids[i]);
		if (ctl->json)
			json_vm(ctl, &j, v, &vm);
		else if (print_vm(ctl, v, &vm) < 0)
			return ctl_syserr(ctl, ENOMEM, "kvm show");
	}
	if (ctl->json) {
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
	}
	return EXIT_OK;
}

static int kvm_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	struct kvm_view v = { 0 };
	uint32_t *ids = NULL, nr = 0;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, show_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl);
	if (r)
		return r;
	r = ctl_list_vms(ctl, &ids, &nr);
	if (r == 0)
		r = ctl_list_devices(ctl, &v.devs, &v.nr_devs);
	if (r == 0)
		r = ctl_list_iommus(ctl, &v.units, &v.nr_units);
	if (r < 0) {
		r = ctl_fail(ctl, r, "cannot read the VMs");
	} else {
		ctl_note_session_view(ctl, "VMs");
		r = show_vms(ctl, &v, ids, nr);
	}
	free(ids);
	view_free(&v);
	return r;
}

/* ---- create, add, remove, policy ----------------------------------------- */

static const char create_usage[] =
	"Usage: ioasidctl kvm create [--forbid-noncoherent] [--json]\n"
	"\n"
	"Create a KVM VM (/dev/kvm) and its kvm-vfio device, as a VMM does,\n"
	"and bind them to this session.  Only useful inside a batch: the VM\n"
	"goes away when the session ends.\n"
	"\n"
	"  --forbid-noncoherent   refuse anything that would make this VM\n"
	"                         need WBINVD\n";

static int print_vm_result(struct ctl *ctl, uint32_t vm_id, const char *what)
{
	struct ioasid_vm_info vm;
	struct json j;
	int r;

	r = ioasid_vm_get_info(ctl->ctx, vm_id, &vm);
	if (r < 0)
		return ctl_fail(ctl, r, "VM %u", vm_id);
	if (!ctl->json) {
		printf("%s: %u device(s), %u non-coherent, WBINVD %s, KVM "
		       "told of %u device(s)\n", what, vm.nr_devices, vm.nr_noncoherent,
		       vm.flags & IOASID_VM_WBINVD_NEEDED ? "needed" :
		       "not needed", vm.nr_kvm_files);
		return EXIT_OK;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "vm", vm_id);
	json_bool(&j, "wbinvd_needed", vm.flags & IOASID_VM_WBINVD_NEEDED);
	json_bool(&j, "forbid_noncoherent",
		  vm.flags & IOASID_VM_FORBID_NONCOHERENT);
	json_u64(&j, "nr_devices", vm.nr_devices);
	json_u64(&j, "nr_noncoherent", vm.nr_noncoherent);
	json_u64(&j, "nr_kvm_files", vm.nr_kvm_files);
	json_obj_end(&j);
	json_finish(&j);
	return EXIT_OK;
}

/*
 * A VM and its kvm-vfio device, both made here as a VMM would: KVM
 * answers ioctls on a VM (and its devices) only from the process that
 * created it, so ioasidd could not create the kvm-vfio device itself.
 */
static int new_vm(struct ctl *ctl, int *vm_fd, int *kvm_vfio_fd)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_VFIO };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), e;

	if (kvm < 0)
		return ctl_syserr(ctl, errno, "kvm create: cannot open "
				  "/dev/kvm");
	*vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	e = errno;
	close(kvm);
	if (*vm_fd < 0)
		return ctl_syserr(ctl, e, "kvm create: KVM_CREATE_VM");
	if (ioctl(*vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		e = errno;
		close(*vm_fd);
		return ctl_syserr(ctl, e, "kvm create: cannot create the "
				  "kvm-vfio device");
	}
	*kvm_vfio_fd = (int)dev.fd;
	return EXIT_OK;
}

static int kvm_create(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_FORBID = 0x300 };
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "forbid-noncoherent", no_argument, NULL, OPT_FORBID },
		{ 0 },
	};
	uint32_t vm_id, policy = 0;
	int c, r, vm_fd = -1, kvm_vfio_fd = -1;
	char what[64];

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, create_usage)) != -1) {
		if (c != OPT_FORBID)
			return ctl_opt_status(c);
		policy = IOASID_VM_FORBID_NONCOHERENT;
	}
	r = ctl_nargs(ctl, argc, 0, 0) ?: ctl_open(ctl) ?:
	    new_vm(ctl, &vm_fd, &kvm_vfio_fd);
	if (r)
		return r;
	r = ioasid_vm_bind(ctl->ctx, vm_fd, kvm_vfio_fd, &vm_id);
	close(vm_fd);		/* the library keeps its own */
	close(kvm_vfio_fd);
	if (r < 0)
		return ctl_fail(ctl, r, "cannot bind the new VM");
	r = ioasid_vm_set_policy(ctl->ctx, vm_id, policy);
	if (r < 0)
		return ctl_fail(ctl, r, "VM %u: policy", vm_id);
	ctl_set_result(ctl, vm_id);
	snprintf(what, sizeof(what), "VM %u created", vm_id);
	return print_vm_result(ctl, vm_id, what);
}

static const char add_usage[] =
	"Usage: ioasidctl kvm add DEVICE VM [--json]\n"
	"\n"
	"Put a device in a VM (binding it first if needed): KVM learns\n"
	"through kvm-vfio whether the device makes the VM need WBINVD.\n";

static const char remove_usage[] =
	"Usage: ioasidctl kvm remove DEVICE [--json]\n"
	"\n"
	"Take a device out of its VM.\n";

static int set_vm(struct ctl *ctl, const char *dev, uint32_t vm_id)
{
	struct ioasid_device_info info;
	uint32_t dev_id, old;
	char what[96];
	int r;

	r = ctl_bind(ctl, dev, &dev_id, &info);
	if (r)
		return r;
	old = info.vm_id;
	if (!vm_id && !old) {
		ctl_err(ctl, "kvm remove: %s is in no VM", info.name);
		return EXIT_FAIL;
	}
	r = ioasid_device_set_vm(ctl->ctx, dev_id, vm_id);
	if (r < 0)
		return ctl_fail(ctl, r, vm_id ? "cannot put %s in VM %u" :
				"cannot take %s out of VM %u", info.name,
				vm_id ? vm_id : old);
	snprintf(what, sizeof(what), "%s %s VM %u", info.name,
		 vm_id ? "added to" : "removed from", vm_id ? vm_id : old);
	return print_vm_result(ctl, vm_id ? vm_id : old, what);
}

static int kvm_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t vm_id;
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, add_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "VM id", argv[optind + 1], &vm_id) ?:
	    ctl_open(ctl);
	return r ? r : set_vm(ctl, argv[optind], vm_id);
}

static int kvm_remove(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, remove_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 1, 1) ?: ctl_open(ctl);
	return r ? r : set_vm(ctl, argv[optind], 0);
}

static const char policy_usage[] =
	"Usage: ioasidctl kvm policy VM forbid|allow [--json]\n"
	"\n"
	"forbid: refuse anything that would make the VM need WBINVD (fails\n"
	"while it already has non-coherent devices); allow: the default.\n";

static int kvm_policy(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { 0 } };
	uint32_t vm_id, flags;
	const char *p;
	char what[64];
	int c, r;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, policy_usage)) != -1)
		return ctl_opt_status(c);
	r = ctl_nargs(ctl, argc, 2, 2) ?:
	    ctl_parse_id(ctl, "VM id", argv[optind], &vm_id);
	if (r)
		return r;
	p = argv[optind + 1];
	if (strcmp(p, "forbid") && strcmp(p, "allow"))
		return ctl_usage(ctl, "policy '%s' is not forbid or allow", p);
	flags = !strcmp(p, "forbid") ? IOASID_VM_FORBID_NONCOHERENT : 0;
	r = ctl_open(ctl);
	if (r)
		return r;
	r = ioasid_vm_set_policy(ctl->ctx, vm_id, flags);
	if (r < 0)
		return ctl_fail(ctl, r, "VM %u: policy %s", vm_id, p);
	snprintf(what, sizeof(what), "VM %u: policy %s", vm_id, p);
	return print_vm_result(ctl, vm_id, what);
}

static const struct cmd kvm_cmds[] = {
	{ "show", kvm_show, "WBINVD state of each VM and why" },
	{ "create", kvm_create, "create a KVM VM in this session" },
	{ "add", kvm_add, "put a device in a VM" },
	{ "remove", kvm_remove, "take a device out of its VM" },
	{ "policy", kvm_policy, "forbid or allow non-coherent DMA in a VM" },
};

int cmd_kvm(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch_group(ctl, kvm_cmds, ARRAY_SIZE(kvm_cmds), "ioasidctl kvm",
				  group_usage, "show", argc, argv);
}
