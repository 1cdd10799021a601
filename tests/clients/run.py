#!/usr/bin/python3
"""Runs the migration-tool suite (tests/clients) with the integration harness.

    /usr/bin/python3 tests/clients/run.py [-k PATTERN]... [--keep] [--no-build] [--no-install]

Ends with one line `clients: N passed, N failed`. Installs the tools first (Debian packages
and npm: scripts/install-deps.sh --clients, then npm install in tests/clients/node)."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

import run as integration_run  # noqa: E402


def install_tools():
    subprocess.run(['bash', os.path.join(REPO, 'scripts', 'install-deps.sh'), '--clients'], check=True)
    node = os.path.join(HERE, 'node')
    if os.path.exists(os.path.join(node, 'package.json')):
        # `npm install`, not `npm ci`: npm ci rejects a lock file holding other platforms'
        # optional packages (dbmate's @dbmate/<os>-<arch>) as "out of sync". The versions
        # are pinned in package.json and the lock file is used as it is.
        cmd = ['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error']
        subprocess.run(cmd, cwd=node, check=True)


if __name__ == '__main__':
    integration_run.reexec_with_system_python()
    if '--no-install' in sys.argv:      # tools already installed (e.g. several runs at once)
        sys.argv.remove('--no-install')
    else:
        install_tools()
    sys.exit(integration_run.main(suite_dir=HERE, label='clients'))
