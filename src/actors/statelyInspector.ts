// Stately's inspector for one process's actors: their inspection events, over a WebSocket, to a
// Stately inspector server (`tsync inspector`, or `createInspectorServer` of @statelyai/inspect).
import { createInspector, type StatelyInspectionEvent } from "@statelyai/inspect";
import { Effect, type Scope } from "effect";
import { configure } from "safe-stable-stringify";
import { WebSocket } from "ws";
import type { InspectionEvent } from "xstate";

/** Events kept while the inspector server is away; the oldest go first. */
const maxDeferred = 500;
const reconnectMs = 5_000;
/** Deep enough for a machine's context, shallow enough that a cycle or a large tree stays small. */
const depthLimit = 8;

/**
 * Chunks and small files travel in events as bytes: the inspector gets their length. Done before
 * serialization, because a Buffer turns itself into an array of numbers (a megabyte of JSON per
 * chunk) before any replacer sees it.
 */
const withoutBytes = (value: unknown, depth = 4): unknown => {
  if (ArrayBuffer.isView(value)) return { bytes: value.byteLength };
  if (depth === 0 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => withoutBytes(v, depth - 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutBytes(v, depth - 1)]));
};

const stringify = configure({ maximumDepth: depthLimit, circularValue: "[circular]" });

/**
 * The WebSocket side of the inspector. Not the package's own adapter: that one retries a failed
 * connection on a timer that outlives `stop`, which would keep a stopping tsync alive, and it
 * sends buffers as arrays of numbers.
 */
class InspectorSocket {
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Said once per outage, not every retry. */
  private warned = false;
  private readonly deferred: string[] = [];

  constructor(
    private readonly url: string,
    private readonly warn: (line: string) => void,
  ) {}

  start(): void {
    if (this.stopped || this.ws) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on("open", () => {
      this.warned = false;
      for (const line of this.deferred.splice(0)) ws.send(line);
    });
    ws.on("error", (e) => {
      if (!this.warned) this.warn(`stately_inspect_url ${this.url}: ${e.message}; trying again every ${reconnectMs / 1000} s`);
      this.warned = true;
    });
    ws.on("close", () => {
      this.ws = undefined;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.start(), reconnectMs);
      // The inspector never keeps the process alive.
      this.timer.unref();
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }

  send(event: StatelyInspectionEvent): void {
    const line = stringify(event);
    if (line === undefined) return;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(line);
    else {
      this.deferred.push(line);
      if (this.deferred.length > maxDeferred) this.deferred.shift();
    }
  }
}

/**
 * With `url`, an inspection callback that also sends every event to Stately's inspector at `url`;
 * the socket closes with the scope. Without, nothing.
 */
export const statelyInspector = (
  url: string | undefined,
  warn: (line: string) => void,
): Effect.Effect<((e: InspectionEvent) => void) | undefined, never, Scope.Scope> =>
  url === undefined
    ? Effect.succeed(undefined)
    : Effect.map(
        Effect.acquireRelease(
          Effect.sync(() => {
            const socket = new InspectorSocket(url, warn);
            socket.start();
            return {
              socket,
              inspector: createInspector(socket, {
                serializationDepthLimit: depthLimit,
                sanitizeEvent: (e) => withoutBytes(e) as typeof e,
                sanitizeContext: (c) => withoutBytes(c) as typeof c,
              }),
            };
          }),
          ({ socket }) => Effect.sync(() => socket.stop()),
        ),
        ({ inspector }) =>
          (e: InspectionEvent) =>
            inspector.inspect.next?.(e),
      );
