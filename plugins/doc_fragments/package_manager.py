# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations


class ModuleDocFragment:
    """The package manager option of package_source and package_set."""

    DOCUMENTATION = r"""
options:
  manager:
    description: V(auto) takes apt where C(apt-get) is installed, else dnf.
    type: str
    choices: [auto, apt, dnf]
    default: auto
"""
