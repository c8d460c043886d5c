/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherency matrix: IOMMU snoop control {yes, no} x device no-snoop
 * {enabled, hard-wired off, hinted off} x IOAS snoop mode {enforce, auto,
 * allow}, checking the attach result, the domain chosen, the device's
 * coherency and the VM's registration after attach, replace and detach;
 * with a real KVM VM (skipped with a reason without /dev/kvm).  Plus
 * multi-device VMs, policy, events and the simulated no-snoop traffic.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define SC_NS "0000:10:00.0"	/* unit with snoop control, no-snoop on */
#define SC_OFF "0000:10:01.0"	/* unit with snoop control, hard-wired off */
#define NC_NS "0000:20:00.0"	/* unit without, no-snoop on */
#define NC_OFF "0000:20:01.0"	/* unit without, hard-wired off */
#define NC_NS2 "0000:20:02.0"	/* unit without, no-snoop on (second) */

static const char topology[] =
	"iommu sc0 snoop-control=yes page-sizes=4K,2M address-width=48\n"
	"iommu nc0 snoop-control=no page-sizes=4K,2M address-width=48\n"
	"device 0000:10:00.0 vendor=0x1234 device=0x0001 iommu=sc0 no-snoop=yes\n"
	"device 0000:10:01.0 vendor=0x1234 device=0x0001 iommu=sc0 no-snoop=no\n"
	"device 0000:20:00.0 vendor=0x1234 device=0x0001 iommu=nc0 no-snoop=yes\n"
	"device 0000:20:01.0 vendor=0x1234 device=0x0001 iommu=nc0 no-snoop=no\n"
	"device 0000:20:02.0 vendor=0x1234 device=0x0001 iommu=nc0 no-snoop=yes\n";

static char topo_path[64];
static int kvm_fd = -1, vm_fd = -1;

static void setup(void)
{
	int fd;

	snprintf(topo_path, sizeof(topo_path), "/tmp/ioasid-coh-XXXXXX");
	fd = mkstemp(topo_path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, topology, sizeof(topology) - 1),
		     (ssize_t)sizeof(topology) - 1);
	close(fd);
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd >= 0)
		vm_fd = ioctl(kvm_fd, 0xAE01 /* KVM_CREATE_VM */, 0);
}

static void teardown(void)
{
	unlink(topo_path);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
	vm_fd = kvm_fd = -1;
}

static struct ioasid_ctx *open_ctx(void)
{
	struct ioasid_ctx *ctx;
	char uri[80];

	snprintf(uri, sizeof(uri), "sim:%s", topo_path);
	cr_assert_eq(ioasid_new(uri, &ctx), 0, "%s", ioasid_last_error(NULL));
	return ctx;
}

static uint32_t need_vm(struct ioasid_ctx *ctx)
{
	uint32_t vm;

	if (vm_fd < 0)
		cr_skip_test("no KVM VM: /dev/kvm is missing or refused");
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, -1, &vm), 0, "%s",
		     ioasid_last_error(ctx));
	return vm;
}

static struct ioasid_vm_info vm_info(struct ioasid_ctx *ctx, uint32_t vm)
{
	struct ioasid_vm_info info;

	cr_assert_eq(ioasid_vm_get_info(ctx, vm, &info), 0);
	return info;
}

static struct ioasid_device_info dev_info(struct ioasid_ctx *ctx,
					  const char *name)
{
	struct ioasid_device_info info;

	cr_assert_eq(ioasid_device_get_info(ctx, name, &info), 0);
	return info;
}

static uint32_t domain_flags(struct ioasid_ctx *ctx, uint32_t ioas,
			     uint32_t domain_id)
{
	struct ioasid_domain_info d[8];
	uint32_t nr = 8;

	cr_assert_eq(ioasid_domain_list(ctx, ioas, d, &nr), 0);
	for (uint32_t i = 0; i < nr; i++)
		if (d[i].domain_id == domain_id)
			return d[i].flags;
	cr_assert_fail("domain %u not in IOAS %u", domain_id, ioas);
	return 0;
}

/* One cell of the matrix: what must happen. */
struct cell {
	const char *dev;
	int hinted;
	uint32_t mode;
	int attach;		/* expected return */
	int enforce;		/* domain enforces coherency */
	int noncoherent;	/* device's DMA may bypass caches */
};

#define E IOASID_SNOOP_ENFORCE
#define A IOASID_SNOOP_AUTO
#define L IOASID_SNOOP_ALLOW

static const struct cell matrix[] = {
	/* unit with snoop control */
	{ SC_NS,  0, E, 0, 1, 0 }, { SC_NS,  0, A, 0, 1, 0 }, { SC_NS,  0, L, 0, 0, 1 },
	{ SC_OFF, 0, E, 0, 1, 0 }, { SC_OFF, 0, A, 0, 1, 0 }, { SC_OFF, 0, L, 0, 0, 0 },
	{ SC_NS,  1, E, 0, 1, 0 }, { SC_NS,  1, A, 0, 1, 0 }, { SC_NS,  1, L, 0, 0, 0 },
	/* unit without snoop control */
	{ NC_NS,  0, E, -EINVAL, 0, 0 }, { NC_NS,  0, A, 0, 0, 1 }, { NC_NS,  0, L, 0, 0, 1 },
	{ NC_OFF, 0, E, -EINVAL, 0, 0 }, { NC_OFF, 0, A, 0, 0, 0 }, { NC_OFF, 0, L, 0, 0, 0 },
	{ NC_NS,  1, E, -EINVAL, 0, 0 }, { NC_NS,  1, A, 0, 0, 0 }, { NC_NS,  1, L, 0, 0, 0 },
};

static void run_cell(const struct cell *c)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t vm = need_vm(ctx), ioas, other, dev;
	struct ioasid_device_info info;
	struct ioasid_vm_info v;
	const char *where = c->mode == E ? "enforce" : c->mode == A ? "auto" :
								      "allow";
	int r;

	cr_log_info("cell %s hinted=%d mode=%s", c->dev, c->hinted, where);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &other), 0);
	cr_assert_eq(ioasid_ioas_set_snoop_mode(ctx, ioas, c->mode), 0);
	cr_assert_eq(ioasid_device_bind(ctx, c->dev, -1, &dev), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm), 0);
	r = ioasid_device_attach(ctx, dev, ioas, c->hinted ?
				 IOASID_ATTACH_NO_SNOOP_UNUSED : 0);
	cr_assert_eq(r, c->attach, "%s hinted=%d mode=%s: attach %d (%s)",
		     c->dev, c->hinted, where, r, ioasid_last_error(ctx));
	if (r < 0) {
		cr_assert(strstr(ioasid_last_error(ctx), "no snoop control"));
		cr_assert_eq(vm_info(ctx, vm).nr_noncoherent, 0);
		ioasid_unref(ctx);
		return;
	}
	info = dev_info(ctx, c->dev);
	cr_assert_eq(!!(domain_flags(ctx, ioas, info.domain_id) &
			IOASID_DOMAIN_ENFORCE_COHERENCY), c->enforce,
		     "%s mode=%s: domain coherency", c->dev, where);
	cr_assert_eq(!!(info.flags & IOASID_DEVICE_NONCOHERENT), c->noncoherent,
		     "%s hinted=%d mode=%s: device coherency", c->dev, c->hinted,
		     where);
	v = vm_info(ctx, vm);
	cr_assert_eq(!!(v.flags & IOASID_VM_WBINVD_NEEDED), c->noncoherent);
	cr_assert_eq(v.nr_noncoherent, (uint32_t)c->noncoherent);

	/* replace into an auto-mode IOAS: judged again from the new domain */
	cr_assert_eq(ioasid_device_replace(ctx, dev, other, c->hinted ?
					   IOASID_ATTACH_NO_SNOOP_UNUSED : 0), 0);
	info = dev_info(ctx, c->dev);
	{
		int sc = !strncmp(c->dev, "0000:10", 7);
		int may = strstr(c->dev, ":00.0") && !c->hinted;
		int nc = may && !sc;

		cr_assert_eq(!!(info.flags & IOASID_DEVICE_NONCOHERENT), nc,
			     "%s after replace", c->dev);
		cr_assert_eq(vm_info(ctx, vm).nr_noncoherent, (uint32_t)nc);
	}
	/* detach: never non-coherent, registration gone */
	cr_assert_eq(ioasid_device_detach(ctx, dev), 0);
	v = vm_info(ctx, vm);
	cr_assert_eq(v.nr_noncoherent, 0);
	cr_assert_not(v.flags & IOASID_VM_WBINVD_NEEDED);
	ioasid_unref(ctx);
}

Test(coherency, matrix, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++)
		run_cell(&matrix[i]);
}

Test(coherency, domains_by_class, .init = setup, .fini = teardown)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t ioas, a, b, c, nr = 0;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(ctx, SC_NS, -1, &a), 0);
	cr_assert_eq(ioasid_device_bind(ctx, SC_OFF, -1, &b), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NC_NS, -1, &c), 0);
	cr_assert_eq(ioasid_device_attach(ctx, a, ioas, 0), 0);
	cr_assert_eq(ioasid_device_attach(ctx, b, ioas, 0), 0);
	cr_assert_eq(dev_info(ctx, SC_NS).domain_id, dev_info(ctx, SC_OFF).domain_id,
		     "same unit, same class: one domain");
	cr_assert_eq(ioasid_device_attach(ctx, c, ioas, 0), 0);
	cr_assert_neq(dev_info(ctx, NC_NS).domain_id, dev_info(ctx, SC_NS).domain_id);
	cr_assert_eq(ioasid_domain_list(ctx, ioas, NULL, &nr), -EMSGSIZE);
	cr_assert_eq(nr, 2);
	ioasid_unref(ctx);
}

Test(coherency, registration_once_per_vm, .init = setup, .fini = teardown)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t vm = need_vm(ctx), ioas, d1, d2;
	struct ioasid_event ev;
	int events = 0, registered = 0, unregistered = 0;

	cr_assert_eq(ioasid_event_subscribe(ctx, IOASID_EVENT_GROUP_COHERENCY), 0);
	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NC_NS, -1, &d1), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NC_NS2, -1, &d2), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, d1, vm), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, d2, vm), 0);
	cr_assert_eq(ioasid_device_attach(ctx, d1, ioas, 0), 0);
	cr_assert_eq(vm_info(ctx, vm).registrations, 1);
	cr_assert_eq(ioasid_device_attach(ctx, d2, ioas, 0), 0);
	cr_assert_eq(vm_info(ctx, vm).registrations, 1, "registered once");
	cr_assert_eq(vm_info(ctx, vm).nr_noncoherent, 2);
	cr_assert_eq(ioasid_device_detach(ctx, d1), 0);
	cr_assert(vm_info(ctx, vm).flags & IOASID_VM_WBINVD_NEEDED,
		  "still one non-coherent device");
	cr_assert_eq(ioasid_device_detach(ctx, d2), 0);
	cr_assert_not(vm_info(ctx, vm).flags & IOASID_VM_WBINVD_NEEDED,
		      "unregistered with the last one");
	while (ioasid_event_read(ctx, &ev) == 0) {
		events++;
		if (ev.type == IOASID_EVENT_VM_COHERENCY) {
			cr_assert_eq(ev.id, vm);
			registered += ev.arg == 1;
			unregistered += ev.arg == 0;
		}
	}
	cr_assert_eq(registered, 1);
	cr_assert_eq(unregistered, 1);
	cr_assert_eq(events, 2 + 4, "2 VM events + 4 device coherency events");
	ioasid_unref(ctx);
}

Test(coherency, policy_forbids_wbinvd, .init = setup, .fini = teardown)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t vm = need_vm(ctx), ioas, dev, ok;

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_vm_set_policy(ctx, vm, IOASID_VM_FORBID_NONCOHERENT), 0);
	cr_assert_eq(ioasid_vm_set_policy(ctx, vm, 0x80), -EOPNOTSUPP);
	cr_assert_eq(ioasid_device_bind(ctx, NC_NS, -1, &dev), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), -EPERM);
	cr_assert(strstr(ioasid_last_error(ctx), "WBINVD"), "%s",
		  ioasid_last_error(ctx));
	cr_assert_not(dev_info(ctx, NC_NS).flags & IOASID_DEVICE_ATTACHED);
	/* a coherent device is fine */
	cr_assert_eq(ioasid_device_bind(ctx, NC_OFF, -1, &ok), 0);
	cr_assert_eq(ioasid_device_set_vm(ctx, ok, vm), 0);
	cr_assert_eq(ioasid_device_attach(ctx, ok, ioas, 0), 0);
	/* lifting the policy, then forbidding again with one present */
	cr_assert_eq(ioasid_vm_set_policy(ctx, vm, 0), 0);
	cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
	cr_assert_eq(ioasid_vm_set_policy(ctx, vm, IOASID_VM_FORBID_NONCOHERENT),
		     -EBUSY);
	ioasid_unref(ctx);
}

Test(coherency, simulated_traffic, .init = setup, .fini = teardown)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t ioas, sc, nc;
	int fd = test_memfd(1 << 20);
	uint64_t iova = 0x100000, done;
	uint8_t buf[4096] = { 0 };

	cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
	cr_assert_eq(ioasid_map_file(ctx, ioas, fd, 0, 1 << 20,
				     IOASID_MAP_READ | IOASID_MAP_WRITE |
				     IOASID_MAP_FIXED_IOVA, &iova), 0);
	cr_assert_eq(ioasid_device_bind(ctx, SC_NS, -1, &sc), 0);
	cr_assert_eq(ioasid_device_bind(ctx, NC_NS, -1, &nc), 0);
	cr_assert_eq(ioasid_device_attach(ctx, sc, ioas, 0), 0);
	cr_assert_eq(ioasid_device_attach(ctx, nc, ioas, 0), 0);
	cr_assert_eq(ioasid_device_dma(ctx, sc, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE | IOASID_DMA_NO_SNOOP, &done), 0);
	cr_assert_eq(ioasid_device_dma(ctx, nc, iova, buf, sizeof(buf),
				       IOASID_DMA_WRITE | IOASID_DMA_NO_SNOOP, &done), 0);
	/* enforcing domain: counted snooped; the other: non-coherent (and the
	 * device is reported non-coherent, so the VM would need WBINVD) */
	cr_assert_not(dev_info(ctx, SC_NS).flags & IOASID_DEVICE_NONCOHERENT);
	cr_assert(dev_info(ctx, NC_NS).flags & IOASID_DEVICE_NONCOHERENT);
	close(fd);
	ioasid_unref(ctx);
}

Test(kvm, bind_errors_and_vm_lifetime, .init = setup, .fini = teardown)
{
	struct ioasid_ctx *ctx = open_ctx();
	uint32_t vm, vm2, ioas, dev;
	struct { uint32_t type, fd, flags; } cd = { 4 /* VFIO */ };
	int pipefd[2];

	if (vm_fd < 0)
		cr_skip_test("no KVM VM: /dev/kvm is missing or refused");
	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(ioasid_vm_bind(ctx, pipefd[0], -1, &vm), -EINVAL,
		     "not a KVM VM");
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, pipefd[0], &vm), -EINVAL,
		     "not a kvm-vfio device");
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, -1, &vm), 0);
	/* KVM allows one kvm-vfio device per VM */
	cr_assert_eq(ioasid_vm_bind(ctx, vm_fd, -1, &vm2), -EEXIST);
	cr_assert(strstr(ioasid_last_error(ctx), "pass its fd"));
	cr_assert_eq(ioasid_vm_unbind(ctx, vm), 0);
	cr_assert_eq(ioasid_vm_unbind(ctx, vm), -ENOENT);
	/* the VMM created kvm-vfio itself: hand it over */
	{
		int vm3 = ioctl(kvm_fd, 0xAE01, 0);

		cr_assert(vm3 >= 0);
		cr_assert_eq(ioctl(vm3, _IOWR(0xAE, 0xe0, cd), &cd), 0,
			     "KVM_CREATE_DEVICE: %s", strerror(errno));
		cr_assert_eq(ioasid_vm_bind(ctx, vm3, (int)cd.fd, &vm2), 0);
		close((int)cd.fd);
		/* the VMM closes its VM fd while a device is in the VM */
		cr_assert_eq(ioasid_ioas_alloc(ctx, 0, &ioas), 0);
		cr_assert_eq(ioasid_device_bind(ctx, NC_NS, -1, &dev), 0);
		cr_assert_eq(ioasid_device_set_vm(ctx, dev, vm2), 0);
		cr_assert_eq(ioasid_device_attach(ctx, dev, ioas, 0), 0);
		close(vm3);
		cr_assert(vm_info(ctx, vm2).flags & IOASID_VM_WBINVD_NEEDED,
			  "the library's reference keeps the VM alive");
		cr_assert_eq(ioasid_device_detach(ctx, dev), 0);
		cr_assert_eq(ioasid_vm_unbind(ctx, vm2), 0);
	}
	cr_assert_eq(ioasid_device_set_vm(ctx, 4242, 0), -ENOENT);
	cr_assert_eq(ioasid_vm_get_info(ctx, 4242, &(struct ioasid_vm_info){ 0 }),
		     -ENOENT);
	close(pipefd[0]);
	close(pipefd[1]);
	ioasid_unref(ctx);
}
