#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Every command ioasidctl lists has the whole surface a user touches, so
# that a command added later cannot miss a piece of it:
#  - "ioasidctl CMD --help" (and each subcommand's of a group, as
#    "ioasidctl CMD help" lists them) prints its usage on stdout, nothing
#    on stderr, exit status 0;
#  - the bash completion offers the command, each subcommand, and every
#    --option of its --help's synopsis and option list (the completion
#    function run on a command line, as bash runs it, without
#    bash-completion);
#  - ioasidctl(8) has an entry for it: a line starting "*CMD*", and one
#    naming "*CMD SUB*" (or "*CMD* [*SUB*]", the default subcommand).
set -u
srcdir=$(cd "${top_srcdir:-.}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
CTL=$builddir/ioasidctl/ioasidctl
[ -x "$CTL" ] || { echo "$CTL is not built"; exit 99; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }

# the names under "Commands:" / "Subcommands:" of a help text (stdin)
names() { awk '/^(Sub)?[Cc]ommands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on && !/^  / { on = 0 }'; }

# what the completion offers for a command line ending in the word to complete
complete_line() {
	bash -c '
		PATH=$1:$PATH
		. "$2"
		unset -f _init_completion
		COMP_LINE=$3 COMP_POINT=${#3} COMP_WORDBREAKS=$4
		_ioasidctl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$builddir/ioasidctl" \
		"$srcdir/completion/ioasidctl" "$1" "$(printf ' \t\n"'"'"'><=;|&(:')"
}

"$CTL" help > "$tmp/help" 2>&1
cmds=$(names < "$tmp/help")
[ -n "$cmds" ] && ok "ioasidctl help lists commands" ||
	{ bad "ioasidctl help lists no commands"; exit 1; }
top=$(complete_line "ioasidctl ")
man=$srcdir/man/ioasidctl.8.scd

for c in $cmds; do
	[ "$c" = help ] && continue
	subs=
	if "$CTL" "$c" help > "$tmp/sub" 2> /dev/null &&
	   grep -q '^Subcommands:' "$tmp/sub"; then
		subs=$(names < "$tmp/sub")
	fi
	grep -qx -- "$c" <<< "$top" && ok "completion offers '$c'" ||
		bad "completion does not offer '$c'"
	grep -qE "^\*$c[* ]|^\*.*, \*$c[* ]" "$man" && ok "ioasidctl(8) has '$c'" ||
		bad "ioasidctl(8) has no entry '*$c*'"
	for s in "" $subs; do
		line="$c${s:+ $s}"
		"$CTL" $line --help > "$tmp/out" 2> "$tmp/err"
		rc=$?
		if [ $rc -eq 0 ] && [ ! -s "$tmp/err" ] &&
		   grep -qE "^Usage: ioasidctl ($line|script|batch)" "$tmp/out"; then
			ok "'$line --help' prints its usage"
		else
			bad "'$line --help': status $rc, $(head -2 "$tmp/out" "$tmp/err" | tr '\n' ' ')"
			continue
		fi
		if [ -n "$s" ]; then
			complete_line "ioasidctl $c " | grep -qx -- "$s" &&
				ok "completion offers '$c $s'" ||
				bad "completion does not offer '$c $s'"
			grep -qE "^\*(.*\*)?$c $s\*|^\*$c\* \[\*$s\*\]" "$man" &&
				ok "ioasidctl(8) has '$c $s'" ||
				bad "ioasidctl(8) has no entry '*$c* *$s*'"
		fi
		offered=$(complete_line "ioasidctl $line --")
		# the options of the synopsis (up to the first blank line) and
		# of the option list (lines that start with one), not of prose
		for o in $(awk 'NR == 1, /^$/ { print; next } /^ +(-[a-zA-Z], )?--[a-z]/' "$tmp/out" |
			   grep -oE -- '--[a-z][a-z-]+' | sort -u); do
			case $o in --help|--version) continue ;; esac
			# global options are offered before the command
			case " --uri --own --session --token-file " in *" $o "*) continue ;; esac
			grep -qx -- "$o" <<< "$offered" &&
				ok "completion offers '$line $o'" ||
				bad "completion does not offer '$line $o'"
		done
	done
done
echo "$((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
