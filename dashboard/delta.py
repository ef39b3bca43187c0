"""What changed between two versions of a snapshot part, small enough to send every push.

The day's rows (a hundred orders, signals and trades, the curve) were sent whole every time one signal came in:
~70 KB per push per client, which the server, every client and the machine's two cores paid for at full replay
speed. A delta names only what changed, and the page (static/app.js, applyDelta) rebuilds the part from the
version it holds. Per key of the part's document:

    absent                  unchanged
    {"set": value}          replaced whole
    {"ref": [item, ...]}    a list rebuilt item by item: an integer is the item at that index of the previous
                            list, anything else is a new or changed item (rows are objects, log lines strings)
    {"from": i, "add": [..]} a list that kept its first i items and continues with `add` (the equity curve)

A client gets a delta only when it holds the version just before; otherwise it gets the part whole.
"""
from __future__ import annotations

from typing import Any


def _key(item: Any) -> Any:
    """Where to look for an item in the previous list; equality decides whether it is the same."""
    if isinstance(item, dict):
        return next(iter(item.values()), None) if item else None  # a row's id comes first
    if isinstance(item, list):
        return tuple(_key(x) for x in item)
    return item if isinstance(item, (str, int, float, bool, type(None))) else repr(item)


def _common_prefix(old: list[Any], new: list[Any]) -> int:
    n = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        n += 1
    return n


def list_delta(old: list[Any], new: list[Any]) -> dict[str, Any]:
    """The smaller description of `new` given `old`: an appended tail, or items by reference."""
    if any(isinstance(x, (int, float)) for x in new):  # a bare number would read as a reference
        return {"set": new}
    p = _common_prefix(old, new)
    if p and p >= len(old) - 1:  # kept all but perhaps the last item (the curve's newest point moves)
        return {"from": p, "add": new[p:]}
    where: dict[Any, int] = {}
    for i, item in enumerate(old):
        where.setdefault(_key(item), i)
    ref: list[Any] = []
    for item in new:
        at = where.get(_key(item))
        ref.append(at if at is not None and old[at] == item else item)
    return {"ref": ref}


def doc_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The changes from `old` to `new` (both one part's document, same keys); {} if none."""
    out: dict[str, Any] = {}
    for k, v in new.items():
        o = old.get(k)
        if k in old and o == v:
            continue
        out[k] = list_delta(o, v) if isinstance(v, list) and isinstance(o, list) else {"set": v}
    return out


def apply_delta(doc: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """`doc` brought to the next version (what the page does; here for the tests and any Python reader)."""
    out = dict(doc)
    for k, c in delta.items():
        if "set" in c:
            out[k] = c["set"]
        elif "ref" in c:
            old = out.get(k) or []
            out[k] = [old[x] if isinstance(x, int) and not isinstance(x, bool) else x for x in c["ref"]]
        else:
            out[k] = list(out.get(k) or [])[:c["from"]] + c["add"]
    return out
