#!/usr/bin/env python3
"""An outside verifier for treaty's audit log, written from RFC 9162 §2.1, RFC 8032, FIPS 186-5
(ECDSA P-256, for log members whose key is in a TPM) and the C2SP tlog-tiles, signed-note and
tlog-checkpoint specifications, and docs/audit.md, not from treaty's code. Standard library only.

Usage: audit.py --keys KEYS EXPORT_DIR [INCLUSION_PROOF.json [CONSISTENCY_PROOF.json]]

EXPORT_DIR is the tree of refs/treaty/audit (e.g. `git archive refs/treaty/audit | tar -x`).
KEYS (required: without it there is no verdict) is the governance repository, or its `keys/`
folder, whose root names the log group: `keys/root.json` `roles.log` names a group, whose
members (`keys/groups/<name>.json`, or the root group for `root`) sign checkpoints with key
name = the checkpoint's origin (docs/audit.md, "Format"). KEYS is trusted as given: check the
repository itself first (`treaty verify`, or tests/reference/verify.py), which establishes
its root chain and pinned groups.

It recomputes every leaf from the entry bundles and every tile at every level from them
(level 0 from the leaf hashes, each higher level from the full tiles of the level below,
partial tiles included, C2SP tlog-tiles) and compares each with the stored tile, requiring
exactly the tiles of a log of that many entries; verifies the checkpoint's signed note
(C2SP signed-note: Ed25519, RFC 8032, or ECDSA 0x02) against the log group's members, requiring the group's
threshold of distinct unrevoked members and rejecting the note if a signature line of a known
key fails; checks that the checkpoint's root is the Merkle tree hash MTH (RFC 9162 §2.1.1) of
its first `size` entries; then checks the given proofs two ways: with the RFC's verification
algorithms (§2.1.3.2, §2.1.4.2) and against proofs it derives itself from the definitions
PATH and PROOF (§2.1.3.1, §2.1.4.1). Exit 0 when all agree, 1 with `FAIL: …` otherwise, 2 on
a usage error.
"""

import argparse
import base64
import binascii
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


# --- Tiles at every level (C2SP tlog-tiles) -------------------------------------------------


def tile_levels(leaves):
    """The hashes of each tile level: level 0 is the leaf hashes; level l + 1 holds, for each
    full tile of level l (256 hashes), the MTH of those 256 hashes (the root of the subtree of
    height 8 they span). Partial tiles are never hashed into the level above."""
    levels = [leaves]
    while len(levels[-1]) >= 256:
        below = levels[-1]
        levels.append([mth(below[i * 256 : (i + 1) * 256]) for i in range(len(below) // 256)])
    return levels


def expected_tiles(leaves):
    """Path (relative to the export, `tile/<L>/<N>[.p/<W>]`) -> bytes, for every tile of a log
    of len(leaves) entries: full tiles of 256 hashes and, at each level, the partial tile of
    floor(size / 256**l) mod 256 hashes when that is not 0 (empty tiles are not served)."""
    out = {}
    for level, hashes in enumerate(tile_levels(leaves)):
        for n in range((len(hashes) + 255) // 256):
            chunk = hashes[n * 256 : (n + 1) * 256]
            name = "tile/%d/%s" % (level, index_path(n))
            if len(chunk) < 256:
                name += ".p/%d" % len(chunk)
            out[name] = b"".join(chunk)
    return out


def stored_tiles(root):
    """Every file under EXPORT_DIR/tile except the entry bundles, by relative path."""
    out = {}
    base = os.path.join(root, "tile")
    for d, dirs, files in os.walk(base):
        rel = os.path.relpath(d, root).replace(os.sep, "/")
        if rel == "tile":
            dirs[:] = [x for x in dirs if x != "entries"]
        for f in files:
            out[rel + "/" + f] = os.path.join(d, f)
    return out


def check_tiles(root, leaves):
    want = expected_tiles(leaves)
    have = stored_tiles(root)
    for name in sorted(have):
        if name not in want:
            fail("tile %s is not a tile of a log of %d entries" % (name, len(leaves)))
        if open(have[name], "rb").read() != want[name]:
            fail("tile %s differs from the one recomputed from the entries" % name)
    for name in sorted(want):
        if name not in have:
            fail("tile %s is missing" % name)
    return len(want), len(tile_levels(leaves)) if leaves else 0


# --- Ed25519 verification (RFC 8032 §5.1.7), strict as docs/spec.md §1 requires -----------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    """RFC 8032 §5.1.3 step 2-4; None when there is no such point."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        x = x * SQRT_M1 % P
        if (v * x * x - u) % P != 0:
            return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def _decode(b):
    """A point in extended coordinates (X, Y, Z, T) from its 32-byte encoding, or None when
    the encoding is not canonical (y >= p) or names no point."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _add(p, q):
    """RFC 8032 §5.1.4, extended coordinates."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _encode(p):
    zi = pow(p[2], P - 2, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _small_order(p):
    q = _mul(8, p)
    return q[0] % P == 0 and (q[1] - q[2]) % P == 0


_BY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % P)


def ed25519_key_ok(pk):
    a = _decode(pk)
    return a is not None and not _small_order(a)


def ed25519_verify(pk, msg, sig):
    """RFC 8032 §5.1.7 (cofactorless), refusing a non-canonical or small-order public key or
    R, and S >= L."""
    if len(pk) != 32 or len(sig) != 64:
        return False
    a, r = _decode(pk), _decode(sig[:32])
    if a is None or r is None or _small_order(a) or _small_order(r):
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + pk + msg).digest(), "little") % L
    # [S]B = R + [k]A  <=>  encode([S]B + [k](-A)) = R (R is canonical, checked above)
    neg_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    return _encode(_add(_mul(s, BASE), _mul(k, neg_a))) == sig[:32]


# --- ECDSA P-256 (FIPS 186-5, SEC 1), for log members whose key is in a TPM ------------------
# Affine arithmetic on y^2 = x^3 - 3x + b over GF(p); slow, small, enough for a few lines.

P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
          0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _p256_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P256_P == 0:
        return None
    if a == b:
        lam = (3 * a[0] * a[0] - 3) * pow(2 * a[1], P256_P - 2, P256_P) % P256_P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], P256_P - 2, P256_P) % P256_P
    x = (lam * lam - a[0] - b[0]) % P256_P
    return (x, (lam * (a[0] - x) - a[1]) % P256_P)


def _p256_mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = _p256_add(out, pt)
        pt = _p256_add(pt, pt)
        k >>= 1
    return out


def p256_point(raw):
    """A SEC 1 compressed point (33 bytes, 02/03 ‖ x), or None when it is not on the curve."""
    if len(raw) != 33 or raw[0] not in (2, 3):
        return None
    x = int.from_bytes(raw[1:], "big")
    if x >= P256_P:
        return None
    y2 = (x * x * x - 3 * x + P256_B) % P256_P
    y = pow(y2, (P256_P + 1) // 4, P256_P)
    if y * y % P256_P != y2:
        return None
    if y & 1 != raw[0] & 1:
        y = P256_P - y
    return (x, y)


def p256_spki(pt):
    """The DER SubjectPublicKeyInfo of a P-256 point (id-ecPublicKey, prime256v1, uncompressed)."""
    prefix = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    return prefix + b"\x04" + pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big")


def der_ecdsa_sig(sig):
    """(r, s) of a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs, minimal), or None."""
    def integer(b, i):
        if i + 2 > len(b) or b[i] != 2 or b[i + 1] > 33 or b[i + 1] == 0:
            return None, i
        n = b[i + 1]
        v = b[i + 2:i + 2 + n]
        if len(v) != n or v[0] & 0x80 or (n > 1 and v[0] == 0 and not v[1] & 0x80):
            return None, i
        return int.from_bytes(v, "big"), i + 2 + n
    if len(sig) < 8 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        return None
    r, i = integer(sig, 2)
    s, j = integer(sig, i) if r is not None else (None, i)
    if r is None or s is None or j != len(sig):
        return None
    return r, s


def p256_verify(pt, msg, sig):
    """ECDSA P-256 with SHA-256 (FIPS 186-5 §6.4.2); either S (C2SP signed-note 0x02)."""
    rs = der_ecdsa_sig(sig)
    if rs is None:
        return False
    r, s = rs
    if not (0 < r < P256_N and 0 < s < P256_N):
        return False
    e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
    w = pow(s, P256_N - 2, P256_N)
    q = _p256_add(_p256_mul(e * w % P256_N, P256_G), _p256_mul(r * w % P256_N, pt))
    return q is not None and q[0] % P256_N == r


# --- Signed note and checkpoint (C2SP signed-note, tlog-checkpoint) -------------------------


def b64_strict(s):
    """RFC 4648 §4 base64: the standard alphabet, padding required, canonical trailing bits."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == s else None


def valid_key_name(name):
    """C2SP signed-note: non-empty, no Unicode spaces, no plus."""
    return name != "" and "+" not in name and not any(c.isspace() for c in name)


def parse_note(data):
    """A signed note: (text, [(key name, key id, signature)]). The text ends in a newline and
    is separated from the signature lines by the last blank line."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        fail("checkpoint is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        fail("checkpoint holds control characters")
    split = s.rfind("\n\n")
    if split < 0:
        fail("checkpoint is not a signed note (no blank line before signatures)")
    text, sigs = s[: split + 1], s[split + 2 :]
    if not sigs.endswith("\n"):
        fail("checkpoint does not end with a newline")
    out = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            fail("checkpoint signature line %r does not start with an em dash" % line)
        name, sp, sig = line[2:].partition(" ")
        if not sp or not valid_key_name(name):
            fail("checkpoint signature line %r is malformed" % line)
        raw = b64_strict(sig)
        if raw is None or len(raw) < 5:
            fail("checkpoint signature line %r: not base64 of key id and signature" % line)
        out.append((name, raw[:4], raw[4:]))
    if not out:
        fail("checkpoint has no signatures")
    if len(out) > 100:
        fail("checkpoint has more than 100 signatures")
    return text, out


def parse_checkpoint(text):
    """C2SP tlog-checkpoint: origin, decimal tree size, base64 root hash, extension lines."""
    lines = text[:-1].split("\n")
    if len(lines) < 3 or lines[0] == "":
        fail("checkpoint body has no origin, size and root hash lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isascii() or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        fail("checkpoint size %r is not a decimal number" % size)
    raw = b64_strict(root)
    if raw is None or len(raw) != 32:
        fail("checkpoint root hash is not 32 bytes of base64")
    if any(e == "" for e in lines[3:]):
        fail("checkpoint has an empty extension line")
    return origin, int(size), raw


def note_key_id(name, pk):
    """C2SP signed-note key ID: Ed25519, SHA-256(name || 0x0A || 0x01 || public key)[:4];
    ECDSA (0x02, a P-256 point), SHA-256(DER SubjectPublicKeyInfo)[:4]."""
    if isinstance(pk, tuple):
        return hashlib.sha256(p256_spki(pk)).digest()[:4]
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + pk).digest()[:4]


def load_json(path, what):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        fail("%s (%s): %s" % (what, path, e))


def log_group(keys):
    """(group name, threshold, [(member id, Ed25519 key)]) of the group the root names for
    the `log` role, without members any of whose keys the root revokes (docs/spec.md §3.1,
    §3.2, §5.2, §6: a revoked member never counts)."""
    if os.path.isfile(os.path.join(keys, "keys", "root.json")):
        keys = os.path.join(keys, "keys")
    root = load_json(os.path.join(keys, "root.json"), "the root")
    if not isinstance(root, dict):
        fail("keys/root.json is not an object")
    name = (root.get("roles") or {}).get("log")
    if not isinstance(name, str):
        fail("keys/root.json names no `log` role")
    if name == "root":
        group = root.get("root_group")
    else:
        pinned = (root.get("groups") or {}).get(name)
        if pinned is None:
            fail("the log group %r is not pinned by keys/root.json" % name)
        group = load_json(os.path.join(keys, "groups", name + ".json"), "log group %r" % name)
        if not isinstance(group, dict) or group.get("name") != name:
            fail("keys/groups/%s.json is not the group %r" % (name, name))
        if group.get("group_id") != pinned:
            fail("keys/groups/%s.json's group_id is not the one keys/root.json pins" % name)
    if not isinstance(group, dict) or not isinstance(group.get("members"), list):
        fail("log group %r has no members" % name)
    threshold = group.get("threshold")
    if type(threshold) is not int or not 1 <= threshold <= len(group["members"]):
        fail("log group %r has no valid threshold" % name)
    revoked = set()
    for r in root.get("revoked") or []:
        if isinstance(r, dict) and isinstance(r.get("keyid"), str):
            revoked.add(r["keyid"])
    members = []
    for m in group["members"]:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            fail("log group %r has a malformed member" % name)
        raws = []
        for field in ("ed25519", "p256", "ml_dsa_65"):
            if field in m:
                raw = b64_strict(m[field]) if isinstance(m[field], str) else None
                if raw is None:
                    fail("log group %r member %r: %s is not base64" % (name, m["id"], field))
                raws.append(raw)
        # docs/spec.md §3.2: exactly one classical key, Ed25519 or P-256 (compressed).
        if ("ed25519" in m) == ("p256" in m):
            fail("log group %r member %r has not exactly one classical key" % (name, m["id"]))
        if "ed25519" in m:
            if len(raws[0]) != 32 or not ed25519_key_ok(raws[0]):
                fail("log group %r member %r has no valid Ed25519 key" % (name, m["id"]))
            key = raws[0]
        else:
            key = p256_point(raws[0])
            if key is None:
                fail("log group %r member %r has no valid P-256 key" % (name, m["id"]))
        # docs/spec.md §1: a key id is hex(SHA-256(raw public key bytes)).
        if any(hashlib.sha256(r).hexdigest() in revoked for r in raws):
            continue
        members.append((m["id"], key))
    return name, threshold, members


def check_checkpoint(root, keys):
    """The checkpoint's signed note must carry valid signatures by `threshold` distinct members
    of the log group, each under key name = the origin (docs/audit.md, "Format"). Per C2SP
    signed-note, lines by unknown keys (another name or key ID) are ignored, and a line whose
    name and key ID are a known key's must verify, or the whole note is rejected."""
    try:
        data = open(os.path.join(root, "checkpoint"), "rb").read()
    except OSError as e:
        fail("no checkpoint: %s" % e)
    if len(data) > 1 << 20:
        fail("checkpoint is larger than 1 MiB")
    text, sigs = parse_note(data)
    origin, size, cp_root = parse_checkpoint(text)
    group, threshold, members = log_group(keys)
    signed, seen_keys, seen_sigs = [], set(), set()
    for member, pk in members:
        kid = note_key_id(origin, pk)
        lines = [s for (n, i, s) in sigs if n == origin and i == kid]
        verify = p256_verify if isinstance(pk, tuple) else ed25519_verify
        for s in lines:
            if not verify(pk, text.encode("utf-8"), s):
                fail(
                    "checkpoint signature by log group %r member %r (key %s+%s) does not verify"
                    % (group, member, origin, kid.hex())
                )
        # One signature counts for one member: an ECDSA signature (its r) also verifies
        # under a public key recovered from it.
        ids = {der_ecdsa_sig(s)[0] if isinstance(pk, tuple) else s for s in lines}
        if lines and pk not in seen_keys and not ids <= seen_sigs:
            seen_keys.add(pk)
            seen_sigs |= ids
            signed.append(member)
    if len(signed) < threshold:
        fail(
            "checkpoint has %d of the %d signatures log group %r requires (key name %r; "
            "signed by %s)"
            % (len(signed), threshold, group, origin, ", ".join(signed) or "no member")
        )
    return origin, size, cp_root, group, threshold, signed


def main():
    ap = argparse.ArgumentParser(
        prog="audit.py",
        description="Verify an export of refs/treaty/audit (see the module docstring).",
        usage="audit.py --keys KEYS EXPORT_DIR [INCLUSION.json [CONSISTENCY.json]]",
    )
    ap.add_argument(
        "--keys",
        required=True,
        help="the governance repository (or its keys/ folder) whose root names the log "
        "group; required: without it the checkpoint's signatures cannot be checked",
    )
    ap.add_argument("export", help="the tree of refs/treaty/audit")
    ap.add_argument("inclusion", nargs="?", help="an inclusion proof (treaty audit prove)")
    ap.add_argument("consistency", nargs="?", help="a consistency proof (treaty audit consistency)")
    args = ap.parse_intermixed_args()
    root = args.export
    entries = read_bundles(root)
    leaves = [leaf(e) for e in entries]
    for i, e in enumerate(entries):
        try:
            json.loads(e)  # every entry is JSON
        except ValueError:
            fail("entry %d is not JSON" % i)
    count, nlevels = check_tiles(root, leaves)
    print("tiles", count, "levels", nlevels, "entries", len(leaves), "ok")
    origin, size, cp_root, group, threshold, signed = check_checkpoint(root, args.keys)
    print(
        "checkpoint signed by", ",".join(signed), "of log group", group, "threshold", threshold
    )
    if size > len(leaves):
        fail("checkpoint size %d exceeds %d entries" % (size, len(leaves)))
    if mth(leaves[:size]) != cp_root:
        fail("checkpoint root does not match MTH of the first %d entries" % size)
    print("origin", origin, "size", size, "root", cp_root.hex())
    if size < len(leaves):
        print("entries %d..%d are not vouched for by the checkpoint" % (size, len(leaves) - 1))
    if args.inclusion:
        p = json.load(open(args.inclusion))
        proof = [bytes.fromhex(h) for h in p["proof"]]
        lh = bytes.fromhex(p["leaf_hash"])
        r = bytes.fromhex(p["root"])
        if not 0 <= p["index"] < len(leaves) or p["size"] > len(leaves):
            fail("the inclusion proof is for entries the log does not hold")
        if lh != leaves[p["index"]]:
            fail("the proof's leaf hash is not entry %d's" % p["index"])
        if r != mth(leaves[: p["size"]]):
            fail("the proof's root is not MTH of its size")
        if proof != path(p["index"], leaves[: p["size"]]):
            fail("the inclusion proof differs from PATH(m, D[n])")
        if not verify_inclusion(p["index"], p["size"], lh, proof, r):
            fail("the inclusion proof does not verify")
        print("inclusion", p["index"], "in", p["size"], "ok")
    if args.consistency:
        c = json.load(open(args.consistency))
        proof = [bytes.fromhex(h) for h in c["proof"]]
        m, n = c["old_size"], c["new_size"]
        a, b = bytes.fromhex(c["old_root"]), bytes.fromhex(c["new_root"])
        if n > len(leaves):
            fail("the consistency proof is for entries the log does not hold")
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
