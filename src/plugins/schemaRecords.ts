// Moved to src/iotdb/schemaRecords.ts; kept as a re-export until the receiver's schemaSync.ts imports it from there.
export * from "../iotdb/schemaRecords.js";
