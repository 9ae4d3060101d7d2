# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let `ansible-test sanity --venv` bootstrap pip on machines that cannot reach ansible-test's CDN.

ansible-test downloads a get-pip script from ci-files.testing.ansible.com unless a copy sits in
~/.ansible/test/cache/get_pip_<version>.py. This writes such a copy that installs pip from the
interpreter's own ensurepip wheel and the rest from the package index pip is configured for.
"""

from __future__ import annotations

import pathlib
import re

import ansible_test

BOOTSTRAP = '''\
"""Written by launchready.core's tests/tools/seed_ansible_test_pip.py: get-pip without the download."""
import subprocess
import sys

packages = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + packages)
'''


def pip_version_ansible_test_wants() -> str:
    source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"pip='([0-9.]+)'", source.read_text(encoding="utf-8"))
    if not match:
        raise SystemExit("cannot find the pip version in %s; update tests/tools/seed_ansible_test_pip.py" % source)
    return match.group(1)


def main() -> None:
    version = pip_version_ansible_test_wants()
    cache = pathlib.Path.home() / ".ansible" / "test" / "cache" / ("get_pip_%s.py" % version.replace(".", "_"))
    if cache.exists():
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(BOOTSTRAP, encoding="utf-8")
    print("seeded the pip %s bootstrap for ansible-test at %s" % (version, cache))


if __name__ == "__main__":
    main()
