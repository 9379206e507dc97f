#!/usr/bin/env python3
"""Validates recorded control-socket exchanges against the OpenAPI document.

    api_check.py [--require-all] OPENAPI.json EXCHANGES.jsonl

EXCHANGES.jsonl holds one JSON object per line:
    {"method": "PUT", "path": "/machine", "status": 204,
     "content_type": "application/json" or "" , "body": "<response body>",
     "request": "<request body>" (optional)}

For each exchange, generically (no expectations written here): find the
operation for (path, method) in the document (path templates like
/disks/{id} included; an unknown path or method must be answered 404/405
and is checked against the document's "x-unrouted-response"), the response
for the status (exact, then "4XX", then "default"; none is a failure), and
check that the body matches: no content declared means an empty body; else
the content type must be one the document lists and the body must validate
against its schema (application/x-ndjson: every line does). A request body
that the server accepted (2xx) must validate against the operation's
requestBody schema too. Schemas are checked with python3-jsonschema's
Draft 4 validator (OpenAPI 3.0's schema objects are a Draft 4 dialect).
--require-all also fails when a documented operation was never exercised.
Exit status: 0 all valid, 1 failures, 2 usage or unreadable input.
"""
import json
import re
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("api_check: python3-jsonschema is needed (apt-get install python3-jsonschema)\n")
    sys.exit(2)


def resolve(doc, node):
    """Follows a local $ref ("#/a/b") in doc."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 32:
            raise ValueError("unsupported $ref %r" % ref)
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return node


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.routes = []
        for template, item in doc.get("paths", {}).items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            self.routes.append((re.compile(rx), template, item))
        self.covered = set()
        # Every schema in the document must itself be a valid schema.
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            jsonschema.Draft4Validator.check_schema(schema)

    def validator(self, schema):
        root = dict(schema)
        root["components"] = self.doc.get("components", {})
        return jsonschema.Draft4Validator(root)

    def operations(self):
        for _, template, item in self.routes:
            for method in item:
                if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    yield (method.upper(), template)

    def find(self, method, path):
        for rx, template, item in self.routes:
            if rx.match(path):
                op = item.get(method.lower())
                return template, op
        return None, None

    def check_body(self, what, schema, body, ctype):
        errors = []
        if ctype == "application/x-ndjson":
            lines = [l for l in body.split("\n") if l.strip()]
            values = []
            for i, line in enumerate(lines):
                try:
                    values.append(("line %d" % (i + 1), json.loads(line)))
                except ValueError as e:
                    errors.append("%s: line %d is not JSON: %s" % (what, i + 1, e))
        else:
            try:
                values = [("body", json.loads(body))]
            except ValueError as e:
                return ["%s: the body is not JSON: %s" % (what, e)]
        v = self.validator(schema)
        for where, value in values:
            for err in v.iter_errors(value):
                loc = "/".join(str(p) for p in err.absolute_path)
                errors.append("%s: %s at '%s': %s" % (what, where, loc, err.message))
        return errors

    def check(self, ex):
        method, path, status = ex["method"], ex["path"], int(ex["status"])
        body = ex.get("body", "")
        ctype = (ex.get("content_type") or "").split(";")[0].strip().lower()
        what = "%s %s -> %d" % (method, path, status)
        template, op = self.find(method, path.split("?")[0])
        if op is None:
            if status not in (400, 404, 405):
                return ["%s: not in the document, and not answered 400/404/405" % what]
            resp = self.doc.get("x-unrouted-response")
            if resp is None:
                return ["%s: not in the document, which has no x-unrouted-response" % what]
        else:
            self.covered.add((method.upper(), template))
            responses = op.get("responses", {})
            resp = (responses.get(str(status)) or responses.get("%dXX" % (status // 100))
                    or responses.get("default"))
            if resp is None:
                return ["%s: status %d is not documented for %s %s" % (what, status, method, template)]
        resp = resolve(self.doc, resp)
        content = resp.get("content")
        errors = []
        if not content:
            if body:
                errors.append("%s: the document declares no body, got %d bytes" % (what, len(body)))
        elif ctype not in content:
            errors.append("%s: content type %r is not one of %s" % (what, ctype, sorted(content)))
        else:
            schema = content[ctype].get("schema")
            if schema is not None:
                errors += self.check_body(what, schema, body, ctype)
        req = ex.get("request")
        if op is not None and req and 200 <= status < 300 and "requestBody" in op:
            rb = resolve(self.doc, op["requestBody"])
            schema = rb.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                errors += self.check_body(what + " (request)", schema, req, "application/json")
        return errors


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    require_all = "--require-all" in argv[1:]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        with open(args[0]) as f:
            doc = json.load(f)
        with open(args[1]) as f:
            exchanges = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError) as e:
        sys.stderr.write("api_check: %s\n" % e)
        return 2
    if not str(doc.get("openapi", "")).startswith("3.0"):
        sys.stderr.write("api_check: %s is not an OpenAPI 3.0 document\n" % args[0])
        return 2
    checker = Checker(doc)
    failures = []
    for ex in exchanges:
        failures += checker.check(ex)
    missing = sorted(set(checker.operations()) - checker.covered)
    for f in failures:
        print("api_check: FAIL " + f)
    ops = len(set(checker.operations()))
    print("api_check: %d exchanges, %d failures; %d of %d operations exercised%s" %
          (len(exchanges), len(failures), ops - len(missing), ops,
           "" if not missing else " (missing: %s)" % ", ".join("%s %s" % m for m in missing)))
    if failures or (require_all and missing):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
