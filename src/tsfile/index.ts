export * from "./bytes.js";
export * from "./reader.js";
export * from "./resource.js";
export * from "./writer.js";
