#!/usr/bin/env python3
"""Fails (exit 1) when a module of src/ imports from a higher layer than its own, or when
modules import each other in a cycle. Layers and their modules: .ci/layers.toml. Every
`crate::a::b` and `super::x` path in non-test code counts for the layers, not only `use` lines;
test modules may import upward, but their imports count for cycles (a judgement module's test
pulling in the write side that imports it back is still a knot). A module not listed in
layers.toml is an error too (a new module must say where it belongs).

usage: python3 .ci/layers.py [SRC_DIR]   (default: src)"""
import os, re, sys, tomllib

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
layers = tomllib.load(open(os.path.join(here, "layers.toml"), "rb"))["layer"]
rank = {m: i for i, l in enumerate(layers) for m in l["modules"]}
name = {i: l["name"] for i, l in enumerate(layers)}

def strip(text):
    # Test modules may import anything: cut every `#[cfg(test)] mod x { ... }` block (brace
    # matched), then comments.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\](\s*#\[[^\]]*\])*\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return re.sub(r"//[^\n]*", "", "".join(out))

errors, edges = [], {}
for dp, _, fs in os.walk(src):
    rel_dir = os.path.relpath(dp, src)
    if rel_dir.split(os.sep)[0] == "bin":
        continue
    for f in fs:
        if not f.endswith(".rs") or (rel_dir == "." and f == "lib.rs"):
            continue
        rel = os.path.normpath(os.path.join(rel_dir, f))
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top not in rank:
            errors.append(f"{rel}: module `{top}` is in no layer of .ci/layers.toml")
            continue
        raw = open(os.path.join(dp, f), encoding="utf-8").read()
        for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", re.sub(r"//[^\n]*", "", raw)):
            if m.group(1) in rank and m.group(1) != top:
                edges.setdefault(top, set()).add(m.group(1))
        text = strip(raw)
        for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", text):
            dep = m.group(1)
            if dep not in rank or dep == top:
                continue
            edges.setdefault(top, set()).add(dep)
            if rank[dep] > rank[top]:
                line = text[: m.start()].count("\n") + 1
                errors.append(
                    f"{rel}:{line}: `{top}` ({name[rank[top]]}) imports `crate::{dep}` ({name[rank[dep]]}), a higher layer"
                )

# Cycles among top-level modules (Tarjan).
idx, low, st, on, cycles = {}, {}, [], set(), []
def visit(v):
    idx[v] = low[v] = len(idx); st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            cycles.append(sorted(comp))
for v in list(edges):
    if v not in idx:
        visit(v)
for c in cycles:
    errors.append("import cycle: " + " <-> ".join(c))

for e in sorted(set(errors)):
    print(e)
print(f"layers: {len(rank)} modules in {len(layers)} layers; {len(set(errors))} problem(s)")
sys.exit(1 if errors else 0)
