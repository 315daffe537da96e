#!/usr/bin/env bash
# Regenerates tests/fixtures/lz4/: LZ4 frames written by the real `lz4` CLI (apt-get install lz4)
# in the variants the decoder must handle — independent and linked (dependent) blocks, block
# checksums, content size, stored (incompressible) blocks, every block size, concatenated and
# skippable frames. The tests only read the committed outputs; they never need the CLI.
#
# Large originals are not committed: originals.tsv records name, size and sha256 of every
# original, and the tests compare the decoded bytes against it. Needs lz4, sqlite3, sha256sum.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/tests/fixtures/lz4"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
rm -f "$out"/*.lz4 "$out"/originals.tsv

# Originals. hello.txt is tiny and committed as is.
printf 'Hello, litewarden! This line repeats. Hello, litewarden! This line repeats.\n' >"$out/hello.txt"

# pages.db: a real SQLite database (4096-byte pages), like the images Litestream v0.3 compresses.
sqlite3 "$tmp/pages.db" <<'SQL'
PRAGMA page_size = 4096;
CREATE TABLE users(id INTEGER PRIMARY KEY, uuid TEXT, email TEXT, note TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 600)
INSERT INTO users
SELECT i, printf('%08x-4a1c-%04x', (i * 2654435761) % 4294967296, i % 65536) || lower(hex(randomblob(2))), 'user' || i || '@example.org',
       printf('account %d created by the import job; plan=%s', i,
              CASE i % 3 WHEN 0 THEN 'free' WHEN 1 THEN 'family' ELSE 'enterprise' END)
FROM c;
CREATE INDEX users_email ON users(email);
SQL

# rep.db: a 2.2 MiB database of repetitive rows, large enough for 1 MiB and 4 MiB blocks while
# compressing to a few KiB (the CLI shrinks the block size to fit smaller inputs).
sqlite3 "$tmp/rep.db" <<'SQL'
PRAGMA page_size = 4096;
CREATE TABLE log(id INTEGER PRIMARY KEY, line TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1100)
INSERT INTO log
SELECT i, replace(printf('%.30c', '*'), '*', 'sync ok: vault items unchanged, next check in 60s. ')
FROM c;
SQL

# mixed.bin: a compressible 64 KiB block followed by random bytes, which lz4 stores raw.
head -c 65536 "$tmp/pages.db" >"$tmp/mixed.bin"
head -c 9000 /dev/urandom >>"$tmp/mixed.bin"

z() { # z INPUT OUTPUT FLAGS...
  local input="$1" output="$2"
  shift 2
  lz4 -q -f "$@" "$input" "$out/$output"
}

z "$out/hello.txt" hello.txt.lz4                      # lz4 defaults: FLG 0x64 (tiny input: 64 KiB BD)
z "$out/hello.txt" hello.txt.B4-BX.lz4 -B4 -BX
z "$tmp/pages.db" pages.db.B4.lz4 -B4                 # independent 64 KiB blocks (upstream fixtures)
z "$tmp/pages.db" pages.db.B4D.lz4 -B4 -BD            # linked blocks
z "$tmp/pages.db" pages.db.B4D-BX.lz4 -B4 -BD -BX     # linked blocks + block checksums
z "$tmp/pages.db" pages.db.B4D-hc.lz4 -12 -B4 -BD     # high compression: long matches across blocks
z "$tmp/pages.db" pages.db.B5-size.lz4 -B5 --content-size
z "$tmp/rep.db" rep.db.lz4                            # defaults: FLG 0x64, BD 0x70, as Litestream v0.3
z "$tmp/rep.db" rep.db.B6-BX-size-nocrc.lz4 -B6 -BX --content-size --no-frame-crc
z "$tmp/mixed.bin" mixed.bin.B4.lz4 -B4               # one compressed and one stored block
z "$tmp/mixed.bin" mixed.bin.B4D-BX.lz4 -B4 -BD -BX   # stored block inside a linked frame
: >"$tmp/empty"
z "$tmp/empty" empty.lz4

# multi.lz4: frame ‖ skippable frame (magic 0x184D2A53, 6 bytes) ‖ empty frame ‖ frame.
{
  cat "$out/hello.txt.lz4"
  printf '\x53\x2a\x4d\x18\x06\x00\x00\x00skip!!'
  cat "$out/empty.lz4"
  cat "$out/hello.txt.B4-BX.lz4"
} >"$out/multi.lz4"
cat "$out/hello.txt" "$out/hello.txt" >"$tmp/multi"

{
  printf 'name\tsize\tsha256\n'
  for f in "$out/hello.txt" "$tmp/pages.db" "$tmp/rep.db" "$tmp/mixed.bin" "$tmp/empty" "$tmp/multi"; do
    printf '%s\t%s\t%s\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
  done
} >"$out/originals.tsv"

# Self-check with the reference decoder.
for f in "$out"/*.lz4; do lz4 -q -t "$f"; done
ls -l "$out"
du -sb "$out"
