"""Plain data in and out of a test harness (stdlib only; runs inside sandboxes, also importable).

`encode` turns what a solution returned into JSON-able data holding only builtin values: None,
bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset, Fraction and
Decimal, nested. Subclasses of those count as their base type and are read through the base
type's own methods (a `Counter` is its dict, a namedtuple its tuple), so an overridden `__eq__`,
`__iter__` or `__repr__` is never called. Anything else becomes an opaque marker naming its type,
which `decode` turns into an `Opaque` that equals nothing and has no truth value. JSON lists are
lists; every other container is an object with one tag key, so nothing is ambiguous.
"""

import builtins

_MAX_DEPTH = 200
_BIG_INT_BITS = 10_000  # beyond this an int travels as hex (no str-conversion digit limit)
_MAX_ITEMS = 100_000  # most values taken from a generator (it may be infinite)


class Opaque:
    """A value that could not travel as plain data: equal to nothing, no truth value."""

    __slots__ = ("type_name",)

    def __init__(self, type_name):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError(f"a {self.type_name} value cannot be checked (only plain data can)")

    def __getattr__(self, name):
        raise TypeError(f"a {self.type_name} value cannot be checked (only plain data can)")

    def __iter__(self):
        raise TypeError(f"a {self.type_name} value cannot be checked (only plain data can)")

    def __len__(self):
        raise TypeError(f"a {self.type_name} value cannot be checked (only plain data can)")

    def __repr__(self):
        return f"<unserializable {self.type_name}>"


class TooDeep(ValueError):
    pass


def _type_name(value):
    kind = type(value)
    try:
        return (
            f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__
        )
    except Exception:  # a hostile metaclass: still a name
        return "object"


def encode(value, depth=0):
    """`value` as JSON-able plain data (see the module docstring)."""
    if depth > _MAX_DEPTH:
        raise TooDeep("nested too deeply")
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is str:
        return value
    if kind is int:
        return value if value.bit_length() < _BIG_INT_BITS else {"ix": hex(value)}
    if kind is float:
        return value if value == value and value not in (float("inf"), float("-inf")) else {"f": repr(value)}
    if kind is list:
        return [encode(v, depth + 1) for v in list.__iter__(value)]
    if kind is tuple:
        return {"t": [encode(v, depth + 1) for v in tuple.__iter__(value)]}
    if kind is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    if kind is set or kind is frozenset:
        items = sorted((encode(v, depth + 1) for v in kind.__iter__(value)), key=_sort_key)
        return {"s" if kind is set else "fs": items}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is bytearray:
        return {"ba": bytes(value).hex()}
    if kind is complex:
        return {"c": [encode(value.real), encode(value.imag)]}
    module = getattr(kind, "__module__", "")
    if module == "fractions" and kind.__name__ == "Fraction":
        return {"q": [encode(int(value.numerator)), encode(int(value.denominator))]}
    if module == "decimal" and kind.__name__ == "Decimal":
        return {"dec": str.__str__(value.__str__())}
    if kind.__name__ == "generator" and module == "builtins":  # the values it yields, as an iterator
        items = []
        for item in value:
            items.append(encode(item, depth + 1))
            if len(items) >= _MAX_ITEMS:
                break
        return {"it": items}
    # Subclasses of builtins are their base value, read with the base type's own methods (the
    # real type is asked, never `__class__`, which an object can fake).
    for base in (int, float, str, bytes, bytearray, complex, list, tuple, dict, set, frozenset):
        if issubclass(kind, base):
            return encode(_base_value(base, value), depth)
    return {"o": _type_name(value)}


def _base_value(base, value):
    if base is int:
        return int.__index__(value)
    if base is float:
        return float.__float__(value)
    if base is str:
        return str.__str__(value)
    if base in (bytes, bytearray):
        return base(memoryview(value))
    if base is complex:
        return complex(float.__float__(value.real), float.__float__(value.imag))
    if base is dict:
        return dict(dict.items(value))
    return base(base.__iter__(value))


def _sort_key(item):
    return to_json(item)


def decode(data):
    """The Python value `data` (from `encode`) stands for."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError("not encoded data")
    ((tag, body),) = data.items()
    if tag == "t":
        return tuple(decode(v) for v in body)
    if tag == "d":
        return {decode(k): decode(v) for k, v in body}
    if tag == "s":
        return {decode(v) for v in body}
    if tag == "fs":
        return frozenset(decode(v) for v in body)
    if tag == "ix":
        return int(body, 16)
    if tag == "f":
        return float(body)
    if tag == "b":
        return bytes.fromhex(body)
    if tag == "ba":
        return bytearray.fromhex(body)
    if tag == "c":
        return complex(decode(body[0]), decode(body[1]))
    if tag == "q":
        from fractions import Fraction

        return Fraction(decode(body[0]), decode(body[1]))
    if tag == "dec":
        from decimal import Decimal

        return Decimal(body)
    if tag == "it":
        return iter([decode(v) for v in body])
    if tag == "o":
        return Opaque(str(body))
    raise ValueError(f"unknown tag {tag!r}")


def dumps(value):
    """`value` encoded as compact JSON text; an opaque marker if it cannot be encoded."""
    try:
        return to_json(encode(value))
    except (TooDeep, RecursionError, ValueError, TypeError, OverflowError):
        return to_json({"o": "unencodable " + _type_name(value)})


# JSON text without the `json` module, whose import (it compiles regular expressions) costs more
# than a whole sandboxed run of a small program. Only what `encode` produces is supported.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t"})
_ESCAPES.update({i: f"\\u{i:04x}" for i in range(0xD800, 0xE000)})  # lone surrogates: not UTF-8


def quote(text):
    """`text` as a JSON string."""
    return '"' + text.translate(_ESCAPES) + '"'


def to_json(value):
    """JSON text of None, bools, ints, finite floats, strings, lists and string-keyed dicts."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return quote(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return float.__repr__(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([to_json(v) for v in value]) + "]"
    if kind is dict:
        return "{" + ",".join([quote(k) + ":" + to_json(v) for k, v in value.items()]) + "}"
    raise TypeError(f"not JSON data: {kind.__name__}")


def key(value):
    """A short key identifying the arguments of a call, equal across processes for equal plain
    data. Large values are summarised (length and a stride sample; a checksum for long strings):
    calls are replayed in order, the key only has to tell calls apart, and recording a call must
    not cost time proportional to a large input passed to it many times."""
    text = dumps(_summary(value, [_KEY_BUDGET]))
    if len(text) <= 256:
        return text
    import zlib  # only for long keys: its import costs a run of a small program ~2 ms

    data = text.encode("utf-8", "surrogatepass")
    return f"#{len(data)}:{zlib.crc32(data):08x}:{zlib.adler32(data):08x}"


_KEY_BUDGET = 20_000  # elements looked at per key
_SAMPLES = 64


def _summary(value, budget):
    kind = type(value)
    if kind is str or kind is bytes or kind is bytearray:
        if len(value) <= 10_000:
            return value
        import zlib

        data = value.encode("utf-8", "surrogatepass") if kind is str else bytes(value)
        return {"~": kind.__name__, "n": len(value), "crc": zlib.crc32(data)}
    if kind is list or kind is tuple:
        n = len(value)
        if n <= min(2_000, budget[0]):
            budget[0] -= n
            return kind(_summary(v, budget) for v in value)
        picks = sorted({int(i * n / _SAMPLES) for i in range(_SAMPLES)} | {n - 1}) if n else []
        budget[0] -= len(picks)
        return {"~": kind.__name__, "n": n, "at": [_summary(value[i], budget) for i in picks]}
    if kind is dict:
        n = len(value)
        if n <= min(2_000, budget[0]):
            budget[0] -= n
            return {k: _summary(v, budget) for k, v in value.items()}
        items = []
        for k, v in value.items():
            if len(items) == _SAMPLES:
                break
            items.append([k, _summary(v, budget)])
        return {"~": "dict", "n": n, "first": items}
    if kind is set or kind is frozenset:
        if len(value) <= min(2_000, budget[0]):
            budget[0] -= len(value)
            return value
        return {"~": kind.__name__, "n": len(value)}  # iteration order differs between processes
    return value


def exception_info(exc):
    """What a raised exception is, as data: its class names up the MRO and its message."""
    # The exception comes from the code under test: a hostile class can make `__mro__` or
    # `__str__` raise anything. Describing it must never fail, so any error gives a plain default.
    names = []
    try:
        for cls in type(exc).__mro__:
            names.append(cls.__name__ if isinstance(cls.__name__, str) else "?")
    except Exception:
        names = ["Exception"]
    try:
        message = str.__str__(BaseException.__str__(exc))[:500]
    except Exception:
        message = ""
    return {"mro": names[:20], "msg": message}


_BUILTIN_EXCEPTIONS = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


def rebuild_exception(info):
    """An exception of the recorded kind: a builtin class by name, or a subclass of the first
    builtin class in its MRO named like the original. Process-ending kinds (SystemExit,
    KeyboardInterrupt, GeneratorExit) come back as `SolutionAborted`."""
    mro = [str(n) for n in info.get("mro", [])] or ["Exception"]
    name, message = mro[0][:100], str(info.get("msg", ""))
    chain = [_BUILTIN_EXCEPTIONS[n] for n in mro if n in _BUILTIN_EXCEPTIONS]
    if not chain or not issubclass(chain[0], Exception):
        return SolutionAborted(f"the solution raised {name}")
    for base in chain:
        try:  # some builtins want other arguments (UnicodeDecodeError): then a more general base
            exc = (
                base(message)
                if base.__name__ == name
                else type(name, (base,), {"__module__": "solution"})(message)
            )
        except Exception:  # this base rejects a one-message constructor: try the next one
            continue
        exc.__df_from_solution__ = True
        return exc
    return Exception(message)


class SolutionAborted(BaseException):
    """The solution tried to end the process (sys.exit, KeyboardInterrupt): no test catches it."""
