"""Interop: the Ed25519 entries of treaty's DSSE envelopes verify with standard DSSE tooling.

Reads every `.sig` under the governed folders of a governance repository (default: the current
directory), and checks with securesystemslib (PyPI) that each envelope's Ed25519 entries verify,
with the threshold equal to the number of Ed25519 entries (so every one must verify). Then it
flips one byte of a payload and checks that securesystemslib rejects it, so this test can fail.

Usage: python3 tests/interop/dsse_securesystemslib.py [REPO]
Exit 0 when all agree; 1 otherwise.
"""

import base64
import hashlib
import json
import pathlib
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

GOVERNED = ("keys", "treaties", "policies", "gates", "schemas")


def ed25519_keys(repo: pathlib.Path) -> dict:
    """key id (sha256 of the raw key) -> SSlibKey, for every member of the root and groups."""
    members = json.loads((repo / "keys/root.json").read_text())["root_group"]["members"]
    for group in sorted((repo / "keys/groups").glob("*.json")):
        members += json.loads(group.read_text())["members"]
    keys = {}
    for m in members:
        raw = base64.b64decode(m["ed25519"], validate=True)
        keyid = hashlib.sha256(raw).hexdigest()
        keys[keyid] = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})
    return keys


def check(envelope: dict, keys: dict) -> int:
    mine = [keys[s["keyid"]] for s in envelope["signatures"] if s["keyid"] in keys]
    env = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict consumes its input
    if not mine:
        raise SystemExit("an envelope has no Ed25519 entry from a known member")
    env.verify(mine, len(mine))
    return len(mine)


def main() -> int:
    repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    keys = ed25519_keys(repo)
    envelopes = sorted(p for top in GOVERNED for p in (repo / top).rglob("*.sig"))
    if not envelopes:
        print("no envelopes found", file=sys.stderr)
        return 1
    total = 0
    for path in envelopes:
        total += check(json.loads(path.read_text()), keys)
    # The negative control: an altered payload must not verify.
    tampered = json.loads(envelopes[0].read_text())
    payload = bytearray(base64.b64decode(tampered["payload"]))
    payload[len(payload) // 2] ^= 0x01
    tampered["payload"] = base64.b64encode(bytes(payload)).decode()
    try:
        check(tampered, keys)
    except VerificationError:
        pass
    else:
        print("securesystemslib accepted a tampered payload", file=sys.stderr)
        return 1
    print(f"securesystemslib: {total} Ed25519 signatures in {len(envelopes)} envelopes verify; tampered payload rejected")
    print(f"dsse-interop: {len(envelopes)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
