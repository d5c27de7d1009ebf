# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The skeleton every module of the collection runs in.

A module file holds its documentation, its ARGUMENT_SPEC and a ``run(module, result)`` that
plans, applies and reads back, raising DlnodeError to refuse; its ``main()`` is one call to
run_module(). Here the options are parsed, every path option is checked to be absolute, and a
DlnodeError becomes fail_json with the result gathered so far.
"""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError


def relative_paths(params, spec, prefix=""):
    """(option name, value) of every option of type path, nested ones included, that is relative."""
    found = []
    for name, option in spec.items():
        value = (params or {}).get(name)
        if value is None:
            continue
        label = prefix + name
        if option.get("type") == "path":
            values = value if isinstance(value, list) else [value]
            found += [(label, item) for item in values if not str(item).startswith("/")]
        elif option.get("type") == "list" and option.get("elements") == "path":
            found += [(label, item) for item in value if not str(item).startswith("/")]
        elif option.get("options"):
            items = value if option.get("type") == "list" else [value]
            for index, item in enumerate(items):
                where = f"{label}[{index}]." if option.get("type") == "list" else f"{label}."
                found += relative_paths(item, option["options"], where)
    return found


def check_absolute_paths(params, spec):
    bad = relative_paths(params, spec)
    if bad:
        raise DlnodeError("; ".join(f"{name} must be an absolute path, got {value}"
                                    for name, value in bad))


def run_module(argument_spec, run, result=None, **kwargs):
    """Parse the options, check paths, run(module, result), and report.

    ``result`` gives the keys every result carries, also a failed one; ``kwargs`` go to
    AnsibleModule (mutually_exclusive, required_if, ...). Every module supports check mode.
    """
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    result = dict(dict(changed=False), **(result or {}))
    try:
        check_absolute_paths(module.params, argument_spec)
        run(module, result)
    except DlnodeError as err:
        result.update(err.result)
        module.fail_json(msg=str(err), **result)
    module.exit_json(**result)
