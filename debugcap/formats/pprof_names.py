"""The function names ``go tool pprof`` prints: its simplification of names that look demangled.

Caller: :mod:`debugcap.formats.pprof`, for every function of a profile it reads, so ``top``,
``diff``, flame graphs and findings all name a function as pprof's reports do.

pprof's symbolizer (``internal/symbolizer/symbolizer.go`` ``Demangle``, run on every profile it
opens unless ``-symbolize=none``) gives each function whose ``name`` is empty or equal to its
``system_name`` a new name made from ``system_name``: demangled if it is a C++/Rust mangled symbol,
else, when the name "looks like demangled C++" (``looksLikeDemangledCPlusPlus``), with nested
``(...)`` and then ``<...>`` removed (``removeMatching``, the default mode's ``NoParams`` and
``NoTemplateParams``). Go writes ``name == system_name`` and its generic instantiations contain
``[``, so ``encoding/json.typeEncoder.OnceValue[go.shape.func(*encoding/json.encodeState, ...)].func3``
is printed as ``encoding/json.typeEncoder.OnceValue[go.shape.func].func3``, while
``main.(*Box[go.shape.func()]).Get`` (``"]).``", a Go method) is left alone.

Not mirrored: pprof's demangler proper (``_Z...``/``_R...`` symbols from C++ or Rust code linked
into a cgo binary keep their mangled names here).
"""

from __future__ import annotations


def printed_name(name: str, system_name: str) -> str:
    """The name pprof gives a function after its default symbolization (``demangleSingleFunction``)."""
    if name and name != system_name:
        return name  # pprof: "Already demangled."
    if _looks_like_demangled_cplusplus(system_name):
        return _remove_matching(_remove_matching(system_name, "(", ")"), "<", ">")
    return system_name


def _looks_like_demangled_cplusplus(name: str) -> bool:
    if ".<" in name:  # Java's "class.<init>"
        return False
    if "])." in name:  # Go's "foo.(*Bar[...]).Method"
        return False
    return any(c in name for c in "<>[]") or "::" in name


def _remove_matching(name: str, start: str, end: str) -> str:
    """Remove outermost ``start..end`` groups (with what they nest); stop at an unmatched ``end``."""
    nesting = first = 0
    current = 0
    while True:
        index = _index_any(name, current, start, end)
        if index < 0:
            return name
        current = index
        if name[current] == start:
            nesting += 1
            if nesting == 1:
                first = current
        else:
            nesting -= 1
            if nesting < 0:
                # pprof returns the name as modified so far: groups already removed stay removed.
                return name
            if nesting == 0:
                name = name[:first] + name[current + 1:]
                current = first - 1
        current += 1


def _index_any(name: str, start_at: int, a: str, b: str) -> int:
    i, j = name.find(a, start_at), name.find(b, start_at)
    if i < 0:
        return j
    if j < 0:
        return i
    return min(i, j)
