// Text a sender controls (its name, ids, anything echoed in an error) must not forge receiver log
// lines: every log call yields exactly one line, whatever control or separator characters it holds.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fc, test as prop } from "@fast-check/vitest";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { makeLogger, oneLine } from "../../../src/cli/log.js";
import { Code } from "../../../src/protocol/status.js";
import { startTsync } from "../../harness/cli.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";
import { rawClient, sayHello } from "../kit.js";

/** Everything a terminal, a log shipper or a line-oriented reader may take for the end of a line. */
const lineBreak = /\r\n|[\n\r\u000b\u000c\u001c-\u001e\u0085\u2028\u2029]/;

const captured = (): { lines: () => string[]; text: () => string } => {
  let text = "";
  const grab = (chunk: unknown) => {
    text += String(chunk);
    return true;
  };
  vi.spyOn(process.stdout, "write").mockImplementation(grab);
  vi.spyOn(process.stderr, "write").mockImplementation(grab);
  return { text: () => text, lines: () => text.split(lineBreak) };
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the log sink", () => {
  const forgeries: ReadonlyArray<[string, string]> = [
    ["LF", "\n"],
    ["CR", "\r"],
    ["CRLF", "\r\n"],
    ["vertical tab", "\u000b"],
    ["form feed", "\u000c"],
    ["NEL (C1)", "\u0085"],
    ["line separator", "\u2028"],
    ["paragraph separator", "\u2029"],
    ["ESC (terminal control)", "\u001b[2K\u001b[1G"],
    ["NUL", "\u0000"],
    ["DEL", "\u007f"],
    ["CSI (C1)", "\u009b"],
    ["right-to-left override", "\u202e"],
  ];

  test.each(forgeries)("a %s in a sender name stays inside its one line", (_name, sep) => {
    const out = captured();
    const log = makeLogger("receiver", "debug");
    const forged = `2026-01-01T00:00:00.000Z INFO  receiver: session x opened for sender admin`;
    log.info(`session s1 opened for sender evil (nice${sep}${forged})`);
    log.error(`refused: bad${sep}${forged}`);
    const text = out.text();
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toMatch(lineBreak);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  receiver: session s1 opened for sender evil \(nice\\/);
    expect(lines[0]).toContain(forged);
    // Only our own characters are left unescaped: what was escaped is shown, not acted on.
    expect(text.replace(/\n$/, "").replace(/\n/, "")).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/);
  });

  test("ordinary text is untouched; the escapes say which character it was", () => {
    expect(oneLine("sender north (Süd-Werk 3, ünïcödé 工厂) from 10.0.0.1")).toBe("sender north (Süd-Werk 3, ünïcödé 工厂) from 10.0.0.1");
    expect(oneLine("a\nb\rc\td")).toBe("a\\nb\\rc\\td");
    expect(oneLine("a\u2028b\u2029c\u0085d\u001be")).toBe("a\\u2028b\\u2029c\\u0085d\\u001be");
  });

  prop.prop([fc.string({ unit: "binary" })], { numRuns: 500 })("property: any text makes exactly one line", (s) => {
    const out = captured();
    makeLogger("receiver").info(s);
    const text = out.text();
    vi.restoreAllMocks();
    expect(text.endsWith("\n")).toBe(true);
    expect(text.slice(0, -1)).not.toMatch(lineBreak);
  });
});

describe("through a real receiver process", () => {
  let server: TestNatsServer;
  let root: string;
  beforeAll(async () => {
    server = await startTestNatsServer();
    root = await tempRoot("tsync-loginject-");
  });
  afterAll(async () => {
    await server?.cleanup();
    await removeAll(root);
  });

  test("a sender name with line breaks is logged on the session's own line", async () => {
    const conf = join(root, "receiver.properties");
    await writeFile(
      conf,
      [
        `is_sync_enable=true`,
        `receiver_data_directory=${join(root, "centre")}`,
        `nats_url=${server.url}`,
        `nats_monitor_url=${server.monitorUrl}`,
        `receiver_group=inject`,
      ].join("\n") + "\n",
    );
    const r = await startTsync(["receiver", "--config", conf], /sync service started/, {}, 60_000);
    const nc = await rawClient(server.url, "evil");
    try {
      const forged = "2026-01-01T00:00:00.000Z INFO  receiver: session forged opened for sender trusted from 10.0.0.1";
      const reply = await sayHello(nc, "inject", "evil", { senderName: `nice\n${forged}\r\n${forged}\u2028${forged}` });
      expect(reply.code, reply.message).toBe(Code.ok);
      const deadline = Date.now() + 10_000;
      while (!/opened for sender evil/.test(r.output()) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
      const lines = r.output().split(lineBreak);
      const opened = lines.filter((l) => l.includes("opened for sender evil"));
      expect(opened, r.output()).toHaveLength(1);
      expect(opened[0]).toContain(`(nice\\n${forged}\\r\\n${forged}\\u2028${forged})`);
      expect(lines.filter((l) => l.startsWith("2026-01-01T00:00:00.000Z"))).toEqual([]);
    } finally {
      await nc.close();
      r.child.kill("SIGKILL");
    }
  }, 120_000);
});
