import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const src = fileURLToPath(new URL("../src/", import.meta.url));

const importsOf = async (dir: string): Promise<Array<{ file: string; spec: string }>> => {
  const out: Array<{ file: string; spec: string }> = [];
  for (const e of await readdir(join(src, dir), { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = join(e.parentPath, e.name);
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(/(?:import|export)[^"']*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g))
      out.push({ file, spec: m[1] ?? m[2] ?? "" });
  }
  return out;
};

test.each(["machines", "protocol", "tsfile"])("src/%s is pure: no node:*, NATS, actors, plugins, files or cli imports", async (dir) => {
  const bad = (await importsOf(dir)).filter(
    ({ spec }) => spec.startsWith("node:") || spec.startsWith("@nats-io/") || /\/(actors|plugins|files|cli)\//.test(spec),
  );
  expect(bad).toEqual([]);
});

// Durable file helpers sit below actors and plugins, so both can use them without plugins reaching into actors.
test("src/files imports no actors, plugins, machines or cli", async () => {
  const bad = (await importsOf("files")).filter(({ spec }) => /\/(actors|plugins|machines|cli)\//.test(spec));
  expect(bad).toEqual([]);
});

// IoTDB's own formats (the schema log): below both the sender's actors and the plugins, so neither reaches into the other.
test("src/iotdb imports nothing but src/protocol and itself", async () => {
  const bad = (await importsOf("iotdb")).filter(({ spec }) => !(spec.startsWith("./") || /^\.\.\/protocol\//.test(spec)));
  expect(bad).toEqual([]);
});

test("nothing imports src/cli except the cli itself", async () => {
  const dirs = ["machines", "protocol", "tsfile", "iotdb", "actors", "plugins", "config", "files", "dashboard"];
  const bad = (await Promise.all(dirs.map(importsOf))).flat().filter(({ spec }) => /\/cli\//.test(spec));
  expect(bad).toEqual([]);
});

// Plugins are the contract third parties build against: they sit below the actors that drive them.
test("src/plugins imports no actors, dashboard or cli", async () => {
  const bad = (await importsOf("plugins")).filter(({ spec }) => /\/(actors|dashboard|cli)\//.test(spec));
  expect(bad).toEqual([]);
});

test("machines read no clock and no randomness", async () => {
  for (const e of await readdir(join(src, "machines"))) {
    const text = await readFile(join(src, "machines", e), "utf8");
    expect(text, e).not.toMatch(/Date\.now|Math\.random|performance\.now|new Date\(/);
  }
});

// Every module says what it is for before its imports: a `//` or `/** */` comment on its first line.
test("every src/**/*.ts starts with a comment", async () => {
  const bare: string[] = [];
  for (const e of await readdir(src, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = join(e.parentPath, e.name);
    const first = (await readFile(file, "utf8")).trimStart();
    const name = file.slice(src.length);
    if (!first.startsWith("//") && !first.startsWith("/*")) bare.push(name);
  }
  expect(bare.sort()).toEqual([]);
});
