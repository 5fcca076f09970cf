// A long, thin link in user space, for kernels without `tc netem`: a TCP relay that holds every
// byte from client to server for DELAY_MS and lets it leave at RATE bytes per second, with a
// bounded queue that pushes back on the client as a full router buffer would. Server to client
// is passed through at once, as netem on the sender's interface alone would.
// `slowLink.ts TARGET_HOST TARGET_PORT DELAY_MS RATE_BYTES_PER_S QUEUE_BYTES` prints "listening PORT".
import { createServer, connect, type Socket } from "node:net";

const [host, portText, delayText, rateText, queueText] = process.argv.slice(2);
if (!host || !portText || !delayText || !rateText) throw new Error("usage: slowLink.ts HOST PORT DELAY_MS RATE QUEUE_BYTES");
const delayMs = Number(delayText);
const rate = Number(rateText);
const queueLimit = Number(queueText ?? 1_500_000);

/** One direction of the link: a serialiser at `rate`, then `delayMs` of propagation. */
const slowPipe = (from: Socket, to: Socket) => {
  let lineFreeAt = 0;
  let queued = 0;
  let ended = false;
  // In flight, in order: a byte stream must never be reordered, so one timer drains the head.
  const flight: { buf: Buffer; arrive: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (flight.length > 0 && flight[0]!.arrive <= now) {
      const { buf } = flight.shift()!;
      to.write(buf);
      queued -= buf.length;
    }
    if (queued <= queueLimit / 2 && from.isPaused()) from.resume();
    if (flight.length > 0) timer = setTimeout(drain, Math.max(1, flight[0]!.arrive - now));
    else if (ended) to.end();
  };
  from.on("data", (buf: Buffer) => {
    const now = performance.now();
    // The bytes leave the serialiser one after another, then fly for delayMs.
    lineFreeAt = Math.max(now, lineFreeAt) + (buf.length / rate) * 1000;
    flight.push({ buf, arrive: lineFreeAt + delayMs });
    queued += buf.length;
    if (queued > queueLimit) from.pause();
    timer ??= setTimeout(drain, Math.max(1, flight[0]!.arrive - now));
  });
  from.on("end", () => {
    ended = true;
    if (flight.length === 0) to.end();
  });
};

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect(Number(portText), host, () => upstream.setNoDelay(true));
  slowPipe(client, upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
  client.on("close", close);
  upstream.on("close", close);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`);
});
process.once("SIGTERM", () => process.exit(0));
