#!/usr/bin/python3
"""big_request.py SOCKET SIZE: sends one GetDevice request of SIZE bytes (an `id` field that
long) to the daemon on SOCKET with Debian's python3-grpcio, and prints the gRPC status code
and details on one line: "CODE details". A hostile client, for test_bounded_memory.sh."""
import sys

import grpc


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main():
    sock, size = sys.argv[1], int(sys.argv[2])
    channel = grpc.insecure_channel("unix:" + sock,
                                    options=[("grpc.max_send_message_length", -1)])
    call = channel.unary_unary("/vfio_migd.v1.DeviceService/GetDevice",
                               request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    body = b"\x0a" + varint(size) + b"a" * size  # field 1 (id), length-delimited
    try:
        call(body, timeout=120)
        print("OK")
    except grpc.RpcError as e:
        print(e.code().name, e.details())


if __name__ == "__main__":
    main()
