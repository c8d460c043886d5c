#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/test_device once more, through a real ioasidd (see conformance.sh).
#
# One daemon serves every test, so a test must leave shared state as it
# found it.  hotplug::owner_hears_even_unsubscribed unplugs the NIC and
# does not plug it back, which breaks every later test that binds it;
# it is left out here until it does.
exec "$(dirname "$0")/conformance.sh" "${top_builddir:-.}/tests/test_device" \
	--filter='!(hotplug/owner_hears_even_unsubscribed)' "$@"
