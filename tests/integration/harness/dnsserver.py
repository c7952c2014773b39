"""A tiny authoritative DNS server over UDP (stdlib only), for tests that need name resolution
without the Internet: it answers A queries for the names it is given, NODATA for their other
types, NXDOMAIN for every other name.

    python3 dnsserver.py ADDRESS PORT NAME=IPV4 [NAME=IPV4 ...]

Run it where the clients reach ADDRESS (e.g. with nsenter in another network namespace). It
prints "ready" once it listens."""
import socket
import struct
import sys

TYPE_A = 1
FLAGS_ANSWER = 0x8400      # QR, AA
RCODE_NXDOMAIN = 3


def parse_question(packet):
    """(name in lower case, qtype, offset after the question) of the first question."""
    labels, i = [], 12
    while True:
        n = packet[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", packet[i:i + 4])
    return ".".join(labels).lower(), qtype, i + 4


def answer(packet, names):
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    name, qtype, end = parse_question(packet)
    question = packet[12:end]
    rd = flags & 0x0100
    address = names.get(name.rstrip("."))
    if address is None:
        return struct.pack("!HHHHHH", qid, FLAGS_ANSWER | rd | RCODE_NXDOMAIN, 1, 0, 0, 0) + question
    if qtype != TYPE_A:
        return struct.pack("!HHHHHH", qid, FLAGS_ANSWER | rd, 1, 0, 0, 0) + question
    record = struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 60, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHHH", qid, FLAGS_ANSWER | rd, 1, 1, 0, 0) + question + record


def main():
    address, port = sys.argv[1], int(sys.argv[2])
    names = dict(arg.lower().split("=", 1) for arg in sys.argv[3:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    print("ready", flush=True)
    while True:
        packet, peer = s.recvfrom(4096)
        try:
            reply = answer(packet, names)
        except (ValueError, IndexError, struct.error):
            continue
        if reply is not None:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
