/**
 * Stands in for Vaultwarden in tests/ship/entrypoint_test.ts (and every test that needs an app
 * behaving like Vaultwarden for its data folder): the app the container gate starts under
 * `litestream replicate -exec`. Like Vaultwarden it
 * - opens the SQLite database in WAL mode; on a first boot it creates it with Vaultwarden 1.37.2's
 *   real schema (the empty fixture, installed by rename so Litestream never sees half a file);
 * - creates `rsa_key.pem` (a real 2048-bit RSA private key, PKCS#1 PEM as Vaultwarden's OpenSSL
 *   writes it) when it is missing, and keeps it when it is there;
 * - writes attachments and file sends in the v2 upload order: the row first (with the declared
 *   size), the body later (in chunks, optionally slowly), then the row's size set to the real one;
 * - deletes attachments (row, then file) and sends (row, then `sends/<uuid>/` recursively);
 * - writes `config.json` (the admin page's settings);
 * then writes one row for this boot, appends one JSON line to the report file (the boot labels it
 * finds, what it found in the data folder before touching it, whether it generated the key), and
 * serves until SIGTERM.
 *
 * Everything is deterministic but the key: ids, uuids and bodies derive from the names a test
 * gives (see {@link attachmentRel}, {@link sendRel}, {@link fileBody}).
 *
 * Environment: FAKE_VW_DB (database path), FAKE_VW_BOOT (label of this boot), FAKE_VW_REPORT
 * (report file). Optional: FAKE_VW_SCRIPT (a JSON array of {@link FakeAction}s run at start,
 * before the report line is written), FAKE_VW_CONTROL (a directory polled every 50 ms for command
 * files, see {@link sendCommand}); DATA_FOLDER (default: the database's directory),
 * ATTACHMENTS_FOLDER, SENDS_FOLDER, RSA_KEY_FILENAME (without `.pem`), CONFIG_FILE, read as
 * Vaultwarden reads them.
 */
import { createHash } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { openDatabaseReadOnly } from "../../src/lib/sqlite.ts";
import { bytes } from "../support/bytes.ts";
import { createItemsTable, openWalDatabase } from "../support/sqlite_writer.ts";

const FIXTURES = new URL("../fixtures/vaultwarden/", import.meta.url).pathname;
/** The empty database a first boot starts from (Vaultwarden creates it with its migrations). */
const EMPTY_SCHEMA = `${FIXTURES}vw-1.37.2.sqlite3`;
/** Where a user and an item to copy come from when the database has none. */
const TEMPLATE = `${FIXTURES}vw-1.37.2-populated.sqlite3`;
const TEMPLATE_USER = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601";
const TEMPLATE_CIPHER = "a6ead519-a516-46a3-9485-01013068d86e";

/** One thing the app does, as a test scripts it. */
export type FakeAction =
  /**
   * An attachment upload (v2): the row with `declaredSize` (default `size`), then the body of
   * `size` bytes in `chunks` writes `chunkDelayMs` apart, then `file_size` = `size`. `body: false`
   * stops after the row (a client that gave up). `cipher` names the item (default: `name`).
   */
  | {
    op: "attach";
    name: string;
    size: number;
    cipher?: string;
    declaredSize?: number;
    chunks?: number;
    chunkDelayMs?: number;
    body?: boolean;
  }
  /** A file send, the same way: `sends` row (atype 1, data.id, data.size), then the body. */
  | {
    op: "send";
    name: string;
    size: number;
    declaredSize?: number;
    chunks?: number;
    chunkDelayMs?: number;
    body?: boolean;
  }
  /** Deletes an attachment: the row, then the file. */
  | { op: "delete-attachment"; name: string; cipher?: string }
  /** Deletes a send: the row, then `sends/<uuid>/` recursively. */
  | { op: "delete-send"; name: string }
  /** Saves settings as the admin page does: the whole `config.json`. */
  | { op: "config"; settings: Record<string, unknown> }
  /** Replaces `rsa_key.pem` with a new key (what a lost key costs: every token invalid). */
  | { op: "new-key" }
  | { op: "sleep"; ms: number };

export interface FakeActionResult {
  op: FakeAction["op"];
  name?: string;
  /** The file's path relative to its folder's parent, as litewarden names it. */
  rel?: string;
  size?: number;
  sha256?: string;
}

/** A file in the data folder, as the report lists it. */
export interface FakeFile {
  size: number;
  sha256: string;
}

export interface FakeVaultwardenReport {
  boot: string;
  pid: number;
  /** Boot labels found in the database after this boot's row was written, oldest first. */
  boots?: string[];
  /**
   * What the data folder held when the app started, before it touched anything: `rsa_key.pem`,
   * `config.json`, `attachments/<cipher>/<id>`, `sends/<uuid>/<file_id>` (database files left out).
   */
  found?: Record<string, FakeFile>;
  /** The key it serves with: generated at this start (missing before), and its SHA-256. */
  key?: { generated: boolean; sha256: string };
  /** Results of FAKE_VW_SCRIPT. */
  script?: FakeActionResult[];
  error?: string;
}

// --- Deterministic names and bodies -------------------------------------------------------------

/** SHA-256 of `input` in hex: names become ids deterministically. */
function hex(input: string): string {
  return createHash("sha256").update(input).digest("hex");
}

function uuidOf(input: string): string {
  const h = hex(input);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${
    h.slice(20, 32)
  }`;
}

/** The item an attachment belongs to. */
export const cipherUuid = (cipher: string) => uuidOf(`cipher:${cipher}`);
/** An attachment id: 20 lower-case hex characters, as Vaultwarden makes them. */
export const attachmentId = (name: string) => hex(`attachment:${name}`).slice(0, 20);
export const sendUuid = (name: string) => uuidOf(`send:${name}`);
/** A send's file id: 64 hex characters. */
export const sendFileId = (name: string) => hex(`send-file:${name}`);

/** `attachments/<cipher_uuid>/<id>`. */
export function attachmentRel(name: string, cipher = name): string {
  return `attachments/${cipherUuid(cipher)}/${attachmentId(name)}`;
}

/** `sends/<send_uuid>/<file_id>`. */
export function sendRel(name: string): string {
  return `sends/${sendUuid(name)}/${sendFileId(name)}`;
}

/** The body the app writes for `name` (deterministic bytes). */
export function fileBody(name: string, size: number): Uint8Array {
  return bytes(size, parseInt(hex(`body:${name}`).slice(0, 7), 16) + 1);
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- Driving it from a test ---------------------------------------------------------------------

/**
 * Runs `actions` in the app through its FAKE_VW_CONTROL directory and resolves with their results
 * (rejects with the app's error, or after `timeoutMs`). Command files are written by rename, so
 * the app never reads half of one; they run one at a time, in name order.
 */
export async function sendCommand(
  controlDir: string,
  actions: FakeAction[],
  timeoutMs = 30_000,
): Promise<FakeActionResult[]> {
  const id = `${Date.now().toString().padStart(15, "0")}-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${controlDir}/${id}.tmp`, JSON.stringify(actions));
  await Deno.rename(`${controlDir}/${id}.tmp`, `${controlDir}/${id}.json`);
  const resultPath = `${controlDir}/${id}.result`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = JSON.parse(await Deno.readTextFile(resultPath)) as {
        results?: FakeActionResult[];
        error?: string;
      };
      if (r.error !== undefined) throw new Error(`fake_vaultwarden: ${r.error}`);
      return r.results ?? [];
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`fake_vaultwarden: command ${id} not done after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- The app ------------------------------------------------------------------------------------

interface Folder {
  data: string;
  attachments: string;
  sends: string;
  rsaKey: string;
  config: string;
}

function folderFromEnv(db: string): Folder {
  const data = Deno.env.get("DATA_FOLDER") ?? db.replace(/\/[^/]*$/, "");
  return {
    data,
    attachments: Deno.env.get("ATTACHMENTS_FOLDER") ?? `${data}/attachments`,
    sends: Deno.env.get("SENDS_FOLDER") ?? `${data}/sends`,
    rsaKey: `${Deno.env.get("RSA_KEY_FILENAME") ?? `${data}/rsa_key`}.pem`,
    config: Deno.env.get("CONFIG_FILE") ?? `${data}/config.json`,
  };
}

/** What the data folder holds now (no database files, no Litestream meta directory). */
async function survey(folder: Folder): Promise<Record<string, FakeFile>> {
  const found: Record<string, FakeFile> = {};
  const add = async (rel: string, path: string) => {
    try {
      const b = await Deno.readFile(path);
      found[rel] = { size: b.length, sha256: await sha256Hex(b) };
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  };
  await add("rsa_key.pem", folder.rsaKey);
  await add("config.json", folder.config);
  for (const [kind, dir] of [["attachments", folder.attachments], ["sends", folder.sends]]) {
    for (const parent of await entries(dir)) {
      for (const file of await entries(`${dir}/${parent}`)) {
        await add(`${kind}/${parent}/${file}`, `${dir}/${parent}/${file}`);
      }
    }
  }
  return found;
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return [];
    }
    throw err;
  }
  return names.sort();
}

/** A 2048-bit RSA key as OpenSSL's `Rsa::private_key_to_pem` writes it (PKCS#1). */
async function newRsaKeyPem(): Promise<string> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const pkcs1 = pkcs1FromPkcs8(pkcs8);
  const b64 = btoa(String.fromCharCode(...pkcs1)).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN RSA PRIVATE KEY-----\n${b64}\n-----END RSA PRIVATE KEY-----\n`;
}

/** PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING (RSAPrivateKey) }. */
function pkcs1FromPkcs8(der: Uint8Array): Uint8Array {
  const tlv = (at: number) => {
    let len = der[at + 1];
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i];
      header += n;
    }
    return { tag: der[at], start: at + header, end: at + header + len };
  };
  const outer = tlv(0);
  const version = tlv(outer.start);
  const algorithm = tlv(version.end);
  const key = tlv(algorithm.end);
  if (outer.tag !== 0x30 || key.tag !== 0x04) throw new Error("unexpected PKCS#8 layout");
  return der.slice(key.start, key.end);
}

/** Vaultwarden's (diesel's) text form of a UTC time: `2026-11-20 09:00:00.123000000`. */
function sqlTime(d = new Date()): string {
  return d.toISOString().replace("T", " ").replace("Z", "000000");
}

/** Writes `body` to `path` in `chunks` writes `delayMs` apart (a file visible while written). */
async function writeSlowly(path: string, body: Uint8Array, chunks: number, delayMs: number) {
  await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
  const f = await Deno.open(path, { write: true, createNew: true });
  try {
    const step = Math.max(1, Math.ceil(body.length / Math.max(1, chunks)));
    for (let at = 0; at < body.length; at += step) {
      if (at > 0 && delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      await f.write(body.subarray(at, Math.min(body.length, at + step)));
    }
  } finally {
    f.close();
  }
}

class FakeVault {
  constructor(private db: DatabaseSync, private folder: Folder) {}

  async run(a: FakeAction): Promise<FakeActionResult> {
    switch (a.op) {
      case "attach":
        return await this.attach(a);
      case "send":
        return await this.send(a);
      case "delete-attachment": {
        const id = attachmentId(a.name);
        const cipher = cipherUuid(a.cipher ?? a.name);
        this.db.prepare("DELETE FROM attachments WHERE id = ?").run(id);
        await Deno.remove(`${this.folder.attachments}/${cipher}/${id}`).catch(() => {});
        return { op: a.op, name: a.name, rel: attachmentRel(a.name, a.cipher) };
      }
      case "delete-send": {
        const uuid = sendUuid(a.name);
        this.db.prepare("DELETE FROM sends WHERE uuid = ?").run(uuid);
        await Deno.remove(`${this.folder.sends}/${uuid}`, { recursive: true }).catch(() => {});
        return { op: a.op, name: a.name, rel: sendRel(a.name) };
      }
      case "config": {
        const text = JSON.stringify(a.settings, null, 2);
        await Deno.writeTextFile(this.folder.config, text);
        return {
          op: a.op,
          rel: "config.json",
          size: text.length,
          sha256: await sha256Hex(new TextEncoder().encode(text)),
        };
      }
      case "new-key": {
        const pem = new TextEncoder().encode(await newRsaKeyPem());
        await Deno.writeFile(this.folder.rsaKey, pem);
        return { op: a.op, rel: "rsa_key.pem", size: pem.length, sha256: await sha256Hex(pem) };
      }
      case "sleep":
        await new Promise((r) => setTimeout(r, a.ms));
        return { op: a.op };
    }
  }

  private async attach(a: Extract<FakeAction, { op: "attach" }>): Promise<FakeActionResult> {
    const cipher = this.ensureCipher(cipherUuid(a.cipher ?? a.name));
    const id = attachmentId(a.name);
    const body = fileBody(a.name, a.size);
    // v2: the row exists (with the size the client declared) before the body is uploaded.
    this.db.prepare(
      "INSERT INTO attachments (id, cipher_uuid, file_name, file_size, akey) VALUES (?, ?, ?, ?, ?)",
    ).run(id, cipher, `2.${btoa(a.name)}|ZmFrZQ==|ZmFrZQ==`, a.declaredSize ?? a.size, "2.fake");
    this.db.prepare("UPDATE ciphers SET updated_at = ? WHERE uuid = ?").run(sqlTime(), cipher);
    const rel = attachmentRel(a.name, a.cipher);
    if (a.body === false) return { op: a.op, name: a.name, rel, size: a.size };
    await writeSlowly(
      `${this.folder.attachments}/${cipher}/${id}`,
      body,
      a.chunks ?? 1,
      a.chunkDelayMs ?? 0,
    );
    this.db.prepare("UPDATE attachments SET file_size = ? WHERE id = ?").run(a.size, id);
    return { op: a.op, name: a.name, rel, size: a.size, sha256: await sha256Hex(body) };
  }

  private async send(a: Extract<FakeAction, { op: "send" }>): Promise<FakeActionResult> {
    const uuid = sendUuid(a.name);
    const fileId = sendFileId(a.name);
    const body = fileBody(a.name, a.size);
    const data = (size: number) =>
      JSON.stringify({ fileName: "2.ZmFrZQ==|ZmFrZQ==|ZmFrZQ==", id: fileId, size, sizeName: "" });
    const now = new Date();
    this.db.prepare(
      `INSERT INTO sends (uuid, user_uuid, name, atype, data, akey, access_count, creation_date,
        revision_date, deletion_date, disabled) VALUES (?, ?, ?, 1, ?, ?, 0, ?, ?, ?, 0)`,
    ).run(
      uuid,
      this.ensureUser(),
      "2.ZmFrZQ==|ZmFrZQ==|ZmFrZQ==",
      data(a.declaredSize ?? a.size),
      "2.fake",
      sqlTime(now),
      sqlTime(now),
      sqlTime(new Date(now.getTime() + 7 * 86_400_000)),
    );
    const rel = sendRel(a.name);
    if (a.body === false) return { op: a.op, name: a.name, rel, size: a.size };
    await writeSlowly(
      `${this.folder.sends}/${uuid}/${fileId}`,
      body,
      a.chunks ?? 1,
      a.chunkDelayMs ?? 0,
    );
    this.db.prepare("UPDATE sends SET data = ? WHERE uuid = ?").run(data(a.size), uuid);
    return { op: a.op, name: a.name, rel, size: a.size, sha256: await sha256Hex(body) };
  }

  /** A user to own items and sends: the first there is, else one copied from the template. */
  private ensureUser(): string {
    const row = this.db.prepare("SELECT uuid FROM users ORDER BY uuid LIMIT 1").get();
    if (row) return String(row.uuid);
    this.copyFromTemplate("users", TEMPLATE_USER, {});
    return TEMPLATE_USER;
  }

  private ensureCipher(uuid: string): string {
    if (this.db.prepare("SELECT 1 FROM ciphers WHERE uuid = ?").get(uuid)) return uuid;
    const user = this.ensureUser();
    this.copyFromTemplate("ciphers", TEMPLATE_CIPHER, {
      uuid,
      user_uuid: user,
      organization_uuid: null,
      created_at: sqlTime(),
      updated_at: sqlTime(),
    });
    return uuid;
  }

  /** Inserts a copy of the template database's row `uuid` of `table`, with `changes` applied. */
  private copyFromTemplate(table: string, uuid: string, changes: Record<string, unknown>) {
    const tpl = openDatabaseReadOnly(TEMPLATE);
    try {
      const row = tpl.prepare(`SELECT * FROM ${table} WHERE uuid = ?`).get(uuid);
      if (!row) throw new Error(`template has no ${table} row ${uuid}`);
      const values = { ...row, ...changes };
      const cols = Object.keys(values);
      this.db.prepare(
        `INSERT INTO ${table} (${cols.map((c) => `"${c}"`).join(", ")}) VALUES (${
          cols.map(() => "?").join(", ")
        })`,
      ).run(...cols.map((c) => values[c] as string | number | null | Uint8Array));
    } finally {
      tpl.close();
    }
  }
}

function env(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`fake_vaultwarden: ${name} is not set`);
  return v;
}

/** A first boot: Vaultwarden's schema, installed whole (temp file, then rename). */
async function createDatabase(path: string) {
  try {
    await Deno.lstat(path);
    return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const temp = `${path}.fake-vw-${Deno.pid}.tmp`;
  await Deno.copyFile(EMPTY_SCHEMA, temp);
  await Deno.rename(temp, path);
}

/** Runs command files from `dir` one at a time, in name order, forever. */
async function serveCommands(vault: FakeVault, dir: string) {
  const done = new Set<string>();
  for (;;) {
    const pending = (await entries(dir)).filter((n) => n.endsWith(".json") && !done.has(n));
    for (const name of pending) {
      done.add(name);
      const base = `${dir}/${name.replace(/\.json$/, "")}`;
      let outcome: { results?: FakeActionResult[]; error?: string };
      try {
        const actions = JSON.parse(await Deno.readTextFile(`${dir}/${name}`)) as FakeAction[];
        const results: FakeActionResult[] = [];
        for (const a of actions) results.push(await vault.run(a));
        outcome = { results };
      } catch (err) {
        outcome = { error: err instanceof Error ? err.message : String(err) };
      }
      await Deno.writeTextFile(`${base}.result.tmp`, JSON.stringify(outcome));
      await Deno.rename(`${base}.result.tmp`, `${base}.result`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (import.meta.main) {
  const report = env("FAKE_VW_REPORT");
  const boot = env("FAKE_VW_BOOT");
  const write = (r: FakeVaultwardenReport) =>
    Deno.writeTextFileSync(report, JSON.stringify(r) + "\n", { append: true });
  try {
    const dbPath = env("FAKE_VW_DB");
    const folder = folderFromEnv(dbPath);
    const found = await survey(folder);
    let generated = false;
    if (!found["rsa_key.pem"]) {
      // Vaultwarden's initialize_keys: a missing key is made anew (every client logged out).
      await Deno.writeTextFile(folder.rsaKey, await newRsaKeyPem());
      generated = true;
    }
    const key = { generated, sha256: await sha256Hex(await Deno.readFile(folder.rsaKey)) };
    await createDatabase(dbPath);
    const db = openWalDatabase(dbPath);
    createItemsTable(db, "boots");
    db.prepare("INSERT INTO boots (label, body) VALUES (?, ?)").run(boot, new Date().toISOString());
    const boots = db.prepare("SELECT label FROM boots ORDER BY id").all().map((r) =>
      String(r.label)
    );
    const vault = new FakeVault(db, folder);
    const script: FakeActionResult[] = [];
    const scriptText = Deno.env.get("FAKE_VW_SCRIPT");
    for (const a of scriptText ? JSON.parse(scriptText) as FakeAction[] : []) {
      script.push(await vault.run(a));
    }
    write({ boot, pid: Deno.pid, boots, found, key, script });
    const stop = () => {
      db.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
    const control = Deno.env.get("FAKE_VW_CONTROL");
    if (control) {
      serveCommands(vault, control).catch((err) => {
        write({ boot, pid: Deno.pid, error: `control: ${err}` });
        Deno.exit(1);
      });
    }
    setInterval(() => {}, 60_000); // serve until a signal arrives
  } catch (err) {
    write({ boot, pid: Deno.pid, error: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
}
