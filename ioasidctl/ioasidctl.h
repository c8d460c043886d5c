/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl: what the subcommands share.
 *
 * Every subcommand is a function `int cmd_x(struct ctl *, argc, argv)`
 * that returns an exit status (enum ctl_exit).  argv[0] is the
 * subcommand's own name; options are parsed with ctl_opt(), positional
 * arguments follow at argv[optind].
 */
#ifndef IOASIDCTL_H
#define IOASIDCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <libioasid.h>

#include "util.h"

/* Exit statuses, documented in ioasidctl(8). */
enum ctl_exit {
	EXIT_OK		= 0,	/* done */
	EXIT_FAIL	= 1,	/* the operation failed */
	EXIT_USAGE	= 2,	/* bad command line */
	EXIT_UNREACHABLE = 3,	/* cannot reach ioasidd or open the backend */
};

struct ctl {
	const char *uri;		/* where the IOMMU state lives */
	struct ioasid_ctx *ctx;		/* opened by ctl_open() */
	bool json;			/* --json */
	bool batch;			/* running the lines of a batch */
	unsigned int line;		/* batch line number, 0 outside */
	bool subscribed;		/* events are being queued */
	bool own_only;			/* --own: do not ask to observe */
	const char *base_uri;		/* ctl->uri without --session's */
	const char *session;		/* --session NAME */
	const char *token_file;		/* --token-file, or token_path */
	char token_path[4096];
	char session_uri[8192];		/* uri?session=NAME&token-file=F */
	bool observer;			/* sees every client's objects */
	char observe_why[128];		/* why not, when the daemon said no */
	char cmd[64];			/* "ioas create", for messages */
	/* the running command's usage and arguments (ctl_opt()) */
	const char *usage;
	char **argv;
	int err;			/* errno of the next message (0: none) */
	/* the value a batch line "NAME=command ..." stores in NAME */
	bool has_result;
	bool result_is_addr;		/* stored as 0x... */
	uint64_t result;
};

struct cmd {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *summary;
};

/* ---- running subcommands ------------------------------------------------ */

/*
 * Runs argv[0] from @table: "help"/--help print the list; an unknown
 * name is a usage error.  @group is the path so far ("ioasidctl ioas").
 */
int ctl_dispatch(struct ctl *ctl, const struct cmd *table, size_t n,
		 const char *group, const char *usage, int argc,
		 char **argv);
/*
 * A command group ("ioasidctl ioas ..."): argv[0] is the group's name; with
 * no subcommand (or only --json) it runs @dflt.
 */
int ctl_dispatch_group(struct ctl *ctl, const struct cmd *table, size_t n,
		       const char *group, const char *usage, const char *dflt,
		       int argc, char **argv);
/* Runs one top-level command line (also each line of a batch). */
int ctl_run(struct ctl *ctl, int argc, char **argv);
/* Opens the context on ctl->uri unless it is open: EXIT_OK or 3. */
int ctl_open(struct ctl *ctl);

/* ---- options ------------------------------------------------------------- */

#define OPT_JSON	0x100
#define CTL_OPT_HELP	(-2)	/* --help was printed */
#define CTL_OPT_ERROR	(-3)	/* a usage error was printed */
#define COMMON_OPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "json", no_argument, NULL, OPT_JSON }

/*
 * getopt_long() with the common options (-h/--help, --json) handled and
 * errors reported in our words.  Returns the option, -1 at the end,
 * CTL_OPT_HELP or CTL_OPT_ERROR (turn those into a status with
 * ctl_opt_status()).  @shortopts must start with "h".
 */
int ctl_opt(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	    const struct option *longopts, const char *usage);
int ctl_opt_status(int opt);
/* Checks that between @min and @max positional arguments follow. */
int ctl_nargs(struct ctl *ctl, int argc, int min, int max);

/* ---- messages ------------------------------------------------------------ */

void ctl_err(struct ctl *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints "ioasidctl: CMD: message" and the hint to --help; returns 2. */
int ctl_usage(struct ctl *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * A library call failed with @r: prints "ioasidctl: <what>: <why>", where
 * why is ioasid_last_error(); returns 3 when the daemon went away, else 1.
 */
int ctl_fail(struct ctl *ctl, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A system call failed with errno @errnum (not the library). */
int ctl_syserr(struct ctl *ctl, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ctl_set_result(struct ctl *ctl, uint64_t value);
/* The same for an address (an IOVA): stored in hex. */
void ctl_set_result_addr(struct ctl *ctl, uint64_t iova);

/* ---- arguments ----------------------------------------------------------- */

int ctl_parse_id(struct ctl *ctl, const char *what, const char *arg,
		 uint32_t *id);
int ctl_parse_size(struct ctl *ctl, const char *what, const char *arg,
		   uint64_t *v);
/* "START-LAST" (inclusive) or "START+LENGTH", sizes as ctl_parse_size. */
int ctl_parse_range(struct ctl *ctl, const char *arg,
		    struct ioasid_iova_range *range);
/* "00:03.0" -> "0000:00:03.0"; anything else is copied as it is. */
void ctl_device_name(const char *arg, char *name, size_t len);
/* The device named by @arg: EXIT_OK, or 1 with a message. */
int ctl_device_info(struct ctl *ctl, const char *arg,
		    struct ioasid_device_info *info);
/* Binds the device to this session unless it already is. */
int ctl_bind(struct ctl *ctl, const char *arg, uint32_t *dev_id,
	     struct ioasid_device_info *info);

/* ---- lists from the library (malloc'ed; free() them) --------------------- */

int ctl_list_devices(struct ctl *ctl, struct ioasid_device_info **v,
		     uint32_t *nr);
/* The name of device @dev_id in @d (@nr entries), else @none. */
const char *ctl_name_of_device(const struct ioasid_device_info *d,
			       uint32_t nr, uint32_t dev_id, const char *none);
int ctl_list_iommus(struct ctl *ctl, struct ioasid_iommu_info **v,
		    uint32_t *nr);
int ctl_list_ioas(struct ctl *ctl, uint32_t **ids, uint32_t *nr);
/* Named sessions (ioasidd; -EOPNOTSUPP embedded). */
int ctl_list_sessions(struct ctl *ctl, struct ioasid_session_info **v,
		      uint32_t *nr);
int ctl_list_domains(struct ctl *ctl, uint32_t ioas_id,
		     struct ioasid_domain_info **v, uint32_t *nr);
int ctl_list_vms(struct ctl *ctl, uint32_t **ids, uint32_t *nr);
int ctl_list_nested(struct ctl *ctl, uint32_t ioas_id,
		    struct ioasid_nested_info **v, uint32_t *nr);
/* The vIOMMUs over an IOAS; the vDEVICEs of every vIOMMU over it. */
int ctl_list_viommus(struct ctl *ctl, uint32_t ioas_id,
		     struct ioasid_viommu_info **v, uint32_t *nr);
int ctl_list_vdevices(struct ctl *ctl, uint32_t ioas_id,
		      struct ioasid_vdevice_info **v, uint32_t *nr);

/* ---- words for flags ----------------------------------------------------- */

const char *snoop_mode_name(uint32_t mode);
const char *fault_reason_name(uint32_t reason);
const char *file_kind_name(uint32_t kind);
/* "rw", "r-", "-w" */
const char *prot_str(uint32_t flags);
/* Comma-separated words for set bits of a flag word (@names by bit). */
void flag_words(uint32_t flags, const char *const *names, size_t n,
		char *buf, size_t len);
void json_flag_words(struct json *j, const char *key, uint32_t flags,
		     const char *const *names, size_t n);
extern const char *const device_cap_names[14];
/* One device / IOMMU unit as a JSON object (the --json schema). */
void json_device(struct json *j, const struct ioasid_device_info *d);
void json_iommu(struct json *j, const struct ioasid_iommu_info *u);
extern const char *const platform_names[3];

/* ---- subcommands --------------------------------------------------------- */

int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_devices(struct ctl *ctl, int argc, char **argv);
int cmd_iommus(struct ctl *ctl, int argc, char **argv);
int cmd_ioas(struct ctl *ctl, int argc, char **argv);
int cmd_ioas_show(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
/* "identity,restricted" or "-" */
void ioas_flags_str(uint32_t flags, char *buf, size_t len);
/* The fields of struct ioasid_ioas_info into the current JSON object. */
void json_ioas_fields(struct json *j, const struct ioasid_ioas_info *info);
/* Who created an object (observers: ioasidd's clients), as JSON fields. */
void json_owner_fields(struct json *j, uint32_t pid, uint32_t uid);
int cmd_map(struct ctl *ctl, int argc, char **argv);
int cmd_unmap(struct ctl *ctl, int argc, char **argv);
int cmd_attach(struct ctl *ctl, int argc, char **argv);
int cmd_detach(struct ctl *ctl, int argc, char **argv);
int cmd_replace(struct ctl *ctl, int argc, char **argv);
int cmd_kvm(struct ctl *ctl, int argc, char **argv);
int cmd_monitor(struct ctl *ctl, int argc, char **argv);
int cmd_faults(struct ctl *ctl, int argc, char **argv);
int cmd_sim(struct ctl *ctl, int argc, char **argv);
int cmd_dma(struct ctl *ctl, int argc, char **argv);
int cmd_convert(struct ctl *ctl, int argc, char **argv);
int cmd_dirty(struct ctl *ctl, int argc, char **argv);
int cmd_batch(struct ctl *ctl, int argc, char **argv);
int cmd_session(struct ctl *ctl, int argc, char **argv);
int cmd_nested(struct ctl *ctl, int argc, char **argv);
/* Nested tables as a table (@indent before each line) or a JSON array. */
int nested_table(const struct ioasid_nested_info *v, uint32_t nr,
		 const char *indent);
void json_nested_array(struct json *j, const struct ioasid_nested_info *v,
		       uint32_t nr);
/*
 * The stage-1 data of a new nested table, from the options of 'nested
 * create' and 'viommu nested' (NESTED_DATA_OPTS): a VT-d first-stage
 * table (--root GPA [--width 48|57]) or the kernel's selftest mock's
 * (--selftest IOTLB).
 */
struct nested_data {
	uint32_t type;			/* enum ioasid_nested_type; 0: none */
	bool have_width;
	union {
		struct ioasid_nested_vtd_s1 vtd;
		struct ioasid_nested_selftest selftest;
	} u;
};
enum { OPT_NESTED_ROOT = 0x380, OPT_NESTED_WIDTH, OPT_NESTED_SELFTEST };
#define NESTED_DATA_OPTS \
	{ "root", required_argument, NULL, OPT_NESTED_ROOT }, \
	{ "width", required_argument, NULL, OPT_NESTED_WIDTH }, \
	{ "selftest", required_argument, NULL, OPT_NESTED_SELFTEST }
/* Take option @c (one of NESTED_DATA_OPTS): 0, or the exit status. */
int nested_data_opt(struct ctl *ctl, int c, const char *arg,
		    struct nested_data *d);
/* After the options: one kind given, and whole; 0 or the exit status. */
int nested_data_done(struct ctl *ctl, struct nested_data *d);
size_t nested_data_size(const struct nested_data *d);
/* " (root 0x..., 48-bit)" or " (selftest, IOTLB 0x...)" into @f. */
void nested_data_print(FILE *f, const struct nested_data *d);
void nested_data_json(struct json *j, const struct nested_data *d);
int cmd_viommu(struct ctl *ctl, int argc, char **argv);
int cmd_vdevice(struct ctl *ctl, int argc, char **argv);
/*
 * vIOMMUs and vDEVICEs as tables (@indent before each line; vDEVICEs with
 * the names of @devs) or JSON arrays.
 */
int viommu_table(const struct ioasid_viommu_info *v, uint32_t nr,
		 const char *indent);
void json_viommu_array(struct json *j, const struct ioasid_viommu_info *v,
		       uint32_t nr);
int vdevice_table(const struct ioasid_vdevice_info *v, uint32_t nr,
		  const struct ioasid_device_info *devs, uint32_t nr_devs,
		  const char *indent);
void json_vdevice_array(struct json *j, const struct ioasid_vdevice_info *v,
			uint32_t nr, const struct ioasid_device_info *devs,
			uint32_t nr_devs);
int cmd_daemon(struct ctl *ctl, int argc, char **argv);
/*
 * --session: make ctl->uri name the session and its token file (an exit
 * status); after opening, refuse a session without linger.
 */
int ctl_session_uri(struct ctl *ctl);
int ctl_session_check(struct ctl *ctl);

/*
 * Through ioasidd, lists show only this session's objects unless the
 * daemon lets us observe: say so once on stderr (@what: "address spaces").
 */
void ctl_note_session_view(struct ctl *ctl, const char *what);

/* For batch mode: subscribe the session to every event group. */
int ctl_subscribe_all(struct ctl *ctl);

#endif
