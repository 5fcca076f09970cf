import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type NatsServerProcess } from "../../src/actors/natsServer.js";

export interface TestNatsServer extends NatsServerProcess {
  readonly dir: string;
  /** Stops the server and removes its store. */
  readonly cleanup: () => Promise<void>;
}

/** A real nats-server with JetStream on a free port and its own store dir. */
export async function startTestNatsServer(extraConfig?: string): Promise<TestNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "tsync-nats-"));
  const server = await startNatsServer(extraConfig === undefined ? { dir } : { dir, extraConfig });
  return {
    ...server,
    dir,
    cleanup: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
