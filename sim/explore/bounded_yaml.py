"""A YAML file read as line-numbered nodes, its size bounded before any value is built.

:class:`YamlNodes` reads at most :data:`MAX_FILE_BYTES`, composes the node tree (PyYAML's
``SafeLoader``) and, before constructing anything, walks it once: every tag must be a plain
one (string, number, bool, null, list, mapping: no ``!!python/...``, no timestamps or sets), no
alias may contain itself, and the tree, counted with every alias expanded, may hold at most
:data:`MAX_NODES` values (an alias bomb is refused by its count, never built). Errors are
:class:`SweepError` ``FILE:LINE: key: message``, naming the deepest field that holds the excess.
"""

from pathlib import Path

import yaml

__all__ = ["SweepError", "YamlNodes", "MAX_FILE_BYTES", "MAX_NODES"]

#: Largest file read (bytes): a 100,000-value axis written out is under 1 MiB.
MAX_FILE_BYTES = 4 << 20
#: Most YAML values (scalars, lists, mappings) a file may hold with its aliases expanded.
MAX_NODES = 100_000

_PLAIN_TAGS = {f"tag:yaml.org,2002:{name}"
               for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class SweepError(ValueError):
    """A sweep file is wrong; the message starts with ``FILE:LINE: key:``."""


def _line(node) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _children(node) -> list[tuple[str, object]]:
    """``(label, child)`` of a node: ``[index]`` items of a list, ``key`` and value of a mapping."""
    if isinstance(node, yaml.SequenceNode):
        return [(f"[{index}]", item) for index, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        pairs = []
        for key_node, value_node in node.value:
            label = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            pairs += [(label, key_node), (label, value_node)]
        return pairs
    return []


class YamlNodes:
    """The composed node tree of the YAML file at ``path`` (``root``), checked as the module
    docstring says; :meth:`value` builds the Python value of a node. ``document`` names what
    the file is in messages (``sweep``, ``config``) and ``needs`` says what an empty one lacks."""

    def __init__(self, path: Path, *, document: str = "sweep",
                 needs: str = "a sweep needs workloads and families"):
        self.path, self.document = Path(path), document
        with open(self.path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SweepError(f"{self.path}:1: {document}: the file is larger than "
                             f"{MAX_FILE_BYTES} bytes: not a {document} file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SweepError(f"{self.path}:1: {document}: not UTF-8 text (byte {error.start})") \
                from None
        try:
            self.loader = yaml.SafeLoader(text)
            self.root = self.loader.get_single_node()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            reason = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise SweepError(f"{self.path}:{line}: not valid YAML: {reason}") from None
        except RecursionError:
            raise SweepError(f"{self.path}:1: not valid YAML: nested too deeply") from None
        if self.root is None:
            raise SweepError(f"{self.path}:1: {document}: the file is empty (or only comments): "
                             f"{needs}")
        self._sizes: dict[int, int] = {}
        self._check(self.root, "")

    def error(self, node, key: str, message: str) -> SweepError:
        return SweepError(f"{self.path}:{_line(node)}: {key}: {' '.join(message.splitlines())}")

    def find(self, *keys: str):
        """The value node at the mapping keys ``keys`` below the root (``find("pe", "rows")``),
        or None where a key is missing."""
        node = self.root
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                return None
            node = next((value for key_node, value in node.value
                         if isinstance(key_node, yaml.ScalarNode) and key_node.value == key), None)
            if node is None:
                return None
        return node

    def value(self, node, key: str = "value"):
        """The Python value of ``node`` (a plain value, list or mapping)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as error:
            raise self.error(node, key or "value", f"cannot be read: "
                             f"{getattr(error, 'problem', None) or error}") from None

    def _check(self, root, key: str) -> None:
        """Refuse foreign tags, self-containing aliases and more than :data:`MAX_NODES`
        values; name the deepest field holding too many."""
        try:
            total = self._size(root, set(), key)
        except RecursionError:
            raise self.error(root, key or self.document, "nested too deeply") from None
        if total <= MAX_NODES:
            return
        node, where = root, key
        while True:
            big = [(label, child) for label, child in _children(node)
                   if self._sizes[id(child)] > MAX_NODES]
            if not big:
                break
            label, node = big[0]
            where = f"{where}.{label}" if where and not label.startswith("[") else where + label
        raise self.error(node, where or self.document, f"holds {self._sizes[id(node)]} values once its "
                         f"aliases are expanded, more than {MAX_NODES}")

    def _size(self, node, path: set, key: str) -> int:
        """Values under ``node`` with aliases expanded (memoised per node, so shared nodes are
        counted without being expanded); ``path`` holds the nodes being counted."""
        if id(node) in self._sizes:
            return self._sizes[id(node)]
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.error(node, key or self.document, f"the tag {tag} is not allowed: plain "
                             "values, lists and mappings only")
        if id(node) in path:
            raise self.error(node, key or self.document, "an alias contains itself")
        path.add(id(node))
        total = 1
        for label, child in _children(node):
            where = label if not key else (key + label if label.startswith("[")
                                           else f"{key}.{label}")
            total += self._size(child, path, where)
        path.discard(id(node))
        self._sizes[id(node)] = total
        return total
