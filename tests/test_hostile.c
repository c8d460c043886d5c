// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Hostile tenants against a real ioasidd on the simulated backend, with
 * real Unix users: "daemon" (tenant A), "bin" (tenant B), "sys" (a tenant
 * with devices = none) and "nobody" (an administrator: observe = yes).  Each session connects
 * under its user's uid and groups (the daemon judges the peer's
 * credentials, SO_PEERCRED and SO_PEERGROUPS, as they were at connect();
 * this process switches its effective ids around each connect()).  Runs
 * as root; skips with the reason otherwise.
 *
 * What is checked, each against the policy file written below:
 *  - every command of the protocol (the codec's table, so a new command is
 *    covered without touching this file), sent by B and by an observer
 *    with A's ids, changes nothing A sees, and A's fault record and event
 *    stay A's;
 *  - the documented errno for each cross-session call of the API;
 *  - every quota via every path that creates state, with nothing applied;
 *  - hotplug rights; max-clients; a client that never reads its replies;
 *    clients that vanish in the middle of a request.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <netlink/msg.h>

#include "ctx.h"
#include "daemon_fixture.h"
#include "helpers.h"
#include "op/op.h"
#include "proto/codec.h"
#include "snapshot.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define RW (IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED IOASID_MAP_FIXED_IOVA
#define NIC "0000:00:01.0"		/* sim0, group 1 */
#define GPU0 "0000:00:03.0"		/* sim0 */
#define GPU1 "0000:01:00.0"		/* sim1: A's policy does not name it */
#define NVME "0000:01:02.0"		/* sim1 */
#define MAX_CLIENTS 8

struct tenant {
	const char *user;
	uid_t uid;
	gid_t gid;
};

static struct tenant A = { "daemon" }, B = { "bin" }, NODEV = { "sys" };
static struct tenant ADMIN = { "nobody" };
static struct daemon_fixture d;

/* ---- the daemon and the users ------------------------------------------- */

static void find_user(struct tenant *t)
{
	struct passwd *pw = getpwnam(t->user);

	if (!pw)
		cr_skip_test("no user \"%s\" on this system", t->user);
	t->uid = pw->pw_uid;
	t->gid = pw->pw_gid;
}

static void setup(void)
{
	char policy[2048];

	if (geteuid() != 0)
		cr_skip_test("needs root: sessions of real users (daemon, bin, "
			     "sys, nobody) are made by switching uids");
	find_user(&A);
	find_user(&B);
	find_user(&NODEV);
	find_user(&ADMIN);
	snprintf(policy, sizeof(policy),
		 "[daemon]\n"
		 "socket-mode = 0666\n"
		 "max-clients = %d\n"
		 "[default]\n"
		 "allow = no\n"
		 "[user %u]\n"
		 "allow = yes\n"
		 "devices = " NIC " " GPU0 " 0000:00:02.*\n"
		 "max-ioas = 4\n"
		 "max-mappings = 20\n"
		 "max-bytes-mapped = 64M\n"
		 "max-conversion-state = 96K\n"
		 "max-vms = 1\n"
		 "[user %u]\n"
		 "allow = yes\n"
		 "devices = *\n"
		 "max-ioas = 8\n"
		 "max-mappings = 64\n"
		 "max-bytes-mapped = 256M\n"
		 "max-vms = 1\n"
		 "[user %u]\n"
		 "allow = yes\n"
		 "devices = none\n"
		 "[user %u]\n"
		 "allow = yes\n"
		 "devices = *\n"
		 "observe = yes\n",
		 MAX_CLIENTS, (unsigned int)A.uid, (unsigned int)B.uid,
		 (unsigned int)NODEV.uid, (unsigned int)ADMIN.uid);
	cr_assert_eq(daemon_start(&d, &(struct daemon_opts){
					     .config = policy }), 0,
		     "ioasidd did not start");
	/* the users must reach the socket in the private directory */
	cr_assert_eq(chmod(d.dir, 0755), 0);
}

static void teardown(void)
{
	if (d.pid > 0)
		cr_assert_eq(daemon_stop(&d), 0, "ioasidd did not exit cleanly "
			     "(a crash or a sanitizer report: see its log)");
}

/* Run @fn's connect() as @t: the daemon sees t's uid and groups. */
static void become(const struct tenant *t)
{
	cr_assert_eq(setgroups(1, &t->gid), 0, "setgroups: %m");
	cr_assert_eq(setegid(t->gid), 0, "setegid: %m");
	cr_assert_eq(seteuid(t->uid), 0, "seteuid: %m");
}

static void become_root(void)
{
	cr_assert_eq(seteuid(0), 0, "seteuid(0): %m");
	cr_assert_eq(setegid(0), 0, "setegid(0): %m");
	cr_assert_eq(setgroups(0, NULL), 0, "setgroups: %m");
}

static struct ioasid_ctx *session_of(const struct tenant *t)
{
	struct ioasid_ctx *ctx = NULL;
	int r;

	become(t);
	r = ioasid_new(d.uri, &ctx);
	become_root();
	cr_assert_eq(r, 0, "%s cannot connect: %s", t->user,
		     ioasid_last_error(NULL));
	return ctx;
}

/* A raw connection as @t (for clients that misbehave on the wire). */
static int raw_session_of(const struct tenant *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), r;

	cr_assert_geq(s, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
	become(t);
	r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	become_root();
	cr_assert_eq(r, 0, "connect as %s: %m", t->user);
	return s;
}

/* Send @op as a request on raw socket @s; returns what sendmsg() did. */
static ssize_t raw_request(int s, struct ioasid_op *op, uint32_t seq,
			   int flags)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds = 0;
	struct nl_msg *msg;
	const void *buf;
	size_t len;
	ssize_t n;

	cr_assert_eq(proto_encode_request(op, seq, &msg, fds, &nfds), 0, "%s",
		     op->errmsg);
	buf = proto_msg_data(msg, &len);
	n = send_fds_flags(s, buf, len, fds, (int)nfds, MSG_NOSIGNAL | flags);
	nlmsg_free(msg);
	return n;
}

/* The reply to the last request on raw socket @s, decoded into @op. */
static int raw_reply(int s, struct ioasid_op *op)
{
	static char buf[IOASID_MAX_MSG];
	struct proto_msg m;
	char why[128];
	int result = 0;
	ssize_t n = recv(s, buf, sizeof(buf), 0);

	cr_assert_gt(n, 0, "no reply: %m");
	cr_assert_eq(proto_parse(buf, (size_t)n, 0, PROTO_FROM_DAEMON, &m, why,
				 sizeof(why)), 0, "%s", why);
	cr_assert_eq(m.cmd, IOASID_CMD_REPLY);
	cr_assert_eq(proto_decode_reply(&m, NULL, op, &result), 0, "%s",
		     op->errmsg);
	return result;
}

static struct ioasid_status status_of(struct ioasid_ctx *ctx)
{
	struct ioasid_status st;

	cr_assert_eq(ioasid_get_status(ctx, &st), 0, "%s",
		     ioasid_last_error(ctx));
	return st;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Wait until the daemon serves @sessions clients (root's @probe among
 * them): it reaps a departed client after its current batch of events.
 * Waiting for a state, not for time: the bound only stops a hang.
 */
static void wait_sessions(struct ioasid_ctx *probe, uint32_t sessions)
{
	uint32_t now = 0;

	for (int i = 0; i < 3000; i++) {
		now = status_of(probe).nr_sessions;
		if (now == sessions)
			return;
		sleep_ms(10);
	}
	cr_assert_fail("ioasidd serves %u sessions, not %u", now, sessions);
}

static int kvm_vm_fd(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;

	if (kvm < 0)
		return -1;
	vm = ioctl(kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
	close(kvm);
	return vm;
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 240);

/* ---- A's state: something of every kind ------------------------------------ */

struct victim {
	struct ioasid_ctx *ctx;
	uint32_t ioas, rioas, dev, domain, vm, file;
	int memfd, vm_fd;
	struct snap before;
};

static void victim_build(struct victim *v)
{
	struct ioasid_iova_range shared = { 0x1000, 0x1fff };
	struct ioasid_domain_info dom[4];
	struct ioasid_mapping m;
	uint64_t iova = 0x100000, done;
	uint32_t nr = 4;
	char byte = 1;

	v->ctx = session_of(&A);
	v->memfd = test_memfd(16 * MiB);
	cr_assert_eq(ioasid_ioas_alloc(v->ctx, 0, &v->ioas), 0);
	cr_assert_eq(ioasid_map_file(v->ctx, v->ioas, v->memfd, 0, 4 * MiB,
				     RW | FIXED, &iova), 0, "%s",
		     ioasid_last_error(v->ctx));
	cr_assert_eq(ioasid_lookup(v->ctx, v->ioas, 0x100000, &m), 0);
	v->file = m.file_id;
	cr_assert_eq(ioasid_ioas_alloc(v->ctx, IOASID_IOAS_RESTRICTED,
				       &v->rioas), 0);
	iova = 0;
	cr_assert_eq(ioasid_map_file(v->ctx, v->rioas, v->memfd, 0, MiB,
				     RW | FIXED, &iova), 0);
	cr_assert_eq(ioasid_convert(v->ctx, v->rioas, &shared, 1,
				    IOASID_CONVERT_SHARED, NULL), 0, "%s",
		     ioasid_last_error(v->ctx));
	cr_assert_eq(ioasid_device_bind(v->ctx, NIC, -1, &v->dev), 0, "%s",
		     ioasid_last_error(v->ctx));
	cr_assert_eq(ioasid_device_attach(v->ctx, v->dev, v->ioas, 0), 0);
	cr_assert_eq(ioasid_domain_list(v->ctx, v->ioas, dom, &nr), 0);
	cr_assert_eq(nr, 1);
	v->domain = dom[0].domain_id;
	v->vm_fd = kvm_vm_fd();
	if (v->vm_fd >= 0) {
		cr_assert_eq(ioasid_vm_bind(v->ctx, v->vm_fd, -1, &v->vm), 0,
			     "%s", ioasid_last_error(v->ctx));
		cr_assert_eq(ioasid_device_set_vm(v->ctx, v->dev, v->vm), 0,
			     "%s", ioasid_last_error(v->ctx));
	}
	/* one fault record and one fault event, A's */
	cr_assert_eq(ioasid_event_subscribe(v->ctx, IOASID_EVENT_GROUP_FAULT |
					    IOASID_EVENT_GROUP_DEVICE), 0);
	cr_assert_eq(ioasid_device_dma(v->ctx, v->dev, 0x40000000, &byte, 1,
				       IOASID_DMA_WRITE, &done), -EFAULT);
	snapshot_take(v->ctx, &v->before, 0);
}

/* Nothing A sees changed, and its fault record and event are still A's. */
static void victim_check(struct victim *v, const char *after)
{
	struct ioasid_fault f[4];
	struct ioasid_event ev;
	struct snap now;
	uint32_t nr = 4;
	int events = 0;

	snapshot_take(v->ctx, &now, 0);
	cr_assert(snapshot_equal(&v->before, &now),
		  "%s changed what tenant A sees", after);
	snapshot_free(&now);
	cr_assert_eq(ioasid_fault_read(v->ctx, f, &nr), 0);
	cr_assert_eq(nr, 1, "%s: A's fault record is gone (%u)", after, nr);
	cr_assert_eq(f[0].dev_id, v->dev);
	while (ioasid_event_read(v->ctx, &ev) == 0) {
		cr_assert_eq(ev.type, IOASID_EVENT_FAULT,
			     "%s: A heard of an event of type %u", after,
			     ev.type);
		events++;
	}
	cr_assert_eq(events, 1, "%s: A has %d fault events, not 1", after,
		     events);
}

static void victim_free(struct victim *v)
{
	snapshot_free(&v->before);
	ioasid_unref(v->ctx);
	close(v->memfd);
	if (v->vm_fd >= 0)
		close(v->vm_fd);
}

/* ---- every command, with A's ids -------------------------------------------- */

#define ALLOWS(pol, attr) ((pol)->allowed & (1ULL << (attr)))

/*
 * @op for @cmd with every argument the command takes (the codec's table
 * says which) aimed at A's objects; @variant picks flags/mode/data.
 */
static void hostile_op(struct ioasid_op *op, uint32_t cmd,
		       const struct victim *v, int variant, int memfd,
		       void *out, uint32_t cap)
{
	static const struct ioasid_iova_range range = { 0x100000, 0x100fff };
	static const struct ioasid_map_entry entry = { 0x2000000, 0, 0x1000 };
	const struct proto_cmd_policy *pol = proto_cmd_policy(cmd);

	ioasid_op_init(op, cmd);
	if (ALLOWS(pol, IOASID_ATTR_IOAS_ID))
		op->ioas_id = variant == 2 ? v->rioas : v->ioas;
	if (ALLOWS(pol, IOASID_ATTR_IOAS_ID2))
		op->ioas_id2 = v->ioas;
	if (ALLOWS(pol, IOASID_ATTR_DEV_ID))
		op->dev_id = v->dev;
	if (ALLOWS(pol, IOASID_ATTR_VM_ID))
		op->vm_id = v->vm;
	if (ALLOWS(pol, IOASID_ATTR_FILE_ID))
		op->file_id = v->file;
	if (ALLOWS(pol, IOASID_ATTR_FLAGS))
		op->flags = variant == 0 ? 0 : variant == 1 ? 1 :
			    RW | FIXED | IOASID_CONVERT_SHARED;
	if (ALLOWS(pol, IOASID_ATTR_MODE))
		op->mode = (uint32_t)variant;
	if (ALLOWS(pol, IOASID_ATTR_IOVA))
		op->iova = variant == 2 ? 0x1000 : 0x100000;
	if (ALLOWS(pol, IOASID_ATTR_LENGTH))
		op->length = 0x1000;
	if (ALLOWS(pol, IOASID_ATTR_NAME))
		snprintf(op->name, sizeof(op->name), "%s", NIC);
	if (ALLOWS(pol, IOASID_ATTR_FD_INDEX))
		op->fd = memfd;
	if (ALLOWS(pol, IOASID_ATTR_FD_INDEX2))
		op->fd2 = memfd;
	if (ALLOWS(pol, IOASID_ATTR_DATA)) {
		op->in = variant == 1 ? (const void *)&entry : &range;
		op->in_len = variant == 1 ? sizeof(entry) : sizeof(range);
	}
	op->out = out;
	op->out_cap = cap;
}

/* @attacker sends every command there is with A's ids: A sees no change. */
static void every_command_changes_nothing(struct ioasid_ctx *attacker,
					  bool observer)
{
	static char out[64 * 1024];
	struct victim v = { 0 };
	int memfd = test_memfd(MiB);
	unsigned int sent = 0;

	victim_build(&v);
	for (int variant = 0; variant < 3; variant++) {
		for (uint32_t cmd = 0; cmd < __IOASID_CMD_MAX; cmd++) {
			const struct proto_cmd_policy *pol =
				proto_cmd_policy(cmd);
			struct ioasid_op op;
			char what[96];

			if (!pol || !(pol->flags & PROTO_CMD_REQUEST) ||
			    (pol->flags & PROTO_CMD_LOCAL))
				continue;
			if (observer)
				cr_assert_eq(ioasid_set_observer(attacker, 1),
					     0, "%s",
					     ioasid_last_error(attacker));
			hostile_op(&op, cmd, &v, variant, memfd, out,
				   sizeof(out));
			(void)ctx_call(attacker, &op);
			if (op.out_fd >= 0)
				close(op.out_fd);
			snprintf(what, sizeof(what), "%s (variant %d) by %s",
				 pol->name, variant,
				 observer ? "an observer" : "tenant B");
			{
				struct snap now;

				snapshot_take(v.ctx, &now, 0);
				cr_assert(snapshot_equal(&v.before, &now),
					  "%s changed what tenant A sees "
					  "(it returned: %s)", what,
					  op.errmsg[0] ? op.errmsg : "success");
				snapshot_free(&now);
			}
			sent++;
		}
	}
	cr_assert_gt(sent, 3 * 30, "the codec's table has the commands");
	victim_check(&v, observer ? "an observer's requests" :
				    "tenant B's requests");
	cr_assert(daemon_alive(&d));
	victim_free(&v);
	close(memfd);
}

Test(hostile, every_command_of_another_tenant_changes_nothing)
{
	struct ioasid_ctx *b = session_of(&B);
	uint32_t ioas;

	/* B has state of its own, so its calls get past "nothing there" */
	cr_assert_eq(ioasid_ioas_alloc(b, 0, &ioas), 0);
	every_command_changes_nothing(b, false);
	ioasid_unref(b);
}

Test(hostile, every_command_of_an_observer_changes_nothing)
{
	struct ioasid_ctx *obs = session_of(&ADMIN);

	every_command_changes_nothing(obs, true);
	ioasid_unref(obs);
}

/* ---- the API's answers across sessions ----------------------------------- */

#define REFUSED(ctx, call, err)                                              \
	do {                                                                 \
		int r_ = (call);                                             \
		cr_assert_eq(r_, -(err), "%s: %d (%s), not -%s", #call, r_,  \
			     ioasid_last_error(ctx), #err);                  \
	} while (0)

Test(hostile, another_tenants_objects_do_not_exist)
{
	struct ioasid_ctx *b = session_of(&B);
	struct victim v = { 0 };
	struct ioasid_iova_range r = { 0x100000, 0x100fff }, rr[4];
	struct ioasid_map_entry e = { 0x3000000, 0, 0x1000 };
	struct ioasid_device_info di;
	struct ioasid_domain_info dom[4];
	struct ioasid_ioas_info ii;
	struct ioasid_vm_info vi;
	struct ioasid_file_info fi;
	struct ioasid_mapping m;
	struct ioasid_fault f[4];
	struct ioasid_event ev;
	uint32_t mine, mydev, ids[16], nr, got;
	uint64_t iova, done, bitmap[4];
	char buf[64];
	int fd = -1;
	uint32_t not_ioas[3];

	victim_build(&v);
	cr_assert_eq(ioasid_ioas_alloc(b, 0, &mine), 0);
	cr_assert_eq(ioasid_device_bind(b, GPU0, -1, &mydev), 0);
	cr_assert_eq(ioasid_device_attach(b, mydev, mine, 0), 0);
	cr_assert_eq(ioasid_event_subscribe(b, IOASID_EVENT_GROUP_FAULT), 0);

	/* IOASes and what is in them */
	REFUSED(b, ioasid_ioas_get_info(b, v.ioas, &ii), ENOENT);
	REFUSED(b, ioasid_ioas_destroy(b, v.ioas), ENOENT);
	REFUSED(b, ioasid_ioas_set_snoop_mode(b, v.ioas, IOASID_SNOOP_ENFORCE),
		ENOENT);
	iova = 0x2000000;
	REFUSED(b, ioasid_map_file(b, v.ioas, v.memfd, 0, MiB, RW | FIXED,
				   &iova), ENOENT);
	REFUSED(b, ioasid_map_file_batch(b, v.ioas, v.memfd, &e, 1, RW | FIXED,
					 &iova), ENOENT);
	REFUSED(b, ioasid_unmap(b, v.ioas, 0x100000, 0x1000, 0, &done), ENOENT);
	REFUSED(b, ioasid_unmap_all(b, v.ioas, &done), ENOENT);
	iova = 0x100000;
	REFUSED(b, ioasid_copy(b, mine, v.ioas, 0x100000, MiB, RW | FIXED,
			       &iova), ENOENT);
	REFUSED(b, ioasid_copy(b, v.ioas, mine, 0x100000, MiB, RW | FIXED,
			       &iova), ENOENT);
	nr = 4;
	REFUSED(b, ioasid_iova_ranges(b, v.ioas, rr, &nr, NULL), ENOENT);
	REFUSED(b, ioasid_allow_iovas(b, v.ioas, &r, 1), ENOENT);
	REFUSED(b, ioasid_lookup(b, v.ioas, 0x100000, &m), ENOENT);
	REFUSED(b, ioasid_mapping_next(b, v.ioas, 0, &m), ENOENT);
	REFUSED(b, ioasid_file_get_info(b, v.ioas, v.file, &fi), ENOENT);
	REFUSED(b, ioasid_convert(b, v.rioas, &r, 1, IOASID_CONVERT_PRIVATE,
				  NULL), ENOENT);
	REFUSED(b, ioasid_dirty_read(b, v.ioas, 0x100000, 0x4000, bitmap, 0),
		ENOENT);
	nr = 4;
	REFUSED(b, ioasid_domain_list(b, v.ioas, dom, &nr), ENOENT);
	nr = 16;
	cr_assert_eq(ioasid_ioas_list(b, ids, &nr), 0);
	cr_assert_eq(nr, 1, "B lists only its own IOAS");
	cr_assert_eq(ids[0], mine);
	/* A's other ids (device, domain, VM) are no IOAS either */
	not_ioas[0] = v.dev;
	not_ioas[1] = v.domain;
	not_ioas[2] = v.vm ? v.vm : v.rioas;
	for (int i = 0; i < 3; i++)
		REFUSED(b, ioasid_ioas_get_info(b, not_ioas[i], &ii), ENOENT);

	/* devices */
	REFUSED(b, ioasid_device_unbind(b, v.dev), ENOENT);
	REFUSED(b, ioasid_device_attach(b, v.dev, mine, 0), ENOENT);
	REFUSED(b, ioasid_device_replace(b, v.dev, mine, 0), ENOENT);
	REFUSED(b, ioasid_device_detach(b, v.dev), ENOENT);
	REFUSED(b, ioasid_device_attach(b, mydev, v.ioas, 0), ENOENT);
	REFUSED(b, ioasid_device_dma(b, v.dev, 0x100000, buf, sizeof(buf), 0,
				     &done), ENOENT);
	REFUSED(b, ioasid_device_get_fd(b, v.dev, &fd), ENOENT);
	REFUSED(b, ioasid_device_bind(b, NIC, -1, &got), EBUSY);
	cr_assert_eq(ioasid_device_get_info(b, NIC, &di), 0);
	cr_assert(di.dev_id == 0 && di.ioas_id == 0 && di.domain_id == 0 &&
		  di.vm_id == 0, "B sees no ids of A's binding");

	/* VMs */
	if (v.vm) {
		REFUSED(b, ioasid_vm_get_info(b, v.vm, &vi), ENOENT);
		REFUSED(b, ioasid_vm_unbind(b, v.vm), ENOENT);
		REFUSED(b, ioasid_vm_set_policy(b, v.vm,
						IOASID_VM_FORBID_NONCOHERENT),
			ENOENT);
		REFUSED(b, ioasid_device_set_vm(b, mydev, v.vm), ENOENT);
		REFUSED(b, ioasid_device_set_vm(b, v.dev, 0), ENOENT);
		nr = 16;
		cr_assert_eq(ioasid_vm_list(b, ids, &nr), 0);
		cr_assert_eq(nr, 0, "B lists none of A's VMs");
	}

	/* faults and events: B's own fault is B's, A's stays A's */
	REFUSED(b, ioasid_device_dma(b, mydev, 0x40000000, buf, 1, 0, &done),
		EFAULT);
	nr = 4;
	cr_assert_eq(ioasid_fault_read(b, f, &nr), 0);
	cr_assert_eq(nr, 1, "B reads its own fault only");
	cr_assert_eq(f[0].dev_id, mydev);
	cr_assert_eq(ioasid_event_read(b, &ev), 0);
	cr_assert_eq(ev.id, mydev, "B's fault event is of B's device");
	REFUSED(b, ioasid_event_read(b, &ev), EAGAIN);

	victim_check(&v, "B's calls");
	victim_free(&v);
	ioasid_unref(b);
}

/* ---- quotas: every path that creates state --------------------------------- */

struct quota_fx {
	struct ioasid_ctx *ctx;
	uint32_t ioas;
	int memfd;
	struct snap before;
};

static void quota_begin(struct quota_fx *q)
{
	q->ctx = session_of(&A);
	q->memfd = test_memfd(64 * MiB);
	cr_assert_eq(ioasid_ioas_alloc(q->ctx, 0, &q->ioas), 0);
}

/* @n one-page mappings at 0x10000000 + i * @stride (none merge) */
static void map_pages_every(struct quota_fx *q, uint32_t ioas, int n,
			    uint64_t stride)
{
	for (int i = 0; i < n; i++) {
		uint64_t iova = 0x10000000 + (uint64_t)i * stride;

		cr_assert_eq(ioasid_map_file(q->ctx, ioas, q->memfd, 0, 0x1000,
					     RW | FIXED, &iova), 0, "map %d: %s",
			     i, ioasid_last_error(q->ctx));
	}
}

static void map_pages(struct quota_fx *q, uint32_t ioas, int n)
{
	map_pages_every(q, ioas, n, 0x2000);
}

static void snap_before(struct quota_fx *q)
{
	snapshot_take(q->ctx, &q->before, SNAP_STATUS);
}

/* @r is ENOSPC with a reason that says @quota, and nothing changed. */
static void over_quota(struct quota_fx *q, int r, const char *what,
		       const char *quota)
{
	struct snap now;

	cr_assert_eq(r, -ENOSPC, "%s: %d (%s), not -ENOSPC", what, r,
		     ioasid_last_error(q->ctx));
	cr_assert(strstr(ioasid_last_error(q->ctx), quota),
		  "%s: the reason \"%s\" does not name %s", what,
		  ioasid_last_error(q->ctx), quota);
	snapshot_take(q->ctx, &now, SNAP_STATUS);
	cr_assert(snapshot_equal(&q->before, &now),
		  "%s failed but changed the state", what);
	snapshot_free(&now);
	snapshot_free(&q->before);
}

static void quota_end(struct quota_fx *q)
{
	ioasid_unref(q->ctx);
	close(q->memfd);
}

Test(hostile, quota_ioas_alloc)
{
	struct quota_fx q;
	uint32_t id;

	quota_begin(&q);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(ioasid_ioas_alloc(q.ctx, 0, &id), 0);
	snap_before(&q);
	over_quota(&q, ioasid_ioas_alloc(q.ctx, IOASID_IOAS_RESTRICTED, &id),
		   "a fifth IOAS", "quota of 4 address spaces");
	quota_end(&q);
}

Test(hostile, quota_map)
{
	struct quota_fx q;
	uint64_t iova = 0x20000000;

	quota_begin(&q);
	map_pages(&q, q.ioas, 20);
	snap_before(&q);
	over_quota(&q, ioasid_map_file(q.ctx, q.ioas, q.memfd, 0, 0x1000,
				       RW | FIXED, &iova),
		   "a 21st mapping", "mapping quota of 20");
	quota_end(&q);
}

Test(hostile, quota_bytes)
{
	struct quota_fx q;
	uint64_t iova = 0;

	quota_begin(&q);
	cr_assert_eq(ioasid_map_file(q.ctx, q.ioas, q.memfd, 0, 60 * MiB, RW,
				     &iova), 0);
	snap_before(&q);
	iova = 0;
	over_quota(&q, ioasid_map_file(q.ctx, q.ioas, q.memfd, 0, 8 * MiB, RW,
				       &iova),
		   "8 MiB beyond 64M", "bytes mapped");
	quota_end(&q);
}

Test(hostile, quota_batch)
{
	struct quota_fx q;
	struct ioasid_map_entry e[3];
	uint64_t iovas[3];

	quota_begin(&q);
	map_pages(&q, q.ioas, 18);
	for (int i = 0; i < 3; i++)
		e[i] = (struct ioasid_map_entry){
			.iova = 0x30000000 + (uint64_t)i * 0x2000,
			.length = 0x1000 };
	snap_before(&q);
	over_quota(&q, ioasid_map_file_batch(q.ctx, q.ioas, q.memfd, e, 3,
					     RW | FIXED, iovas),
		   "a batch of 3 at 18 of 20", "mapping quota of 20");
	quota_end(&q);
}

Test(hostile, quota_copy)
{
	struct quota_fx q;
	uint32_t src;
	uint64_t iova = 0x40000000;

	quota_begin(&q);
	cr_assert_eq(ioasid_ioas_alloc(q.ctx, 0, &src), 0);
	map_pages_every(&q, src, 8, 0x1000);	/* 8 pieces, end to end */
	map_pages(&q, q.ioas, 8);
	snap_before(&q);
	/* one call, 8 mappings: 24 of 20 */
	over_quota(&q, ioasid_copy(q.ctx, q.ioas, src, 0x10000000, 0x8000,
				   RW | FIXED, &iova),
		   "a copy of 8 mappings at 16 of 20", "mapping quota of 20");
	quota_end(&q);
}

Test(hostile, quota_cut)
{
	struct quota_fx q;
	uint64_t iova = 0x50000000, done;

	quota_begin(&q);
	map_pages(&q, q.ioas, 19);
	cr_assert_eq(ioasid_map_file(q.ctx, q.ioas, q.memfd, 0, 0x3000,
				     RW | FIXED, &iova), 0);
	snap_before(&q);
	/* a hole in the middle leaves two pieces: 21 of 20 */
	over_quota(&q, ioasid_unmap(q.ctx, q.ioas, 0x50001000, 0x1000, 0,
				    &done),
		   "a cut at 20 of 20", "mapping quota of 20");
	quota_end(&q);
}

Test(hostile, quota_conversion_state)
{
	struct quota_fx q;
	struct ioasid_iova_range r;
	uint32_t rioas;

	quota_begin(&q);
	cr_assert_eq(ioasid_ioas_alloc(q.ctx, IOASID_IOAS_RESTRICTED, &rioas),
		     0);
	/* a page in each of three GiBs; 96K of state covers two of them */
	for (int i = 0; i < 3; i++) {
		uint64_t iova = (uint64_t)i * GiB;

		cr_assert_eq(ioasid_map_file(q.ctx, rioas, q.memfd, 0, 0x1000,
					     RW | FIXED, &iova), 0, "%s",
			     ioasid_last_error(q.ctx));
	}
	for (int i = 0; i < 2; i++) {
		r = (struct ioasid_iova_range){ (uint64_t)i * GiB,
						(uint64_t)i * GiB + 0xfff };
		cr_assert_eq(ioasid_convert(q.ctx, rioas, &r, 1,
					    IOASID_CONVERT_SHARED, NULL), 0,
			     "%s", ioasid_last_error(q.ctx));
	}
	snap_before(&q);
	r = (struct ioasid_iova_range){ 2 * GiB, 2 * GiB + 0xfff };
	over_quota(&q, ioasid_convert(q.ctx, rioas, &r, 1,
				      IOASID_CONVERT_SHARED, NULL),
		   "shared pages in a third GiB", "conversion state");
	quota_end(&q);
}

Test(hostile, quota_bind_needs_the_policy)
{
	struct quota_fx q;
	uint32_t dev;

	quota_begin(&q);
	snapshot_take(q.ctx, &q.before, SNAP_STATUS);
	{
		struct snap now;
		int r = ioasid_device_bind(q.ctx, GPU1, -1, &dev);

		cr_assert_eq(r, -EPERM, "bind of a device the policy does not "
			     "name: %d (%s)", r, ioasid_last_error(q.ctx));
		snapshot_take(q.ctx, &now, SNAP_STATUS);
		cr_assert(snapshot_equal(&q.before, &now));
		snapshot_free(&now);
		snapshot_free(&q.before);
	}
	quota_end(&q);
}

Test(hostile, quota_vms)
{
	struct quota_fx q;
	uint32_t vm;
	int fd1 = kvm_vm_fd(), fd2;

	if (fd1 < 0)
		cr_skip_test("no KVM VM: /dev/kvm is missing or refused");
	fd2 = kvm_vm_fd();
	cr_assert_geq(fd2, 0);
	quota_begin(&q);
	cr_assert_eq(ioasid_vm_bind(q.ctx, fd1, -1, &vm), 0, "%s",
		     ioasid_last_error(q.ctx));
	snap_before(&q);
	over_quota(&q, ioasid_vm_bind(q.ctx, fd2, -1, &vm), "a second VM",
		   "quota of 1 VMs");
	quota_end(&q);
	close(fd1);
	close(fd2);
}

/* ---- hotplug rights -------------------------------------------------------- */

Test(hostile, hotplug_rights)
{
	struct ioasid_ctx *a = session_of(&A), *b = session_of(&B);
	struct ioasid_ctx *admin = session_of(&ADMIN), *nodev = session_of(&NODEV);
	struct ioasid_device_info di;
	uint32_t dev;

	cr_assert_eq(ioasid_device_bind(a, NIC, -1, &dev), 0);
	/* another tenant's device: not B's to unplug */
	REFUSED(b, ioasid_sim_hotplug(b, NIC, 0), EPERM);
	/* an unbound device: only an administrator's */
	REFUSED(b, ioasid_sim_hotplug(b, NVME, 0), EPERM);
	/* a device A's policy does not name; any device for devices = none */
	REFUSED(a, ioasid_sim_hotplug(a, GPU1, 0), EPERM);
	REFUSED(nodev, ioasid_sim_hotplug(nodev, NVME, 0), EPERM);
	REFUSED(nodev, ioasid_sim_hotplug(nodev, NIC, 0), EPERM);
	/* an observer is read-only, even an administrator */
	cr_assert_eq(ioasid_set_observer(admin, 1), 0);
	REFUSED(admin, ioasid_sim_hotplug(admin, NIC, 0), EPERM);
	REFUSED(admin, ioasid_sim_hotplug(admin, NVME, 0), EPERM);
	cr_assert_eq(ioasid_device_get_info(a, NIC, &di), 0);
	cr_assert_eq(di.dev_id, dev, "A's binding survived every refusal");
	/* not observing, the administrator may unplug an unbound device */
	cr_assert_eq(ioasid_set_observer(admin, 0), 0);
	cr_assert_eq(ioasid_sim_hotplug(admin, NVME, 0), 0, "%s",
		     ioasid_last_error(admin));
	REFUSED(b, ioasid_device_bind(b, NVME, -1, &dev), ENODEV);
	REFUSED(b, ioasid_sim_hotplug(b, NVME, 1), EPERM);
	cr_assert_eq(ioasid_sim_hotplug(admin, NVME, 1), 0);
	/* A may unplug its own device and plug it back */
	cr_assert_eq(ioasid_sim_hotplug(a, NIC, 0), 0, "%s",
		     ioasid_last_error(a));
	REFUSED(b, ioasid_sim_hotplug(b, NIC, 1), EPERM);
	cr_assert_eq(ioasid_sim_hotplug(a, NIC, 1), 0, "%s",
		     ioasid_last_error(a));
	cr_assert_eq(ioasid_device_bind(b, NIC, -1, &dev), 0, "plugged back");
	cr_assert_eq(ioasid_device_bind(b, NVME, -1, &dev), 0, "plugged back");
	ioasid_unref(nodev);
	ioasid_unref(admin);
	ioasid_unref(b);
	ioasid_unref(a);
}

/* ---- connections ----------------------------------------------------------- */

Test(hostile, max_clients)
{
	struct ioasid_ctx *root = NULL, *c[MAX_CLIENTS], *extra = NULL;
	uint32_t ioas;
	int n = 0, r;

	cr_assert_eq(ioasid_new(d.uri, &root), 0);
	for (n = 0; n < MAX_CLIENTS - 1; n++)
		c[n] = session_of(n % 2 ? &A : &B);
	wait_sessions(root, MAX_CLIENTS);
	become(&B);
	r = ioasid_new(d.uri, &extra);
	become_root();
	cr_assert_lt(r, 0, "a connection beyond max-clients is refused");
	cr_assert_null(extra);
	/* everyone else is still served */
	for (int i = 0; i < n; i++)
		cr_assert_eq(ioasid_ioas_alloc(c[i], 0, &ioas), 0, "%s",
			     ioasid_last_error(c[i]));
	/* one leaves: a new one is served */
	ioasid_unref(c[--n]);
	wait_sessions(root, MAX_CLIENTS - 1);
	c[n++] = session_of(&B);
	cr_assert_eq(ioasid_ioas_alloc(c[n - 1], 0, &ioas), 0);
	while (n)
		ioasid_unref(c[--n]);
	ioasid_unref(root);
}

Test(hostile, a_client_that_never_reads_stalls_nobody)
{
	struct ioasid_ctx *root = NULL, *a = session_of(&A);
	struct ioasid_status st;
	struct ioasid_op op;
	uint32_t ioas, seq = 1;
	int hog = raw_session_of(&B), sndbuf = 4096;
	uint64_t sent = 0;

	cr_assert_eq(ioasid_new(d.uri, &root), 0);
	setsockopt(hog, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/*
	 * Requests, never a reply read, until ioasidd stops taking them: its
	 * replies fill the socket, so it must stop reading this client (and
	 * only this one).  The poll bound ends the pushing, nothing else: a
	 * daemon that blocked on this client instead hangs the calls below.
	 */
	for (;;) {
		struct pollfd p = { .fd = hog, .events = POLLOUT };

		ioasid_op_init(&op, IOASID_CMD_STATUS);
		op.out = &st;
		op.out_cap = sizeof(st);
		if (raw_request(hog, &op, seq, MSG_DONTWAIT) > 0) {
			seq++;
			sent++;
			cr_assert_lt(sent, 1000000, "ioasidd never pushed back");
			if (sent % 64 == 0)	/* the others are served */
				cr_assert_eq(ioasid_get_status(a, &st), 0);
			continue;
		}
		cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "send: %m");
		if (poll(&p, 1, 3000) == 0)
			break;
	}
	cr_assert_gt(sent, 64, "requests were taken before the push-back");
	{
		char peek;

		cr_assert_gt(recv(hog, &peek, 1, MSG_PEEK | MSG_DONTWAIT), 0,
			     "replies wait unread");
	}
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0, "%s",
			     ioasid_last_error(a));
		cr_assert_eq(ioasid_ioas_destroy(a, ioas), 0);
	}
	cr_assert(daemon_alive(&d));
	close(hog);
	wait_sessions(root, 2);
	ioasid_unref(a);
	ioasid_unref(root);
}

Test(hostile, a_client_that_vanishes_mid_request)
{
	struct ioasid_ctx *root = NULL, *a = session_of(&A);
	struct ioasid_status st;
	struct ioasid_op op;
	uint32_t ioas, base_ioas;
	int fds_before, memfd = test_memfd(MiB);
	char junk[64];

	cr_assert_eq(ioasid_new(d.uri, &root), 0);
	wait_sessions(root, 2);
	base_ioas = status_of(root).nr_ioas;
	fds_before = daemon_count_fds(&d);
	cr_assert_geq(fds_before, 0);

	for (int round = 0; round < 4; round++) {
		int s = raw_session_of(&B);
		uint32_t mine;

		/* state of its own, which must go with it */
		ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
		cr_assert_gt(raw_request(s, &op, 1, 0), 0);
		cr_assert_eq(raw_reply(s, &op), 0, "%s", op.errmsg);
		mine = op.out_id;
		cr_assert_eq(status_of(root).nr_ioas, base_ioas + 1);
		switch (round) {
		case 0: {
			/* a message cut short: its header promises more */
			struct nlmsghdr h = { .nlmsg_len = 4096,
					      .nlmsg_type = IOASID_MSG_TYPE,
					      .nlmsg_flags = NLM_F_REQUEST };

			memset(junk, 0, sizeof(junk));
			memcpy(junk, &h, sizeof(h));
			cr_assert_eq(send(s, junk, sizeof(junk), MSG_NOSIGNAL),
				     (ssize_t)sizeof(junk));
			break;
		}
		case 1:
			/* a request with a descriptor, gone before its reply */
			ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
			op.ioas_id = mine;
			op.fd = memfd;
			op.length = MiB;
			op.flags = RW;
			cr_assert_gt(raw_request(s, &op, 2, 0), 0);
			break;
		case 2:
			/* half a conversation: the write side shut */
			ioasid_op_init(&op, IOASID_CMD_STATUS);
			op.out = &st;
			op.out_cap = sizeof(st);
			cr_assert_gt(raw_request(s, &op, 2, 0), 0);
			shutdown(s, SHUT_WR);
			break;
		default:
			/* a burst of requests, then nothing */
			for (uint32_t i = 0; i < 32; i++) {
				ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
				if (raw_request(s, &op, 10 + i, MSG_DONTWAIT) < 0)
					break;
			}
		}
		close(s);
		wait_sessions(root, 2);
		/* its IOASes went with it; A is served */
		cr_assert_eq(ioasid_ioas_alloc(a, 0, &ioas), 0, "%s",
			     ioasid_last_error(a));
		cr_assert_eq(ioasid_ioas_destroy(a, ioas), 0);
		cr_assert_eq(status_of(root).nr_ioas, base_ioas,
			     "round %d: the departed session's IOASes stay",
			     round);
		cr_assert(daemon_alive(&d));
	}
	/* and every descriptor it held is closed (counted after a round trip) */
	for (int i = 0; i < 3000 && daemon_count_fds(&d) != fds_before; i++)
		sleep_ms(10);
	cr_assert_eq(daemon_count_fds(&d), fds_before,
		     "ioasidd kept descriptors of departed clients");
	close(memfd);
	ioasid_unref(a);
	ioasid_unref(root);
}
