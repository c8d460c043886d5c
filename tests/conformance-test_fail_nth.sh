#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/test_fail_nth once more, through a real ioasidd (see conformance.sh):
# the failures then hit the client side of every call.
exec "$(dirname "$0")/conformance.sh" "${top_builddir:-.}/tests/test_fail_nth" "$@"
