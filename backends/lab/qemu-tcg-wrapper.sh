#!/bin/sh
# QEMU wrapper the lab's libvirt runs for TCG guests. It works around a QEMU bug fixed upstream in
# 2024 ("migration: ... cpu_physical_memory_sync_dirty_bitmap() ... forgot to bring the TCG TLB up
# to date after clearing some of the dirty memory bitmap bits", fixing commit aa8dc044772): on
# QEMU < 9.0 a live migration of a TCG guest loses stores made through stale TLB entries once
# pre-copy runs more than one round, and the destination kernel panics (seen here in 5 of 5 runs
# at 64 MiB/s). The buggy fast path is taken only when the RAM block's length is a multiple of
# 64 pages, so the guest RAM is grown by 8 KiB (both sides run this wrapper, so they agree).
prev=""
for arg; do
  shift
  if [ "$prev" = "-m" ]; then
    case "$arg" in *[!0-9]*) ;; *) arg="$((arg * 1024 + 8))k" ;; esac
  fi
  case "$arg" in
    *'"id":"pc.ram","size":'*)
      size=${arg##*\"size\":}; size=${size%%[!0-9]*}
      arg=$(printf '%s' "$arg" | sed "s/\"size\":$size/\"size\":$((size + 8192))/") ;;
  esac
  prev="$arg"
  set -- "$@" "$arg"
done
exec "${NOVACRON_QEMU:-/usr/bin/qemu-system-x86_64}" "$@"
