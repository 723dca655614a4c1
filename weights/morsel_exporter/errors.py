"""Exceptions the exporter raises; the command turns them into one clear message and exit 1."""


class ExportError(Exception):
    """Anything that stops an export: bad input file, unsupported model, bad option."""


class UnsupportedLayer(ExportError):
    """A layer (or a layer option) Morsel cannot run. The modules that find the problem do not
    know the list of supported classes (layers.py does): naming() adds it once."""

    def __init__(self, name, class_name, why="", supported=None):
        self.layer_name = name
        self.class_name = class_name
        self.why = why
        self.supported = None
        super().__init__(self._message())
        self.naming(supported)

    def _message(self):
        msg = f"unsupported layer '{self.layer_name}' (class {self.class_name})"
        if self.why:
            msg += f": {self.why}"
        if self.supported:
            msg += "\nsupported layer classes: " + ", ".join(sorted(self.supported))
        return msg

    def naming(self, supported):
        """Adds the supported layer classes to the message (once); returns self."""
        if supported and self.supported is None:
            self.supported = list(supported)
            self.args = (self._message(),)
        return self
