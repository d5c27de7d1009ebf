#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
# Documentation only: the work is done by the action plugin of the same name, on the controller.
from __future__ import annotations

DOCUMENTATION = r"""
module: check_vars
short_description: Check role variables against rules that argument specs cannot express
version_added: 0.1.0
description:
  - Runs on the controller and never contacts the node, so a role can call it as its first task,
    right after the automatic argument spec validation and before any fact gathering.
  - Checks ranges, absolute paths, patterns, the keys and values inside dicts and lists of dicts,
    and comparisons between variables. Reports every bad value at once, each with its variable,
    the value and what is allowed, and fails; nothing else runs.
  - Each rule names what it checks with O(rules[].var), a path that starts with a variable name,
    then V(.key) or V([key.with.dots]) a key of a mapping, V(.*) every value of a mapping,
    V([]) every item of a list, V({}) every key of a mapping (last only). A key that is absent
    or null names nothing, so optional keys are checked when they are given; a variable itself
    is always checked, null included (unless O(rules[].allow) has null).
options:
  rules:
    description: The rules. Every rule has O(rules[].var) and at least one check.
    type: list
    elements: dict
    required: true
    suboptions:
      var:
        description: A path (or a list of paths) to the values to check.
        type: raw
        required: true
      type:
        description: The type (V(str), V(int), V(bool), V(list) or V(dict)), or a list of types, a value must have.
        type: raw
      choices:
        description: The values a value must be one of.
        type: list
        elements: raw
      range:
        description: V([min, max]) for an integer (or a numeric string); null for no bound.
        type: list
        elements: raw
      number:
        description: With O(rules[].range), decimals are allowed too.
        type: bool
        default: false
      match:
        description: A regular expression the whole value (as a string) must match; needs O(rules[].allowed).
        type: str
      allowed:
        description: The words that say what is allowed, in the message; required with O(rules[].match).
        type: str
      absolute:
        description: The value must be an absolute, normalized path.
        type: bool
      keys:
        description: The keys a mapping may have.
        type: list
        elements: str
      key_of:
        description: A path to a mapping; the value must be one of its keys.
        type: str
      below:
        description: A path to a number; the value must be less than it.
        type: str
      at_most:
        description: A path to a number; the value must not be greater than it.
        type: str
      unique:
        description: No two of the values the path names may be equal.
        type: bool
      allow:
        description: Values that pass every check of the rule (such as V(null), V(unlimited) or V("")).
        type: list
        elements: raw
      if_set:
        description: A path; the rule applies only when that value is set (not empty, zero, false or null).
        type: str
attributes:
  check_mode:
    support: full
    description: It only reads variables.
  diff_mode:
    support: none
    description: It changes nothing.
  platform:
    support: full
    platforms: all
    description: Runs on the controller.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Check the values the argument specs cannot express
  dlnode.gpu.check_vars:
    rules:
      - {var: tuning_dirty_ratio, range: [0, 100]}
      - {var: tuning_dirty_background_ratio, range: [0, 100], below: tuning_dirty_ratio}
      - {var: [tuning_sysctl_file, tuning_io_rules_dir], absolute: true}
      - {var: "tuning_hugepages_node_counts{}", match: "[0-9]+", allowed: "a NUMA node id (0, 1, ...)"}
      - {var: "tuning_io_classes.*.scheduler", choices: [none, mq-deadline, kyber, bfq, deadline]}
      - {var: "storage_volumes[].mount", absolute: true, unique: true}
      - {var: base_os_limits_memlock, range: [1, null], allow: [unlimited]}
"""

RETURN = r"""
problems:
  description: One line per bad value, with its variable, the value and what is allowed.
  returned: failure
  type: list
  elements: str
  sample: ["tuning_dirty_ratio: got 120; allowed: an integer from 0 to 100"]
checked:
  description: The variables the rules read.
  returned: always
  type: list
  elements: str
  sample: [tuning_dirty_background_ratio, tuning_dirty_ratio]
"""
