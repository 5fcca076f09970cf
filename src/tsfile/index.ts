// The TsFile reader and writer, bytes only: one import for all of it.
export * from "./bytes.js";
export * from "./reader.js";
export * from "./resource.js";
export * from "./writer.js";
