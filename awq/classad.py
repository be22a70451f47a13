"""A ClassAd expression subset: parse, evaluate over a job ad, print.

Enough of HTCondor's language for what clients send (constraints such as
``JobStatus==1 || JobStatus==2``, ``-format``/``-af`` printing) and what
submit files hold (``request_memory = floor(MY.DaskWorkerMemory / 1048576)``,
``periodic_remove = CurrentTime - QDate > 259200``). Pure: no I/O.

Values are Python ``int``, ``float``, ``str``, ``bool``, ``tuple`` (lists),
and the singletons ``UNDEFINED`` and ``ERROR``.
"""

from __future__ import annotations

import math
# The C module operator.py re-exports: importing operator.py costs a query tool's start
# more than the functions taken from it.
import _operator as operator
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a query tool more than its work
    from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

MAX_DEPTH = 64            # attribute references followed before giving up
MAX_PARSE_DEPTH = 500     # the parser's frames for one expression: Python's own limit is 1000
MAX_EVAL_DEPTH = 300      # tree levels one evaluation may stack up across attribute references
MAX_EXPRESSION = 100_000  # characters; longer text is refused, not parsed


def _remembered(limit: int) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """A function of one argument, its answers kept (up to `limit`, then forgotten at
    once): functools.lru_cache's work here, without importing functools, which costs a
    query tool's start more than the expressions it parses. Exceptions are not kept; an
    argument that cannot be a key is answered without the cache."""
    def wrap(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        kept: Dict[Any, Any] = {}

        def remembered(argument: Any) -> Any:
            try:
                return kept[argument]
            except KeyError:
                pass
            except TypeError:   # unhashable
                return function(argument)
            answer = function(argument)
            if len(kept) >= limit:
                kept.clear()
            kept[argument] = answer
            return answer

        remembered.__name__ = function.__name__
        remembered.__doc__ = function.__doc__
        return remembered
    return wrap


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

    @classmethod
    def trusted(cls, text: str) -> "Expr":
        """An expression this program wrote itself (a snapshot): not parsed again."""
        expr = cls.__new__(cls)
        expr.text = text
        return expr

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Expr", self.text))

    def __repr__(self) -> str:
        return "Expr(%r)" % self.text

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (Expr, (self.text,))


# ---------------------------------------------------------------- tokens

# The scanner is written out rather than one regular expression: importing and
# compiling re costs a condor_q call more than evaluating its constraint.
_OPERATORS = ("=?=", "=!=", ">>>", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||")
_SINGLE_OPERATORS = frozenset("-+*/%<>!~?:(){},&|^[]")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/",
            "b": "\b", "f": "\f"}


def _unescape(body: str) -> str:
    """A string literal's body: a backslash and the character after it become one."""
    if "\\" not in body:
        return body
    out, pos = [], 0
    while True:
        slash = body.find("\\", pos)
        if slash < 0 or slash + 1 >= len(body):
            out.append(body[pos:])
            return "".join(out)
        out.append(body[pos:slash])
        char = body[slash + 1]
        out.append(_ESCAPES.get(char, char))
        pos = slash + 2


def _digits_end(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isdecimal():
        pos += 1
    return pos


def _exponent_end(text: str, pos: int) -> int:
    """End of an exponent (e, sign, digits) starting at pos; pos itself if there is none."""
    if pos < len(text) and text[pos] in "eE":
        digits = pos + 2 if text[pos + 1:pos + 2] in ("+", "-") else pos + 1
        end = _digits_end(text, digits)
        if end > digits:
            return end
    return pos


def _number_token(text: str, pos: int) -> Optional[Tuple[int, Tuple[str, Any]]]:
    """A real or integer literal at pos: (end, token), or None."""
    digits = _digits_end(text, pos)
    if text[digits:digits + 1] == "." and (digits > pos or _digits_end(text, pos + 1) > pos + 1):
        end = _exponent_end(text, _digits_end(text, digits + 1))
        return end, ("lit", float(text[pos:end]))
    if digits == pos:
        return None
    end = _exponent_end(text, digits)
    if end > digits:
        return end, ("lit", float(text[pos:end]))
    if text[pos] == "0" and digits == pos + 1 and text[digits:digits + 1] in ("x", "X") \
            and text[digits + 1:digits + 2] in _HEX_DIGITS:
        end = digits + 1
        while end < len(text) and text[end] in _HEX_DIGITS:
            end += 1
        return end, ("lit", int(text[pos:end], 16))
    return digits, ("lit", int(text[pos:digits]))


def _string_end(text: str, pos: int) -> int:
    """End of the string literal opening at pos, or -1 if it is not closed."""
    index = pos + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
        elif char == '"':
            return index + 1
        else:
            index += 1
    return -1


def _tokenize(text: str) -> List[Tuple[str, Any]]:
    tokens: List[Tuple[str, Any]] = []
    pos, size = 0, len(text)
    while pos < size:
        char = text[pos]
        if char.isspace():
            pos += 1
            continue
        if char.isdecimal() or char == ".":
            number = _number_token(text, pos)
            if number is not None:
                pos, token = number
                tokens.append(token)
                continue
        elif char == '"':
            end = _string_end(text, pos)
            if end > 0:
                tokens.append(("lit", _unescape(text[pos + 1:end - 1])))
                pos = end
                continue
        elif char in _NAME_START:
            end = pos + 1
            while end < size and (text[end] in _NAME_CHARS or text[end] == "."
                                  and text[end + 1:end + 2] in _NAME_START):
                end += 1
            tokens.append(_keyword(text[pos:end]))
            pos = end
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, pos)), None) \
            or (char if char in _SINGLE_OPERATORS else None)
        if operator is None:
            raise ClassAdError("unexpected character %r at position %d" % (char, pos))
        tokens.append(("op", operator))
        pos += len(operator)
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


@_remembered(4096)
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


@_remembered(4096)
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
    if lower not in map(str.lower, ad):   # the common miss, decided in C
        return UNDEFINED
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
        return unary_value(node[1], _eval(node[2], ctx))
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


def unary_value(op: str, value: Any) -> Any:
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
        return logical(op, left, lambda: _eval(right_node, ctx))
    return binary_values(op, left, _eval(right_node, ctx))


def binary_values(op: str, left: Any, right: Any) -> Any:
    """Every binary operator but && and ||, on values already computed."""
    if op in ("=?=", "=!="):
        same = _identical(left, right)
        return same if op == "=?=" else not same
    if left is ERROR or right is ERROR:
        return ERROR
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    if op in _COMPARISONS:
        return _compare(op, left, right)
    return _arithmetic(op, left, right)


def logical(op: str, left: Any, right: Callable[[], Any]) -> Any:
    """&& and ||: right is computed only when left does not decide."""
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
    value = right()
    if _is_number(value):
        value = value != 0
    if value is ERROR or (value is not UNDEFINED and not isinstance(value, bool)):
        return ERROR
    if left is UNDEFINED:
        return short if value is short else UNDEFINED
    return value


def _identical(left: Any, right: Any) -> bool:
    if isinstance(left, _Special) or isinstance(right, _Special):
        return left is right
    if type(left) is not type(right):
        return False
    return left == right


_COMPARISONS: Dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}


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
    return _COMPARISONS[op](left, right)


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
        # HTCondor's rounding functions call an undefined argument an error; the rest pass it on.
        return ERROR if name in _ERROR_ON_UNDEFINED else UNDEFINED
    try:
        return function(ctx, *args) if name == "time" else function(*args)
    except (TypeError, ValueError, OverflowError, IndexError):
        return ERROR


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return int(value)
    if _is_number(value):
        return value
    if isinstance(value, str):
        return float(value) if any(c in value for c in ".eE") else int(value, 10)
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
    import re
    parts = re.split("[%s]+" % re.escape(delimiters), text)
    return item in [p for p in parts if p]


# A group that repeats something repeated, e.g. (a+)+ or (a|aa)*: Python's re can take
# exponential time on it, and no budget interrupts re. A job's regexp() with one is ERROR.
_NESTED_REPEAT = r"\((?:[^()\\]|\\.)*(?:[+*?}]|\|)(?:[^()\\]|\\.)*\)\s*[+*{]"
MAX_REGEXP_TARGET = 64 * 1024


def _regexp(pattern: Any, target: Any, options: Any = "") -> Any:
    import re  # here: a query tool without regexp() starts faster
    if not all(isinstance(v, str) for v in (pattern, target, options)):
        return ERROR
    if re.search(_NESTED_REPEAT, pattern) or len(target) > MAX_REGEXP_TARGET:
        return ERROR
    flags = re.I if "i" in options.lower() else 0
    try:
        return re.search(pattern, target, flags) is not None
    except re.error:
        return ERROR


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    """min and max of one list, as HTCondor: undefined members are skipped, an empty list is
    undefined, anything but numbers (booleans count as 0 and 1) is an error; a lone member is
    the answer as it is, else the result is real when any member is."""
    def apply(*args: Any) -> Any:
        if len(args) != 1 or not isinstance(args[0], tuple):
            return ERROR
        defined = [a for a in args[0] if a is not UNDEFINED]
        members = [int(a) if isinstance(a, bool) else a for a in defined]
        if not all(_is_number(a) for a in members):
            return ERROR
        if len(defined) <= 1:
            return defined[0] if defined else UNDEFINED  # nothing compared: kept as it is
        picked = pick(members)
        return float(picked) if any(isinstance(a, float) for a in members) else picked
    return apply


def _size(value: Any) -> Any:
    if isinstance(value, (str, tuple)):
        return len(value)
    return ERROR


_ERROR_ON_UNDEFINED = frozenset({"floor", "ceiling", "ceil", "round"})

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


_C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def interpret_escapes(fmt: str) -> str:
    """condor_q reads C escapes typed literally, as in `-format "%s \\n" Cmd`."""
    out, pos = [], 0
    while True:
        slash = fmt.find("\\", pos)
        if slash < 0:
            out.append(fmt[pos:])
            return "".join(out)
        char = fmt[slash + 1:slash + 2]
        if char and char in _C_ESCAPES:
            out.append(fmt[pos:slash] + _C_ESCAPES[char])
            pos = slash + 2
        else:
            out.append(fmt[pos:slash + 1])
            pos = slash + 1


def _conversions(fmt: str) -> Iterator[Tuple[int, int, str, Optional[str], Optional[str], str]]:
    """Each printf conversion %[flags][width][.precision]type in fmt:
    (start, end, flags, width, precision, type); a % that starts none is text."""
    pos = fmt.find("%")
    while pos >= 0:
        end = pos + 1
        while end < len(fmt) and fmt[end] in "-+ #0":
            end += 1
        flags = fmt[pos + 1:end]
        width = None
        if fmt[end:end + 1] == "*":
            width, end = "*", end + 1
        else:
            digits = end
            while end < len(fmt) and fmt[end].isdecimal():
                end += 1
            width = fmt[digits:end] or None
        precision = None
        if fmt[end:end + 1] == "." and fmt[end + 1:end + 2].isdecimal():
            digits = end + 1
            end = digits
            while end < len(fmt) and fmt[end].isdecimal():
                end += 1
            precision = fmt[digits:end]
        kind = fmt[end:end + 1]
        if kind and (kind in _ASCII_LETTERS or kind == "%"):
            yield pos, end + 1, flags, width, precision, kind
            pos = fmt.find("%", end + 1)
        else:
            pos = fmt.find("%", pos + 1)


def format_printf(fmt: str, value: Any) -> str:
    """One `-format FMT ATTR` item; nothing at all when the value is undefined."""
    return printf_formatter(fmt)(value)


@_remembered(64)
def printf_formatter(fmt: str) -> Callable[[Any], str]:
    """FMT read once: a function from a value to its text (condor_q prints a column of them)."""
    fmt = interpret_escapes(fmt)
    pieces: List[Any] = []   # literal text, and the first conversion as a tuple
    pos = 0
    for start, end, flags, width, precision, conv in _conversions(fmt):
        pieces.append(fmt[pos:start])
        pos = end
        if conv == "%":
            pieces.append("%")
        elif any(isinstance(p, tuple) for p in pieces):
            pieces.append(fmt[start:end])
        else:
            pieces.append((flags, width if width != "*" else None, precision, conv))
    pieces.append(fmt[pos:])
    conversions = [i for i, p in enumerate(pieces) if isinstance(p, tuple)]
    if not conversions:
        text = "".join(pieces)
        return lambda value: "" if value is UNDEFINED or value is None else text
    at = conversions[0]
    before, after = "".join(pieces[:at]), "".join(pieces[at + 1:])
    flags, width, precision, conv = pieces[at]
    plain = not flags and width is None and precision is None

    def apply(value: Any) -> str:
        if value is UNDEFINED or value is None:
            return ""
        if plain and (conv == "s" and type(value) is str or conv == "d" and type(value) is int):
            return before + str(value) + after   # the common case, without a format spec
        piece = _convert(flags, width, precision, conv, value)
        return "" if piece is None else before + piece + after
    # What a caller formatting a whole column may do itself: before + str(value) + after,
    # for the values the common case above covers.
    apply.plain_parts = (before, conv, after) if plain and conv in "sd" else None  # type: ignore[attr-defined]
    return apply


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
