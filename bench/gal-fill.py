#!/usr/bin/env python3
"""gal-fill.py - a 10,000-entry built-in directory for the GAL benchmark (issue 15, item 11).

Writes N users straight into an Outpost SQLite store that `outpost domain
add DOMAIN` has made: rows in `principals` (kind user, no password, so they
cannot log in; display name, given name, surname, title, department) and
their primary address in `addresses`. `outpost user add` takes a process
start and an argon2 hash per user (about an hour for 10,000 on the 2-core
box), so this is the batch. The search terms (`directory_terms`) are not
written here: the store computes them itself when it is next opened
(`Store::backfill_directory_terms`, the same `reindex_tx` that `user add`
runs), so the benchmark searches the index the server builds.

Names are 100 given names x 100 surnames, every pair once, address
given.surname@DOMAIN: a search for a surname prefix ("smi") finds 100
entries, a full address one.

  ./gal-fill.py --db /path/data/outpost.db --domain example.test --count 10000
"""
import argparse
import sqlite3
import sys
import time

GIVEN = """Aaron Abigail Adam Adele Adrian Agnes Alan Alice Amir Anna Arthur Astrid Beatrice Ben Bianca
Boris Carla Carlos Chen Chloe Clara Colin Dana Daniel Dora Edith Elena Elias Emil Emma Erik Eva Farah
Felix Fiona Frank Gemma George Gloria Greta Hana Hector Helen Hugo Ida Igor Ines Iris Ivan Jack Jana
Jonas Julia Karim Karl Kate Kenji Lara Leo Lina Luca Lucy Maja Marc Maria Milan Mira Nadia Nils Nora
Omar Otto Paula Peter Petra Quinn Rosa Ruth Sami Sara Simon Sofia Tara Theo Tom Una Uwe Vera Viktor
Wanda Yara Yusuf Zoe Zora Nina Oscar Pablo Rita Stella Walter""".split()
SURNAMES = """Abbott Adler Almeida Andersen Bauer Becker Berg Bianchi Blanc Braun Brooks Castro Chen Costa
Dahl Dubois Eriksen Evans Fischer Fontaine Garcia Gomez Graham Gruber Hansen Hartmann Hofmann Horvat
Ibsen Ito Jansen Jensen Jovanovic Kaiser Keller Klein Koch Kowalski Kraus Lambert Lang Larsen Lehmann
Lopez Mancini Martin Meyer Moreau Moretti Murphy Nagy Neumann Nielsen Novak Olsen Ortiz Papadopoulos
Park Peters Petrov Quinn Ramos Reyes Ricci Richter Rossi Roux Santos Schmid Schneider Schulz Silva
Smith Sousa Stein Svensson Tanaka Taylor Thomsen Torres Varga Vogel Wagner Walker Weber Werner Wilson
Wolf Wood Yamamoto Young Zimmermann Zhang Ziegler Zuber Kuhn Haas Lindqvist Moser Pohl""".split()
DEPTS = ["Sales", "Engineering", "Finance", "Support", "Legal", "Board", "Operations", "Research"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="the store's SQLite file (storage.url sqlite://...)")
    p.add_argument("--domain", default="example.test")
    p.add_argument("--count", type=int, default=10000)
    a = p.parse_args()
    assert len(GIVEN) == 100 and len(SURNAMES) == 100, (len(GIVEN), len(SURNAMES))
    if a.count > 10000:
        raise SystemExit("at most 10,000 entries (100 x 100 names)")
    db = sqlite3.connect(a.db, timeout=30)
    row = db.execute("SELECT id FROM domains WHERE name = ?", (a.domain.lower(),)).fetchone()
    if row is None:
        raise SystemExit(f"domain {a.domain} is not in {a.db}: run `outpost domain add {a.domain}` first")
    dom = row[0]
    now = int(time.time())
    t0 = time.monotonic()
    n = 0
    with db:
        for i in range(a.count):
            g, s = GIVEN[i % 100], SURNAMES[i // 100]
            addr = f"{g}.{s}@{a.domain}".lower()
            if db.execute("SELECT 1 FROM addresses WHERE address = ?", (addr,)).fetchone():
                continue
            pid = db.execute(
                "INSERT INTO principals (kind, display_name, password_hash, source, quota_bytes, created_at, "
                "given_name, surname, title, department) VALUES ('user', ?, NULL, 'internal', 0, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (f"{g} {s}", now, g, s, "Staff", DEPTS[i % len(DEPTS)])).fetchone()[0]
            db.execute("INSERT INTO addresses (address, principal_id, domain_id, is_primary) VALUES (?, ?, ?, 1)",
                       (addr, pid, dom))
            n += 1
    print(f"# gal-fill: {n} users written into {a.db} in {time.monotonic() - t0:.1f}s "
          f"(terms are indexed when the store is next opened)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
