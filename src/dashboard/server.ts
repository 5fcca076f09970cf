// The dashboard's HTTP server: the page, its JSON APIs, Prometheus metrics and a Server-Sent Events stream.
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { FleetBoard } from "./fleet.js";
import type { ChartLayout } from "./layout.js";
import type { ActorBoard } from "./model.js";

/** What the page's header shows about the process: who it is and its running totals. */
export interface ProcessInfo {
  readonly role: "receiver" | "sender";
  readonly title: string;
  readonly facts: ReadonlyArray<readonly [string, string]>;
  readonly counters: ReadonlyArray<readonly [string, number]>;
}

export interface DashboardServerOptions {
  readonly board: ActorBoard;
  readonly registry: Registry;
  readonly info: () => ProcessInfo;
  readonly charts: ReadonlyArray<ChartLayout>;
  /** The receiver's fleet view, streamed beside the board. */
  readonly fleet?: FleetBoard;
  /** Loopback unless told otherwise: the page shows file names and sender addresses. */
  readonly host?: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** Least time between two updates to a browser, however fast actors change. */
  readonly throttleMs?: number;
  readonly heartbeatMs?: number;
}

export interface DashboardServer {
  readonly url: string;
  readonly port: number;
  /** Browsers connected to the live stream. */
  readonly clients: () => number;
  readonly close: () => Promise<void>;
}

const PAGE_FILES: Readonly<Record<string, string>> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

// Everything the page needs comes from this server: it works on a machine with no internet.
const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** Bytes waiting for one slow browser before it is disconnected. */
const MAX_BUFFERED = 4 << 20;

const pageDir = new URL("./page/", import.meta.url);

interface Client {
  readonly res: ServerResponse;
  rev: number;
  fleetRev: number;
  info: string;
}

/**
 * An event's id: the board's revision, and with a fleet view also the fleet's (`12-340`), so a
 * reconnecting browser gets what it missed of both.
 */
const eventId = (rev: number, fleetRev: number | undefined): string => (fleetRev === undefined ? `${rev}` : `${rev}-${fleetRev}`);

const parseEventId = (header: string | string[] | undefined): { rev: number; fleetRev: number } | undefined => {
  const m = typeof header === "string" ? /^(\d{1,15})(?:-(\d{1,15}))?$/.exec(header) : null;
  return m ? { rev: Number(m[1]), fleetRev: Number(m[2] ?? 0) } : undefined;
};

/**
 * The dashboard's HTTP side: the page, `/api/state`, `/api/charts`, `/metrics`, and `/events`, a
 * Server-Sent Events stream that sends what changed at most once per `throttleMs`.
 */
export const startDashboardServer = async (o: DashboardServerOptions): Promise<DashboardServer> => {
  const host = o.host ?? "127.0.0.1";
  const throttleMs = o.throttleMs ?? 250;
  const heartbeatMs = o.heartbeatMs ?? 15_000;
  const files = new Map<string, Buffer>();
  for (const name of new Set(Object.values(PAGE_FILES))) files.set(name, await readFile(new URL(name, pageDir)));
  const charts = JSON.stringify(o.charts);
  const clients = new Set<Client>();
  let port = 0;

  // A page on another site must not read this one through a name that resolves to loopback.
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (!LOOPBACK.has(host)) return true;
    const h = (req.headers.host ?? "").toLowerCase();
    return [...LOOPBACK].some((name) => h === `${name.includes(":") ? `[${name}]` : name}:${port}`);
  };

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: ServerResponse, value: unknown) => send(res, 200, "application/json; charset=utf-8", JSON.stringify(value));

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": "text/event-stream; charset=utf-8",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    const about = o.info();
    const last = parseEventId(req.headers["last-event-id"]);
    const fleet = o.fleet;
    // A reconnecting browser still holds its state: send it what it missed, not everything.
    const resume = last !== undefined && last.rev <= o.board.rev && (!fleet || last.fleetRev <= fleet.rev);
    const client: Client = { res, rev: o.board.rev, fleetRev: fleet?.rev ?? 0, info: JSON.stringify(about) };
    const id = eventId(o.board.rev, fleet?.rev);
    res.write(`retry: 2000\n`);
    if (resume)
      res.write(
        `id: ${id}\nevent: update\ndata: ${JSON.stringify({ process: about, delta: o.board.delta(last.rev), fleet: fleet?.delta(last.fleetRev) })}\n\n`,
      );
    else
      res.write(`id: ${id}\nevent: init\ndata: ${JSON.stringify({ process: about, board: o.board.state(), fleet: fleet?.state() })}\n\n`);
    clients.add(client);
    // A browser that goes away is the normal end of a stream, not a failure.
    req.on("close", () => clients.delete(client));
    res.on("error", () => clients.delete(client));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!hostAllowed(req)) return send(res, 421, "text/plain; charset=utf-8", "unexpected Host header\n");
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "GET only\n");
    const path = new URL(req.url ?? "/", "http://dashboard").pathname;
    const page = PAGE_FILES[path];
    if (page) return send(res, 200, CONTENT_TYPES[page.split(".").pop() ?? ""] ?? "application/octet-stream", files.get(page)!);
    if (path === "/events") return openStream(req, res);
    if (path === "/api/state") return json(res, { process: o.info(), board: o.board.state(), states: o.board.countByState() });
    if (path === "/api/fleet")
      return o.fleet ? json(res, o.fleet.state()) : send(res, 404, "text/plain; charset=utf-8", "no fleet view here\n");
    if (path === "/api/charts") return send(res, 200, "application/json; charset=utf-8", charts);
    if (path.startsWith("/api/actors/")) {
      const actor = o.board.get(decodeURIComponent(path.slice("/api/actors/".length)));
      return actor ? json(res, actor) : send(res, 404, "text/plain; charset=utf-8", "no such actor\n");
    }
    if (path === "/metrics") return send(res, 200, o.registry.contentType, await o.registry.metrics());
    return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const text = `dashboard error: ${e instanceof Error ? e.message : String(e)}\n`;
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", text);
      else res.destroy(e instanceof Error ? e : undefined);
    });
  });

  const flush = () => {
    if (clients.size === 0) return;
    const about = o.info();
    const info = JSON.stringify(about);
    const rev = o.board.rev;
    const fleet = o.fleet;
    const fleetRev = fleet?.rev ?? 0;
    // Clients that hold the same revisions get the same text: build it once.
    const frames = new Map<string, string>();
    for (const c of clients) {
      if (c.res.destroyed || (c.rev === rev && c.fleetRev === fleetRev && c.info === info)) continue;
      // A browser that cannot keep up is cut off; it reconnects and starts from a fresh state.
      if (c.res.writableLength > MAX_BUFFERED) {
        clients.delete(c);
        c.res.destroy();
        continue;
      }
      const key = `${c.rev}|${c.fleetRev}|${c.info === info}`;
      let frame = frames.get(key);
      if (frame === undefined) {
        const body = {
          process: c.info === info ? undefined : about,
          delta: o.board.delta(c.rev),
          fleet: fleet && c.fleetRev !== fleetRev ? fleet.delta(c.fleetRev) : undefined,
        };
        frame = `id: ${eventId(rev, fleet?.rev)}\nevent: update\ndata: ${JSON.stringify(body)}\n\n`;
        frames.set(key, frame);
      }
      c.res.write(frame);
      c.rev = rev;
      c.fleetRev = fleetRev;
      c.info = info;
    }
  };
  const ticker = setInterval(flush, throttleMs);
  const heartbeat = setInterval(() => {
    for (const c of clients) if (!c.res.destroyed) c.res.write(`: keep-alive\n\n`);
  }, heartbeatMs);
  ticker.unref();
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    clients: () => clients.size,
    close: async () => {
      clearInterval(ticker);
      clearInterval(heartbeat);
      for (const c of clients) c.res.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
