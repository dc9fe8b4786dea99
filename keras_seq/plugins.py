"""The one shape of keras-seq's plug-in points: a `Registry` of entries by name.

Distributions, scalers, transforms, metrics and export formats are each a `Registry`;
an entry is any object with a `name`, registered with the module's
`register_*` (`Registry.register`), listed by `*_names` and looked up by
`get_*` (`Registry.lookup`), which answers a name nothing registered has
with one line naming what is. Archs (`models.registry`) and data sources
(`data.sources`, tried in turn on a name) keep their own shape.

Example:
>>> things = Registry("thing")
>>> things.register(type("A", (), {"name": "a"})())
>>> things.names(), things.lookup("a").name
(('a',), 'a')
>>> things.lookup("b")
Traceback (most recent call last):
...
keras_seq.errors.KerasSeqError: unknown thing 'b'. Expected one of: a.
"""

from __future__ import annotations

from keras_seq.errors import KerasSeqError


class Registry(dict):
    """Entries by their `name`, in registration order.

    Args:
        kind: str. What an entry is, as an error names it ("scaler").
        also: tuple of str. Other words the option accepts, named in the
            error before the entries (a distribution's "none").
        unique: bool. Refuse a second entry of a name (else it replaces
            the first).
        builtin: the entries registered from the start.
    """

    def __init__(self, kind: str, also: tuple = (), unique: bool = False, builtin: tuple = ()):
        super().__init__()
        self.kind, self.also, self.unique = kind, tuple(also), unique
        for entry in builtin:
            self.register(entry)

    def register(self, entry) -> None:
        """Make `entry` available by its `name`."""
        if self.unique and entry.name in self:
            raise KerasSeqError(f"{self.kind} '{entry.name}' is already registered.")
        self[entry.name] = entry

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self)

    def lookup(self, name: str):
        """The entry called `name`.

        Raises:
            KerasSeqError: nothing registered has that name.
        """
        if name not in self:
            raise KerasSeqError(f"unknown {self.kind} {str(name)[:40]!r}. Expected "
                                f"{'one of' if not self.also else ', '.join(self.also) + ' or one of'}: "
                                f"{', '.join(self)}.")
        return self[name]
