"""``python -m backends.lab up|down|status|kill-host N``: the lab from a shell (scripts/test uses it)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from backends.lab import lab
    from backends.lab.hosts import kill_host

    parser = argparse.ArgumentParser(prog="novacron lab", description="Manage the libvirt lab.")
    parser.add_argument("action", choices=["up", "down", "status", "kill-host"])
    parser.add_argument("host", nargs="?", type=int, help="host index for kill-host")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.action == "up":
            info = lab.up()
            print(f"lab up in {time.monotonic() - started:.1f} s: "
                  + ", ".join(h.uri for h in info.hosts) + f"; domain type {info.domain_type}")
        elif args.action == "down":
            stopped = lab.down()
            print(f"lab down: stopped {', '.join(stopped) or 'nothing'}")
        elif args.action == "kill-host":
            if args.host is None:
                parser.error("kill-host needs a host index")
            print(f"killed {kill_host(lab.lab_hosts()[args.host])}")
        else:
            print("\n".join(lab.status_lines()))
    except lab.LabError as exc:
        print(f"novacron lab: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
