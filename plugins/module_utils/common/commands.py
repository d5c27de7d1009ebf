# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Commands: argument lists, a C locale, and failures that say which command, why, and what to install."""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}


class CommandError(DlnodeError):
    """A command is missing or failed."""


class Commands:
    """Runs the node's tools for one module.

    ``packages`` maps a tool to the package that ships it, for the message when it is missing;
    ``environ`` adds to the C locale what every command of this module needs (apt's frontend).
    """

    def __init__(self, module, packages=None, environ=None):
        self.module = module
        self.packages = packages or {}
        self.environ = dict(C_LOCALE, **(environ or {}))

    def path(self, name):
        """The tool's full path, or None when it is not installed."""
        return self.module.get_bin_path(name)

    def require(self, name):
        binary = self.path(name)
        if binary is None:
            raise CommandError(f"{name} is not installed: install {self.packages.get(name, name)}")
        return binary

    def run(self, name, *args, data=None, ok_rc=(0,), binary_data=False):
        """stdout of `name args...`; CommandError when its exit status is not in ok_rc."""
        rc, out, err = self.result(name, *args, data=data, binary_data=binary_data)
        if rc not in ok_rc:
            raise CommandError(f"{' '.join([name, *args])} failed (rc {rc}): {(err or out).strip()}")
        return out

    def result(self, name, *args, data=None, binary_data=False):
        """(rc, stdout, stderr) of `name args...`, whatever the exit status."""
        argv = [self.require(name), *[str(arg) for arg in args]]
        return self.module.run_command(argv, data=data, binary_data=binary_data, environ_update=self.environ)
