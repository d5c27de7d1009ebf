# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Plans: the changes a module makes, found by reading only, so check mode returns them as they are.

A Step is one change: what it acts on, its value before and after, a line for the user, and the
call that makes it. A Plan is the ordered steps; it applies them (not in check mode), reports
them, and gives the before/after of a diff.
"""
from __future__ import annotations


class Step:
    """One change, or with changed=False one setting that is already right.

    ``call`` makes the change, or Plan.apply is given a function that makes it from the step's
    ``action``, ``target`` and ``data`` (the extra keyword arguments).
    """

    def __init__(self, action, target, before=None, after=None, text=None, call=None, changed=True, **data):
        self.action = action
        self.target = target
        self.before = before
        self.after = after
        self.text = text or f"{target}: {action}"
        self.call = call
        self.changed = changed
        self.data = data
        self.applied = False

    def run(self, do=None):
        (do or (lambda step: step.call()))(self)
        self.applied = True

    def cancel(self):
        """Nothing will be done: the value stays as it was."""
        self.changed = False
        self.after = self.before

    def public(self):
        return {"action": self.action, "target": self.target}


def step_to(action, target, before, after, function, *args, **data):
    """A step that calls function(*args), a change only when before and after differ."""
    return Step(action, target, before, after, call=lambda: function(*args), changed=before != after, **data)


class Plan:
    """Ordered steps; only those that change something are applied."""

    def __init__(self, steps=()):
        self.steps = list(steps)

    def add(self, *steps):
        self.steps.extend(steps)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self):
        return len(self.steps)

    @property
    def changes(self):
        return [step for step in self.steps if step.changed]

    @property
    def changed(self):
        return bool(self.changes)

    def texts(self):
        return [step.text for step in self.changes]

    def apply(self, module, do=None):
        """Run every change in order (each step's call, or do(step)), unless in check mode."""
        if not module.check_mode:
            for step in self.changes:
                step.run(do)

    def before_after(self, key=lambda step: step.target):
        """{key: before} and {key: after} of every step, for a diff."""
        return ({key(step): step.before for step in self.steps}, {key(step): step.after for step in self.steps})
