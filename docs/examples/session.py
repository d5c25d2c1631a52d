#!/usr/bin/env python3
"""Reproduce the example session of docs/protocol.md against a real qxub-agent.

Builds the client's side of a session by hand (no qxub code involved), pipes it into
`qxub-agent serve`, and prints both directions frame by frame with annotations.

    python3 docs/examples/session.py [path/to/qxub-agent]

The agent defaults to .build/debug/qxub-agent (relative to the repository root). Only the Python
standard library is used. `--selftest` checks this encoder against golden bytes from
Tests/QxubProtocolTests/WireFormatTests.swift and exits.
"""

import os
import subprocess
import sys
import zlib

MAGIC = bytes([0x89, 0x51, 0x58, 0x55, 0x42, 0x0D, 0x0A, 0x1A])  # "\x89QXUB\r\n\x1a"
HEADER_SIZE = 10
FLAG_COMPRESSED = 0x01
VARINT, LENGTH_DELIMITED = 0, 2

FRAME_TYPES = {
    0x01: "hello", 0x02: "goodbye", 0x03: "ping", 0x04: "pong", 0x05: "error",
    0x10: "submit", 0x11: "submitted", 0x12: "watch", 0x13: "unwatch", 0x14: "cancel",
    0x15: "cancel-result", 0x16: "status-query", 0x17: "status-report",
    0x20: "output", 0x21: "job-state", 0x22: "job-end",
}

# Field names of the messages that appear in the example (see the tables in docs/protocol.md).
FIELD_NAMES = {
    "hello": {1: "lowest version", 2: "highest version", 3: "software", 4: "capability",
              5: "max payload", 6: "platform", 7: "hostname", 8: "scheduler"},
    "goodbye": {1: "reason"},
    "ping": {1: "nonce"},
    "pong": {1: "nonce"},
    "error": {1: "request id", 2: "code", 3: "message", 4: "hint"},
}

ERROR_CODES = {1: "unknown-request", 2: "malformed-request", 3: "unknown-job", 4: "submit-failed",
               5: "scheduler-unavailable", 6: "cancel-failed", 7: "internal-error"}


# --- encoding -------------------------------------------------------------------------------------

def varint(value):
    """Unsigned LEB128: 7 bits per byte, least significant group first, high bit = more follows."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value):
    """Signed to unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return (value << 1) ^ (value >> 63) if value < 0 else value << 1


def key(field, kind):
    return varint(field << 3 | kind)


def f_varint(field, value):
    """A varint field; zero is the default and is not written."""
    return key(field, VARINT) + varint(value) if value else b""


def f_bytes(field, value):
    """A length-delimited field (string, bytes, nested message); empty is the default and is not written."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return key(field, LENGTH_DELIMITED) + varint(len(value)) + value if value else b""


def frame(frame_type, payload=b"", channel=0, flags=0):
    """Header: payload length u32 BE, type u8, flags u8, channel u32 BE; then the payload."""
    return (len(payload).to_bytes(4, "big") + bytes([frame_type, flags]) + channel.to_bytes(4, "big")
            + payload)


def client_bytes():
    """Everything the client writes in the example, as a list of (description, bytes)."""
    hello = (f_varint(1, 1)                  # lowest version 1
             + f_varint(2, 1)                # highest version 1
             + f_bytes(3, "qxub 0.1.0")      # software
             + f_bytes(4, "deflate")         # capability (repeated field; one entry here)
             + f_varint(5, 1048576))         # max payload: 1 MiB
    return [
        ("magic", MAGIC),
        ("hello", frame(0x01, hello)),
        ("ping", frame(0x03, f_varint(1, 1))),                 # nonce 1
        ("type 0x6f (unknown)", frame(0x6F, f_varint(1, 41))),  # field 1 = request id 41
        ("goodbye", frame(0x02, f_bytes(1, "done"))),
    ]


# --- decoding -------------------------------------------------------------------------------------

def read_varint(data, at):
    result = shift = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, at
        shift += 7


def fields(payload):
    """Yields (number, kind, value, raw bytes of the field)."""
    at = 0
    while at < len(payload):
        start = at
        k, at = read_varint(payload, at)
        number, kind = k >> 3, k & 7
        if kind == VARINT:
            value, at = read_varint(payload, at)
        elif kind == LENGTH_DELIMITED:
            length, at = read_varint(payload, at)
            value = payload[at:at + length]
            at += length
        else:
            raise ValueError(f"unknown wire kind {kind}")
        yield number, kind, value, payload[start:at]


class FrameReader:
    """Splits one direction into frames, inflating compressed payloads with one shared zlib stream."""

    def __init__(self):
        self.inflater = zlib.decompressobj()

    def frames(self, data):
        at = 0
        while at + HEADER_SIZE <= len(data):
            header = data[at:at + HEADER_SIZE]
            length = int.from_bytes(header[0:4], "big")
            frame_type, flags = header[4], header[5]
            channel = int.from_bytes(header[6:10], "big")
            wire = data[at + HEADER_SIZE:at + HEADER_SIZE + length]
            if len(wire) < length:
                raise ValueError(f"truncated frame at offset {at}")
            payload = self.inflater.decompress(wire) if flags & FLAG_COMPRESSED else wire
            yield header, frame_type, flags, channel, wire, payload
            at += HEADER_SIZE + length
        if at != len(data):
            raise ValueError(f"{len(data) - at} bytes left over")


# --- printing -------------------------------------------------------------------------------------

def hexdump(data, indent="    "):
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{indent}{at:04x}: {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


def describe_value(type_name, number, kind, value):
    if kind == LENGTH_DELIMITED:
        try:
            return repr(value.decode("utf-8"))
        except UnicodeDecodeError:
            return value.hex(" ")
    if type_name == "error" and number == 2:
        return f"{value} ({ERROR_CODES.get(value, 'unknown code')})"
    return str(value)


def show_frame(header, frame_type, flags, channel, wire, payload):
    type_name = FRAME_TYPES.get(frame_type, f"type-0x{frame_type:02x}")
    compressed = bool(flags & FLAG_COMPRESSED)
    print(f"  frame {type_name}: length {len(wire)}, type 0x{frame_type:02x}, flags 0x{flags:02x}"
          f"{' (compressed)' if compressed else ''}, channel {channel}")
    print(f"    header  {header.hex(' ')}")
    if compressed:
        print(f"    payload on the wire ({len(wire)} bytes, deflate stream after Z_SYNC_FLUSH):")
        print(hexdump(wire, "      "))
        print(f"    inflated payload ({len(payload)} bytes):")
    elif payload:
        print(f"    payload ({len(payload)} bytes):")
    else:
        print("    payload: empty")
    names = FIELD_NAMES.get(type_name, {})
    for number, kind, value, raw in fields(payload):
        name = names.get(number, "field")
        print(f"      {raw[:12].hex(' ')}{' ...' if len(raw) > 12 else ''}")
        print(f"          field {number} ({'varint' if kind == VARINT else 'bytes'}) {name} = "
              f"{describe_value(type_name, number, kind, value)}")


def main(argv):
    if "--selftest" in argv:
        return selftest()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    agent = argv[1] if len(argv) > 1 else os.path.join(root, ".build", "debug", "qxub-agent")

    parts = client_bytes()
    to_agent = b"".join(data for _, data in parts)
    run = subprocess.run([agent, "serve"], input=to_agent, capture_output=True, timeout=30)

    print(f"client -> agent ({len(to_agent)} bytes):")
    print(hexdump(to_agent))
    print()
    print(f"  magic   {MAGIC.hex(' ')}")
    for header, frame_type, flags, channel, wire, payload in FrameReader().frames(to_agent[len(MAGIC):]):
        show_frame(header, frame_type, flags, channel, wire, payload)
    print()

    out = run.stdout
    print(f"agent -> client ({len(out)} bytes):")
    print(hexdump(out))
    print()
    if not out.startswith(MAGIC):
        print("  the agent did not start with the magic")
    else:
        print(f"  magic   {out[:8].hex(' ')}")
        for header, frame_type, flags, channel, wire, payload in FrameReader().frames(out[len(MAGIC):]):
            show_frame(header, frame_type, flags, channel, wire, payload)
    print()
    print(f"agent exit status: {run.returncode}")
    print(f"agent stderr: {run.stderr.decode('utf-8', 'replace')!r}")
    return 0 if run.returncode == 0 else 1


def selftest():
    """The encoder above against golden bytes from WireFormatTests.swift."""
    def text(s):
        return s.encode().hex()

    checks = [
        ("ping 300 frame", frame(0x03, f_varint(1, 300)).hex(), "00000003" "03" "00" "00000000" "08ac02"),
        ("hello 1...2", (f_varint(1, 1) + f_varint(2, 2) + f_bytes(3, "qxub 0.1.0") + f_bytes(4, "deflate")
                         + f_varint(5, 1 << 20) + f_bytes(6, "linux-x86_64") + f_bytes(7, "h")).hex(),
         "0801" "1002" "1a0a" + text("qxub 0.1.0") + "2207" + text("deflate") + "28808040"
         + "320c" + text("linux-x86_64") + "3a01" + text("h")),
        ("error", (f_varint(1, 7) + f_varint(2, 3) + f_bytes(3, "no job 42") + f_bytes(4, "try qxub history")).hex(),
         "0807" "1003" "1a09" + text("no job 42") + "2210" + text("try qxub history")),
        # exited(-29): kind 1, then field 2 zigzag; exited(0) writes an explicit zero (presence matters).
        ("job end exited(-29)", (f_varint(1, 1) + key(2, VARINT) + varint(zigzag(-29))).hex(), "0801" "1039"),
        ("job end exited(0)", (f_varint(1, 1) + key(2, VARINT) + varint(zigzag(0))).hex(), "0801" "1000"),
        ("output header", frame(0x20, bytes([0xAA, 0xBB, 0xCC]), channel=0x01020304).hex(),
         "00000003" "20" "00" "01020304" "aabbcc"),
        # submit: the empty Context (7) and Resources (11) are written as empty nested messages.
        ("submit", (f_varint(1, 2) + f_bytes(2, f_bytes(1, "t") + f_varint(3, 1) + f_bytes(4, "echo")
                                             + f_bytes(4, "a b") + f_bytes(5, "/w") + key(7, LENGTH_DELIMITED)
                                             + varint(0) + key(11, LENGTH_DELIMITED) + varint(0))).hex(),
         "0802" "1218" "0a01" + text("t") + "1801" "2204" + text("echo") + "2203" + text("a b") + "2a02"
         + text("/w") + "3a00" "5a00"),
        ("job state", (f_varint(1, 3) + f_bytes(2, "gadi-cpu-1") + f_bytes(3, "R")).hex(),
         "0803" "120a" + text("gadi-cpu-1") + "1a01" + text("R")),
    ]
    failed = 0
    for name, got, want in checks:
        ok = got == want
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f"\n     got  {got}\n     want {want}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
