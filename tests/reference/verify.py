"""Independent reference verifier for the treaty governance format, written from docs/spec.md.

It shares no code with treaty. It uses only the Python standard library, PyPI's `cryptography`
(Ed25519, ML-DSA-65 with context strings) and PyPI's `blake3`. It implements the signature layer
of the spec (sections 2 and 4-7) and the runtime messages (section 9); the JSON Schema layer (section 3, "layer": "schema") is out of
its scope, as the spec allows.

Usage:
  python3 verify.py vectors DIR                  judge tests/vectors; compare with "expect"
  python3 verify.py repo DIR --treaty BIN        judge HEAD of a repository; compare per file
                                                 with `BIN verify --format json`
Exit 0 when everything agrees, 1 otherwise.
"""

import base64
import binascii
import datetime
import hashlib
import json
import math
import re
import subprocess
import sys
import tomllib
import unicodedata

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey

GOVERNED = ("keys", "treaties", "policies", "gates", "schemas", "state")
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://treaty.dev/approval/v1"
CTX = b"treaty-dsse-v1"
ROOT_PATH = "keys/root.json"
ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
ERROR, WARNING = "error", "warning"
U64_MAX = 2**64 - 1
MAX_DEPTH = 64


class Bad(Exception):
    """A malformed input, carrying the finding code."""

    def __init__(self, code, msg=""):
        super().__init__(msg)
        self.code = code


# ---- section 1: primitives -------------------------------------------------------------------

class _Duplicate(Exception):
    pass


def _pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _Duplicate(k)
        d[k] = v
    return d


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite(text):
    f = float(text)
    if not math.isfinite(f):
        raise ValueError(f"{text} is out of range")
    return f


def _integer(text):
    # "-0" is an integer token to Python but not a UINT (section 1.2): keep it a float, which
    # no integer field accepts.
    if text == "-0":
        return -0.0
    n = int(text)
    float(n)  # OverflowError past the double range: such a number is not JSON here (1.1)
    return n


def _check_tree(v):
    """Depth (section 1.1) and strings that are Unicode scalar values, without recursion."""
    stack = [(v, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, str):
            x.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
        elif isinstance(x, (list, dict)):
            if d + 1 > MAX_DEPTH:
                raise ValueError("nested too deep")
            if isinstance(x, dict):
                for k, y in x.items():
                    k.encode("utf-8")
                    stack.append((y, d + 1))
            else:
                stack.extend((y, d + 1) for y in x)


def strict_json(data, code):
    """Section 1.1: exactly one RFC 8259 value in UTF-8, no byte order mark, no repeated key in
    any object, at most 64 nested arrays and objects. Raises Bad(code), or Bad("duplicate-key").

    json.loads on bytes would sniff UTF-16/32 and skip a BOM, and it accepts NaN, Infinity,
    lone surrogates and numbers past the double range: each is refused here."""
    if not isinstance(data, (bytes, bytearray)) or data.startswith(b"\xef\xbb\xbf"):
        raise Bad(code, "byte order mark")
    try:
        text = bytes(data).decode("utf-8")
        v = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant,
                       parse_float=_finite, parse_int=_integer)
        _check_tree(v)
    except _Duplicate as d:
        raise Bad("duplicate-key", f"duplicate key {d.args[0]!r}")
    except (ValueError, UnicodeError, RecursionError, OverflowError):
        raise Bad(code)
    return v


def is_uint(v):
    """Section 1.2: a JSON integer 0 ..= 2^64-1 (not a bool, not -0, no fraction or exponent)."""
    return type(v) is int and 0 <= v <= U64_MAX


UINT_RE = re.compile(r"(0|[1-9][0-9]*)\Z", re.ASCII)


def canonical_uint(s):
    """Section 1.2: a decimal string in the UINT grammar, as an int, or None."""
    if isinstance(s, str) and UINT_RE.match(s) and int(s) <= U64_MAX:
        return int(s)
    return None


def b64(s):
    if not isinstance(s, str):
        raise Bad("malformed", "not a string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Bad("malformed", "not base64")
    if base64.b64encode(raw).decode() != s:
        raise Bad("malformed", "not canonical base64")
    return raw


TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))\Z", re.ASCII)


EPOCH = datetime.datetime(1, 1, 1)


def when(s):
    """Section 1.3: the one timestamp form, as nanoseconds since 0001-01-01T00:00:00Z (an int,
    so comparisons are exact to the nanosecond the spec allows), or Bad("malformed")."""
    m = TIME_RE.match(s) if isinstance(s, str) else None
    if m is None:
        raise Bad("malformed", f"{s!r} is not a timestamp of section 1.3")
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(9, "0")
    if m.group(8):
        off = 0
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise Bad("malformed", "offset out of range")
        off = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    try:
        # datetime refuses second 60 and impossible dates, as section 1.3 does.
        local = datetime.datetime(y, mo, d, h, mi, sec)
        utc = local - datetime.timedelta(minutes=off)
    except (ValueError, OverflowError):
        # Year 0000, a day or hour that does not exist, second 60, or an offset that moves
        # the instant out of 0001..9999 UTC.
        raise Bad("malformed", f"{s!r} is not a valid instant in years 0001-9999 UTC")
    delta = utc - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + int(frac)


# Ed25519 point checks (RFC 8032 section 5.1.3), for what cryptography does not expose.
P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)


def decode_point(b):
    """Decoded (x, y) or None when not a canonical encoding of a curve point."""
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    sign = b[31] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * SQRT_M1) % P
        if (v * x * x - u) % P != 0:
            return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y)


def add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return (x3, y3)


def small_order(pt):
    q = pt
    for _ in range(3):
        q = add(q, q)
    return q == (0, 1)


def ed25519_key_ok(raw):
    pt = decode_point(raw)
    return pt is not None and not small_order(pt)


# ECDSA P-256 (section 1): SEC1-compressed keys, raw r||s signatures with low S, over SHA-256.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def p256_key_ok(raw):
    if len(raw) != 33 or raw[0] not in (2, 3):
        return False
    try:
        k = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return False
    return k.public_bytes(Encoding.X962, PublicFormat.CompressedPoint) == raw


def p256_verify(pk, msg, sig):
    if len(sig) != 64:
        return False
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < P256_N and 0 < s <= P256_N // 2):
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk).verify(
            encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def classical_verify(pk, msg, sig):
    # A member's classical key is Ed25519 (32 bytes) or P-256 (33 bytes, compressed).
    return p256_verify(pk, msg, sig) if len(pk) == 33 else ed25519_verify(pk, msg, sig)


def classical_of(m):
    # Exactly one of ed25519 and p256 (section 3.2); returns (algorithm name, raw key).
    if ("ed25519" in m) == ("p256" in m):
        raise Bad("group-invalid", "one classical key")
    return ("ed25519", b64(m["ed25519"])) if "ed25519" in m else ("ecdsa-p256", b64(m["p256"]))


def ed25519_verify(pk, msg, sig):
    if len(sig) != 64 or int.from_bytes(sig[32:], "little") >= L:
        return False
    r = decode_point(sig[:32])
    if r is None or small_order(r):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def mldsa_verify(pk, msg, sig):
    if len(pk) != 1952 or len(sig) != 3309:
        return False
    try:
        MLDSA65PublicKey.from_public_bytes(pk).verify(sig, msg, CTX)
        return True
    except (InvalidSignature, ValueError):
        return False


def keyid(raw):
    return hashlib.sha256(raw).hexdigest()


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# ---- section 2: paths and kinds ----------------------------------------------------------------

def path_ok(p):
    if not p or len(p.encode()) > 1024 or p.startswith("/"):
        return False
    if any(c == "\\" or unicodedata.category(c) == "Cc" for c in p):
        return False
    if any(seg in ("", ".", "..") for seg in p.split("/")):
        return False
    return unicodedata.is_normalized("NFC", p)


def kind(p):
    s = p.split("/")
    if s == ["keys", "root.json"]:
        return ("root", None)
    if len(s) == 3 and s[:2] == ["keys", "roots"] and re.fullmatch(r"[1-9][0-9]*\.json", s[2], re.ASCII) and int(s[2][:-5]) <= U64_MAX:
        return ("rootv", int(s[2][:-5]))
    if len(s) == 3 and s[:2] == ["keys", "groups"] and s[2].endswith(".json"):
        return ("group", None)
    if len(s) == 2 and s[0] == "treaties" and s[1].endswith(".json"):
        return ("treaty", None)
    if len(s) == 2 and s[0] == "policies" and s[1].endswith(".json"):
        return ("policy", None)
    if len(s) == 2 and s[0] == "policies" and s[1].endswith(".rego"):
        return ("rego", None)
    if len(s) == 2 and s[0] == "gates" and s[1].endswith(".toml"):
        return ("gates", None)
    if len(s) == 2 and s[0] == "schemas" and s[1].endswith(".schema.json"):
        return ("schema", None)
    if s == ["keys", "tsa-roots.pem"]:
        return ("tsa-roots", None)
    if s == ["state", "snapshot.json"]:
        return ("snapshot", None)
    if s == ["state", "heartbeat.json"]:
        return ("heartbeat", None)
    return ("unsupported", None)


def signed_file(p):
    if p.endswith(".sig"):
        rest = p[:-4]
        if rest and not rest.endswith("/"):
            return rest
    return None


# ---- section 3: documents ------------------------------------------------------------------------

SPEC_VERSION_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z", re.ASCII)


def spec_major_ok(v):
    """Section 1.2: MAJOR.MINOR in the closed grammar, each part a UINT, MAJOR 1."""
    m = SPEC_VERSION_RE.match(v) if isinstance(v, str) else None
    return m is not None and int(m.group(1)) == 1 and int(m.group(2)) <= U64_MAX


def pem_header(data):
    """§2.1: `# key: value` comment lines before the first PEM block give the header."""
    doc = {}
    for line in data.decode().split("\n"):
        if line.startswith("-----BEGIN"):
            break
        if line.startswith("#"):
            header_comment(doc, line[1:])
    if "-----BEGIN CERTIFICATE-----" not in data.decode():
        raise Bad("parse-error")
    return doc


def rego_header(data):
    """§2.1: `# key: value` comment lines before the first other line, `package treaty`."""
    text = data.decode()
    if text.startswith("\ufeff"):
        raise Bad("parse-error")
    doc = {}
    for line in text.split("\n"):
        t = line.strip()
        if not t:
            continue
        if not t.startswith("#"):
            if t != "package treaty":
                raise Bad("parse-error")
            return doc
        header_comment(doc, t[1:])
    raise Bad("parse-error")


def header_comment(doc, rest):
    """§2.1: one `# key: value` header line (after the `#`): spec_version and version."""
    if ":" not in rest:
        return
    k, v = rest.split(":", 1)
    k, v = k.strip(), v.strip()
    if k == "spec_version":
        doc[k] = v
    elif k == "version":
        if canonical_uint(v) is None:
            raise Bad("parse-error")
        doc[k] = int(v)


def header(k, data):
    try:
        if k == "tsa-roots":
            doc = pem_header(data)
        elif k == "rego":
            doc = rego_header(data)
        elif k == "gates":
            # tomllib refuses a BOM and repeated keys itself (section 1.1, TOML 1.0).
            doc = tomllib.loads(data.decode("utf-8"))
            _check_tree(doc)
        else:
            doc = strict_json(data, "parse-error")
    except (ValueError, UnicodeError, RecursionError):
        raise Bad("parse-error")
    if not isinstance(doc, dict):
        raise Bad("schema-invalid")
    if not isinstance(doc.get("spec_version"), str):
        raise Bad("schema-invalid")
    if not spec_major_ok(doc["spec_version"]):
        raise Bad("spec-version-unsupported")
    v = doc.get("version")
    if not is_uint(v):
        raise Bad("schema-invalid")
    return v


ROOT_FIELDS = {"spec_version", "version", "expires", "root_group", "groups", "delegations", "roles", "revoked"}


def _str_map(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def root_shape_ok(r):
    """Section 3.1: every member of its type (the typed model treaty reads)."""
    return (
        isinstance(r, dict) and set(r) <= ROOT_FIELDS
        and {"spec_version", "version", "expires", "root_group", "groups", "delegations"} <= set(r)
        and isinstance(r["spec_version"], str) and is_uint(r["version"])
        and isinstance(r["expires"], str)
        and isinstance(r["root_group"], dict) and set(r["root_group"]) == {"threshold", "members", "group_id"}
        and _str_map(r["groups"]) and isinstance(r["delegations"], list)
        and all(isinstance(d, dict) and set(d) == {"name", "paths", "groups"} and isinstance(d["name"], str)
                and _str_list(d["paths"]) and _str_list(d["groups"]) for d in r["delegations"])
        and _str_map(r.get("roles", {}))
        and isinstance(r.get("revoked", []), list)
        and all(isinstance(x, dict) and set(x) == {"keyid", "reason", "time"} and isinstance(x["keyid"], str)
                and x["reason"] in ("compromised", "retired") and isinstance(x["time"], str)
                for x in r.get("revoked", []))
    )


def parse_root(data):
    try:
        r = strict_json(data, "root-invalid")
    except Bad:
        # A repeated key is reported for the file as duplicate-key by the document layer;
        # for the chain it is simply not a valid root.
        raise Bad("root-invalid")
    if not root_shape_ok(r):
        raise Bad("root-invalid")
    if not spec_major_ok(r["spec_version"]):
        raise Bad("spec-version-unsupported")
    r.setdefault("roles", {})
    r.setdefault("revoked", [])
    return r


def group_id(name, threshold, members):
    # v2 (naming each member's classical algorithm) only for groups with a P-256 member.
    v2 = any("p256" in m for m in members)
    enc = b"treaty/group-id/v2\x00" if v2 else b"treaty/group-id/v1\x00"
    lp = lambda b: len(b).to_bytes(8, "big") + b
    enc += lp(name.encode()) + threshold.to_bytes(8, "big") + len(members).to_bytes(8, "big")
    for m in sorted(members, key=lambda m: m["id"].encode()):
        alg, raw = classical_of(m)
        enc += lp(m["id"].encode()) + (lp(alg.encode()) if v2 else b"")
        enc += lp(raw) + lp(b64(m["ml_dsa_65"]) if "ml_dsa_65" in m else b"")
        enc += lp(m.get("openpgp", "").encode())
    return "blake3:" + blake3.blake3(enc).hexdigest()


def validate_group(name, body):
    """Returns a list of members [(id, ed_raw, ml_raw or None)] or raises Bad."""
    if not isinstance(body, dict) or not isinstance(body.get("group_id"), str):
        raise Bad("group-invalid", "shape")
    t, members = body.get("threshold"), body.get("members")
    if not isinstance(members, list) or not members:
        raise Bad("group-invalid", "empty")
    # is_uint: JSON true is a Python int, and 1.0 == 1; neither is a threshold (section 1.2).
    if not is_uint(t) or t < 1 or t > len(members):
        raise Bad("group-invalid", "threshold")
    ids, keys, out = set(), set(), []
    for m in members:
        if not isinstance(m, dict) or not set(m) <= {"id", "ed25519", "p256", "ml_dsa_65", "openpgp"}:
            raise Bad("group-invalid", "member fields")
        if not isinstance(m.get("id"), str) or not ID_RE.match(m["id"]) or m["id"] in ids:
            raise Bad("group-invalid", "member id")
        # Optional members, when present, have their type: null is not "absent" (section 1.1).
        if not all(isinstance(m.get(f, ""), str) for f in ("ed25519", "p256", "ml_dsa_65", "openpgp")):
            raise Bad("group-invalid", "member field types")
        ids.add(m["id"])
        try:
            alg, ed = classical_of(m)
            ml = b64(m["ml_dsa_65"]) if "ml_dsa_65" in m else None
        except Bad:
            raise Bad("group-invalid", "key encoding")
        if not (ed25519_key_ok(ed) if alg == "ed25519" else p256_key_ok(ed)):
            raise Bad("group-invalid", alg + " key")
        if ml is not None and len(ml) != 1952:
            raise Bad("group-invalid", "ml-dsa key")
        for k in (ed, ml):
            if k is not None:
                if k in keys:
                    raise Bad("group-invalid", "duplicate key")
                keys.add(k)
        out.append((m["id"], ed, ml))
    if group_id(name, t, members) != body.get("group_id"):
        raise Bad("group-id-mismatch")
    return {"name": name, "threshold": t, "members": out, "id": body["group_id"]}


def glob_regex(pattern):
    if not pattern or len(pattern) > 1024 or pattern.startswith("/") or "***" in pattern:
        return None
    if any(c in pattern for c in "?[]{}\\"):
        return None
    if any(s in ("", ".", "..") for s in pattern.split("/")):
        return None
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out, re.DOTALL)


# ---- sections 4 and 6: envelopes and approvals ----------------------------------------------------

def parse_envelope(data):
    if len(data) > 1024 * 1024:
        raise Bad("envelope-malformed")
    e = strict_json(data, "envelope-malformed")
    if not isinstance(e, dict) or e.get("payloadType") != PAYLOAD_TYPE or not isinstance(e.get("signatures"), list):
        raise Bad("envelope-malformed")
    if len(e["signatures"]) > 256:
        raise Bad("envelope-malformed")
    try:
        payload = b64(e.get("payload"))
        sigs = []
        for s in e["signatures"]:
            if not isinstance(s, dict):
                raise Bad("envelope-malformed")
            kid = s.get("keyid", "")
            if not isinstance(kid, str):
                raise Bad("envelope-malformed")
            sigs.append((kid, b64(s.get("sig"))))
    except Bad:
        raise Bad("envelope-malformed")
    return payload, sigs


def parse_statement(payload):
    """Section 4: strict JSON, exactly these members, each of its type."""
    s = strict_json(payload, "statement-malformed")
    ok = (
        isinstance(s, dict)
        and set(s) == {"_type", "subject", "predicateType", "predicate"}
        and s["_type"] == STATEMENT_TYPE
        and s["predicateType"] == PREDICATE_TYPE
        and isinstance(s["subject"], list)
        and len(s["subject"]) == 1
        and isinstance(s["subject"][0], dict)
        and set(s["subject"][0]) == {"name", "digest"}
        and isinstance(s["subject"][0]["name"], str)
        and _str_map(s["subject"][0]["digest"])
        and isinstance(s["predicate"], dict)
        and set(s["predicate"]) <= {"spec_version", "version", "groups", "expires"}
        and {"spec_version", "version", "groups"} <= set(s["predicate"])
        and isinstance(s["predicate"]["spec_version"], str)
        and is_uint(s["predicate"]["version"])
        and isinstance(s["predicate"]["groups"], list)
        and all(isinstance(g, dict) and set(g) == {"name", "group_id"} and _str_map(g)
                for g in s["predicate"]["groups"])
        # Present means a string; null is not "no expiry" (section 1.1).
        and isinstance(s["predicate"].get("expires", ""), str)
    )
    if not ok:
        raise Bad("statement-malformed")
    return s


def approve(stmt_path, data, version, groups, env_bytes, revoked, at, history=False):
    """Section 6. Returns (approved, codes)."""
    codes = set()
    if env_bytes is None:
        return False, {"signature-missing"}
    try:
        payload, sigs = parse_envelope(env_bytes)
        st = parse_statement(payload)
    except Bad as b:
        return False, {b.code}
    ok = True
    subj, pred = st["subject"][0], st["predicate"]
    if subj["name"] != stmt_path:
        ok = False
        codes.add("subject-mismatch")
    if subj["digest"] != {"sha256": hashlib.sha256(data).hexdigest(), "blake3": blake3.blake3(data).hexdigest()}:
        ok = False
        codes.add("digest-mismatch")
    if pred["version"] != version:
        ok = False
        codes.add("statement-version-mismatch")
    want = {(g["name"], g["id"]) for g in groups}
    have = [(g["name"], g["group_id"]) for g in pred["groups"]]
    if set(have) != want or len(set(have)) != len(have):
        ok = False
        codes.add("statement-groups-mismatch")
    if not spec_major_ok(pred["spec_version"]):
        ok = False
        codes.add("spec-version-unsupported")
    if "expires" in pred:
        # A malformed expiry is malformed even in history; only the comparison with the
        # judging time is skipped for superseded root versions (section 5.1).
        try:
            expires = when(pred["expires"])
            if at >= expires and not history:
                ok = False
                codes.add("approval-expired")
        except Bad:
            ok = False
            codes.add("statement-malformed")
    msg = pae(PAYLOAD_TYPE, payload)
    known = {keyid(k) for g in groups for (_, ed, ml) in g["members"] for k in (ed, ml) if k is not None}
    unhinted = [s for (kid, s) in sigs if kid not in known]
    memo = {}

    def signed(raw, verify):
        kid = keyid(raw)
        if kid not in memo:
            cands = [s for (k, s) in sigs if k == kid] + unhinted
            memo[kid] = any(verify(raw, msg, s) for s in cands)
        return memo[kid]

    for g in groups:
        count = 0
        for (_, ed, ml) in g["members"]:
            if keyid(ed) in revoked or (ml is not None and keyid(ml) in revoked):
                continue
            if signed(ed, classical_verify) and (ml is None or signed(ml, mldsa_verify)):
                count += 1
        if count < g["threshold"]:
            ok = False
            codes.add("threshold-not-met")
    return ok, codes


# ---- sections 5 and 7: trust and files ------------------------------------------------------------

def judge(files, parent, pin, at):
    """Returns (approved, codes, {path: approved})."""
    codes, verdict = set(), {}
    governed = {p: b for p, b in files.items() if p.split("/")[0] in GOVERNED}
    for p in governed:
        if not path_ok(p):
            codes.add("path-invalid")
        t = signed_file(p)
        if t is not None and t not in governed:
            codes.add("orphan-signature")
    chain_ok = True
    trust = None
    root_ok = {}
    try:
        trust = load_trust(governed, pin, at, codes, root_ok)
        chain_ok = trust["chain_ok"]
    except Bad as b:
        codes.add(b.code)
        chain_ok = False
    for p, data in governed.items():
        if signed_file(p) is not None:
            continue
        ok, c = judge_file(p, data, governed, parent, trust, root_ok, at)
        verdict[p] = ok and chain_ok
        codes |= c
    approved = chain_ok and all(verdict.values()) and not (codes & ERROR_CODES)
    return approved, codes, verdict


WARNING_CODES = {"unknown-key", "revoked-key", "hybrid-incomplete", "invalid-signature"}
ERROR_CODES = {
    "path-invalid", "orphan-signature", "root-missing", "root-invalid", "root-chain-broken", "root-signature-threshold",
    "root-expired", "root-not-pinned", "group-missing", "group-invalid", "group-id-mismatch", "group-not-pinned",
    "delegation-invalid", "delegation-conflict", "role-invalid", "spec-version-unsupported",
}


def load_trust(files, pin, at, codes, root_ok):
    if ROOT_PATH not in files:
        raise Bad("root-missing")
    R = parse_root(files[ROOT_PATH])
    N = R["version"]
    chain_ok = True
    versions = {kind(p)[1]: b for p, b in files.items() if kind(p)[0] == "rootv"}
    if sorted(versions) != list(range(1, N + 1)) or versions.get(N) != files[ROOT_PATH]:
        codes.add("root-chain-broken")
        chain_ok = False
    roots = {}
    for k, b in versions.items():
        try:
            r = parse_root(b)
            if r["version"] != k:
                raise Bad("root-chain-broken")
            roots[k] = (r, validate_group("root", r["root_group"]))
        except Bad as e:
            codes.add("root-invalid" if e.code == "group-invalid" else e.code)
            chain_ok = False
    revoked = {r["keyid"] for r in R["revoked"]}
    start = 1
    if pin is not None:
        start = pin.get("version")
        if start not in roots or roots[start][0] != pin or start > N:
            codes.add("root-not-pinned")
            chain_ok = False
    newest_group = validate_group("root", R["root_group"])

    def judge_root(k, data, sig, own, prev, history):
        req = [own] if prev is None or prev["id"] == own["id"] else [prev, own]
        req = [dict(g, name="root") for g in req]
        return approve(ROOT_PATH, data, k, req, sig, revoked, at, history)

    for k in range(1, N + 1):
        if k not in roots or k < start:
            continue
        # The anchor is judged too (section 5.1), under the previous root group as well when it
        # rotated the group and that version exists.
        prev = roots.get(k - 1, (None, None))[1] if k > 1 else None
        if k > start and prev is None:
            chain_ok = False
            continue
        ok, _ = judge_root(k, versions[k], files.get(f"keys/roots/{k}.json.sig"), roots[k][1], prev, k < N)
        root_ok[f"keys/roots/{k}.json"] = ok
        if not ok:
            codes.add("root-signature-threshold")
            chain_ok = False
    prev = roots.get(N - 1, (None, None))[1] if N > 1 else None
    ok, _ = judge_root(N, files[ROOT_PATH], files.get(ROOT_PATH + ".sig"), newest_group, prev, False)
    root_ok[ROOT_PATH] = ok
    if not ok:
        codes.add("root-signature-threshold")
        chain_ok = False
    try:
        if at >= when(R["expires"]):
            codes.add("root-expired")
            chain_ok = False
    except Bad:
        codes.add("root-invalid")
        chain_ok = False
    groups, broken = {"root": dict(newest_group, name="root")}, set()
    for name, pin_id in R["groups"].items():
        path = f"keys/groups/{name}.json"
        try:
            if name == "root" or not ID_RE.match(name):
                raise Bad("root-invalid")
            if path not in files:
                raise Bad("group-missing")
            try:
                gf = strict_json(files[path], "group-invalid")
            except Bad:
                raise Bad("group-invalid")
            if not isinstance(gf, dict) or set(gf) != {"spec_version", "name", "threshold", "members", "group_id"}:
                raise Bad("group-invalid")
            if not isinstance(gf["spec_version"], str) or not isinstance(gf["name"], str):
                raise Bad("group-invalid")
            if not spec_major_ok(gf["spec_version"]):
                raise Bad("spec-version-unsupported")
            if gf["name"] != name:
                raise Bad("group-invalid")
            g = validate_group(name, gf)
            if g["id"] != pin_id:
                raise Bad("group-id-mismatch")
            groups[name] = g
        except Bad as b:
            codes.add(b.code)
            broken.add(name)
    for p in files:
        if kind(p)[0] == "group" and p.split("/")[2][:-5] not in R["groups"]:
            codes.add("group-not-pinned")
    for role in ("release", "snapshot", "verdict", "log"):
        g = R["roles"].get(role)
        if g is None or (g != "root" and g not in R["groups"]):
            codes.add("role-invalid")
    # The runtime roles are optional; named, they must name root or a pinned group.
    for role in ("orders", "reputation"):
        g = R["roles"].get(role)
        if g is not None and g != "root" and g not in R["groups"]:
            codes.add("role-invalid")
    delegations = []
    # §5.3: state/ belongs to the snapshot role's group, ahead of every delegation.
    snap = R["roles"].get("snapshot")
    delegations.append(([glob_regex("state/**")], [groups[snap]] if snap in groups else [], None if snap in groups else "delegation-invalid"))
    for d in R["delegations"]:
        regs = [glob_regex(p) for p in d["paths"]]
        problem = None
        if any(r is None for r in regs):
            problem = "delegation-invalid"
        if len(set(d["groups"])) != len(d["groups"]):
            problem = "delegation-invalid"
        req = []
        for gname in d["groups"]:
            if gname in groups:
                req.append(groups[gname])
            else:
                problem = problem or ("group-invalid" if gname in broken else "delegation-invalid")
        member_of, key_of = {}, {}
        for g in req:
            for (mid, ed, ml) in g["members"]:
                if member_of.setdefault(mid, g["name"]) != g["name"]:
                    problem = "delegation-conflict"
                for k in (ed, ml):
                    if k is not None and key_of.setdefault(k, g["name"]) != g["name"]:
                        problem = "delegation-conflict"
        if problem in ("delegation-invalid", "delegation-conflict"):
            codes.add(problem)
        delegations.append((regs, req, problem))
    return {"root": R, "groups": groups, "broken": broken, "delegations": delegations, "revoked": revoked, "chain_ok": chain_ok}


def judge_file(p, data, files, parent, trust, root_ok, at):
    k, n = kind(p)
    codes = set()
    if trust is None:
        return False, codes
    if k not in ("root", "rootv", "group"):
        match = next((d for d in trust["delegations"] if any(r is not None and r.fullmatch(p) for r in d[0])), None)
        if match is None:
            return False, {"uncovered-file"}
        if k == "unsupported":
            return False, {"unsupported-kind"}
    if k == "group":
        name = p.split("/")[2][:-5]
        return name in trust["groups"] and name != "root", codes
    try:
        version = header(k, data)
    except Bad as b:
        return False, {b.code}
    if k in ("root", "rootv"):
        ok = root_ok.get(p, True)
    else:
        regs, req, problem = match
        if problem is not None:
            return False, {problem}
        ok, codes = approve(p, data, version, req, files.get(p + ".sig"), trust["revoked"], at)
    if parent is not None and k != "group" and p in parent and parent[p] != data:
        try:
            old = header(k, parent[p])
            if version < old:
                ok = False
                codes.add("version-rollback")
            elif version == old:
                ok = False
                codes.add("version-equivocation")
        except Bad:
            pass
    return ok, codes


# ---- section 9: runtime messages -----------------------------------------------------------------

MESSAGE_TYPES = {
    "order": "application/vnd.treaty.order+json",
    "ack": "application/vnd.treaty.ack+json",
    "attestation": "application/vnd.treaty.attestation+json",
}
MSG_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
MAX_QUANTITY = 2**53 - 1


def message_verdict(kind, data, signers):
    """Section 9: None when valid, else the first failing check's reason."""
    # 9.1: the envelope of the kind.
    try:
        if len(data) > 1024 * 1024:
            raise Bad("envelope-malformed")
        e = strict_json(data, "envelope-malformed")
        if not isinstance(e, dict) or e.get("payloadType") != MESSAGE_TYPES[kind]:
            raise Bad("envelope-malformed")
        if not isinstance(e.get("signatures"), list) or len(e["signatures"]) > 256:
            raise Bad("envelope-malformed")
        payload = b64(e.get("payload"))
        sigs = []
        for x in e["signatures"]:
            if not isinstance(x, dict) or not isinstance(x.get("keyid", ""), str):
                raise Bad("envelope-malformed")
            sigs.append((x.get("keyid", ""), b64(x.get("sig"))))
    except Bad:
        return "envelope-malformed"
    # 9.1: the first entry names a key of the signer set; a member signs with all its halves.
    if not sigs:
        return "signature-invalid"
    members = {}
    for m in signers:
        _, ed = classical_of(m)
        ml = b64(m["ml_dsa_65"]) if "ml_dsa_65" in m else None
        for k in (ed, ml):
            if k is not None:
                members[keyid(k)] = (ed, ml)
    if sigs[0][0] not in members:
        return "signer-unknown"
    ed, ml = members[sigs[0][0]]
    if len(sigs) != (2 if ml is not None else 1):
        return "signature-invalid"
    msg = pae(MESSAGE_TYPES[kind], payload)
    for raw, check in ((ed, classical_verify), (ml, mldsa_verify)):
        if raw is None:
            continue
        entry = next((sig for (kid, sig) in sigs if kid == keyid(raw)), None)
        if entry is None or not check(raw, msg, entry):
            return "signature-invalid"
    # 9.2: the payload.
    try:
        p = strict_json(payload, "payload-invalid")
        if not message_payload_ok(kind, p):
            return "payload-invalid"
    except Bad:
        return "payload-invalid"
    return None


def message_payload_ok(kind, p):
    if not isinstance(p, dict):
        return False
    qty = lambda v: is_uint(v) and v <= MAX_QUANTITY
    ident = lambda v: isinstance(v, str) and MSG_ID_RE.match(v) is not None
    lower_hex = lambda v, lo, hi: isinstance(v, str) and lo <= len(v) <= hi and re.fullmatch(r"[0-9a-f]*", v) is not None

    def time_ok(v):
        try:
            return when(v)
        except Bad:
            return None

    def shape(required, optional):
        return set(p) >= required and set(p) <= required | optional and all(p[k] is not None for k in p)

    if not isinstance(p.get("spec_version"), str) or not spec_major_ok(p["spec_version"]):
        return False
    if kind == "order":
        req = {"spec_version", "order_id", "treaty_id", "nonce", "issued_at", "not_after", "region", "gpu_milli_hours", "credits"}
        if not shape(req, {"max_duration_seconds", "attestation"}):
            return False
        issued, not_after = time_ok(p["issued_at"]), time_ok(p["not_after"])
        return (
            ident(p["order_id"]) and ident(p["treaty_id"])
            and lower_hex(p["nonce"], 32, 128)
            and issued is not None and not_after is not None and not_after > issued
            and isinstance(p["region"], str) and re.fullmatch(r"[a-z0-9-]{1,64}", p["region"]) is not None
            and qty(p["gpu_milli_hours"]) and p["gpu_milli_hours"] >= 1 and qty(p["credits"])
            and ("max_duration_seconds" not in p or (qty(p["max_duration_seconds"]) and p["max_duration_seconds"] >= 1))
            and ("attestation" not in p or isinstance(p["attestation"], dict))
        )
    if kind == "attestation":
        req = {"spec_version", "subject", "score_bp", "issued_at", "expires"}
        if not shape(req, set()):
            return False
        issued, expires = time_ok(p["issued_at"]), time_ok(p["expires"])
        return (
            ident(p["subject"]) and is_uint(p["score_bp"]) and p["score_bp"] <= 10000
            and issued is not None and expires is not None and expires > issued
        )
    req = {"spec_version", "order_id", "treaty_id", "order_sha256", "status", "at"}
    if not shape(req, {"used_gpu_milli_hours", "reason"}):
        return False
    ends = p["status"] in ("completed", "failed")
    return (
        ident(p["order_id"]) and ident(p["treaty_id"])
        and lower_hex(p["order_sha256"], 64, 64)
        and p["status"] in ("accepted", "rejected", "completed", "failed")
        and time_ok(p["at"]) is not None
        and (("used_gpu_milli_hours" in p) == ends)
        and ("used_gpu_milli_hours" not in p or qty(p["used_gpu_milli_hours"]))
        and ("reason" not in p or (isinstance(p["reason"], str) and len(p["reason"].encode()) <= 2000))
    )


def run_messages(d):
    passed = failed = 0
    for path in sorted((d / "messages").glob("*.json")):
        c = json.loads(path.read_text())
        got = message_verdict(c["kind"], b64(c["envelope"]), c["signers"])
        exp = c["expect"]
        if (got is None) != exp["valid"] or (got is not None and got != exp["reason"]):
            failed += 1
            print(f"DISAGREE {c['name']}: reference {got or 'valid'}, expected {exp['reason'] or 'valid'}")
        else:
            passed += 1
    print(f"reference message vectors: {passed} passed, {failed} failed")
    return passed, failed


# ---- drivers -------------------------------------------------------------------------------------

def run_vectors(d):
    import pathlib
    d = pathlib.Path(d)
    base = {p: b64(v) for p, v in json.loads((d / "base.json").read_text())["files"].items()}

    def apply(c):
        f = dict(base)
        for r in c["remove"]:
            f.pop(r, None)
        f.update({p: b64(v) for p, v in c["set"].items()})
        return f

    passed = failed = 0
    for path in sorted((d / "cases").glob("*.json")):
        c = json.loads(path.read_text())
        if c.get("layer", "signatures") != "signatures":
            continue
        pin = strict_json(b64(c["trust"]), "root-not-pinned") if "trust" in c else None
        parent = apply(c["parent"]) if "parent" in c else None
        approved, codes, verdict = judge(apply(c), parent, pin, when(c["at"]))
        exp = c["expect"]
        problems = []
        if approved != exp["approved"]:
            problems.append(f"approved {approved}, expected {exp['approved']}")
        if exp["reason"] and exp["reason"] not in codes:
            problems.append(f"reason {exp['reason']} not among {sorted(codes)}")
        for fp, want in exp["files"].items():
            if verdict.get(fp) != want:
                problems.append(f"{fp}: {verdict.get(fp)}, expected {want}")
        if problems:
            failed += 1
            print(f"DISAGREE {c['name']}: " + "; ".join(problems))
        else:
            passed += 1
    print(f"reference vectors: {passed} passed, {failed} failed")
    m_passed, m_failed = run_messages(d)
    return 0 if failed == 0 and passed > 0 and m_failed == 0 and m_passed > 0 else 1


def run_repo(d, treaty):
    listing = subprocess.run(["git", "-C", d, "ls-tree", "-r", "-z", "HEAD", "--", *GOVERNED], check=True, capture_output=True).stdout
    files = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, name = entry.split(b"\t", 1)
        mode, _, oid = meta.split(b" ")
        if mode in (b"100644", b"100755"):
            files[name.decode()] = subprocess.run(["git", "-C", d, "cat-file", "blob", oid.decode()], check=True, capture_output=True).stdout
    at = when(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    approved, codes, verdict = judge(files, None, None, at)
    out = subprocess.run([treaty, "verify", "--format", "json", "--repo", d], capture_output=True)
    theirs = json.loads(out.stdout)
    ours_by = dict(verdict)
    theirs_by = {f["path"]: f["approved"] for f in theirs["files"]}
    disagree = sorted(p for p in set(ours_by) | set(theirs_by) if ours_by.get(p) != theirs_by.get(p))
    for p in disagree:
        print(f"DISAGREE {p}: reference {ours_by.get(p)}, treaty {theirs_by.get(p)}")
    if approved != theirs["approved"]:
        print(f"DISAGREE state: reference {approved}, treaty {theirs['approved']}")
        disagree.append("state")
    print(f"reference repo: {len(ours_by) - len(disagree)} passed, {len(disagree)} failed")
    return 0 if not disagree else 1


def main(argv):
    if len(argv) >= 3 and argv[1] == "vectors":
        return run_vectors(argv[2])
    if len(argv) >= 5 and argv[1] == "repo" and argv[3] == "--treaty":
        return run_repo(argv[2], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
