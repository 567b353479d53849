"""SQLite's own ceiling for ingest's writes, the SQLite counterpart of the
pgbench baseline in bench/run: per transaction one message insert and one
conversation update, in WAL mode with synchronous=NORMAL (the server's
settings), one connection (SQLite has one writer). Prints one JSON line."""

import json
import os
import random
import sqlite3
import sys
import time

path = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
if os.path.exists(path):
    os.remove(path)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE msg (id INTEGER PRIMARY KEY, wa_id TEXT UNIQUE, conversation_id INTEGER, body TEXT, created_at TEXT)")
db.execute("CREATE TABLE conv (id INTEGER PRIMARY KEY, last_message_at TEXT)")
db.executemany("INSERT INTO conv VALUES (?, datetime('now'))", [(i,) for i in range(1, 5001)])
n, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    c = random.randint(1, 5000)
    db.execute("BEGIN")
    db.execute("INSERT INTO msg (wa_id, conversation_id, body, created_at) VALUES (?, ?, ?, datetime('now'))",
               (f"wamid.{n}.{random.random()}", c, "Buongiorno, dov'è il mio ordine?"))
    db.execute("UPDATE conv SET last_message_at = datetime('now') WHERE id = ?", (c,))
    db.execute("COMMIT")
    n += 1
elapsed = time.perf_counter() - start
print(json.dumps({"scenario": "sqlite-baseline", "transactions": n, "seconds": elapsed, "tps": n / elapsed}))
