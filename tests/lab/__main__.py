# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m tests.lab up|down|status|serve`` (run from the repository root)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.lab import process
from tests.lab.config import DEFAULT_CONFIG, DEFAULT_STATE_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description="The launchready lab: Cloudflare API emulator and authoritative DNS on loopback.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the lab in the background and print its endpoints"),
                       ("down", "stop the lab"),
                       ("status", "print the endpoints of the running lab; exit 1 if it is down"),
                       ("serve", "run the lab in the foreground (what `up` starts)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                             help="where state.json, endpoints.json and lab.log live (default: %(default)s)")
        if name in ("up", "serve"):
            command.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="zones and tokens to start with (default: %(default)s)")
        if name == "serve":
            command.add_argument("--exit-with-pid", type=int, help="stop when this process is gone")
    args = parser.parse_args(argv)

    if args.command == "serve":
        # Imported here: only this command needs the servers (and jsonschema, dnspython).
        from tests.lab.server import serve  # pylint: disable=import-outside-toplevel

        return serve(args.state_dir.resolve(), args.config.resolve(), args.exit_with_pid)
    if args.command == "up":
        try:
            endpoints, _child = process.start(args.state_dir, args.config)
        except process.LabProcessError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(json.dumps(endpoints, indent=2, sort_keys=True))
        return 0
    if args.command == "down":
        print("stopped" if process.stop(args.state_dir) else "not running")
        return 0
    endpoints = process.running(args.state_dir.resolve())
    if endpoints is None:
        print("down")
        return 1
    print(json.dumps(dict(endpoints, status="up"), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
