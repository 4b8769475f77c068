/** Lists the files under a directory for Glob and Grep, skipping version-control folders. */
import type { DirEntry } from "../sandbox/sandbox.js";
import type { FileSystem } from "../vfs/file-system.js";

const SKIPPED_DIRECTORIES = new Set([".git", ".svn", ".hg", ".bzr", ".jj"]);

export interface WalkedFile {
  /** Path relative to the walked directory, `/`-separated. */
  readonly relativePath: string;
  readonly absolutePath: string;
  readonly mtimeMs: number;
  readonly size: number;
}

function isSkipped(entry: DirEntry): boolean {
  return entry.path.split("/").some((segment) => SKIPPED_DIRECTORIES.has(segment));
}

/** Every regular file (and symlink) below `root`, in the order the file system lists them. */
export async function walkFiles(fs: FileSystem, root: string): Promise<WalkedFile[]> {
  const entries = await fs.list(root, { recursive: true });
  const base = root === "/" ? "" : root;
  return entries
    .filter((entry) => (entry.kind === "file" || entry.kind === "symlink") && !isSkipped(entry))
    .map((entry) => ({
      relativePath: entry.path,
      absolutePath: `${base}/${entry.path}`,
      mtimeMs: entry.mtimeMs,
      size: entry.size,
    }));
}
