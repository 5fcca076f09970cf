import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/actors/natsServer.js";
import { senderInboxPrefix } from "../../src/protocol/subjects.js";
import type { TestNatsServer } from "./natsServer.js";

/** A real nats-server with users: the receiver (all rights) and senders pinned to their own subjects in any receiver group. */
export interface AuthNatsServer extends TestNatsServer {
  /** Receiver properties for this server (url, monitoring, the receiver's user). */
  readonly receiverProps: Readonly<Record<string, string>>;
  /** Sender properties for enrolled sender `id` (url, its user, its name). */
  readonly senderProps: (id: string) => Record<string, string>;
}

export const senderPassword = (id: string): string => `${id}-secret`;

/** What sender `id` may do, in every group: hello as itself, talk in its own sessions, report to the fleet view as itself, read its own inbox. */
export const anyGroupPermissions = (id: string): string =>
  `{ publish: { allow: ["tsync.*.hello.${id}", "tsync.*.s.*.${id}.>", "tsync.*.fleet.${id}"] }, subscribe: { allow: ["${senderInboxPrefix(id)}.>"] } }`;

/** An external server with authentication, as docs/security.md configures one, for `senderIds`. */
export const startAuthNatsServer = async (senderIds: ReadonlyArray<string>, host = "127.0.0.1"): Promise<AuthNatsServer> => {
  const dir = await mkdtemp(join(tmpdir(), "tsync-nats-auth-"));
  const users = [
    `{ user: "receiver", password: "receiver-secret" }`,
    ...senderIds.map((id) => `{ user: "${id}", password: "${senderPassword(id)}", permissions: ${anyGroupPermissions(id)} }`),
  ];
  const server = await startNatsServer({ dir, host, extraConfig: `authorization {\n  users = [\n    ${users.join("\n    ")}\n  ]\n}\n` });
  const url = server.url;
  return {
    ...server,
    dir,
    cleanup: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
    receiverProps: { nats_url: url, nats_monitor_url: server.monitorUrl, nats_user: "receiver", nats_password: "receiver-secret" },
    senderProps: (id) => ({ nats_url: url, nats_user: id, nats_password: senderPassword(id), sender_name: id }),
  };
};
