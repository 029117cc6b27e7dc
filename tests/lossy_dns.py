"""A small authoritative DNS server on 127.0.0.1 that loses queries on
purpose: for the inbound-check tests and the ingest benchmark against lossy
DNS (issue 14). It answers a fixed zone (TXT for SPF, DKIM and DMARC, A, MX)
over UDP and TCP on one OS-given port, and drops a configurable fraction of
queries, or all of them, without answering.

In a test:

    dns = LossyDns({"sender.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")]}, drop=0.05)
    dns.start()        # dns.port; [inbound] dns_servers = [f"127.0.0.1:{dns.port}"]
    ...
    dns.close()

As a program (the benchmark): `python3 tests/lossy_dns.py --drop 0.02 --ttl 0
--record 'loadgen.test TXT v=spf1 ip4:127.0.0.1 -all' --port-file F`; it
prints its port and its counts on SIGTERM.

A record named "*.zone" answers for every name under zone whose first
label does not start with "_". Names not in the zone get NXDOMAIN, names without records of the asked type
NOERROR with no answer; both carry an SOA whose minimum is the zone TTL, so
that resolvers cache the negative answer as they would from a real server.
"""

import argparse
import random
import signal
import socket
import struct
import sys
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class LossyDns:
    def __init__(self, records, drop=0.0, ttl=300, seed=None):
        # name (lower case, no trailing dot) -> [(type, text)]
        self.records = {}
        for name, rrs in records.items():
            self.records[name.lower().rstrip(".")] = [(t.upper(), v) for t, v in rrs]
        self.drop = drop
        self.ttl = ttl
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.queries = 0
        self.dropped = 0
        # Queries and drops by (lower-case name, type): how many packets a
        # resolver really sends per lookup.
        self.by_name = {}
        # Responses by query bytes after the id: the zone is fixed, so the
        # answer depends on nothing else.
        self.cache = {}
        self.port = None
        self._stop = threading.Event()
        self._threads = []

    # --- answers -------------------------------------------------------------

    def _txt(self, value):
        # One TXT record may hold several strings of at most 255 bytes each.
        raw = value.encode()
        parts = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        return " ".join('"' + p.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)

    def answer(self, wire):
        key = wire[2:]
        cached = self.cache.get(key)
        if cached is not None:
            return wire[:2] + cached
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if not q.question:
            r.set_rcode(dns.rcode.FORMERR)
        else:
            question = q.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            qtype = dns.rdatatype.to_text(question.rdtype)
            rrs = self.records.get(name)
            if rrs is None and "." in name and not name.startswith("_"):
                # "*.zone" stands for any name under it (but not for
                # "_dmarc."-style service names).
                parent = name.split(".", 1)[1]
                while rrs is None and parent:
                    rrs = self.records.get("*." + parent)
                    parent = parent.split(".", 1)[1] if "." in parent else ""
            if rrs is None:
                r.set_rcode(dns.rcode.NXDOMAIN)
            matching = [v for t, v in (rrs or []) if t == qtype]
            if matching:
                texts = [self._txt(v) if qtype == "TXT" else v for v in matching]
                r.answer.append(dns.rrset.from_text_list(question.name, self.ttl, "IN", qtype, texts))
            else:
                apex = dns.name.from_text(name.split(".")[-1] if "." in name else name)
                r.authority.append(dns.rrset.from_text(
                    apex, self.ttl, "IN", "SOA",
                    f"ns.{apex} hostmaster.{apex} 1 3600 600 86400 {self.ttl}"))
        out = r.to_wire()
        self.cache[key] = out[2:]
        return out

    def _lose(self, wire=None):
        key = self._key(wire)
        with self.lock:
            self.queries += 1
            lost = self.drop > 0 and self.rng.random() < self.drop
            if lost:
                self.dropped += 1
            if key is not None:
                counts = self.by_name.setdefault(key, [0, 0])
                counts[0] += 1
                counts[1] += lost
            return lost

    @staticmethod
    def _key(wire):
        try:
            q = dns.message.from_wire(wire).question[0]
        except Exception:
            return None
        return (q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype))

    def sends_histogram(self):
        """{queries asked for one name and type: how many names}, and the
        names all of whose queries were dropped."""
        with self.lock:
            hist = {}
            lost_all = []
            for key, (asked, dropped) in self.by_name.items():
                hist[asked] = hist.get(asked, 0) + 1
                if asked == dropped:
                    lost_all.append(key)
            return dict(sorted(hist.items())), lost_all

    # --- serving -------------------------------------------------------------

    def start(self, port=0):
        # UDP and TCP on the same port, as resolvers expect.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", port))
            got = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", got))
            except OSError:
                udp.close()
                tcp.close()
                if port:
                    raise
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        tcp.listen(64)
        udp.settimeout(0.2)
        tcp.settimeout(0.2)
        self.port = got
        self._udp, self._tcp = udp, tcp
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if self._lose(wire):
                continue
            try:
                self._udp.sendto(self.answer(wire), peer)
            except Exception:
                pass

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(30)
        try:
            while not self._stop.is_set():
                head = self._read(conn, 2)
                if head is None:
                    return
                wire = self._read(conn, struct.unpack("!H", head)[0])
                if wire is None:
                    return
                if self._lose(wire):
                    continue  # no answer; the connection stays open
                out = self.answer(wire)
                conn.sendall(struct.pack("!H", len(out)) + out)
        except Exception:
            pass
        finally:
            conn.close()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self._stop.set()
        for s in (getattr(self, "_udp", None), getattr(self, "_tcp", None)):
            if s:
                s.close()
        for t in self._threads:
            t.join(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drop", type=float, default=0.0, help="fraction of queries to leave unanswered (1 = all)")
    ap.add_argument("--ttl", type=int, default=300, help="TTL of every answer (0: resolvers cannot cache)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--record", action="append", default=[], metavar="'NAME TYPE VALUE'")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    records = {}
    for spec in a.record:
        name, rtype, value = spec.split(" ", 2)
        records.setdefault(name, []).append((rtype, value))
    srv = LossyDns(records, drop=a.drop, ttl=a.ttl, seed=a.seed).start(a.port)
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write(f"{srv.port}\n")
    print(f"lossy DNS on 127.0.0.1:{srv.port} (udp+tcp), drop {a.drop}, ttl {a.ttl}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    srv.close()
    print(f"queries {srv.queries}, dropped {srv.dropped}", flush=True)
    hist, lost_all = srv.sends_histogram()
    print(f"queries per name and type (queries: names) {hist}", flush=True)
    print(f"names whose every query was dropped: {len(lost_all)} {sorted(lost_all)[:20]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
