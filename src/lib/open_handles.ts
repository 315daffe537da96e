/**
 * Which other processes have a file open, from Linux's /proc/<pid>/fd links. SQLite's own locks
 * are POSIX advisory locks that Deno cannot test (no fcntl), and a lock is held only while a
 * transaction runs; an open descriptor is what every SQLite user (the app, Litestream, which keeps
 * a read transaction open on the database) holds for as long as it uses the file.
 * Processes of other users are invisible without privileges; elsewhere than Linux nothing is found.
 */

export interface FileHolder {
  pid: number;
  /** The process name (/proc/<pid>/comm), e.g. `litestream`. */
  command: string;
  /** Which of the asked paths it has open. */
  path: string;
}

/** Processes other than this one that have any of `paths` open (absolute paths). */
export function processesHolding(paths: readonly string[]): FileHolder[] {
  const wanted = new Map<string, string>();
  for (const p of paths) {
    wanted.set(p, p);
    try {
      wanted.set(Deno.realPathSync(p), p); // the links name the resolved path
    } catch {
      // Not there (yet): only its own name can match.
    }
  }
  const found: FileHolder[] = [];
  let procs: Iterable<Deno.DirEntry>;
  try {
    procs = Deno.readDirSync("/proc");
  } catch {
    return found; // no /proc: not Linux
  }
  for (const proc of procs) {
    if (!/^\d+$/.test(proc.name)) continue;
    const pid = Number(proc.name);
    if (pid === Deno.pid) continue;
    let fds: Iterable<Deno.DirEntry>;
    try {
      fds = Deno.readDirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited, or another user's
    }
    const held = new Set<string>();
    try {
      for (const fd of fds) {
        let target: string;
        try {
          target = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
        } catch {
          continue; // closed meanwhile
        }
        const asked = wanted.get(target.replace(/ \(deleted\)$/, ""));
        if (asked !== undefined) held.add(asked);
      }
    } catch {
      continue; // the process exited while its descriptors were read
    }
    if (held.size === 0) continue;
    let command = "?";
    try {
      command = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
    } catch {
      // Exited meanwhile: still report the pid.
    }
    for (const path of held) found.push({ pid, command, path });
  }
  return found;
}
