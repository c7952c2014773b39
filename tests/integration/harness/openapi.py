"""Checks HTTP responses against an OpenAPI 3 document of this repository, with the standard
library only: a loader for the plain YAML subset our docs use (block mappings and lists, one
scalar per line, '#' comments) and a validator for the JSON Schema parts they use (type, enum,
required, properties, additionalProperties, items, nullable, oneOf, $ref, format date-time/uuid)."""
import json
import re


def _scalar(text):
    t = text.strip()
    if t == "":
        return None
    if t[0] in "\"'":
        if t[0] == '"':
            return json.loads(t)
        return t[1:-1].replace("''", "'")
    if t in ("true", "false"):
        return t == "true"
    if t in ("null", "~"):
        return None
    if t == "{}":
        return {}
    if t == "[]":
        return []
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    return t


def _strip_comment(line):
    out, quote = [], None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(c)
    return "".join(out).rstrip()


def _split_key(text):
    """'key: value' → (key, value); keys may be quoted."""
    if text[0] in "\"'":
        end = text.index(text[0], 1)
        key = text[1:end]
        rest = text[end + 1:]
        assert rest.startswith(":"), text
        return key, rest[1:]
    key, _, rest = text.partition(":")
    return key.strip(), rest


def load_yaml(text):
    lines = []
    for raw in text.splitlines():
        s = _strip_comment(raw)
        if s.strip():
            lines.append((len(s) - len(s.lstrip(" ")), s.strip()))
    pos = 0

    def block(indent):
        nonlocal pos
        if lines[pos][1].startswith("- "):
            out = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                item = lines[pos][1][2:]
                if re.match(r"^(\"[^\"]*\"|'[^']*'|[^\s\"'][^:]*):(\s|$)", item) and not item.startswith(("\"", "'")) or \
                        re.match(r"^\$ref:", item):
                    # "- key: value" starts a mapping whose keys sit at indent + 2
                    lines[pos] = (indent + 2, item)
                    out.append(block(indent + 2))
                else:
                    pos += 1
                    out.append(_scalar(item))
            return out
        out = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            key, rest = _split_key(lines[pos][1])
            pos += 1
            if rest.strip():
                out[key] = _scalar(rest)
            elif pos < len(lines) and lines[pos][0] > indent:
                out[key] = block(lines[pos][0])
            elif pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                out[key] = block(indent)
            else:
                out[key] = None
        return out

    doc = block(lines[0][0])
    assert pos == len(lines), f"unparsed YAML from line: {lines[pos][1]!r}"
    return doc


def load(path):
    with open(path) as f:
        return load_yaml(f.read())


class Validator:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
        return node

    def check(self, schema, value, where="$"):
        """Returns a list of problems (empty if VALUE matches SCHEMA)."""
        s = self.resolve(schema)
        if value is None:
            if s.get("nullable") or "type" not in s and "oneOf" not in s:
                return []
            if "oneOf" in s:
                return [] if any(not self.check(o, value, where) for o in s["oneOf"]) else [f"{where}: null not allowed"]
            return [f"{where}: null not allowed"]
        if "oneOf" in s:
            ok = [o for o in s["oneOf"] if not self.check(o, value, where)]
            return [] if len(ok) >= 1 else [f"{where}: matches none of oneOf"]
        problems = []
        t = s.get("type")
        types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
        if t and not (isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool))):
            return [f"{where}: expected {t}, got {type(value).__name__}"]
        if "enum" in s and value not in s["enum"]:
            problems.append(f"{where}: {value!r} not in {s['enum']}")
        fmt = s.get("format")
        if fmt == "date-time" and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            problems.append(f"{where}: not a date-time: {value!r}")
        if fmt == "uuid" and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
            problems.append(f"{where}: not a uuid: {value!r}")
        if t == "object":
            props = s.get("properties") or {}
            for k in s.get("required") or []:
                if k not in value:
                    problems.append(f"{where}: missing {k}")
            for k, v in value.items():
                if k in props:
                    problems += self.check(props[k], v, f"{where}.{k}")
                elif s.get("additionalProperties") is False:
                    problems.append(f"{where}: unexpected key {k}")
        if t == "array" and "items" in s:
            for i, v in enumerate(value):
                problems += self.check(s["items"], v, f"{where}[{i}]")
        return problems

    def response_schema(self, path, method, status):
        """The schema documented for PATH (a template like '/{id}/result') METHOD STATUS, or
        raises KeyError if the document does not list that status."""
        op = self.doc["paths"][path][method.lower()]
        resp = self.resolve(op["responses"][str(status)])
        content = resp.get("content") or {}
        media = content.get("application/json")
        return self.resolve(media["schema"]) if media else None

    def response_headers(self, path, method, status):
        op = self.doc["paths"][path][method.lower()]
        return self.resolve(op["responses"][str(status)]).get("headers") or {}
