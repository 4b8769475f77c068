import { describe, expect, it } from "vitest";
import { crc32, createZipArchive } from "./zip-archive.js";

/** Reads a stored-entries archive back through its central directory (what unzip does). */
function readZip(archive: Uint8Array): { path: string; content: Buffer; mode: number }[] {
  const buffer = Buffer.from(archive);
  const end = buffer.length - 22;
  expect(buffer.readUInt32LE(end)).toBe(0x06054b50);
  const count = buffer.readUInt16LE(end + 10);
  let offset = buffer.readUInt32LE(end + 16);
  const entries: { path: string; content: Buffer; mode: number }[] = [];
  for (let index = 0; index < count; index++) {
    expect(buffer.readUInt32LE(offset)).toBe(0x02014b50);
    const size = buffer.readUInt32LE(offset + 20);
    const nameLength = buffer.readUInt16LE(offset + 28);
    const mode = buffer.readUInt32LE(offset + 38) >>> 16;
    const local = buffer.readUInt32LE(offset + 42);
    const crc = buffer.readUInt32LE(offset + 16);
    const path = buffer.subarray(offset + 46, offset + 46 + nameLength).toString("utf8");
    expect(buffer.readUInt32LE(local)).toBe(0x04034b50);
    const dataStart = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
    const content = buffer.subarray(dataStart, dataStart + size);
    expect(crc32(content)).toBe(crc);
    entries.push({ path, content, mode });
    offset += 46 + nameLength;
  }
  return entries;
}

describe("createZipArchive", () => {
  it("computes the standard CRC-32", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array())).toBe(0);
  });

  it("writes entries that read back with their bytes, UTF-8 names and modes", () => {
    const binary = new Uint8Array(256).map((_, index) => index);
    const entries = readZip(
      createZipArchive([
        { path: "skill/SKILL.md", content: Buffer.from("---\nname: skill\n---\n") },
        { path: "skill/scripts/run.sh", content: Buffer.from("#!/bin/sh\n"), isExecutable: true },
        { path: "skill/données/é.bin", content: binary },
        { path: "skill/empty", content: new Uint8Array() },
      ]),
    );
    expect(entries.map((entry) => [entry.path, entry.mode & 0o777])).toEqual([
      ["skill/SKILL.md", 0o644],
      ["skill/scripts/run.sh", 0o755],
      ["skill/données/é.bin", 0o644],
      ["skill/empty", 0o644],
    ]);
    expect(entries[2]?.content.equals(Buffer.from(binary))).toBe(true);
    expect(entries[3]?.content.length).toBe(0);
  });

  it("writes an empty archive as just the end record", () => {
    expect(readZip(createZipArchive([]))).toEqual([]);
  });
});
