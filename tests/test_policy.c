/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd.conf (ioasidd/policy.c), no daemon: sections, values and
 * precedence, session limits, strict errors with line numbers, the
 * built-in policy when the default file is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>

#include "proto_fixture.h"
#include "policy.h"

/* ========================================================================== */
/* policy                                                                     */
/* ========================================================================== */

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	char err[320] = "";

	cr_assert_eq(policy_parse(text, "t.conf", &p, err, sizeof(err)), 0,
		     "%s", err);
	return p;
}

static void parse_fails(const char *text, const char *where,
			const char *part)
{
	struct policy *p = NULL;
	char err[320] = "";

	cr_assert_eq(policy_parse(text, "t.conf", &p, err, sizeof(err)),
		     -EINVAL, "should fail: %s", text);
	cr_assert(strstr(err, where), "\"%s\" should name %s", err, where);
	cr_assert(strstr(err, part), "\"%s\" should say %s", err, part);
	cr_assert_null(p);
}

Test(policy, sections_values_and_precedence)
{
	struct policy *p = parse_ok(
		"# comment\n"
		"[daemon]\n"
		"socket-mode = 0640\n"
		"max-clients = 10\n"
		"[default]\n"
		"max-ioas = 4   # trailing comment\n"
		"max-bytes-mapped = 64K\n"
		"devices = none\n"
		"\n"
		"[group 4242]\n"
		"devices = 0000:00:0[12].* 0000:01:00.0\n"
		"max-mappings = unlimited\n"
		"[user 1000]\n"
		"max-ioas = 1\n"
		"allow-noncoherent = yes\n"
		"trust-hints = on\n"
		"observe = yes\n"
		"[user 1001]\n"
		"allow = no\n");
	struct policy_result res;
	gid_t groups[] = { 7, 4242 };

	cr_assert_eq(p->socket_mode, 0640);
	cr_assert_eq(p->max_clients, 10);

	policy_lookup(p, 1000, 4242, groups, 2, &res);
	cr_assert(res.allow);
	cr_assert_str_eq(res.label, "user 1000", "user beats group");
	cr_assert_eq(res.lim.max_ioas, 1);
	cr_assert_eq(res.lim.max_bytes_mapped, 64 * 1024, "from [default]");
	cr_assert(res.lim.allow_noncoherent);
	cr_assert(res.lim.trust_hints);
	cr_assert(res.lim.observe);
	cr_assert_eq(res.lim.nr_devices, 0);
	cr_assert(!res.lim.all_devices);

	policy_lookup(p, 2000, 100, groups, 2, &res);
	cr_assert_str_eq(res.label, "group 4242", "supplementary group");
	cr_assert_eq(res.lim.max_ioas, 4);
	cr_assert_eq(res.lim.max_mappings, POLICY_UNLIMITED);
	cr_assert_eq(res.lim.nr_devices, 2);
	cr_assert(!res.lim.allow_noncoherent, "built-in default");
	cr_assert(!res.lim.observe, "built-in default");

	policy_lookup(p, 2000, 100, NULL, 0, &res);
	cr_assert_str_eq(res.label, "default");
	cr_assert_eq(res.lim.max_mappings, 4194304, "built-in default");

	policy_lookup(p, 1001, 100, NULL, 0, &res);
	cr_assert(!res.allow);

	policy_lookup(p, 0, 0, NULL, 0, &res);
	cr_assert(res.allow, "root gets everything");
	cr_assert(res.lim.all_devices);
	cr_assert(res.lim.observe);
	cr_assert_eq(res.lim.max_ioas, POLICY_UNLIMITED);
	policy_free(p);

	p = parse_ok("[user 0]\nmax-ioas = 3\n");
	policy_lookup(p, 0, 0, NULL, 0, &res);
	cr_assert_eq(res.lim.max_ioas, 3, "unless configured otherwise");
	policy_free(p);
}

Test(policy, session_limits_expand_globs)
{
	struct policy *p = parse_ok("[default]\n"
				    "devices = 0000:00:0[12].* 0000:09:00.0\n"
				    "max-ioas = unlimited\n");
	const char *names[] = { "0000:00:01.0", "0000:00:02.1",
				"0000:00:03.0" };
	struct session_limits l;
	struct policy_result res;

	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_eq(l.max_ioas, UINT32_MAX);
	/* the pattern, its two matches and the plain name */
	cr_assert_eq(l.nr_devices, 4);
	cr_assert_str_eq(l.devices[0], "0000:00:0[12].*");
	cr_assert_str_eq(l.devices[1], "0000:00:01.0");
	cr_assert_str_eq(l.devices[2], "0000:00:02.1");
	cr_assert_str_eq(l.devices[3], "0000:09:00.0");
	policy_limits_release(&l);

	policy_free(p);
	p = parse_ok("[default]\ndevices = none\n");
	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_not_null(l.devices, "none is an empty list, not NULL");
	cr_assert_eq(l.nr_devices, 0);
	policy_limits_release(&l);
	policy_free(p);

	p = parse_ok("[default]\ndevices = *\n");
	policy_lookup(p, 1234, 1234, NULL, 0, &res);
	cr_assert_eq(policy_session_limits(&res, names, 3, &l), 0);
	cr_assert_null(l.devices, "all devices");
	policy_free(p);
}

Test(policy, strict_errors_with_line_numbers)
{
	parse_fails("[default]\n\nfoo = 1\n", "t.conf:3:", "unknown key");
	parse_fails("[default]\nmax-ioas = 1\nmax-ioas = 2\n", ":3:", "twice");
	parse_fails("[default]\n[default]\n", ":2:", "twice");
	parse_fails("[user 5]\n[user 5]\n", ":2:", "already");
	parse_fails("max-ioas = 1\n", ":1:", "outside");
	parse_fails("[default]\nallow = maybe\n", ":2:", "yes or no");
	parse_fails("[default]\nmax-ioas = -1\n", ":2:", "not a number");
	parse_fails("[default]\nmax-ioas = 12x\n", ":2:", "not a number");
	parse_fails("[default]\nmax-ioas = 99999999999\n", ":2:", "maximum");
	parse_fails("[default]\nmax-bytes-mapped = 4Q\n", ":2:", "suffix");
	parse_fails("[user no-such-user-here]\n", ":1:", "no user");
	parse_fails("[group no-such-group-here]\n", ":1:", "no group");
	parse_fails("[frobnicate]\n", ":1:", "unknown section");
	parse_fails("[default\n", ":1:", "]");
	parse_fails("[default x]\n", ":1:", "no argument");
	parse_fails("[user]\n", ":1:", "name");
	parse_fails("[default]\nmax-ioas =\n", ":2:", "missing value");
	parse_fails("[default]\njust words\n", ":2:", "key = value");
	parse_fails("[daemon]\nsocket-mode = 0999\n", ":2:", "octal");
	parse_fails("[daemon]\nmax-clients = 0\n", ":2:", "max-clients");
	parse_fails("[daemon]\nmax-ioas = 1\n", ":2:", "[daemon]");
	parse_fails("[default]\ndevices = a b\tc none\n", ":2:", "devices");
}

Test(policy, missing_default_file_means_builtin)
{
	struct policy *p = NULL;
	char err[320];

	cr_assert_eq(policy_load("/nonexistent/ioasidd.conf", true, &p, err,
				 sizeof(err)), 0);
	cr_assert_eq(p->socket_mode, 0660);
	policy_free(p);
	cr_assert_eq(policy_load("/nonexistent/ioasidd.conf", false, &p, err,
				 sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/ioasidd.conf"));
}

