#!/usr/bin/python3
"""check_datapackage.py FOLDER: the publish folder's current version is whole.

FOLDER/current must be a symlink to a version folder whose datapackage.json
follows the Frictionless Data Package layout Sluice writes (a name, a
profile, resources with name, path, format, mediatype, bytes, hash and a
Table Schema) and whose every resource's file exists with exactly the size
and SHA-256 the package records; CSV and JSON resources parse and hold the
rows recorded. Prints what is wrong and exits 1; prints "ok N" otherwise.
"""
import csv
import hashlib
import io
import json
import os
import re
import sys

TYPES = {"string", "number", "integer", "boolean", "date", "time", "datetime",
         "array", "object", "any"}


def main(folder):
    current = os.path.join(folder, "current")
    errors = []
    if not os.path.islink(current):
        print(f"{current} is not a symlink")
        return 1
    target = os.readlink(current)
    if not re.fullmatch(r"versions/\d{8}", target):
        errors.append(f"current points at {target}, not versions/NNNNNNNN")
    with open(os.path.join(current, "datapackage.json"), encoding="utf-8") as f:
        package = json.load(f)
    if package.get("profile") != "data-package":
        errors.append("profile is not data-package")
    if not re.fullmatch(r"[a-z0-9._-]+", package.get("name", "")):
        errors.append(f"package name {package.get('name')!r} breaks the naming rule")
    names = set()
    for r in package.get("resources", []):
        name = r.get("name", "")
        if not re.fullmatch(r"[a-z0-9._-]+", name) or name in names:
            errors.append(f"resource name {name!r} is invalid or repeated")
        names.add(name)
        missing = [k for k in ("path", "format", "mediatype", "bytes", "hash", "schema") if k not in r]
        if missing:
            errors.append(f"{name}: no {', '.join(missing)}")
            continue
        if r["path"].startswith("/") or ".." in r["path"].split("/"):
            errors.append(f"{name}: path {r['path']} leaves the version")
            continue
        if (r.get("profile") == "tabular-data-resource") != (r["format"] == "csv"):
            errors.append(f"{name}: profile {r.get('profile')} for format {r['format']}")
        path = os.path.join(current, r["path"])
        if not os.path.isfile(path):
            errors.append(f"{name}: {r['path']} is missing")
            continue
        data = open(path, "rb").read()
        if len(data) != r["bytes"]:
            errors.append(f"{name}: {len(data)} bytes, package says {r['bytes']}")
        if r["hash"] != "sha256:" + hashlib.sha256(data).hexdigest():
            errors.append(f"{name}: hash differs from the file")
        fields = r["schema"].get("fields", [])
        for fd in fields:
            if fd.get("type") not in TYPES:
                errors.append(f"{name}: field {fd.get('name')} has type {fd.get('type')}")
        for k in r["schema"].get("primaryKey", []):
            if k not in [fd["name"] for fd in fields]:
                errors.append(f"{name}: primaryKey {k} is no field")
        rows = r.get("sluice", {}).get("rows")
        if r["format"] == "csv":
            table = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            if table[0] != [fd["name"] for fd in fields]:
                errors.append(f"{name}: CSV header {table[0]} is not the schema's fields")
            if len(table) - 1 != rows:
                errors.append(f"{name}: {len(table) - 1} CSV rows, package says {rows}")
        elif r["format"] == "json":
            items = json.loads(data)
            if not isinstance(items, list) or len(items) != rows:
                errors.append(f"{name}: JSON is not an array of {rows} objects")
        elif r["format"] == "geojson":
            doc = json.loads(data)
            if doc.get("type") != "FeatureCollection" or len(doc["features"]) != rows:
                errors.append(f"{name}: not a FeatureCollection of {rows} features")
        elif r["format"] == "parquet":
            if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
                errors.append(f"{name}: not a Parquet file")
        elif r["format"] == "sqlite":
            if not data.startswith(b"SQLite format 3\0"):
                errors.append(f"{name}: not an SQLite file")
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"ok {len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
