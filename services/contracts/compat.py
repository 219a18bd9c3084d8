"""Backward compatibility of an event schema against its published baseline.

Within a `.vN` type only optional fields may be added. Breaking: a property removed, its type (or
format) changed, a property that becomes required or stops being required, an enum value removed
or a free value narrowed to an enum. Allowed: a new optional property, a new enum value
(consumers must tolerate unknown values), changed descriptions, titles and defaults.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Human-readable breaking changes from `old` to `new` (empty: compatible)."""
    out: list[str] = []
    _compare(old, new, roots=(old, new), path="", out=out, seen=set())
    return out


def _resolve(schema: Schema, root: Schema) -> Schema:
    hops = 0
    while isinstance(schema, dict) and "$ref" in schema and hops < 50:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema, hops = node, hops + 1
    return schema


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value may take (anyOf/oneOf flattened, refs resolved)."""
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [v for sub in schema[key] for v in _variants(sub, root)]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _variants(schema["allOf"][0], root)
    return [schema]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(variants: list[Schema]) -> set[str]:
    out: set[str] = set()
    for v in variants:
        if "type" in v:
            out.update([v["type"]] if isinstance(v["type"], str) else v["type"])
        elif "const" in v:
            out.add(_json_type(v["const"]))
        elif "enum" in v:
            out.update(_json_type(x) for x in v["enum"])
        elif "properties" in v:
            out.add("object")
        else:
            out.add("any")
    return out


def _formats(variants: list[Schema]) -> set[str]:
    return {v["format"] for v in variants if "format" in v}


def _enum(variants: list[Schema]) -> list[Any] | None:
    """Allowed values when every string/number variant is an enum or const (None: free)."""
    values: list[Any] = []
    for v in variants:
        if v.get("type") == "null":
            continue
        if "enum" in v:
            values.extend(v["enum"])
        elif "const" in v:
            values.append(v["const"])
        else:
            return None
    return values


def _objects(variants: list[Schema]) -> tuple[dict[str, Schema], set[str]]:
    props: dict[str, Schema] = {}
    required: set[str] = set()
    for v in variants:
        if "properties" in v or v.get("type") == "object":
            props.update(v.get("properties", {}))
            required.update(v.get("required", []))
    return props, required


def _compare(old: Schema, new: Schema, *, roots: tuple[Schema, Schema], path: str,
             out: list[str], seen: set[tuple[int, int]]) -> None:
    if (id(old), id(new)) in seen:
        return
    seen.add((id(old), id(new)))
    where = path or "(payload)"
    ov, nv = _variants(old, roots[0]), _variants(new, roots[1])
    ot, nt = _types(ov), _types(nv)
    if ot != nt:
        out.append(f"{where}: type changed from {'|'.join(sorted(ot))} to {'|'.join(sorted(nt))}")
        return
    if _formats(ov) != _formats(nv):
        out.append(f"{where}: format changed from {sorted(_formats(ov))} to {sorted(_formats(nv))}")
    oe, ne = _enum(ov), _enum(nv)
    if oe is not None and ne is not None:
        removed = [x for x in oe if x not in ne]
        if removed:
            out.append(f"{where}: enum value(s) removed: {', '.join(map(str, removed))}")
    elif oe is None and ne is not None:
        out.append(f"{where}: narrowed to the values {', '.join(map(str, ne))}")
    oprops, oreq = _objects(ov)
    nprops, nreq = _objects(nv)
    prefix = f"{path}." if path else ""
    for name, sub in oprops.items():
        if name not in nprops:
            out.append(f"{prefix}{name}: removed")
            continue
        _compare(sub, nprops[name], roots=roots, path=prefix + name, out=out, seen=seen)
    for name in sorted(nreq - oreq):
        out.append(f"{prefix}{name}: " + ("became required" if name in oprops
                                          else "new required property"))
    for name in sorted((oreq - nreq) & set(nprops)):
        out.append(f"{prefix}{name}: no longer required")
    oitems = [v["items"] for v in ov if isinstance(v.get("items"), dict)]
    nitems = [v["items"] for v in nv if isinstance(v.get("items"), dict)]
    if oitems and nitems:
        _compare(oitems[0], nitems[0], roots=roots, path=f"{path}[]", out=out, seen=seen)
    oadd = [v["additionalProperties"] for v in ov if isinstance(v.get("additionalProperties"), dict)]
    nadd = [v["additionalProperties"] for v in nv if isinstance(v.get("additionalProperties"), dict)]
    if oadd and nadd:
        _compare(oadd[0], nadd[0], roots=roots, path=f"{prefix}*", out=out, seen=seen)
