#!/usr/bin/env python3
"""An outside verifier for treaty's audit log, written from RFC 9162 §2.1 and the C2SP
tlog-tiles and tlog-checkpoint specifications, not from treaty's code. Standard library only.

Usage: audit.py EXPORT_DIR [INCLUSION_PROOF.json [CONSISTENCY_PROOF.json]]

EXPORT_DIR is the tree of refs/treaty/audit (e.g. `git archive refs/treaty/audit | tar -x`).
It recomputes every leaf from the entry bundles, the Merkle tree hash MTH (RFC 9162 §2.1.1),
compares the level-0 tiles and the checkpoint's root, then checks the given proofs two ways:
with the RFC's verification algorithms (§2.1.3.2, §2.1.4.2) and against proofs it derives
itself from the definitions PATH and PROOF (§2.1.3.1, §2.1.4.1). Exit 0 when all agree.
"""

import base64
import hashlib
import json
import os
import sys


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def leaf(d):
    return hashlib.sha256(b"\x00" + d).digest()


def node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def k_of(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    """RFC 9162 §2.1.1 over a list of leaf hashes, by the definition."""
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = k_of(len(d))
    return node(mth(d[:k]), mth(d[k:]))


def path(m, d):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(d) <= 1:
        return []
    k = k_of(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def verify_inclusion(index, size, leaf_hash, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, proof, first_hash, second_hash):
    """RFC 9162 §2.1.4.2."""
    if first == 0 or first > second:
        return False
    if first == second:
        return proof == [] and first_hash == second_hash
    if first & (first - 1) == 0:  # a power of two: prepend first_hash
        proof = [first_hash] + proof
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def index_path(n):
    """C2SP tlog-tiles: N as 3-digit groups, all but the last prefixed with x."""
    groups = ["%03d" % (n % 1000)]
    n //= 1000
    while n > 0:
        groups.append("x%03d" % (n % 1000))
        n //= 1000
    return "/".join(reversed(groups))


def read_bundles(root):
    """Entry bundles in order: full ones (256 entries), then at most one partial."""
    entries = []
    n = 0
    while True:
        full = os.path.join(root, "tile", "entries", index_path(n))
        if os.path.isfile(full):
            data, partial = open(full, "rb").read(), None
        else:
            pdir = full + ".p"
            if not os.path.isdir(pdir):
                break
            widths = os.listdir(pdir)
            if len(widths) != 1:
                fail("bundle %d has %d partial versions" % (n, len(widths)))
            partial = int(widths[0])
            data = open(os.path.join(pdir, widths[0]), "rb").read()
        got = []
        i = 0
        while i < len(data):
            if i + 2 > len(data):
                fail("bundle %d: truncated length" % n)
            ln = int.from_bytes(data[i : i + 2], "big")
            if i + 2 + ln > len(data):
                fail("bundle %d: truncated entry" % n)
            got.append(data[i + 2 : i + 2 + ln])
            i += 2 + ln
        want = 256 if partial is None else partial
        if len(got) != want:
            fail("bundle %d holds %d entries, its name says %d" % (n, len(got), want))
        entries.extend(got)
        if partial is not None:
            break
        n += 1
    return entries


def read_checkpoint(root):
    text = open(os.path.join(root, "checkpoint"), "rb").read().decode()
    body, sep, sigs = text.partition("\n\n")
    if not sep or not sigs.startswith("\u2014 "):
        fail("checkpoint is not a signed note")
    lines = body.split("\n")
    if len(lines) < 3:
        fail("checkpoint body has fewer than three lines")
    return lines[0], int(lines[1]), base64.b64decode(lines[2])


def main():
    if len(sys.argv) < 2:
        fail("usage: audit.py EXPORT_DIR [INCLUSION.json [CONSISTENCY.json]]")
    root = sys.argv[1]
    entries = read_bundles(root)
    leaves = [leaf(e) for e in entries]
    for e in entries:
        json.loads(e)  # every entry is JSON
    # Level-0 tiles: the leaf hashes, 256 per tile.
    for t in range(0, (len(leaves) + 255) // 256):
        chunk = leaves[t * 256 : (t + 1) * 256]
        name = os.path.join(root, "tile", "0", index_path(t))
        if len(chunk) < 256:
            name += ".p/%d" % len(chunk)
        if open(name, "rb").read() != b"".join(chunk):
            fail("tile %s differs from the recomputed leaf hashes" % name)
    origin, size, cp_root = read_checkpoint(root)
    if size > len(leaves):
        fail("checkpoint size %d exceeds %d entries" % (size, len(leaves)))
    if mth(leaves[:size]) != cp_root:
        fail("checkpoint root does not match MTH of the first %d entries" % size)
    print("origin", origin, "size", size, "root", cp_root.hex())
    if len(sys.argv) > 2:
        p = json.load(open(sys.argv[2]))
        proof = [bytes.fromhex(h) for h in p["proof"]]
        lh = bytes.fromhex(p["leaf_hash"])
        r = bytes.fromhex(p["root"])
        if lh != leaves[p["index"]]:
            fail("the proof's leaf hash is not entry %d's" % p["index"])
        if r != mth(leaves[: p["size"]]):
            fail("the proof's root is not MTH of its size")
        if proof != path(p["index"], leaves[: p["size"]]):
            fail("the inclusion proof differs from PATH(m, D[n])")
        if not verify_inclusion(p["index"], p["size"], lh, proof, r):
            fail("the inclusion proof does not verify")
        print("inclusion", p["index"], "in", p["size"], "ok")
    if len(sys.argv) > 3:
        c = json.load(open(sys.argv[3]))
        proof = [bytes.fromhex(h) for h in c["proof"]]
        m, n = c["old_size"], c["new_size"]
        a, b = bytes.fromhex(c["old_root"]), bytes.fromhex(c["new_root"])
        if a != mth(leaves[:m]) or b != mth(leaves[:n]):
            fail("the consistency proof's roots are not MTH of its sizes")
        if proof != subproof(m, leaves[:n], True):
            fail("the consistency proof differs from PROOF(m, D[n])")
        if not verify_consistency(m, n, proof, a, b):
            fail("the consistency proof does not verify")
        print("consistency", m, "->", n, "ok")
    print("OK")


if __name__ == "__main__":
    main()
