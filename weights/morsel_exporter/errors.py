"""Exceptions the exporter raises; the command turns them into one clear message and exit 1."""


class ExportError(Exception):
    """Anything that stops an export: bad input file, unsupported model, bad option."""


class UnsupportedLayer(ExportError):
    """A layer (or a layer option) Morsel cannot run."""

    def __init__(self, name, class_name, why="", supported=None):
        self.layer_name = name
        self.class_name = class_name
        self.why = why
        msg = f"unsupported layer '{name}' (class {class_name})"
        if why:
            msg += f": {why}"
        if supported:
            msg += "\nsupported layer classes: " + ", ".join(sorted(supported))
        super().__init__(msg)
