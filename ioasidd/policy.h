/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioasidd.conf: who may use the daemon and within which limits.
 *
 * An INI-style file (ioasidd.conf(5)):
 *
 *   [daemon]         socket-group, socket-mode, max-clients
 *   [default]        limits of every client no other section matches
 *   [user NAME|UID]  limits of one user
 *   [group NAME|GID] limits of members of a group (primary or
 *                    supplementary)
 *
 * Keys a user or group section leaves out come from [default], and keys
 * [default] leaves out from the built-in defaults.  A client gets the
 * first [user] section naming its uid, else the first [group] section
 * naming one of its groups (file order), else [default].  Root gets
 * everything unless a [user root] / [user 0] section says otherwise.
 *
 * Parsing is strict: unknown keys or sections, duplicates, bad values
 * and unknown user or group names are errors with a line number.
 */
#ifndef IOASIDD_POLICY_H
#define IOASIDD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"

#define POLICY_UNLIMITED	UINT64_MAX

/* What a section may set; each key also has a bit in .set. */
struct policy_limits {
	uint32_t set;			/* enum policy_key bits given */
	bool allow;			/* may connect at all */
	uint64_t max_ioas;
	uint64_t max_mappings;
	uint64_t max_bytes_mapped;
	uint64_t max_vms;
	uint64_t max_conversion_state;	/* bytes of shared/private state */
	bool allow_noncoherent;
	bool trust_hints;
	bool observe;			/* may see all clients' objects */
	/*
	 * may receive its devices' VFIO files (ioasid_device_get_fd): a
	 * VFIO cdev bound to the daemon's iommufd can attach to any page
	 * table in it, so only clients trusted with that get them
	 */
	bool device_fds;
	/* seconds a named session outlives its connection (0: none) */
	uint64_t linger;
	/* device names or fnmatch(3) globs; all_devices: "*" / "all" */
	bool all_devices;
	char **devices;
	uint32_t nr_devices;
};

enum policy_section_kind {
	POLICY_DEFAULT,
	POLICY_USER,
	POLICY_GROUP,
};

struct policy_section {
	enum policy_section_kind kind;
	uint32_t id;			/* uid or gid */
	char label[64];			/* "user qemu", for messages */
	unsigned int line;
	struct policy_limits lim;
};

struct policy {
	/* [daemon] */
	char socket_group[64];		/* empty: the daemon's group */
	uint32_t socket_mode;		/* default 0660 */
	uint32_t max_clients;		/* default 1024 */
	/* [default], then the user and group sections in file order */
	struct policy_section def;
	struct policy_section *sections;
	size_t nr_sections;
	char path[256];			/* "" for built-in defaults */
};

/* The verdict for one client. */
struct policy_result {
	bool allow;
	char label[64];			/* the section that matched */
	struct policy_limits lim;	/* devices point into the policy */
};

/*
 * policy_load - read @path
 * @missing_ok: a missing file means built-in defaults (the default path)
 * @errmsg: "FILE:LINE: reason" on failure
 *
 * Returns 0 or a negative errno (-EINVAL for syntax and value errors).
 */
int policy_load(const char *path, bool missing_ok, struct policy **out,
		char *errmsg, size_t errlen);
/* Parse from memory (tests); @name is used in messages. */
int policy_parse(const char *text, const char *name, struct policy **out,
		 char *errmsg, size_t errlen);
void policy_free(struct policy *p);

/* Decide for @uid with primary group @gid and supplementary @groups. */
void policy_lookup(const struct policy *p, uid_t uid, gid_t gid,
		   const gid_t *groups, size_t nr_groups,
		   struct policy_result *res);

/*
 * Session limits from a verdict; @names are the devices the backend has
 * (globs are expanded against them and also kept as patterns, so a core
 * matching either exact names or globs gets it right).  The result owns
 * its device array: free with policy_limits_release().
 */
int policy_session_limits(const struct policy_result *res,
			  const char *const *names, size_t nr_names,
			  struct session_limits *limits);
void policy_limits_release(struct session_limits *limits);

#endif
