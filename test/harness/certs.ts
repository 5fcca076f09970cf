import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** CA certificate (PEM) that signed every certificate below. */
  readonly ca: string;
  /** Valid for 127.0.0.1, ::1 and localhost. */
  readonly server: KeyPair;
  /** Makes a client certificate with this common name. */
  readonly client: (name: string) => Promise<KeyPair>;
  /** A CA nobody trusts, with a client certificate of its own, for refusal tests. */
  readonly stranger: () => Promise<KeyPair & { readonly ca: string }>;
  readonly cleanup: () => Promise<void>;
}

const openssl = async (cwd: string, args: ReadonlyArray<string>): Promise<void> => {
  try {
    await run("openssl", args, { cwd });
  } catch (e) {
    throw new Error(`openssl ${args.join(" ")} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
};

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

const makeCa = async (dir: string, name: string): Promise<{ cert: string; key: string }> => {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl(dir, ["req", "-x509", ...ecKey, "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`]);
  return { cert, key };
};

const signed = async (dir: string, ca: { cert: string; key: string }, name: string, extensions: string): Promise<KeyPair> => {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(dir, ["req", ...ecKey, "-keyout", key, "-out", csr, "-subj", `/CN=${name}`]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  return { cert, key };
};

const clientExt = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";

/** A throwaway CA with a server certificate and client certificates, made by openssl in a temp dir. */
export const makeTestPki = async (): Promise<TestPki> => {
  const dir = await mkdtemp(join(tmpdir(), "tsync-pki-"));
  const ca = await makeCa(dir, "tsync-test-ca");
  const server = await signed(
    dir,
    ca,
    "nats-server",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n",
  );
  return {
    dir,
    ca: ca.cert,
    server,
    client: (name) => signed(dir, ca, name, clientExt),
    stranger: async () => {
      const other = await makeCa(dir, "stranger-ca");
      return { ...(await signed(dir, other, "stranger", clientExt)), ca: other.cert };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
};
