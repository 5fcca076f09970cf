import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { envNameOf, parseProperties, readPropertiesFile, suggestKey } from "../../src/config/properties.js";

describe("parseProperties", () => {
  test("Java syntax: separators, comments, escapes, continuation lines, BOM", () => {
    const text = [
      "\uFEFF# comment",
      "! also a comment",
      "a=1",
      "b = 2 ",
      "c:3",
      "d 4",
      "e=caf\\u00e9",
      "f=one, \\",
      "   two",
      "empty=",
      "a=last wins",
    ].join("\n");
    expect(parseProperties(text)).toEqual({
      a: "last wins",
      b: "2 ",
      c: "3",
      d: "4",
      e: "café",
      f: "one, two",
      empty: "",
    });
  });

  test("dotted keys stay flat", () => {
    expect(parseProperties("plugin.fs.root=/x\nplugin.fs=y")).toEqual({ "plugin.fs.root": "/x", "plugin.fs": "y" });
  });
});

describe("readPropertiesFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsync-props-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("reads a file", async () => {
    await writeFile(join(dir, "a.properties"), "server_port=6000\n");
    expect(await readPropertiesFile(join(dir, "a.properties"))).toEqual({ server_port: "6000" });
  });

  test("a missing file rejects with a ConfigError naming it", async () => {
    const path = join(dir, "missing.properties");
    const error = await readPropertiesFile(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ key: "conf", value: path, message: `config error: properties file "${path}" does not exist` });
  });

  test("a directory is not a properties file", async () => {
    await expect(readPropertiesFile(dir)).rejects.toMatchObject({
      message: `config error: properties file "${dir}" is a directory, not a file`,
    });
  });

  test.skipIf(process.getuid?.() === 0)("an unreadable file says so", async () => {
    const path = join(dir, "secret.properties");
    await writeFile(path, "a=1");
    await chmod(path, 0o000);
    await expect(readPropertiesFile(path)).rejects.toMatchObject({
      message: `config error: properties file "${path}" cannot be read (permission denied)`,
    });
  });
});

test("envNameOf", () => {
  expect(envNameOf("server_port")).toBe("TSYNC_SERVER_PORT");
});

test("suggestKey proposes close keys only", () => {
  const keys = ["server_ip", "server_port", "sync_period_in_second", "ip_white_list"];
  expect(suggestKey("sever_port", keys)).toBe("server_port");
  expect(suggestKey("server-port", keys)).toBe("server_port");
  expect(suggestKey("IP_white_list", keys)).toBe("ip_white_list");
  expect(suggestKey("sync_period", keys)).toBeUndefined();
  expect(suggestKey("port", keys)).toBeUndefined();
  expect(suggestKey("x", [])).toBeUndefined();
});
