import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestNatsServer, type TestNatsServer } from "./natsServer.js";

let server: TestNatsServer;
beforeAll(async () => {
  server = await startTestNatsServer();
});
afterAll(async () => {
  await server.cleanup();
});

test("the harness starts a real nats-server with JetStream and a monitoring port", async () => {
  const nc = await connect({ servers: server.url });
  try {
    expect(nc.info?.jetstream).toBe(true);
    const connz = (await (await fetch(`${server.monitorUrl}/connz`)).json()) as { num_connections: number };
    expect(connz.num_connections).toBeGreaterThanOrEqual(1);
  } finally {
    await nc.close();
  }
});
