#!/usr/bin/env python3
"""Runs the real agent ($QXUB_REAL_AGENT) with its argv, dropping one capability ($QXUB_DROP_CAPABILITY) from
its hello: an older agent, for tests of what a client says to one. Everything after the hello passes as is."""
import os
import subprocess
import sys
import threading


def varint(data, i):
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def read_exactly(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def main():
    drop = os.environ["QXUB_DROP_CAPABILITY"].encode()
    child = subprocess.Popen([os.environ["QXUB_REAL_AGENT"]] + sys.argv[1:], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, bufsize=0)

    def pump_in():
        while True:
            data = os.read(0, 65536)
            if not data:
                child.stdin.close()
                return
            child.stdin.write(data)

    threading.Thread(target=pump_in, daemon=True).start()
    out = sys.stdout.buffer
    magic = read_exactly(child.stdout, 8)
    header = read_exactly(child.stdout, 10)
    payload = read_exactly(child.stdout, int.from_bytes(header[:4], "big"))
    kept = bytearray()
    i = 0
    while i < len(payload):
        start = i
        key, i = varint(payload, i)
        if key & 7 == 2:
            length, i = varint(payload, i)
            value = payload[i:i + length]
            i += length
            if key >> 3 == 4 and value == drop:
                continue
        elif key & 7 == 0:
            _, i = varint(payload, i)
        kept += payload[start:i]
    out.write(magic + len(kept).to_bytes(4, "big") + header[4:] + bytes(kept))
    out.flush()
    while True:
        data = child.stdout.read1(65536) if hasattr(child.stdout, "read1") else os.read(child.stdout.fileno(), 65536)
        if not data:
            break
        out.write(data)
        out.flush()
    sys.exit(child.wait())


if __name__ == "__main__":
    main()
