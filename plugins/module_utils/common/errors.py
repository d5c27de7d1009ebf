# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The one exception every module turns into fail_json."""
from __future__ import annotations


class DlnodeError(Exception):
    """Bad input, a refusal or a failure the user can act on: str() is the whole message.

    ``result`` holds what the module had found out before it stopped; it goes into the
    failed result next to ``msg``.
    """

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result
