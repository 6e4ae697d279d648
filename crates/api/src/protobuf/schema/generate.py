#!/usr/bin/env python3
"""Regenerates the schema tables in this folder from the Kubernetes sources.

Usage: generate.py API_CHECKOUT APIMACHINERY_CHECKOUT [K8S_PB_SRC]

Facts taken from each source:
- `generated.proto` (k8s.io/api, k8s.io/apimachinery): field numbers, proto types, repeated/map.
- `types.go`: the JSON name, whether the Go field is a pointer (presence on the wire means
  "set", so zero values survive) and whether it is embedded inline (`VolumeSource` in `Volume`).
- k8s-pb's generated Rust (optional third argument): a cross-check that every field number and
  scalar kind agrees with what prost encodes in the tests.

Only messages reachable from the kinds in ROOTS are written. Output: one `<group>.rs` per package.
"""
import os
import re
import subprocess
import sys

API, MACH = sys.argv[1], sys.argv[2]
K8S_PB = sys.argv[3] if len(sys.argv) > 3 else None
OUT = os.path.dirname(os.path.abspath(__file__))

# proto package -> (rust module, source repo, dir)
PACKAGES = {
    "k8s.io.api.core.v1": ("core_v1", API, "core/v1"),
    "k8s.io.api.apps.v1": ("apps", API, "apps/v1"),
    "k8s.io.api.networking.v1": ("networking", API, "networking/v1"),
    "k8s.io.api.discovery.v1": ("discovery", API, "discovery/v1"),
    "k8s.io.api.coordination.v1": ("coordination", API, "coordination/v1"),
    "k8s.io.api.autoscaling.v1": ("autoscaling", API, "autoscaling/v1"),
    "k8s.io.apimachinery.pkg.apis.meta.v1": ("meta", MACH, "pkg/apis/meta/v1"),
}
# Messages with their own JSON form, decoded by hand in decode.rs.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
}
SCALARS = {"string": "Str", "int32": "I32", "int64": "I64", "bool": "Bool", "bytes": "Bytes"}
ROOTS = [
    "k8s.io.api.apps.v1.Deployment", "k8s.io.api.apps.v1.ReplicaSet",
    "k8s.io.api.core.v1.Service", "k8s.io.api.core.v1.Namespace", "k8s.io.api.core.v1.ConfigMap",
    "k8s.io.api.core.v1.Secret", "k8s.io.api.core.v1.ServiceAccount", "k8s.io.api.core.v1.Pod",
    "k8s.io.api.core.v1.Endpoints", "k8s.io.api.core.v1.Node", "k8s.io.api.core.v1.Event",
    "k8s.io.api.networking.v1.Ingress", "k8s.io.api.networking.v1.IngressClass",
    "k8s.io.api.discovery.v1.EndpointSlice", "k8s.io.api.coordination.v1.Lease",
    "k8s.io.api.autoscaling.v1.Scale",
]


def git_show(repo, path):
    return subprocess.run(["git", "-C", repo, "show", "HEAD:" + path], check=True,
                          capture_output=True, text=True).stdout


def parse_proto(pkg, text):
    """message name -> list of (label, type, name, number); types made fully qualified."""
    msgs, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^message (\w+) \{", line)
        if m:
            cur = msgs.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            cur = None
            continue
        m = re.match(r"^  (optional|repeated) ([\w.]+) (\w+) = (\d+);", line)
        mm = re.match(r"^  map<string, ([\w.]+)> (\w+) = (\d+);", line)
        if cur is None or not (m or mm):
            continue
        if m:
            label, typ, name, num = m.groups()
        else:
            label, (typ, name, num) = "map", mm.groups()
        if typ.startswith("."):
            typ = typ[1:]
        elif typ not in SCALARS:
            typ = pkg + "." + typ
        cur.append((label, typ, name, int(num)))
    return msgs


def parse_go(text):
    """struct -> field number -> (json name or None for inline, is pointer)."""
    structs, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^type (\w+) struct \{", line)
        if m:
            cur = structs.setdefault(m.group(1), {})
            continue
        if line.startswith("}"):
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r"^\t(?:(\w+)\s+)?(\S+)\s+`(.*)`", line)
        if not m:
            continue
        fname, gotype, tags = m.groups()
        pm = re.search(r'protobuf:"\w+,(\d+),', tags)
        jm = re.search(r'json:"([^"]*)"', tags)
        if not pm or not jm:
            continue
        jparts = jm.group(1).split(",")
        embedded = fname is None
        inline = "inline" in jparts[1:] or (embedded and jparts[0] == "")
        cur[int(pm.group(1))] = (None if inline else jparts[0], gotype.startswith("*"))
    return structs


protos, gos = {}, {}
for pkg, (mod, repo, d) in PACKAGES.items():
    for name, fields in parse_proto(pkg, git_show(repo, d + "/generated.proto")).items():
        protos[pkg + "." + name] = fields
    go = {}
    names = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", "HEAD", d + "/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for path in names:
        if path.endswith(".go") and not path.endswith("_test.go") and "generated" not in path \
                and "zz_" not in path:
            go.update(parse_go(git_show(repo, path)))
    gos[pkg] = go

# Walk reachable messages.
order, seen, todo = [], set(), list(ROOTS)
while todo:
    full = todo.pop(0)
    if full in seen or full in SPECIAL:
        continue
    seen.add(full)
    order.append(full)
    for label, typ, name, num in protos[full]:
        if typ not in SCALARS and typ not in SPECIAL:
            todo.append(typ)


def reachable(start):
    out, todo = set(), [start]
    while todo:
        full = todo.pop()
        if full in out or full in SPECIAL or full not in protos:
            continue
        out.add(full)
        todo += [t for _, t, _, _ in protos[full]]
    return out


# core/v1 is too big for one file: the Pod subtree and the volume sources get their own.
CORE = "k8s.io.api.core.v1."
VOLUME = reachable(CORE + "VolumeSource")
POD = (reachable(CORE + "PodSpec") | reachable(CORE + "PodStatus")) - VOLUME


def module(full):
    if not full.startswith(CORE):
        pass
    elif full in VOLUME:
        return "volume"
    elif full in POD:
        return "pod"
    return PACKAGES[split(full)[0]][0]


def split(full):
    pkg, name = full.rsplit(".", 1)
    return pkg, name


def ident(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


def wrap(items):
    """Packs the field constructors into lines of at most 120 columns, four spaces in."""
    out, line = [], "   "
    for item in items:
        if len(line) + 1 + len(item) > 120:
            out.append(line)
            line = "   "
        line += " " + item
    out.append(line)
    return "\n".join(out)


problems = []
by_mod = {}
for full in order:
    pkg, name = split(full)
    mod = module(full)
    go = gos[pkg].get(name)
    if go is None:
        problems.append("no Go struct for " + full)
        go = {}
    lines = []
    for label, typ, pname, num in protos[full]:
        if num not in go:
            problems.append("no Go field for %s.%s" % (full, pname))
            continue
        json, ptr = go[num]
        if typ in SCALARS:
            kind = SCALARS[typ]
        elif typ in SPECIAL:
            kind = SPECIAL[typ]
        else:
            tname = split(typ)[1]
            tmod = module(typ)
            target = ident(tname) if tmod == mod else "super::%s::%s" % (tmod, ident(tname))
            kind = "Msg(&%s)" % target
        call = 'f(%d, "%s", %s)' % (num, json or pname, kind)
        if json is None:
            call += ".inline()"
        elif label == "repeated":
            call += ".repeated()"
        elif label == "map":
            call += ".map()"
        elif ptr:
            call += ".pointer()"
        lines.append(call + ",")
    short = full.replace("k8s.io.api.", "").replace("k8s.io.apimachinery.pkg.apis.", "")
    by_mod.setdefault(mod, []).append(
        "/// `%s`\npub(crate) static %s: Message = Message::new(\"%s\", &[\n%s\n]);\n"
        % (full, ident(name), short, wrap(lines)))

def prost_name(name):
    """prost's UpperCamelCase of a proto message name, up to case: PodDNSConfig -> PodDnsConfig."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z][a-z0-9]*|[a-z0-9]+", name)
    return "".join(w[0].upper() + w[1:].lower() for w in words)


# Cross-check field numbers and scalar kinds against k8s-pb's prost attributes.
if K8S_PB:
    PB_KIND = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool", "bytes": "bytes"}
    for full in order:
        pkg, name = split(full)
        rel = pkg.replace("k8s.io.api.", "api.").replace("k8s.io.apimachinery.", "apimachinery.")
        path = os.path.join(K8S_PB, "src", *rel.split("."), "mod.rs")
        src = open(path).read()
        m = re.search(r"pub struct (?i:%s) \{(.*?)\n\}" % prost_name(name), src, re.S)
        if not m:
            problems.append("k8s-pb lacks " + full)
            continue
        pb = {}
        for am in re.finditer(r'#\[prost\(([^)]*?)tag = "(\d+)"', m.group(1)):
            pb[int(am.group(2))] = am.group(1)
        for label, typ, pname, num in protos[full]:
            if num not in pb:
                continue  # newer than k8s-pb; fine
            attr = pb[num]
            want = ("btree_map" if label == "map" else
                    PB_KIND.get(typ, "message"))
            if label == "map":
                want += ' = "string, %s"' % PB_KIND.get(typ, "message")
            if not attr.startswith(want):
                problems.append("k8s-pb disagrees on %s.%s = %d: %s" % (full, pname, num, attr))
            if label == "repeated" and "repeated" not in attr:
                problems.append("k8s-pb: %s.%s not repeated" % (full, pname))
        extra = set(pb) - {f[3] for f in protos[full]}
        if extra:
            problems.append("k8s-pb has extra tags %s in %s" % (sorted(extra), full))

def head(repo):
    return subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


SOURCES = "kubernetes/api@%s, kubernetes/apimachinery@%s" % (head(API), head(MACH))
for mod, blocks in sorted(by_mod.items()):
    pkg = [p for p, v in PACKAGES.items() if v[0] == mod] or ["k8s.io.api.core.v1"]
    pkg = pkg[0]
    with open(os.path.join(OUT, mod + ".rs"), "w") as out:
        out.write("//! Field tables for `%s`, generated by `generate.py` from `generated.proto` and\n"
                  "//! `types.go` of %s.\n"
                  "//! Do not edit by hand; rerun the script.\n\n"
                  "use super::{f, Kind::*, Message};\n\n" % (pkg, SOURCES))
        out.write("\n".join(blocks))
print("\n".join(problems) or "no problems", file=sys.stderr)
print("%d messages" % len(order), file=sys.stderr)
