/** Line blame over a file's versions: a longest-common-subsequence diff between each version and the next. */

export interface BlameVersion {
  readonly version: number;
  readonly text: string;
  readonly authorUserId: string | null;
  readonly sessionId: string | null;
  readonly turn: number | null;
}

export interface BlameLine {
  /** 1-based line number in the current version. */
  readonly line: number;
  readonly text: string;
  /** The version that introduced this line. */
  readonly version: number;
  readonly authorUserId: string | null;
  readonly sessionId: string | null;
  readonly turn: number | null;
}

/** Above this many line pairs, a diff is skipped and the changed version is blamed for every line. */
const MAX_DIFF_CELLS = 4_000_000;

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** Indexes in `next` of lines kept from `previous` (mapped to their index in `previous`). */
function keptLines(previous: readonly string[], next: readonly string[]): Map<number, number> {
  const kept = new Map<number, number>();
  if (previous.length * next.length > MAX_DIFF_CELLS) return kept;
  const width = next.length + 1;
  const table = new Uint32Array((previous.length + 1) * width);
  for (let row = previous.length - 1; row >= 0; row--) {
    for (let column = next.length - 1; column >= 0; column--) {
      table[row * width + column] =
        previous[row] === next[column]
          ? (table[(row + 1) * width + column + 1] ?? 0) + 1
          : Math.max(table[(row + 1) * width + column] ?? 0, table[row * width + column + 1] ?? 0);
    }
  }
  let row = 0;
  let column = 0;
  while (row < previous.length && column < next.length) {
    if (previous[row] === next[column]) {
      kept.set(column, row);
      row++;
      column++;
    } else if ((table[(row + 1) * width + column] ?? 0) >= (table[row * width + column + 1] ?? 0)) row++;
    else column++;
  }
  return kept;
}

/** Blames the last version's lines. `versions` must be oldest first and non-empty. */
export function blameVersions(versions: readonly BlameVersion[]): BlameLine[] {
  let lines: string[] = [];
  let origins: BlameVersion[] = [];
  for (const version of versions) {
    const next = splitLines(version.text);
    const kept = keptLines(lines, next);
    origins = next.map((_, index) => {
      const from = kept.get(index);
      return from === undefined ? version : (origins[from] ?? version);
    });
    lines = next;
  }
  return lines.map((text, index) => {
    // Invariant: origins has one entry per line.
    const origin = origins[index] as BlameVersion;
    return {
      line: index + 1,
      text,
      version: origin.version,
      authorUserId: origin.authorUserId,
      sessionId: origin.sessionId,
      turn: origin.turn,
    };
  });
}
