/** In-memory record of which files the model has read, for the read-before-write rule. */
import type { FileReadRecord, FileStateTracker } from "./tool.js";

/** Creates an empty tracker. Keys are normalized absolute paths; the caller owns its lifetime (one per session). */
export function createFileStateTracker(): FileStateTracker {
  const records = new Map<string, FileReadRecord>();
  return {
    get: (path) => records.get(path),
    set: (path, record) => {
      records.set(path, record);
    },
  };
}
