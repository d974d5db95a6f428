#!/usr/bin/env python3
"""An independent witness cosigner, written from the C2SP specifications
(https://c2sp.org/tlog-cosignature, https://c2sp.org/signed-note,
https://c2sp.org/tlog-checkpoint), not from treaty's code.

Usage: cosign.py --seed HEX64 --name NAME --time UNIX_SECONDS CHECKPOINT_NOTE

CHECKPOINT_NOTE is a signed checkpoint (a signed note: the text, a blank line, signature
lines). Prints two lines: `vkey <verifier key>` (signature type 0x04, the 32-byte Ed25519
public key) and `line <signature line>` — the witness's cosignature/v1 of the note's text:

  key ID    = SHA-256(name || "\\n" || 0x04 || public key)[:4]
  message   = "cosignature/v1\\n" || "time " || decimal(timestamp) || "\\n" || note text
  signature = u64 big-endian timestamp || Ed25519(message)
  line      = U+2014 U+0020 name U+0020 base64(key ID || signature)

The note text is everything before the blank line that precedes the signatures, with its
final newline. Exit 0 on success, 2 on a usage or input error.
"""

import argparse
import base64
import hashlib
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def die(msg):
    print("error:", msg, file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True, help="32-byte Ed25519 seed, hex")
    ap.add_argument("--name", required=True)
    ap.add_argument("--time", required=True, type=int)
    ap.add_argument("note")
    a = ap.parse_args()
    if not a.name or "+" in a.name or any(c.isspace() for c in a.name):
        die("a key name is non-empty, without '+' or white space")
    if not 0 <= a.time <= 2**63 - 1:
        die("the timestamp is a POSIX time of at most 2^63 - 1")
    try:
        seed = bytes.fromhex(a.seed)
    except ValueError:
        die("--seed is not hex")
    if len(seed) != 32:
        die("--seed is not 32 bytes")
    with open(a.note, "rb") as f:
        raw = f.read()
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        die("the note is not UTF-8")
    # signed-note: the text ends at the last blank line before the signature lines.
    cut = note.rfind("\n\n")
    if cut < 0:
        die("the note has no blank line before its signatures")
    text = note[: cut + 1]
    lines = text.split("\n")
    if len(lines) < 4:
        die("the note text is not a checkpoint (origin, size, root hash)")

    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(a.name.encode() + b"\n" + b"\x04" + pub).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(a.time).encode() + b"\n" + text.encode()
    signature = a.time.to_bytes(8, "big") + sk.sign(message)
    vkey = a.name + "+" + key_id.hex() + "+" + base64.b64encode(b"\x04" + pub).decode()
    line = "\u2014 " + a.name + " " + base64.b64encode(key_id + signature).decode()
    print("vkey", vkey)
    print("line", line)


if __name__ == "__main__":
    main()
