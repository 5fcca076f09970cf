import { request, type IncomingMessage } from "node:http";

export interface SseFrame {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** A Server-Sent Events client over node:http: collects frames until closed. */
export const openEvents = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ frames: SseFrame[]; response: IncomingMessage; close: () => void }>((resolve, reject) => {
    const frames: SseFrame[] = [];
    const req = request(url, { headers: { Accept: "text/event-stream", ...headers } }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split("\n")) {
            if (line.startsWith(":") || line === "") continue;
            const i = line.indexOf(":");
            fields.set(line.slice(0, i), line.slice(i + 1).replace(/^ /, ""));
          }
          if (fields.has("data")) frames.push({ id: fields.get("id"), event: fields.get("event") ?? "message", data: fields.get("data")! });
        }
      });
      res.on("error", () => undefined);
      resolve({ frames, response: res, close: () => req.destroy() });
    });
    req.on("error", reject);
    req.end();
  });

/** A plain request with headers fetch will not send (Host), answering status, headers and body. */
export const get = (url: string, options: { method?: string; headers?: Record<string, string> } = {}) =>
  new Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }>((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export const eventually = async <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};
