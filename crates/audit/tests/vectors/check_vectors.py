#!/usr/bin/env python3
"""Checks merkle.json and checkpoint.json from DESIGN §6 alone, without any fundledger code.

An auditor's-eye cross-check in another language: needs the `blake3` and `cryptography`
Python packages. Not run by CI (the Rust test `tests/vectors.rs` guards the files there).

    python3 check_vectors.py   # prints "N passed, 0 failed"
"""

import base64
import hashlib
import json
import pathlib
import sys

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey, Ed25519PrivateKey

HERE = pathlib.Path(__file__).parent
passed = failed = 0


def check(condition, what):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def b3(data):
    return blake3.blake3(data).digest()


def leaf(record_hash):
    return b3(b"\x00" + record_hash)


def node(left, right):
    return b3(b"\x01" + left + right)


def mth(hashes):
    """RFC 9162 §2.1.1, recursively."""
    if not hashes:
        return b3(b"")
    if len(hashes) == 1:
        return leaf(hashes[0])
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def verify_inclusion(index, size, record_hash, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf(record_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, old_root, new_root, path):
    """RFC 9162 §2.1.4.2, with equal sizes needing an empty path and equal roots."""
    if m == 0 or m > n:
        return False
    if m == n:
        return not path and old_root == new_root
    if not path:
        return False
    if m & (m - 1) == 0:
        path = [old_root] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def h(text):
    assert text == text.lower() and len(text) == 64
    return bytes.fromhex(text)


merkle = json.loads((HERE / "merkle.json").read_text())
hashes = [h(x) for x in merkle["record_hashes"]]
for seq, record_hash in enumerate(hashes, start=1):
    check(record_hash == b3(str(seq).encode()), f"record hash {seq}")
for entry in merkle["roots"]:
    check(h(entry["root"]) == mth(hashes[: entry["size"]]), f"root of size {entry['size']}")
for p in merkle["inclusion"]:
    check(list(p) == ["leaf_index", "tree_size", "record_hash", "path", "root"], "inclusion field order")
    check(h(p["root"]) == mth(hashes[: p["tree_size"]]), f"inclusion root {p['tree_size']}")
    check(h(p["record_hash"]) == hashes[p["leaf_index"]], "inclusion record hash")
    args = (p["leaf_index"], p["tree_size"], h(p["record_hash"]), [h(x) for x in p["path"]], h(p["root"]))
    check(verify_inclusion(*args), f"inclusion {p['leaf_index']} of {p['tree_size']}")
    check(not verify_inclusion(args[0], args[1], args[2], args[3], b3(b"x")), "inclusion with a wrong root")
for p in merkle["consistency"]:
    check(list(p) == ["old_size", "new_size", "old_root", "new_root", "path"], "consistency field order")
    check(h(p["old_root"]) == mth(hashes[: p["old_size"]]), "consistency old root")
    check(h(p["new_root"]) == mth(hashes[: p["new_size"]]), "consistency new root")
    path = [h(x) for x in p["path"]]
    check(verify_consistency(p["old_size"], p["new_size"], h(p["old_root"]), h(p["new_root"]), path),
          f"consistency {p['old_size']} -> {p['new_size']}")

cp = json.loads((HERE / "checkpoint.json").read_text())
name, seed = cp["name"], bytes.fromhex(cp["seed"])
public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
check(cp["key_id"] == key_id.hex(), "key id")
check(cp["verifier_key"] == f"{name}+{key_id.hex()}+" + base64.b64encode(b"\x01" + public).decode(), "verifier key")
check(cp["secret_key"] == f"PRIVATE+KEY+{name}+{key_id.hex()}+" + base64.b64encode(b"\x01" + seed).decode() + "\n",
      "secret key")
body = f"{cp['origin']}\n{cp['size']}\n" + base64.b64encode(h(cp["root"])).decode() + "\n"
check(cp["body"] == body, "checkpoint body")
check(h(cp["root"]) == mth(hashes[: cp["size"]]), "checkpoint root")
text, signatures = cp["note"].rsplit("\n\n", 1)
check(text + "\n" == body, "note text")
check(signatures.startswith("\u2014 " + name + " ") and signatures.endswith("\n"), "signature line")
blob = base64.b64decode(signatures.rstrip("\n").split(" ")[-1], validate=True)
check(blob[:4] == key_id and len(blob) == 68, "signature key id")
try:
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())
    check(True, "")
except Exception as error:  # noqa: BLE001 - any failure is a failed check
    check(False, f"signature: {error!r}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
