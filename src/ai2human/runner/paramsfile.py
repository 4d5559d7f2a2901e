"""Reading a params file and ``--set`` values: YAML, but only the part of it a flat file of knobs needs.

A params file is a short mapping of ``key: value`` lines, so anything else is refused with a
one-line message before it can cost time or memory: files over ``MAX_BYTES``, bytes that are not
UTF-8, YAML aliases (a 350-byte "billion laughs" file expands to gigabytes) and duplicate keys
(YAML keeps the last one silently, so a run would not be what the file seems to say).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent

from ai2human.errors import ParamsError

MAX_BYTES = 64 << 10  # the shipped files are under 1 KB; 64 KB is ~2,000 lines, parsed in well under a second
PARAMS_DIR = Path(__file__).resolve().parents[3] / "params"


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases or duplicate keys, and with ``1e-4`` read as a float.

    YAML 1.1 reads ``1e-4`` as a string; learning rates are written that way.
    """

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed in a params file; write the value out",
                                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise ConstructorError(None, None, f"duplicate key {key!r} (lines {first} and {key_node.start_mark.line + 1}); "
                                       "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    # Only the problem, never str(exc): that quotes the input, which may be huge.
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{where} YAML syntax error: {problem[:300]}"


def available_files() -> str:
    return ", ".join(sorted(p.name for p in PARAMS_DIR.glob("*.yaml"))) or "none"


def read_yaml(path: Path) -> dict:
    """The mapping a params file holds; ParamsError (one line) for anything else."""
    if not path.is_file():
        raise ParamsError(f"params file {str(path)!r} not found; files in params/: {available_files()}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ParamsError(f"{path}: {size:,} bytes; a params file holds a few settings (at most {MAX_BYTES:,} bytes)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}:{_yaml_problem(exc)}") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply; a params file is flat key: value lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of key: value lines, got {type(data).__name__}")
    return data


def parse_set(item: str) -> tuple[str, object]:
    """``KEY=VALUE`` with the value read as YAML (``--set max_steps=20`` gives an int)."""
    if "=" not in item:
        raise ParamsError(f"--set {item[:80]!r}: expected KEY=VALUE")
    key, raw = item.split("=", 1)
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML (e.g. "a: b: c"): the text as written
    except RecursionError:
        raise ParamsError(f"--set {key.strip()}: nested too deeply") from None
    return key.strip(), value
