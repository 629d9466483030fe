#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""streamfile — reads and writes vfio-migd stream files (docs/stream-format.md) independently
of the daemon's code, for the integration and kernel tests.

  streamfile.py decode FILE
      the file as JSON: header, manifest (descriptors decoded), every record checked (CRCs,
      sequences, DEVICE_END and STREAM_END totals), each device's data size; "valid" says
      whether all of it holds. Never fails on a damaged file: it reports.
  streamfile.py craft OUT --garbage N [--byte 0xab] [--name NAME] [--flags F]
                          [--backend NAME] [--descriptor RULE:FIELD=VALUE,...]
      a one-device stream whose records and CRCs are valid but whose device data is N bytes
      of one value, so the daemon's checks pass and the device has to refuse the data.
  streamfile.py rewrite IN OUT [--backend NAME] [--truncate N] [--set OFF=VAL]...
                               [--group NAME] [--device I.FIELD=VALUE]... [--drop I]
      IN's devices re-encoded with valid CRCs and totals: another back-end name in the
      manifest, device 0's data cut to N bytes, or bytes of device 0's data changed; another
      group name; a manifest field of device I changed (FIELD: name, flags, size, backend, or
      descriptor as RULE:FIELD=VALUE,... or hex:BYTES for any bytes); device I left out.
  streamfile.py retired OUT
      a file in the retired single-device format (magic VFMIGDSV), which must be refused.
"""
import argparse
import json
import struct
import sys

MAGIC = b"VFMIGSTR"
NONE = 0xFFFFFFFF
MANIFEST, DEVICE_DATA, DEVICE_END, STREAM_END = 1, 2, 3, 4
RULES = {0: "equal", 1: "at_least", 2: "info"}

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for x in data:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# ---- writing

def header(stream_id):
    h = MAGIC + struct.pack("<HHIQI", 1, 0, 32, stream_id, 0)
    return h + struct.pack("<I", crc32c(h))


def record(typ, dev, seq, payload, flags=0):
    h = struct.pack("<IIIIQI", typ, flags, dev, len(payload), seq, crc32c(payload) if payload else 0)
    return h + struct.pack("<I", crc32c(h)) + payload


def s16(b):
    return struct.pack("<H", len(b)) + b


def encode_descriptor(fields):
    """fields: [(rule, name, value)] -> the compat slot's bytes (0 bytes for none)."""
    if not fields:
        return b""
    out = bytes([1, len(fields)])
    for rule, name, value in fields:
        n, v = name.encode(), value.encode()
        out += bytes([rule, len(n)]) + n + bytes([len(v)]) + v
    return out


def build(group, devices, stream_id=0x1234):
    """devices: [{name, flags, size, backend, compat (bytes), data (bytes)}] -> a stream."""
    man = s16(group.encode()) + struct.pack("<I", len(devices))
    for d in devices:
        man += s16(d["name"].encode()) + struct.pack("<IQ", d["flags"], d["size"])
        man += s16(d["backend"].encode()) + s16(d["compat"])
    out = [header(stream_id), record(MANIFEST, NONE, 0, man)]
    totals = []
    for i, d in enumerate(devices):
        n = 0
        for off in range(0, len(d["data"]), 1 << 19):
            out.append(record(DEVICE_DATA, i, n, d["data"][off:off + (1 << 19)]))
            n += 1
        out.append(record(DEVICE_END, i, n, struct.pack("<QQ", len(d["data"]), n)))
        totals.append((len(d["data"]), n))
    end = struct.pack("<I", len(devices)) + b"".join(struct.pack("<QQ", b, r) for b, r in totals)
    out.append(record(STREAM_END, NONE, 1, end))
    return b"".join(out)


# ---- reading

class Bad(Exception):
    pass


def _string(b, off):
    if off + 2 > len(b):
        raise Bad("manifest: a string runs past the end")
    n = struct.unpack_from("<H", b, off)[0]
    if off + 2 + n > len(b):
        raise Bad("manifest: a string runs past the end")
    return b[off + 2:off + 2 + n], off + 2 + n


def decode_descriptor(b):
    if not b:
        return {}
    if b[0] != 1:
        raise Bad("descriptor: encoding version %d" % b[0])
    out, off = {}, 2
    for _ in range(b[1]):
        rule, nlen = b[off], b[off + 1]
        name = b[off + 2:off + 2 + nlen].decode()
        vlen = b[off + 2 + nlen]
        value = b[off + 3 + nlen:off + 3 + nlen + vlen].decode()
        out[name] = {"rule": RULES.get(rule, str(rule)), "value": value}
        off += 3 + nlen + vlen
    if off != len(b):
        raise Bad("descriptor: %d bytes after the last field" % (len(b) - off))
    return out


def decode_manifest(p):
    group, off = _string(p, 0)
    n = struct.unpack_from("<I", p, off)[0]
    off += 4
    devs = []
    for _ in range(n):
        name, off = _string(p, off)
        flags, size = struct.unpack_from("<IQ", p, off)
        off += 12
        backend, off = _string(p, off)
        compat, off = _string(p, off)
        devs.append({"name": name.decode(), "flags": flags, "size": size,
                     "backend": backend.decode(), "compat": compat,
                     "descriptor": decode_descriptor(compat)})
    if off != len(p):
        raise Bad("manifest: %d bytes after the last device" % (len(p) - off))
    return group.decode(), devs


def parse(data):
    """The stream's parts; raises Bad on anything a reader must refuse."""
    if len(data) < 32 or data[:8] != MAGIC:
        raise Bad("no stream header")
    if struct.unpack_from("<I", data, 28)[0] != crc32c(data[:28]):
        raise Bad("stream header CRC")
    stream_id = struct.unpack_from("<Q", data, 16)[0]
    off, group, devs, seq, ended = 32, None, [], {}, False
    while off < len(data):
        if ended:
            raise Bad("data after STREAM_END")
        if off + 32 > len(data):
            raise Bad("truncated record header")
        typ, flags, dev, length, sq, pcrc, hcrc = struct.unpack_from("<IIIIQII", data, off)
        if hcrc != crc32c(data[off:off + 28]):
            raise Bad("record header CRC at %d" % off)
        payload = data[off + 32:off + 32 + length]
        if len(payload) != length or (crc32c(payload) if length else 0) != pcrc:
            raise Bad("payload at %d" % off)
        if typ == MANIFEST:
            group, devs = decode_manifest(payload)
            for d in devs:
                d["data"] = b""
                d["records"] = 0
        elif typ == DEVICE_DATA:
            if seq.get(dev, 0) != sq:
                raise Bad("sequence of device %d" % dev)
            devs[dev]["data"] += payload
            devs[dev]["records"] += 1
            seq[dev] = sq + 1
        elif typ == DEVICE_END:
            b, r = struct.unpack("<QQ", payload)
            if (b, r) != (len(devs[dev]["data"]), devs[dev]["records"]) or seq.get(dev, 0) != sq:
                raise Bad("DEVICE_END of device %d" % dev)
        elif typ == STREAM_END:
            ended = True
        off += 32 + length
    if not ended:
        raise Bad("no STREAM_END")
    return stream_id, group, devs


def cmd_decode(a):
    data = open(a.file, "rb").read()
    out = {"file_size": len(data), "magic": data[:8].decode("latin-1")}
    if len(data) >= 32:
        out["version"] = "%d.%d" % struct.unpack_from("<HH", data, 8)
    try:
        _, group, devs = parse(data)
        out.update(valid=True, group=group, devices=[
            {k: v for k, v in d.items() if k not in ("data", "compat")} | {"data_bytes": len(d["data"])}
            for d in devs])
    except (Bad, struct.error, IndexError, UnicodeDecodeError) as e:
        out.update(valid=False, why=str(e))
    print(json.dumps(out))


def parse_descriptor(text):
    fields = []
    for item in filter(None, (text or "").split(",")):
        rule, rest = item.split(":", 1)
        name, value = rest.split("=", 1)
        fields.append(({v: k for k, v in RULES.items()}[rule], name, value))
    return fields


def cmd_craft(a):
    dev = {"name": a.name, "flags": a.flags, "size": a.garbage, "backend": a.backend,
           "compat": encode_descriptor(parse_descriptor(a.descriptor)),
           "data": bytes([a.byte]) * a.garbage}
    open(a.out, "wb").write(build(a.name, [dev]))


def cmd_rewrite(a):
    stream_id, group, devs = parse(open(a.src, "rb").read())
    d = devs[0]
    data = bytearray(d["data"])
    if a.truncate is not None:
        data = data[:a.truncate]
    for s in a.set:
        off, val = s.split("=")
        data[int(off, 0)] = int(val, 0)
    d["data"] = bytes(data)
    for x in devs:
        if a.backend is not None:
            x["backend"] = a.backend
    for item in a.device:
        where, value = item.split("=", 1)
        i, field = where.split(".", 1)
        x = devs[int(i)]
        if field in ("flags", "size"):
            x[field] = int(value, 0)
        elif field == "descriptor":
            x["compat"] = (bytes.fromhex(value[4:]) if value.startswith("hex:")
                           else encode_descriptor(parse_descriptor(value)))
        else:
            x[field] = value
    for i in sorted(a.drop, reverse=True):
        del devs[i]
    open(a.out, "wb").write(build(a.group or group, devs, stream_id))


def cmd_retired(a):
    """The 64-byte header of the retired format (magic, version 1, size 64), then data."""
    h = b"VFMIGDSV" + struct.pack("<IIIIQ", 1, 64, 7, 0, 16) + bytes(32)
    open(a.out, "wb").write(h + bytes(16))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("decode")
    d.add_argument("file")
    c = sub.add_parser("craft")
    c.add_argument("out")
    c.add_argument("--garbage", type=int, required=True)
    c.add_argument("--byte", type=lambda s: int(s, 0), default=0xAB)
    c.add_argument("--name", default="dev")
    c.add_argument("--flags", type=lambda s: int(s, 0), default=7)
    c.add_argument("--backend", default="kernel")
    c.add_argument("--descriptor", default="")
    r = sub.add_parser("rewrite")
    r.add_argument("src")
    r.add_argument("out")
    r.add_argument("--backend")
    r.add_argument("--truncate", type=int)
    r.add_argument("--set", action="append", default=[])
    r.add_argument("--group")
    r.add_argument("--device", action="append", default=[])
    r.add_argument("--drop", action="append", type=int, default=[])
    t = sub.add_parser("retired")
    t.add_argument("out")
    a = p.parse_args()
    {"decode": cmd_decode, "craft": cmd_craft, "rewrite": cmd_rewrite, "retired": cmd_retired}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
