/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl - inspect and drive I/O address spaces through libioasid.
 *
 * main() parses the global options and hands the rest of the command line
 * to the dispatcher, which looks the subcommand up in commands[] below.
 * Each subcommand lives in its own cmd_*.c file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ioasid/proto.h>

#include "ioasidctl.h"

static const struct cmd commands[] = {
	{ "status", cmd_status, "backend, topology, daemon and object counts" },
	{ "devices", cmd_devices, "list the devices and their state" },
	{ "iommus", cmd_iommus, "list the IOMMU units and what they can do" },
	{ "ioas", cmd_ioas, "list, show, create or destroy address spaces" },
	{ "show", cmd_show, "show ioas N: the same as ioas show N" },
	{ "map", cmd_map, "map a file (or an inherited fd) into an IOAS" },
	{ "unmap", cmd_unmap, "unmap a range, or everything, from an IOAS" },
	{ "dirty", cmd_dirty, "dirty tracking of an IOAS: start, stop, read" },
	{ "convert", cmd_convert, "make pages of a restricted IOAS private or "
	  "shared" },
	{ "attach", cmd_attach, "attach a device to an IOAS" },
	{ "detach", cmd_detach, "detach a device from its IOAS" },
	{ "replace", cmd_replace, "move an attached device to another IOAS" },
	{ "nested", cmd_nested, "nested (stage-1) tables over a nest-parent "
	  "IOAS" },
	{ "viommu", cmd_viommu, "vIOMMUs over a nest-parent IOAS: create, "
	  "invalidate" },
	{ "vdevice", cmd_vdevice, "virtual IDs of devices on a vIOMMU" },
	{ "kvm", cmd_kvm, "VMs: WBINVD state and which devices cause it" },
	{ "monitor", cmd_monitor, "print events as they happen" },
	{ "faults", cmd_faults, "fault records; fault queues and page requests" },
	{ "dma", cmd_dma, "make a simulated device do DMA" },
	{ "sim", cmd_sim, "print the topology (ioasid-topology(5)); hotplug" },
	{ "batch", cmd_batch, "run subcommands from a file in one session" },
	{ "session", cmd_session, "sessions in ioasidd: list them, drop a lingering one" },
	{ "daemon", cmd_daemon, "ioasidd itself: upgrade (re-execute it)" },
	{ "script", cmd_batch, "the same as batch" },
};

static const char usage_head[] =
	"Usage: ioasidctl [--uri URI] [--json] [--own] [--session NAME]\n"
	"                 [--token-file FILE] COMMAND [ARGS...]\n"
	"       ioasidctl COMMAND --help\n"
	"\n"
	"Inspect and drive IOMMU I/O address spaces through libioasid.\n"
	"\n"
	"Options:\n"
	"  --uri URI    where the IOMMU state lives: unix:PATH (ioasidd),\n"
	"               sim, sim:TOPOLOGY, iommufd, vfio-type1 (default:\n"
	"               $IOASID_URI, else unix:" IOASID_DEFAULT_SOCKET ")\n"
	"  --json       print JSON instead of tables\n"
	"  --own        through ioasidd, show only this session's objects\n"
	"               (by default ioasidctl asks to see every client's)\n"
	"  --session NAME  work in ioasidd's session NAME: made by the first\n"
	"               command, taken over by the next ones, it keeps its\n"
	"               objects between commands for the policy's linger;\n"
	"               implies --own\n"
	"  --token-file FILE  where --session keeps the session's token\n"
	"               (default $XDG_RUNTIME_DIR/ioasidctl/sessions/NAME)\n"
	"  -h, --help   print this help\n"
	"  --version    print the version\n"
	"\n"
	"Commands:\n";

static const char usage_tail[] =
	"\n"
	"Exit status: 0 done, 1 the operation failed, 2 usage error,\n"
	"3 cannot reach ioasidd or open the backend.\n"
	"Objects created through ioasidd belong to the connection and go\n"
	"away with it: use 'ioasidctl batch' to create, map, attach and\n"
	"show in one session, or --session NAME to keep them across\n"
	"commands.\n"
	"See ioasidctl(8).\n";

static void print_commands(const struct cmd *table, size_t n, FILE *f)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-10s %s\n", table[i].name, table[i].summary);
}

static int run_help(struct ctl *ctl, const struct cmd *table, size_t n,
		    const char *group, const char *usage, int argc,
		    char **argv)
{
	char *help_argv[16];
	int i;

	if (argc < 2) {
		fputs(usage, stdout);
		print_commands(table, n, stdout);
		if (table == commands)
			fputs(usage_tail, stdout);
		return EXIT_OK;
	}
	/* "help ioas create" runs "ioas create --help" */
	for (i = 1; i < argc && i < (int)ARRAY_SIZE(help_argv) - 2; i++)
		help_argv[i - 1] = argv[i];
	help_argv[i - 1] = (char *)"--help";
	help_argv[i] = NULL;
	return ctl_dispatch(ctl, table, n, group, usage, i, help_argv);
}

int ctl_dispatch(struct ctl *ctl, const struct cmd *table, size_t n,
		 const char *group, const char *usage, int argc, char **argv)
{
	size_t len = strlen(ctl->cmd);

	if (argc < 1) {
		fputs(usage, stderr);
		print_commands(table, n, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[0], "help"))
		return run_help(ctl, table, n, group, usage, argc, argv);
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))
		return run_help(ctl, table, n, group, usage, 1, argv);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[0], table[i].name))
			continue;
		snprintf(ctl->cmd + len, sizeof(ctl->cmd) - len, "%s%s",
			 len ? " " : "", table[i].name);
		optind = 0;	/* glibc: restart getopt for this argv */
		return table[i].fn(ctl, argc, argv);
	}
	ctl_err(ctl, "'%s' is not a command of %s", argv[0], group);
	fprintf(stderr, "Try '%s help'.\n", group);
	return EXIT_USAGE;
}

int ctl_run(struct ctl *ctl, int argc, char **argv)
{
	ctl->cmd[0] = '\0';
	ctl->usage = NULL;
	ctl->argv = NULL;
	ctl->has_result = false;
	/* "--json COMMAND": the one global option a batch line may start with */
	while (argc > 1 && !strcmp(argv[0], "--json")) {
		ctl->json = true;
		argc--;
		argv++;
	}
	return ctl_dispatch(ctl, commands, ARRAY_SIZE(commands), "ioasidctl",
			    usage_head, argc, argv);
}

static const char *default_uri(void)
{
	const char *env = getenv("IOASID_URI");

	return env && *env ? env : "unix:" IOASID_DEFAULT_SOCKET;
}

enum { OPT_URI = 0x200, OPT_VERSION, OPT_OWN, OPT_SESSION, OPT_TOKEN_FILE };

static const struct option global_opts[] = {
	{ "uri", required_argument, NULL, OPT_URI },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "own", no_argument, NULL, OPT_OWN },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or the exit status. */
static int parse_global(struct ctl *ctl, int argc, char **argv)
{
	int c;

	for (;;) {
		c = ctl_opt(ctl, argc, argv, "+h", global_opts, usage_head);
		switch (c) {
		case -1:
			return -1;
		case OPT_URI:
			if (!*optarg)
				return ctl_usage(ctl, "--uri needs a URI");
			ctl->uri = optarg;
			break;
		case OPT_OWN:
			ctl->own_only = true;
			break;
		case OPT_SESSION:
			if (!*optarg)
				return ctl_usage(ctl, "--session needs a name");
			ctl->session = optarg;
			break;
		case OPT_TOKEN_FILE:
			if (!*optarg)
				return ctl_usage(ctl, "--token-file needs a file");
			ctl->token_file = optarg;
			break;
		case OPT_VERSION:
			printf("ioasidctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		case CTL_OPT_HELP:
			print_commands(commands, ARRAY_SIZE(commands), stdout);
			fputs(usage_tail, stdout);
			return EXIT_OK;
		default:
			return ctl_opt_status(c);
		}
	}
}

int main(int argc, char **argv)
{
	struct ctl ctl = { .uri = default_uri() };
	int status;

	status = parse_global(&ctl, argc, argv);
	if (status >= 0)
		return status;
	if (ctl.token_file && !ctl.session)
		return ctl_usage(&ctl, "--token-file goes with --session NAME");
	status = ctl_session_uri(&ctl);
	if (status)
		return status;
	status = ctl_run(&ctl, argc - optind, argv + optind);
	ioasid_unref(ctl.ctx);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ioasidctl: cannot write output: %s\n",
			strerror(errno));
		return status ? status : EXIT_FAIL;
	}
	return status;
}
