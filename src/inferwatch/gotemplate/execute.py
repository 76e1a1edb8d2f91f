"""Compiling parsed templates to closures, and executing them as Go's ``text/template``.

Every node becomes a Python closure once, when the template is parsed; executing is
then a walk over closures with no string handling. Variables live in a per-template
list of slots that the parser assigned, so a lookup is one list index.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from inferwatch._errors import TemplateError
from inferwatch.gotemplate import nodes as n
from inferwatch.gotemplate.funcs import BUILTINS, truth
from inferwatch.gotemplate.gofmt import go_str, sorted_items, type_name
from inferwatch.gotemplate.lexer import go_quote
from inferwatch.gotemplate.parse import parse_trees

MAX_TEMPLATE_DEPTH = 1000
"""How deep ``{{template}}`` calls may nest (Go allows 100000; Python's stack does not)."""

Funcs = Mapping[str, Callable[..., Any]]
Value = Callable[["_State", Any], Any]
Writer = Callable[["_State", Any, list[str]], None]
Command = Callable[["_State", Any, Any], Any]

_MISSING: Any = object()
_NOT_FIELDS = (str, int, float, bool, list, tuple)
_AND = BUILTINS["and"]
_OR = BUILTINS["or"]


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _DepthExceeded(Exception):
    pass


_BREAK = _Break()
_CONTINUE = _Continue()


class _Compiled:
    """One template of a set, compiled."""

    __slots__ = ("body", "name", "slots", "source", "tree")

    def __init__(self, tree: n.Tree) -> None:
        self.tree = tree
        self.name = tree.name
        self.source = tree.source
        self.slots = tree.slots
        self.body = _compile_list(tree.root)


class _State:
    __slots__ = ("depth", "funcs", "templates", "tmpl", "vars")

    def __init__(
        self, tmpl: _Compiled, funcs: Funcs, templates: dict[str, _Compiled], dot: Any
    ) -> None:
        self.tmpl = tmpl
        self.funcs = funcs
        self.templates = templates
        self.depth = 0
        self.vars: list[Any] = [None] * tmpl.slots
        self.vars[0] = dot

    def fail(self, node: Any, message: str) -> TemplateError:
        """Go's ``template: name:line:col: executing "tmpl" at <node>: message``."""
        context = str(node)
        location = self.tmpl.source.location(node.pos)
        line, column = (int(part) for part in location.rsplit(":", 2)[1:])
        return TemplateError(
            f"template: {location}: executing {go_quote(self.tmpl.name)} at <{context}>: {message}",
            name=self.tmpl.source.name,
            line=line,
            column=column + 1,
        )


def _print(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return "<no value>"
    return go_str(value)


# Lists and actions (writers append text to ``out``).


def _compile_list(node: n.ListNode) -> Writer:
    writers = [_compile_node(child) for child in node.nodes]
    if len(writers) == 1:
        return writers[0]

    def run(st: _State, dot: Any, out: list[str]) -> None:
        for writer in writers:
            writer(st, dot, out)

    return run


def _compile_node(node: n.Node) -> Writer:
    if isinstance(node, n.Text):
        text = node.text

        def write_text(st: _State, dot: Any, out: list[str]) -> None:
            out.append(text)

        return write_text
    if isinstance(node, n.Action):
        pipe = _compile_pipe(node.pipe)
        if node.pipe.decls:

            def declare(st: _State, dot: Any, out: list[str]) -> None:
                pipe(st, dot)

            return declare

        def action(st: _State, dot: Any, out: list[str]) -> None:
            value = pipe(st, dot)
            out.append(value if type(value) is str else _print(value))

        return action
    if isinstance(node, n.Branch):
        return _compile_range(node) if node.kind == "range" else _compile_if_with(node)
    if isinstance(node, n.TemplateCall):
        return _compile_template_call(node)
    if isinstance(node, n.Break):

        def do_break(st: _State, dot: Any, out: list[str]) -> None:
            raise _BREAK

        return do_break
    if isinstance(node, n.Continue):

        def do_continue(st: _State, dot: Any, out: list[str]) -> None:
            raise _CONTINUE

        return do_continue
    raise TypeError(f"unexpected node {node!r}")  # pragma: no cover - the parser never makes one


def _nothing(st: _State, dot: Any, out: list[str]) -> None:
    return None


def _compile_if_with(node: n.Branch) -> Writer:
    pipe = _compile_pipe(node.pipe)
    body = _compile_list(node.body)
    other = _compile_list(node.else_body) if node.else_body is not None else _nothing
    if node.kind == "with":

        def run_with(st: _State, dot: Any, out: list[str]) -> None:
            value = pipe(st, dot)
            if truth(value):
                body(st, value, out)
            else:
                other(st, dot, out)

        return run_with

    def run_if(st: _State, dot: Any, out: list[str]) -> None:
        if truth(pipe(st, dot)):
            body(st, dot, out)
        else:
            other(st, dot, out)

    return run_if


def _compile_range(node: n.Branch) -> Writer:
    pipe = _compile_pipe(node.pipe)
    body = _compile_list(node.body)
    other = _compile_list(node.else_body) if node.else_body is not None else _nothing
    slots = [v.slot for v in node.pipe.decls]
    key_slot = slots[0] if len(slots) == 2 else -1
    value_slot = slots[-1] if slots else -1

    def run(st: _State, dot: Any, out: list[str]) -> None:
        value = pipe(st, dot)
        items: Any
        if isinstance(value, (list, tuple)):
            items = enumerate(value)
        elif isinstance(value, Mapping):
            items = sorted_items(value)
        elif value is None:
            items = ()
        else:
            raise st.fail(node.pipe, f"range can't iterate over {go_str(value)}")
        empty = True
        variables = st.vars
        for key, item in items:
            empty = False
            if key_slot >= 0:
                variables[key_slot] = key
            if value_slot >= 0:
                variables[value_slot] = item
            try:
                body(st, item, out)
            except _Continue:
                continue
            except _Break:
                break
        if empty:
            other(st, dot, out)

    return run


def _compile_template_call(node: n.TemplateCall) -> Writer:
    pipe = _compile_pipe(node.pipe) if node.pipe is not None else None
    name = node.name

    def run(st: _State, dot: Any, out: list[str]) -> None:
        tmpl = st.templates.get(name)
        if tmpl is None:
            raise st.fail(node, f"template {go_quote(name)} not defined")
        if st.depth >= MAX_TEMPLATE_DEPTH:
            raise st.fail(node, f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        value = pipe(st, dot) if pipe is not None else None
        saved_vars, saved_tmpl = st.vars, st.tmpl
        st.vars = [None] * tmpl.slots
        st.vars[0] = value
        st.tmpl = tmpl
        st.depth += 1
        try:
            tmpl.body(st, value, out)
        except RecursionError:
            st.vars, st.tmpl = saved_vars, saved_tmpl
            raise _DepthExceeded(node) from None
        finally:
            st.depth -= 1
            st.vars, st.tmpl = saved_vars, saved_tmpl

    return run


# Pipelines and commands (values).


def _compile_pipe(pipe: n.Pipe) -> Value:
    commands = [_compile_command(cmd) for cmd in pipe.cmds]
    slots = [v.slot for v in pipe.decls]
    if len(commands) == 1 and not slots:
        only = commands[0]

        def single(st: _State, dot: Any) -> Any:
            return only(st, dot, _MISSING)

        return single
    undefined = [v for v in pipe.decls if v.slot < 0]

    def run(st: _State, dot: Any) -> Any:
        value = _MISSING
        for command in commands:
            value = command(st, dot, value)
        if undefined:
            raise st.fail(undefined[0], f"undefined variable: {undefined[0].idents[0]}")
        for slot in slots:
            st.vars[slot] = value
        return value

    return run


def _not_a_function(st: _State, cmd: n.Command, final: Any) -> None:
    if len(cmd.args) > 1 or final is not _MISSING:
        raise st.fail(cmd.args[0], f"can't give argument to non-function {cmd.args[0]}")


def _compile_command(cmd: n.Command) -> Command:
    first = cmd.args[0]
    rest = [_compile_arg(arg) for arg in cmd.args[1:]]
    if isinstance(first, n.Identifier):
        return _compile_call(first, cmd, rest)
    if isinstance(first, (n.Field, n.Chain)) or (
        isinstance(first, n.Variable) and len(first.idents) > 1
    ):
        return _compile_fields(first, rest)
    if isinstance(first, n.Nil):

        def nil_command(st: _State, dot: Any, final: Any) -> Any:
            raise st.fail(first, "nil is not a command")

        return nil_command
    value = _compile_arg(first)
    if len(cmd.args) == 1:

        def operand(st: _State, dot: Any, final: Any) -> Any:
            if final is not _MISSING:
                _not_a_function(st, cmd, final)
            return value(st, dot)

        return operand

    def bad_operand(st: _State, dot: Any, final: Any) -> Any:
        _not_a_function(st, cmd, final)
        return None  # pragma: no cover

    return bad_operand


def _compile_arg(node: n.Node) -> Value:
    if isinstance(node, (n.String, n.Number, n.Bool)):
        constant: Any = node.text if isinstance(node, n.String) else node.value
        return lambda st, dot: constant
    if isinstance(node, n.Dot):
        return lambda st, dot: dot
    if isinstance(node, n.Nil):
        return lambda st, dot: None
    if isinstance(node, n.Variable) and len(node.idents) == 1:
        slot = node.slot
        return lambda st, dot: st.vars[slot]
    if isinstance(node, n.Pipe):
        return _compile_pipe(node)
    if isinstance(node, n.Identifier):
        call = _compile_call(node, n.Command(node.pos, [node]), [])
        return lambda st, dot: call(st, dot, _MISSING)
    fields = _compile_fields(node, [])
    return lambda st, dot: fields(st, dot, _MISSING)


def _compile_call(ident: n.Identifier, cmd: n.Command, args: list[Value]) -> Command:
    name = ident.name

    def call(st: _State, dot: Any, final: Any) -> Any:
        fn = st.funcs.get(name)
        if fn is None:
            raise st.fail(ident, f"{go_quote(name)} is not a defined function")
        if fn is _AND or fn is _OR:
            return _short_circuit(st, ident, fn is _AND, args, dot, final)
        argv = [arg(st, dot) for arg in args]
        if final is not _MISSING:
            argv.append(final)
        return _invoke(st, fn, name, argv, ident, cmd)

    return call


def _short_circuit(
    st: _State, ident: n.Identifier, is_and: bool, args: list[Value], dot: Any, final: Any
) -> Any:
    total = len(args) + (final is not _MISSING)
    if total == 0:
        raise st.fail(ident, f"wrong number of args for {ident.name}: want at least 1 got 0")
    value: Any = None
    for arg in args:
        value = arg(st, dot)
        if truth(value) != is_and:
            return value
    if final is not _MISSING:
        value = final
    return value


def _invoke(
    st: _State, fn: Callable[..., Any], name: str, argv: list[Any], at: Any, cmd: Any
) -> Any:
    try:
        return fn(*argv)
    except (TemplateError, _Break, _Continue, _DepthExceeded, RecursionError):
        raise
    except TypeError as error:
        arity = _arity_problem(fn, len(argv))
        if arity is not None:
            raise st.fail(at, f"wrong number of args for {name}: {arity}") from None
        raise st.fail(cmd, f"error calling {name}: {error}") from None
    except Exception as error:
        raise st.fail(cmd, f"error calling {name}: {error}") from None


def _arity_problem(fn: Callable[..., Any], got: int) -> str | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*([None] * got))
    except TypeError:
        pass
    else:
        return None
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return f"want at least {required} got {got}"
    return f"want {required if got < required else len(positional)} got {got}"


# Fields: ``.A.B``, ``$x.A.B`` and ``(pipeline).A.B``.


def _compile_fields(node: n.Node, args: list[Value]) -> Command:
    base: Value
    if isinstance(node, n.Field):
        idents = node.idents
        base = lambda st, dot: dot  # noqa: E731
    elif isinstance(node, n.Variable):
        idents = node.idents[1:]
        slot = node.slot
        base = lambda st, dot: st.vars[slot]  # noqa: E731
    else:
        assert isinstance(node, n.Chain)
        idents = node.fields
        if isinstance(node.node, n.Nil):

            def nil_chain(st: _State, dot: Any, final: Any) -> Any:
                raise st.fail(node, f"indirection through explicit nil in {node}")

            return nil_chain
        base = _compile_arg(node.node)
    head, last = idents[:-1], idents[-1]

    def run(st: _State, dot: Any, final: Any) -> Any:
        value = base(st, dot)
        for ident in head:
            if type(value) is dict and ident in value:
                value = value[ident]
            else:
                value = _field(st, node, value, ident, (), _MISSING, ())
        if not args and final is _MISSING and type(value) is dict and last in value:
            return value[last]
        return _field(st, node, value, last, args, final, dot)

    return run


def _field(st: _State, node: Any, receiver: Any, name: str, args: Any, final: Any, dot: Any) -> Any:
    has_args = bool(args) or final is not _MISSING
    if receiver is None:
        return None
    if isinstance(receiver, Mapping):
        if name in receiver:
            if has_args:
                raise st.fail(node, f"{name} is not a method but has arguments")
            return receiver[name]
        method = _method(receiver, name) if name[:1].isupper() else None
        if method is None:
            return ""
    elif isinstance(receiver, _NOT_FIELDS) or name.startswith("_"):
        raise st.fail(node, f"can't evaluate field {name} in type {type_name(receiver)}")
    else:
        try:
            attr = getattr(receiver, name)
        except AttributeError:
            raise st.fail(
                node, f"can't evaluate field {name} in type {type_name(receiver)}"
            ) from None
        method = attr if inspect.ismethod(attr) or inspect.isbuiltin(attr) else None
        if method is None:
            if has_args:
                raise st.fail(node, f"{name} has arguments but cannot be invoked as function")
            return attr
    argv = [arg(st, dot) for arg in args]
    if final is not _MISSING:
        argv.append(final)
    return _invoke(st, method, name, argv, node, node)


def _method(receiver: Any, name: str) -> Callable[..., Any] | None:
    attr = getattr(receiver, name, None)
    if attr is not None and (inspect.ismethod(attr) or inspect.isbuiltin(attr)):
        return attr
    return None


# The public API.


class Template:
    """A parsed template set: the main template ``name`` and the ones it ``define``s.

    Parse once with :func:`parse`, then call :meth:`execute` as often as needed; it is
    safe to execute one template from several threads at once.
    """

    name: str

    def __init__(self, name: str, funcs: Funcs) -> None:
        self.name = name
        self._funcs: dict[str, Callable[..., Any]] = {**BUILTINS, **funcs}
        self._templates: dict[str, _Compiled] = {}

    def _add(self, trees: dict[str, n.Tree]) -> None:
        for tree_name, tree in trees.items():
            old = self._templates.get(tree_name)
            if old is not None and tree.is_empty and not old.tree.is_empty:
                continue
            self._templates[tree_name] = _Compiled(tree)

    def define(self, text: str, *, name: str = "") -> None:
        """Parse more text into this set, e.g. a file of ``{{ define "x" }}`` blocks.

        Templates it defines replace those of the same name. Text outside the
        ``define`` blocks becomes the template ``name`` when one is given.
        """
        main = name or f"\x00{self.name}-body"
        trees = parse_trees(text, main, self._funcs, parse_name=name or self.name)
        if not name:
            del trees[main]
        self._add(trees)

    def names(self) -> list[str]:
        """The names of the templates in this set, sorted."""
        return sorted(self._templates)

    def execute(self, data: Any, *, funcs: Funcs | None = None) -> str:
        """Run the main template with ``data`` as dot and ``$``; return the text.

        ``funcs`` adds or replaces functions for this run (names must have been known
        at parse time). Raises :class:`TemplateError` worded as Go's.
        """
        return self._run(self.name, data, funcs)

    def execute_template(self, template_name: str, data: Any) -> str:
        """Run the template called ``template_name`` in this set with ``data``."""
        if template_name not in self._templates:
            raise TemplateError(
                f"template: no template {go_quote(template_name)} associated with template "
                f"{go_quote(self.name)}",
                name=self.name,
            )
        return self._run(template_name, data, None)

    def _run(self, template_name: str, data: Any, funcs: Funcs | None) -> str:
        tmpl = self._templates.get(template_name)
        if tmpl is None:
            raise TemplateError(
                f"template: {template_name}: {go_quote(template_name)} is an incomplete or "
                "empty template",
                name=template_name,
            )
        st = _State(tmpl, {**self._funcs, **funcs} if funcs else self._funcs, self._templates, data)
        out: list[str] = []
        try:
            tmpl.body(st, data, out)
        except _DepthExceeded as error:
            node = error.args[0]
            raise st.fail(node, f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})") from None
        except RecursionError:
            raise TemplateError(
                f"template: {template_name}: exceeded maximum template depth "
                f"({MAX_TEMPLATE_DEPTH})",
                name=template_name,
            ) from None
        return "".join(out)


def parse(text: str, *, name: str = "", funcs: Funcs | None = None) -> Template:
    """Parse ``text`` into a :class:`Template` named ``name``.

    ``funcs`` adds functions to Go's builtins (``printf``, ``eq``, ``index``, ...);
    calling a function that is in neither is a parse error, as in Go. Raises
    :class:`TemplateError` (``template: name:1: unexpected "}" in operand``).
    """
    template = Template(name, funcs or {})
    template._add(parse_trees(text, name, template._funcs))
    return template
