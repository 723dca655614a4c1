"""Exceptions the exporter raises; the command turns them into one clear message and exit 1."""


class ExportError(Exception):
    """Anything that stops an export: bad input file, unsupported model, bad option."""


class UnsupportedLayer(ExportError):
    """Layers (or layer options) Morsel cannot run. The message names every blocking layer with
    its class and reason, then the notes (hints that apply), then, once and last, the supported
    classes grouped by kind. The modules that find a problem do not know the supported classes
    (layers.py does): naming() adds them."""

    def __init__(self, name, class_name, why="", supported=None):
        self.layer_name = name
        self.class_name = class_name
        self.why = why
        self.blockers = [(name, class_name, why)]
        self.notes = []
        self.supported = None
        super().__init__(self._message())
        self.naming(supported)

    def _message(self):
        lines = []
        for name, cls, why in self.blockers:
            lines.append(f"unsupported layer '{name}' (class {cls})" + (f": {why}" if why else ""))
        lines += self.notes
        if self.supported:
            lines.append("supported layer classes:")
            if isinstance(self.supported, dict):
                lines += [f"  {kind}: {', '.join(names)}"
                          for kind, names in self.supported.items()]
            else:
                lines.append("  " + ", ".join(sorted(self.supported)))
        return "\n".join(lines)

    def _refresh(self):
        self.args = (self._message(),)
        return self

    def also(self, name, class_name, why=""):
        """Another layer that blocks the same export."""
        self.blockers.append((name, class_name, why))
        return self._refresh()

    def note(self, text):
        """A hint that applies to this refusal, printed before the supported classes."""
        self.notes.append(text)
        return self._refresh()

    def naming(self, supported):
        """Adds the supported layer classes ({kind: [classes]} or a list) once; returns self."""
        if supported and self.supported is None:
            self.supported = supported
            self._refresh()
        return self
