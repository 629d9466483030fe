#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""craft_savefile — writes a vfio-migd save file (docs/save-file.md) whose header and CRCs are
valid but whose device data is chosen by the test, so the daemon's own file checks pass and
the kernel driver is the one that has to refuse the data.

  craft_savefile.py OUT --garbage N [--byte 0xab]   N bytes of one value (mtty: bad magic)
  craft_savefile.py OUT --from FILE --truncate N    the first N data bytes of a real save
  craft_savefile.py OUT --from FILE --set OFF=VAL   a real save with one data byte changed
Options: --flags F (default 7), --backend NAME (default kernel).
"""
import argparse
import struct
import sys
import zlib

HEADER_SIZE = 64


def header(flags, data, backend):
    """The 64-byte little-endian header of docs/save-file.md."""
    h = bytearray(HEADER_SIZE)
    h[0:8] = b"VFMIGDSV"
    struct.pack_into("<III", h, 8, 1, HEADER_SIZE, flags)   # version, header size, flags
    struct.pack_into("<Q", h, 24, len(data))
    struct.pack_into("<I", h, 32, zlib.crc32(data) & 0xFFFFFFFF)
    name = backend.encode()
    if len(name) > 15:
        sys.exit("craft_savefile: back-end name too long")
    h[40:40 + len(name)] = name
    struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[0:60])) & 0xFFFFFFFF)
    return bytes(h)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out")
    p.add_argument("--garbage", type=int)
    p.add_argument("--byte", type=lambda s: int(s, 0), default=0xAB)
    p.add_argument("--from", dest="src")
    p.add_argument("--truncate", type=int)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--flags", type=lambda s: int(s, 0), default=7)
    p.add_argument("--backend", default="kernel")
    a = p.parse_args()

    if a.garbage is not None:
        data = bytes([a.byte]) * a.garbage
    elif a.src:
        with open(a.src, "rb") as f:
            data = bytearray(f.read()[HEADER_SIZE:])
        if a.truncate is not None:
            data = data[:a.truncate]
        for s in a.set:
            off, val = s.split("=")
            data[int(off, 0)] = int(val, 0)
        data = bytes(data)
    else:
        sys.exit("craft_savefile: give --garbage N or --from FILE")
    with open(a.out, "wb") as f:
        f.write(header(a.flags, data, a.backend) + data)


if __name__ == "__main__":
    main()
