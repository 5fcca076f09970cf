import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { projectRoot, tsyncBin } from "../harness/cli.js";

// The service units in conf/systemd, checked by systemd itself (systemd-analyze verify) with the
// install paths pointed at this checkout, so the binaries they name exist.

const exec = promisify(execFile);
const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));
if (!analyze && process.env["CI"] === "true")
  throw new Error("systemd-analyze is missing: bin/install-deps --tests installs it (apt-get install systemd)");
if (!analyze)
  console.warn("skipping systemd-analyze verify of conf/systemd: systemd-analyze is missing (bin/install-deps --tests installs it)");

const units = {
  receiver: join(projectRoot, "conf/systemd/tsync-receiver.service"),
  sender: join(projectRoot, "conf/systemd/tsync-sender@.service"),
};

/** The unit's `Key=value` lines of one section. */
const section = (text: string, name: string): Map<string, string> => {
  const out = new Map<string, string>();
  let current = "";
  for (const line of text.split("\n")) {
    const header = /^\[(\w+)\]$/.exec(line.trim());
    if (header) current = header[1] ?? "";
    else if (current === name && /^\w+=/.test(line)) out.set(line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1));
  }
  return out;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-units-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `systemd-analyze verify` of the given files: its exit status and every warning it printed about them. */
const verify = async (...files: string[]): Promise<{ code: number; complaints: string[] }> => {
  const r = await exec(analyze!, ["verify", ...files]).then(
    (ok) => ({ code: 0, out: ok.stdout + ok.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: (e.stdout ?? "") + (e.stderr ?? "") }),
  );
  return { code: r.code, complaints: r.out.split("\n").filter((l) => files.some((f) => l.includes(f))) };
};

/** A copy of the unit, run from this checkout instead of /opt/tsync, under `name`. */
const localCopy = async (unit: string, name: string): Promise<string> => {
  const text = (await readFile(unit, "utf8")).replaceAll("/opt/tsync/bin/tsync.js", tsyncBin).replaceAll("/usr/bin/node", process.execPath);
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};

describe("systemd units", () => {
  test("each side stops gracefully with SIGTERM and restarts after a failure, running its own tsync command", async () => {
    for (const [role, unit] of Object.entries(units)) {
      const service = section(await readFile(unit, "utf8"), "Service");
      expect(service.get("KillSignal")).toBe("SIGTERM");
      // tsync's graceful stop takes at most 10 s; systemd must wait longer than that before SIGKILL.
      expect(Number(service.get("TimeoutStopSec"))).toBeGreaterThan(10);
      expect(service.get("Restart")).toBe("on-failure");
      expect(service.get("ExecStart")).toMatch(new RegExp(`bin/tsync\\.js ${role} --config /etc/tsync/`));
    }
  });

  test.runIf(analyze !== undefined)("systemd-analyze verify accepts both units without a warning", async () => {
    const receiver = await localCopy(units.receiver, "tsync-receiver.service");
    const sender = await localCopy(units.sender, "tsync-sender@plant-1.service");
    expect(await verify(receiver, sender)).toEqual({ code: 0, complaints: [] });
  });

  test.runIf(analyze !== undefined)("the check catches a broken unit: a misspelt key is reported", async () => {
    const broken = join(dir, "tsync-broken.service");
    await writeFile(broken, (await readFile(await localCopy(units.receiver, "x.service"), "utf8")).replace("KillSignal=", "KilSignal="));
    const r = await verify(broken);
    expect(r.complaints.join("\n")).toContain("KilSignal");
  });
});
