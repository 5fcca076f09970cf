// A NATS operator, accounts and users as JWTs signed with nkeys, for tests of `.creds` files: the
// server runs in operator mode with a memory resolver preloaded with the account JWTs.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { nkeys } from "@nats-io/transport-node";

type KeyPair = ReturnType<typeof nkeys.createOperator>;

const b64 = (b: Uint8Array | string): string => Buffer.from(b).toString("base64url");

const signJwt = (signer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string => {
  const header = b64(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const claims: Record<string, unknown> = {
    iat: Math.floor(Date.now() / 1000),
    iss: signer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims["jti"] = createHash("sha256").update(JSON.stringify(claims)).digest("base64url");
  const body = b64(JSON.stringify(claims));
  return `${header}.${body}.${b64(signer.sign(new TextEncoder().encode(`${header}.${body}`)))}`;
};

const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface OperatorSetup {
  /** nats-server config text: operator, system account, resolver with the accounts preloaded. */
  readonly serverConfig: string;
  /** Writes a .creds file for a new user of the application account with these permissions. */
  readonly user: (
    path: string,
    name: string,
    permissions?: { pub?: ReadonlyArray<string>; sub?: ReadonlyArray<string> },
  ) => Promise<string>;
}

export const makeOperator = (): OperatorSetup => {
  const operator = nkeys.createOperator();
  const system = nkeys.createAccount();
  const app = nkeys.createAccount();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), "tsync-test", { type: "operator", system_account: system.getPublicKey() });
  const systemJwt = signJwt(operator, system.getPublicKey(), "SYS", { type: "account", limits: unlimited });
  const appJwt = signJwt(operator, app.getPublicKey(), "APP", {
    type: "account",
    limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  });
  return {
    serverConfig: [
      `operator: "${operatorJwt}"`,
      `system_account: "${system.getPublicKey()}"`,
      "resolver: MEMORY",
      `resolver_preload: {\n  ${system.getPublicKey()}: "${systemJwt}"\n  ${app.getPublicKey()}: "${appJwt}"\n}`,
    ].join("\n"),
    user: async (path, name, permissions) => {
      const user = nkeys.createUser();
      const nats: Record<string, unknown> = { type: "user", subs: -1, data: -1, payload: -1 };
      if (permissions?.pub) nats["pub"] = { allow: permissions.pub };
      if (permissions?.sub) nats["sub"] = { allow: permissions.sub };
      const jwt = signJwt(app, user.getPublicKey(), name, nats);
      const seed = new TextDecoder().decode(user.getSeed());
      await writeFile(
        path,
        `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
        { mode: 0o600 },
      );
      return path;
    },
  };
};
