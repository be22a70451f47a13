"""A ClassAd expression subset: parse, evaluate over a job ad, print.

Enough of HTCondor's language for what clients send (constraints such as
``JobStatus==1 || JobStatus==2``, ``-format``/``-af`` printing) and what
submit files hold (``request_memory = floor(MY.DaskWorkerMemory / 1048576)``,
``periodic_remove = CurrentTime - QDate > 259200``). Pure: no I/O.

Values are Python ``int``, ``float``, ``str``, ``bool``, ``tuple`` (lists),
and the singletons ``UNDEFINED`` and ``ERROR``.
"""

from __future__ import annotations

import functools
import math
import re
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

MAX_DEPTH = 64            # attribute references followed before giving up
MAX_PARSE_DEPTH = 500     # the parser's frames for one expression: Python's own limit is 1000
MAX_EVAL_DEPTH = 300      # tree levels one evaluation may stack up across attribute references
MAX_EXPRESSION = 100_000  # characters; longer text is refused, not parsed


class ClassAdError(ValueError):
    """A syntax error in an expression."""


class _Special:
    """UNDEFINED and ERROR: singletons that survive pickling as themselves."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name.lower()

    def __reduce__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Special("UNDEFINED")
ERROR = _Special("ERROR")


class Expr:
    """An expression kept unevaluated as an attribute value (e.g. PeriodicRemove)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        parse(text)
        self.text = text.strip()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Expr", self.text))

    def __repr__(self) -> str:
        return "Expr(%r)" % self.text

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (Expr, (self.text,))


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>=\?=|=!=|>>>|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>!~?:(){},&|^\[\]])
""", re.X | re.S)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/",
            "b": "\b", "f": "\f"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)


def _tokenize(text: str) -> List[Tuple[str, Any]]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ClassAdError("unexpected character %r at position %d" % (text[pos], pos))
        pos = match.end()
        kind = match.lastgroup
        value = match.group()
        if kind == "ws":
            continue
        if kind == "int":
            tokens.append(("lit", int(value, 0) if value.lower().startswith("0x") else int(value)))
        elif kind == "real":
            tokens.append(("lit", float(value)))
        elif kind == "str":
            tokens.append(("lit", _unescape(value[1:-1])))
        elif kind == "name":
            tokens.append(_keyword(value))
        else:
            tokens.append(("op", value))
    tokens.append(("end", None))
    return tokens


def _keyword(word: str) -> Tuple[str, Any]:
    lower = word.lower()
    if lower == "true":
        return ("lit", True)
    if lower == "false":
        return ("lit", False)
    if lower == "undefined":
        return ("lit", UNDEFINED)
    if lower == "error":
        return ("lit", ERROR)
    if lower == "is":
        return ("op", "=?=")
    if lower == "isnt":
        return ("op", "=!=")
    return ("name", word)


# ---------------------------------------------------------------- parser

_BINARY = [  # lowest precedence first
    ("||",), ("&&",), ("|",), ("^",), ("&",),
    ("==", "!=", "=?=", "=!="), ("<", "<=", ">", ">="), ("<<", ">>", ">>>"),
    ("+", "-"), ("*", "/", "%"),
]
_LEVEL = {op: level for level, ops in enumerate(_BINARY) for op in ops}


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> Tuple[str, Any]:
        return self.tokens[self.pos]

    def take(self) -> Tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise ClassAdError("expected %r, found %s" % (op, _describe(kind, value)))

    def parse(self) -> tuple:
        node = self.conditional()
        kind, value = self.peek()
        if kind != "end":
            raise ClassAdError("unexpected %s after the expression" % _describe(kind, value))
        return node

    def conditional(self) -> tuple:
        # A nested (sub)expression costs the parser a frame per precedence level.
        self._nest(len(_BINARY) + 3)
        node = self.binary(0)
        if self.peek() == ("op", "?"):
            self.take()
            then = self.conditional()
            self.expect(":")
            node = ("cond", node, then, self.conditional())
        self.depth -= len(_BINARY) + 3
        return node

    def _nest(self, cost: int) -> None:
        self.depth += cost
        if self.depth > MAX_PARSE_DEPTH:
            raise ClassAdError("expression nested too deeply")

    def binary(self, level: int) -> tuple:
        if level == len(_BINARY):
            return self.unary()
        node = self.binary(level + 1)
        while True:
            kind, value = self.peek()
            if kind != "op" or _LEVEL.get(value) != level:
                return node
            self.take()
            node = ("bin", value, node, self.binary(level + 1))

    def unary(self) -> tuple:
        kind, value = self.peek()
        if kind == "op" and value in ("!", "-", "+", "~"):
            self.take()
            self._nest(1)
            node = ("un", value, self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "lit":
            return ("lit", value)
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take()
                return ("call", value.lower(), self.items(")"))
            return ("attr", value)
        if kind == "op" and value == "(":
            node = self.conditional()
            self.expect(")")
            return node
        if kind == "op" and value == "{":
            return ("list", self.items("}"))
        raise ClassAdError("unexpected %s" % _describe(kind, value))

    def items(self, closing: str) -> tuple:
        items: List[tuple] = []
        if self.peek() == ("op", closing):
            self.take()
            return tuple(items)
        while True:
            items.append(self.conditional())
            kind, value = self.take()
            if kind == "op" and value == closing:
                return tuple(items)
            if kind != "op" or value != ",":
                raise ClassAdError("expected ',' or %r, found %s" % (closing, _describe(kind, value)))


def _describe(kind: str, value: Any) -> str:
    if kind == "end":
        return "the end of the expression"
    if kind == "lit":
        return "value %s" % unparse(value)
    return repr(value)


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> tuple:
    """The syntax tree of text; ClassAdError when it is not an expression."""
    if not isinstance(text, str):
        raise ClassAdError("an expression must be text")
    if len(text) > MAX_EXPRESSION:
        raise ClassAdError("expression longer than %d characters" % MAX_EXPRESSION)
    if not text.strip():
        raise ClassAdError("empty expression")
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise ClassAdError("expression nested too deeply")


@functools.lru_cache(maxsize=4096)
def _tree_and_depth(text: str) -> Tuple[tuple, int]:
    tree = parse(text)
    return tree, _depth(tree)


def _depth(node: Any) -> int:
    """Levels of nested nodes (iterative: trees may be deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        for child in item[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                stack.append((child, level + 1))
            elif isinstance(child, tuple):
                stack.extend((grand, level + 1) for grand in child
                             if isinstance(grand, tuple) and grand and isinstance(grand[0], str))
    return deepest


def parse_value(text: str) -> Any:
    """A submit file's `+Attr = text`: a literal becomes its value, the rest an Expr."""
    node = parse(text)
    if node[0] == "lit":
        return node[1]
    if node[0] == "un" and node[1] == "-" and node[2][0] == "lit" \
            and _is_number(node[2][1]):
        return -node[2][1]
    return Expr(text)


# ---------------------------------------------------------------- evaluation

def lookup(ad: Mapping[str, Any], name: str) -> Any:
    if name in ad:
        return ad[name]
    lower = name.lower()
    for key, value in ad.items():
        if key.lower() == lower:
            return value
    return UNDEFINED


class _Context:
    """One evaluation: its ad, its time, and the bounds that keep it finite."""

    def __init__(self, ad: Mapping[str, Any], now: Optional[float]):
        self.ad = ad
        self.now = int(time.time() if now is None else now)
        self.depth = 0       # attribute references being followed
        self.level = 0       # tree levels stacked up by those references
        self.values: Dict[str, Any] = {}   # attribute values already computed


_IN_PROGRESS = object()


def evaluate(expr: Union[str, Expr, tuple], ad: Mapping[str, Any],
             now: Optional[float] = None) -> Any:
    """Evaluate an expression (text, Expr or tree) in the scope of ad. Never raises for
    a job's data: too deep or too long gives ERROR, as a cycle of references gives UNDEFINED."""
    if isinstance(expr, Expr):
        expr = expr.text
    ctx = _Context(ad, now)
    try:
        if isinstance(expr, str):
            node, ctx.level = _tree_and_depth(expr)
        else:
            node = expr
        return _eval(node, ctx)
    except RecursionError:
        return ERROR


def evaluate_attr(ad: Mapping[str, Any], name: str, now: Optional[float] = None) -> Any:
    try:
        return _attribute(name, _Context(ad, now))
    except RecursionError:
        return ERROR


def is_true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return _is_number(value) and value != 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _eval(node: tuple, ctx: _Context) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "attr":
        return _attribute(node[1], ctx)
    if kind == "bin":
        return _binary(node[1], node[2], node[3], ctx)
    if kind == "un":
        return _unary(node[1], _eval(node[2], ctx))
    if kind == "cond":
        test = _eval(node[1], ctx)
        if isinstance(test, bool):
            return _eval(node[2] if test else node[3], ctx)
        if _is_number(test):
            return _eval(node[2] if test != 0 else node[3], ctx)
        return UNDEFINED if test is UNDEFINED else ERROR
    if kind == "list":
        return tuple(_eval(item, ctx) for item in node[1])
    if kind == "call":
        return _call(node[1], node[2], ctx)
    return ERROR


def _attribute(name: str, ctx: _Context) -> Any:
    scope, _, rest = name.rpartition(".")
    if scope:
        if scope.lower() == "target":
            return UNDEFINED
        if scope.lower() not in ("my", "self"):
            return UNDEFINED
        name = rest
    value = lookup(ctx.ad, name)
    if value is UNDEFINED and name.lower() == "currenttime":
        return ctx.now
    if isinstance(value, Expr):
        return _referenced(name.lower(), value, ctx)
    if isinstance(value, list):
        return tuple(value)
    if value is None:
        return UNDEFINED
    return value


def _referenced(key: str, value: Expr, ctx: _Context) -> Any:
    """An attribute holding an expression, computed once per evaluation (so a chain of
    doubling references stays linear); a reference back to itself is UNDEFINED, as in
    HTCondor."""
    known = ctx.values.get(key)
    if known is _IN_PROGRESS:
        return UNDEFINED
    if known is not None:
        return known
    tree, depth = _tree_and_depth(value.text)
    if ctx.depth >= MAX_DEPTH or ctx.level + depth > MAX_EVAL_DEPTH:
        return ERROR
    ctx.values[key] = _IN_PROGRESS
    ctx.depth += 1
    ctx.level += depth
    try:
        result = _eval(tree, ctx)
    finally:
        ctx.depth -= 1
        ctx.level -= depth
    ctx.values[key] = result
    return result


def _unary(op: str, value: Any) -> Any:
    if value is ERROR:
        return ERROR
    if value is UNDEFINED:
        return UNDEFINED
    if op == "!":
        if isinstance(value, bool) or _is_number(value):
            return not value
        return ERROR
    if not _is_number(value):
        return ERROR
    if op == "-":
        return -value
    if op == "+":
        return value
    return ~value if isinstance(value, int) else ERROR


def _binary(op: str, left_node: tuple, right_node: tuple, ctx: _Context) -> Any:
    left = _eval(left_node, ctx)
    if op in ("&&", "||"):
        return _logical(op, left, right_node, ctx)
    right = _eval(right_node, ctx)
    if op in ("=?=", "=!="):
        same = _identical(left, right)
        return same if op == "=?=" else not same
    if left is ERROR or right is ERROR:
        return ERROR
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    if op in ("==", "!=", "<", "<=", ">", ">="):
        return _compare(op, left, right)
    return _arithmetic(op, left, right)


def _logical(op: str, left: Any, right_node: tuple, ctx: _Context) -> Any:
    short = op == "||"  # the value of left that decides the result alone
    if left is ERROR:
        return ERROR
    if left is not UNDEFINED:
        if not isinstance(left, bool):
            if not _is_number(left):
                return ERROR
            left = left != 0
        if left is short:
            return short
    right = _eval(right_node, ctx)
    if _is_number(right):
        right = right != 0
    if right is ERROR or (right is not UNDEFINED and not isinstance(right, bool)):
        return ERROR
    if left is UNDEFINED:
        return short if right is short else UNDEFINED
    return right


def _identical(left: Any, right: Any) -> bool:
    if isinstance(left, _Special) or isinstance(right, _Special):
        return left is right
    if type(left) is not type(right):
        return False
    return left == right


def _compare(op: str, left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    elif isinstance(left, bool) and isinstance(right, bool):
        if op not in ("==", "!="):
            left, right = int(left), int(right)
    elif _is_number(left) and _is_number(right):
        pass
    elif isinstance(left, bool) and _is_number(right) or _is_number(left) and isinstance(right, bool):
        # Only the boolean becomes a number: 1.5 == true is false, as in HTCondor.
        left, right = (int(left) if isinstance(left, bool) else left,
                       int(right) if isinstance(right, bool) else right)
    else:
        return ERROR
    return {"==": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if isinstance(left, bool):
        left = int(left)
    if isinstance(right, bool):
        right = int(right)
    if not (_is_number(left) and _is_number(right)):
        return ERROR
    if op in ("&", "|", "^", "<<", ">>", ">>>"):
        if not (isinstance(left, int) and isinstance(right, int)):
            return ERROR
        if op in ("<<", ">>", ">>>") and not 0 <= right < 64:
            return ERROR
        return {"&": lambda: left & right, "|": lambda: left | right,
                "^": lambda: left ^ right, "<<": lambda: _wrap(left << right),
                ">>": lambda: left >> right,
                ">>>": lambda: (left % (1 << 64)) >> right}[op]()
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return _by_zero(op, left, right)
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)
        return quotient if op == "/" else left - quotient * right
    if op == "/":
        return left / right
    return ERROR  # HTCondor has no real remainder


def _by_zero(op: str, left: Any, right: Any) -> Any:
    """HTCondor's real division by zero: 0/0.0 is NaN, a negative over zero is -inf, the
    rest (and every integer division or remainder) is an error."""
    if op != "/" or not (isinstance(left, float) or isinstance(right, float)):
        return ERROR
    if left == 0 or left != left:
        return math.nan
    return -math.inf if left < 0 else ERROR


def _wrap(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


# ---------------------------------------------------------------- functions

def _call(name: str, arg_nodes: tuple, ctx: _Context) -> Any:
    if name == "ifthenelse":
        if len(arg_nodes) != 3:
            return ERROR
        return _eval(("cond",) + tuple(arg_nodes), ctx)
    function = _FUNCTIONS.get(name)
    if function is None:
        return ERROR
    args = [_eval(node, ctx) for node in arg_nodes]
    if name in ("isundefined", "iserror", "isstring", "isinteger", "isreal", "isboolean",
                "islist"):
        return function(*args) if len(args) == 1 else ERROR
    if any(a is ERROR for a in args):
        return ERROR
    if name not in ("strcat", "member", "stringlistmember") \
            and any(a is UNDEFINED for a in args):
        return UNDEFINED
    try:
        return function(ctx, *args) if name == "time" else function(*args)
    except (TypeError, ValueError, OverflowError, IndexError, re.error):
        return ERROR


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return int(value)
    if _is_number(value):
        return value
    if isinstance(value, str):
        return float(value) if re.search(r"[.eE]", value) else int(value, 10)
    raise TypeError("not a number")


def _rounding(how: Callable[[float], float]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        number = _number(value)
        return number if isinstance(number, int) else int(how(number))
    return apply


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return "%.15E" % value
    if isinstance(value, _Special):
        raise TypeError("no string")
    return unparse(value)


def _order(left: str, right: str) -> int:
    """strcmp's answer: negative, zero or positive (non-strings are compared as text)."""
    return (left > right) - (left < right)


def _substr(text: Any, offset: Any, length: Any = None) -> Any:
    if not isinstance(text, str) or not isinstance(offset, int):
        return ERROR
    start = offset if offset >= 0 else max(0, len(text) + offset)
    if length is None:
        return text[start:]
    if not isinstance(length, int):
        return ERROR
    end = start + length if length >= 0 else len(text) + length
    return text[start:max(start, end)]


def _member(item: Any, items: Any) -> Any:
    if item is UNDEFINED or not isinstance(items, tuple):
        return UNDEFINED if item is UNDEFINED else ERROR
    return any(_identical(item, x) if not (_is_number(item) and _is_number(x)) else item == x
               for x in items)


def _string_list_member(item: Any, text: Any, delimiters: Any = ", ") -> Any:
    if item is UNDEFINED or text is UNDEFINED:
        return UNDEFINED
    if not all(isinstance(v, str) for v in (item, text, delimiters)):
        return ERROR
    parts = re.split("[%s]+" % re.escape(delimiters), text)
    return item in [p for p in parts if p]


# A group that repeats something repeated, e.g. (a+)+ or (a|aa)*: Python's re can take
# exponential time on it, and no budget interrupts re. A job's regexp() with one is ERROR.
_NESTED_REPEAT = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*?}]|\|)(?:[^()\\]|\\.)*\)\s*[+*{]")
MAX_REGEXP_TARGET = 64 * 1024


def _regexp(pattern: Any, target: Any, options: Any = "") -> Any:
    if not all(isinstance(v, str) for v in (pattern, target, options)):
        return ERROR
    if _NESTED_REPEAT.search(pattern) or len(target) > MAX_REGEXP_TARGET:
        return ERROR
    flags = re.I if "i" in options.lower() else 0
    return re.search(pattern, target, flags) is not None


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], tuple):
            args = args[0]
        if not args or not all(_is_number(a) for a in args):
            return ERROR
        return pick(args)
    return apply


def _size(value: Any) -> Any:
    if isinstance(value, (str, tuple)):
        return len(value)
    return ERROR


_FUNCTIONS: Dict[str, Callable[..., Any]] = {
    "floor": _rounding(math.floor),
    "ceiling": _rounding(math.ceil),
    "ceil": _rounding(math.ceil),
    "round": _rounding(round),  # half to even, like C's rint() HTCondor uses
    "int": _rounding(lambda x: math.trunc(x)),
    "real": lambda v: float(_number(v)),
    "string": _to_string,
    "strcat": lambda *a: "".join(_to_string(x) if x is not UNDEFINED else "undefined" for x in a),
    "substr": _substr,
    "size": _size,
    "length": _size,
    "toupper": lambda s: s.upper() if isinstance(s, str) else ERROR,
    "tolower": lambda s: s.lower() if isinstance(s, str) else ERROR,
    "isundefined": lambda v: v is UNDEFINED,
    "iserror": lambda v: v is ERROR,
    "isstring": lambda v: isinstance(v, str),
    "isinteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "isreal": lambda v: isinstance(v, float),
    "isboolean": lambda v: isinstance(v, bool),
    "islist": lambda v: isinstance(v, tuple),
    "time": lambda ctx: ctx.now,
    "member": _member,
    "stringlistmember": _string_list_member,
    "regexp": _regexp,
    "min": _extreme(min),
    "max": _extreme(max),
    "abs": lambda v: abs(v) if _is_number(v) else ERROR,
    "strcmp": lambda a, b: _order(_to_string(a), _to_string(b)),
    "stricmp": lambda a, b: _order(_to_string(a).lower(), _to_string(b).lower()),
}


# ---------------------------------------------------------------- printing

def unparse(value: Any) -> str:
    """A value in ClassAd syntax, as `condor_q -long` prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _real_text(value)
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if isinstance(value, Expr):
        return value.text
    if isinstance(value, (tuple, list)):
        return "{ %s }" % ", ".join(unparse(v) for v in value)
    if value is None or value is UNDEFINED:
        return "undefined"
    if value is ERROR:
        return "error"
    return unparse(str(value))


def _real_text(value: float) -> str:
    if math.isinf(value):
        return "real(\"INF\")" if value > 0 else "real(\"-INF\")"
    if math.isnan(value):
        return "real(\"NaN\")"
    text = repr(value)
    return text


def format_autoformat(value: Any) -> str:
    """One `-af` column: strings without quotes, the rest in ClassAd syntax."""
    if isinstance(value, str):
        return value
    return unparse(value)


_CONVERSION = re.compile(r"%([-+ #0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def interpret_escapes(fmt: str) -> str:
    """condor_q reads C escapes typed literally, as in `-format "%s \\n" Cmd`."""
    return re.sub(r"\\([nt\\\"'r])",
                  lambda m: {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}
                  [m.group(1)], fmt)


def format_printf(fmt: str, value: Any) -> str:
    """One `-format FMT ATTR` item; nothing at all when the value is undefined."""
    if value is UNDEFINED or value is None:
        return ""
    fmt = interpret_escapes(fmt)
    out = []
    pos = 0
    used = False
    for match in _CONVERSION.finditer(fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, precision, conv = match.groups()
        if conv == "%":
            out.append("%")
            continue
        if used:
            out.append(match.group())
            continue
        used = True
        piece = _convert(flags or "", width if width != "*" else None, precision, conv, value)
        if piece is None:
            return ""
        out.append(piece)
    out.append(fmt[pos:])
    return "".join(out)


def _convert(flags: str, width: Optional[str], precision: Optional[str], conv: str,
             value: Any) -> Optional[str]:
    spec = "%" + flags + (width or "") + ("." + precision if precision is not None else "")
    try:
        if conv in "di":
            return (spec + "d") % int(_number(value))
        if conv in "xXo":
            return (spec + conv) % int(_number(value))
        if conv in "feEgG":
            return (spec + conv) % float(_number(value))
        if conv == "s":
            return (spec + "s") % format_autoformat(value)
        if conv in "vV":
            text = format_autoformat(value) if conv == "v" else unparse(value)
            return (spec + "s") % text
        if conv == "c":
            return (spec + "c") % int(_number(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def escape_control(text: str) -> str:
    """Control characters as escapes, so job data cannot forge a log line or a terminal."""
    if text.isprintable():
        return text  # the common case, decided in C
    return "".join(c if c.isprintable() or c == " " else "\\x%02x" % ord(c) if ord(c) < 256
                   else "\\u%04x" % ord(c) for c in text)
