"""What a function's code reads by name, found in its bytecode: the module-level names, the
attributes read after them, the modules imported inside it, and the state it keeps for itself."""

from __future__ import annotations

import types
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import dis


class Reads(NamedTuple):
    """The names a function's code (and the code nested in it) reads."""

    names: tuple[str, ...]
    """Module-level names, in order."""
    chains: Mapping[str, tuple[tuple[str, ...], ...]]
    """The chains of attributes read after a module-level or captured name (``helpers.FACTOR``)."""
    imports: tuple[tuple[str, int, tuple[tuple[str, ...], ...]], ...]
    """Modules imported inside (name, level), each with the chains of attributes read of it."""
    own: frozenset[str]
    """The names whose state is the function's own (:func:`own_state`)."""


_NAME_LOADS = frozenset({"LOAD_DEREF", "LOAD_GLOBAL", "LOAD_CLASSDEREF", "LOAD_NAME"})
_ATTRIBUTE_LOADS = frozenset({"LOAD_METHOD", "LOAD_ATTR"})
_STORES = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME", "STORE_GLOBAL"})
_IMPORT_STEPS = frozenset({"IMPORT_FROM", "SWAP", "ROT_TWO", "POP_TOP"})  # import a.b.c as x
_reads_of: weakref.WeakKeyDictionary[types.CodeType, Reads] = weakref.WeakKeyDictionary()

_Bound = dict[str, tuple[tuple[str, int], tuple[str, ...]]]
"""Local names bound by an import: the module imported (name, level) and the path to the value."""


def reads(code: types.CodeType) -> Reads:
    """What ``code`` reads by name (computed once per code object)."""
    known = _reads_of.get(code)
    if known is None:
        names: dict[str, None] = {}
        chains: dict[str, set[tuple[str, ...]]] = {}
        imports: dict[tuple[str, int], set[tuple[str, ...]]] = {}
        _scan(code, {}, names, chains, imports)
        known = _reads_of[code] = Reads(
            tuple(names),
            {name: tuple(sorted(found)) for name, found in chains.items()},
            tuple(
                (module, level, tuple(sorted(paths))) for (module, level), paths in sorted(imports.items())
            ),
            own_state(code),
        )
    return known


def _scan(
    code: types.CodeType,
    bound: _Bound,
    names: dict[str, None],
    chains: dict[str, set[tuple[str, ...]]],
    imports: dict[tuple[str, int], set[tuple[str, ...]]],
) -> None:
    import dis

    instructions = list(dis.get_instructions(code))
    bound = {name: found for name, found in bound.items() if name in code.co_freevars}
    for i, instruction in enumerate(instructions):
        op = instruction.opname
        if op in ("LOAD_GLOBAL", "LOAD_NAME"):
            names[instruction.argval] = None
        elif op == "IMPORT_NAME":
            _scan_import(instructions, i, bound, imports)
            continue
        name = instruction.argval
        if op not in _NAME_LOADS and not (op.startswith("LOAD_FAST") and name in bound):
            continue
        chain: list[str] = []
        for following in range(i + 1, len(instructions)):
            if instructions[following].opname not in _ATTRIBUTE_LOADS:
                break
            chain.append(instructions[following].argval)
        if name in bound:  # a module imported inside: what is read of it
            key, path = bound[name]
            imports[key].add(path + tuple(chain))
        elif chain:
            chains.setdefault(name, set()).add(tuple(chain))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _scan(const, bound, names, chains, imports)


def _scan_import(
    instructions: list[dis.Instruction],
    at: int,
    bound: _Bound,
    imports: dict[tuple[str, int], set[tuple[str, ...]]],
) -> None:
    """An ``import`` inside a function: the module it names and the local name it binds."""
    module = instructions[at].argval
    fromlist = (
        instructions[at - 1].argval if at >= 1 and instructions[at - 1].opname == "LOAD_CONST" else None
    )
    level = instructions[at - 2].argval if at >= 2 and instructions[at - 2].opname == "LOAD_CONST" else 0
    level = level if isinstance(level, int) else 0
    j = at + 1
    if fromlist:  # from module import name [as other]
        key = (module, level)
        paths = imports.setdefault(key, {()})
        while j < len(instructions) and instructions[j].opname == "IMPORT_FROM":
            path = (instructions[j].argval,)
            paths.add(path)
            if j + 1 < len(instructions) and instructions[j + 1].opname in _STORES:
                bound[instructions[j + 1].argval] = (key, path)
            j += 2
        return
    steps = False
    while j < len(instructions) and instructions[j].opname in _IMPORT_STEPS:
        steps = steps or instructions[j].opname == "IMPORT_FROM"
        j += 1
    key = (module, level) if steps else (module.partition(".")[0], level)  # import a.b binds a
    imports.setdefault(key, set()).add(())
    if j < len(instructions) and instructions[j].opname in _STORES:
        bound[instructions[j].argval] = (key, ())


_MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "remove",
        "clear",
        "update",
        "add",
        "discard",
        "sort",
        "reverse",
        "rotate",
        "__setitem__",
        "__delitem__",
    }
)
"""Methods that change a container and return nothing of it. Those that return what it holds
(``setdefault``, ``pop``, ``popitem``, ``popleft``) read it: a container used through them is an
input, by content."""
_own_state_of: weakref.WeakKeyDictionary[types.CodeType, frozenset[str]] = weakref.WeakKeyDictionary()


def own_state(code: types.CodeType) -> frozenset[str]:
    """The captured and global names a function changes itself: it assigns them, calls a
    mutating method on them (``log.append``) or stores into them (``memo[key] = value``).
    That state (a log, a counter, a memo) is the function's own, not an input of what it
    computes: it counts by name only, or nothing it keeps would ever be served from the cache."""
    names = _own_state_of.get(code)
    if names is None:
        import dis

        instructions = list(dis.get_instructions(code))
        found: set[str] = set()
        for i, instruction in enumerate(instructions):
            op = instruction.opname
            if op in ("STORE_DEREF", "STORE_GLOBAL", "DELETE_DEREF", "DELETE_GLOBAL"):
                found.add(instruction.argval)
            elif op in _NAME_LOADS:
                following = instructions[i + 1] if i + 1 < len(instructions) else None
                if (
                    following is not None
                    and following.opname in _ATTRIBUTE_LOADS
                    and following.argval in _MUTATORS
                ):
                    found.add(instruction.argval)  # name.append(...)
            elif op in ("STORE_SUBSCR", "DELETE_SUBSCR") or (
                op == "COPY" and [x.opname for x in instructions[i + 1 : i + 3]] == ["COPY", "BINARY_SUBSCR"]
            ):
                target = _subscript_target(instructions, i)  # name[key] = value, name[key] += value
                if target is not None:
                    found.add(target)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= own_state(const)
        names = _own_state_of[code] = frozenset(found)
    return names


def _subscript_target(instructions: list[dis.Instruction], at: int) -> str | None:
    """The name loaded as the container of a subscript whose key is on top of the stack at
    instruction ``at``: walking back over the key's instructions (whose stack effects add up
    to one item), the instruction before them. None where that is not a plain name."""
    import dis

    net = 0
    for j in range(at - 1, 0, -1):
        instruction = instructions[j]
        if instruction.is_jump_target:
            return None
        try:
            net += dis.stack_effect(instruction.opcode, instruction.arg, jump=False)
        except (ValueError, TypeError):
            return None
        if net == 1:
            before = instructions[j - 1]
            return before.argval if before.opname in _NAME_LOADS else None
    return None
