/**
 * A TCP proxy on 127.0.0.1 that adds latency, for benchmarks over a simulated network link: put
 * it in front of a local server (the S3 server of the bench) and point the clients at it.
 *
 * Every byte from the client reaches the server `delayMs` later (so each request, on a new or a
 * kept-alive connection, pays `delayMs` before the server sees it), and a new connection pays
 * `delayMs` once more before its first byte is forwarded (the TCP handshake's round trip). The
 * answer is forwarded at once: `delayMs` is the round trip, not one way. Bytes are delayed, not
 * throttled: a body streams at loopback speed once it starts.
 *
 * It accepts any number of connections at once (Deno's listener has the OS backlog; a Python
 * proxy's default backlog of 5 drops connections and its clients retry after a second, which
 * would measure the proxy, not the link).
 *
 *   const proxy = await startLatencyProxy({ target: "127.0.0.1:9000", delayMs: 50 });
 *   … use proxy.endpoint (http://127.0.0.1:PORT) …
 *   await proxy.stop();
 */

export interface LatencyProxyOptions {
  /** `host:port` or `http://host:port` of the server behind the proxy (loopback). */
  target: string;
  /** Round-trip time added per request, in milliseconds (0 forwards at once). */
  delayMs: number;
}

export interface LatencyProxy {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  port: number;
  /** Connections accepted so far (a client that reuses connections opens few). */
  readonly connections: number;
  /** Closes the listener and every open connection. */
  stop(): Promise<void>;
}

export function startLatencyProxy(opts: LatencyProxyOptions): Promise<LatencyProxy> {
  const target = new URL(opts.target.includes("://") ? opts.target : `tcp://${opts.target}`);
  const upstream = { hostname: target.hostname, port: Number(target.port) };
  const delay = Math.max(0, opts.delayMs);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.TcpConn>();
  let connections = 0;
  let stopped = false;

  const serve = async (client: Deno.TcpConn) => {
    let server: Deno.TcpConn | undefined;
    try {
      await sleep(delay); // the handshake's round trip
      server = await Deno.connect(upstream);
      open.add(server);
      client.setNoDelay(true);
      server.setNoDelay(true);
      await Promise.all([delayedCopy(client, server, delay), delayedCopy(server, client, 0)]);
    } catch {
      // A peer closed or reset: the other side is closed below.
    } finally {
      for (const c of [client, server]) {
        if (!c) continue;
        open.delete(c);
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (stopped) {
        conn.close();
        continue;
      }
      connections++;
      open.add(conn);
      serve(conn);
    }
  })();

  const port = (listener.addr as Deno.NetAddr).port;
  return Promise.resolve({
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    async stop() {
      stopped = true;
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
      open.clear();
      await accepting;
    },
  });
}

/**
 * Copies `from` → `to`, each chunk written `delayMs` after it was read (in order; later chunks
 * keep their own arrival time, so a long body is shifted, not slowed). Ends `to`'s write side
 * when `from` ends.
 */
async function delayedCopy(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  const queue: { due: number; data: Uint8Array }[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const reading = (async () => {
    try {
      for (;;) {
        const buf = new Uint8Array(64 << 10);
        const n = await from.read(buf);
        if (n === null) break;
        queue.push({ due: performance.now() + delayMs, data: buf.subarray(0, n) });
        wake?.();
      }
    } finally {
      ended = true;
      wake?.();
    }
  })();
  reading.catch(() => {}); // a read error ends the copy like an end of stream
  for (;;) {
    const next = queue.shift();
    if (!next) {
      if (ended) break;
      await new Promise<void>((r) => wake = r);
      wake = undefined;
      continue;
    }
    const wait = next.due - performance.now();
    if (wait > 0) await sleep(wait);
    let at = 0;
    while (at < next.data.length) at += await to.write(next.data.subarray(at));
  }
  await to.closeWrite().catch(() => {});
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
