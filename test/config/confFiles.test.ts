// conf/*.properties are generated from the key tables; these tests keep them in step.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Result } from "effect";
import { describe, expect, test } from "vitest";
import type { ConfigError } from "../../src/config/errors.js";
import { parseProperties, type Env, type KeyTable } from "../../src/config/properties.js";
import { RECEIVER_CONF, parseReceiverConfig, receiverKeys, renderReceiverProperties } from "../../src/config/receiver.js";
import { SENDER_CONF, parseSenderConfig, renderSenderProperties, senderKeys } from "../../src/config/sender.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const read = (relative: string) => readFile(`${repo}${relative}`, "utf8");
const FIX = "run `npx tsx src/config/renderConf.ts`";

type Parse = (props: Record<string, string>, env: Env, source: string, cwd: string) => Result.Result<unknown, ConfigError>;

describe.each<{ file: string; render: () => string; keys: KeyTable; parse: Parse }>([
  { file: SENDER_CONF, render: renderSenderProperties, keys: senderKeys, parse: parseSenderConfig },
  { file: RECEIVER_CONF, render: renderReceiverProperties, keys: receiverKeys, parse: parseReceiverConfig },
])("$file", ({ file, render, keys, parse }) => {
  test("matches the rendered table exactly", async () => {
    expect(await read(file), FIX).toBe(render());
  });

  test("parses without error, with no environment", async () => {
    const props = parseProperties(await read(file));
    expect(Result.isSuccess(parse(props, {}, file, "/opt/tsync"))).toBe(true);
  });

  test("lists every key once, with a comment line above it", async () => {
    const lines = (await read(file)).split("\n");
    for (const key of Object.keys(keys)) {
      const at = lines.flatMap((line, i) => (line.startsWith(`${key}=`) ? [i] : []));
      expect(at, key).toHaveLength(1);
      expect(lines[(at[0] ?? 0) - 1], key).toMatch(/^# \S/);
    }
    expect(Object.keys(parseProperties(await read(file))).sort()).toEqual(Object.keys(keys).sort());
  });

  test("every default as written equals the default the table parses to", async () => {
    const props = parseProperties(await read(file));
    for (const [key, spec] of Object.entries(keys)) {
      if (spec.default !== undefined) expect(props[key], key).toBe(spec.default);
      else expect(props[key], key).toBe(spec.example);
    }
  });
});

test("the seed's sample lines appear verbatim", async () => {
  const sender = await read(SENDER_CONF);
  for (const line of ["server_ip=127.0.0.1", "server_port=5555", "sync_period_in_second=600", "max_number_of_sync_file_retry=5"])
    expect(sender.split("\n")).toContain(line);
  const receiver = await read(RECEIVER_CONF);
  for (const line of ["is_sync_enable=false", "sync_server_port=5555", "ip_white_list=0.0.0.0/0"])
    expect(receiver.split("\n")).toContain(line);
});
