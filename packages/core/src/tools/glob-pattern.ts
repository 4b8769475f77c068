/**
 * Glob patterns compiled to RegExp: `**` (any number of path segments), `*` and `?` (within one segment),
 * `{a,b}` (nested alternatives), `[abc]`, `[a-z]`, `[!abc]`/`[^abc]`, and `\` escapes. Pure.
 */

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

function escapeCharacter(character: string): string {
  return REGEX_SPECIAL.test(character) ? `\\${character}` : character;
}

/** Index of the `}` closing the brace opened at `start`, or -1. */
function findBraceEnd(pattern: string, start: number): number {
  let depth = 0;
  for (let index = start; index < pattern.length; index++) {
    const character = pattern[index];
    if (character === "\\") index++;
    else if (character === "{") depth++;
    else if (character === "}" && --depth === 0) return index;
  }
  return -1;
}

/** Splits the inside of a brace on top-level commas. */
function splitAlternatives(body: string): string[] {
  const alternatives: string[] = [];
  let depth = 0;
  let current = "";
  for (let index = 0; index < body.length; index++) {
    const character = body[index] as string;
    if (character === "\\") {
      current += character + (body[index + 1] ?? "");
      index++;
      continue;
    }
    if (character === "{") depth++;
    else if (character === "}") depth--;
    if (character === "," && depth === 0) {
      alternatives.push(current);
      current = "";
    } else current += character;
  }
  alternatives.push(current);
  return alternatives;
}

/** Translates `[...]` starting at `start`; returns the regex source and the index after `]`, or undefined. */
function translateClass(pattern: string, start: number): { source: string; next: number } | undefined {
  let index = start + 1;
  let negated = false;
  if (pattern[index] === "!" || pattern[index] === "^") {
    negated = true;
    index++;
  }
  let body = "";
  let first = true;
  for (; index < pattern.length; index++) {
    const character = pattern[index] as string;
    if (character === "]" && !first) {
      // A class never matches the path separator.
      return { source: negated ? `[^/${body}]` : `(?!/)[${body}]`, next: index + 1 };
    }
    first = false;
    if (character === "\\") {
      body += `\\${pattern[index + 1] ?? "\\"}`;
      index++;
    } else if (character === "]" || character === "[" || character === "^") body += `\\${character}`;
    else body += character;
  }
  return undefined;
}

function translate(pattern: string): string {
  let source = "";
  for (let index = 0; index < pattern.length; index++) {
    const character = pattern[index] as string;
    if (character === "\\") {
      source += escapeCharacter(pattern[index + 1] ?? "\\");
      index++;
    } else if (character === "*") {
      if (pattern[index + 1] === "*") {
        const atSegmentStart = index === 0 || pattern[index - 1] === "/";
        let end = index + 2;
        while (pattern[end] === "*") end++;
        if (atSegmentStart && pattern[end] === "/") {
          source += "(?:[^/]*/)*";
          index = end;
          continue;
        }
        if (atSegmentStart && end === pattern.length) {
          source += ".*";
          index = end - 1;
          continue;
        }
        source += "[^/]*";
        index = end - 1;
        continue;
      }
      source += "[^/]*";
    } else if (character === "?") source += "[^/]";
    else if (character === "[") {
      const translated = translateClass(pattern, index);
      if (translated === undefined) source += "\\[";
      else {
        source += translated.source;
        index = translated.next - 1;
      }
    } else if (character === "{") {
      const end = findBraceEnd(pattern, index);
      if (end === -1) source += "\\{";
      else {
        const alternatives = splitAlternatives(pattern.slice(index + 1, end)).map(translate);
        source += `(?:${alternatives.join("|")})`;
        index = end;
      }
    } else source += escapeCharacter(character);
  }
  return source;
}

/** Compiles a glob to an anchored RegExp over `/`-separated relative paths. Never throws. */
export function globToRegExp(pattern: string, options: { caseInsensitive?: boolean } = {}): RegExp {
  try {
    return new RegExp(`^${translate(pattern)}$`, options.caseInsensitive ? "i" : "");
  } catch {
    // A pattern we translated into invalid regex (an odd class range, say) matches itself literally.
    return new RegExp(`^${[...pattern].map(escapeCharacter).join("")}$`);
  }
}

/** True when `path` (relative, `/`-separated) matches `pattern`. */
export function matchesGlob(pattern: string, path: string): boolean {
  return globToRegExp(pattern).test(path);
}

/** The leading part of a pattern without glob syntax, cut at a `/` (e.g. `/a/b` for `/a/b/**\/*.ts`). */
export function staticPrefix(pattern: string): string {
  const firstMagic = pattern.search(/[*?[{\\]/);
  const literal = firstMagic === -1 ? pattern : pattern.slice(0, firstMagic);
  const slash = literal.lastIndexOf("/");
  return slash === -1 ? "" : literal.slice(0, slash);
}
