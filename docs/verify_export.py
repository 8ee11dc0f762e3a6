#!/usr/bin/env python3
"""Verify a fundledger export from DESIGN §5–6 alone, without any fundledger code.

    pip install blake3                 # and `cryptography` for --vkey
    python3 verify_export.py EXPORT.jsonl
    python3 verify_export.py EXPORT.jsonl --checkpoint OLD.ckpt --vkey KEY.vkey
    python3 verify_export.py --record LINE.json --proof PROOF.json --checkpoint CKPT --vkey KEY

What it checks, in this order:
  1. §5, the hash chain: the header line names the origin; record n has seq n,
     prev[1] = genesis = BLAKE3.derive_key("fundledger genesis v1", utf8(origin)),
     prev[n] = hash[n-1], and hash[n] = BLAKE3.derive_key("fundledger event v1",
     prev[n] (32 bytes) || JCS(body[n])); body.seq = seq and the body holds type,
     recorded_at, command_id and actor.
  2. §6, the Merkle tree: the RFC 9162 root over the record hashes (leaf = BLAKE3(0x00 || hash),
     node = BLAKE3(0x01 || left || right), empty tree = BLAKE3("")).
  3. With --checkpoint: the export's root at the checkpoint's size equals the checkpoint's root
     and the origins match. With --vkey as well, the checkpoint's Ed25519 signature is checked
     (C2SP signed-note; needs the `cryptography` package). An auditor checks with the OLD
     checkpoint they kept: a rewritten history fails here even when its chain is consistent.

With --record and --proof instead of an export, one record is proven without the log: the
record line's hash is recomputed from its prev and body (§5), the inclusion proof (the JSON of
`fundledger prove inclusion`, RFC 9162 §2.1.3.2) leads from that hash to the proof's root, and
with --checkpoint that root and size are the ones the checkpoint signs.

JCS (RFC 8785) is implemented for what fundledger bodies contain: objects, arrays, strings,
integers (|n| <= 2^53), true, false, null. Member names are sorted by UTF-16 code units. A body
with a fractional number or a duplicate member name is refused (fundledger never writes one;
amounts are strings).

Prints a summary and "verify_export: OK" (exit 0), or "FAILED at seq N: ..." (exit 1).
Usage errors and unreadable files exit 2.
"""

import argparse
import base64
import hashlib
import json
import os
import sys

try:
    import blake3
except ImportError:
    print("error: the blake3 package is missing: pip install blake3", file=sys.stderr)
    sys.exit(2)

GENESIS_CONTEXT = "fundledger genesis v1"
EVENT_CONTEXT = "fundledger event v1"
MAX_SAFE_INTEGER = 2**53
REQUIRED_BODY_FIELDS = ("seq", "type", "recorded_at", "command_id", "actor")


class Failed(Exception):
    """The data is wrong (exit 1)."""


# --- §5: JCS, genesis, record hash -------------------------------------------------------

def jcs(value):
    """RFC 8785 canonical bytes of a JSON value as parsed by json.loads."""
    out = []
    _jcs(value, out)
    return "".join(out).encode("utf-8")


def _jcs(value, out):
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise Failed(f"the integer {value} is beyond 2^53 (not supported here)")
        out.append(str(value))
    elif isinstance(value, float):
        raise Failed(f"the number {value!r} is not an integer (not supported here)")
    elif isinstance(value, str):
        _jcs_string(value, out)
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        # UTF-16 code-unit order: the byte order of UTF-16BE is exactly that order.
        names = sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        for index, name in enumerate(names):
            if index:
                out.append(",")
            _jcs_string(name, out)
            out.append(":")
            _jcs(value[name], out)
        out.append("}")
    else:
        raise Failed(f"unexpected JSON value {value!r}")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _jcs_string(text, out):
    out.append('"')
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            raise Failed("a string holds a lone surrogate, which is not Unicode text")
        else:
            out.append(char)
    out.append('"')


def genesis(origin):
    return blake3.blake3(origin.encode("utf-8"), derive_key_context=GENESIS_CONTEXT).digest()


def record_hash(prev, body):
    return blake3.blake3(prev + jcs(body), derive_key_context=EVENT_CONTEXT).digest()


# --- §6: Merkle tree ---------------------------------------------------------------------

def b3(data):
    return blake3.blake3(data).digest()


class Frontier:
    """The RFC 9162 tree head of a growing list of record hashes, in O(log n) memory: the
    roots of the perfect subtrees that make up the tree, largest first."""

    def __init__(self):
        self.size = 0
        self.stack = []  # (subtree size, subtree hash)

    def push(self, record_hash_bytes):
        node, size = b3(b"\x00" + record_hash_bytes), 1
        while self.stack and self.stack[-1][0] == size:
            left_size, left = self.stack.pop()
            node, size = b3(b"\x01" + left + node), left_size + size
        self.stack.append((size, node))
        self.size += 1

    def root(self):
        if not self.stack:
            return b3(b"")
        node = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            node = b3(b"\x01" + left + node)
        return node


def verify_inclusion(index, size, record_hash_bytes, path, root):
    """RFC 9162 §2.1.3.2: does `path` lead from leaf `index` of a tree of `size` to `root`?"""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, b3(b"\x00" + record_hash_bytes)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = b3(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = b3(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- §6: checkpoints (C2SP tlog-checkpoint signed notes) ----------------------------------

def read_checkpoint(text):
    """Returns (origin, size, root bytes, note text, signature lines)."""
    if "\n\n" not in text:
        raise Failed("the checkpoint is not a signed note (no blank line before signatures)")
    body, signatures = text.split("\n\n", 1)
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4:
        raise Failed("the checkpoint has fewer than three lines (origin, size, root)")
    origin, size_text, root_b64 = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise Failed(f"the checkpoint's size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except ValueError as error:
        raise Failed(f"the checkpoint's root is not base64: {error}") from None
    if len(root) != 32:
        raise Failed("the checkpoint's root is not 32 bytes")
    return origin, int(size_text), root, body, signatures.splitlines()


def check_signature(note_body, signature_lines, vkey_text):
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        print("error: --vkey needs the cryptography package: pip install cryptography",
              file=sys.stderr)
        sys.exit(2)
    parts = vkey_text.strip().split("+", 2)  # base64 may itself hold "+"
    if len(parts) != 3:
        raise Failed("the verifier key is not NAME+KEYID+BASE64")
    name, key_id_hex, key_b64 = parts
    key = base64.b64decode(key_b64, validate=True)
    if len(key) != 33 or key[0] != 1:
        raise Failed("the verifier key is not an Ed25519 key (0x01 || 32 bytes)")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise Failed("the verifier key's id does not match its name and key")
    public = Ed25519PublicKey.from_public_bytes(key[1:])
    for line in signature_lines:
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != "\u2014" or fields[1] != name:
            continue
        blob = base64.b64decode(fields[2], validate=True)
        if len(blob) != 68 or blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], note_body.encode("utf-8"))
            return
        except Exception:  # noqa: BLE001 - any failure is a bad signature
            raise Failed(f"the checkpoint's signature by {name} does not verify") from None
    raise Failed(f"the checkpoint carries no signature by {name}+{key_id_hex}")


# --- the export --------------------------------------------------------------------------

def no_duplicates(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member name")
    return dict(pairs)


def is_hex32(text):
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def check_record_line(line, seq, prev):
    """Checks one export line as record `seq` (and, when `prev` is given, that it links to
    it); returns the record's hash, recomputed from its prev and body."""
    where = f"at seq {seq}"
    try:
        record = json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicates)
    except ValueError as error:
        raise Failed(f"{where}: not a JSON record line: {error}") from None
    if not isinstance(record, dict) or set(record) != {"seq", "prev", "hash", "body"}:
        raise Failed(f"{where}: a record line holds exactly seq, prev, hash, body")
    if type(record["seq"]) is not int or record["seq"] != seq:
        raise Failed(f"{where}: the line says seq {record['seq']!r} (missing or reordered)")
    if not is_hex32(record["prev"]) or not is_hex32(record["hash"]):
        raise Failed(f"{where}: prev and hash are 64 lowercase hex digits")
    stated_prev = bytes.fromhex(record["prev"])
    if prev is not None and stated_prev != prev:
        raise Failed(f"{where}: broken link: prev is not the hash of the record before")
    body = record["body"]
    if not isinstance(body, dict) or any(name not in body for name in REQUIRED_BODY_FIELDS):
        raise Failed(f"{where}: the body is not an object holding {', '.join(REQUIRED_BODY_FIELDS)}")
    if type(body["seq"]) is not int or body["seq"] != seq:
        raise Failed(f"{where}: body.seq is {body['seq']!r}")
    computed = record_hash(stated_prev, body)
    if computed.hex() != record["hash"]:
        raise Failed(f"{where}: hash mismatch: the line says {record['hash']}, "
                     f"the body hashes to {computed.hex()}")
    return computed


def verify(path, wanted_sizes):
    """Checks the export; returns (origin, head seq, head hash, root, {size: root})."""
    roots = {size: None for size in wanted_sizes}
    with open(path, "rb") as file:
        header_line = file.readline()
        try:
            header = json.loads(header_line)
        except ValueError:
            raise Failed("the first line is not the export header") from None
        if not isinstance(header, dict) or header.get("fundledger_export") != 1 \
                or not isinstance(header.get("origin"), str):
            raise Failed('the first line is not {"fundledger_export":1,"origin":"..."}')
        origin = header["origin"]
        prev = genesis(origin)
        frontier = Frontier()
        if 0 in roots:
            roots[0] = frontier.root()
        seq = 0
        for line in file:
            seq += 1
            where = f"at seq {seq}"
            if not line.endswith(b"\n"):
                raise Failed(f"{where}: the last line is torn (no newline)")
            computed = check_record_line(line, seq, prev)
            prev = computed
            frontier.push(computed)
            if seq in roots:
                roots[seq] = frontier.root()
    return origin, seq, prev, frontier.root(), roots


def load_checkpoint(args):
    """The --checkpoint, its signature checked when --vkey is given; None without one."""
    if not args.checkpoint:
        return None
    with open(args.checkpoint, encoding="utf-8") as file:
        checkpoint = read_checkpoint(file.read())
    if args.vkey:
        vkey = args.vkey
        if os.path.isfile(vkey):
            with open(vkey, encoding="utf-8") as file:
                vkey = file.read()
        # else: the key string itself
        check_signature(checkpoint[3], checkpoint[4], vkey)
    return checkpoint


def signed(args):
    return "signature checked" if args.vkey else "signature NOT checked (no --vkey)"


def verify_export(args):
    checkpoint = load_checkpoint(args)
    sizes = [checkpoint[1]] if checkpoint else []
    origin, head_seq, head_hash, root, roots = verify(args.export, sizes)
    print(f"origin: {origin}")
    print(f"records: {head_seq}")
    print(f"head hash: {head_hash.hex()}")
    print(f"merkle root: {root.hex()}")
    print("chain: OK")
    if checkpoint:
        cp_origin, cp_size, cp_root, _, _ = checkpoint
        if cp_origin != origin:
            raise Failed(f"the checkpoint is for origin {cp_origin!r}, the export for {origin!r}")
        if cp_size > head_seq:
            raise Failed(f"ROLLBACK or truncation: the checkpoint signs {cp_size} records, "
                         f"the export holds {head_seq}")
        if roots[cp_size] != cp_root:
            raise Failed(f"the checkpoint signs root {cp_root.hex()} at size {cp_size}, but "
                         f"the export's first {cp_size} records have root "
                         f"{roots[cp_size].hex()}: rewritten or forged")
        print(f"checkpoint: OK (size {cp_size}, {signed(args)})")


def verify_record(args):
    with open(args.proof, encoding="utf-8") as file:
        try:
            proof = json.load(file)
        except ValueError as error:
            raise Failed(f"the proof is not JSON: {error}") from None
    fields = ("leaf_index", "tree_size", "record_hash", "path", "root")
    if not isinstance(proof, dict) or set(proof) != set(fields) \
            or not all(type(proof[name]) is int for name in fields[:2]) \
            or not all(is_hex32(proof[name]) for name in ("record_hash", "root")) \
            or not isinstance(proof["path"], list) or not all(is_hex32(p) for p in proof["path"]):
        raise Failed("the proof is not the inclusion proof JSON of DESIGN §6")
    with open(args.record, "rb") as file:
        line = file.read().strip(b"\r\n")
    seq = proof["leaf_index"] + 1
    computed = check_record_line(line, seq, None)
    if computed.hex() != proof["record_hash"]:
        raise Failed(f"the proof is for record hash {proof['record_hash']}, "
                     f"the record hashes to {computed.hex()}")
    root = bytes.fromhex(proof["root"])
    path = [bytes.fromhex(p) for p in proof["path"]]
    if not verify_inclusion(proof["leaf_index"], proof["tree_size"], computed, path, root):
        raise Failed(f"the proof does not lead from seq {seq} to root {proof['root']} "
                     f"at size {proof['tree_size']}")
    print(f"record: OK (seq {seq}, hash {computed.hex()})")
    print(f"inclusion: OK (in the tree of size {proof['tree_size']}, root {proof['root']})")
    checkpoint = load_checkpoint(args)
    if checkpoint:
        _, cp_size, cp_root, _, _ = checkpoint
        if (cp_size, cp_root) != (proof["tree_size"], root):
            raise Failed(f"the proof is for size {proof['tree_size']} and root {proof['root']}, "
                         f"the checkpoint signs size {cp_size} and root {cp_root.hex()}")
        print(f"checkpoint: OK (size {cp_size}, {signed(args)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", nargs="?", help="a fundledger JSON Lines export (DESIGN §5)")
    parser.add_argument("--record", help="instead of an export: a file holding one export line")
    parser.add_argument("--proof", help="with --record: its inclusion proof (fundledger prove)")
    parser.add_argument("--checkpoint", help="a signed checkpoint the export or proof must match")
    parser.add_argument("--vkey", help="the checkpoint signer's verifier key, or a .vkey file")
    args = parser.parse_args()
    if args.vkey and not args.checkpoint:
        parser.error("--vkey needs --checkpoint")
    if bool(args.export) == bool(args.record):
        parser.error("give an export, or --record LINE with --proof PROOF")
    if bool(args.record) != bool(args.proof):
        parser.error("--record and --proof go together")
    try:
        if args.export:
            verify_export(args)
        else:
            verify_record(args)
    except Failed as error:
        print(f"verify_export: FAILED {error}" if str(error).startswith("at seq")
              else f"verify_export: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print("verify_export: OK")


if __name__ == "__main__":
    main()
