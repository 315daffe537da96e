/**
 * Environment and path expansion exactly as Litestream does it (LITESTREAM-FORMATS §5.1):
 * Go's `os.Expand` over the raw config text, and `expand()` for database and file-replica paths.
 * Pure: the environment, working directory and home directory are passed in.
 */
import { UsageError } from "../errors.ts";

export type Env = Record<string, string | undefined>;

/**
 * Go's `os.Expand(s, mapping)`, byte for byte (ASCII rules; other characters pass through):
 * - `$NAME` (NAME = `[A-Za-z0-9_]+`) and `${NAME}` (anything up to the next `}`) → `mapping(NAME)`;
 * - `$` followed by one of `*#$@!?-0123456789` (or `${x}` of one of them) is a one-character name,
 *   so `$$` → `mapping("$")` (normally empty) and `$1` → `mapping("1")`;
 * - `${}` is removed, an unterminated `${` loses those two characters;
 * - any other `$` (before a space, `%`, `.`, end of text, …) stays as it is.
 */
export function goExpand(s: string, mapping: (name: string) => string): string {
  let out = "";
  let i = 0; // start of the pending literal run
  for (let j = 0; j < s.length; j++) {
    if (s[j] !== "$" || j + 1 >= s.length) continue;
    out += s.slice(i, j);
    const [name, w] = shellName(s.slice(j + 1));
    if (name === "" && w > 0) {
      // Bad syntax (`${}` or an unterminated `${`): Go eats the characters.
    } else if (name === "") {
      out += "$"; // not followed by a name: the dollar stays
    } else {
      out += mapping(name);
    }
    j += w;
    i = j + 1;
  }
  return i === 0 ? s : out + s.slice(i);
}

function isShellSpecial(c: string): boolean {
  return "*#$@!?-0123456789".includes(c);
}

function isAlphaNum(c: string): boolean {
  return c === "_" || (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
}

/** Go's `getShellName`: the name at the start of `s` and how many characters it used. */
function shellName(s: string): [string, number] {
  if (s[0] === "{") {
    if (s.length > 2 && isShellSpecial(s[1]) && s[2] === "}") return [s[1], 3];
    for (let i = 1; i < s.length; i++) {
      if (s[i] === "}") return i === 1 ? ["", 2] : [s.slice(1, i), i + 1];
    }
    return ["", 1];
  }
  if (isShellSpecial(s[0])) return [s[0], 1];
  let i = 0;
  while (i < s.length && isAlphaNum(s[i])) i++;
  return [s.slice(0, i), i];
}

/**
 * Litestream's config expansion: unset variables become "", and (v0.5) `$PID`/`${PID}` is the
 * process id. `pid` is passed in to keep this pure; `unset` collects the names that were not set,
 * so an error about an empty field can name the variable behind it.
 */
export function expandConfigText(
  text: string,
  env: Env,
  pid?: number,
  unset?: Set<string>,
): string {
  return goExpand(text, (name) => {
    if (name === "PID" && pid !== undefined) return String(pid);
    if (env[name] === undefined) unset?.add(name);
    return env[name] ?? "";
  });
}

/** POSIX `path.Clean`: no `.`/`..` segments, no doubled or trailing `/` ("" → "."). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/**
 * Litestream's `expand()`: `~` and `~/…` → the home directory, anything else made absolute
 * against `cwd` and cleaned (Go's `filepath.Abs`). `what` names the path in errors.
 */
export function expandPath(p: string, cwd: string, env: Env, what = "path"): string {
  if (p === "~" || p.startsWith("~/")) {
    const home = env.HOME;
    if (!home) throw new UsageError(`cannot expand ${what} ${p}: HOME is not set`);
    return cleanPath(home + "/" + p.slice(1));
  }
  if (p.startsWith("/")) return cleanPath(p);
  return cleanPath(cwd + "/" + p);
}

/**
 * v0.5 strips SQLite connection-string prefixes from database paths (`sqlite:///x.db`,
 * `sqlite3://x.db`).
 */
export function stripSqlitePrefix(s: string): string {
  for (const prefix of ["sqlite3://", "sqlite://"]) {
    if (s.startsWith(prefix)) return s.slice(prefix.length);
  }
  return s;
}
