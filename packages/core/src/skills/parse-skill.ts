/**
 * Agent Skills (SKILL.md) validation per the Agent Skills specification: YAML frontmatter with `name`,
 * `description` and optional `license`, `compatibility`, `metadata`, `allowed-tools`. Pure; no I/O.
 * The frontmatter reader understands the YAML subset skills use (scalars, quoted strings, folded/literal
 * blocks, one-level maps) and rejects anything else with a reason.
 */

export const SKILL_FILE_NAME = "SKILL.md";
export const MAX_SKILL_NAME_LENGTH = 64;
export const MAX_SKILL_DESCRIPTION_LENGTH = 1024;
export const MAX_SKILL_COMPATIBILITY_LENGTH = 500;

export interface SkillFile {
  /** Relative to the skill folder, `/`-separated: `SKILL.md`, `examples/faq.md`. */
  readonly path: string;
  readonly content: Uint8Array;
  /** The executable bit (a script the skill runs); kept through import, storage and the sandbox mirror. */
  readonly isExecutable?: boolean;
}

export interface Skill {
  readonly name: string;
  readonly description: string;
  readonly license?: string;
  readonly compatibility?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly allowedTools?: readonly string[];
  /** The Markdown after the frontmatter. */
  readonly body: string;
  readonly files: readonly SkillFile[];
}

export type ParseSkillResult =
  | { readonly isValid: true; readonly skill: Skill }
  | { readonly isValid: false; readonly reasons: readonly string[] };

type FrontmatterValue = string | Record<string, string>;

const KNOWN_FIELDS = new Set([
  "name",
  "description",
  "license",
  "compatibility",
  "metadata",
  "allowed-tools",
]);

/** Splits `---\n<yaml>\n---\n<body>`; undefined when the text does not start with a frontmatter block. */
export function splitFrontmatter(text: string): { yaml: string; body: string } | undefined {
  const normalized = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n");
  if (!normalized.startsWith("---\n")) return undefined;
  const end = normalized.indexOf("\n---", 3);
  if (end === -1) return undefined;
  const afterFence = normalized.slice(end + 4);
  if (afterFence !== "" && !afterFence.startsWith("\n")) return undefined;
  return { yaml: normalized.slice(4, end + 1), body: afterFence.replace(/^\n/, "") };
}

function unquote(raw: string, line: number): string {
  const value = raw.trim();
  if (value.startsWith('"')) {
    if (!value.endsWith('"') || value.length < 2)
      throw new Error(`line ${line}: unterminated double-quoted string`);
    try {
      return JSON.parse(value) as string;
    } catch {
      throw new Error(`line ${line}: invalid double-quoted string`);
    }
  }
  if (value.startsWith("'")) {
    if (!value.endsWith("'") || value.length < 2)
      throw new Error(`line ${line}: unterminated single-quoted string`);
    return value.slice(1, -1).replace(/''/g, "'");
  }
  // A plain scalar ends at " #" (a comment).
  const comment = value.search(/\s#/);
  return comment === -1 ? value : value.slice(0, comment).trimEnd();
}

/** Parses the frontmatter subset; throws an Error whose message names the line. */
export function parseFrontmatter(yaml: string): Record<string, FrontmatterValue> {
  const lines = yaml.split("\n");
  const result: Record<string, FrontmatterValue> = {};
  let index = 0;
  const indentOf = (line: string) => line.length - line.trimStart().length;
  while (index < lines.length) {
    const line = lines[index] ?? "";
    const lineNumber = index + 1;
    index++;
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    if (indentOf(line) > 0) throw new Error(`line ${lineNumber}: unexpected indentation`);
    const match = /^([A-Za-z0-9_-]+):(?:\s+(.*))?$/.exec(line);
    if (!match?.[1]) throw new Error(`line ${lineNumber}: expected "key: value"`);
    const key = match[1];
    if (key in result) throw new Error(`line ${lineNumber}: duplicate key "${key}"`);
    const rest = (match[2] ?? "").trim();
    if (rest === "" || rest.startsWith("#")) {
      // A nested map (metadata) or an empty value.
      const map: Record<string, string> = {};
      let hasEntries = false;
      while (index < lines.length) {
        const child = lines[index] ?? "";
        if (child.trim() === "" || child.trimStart().startsWith("#")) {
          index++;
          continue;
        }
        if (indentOf(child) === 0) break;
        const childMatch = /^\s+([^:#]+?):(?:\s+(.*))?$/.exec(child);
        if (!childMatch?.[1]) throw new Error(`line ${index + 1}: expected an indented "key: value"`);
        const childValue = (childMatch[2] ?? "").trim();
        if (childValue === "" || /^[[{|>&*!]/.test(childValue)) {
          throw new Error(`line ${index + 1}: nested values must be plain strings`);
        }
        map[unquote(childMatch[1], index + 1)] = unquote(childValue, index + 1);
        hasEntries = true;
        index++;
      }
      result[key] = hasEntries ? map : "";
      continue;
    }
    if (rest === "|" || rest === ">" || /^[|>][-+]?$/.test(rest)) {
      const block: string[] = [];
      while (index < lines.length) {
        const child = lines[index] ?? "";
        if (child.trim() !== "" && indentOf(child) === 0) break;
        block.push(child.trim());
        index++;
      }
      while (block.at(-1) === "") block.pop();
      result[key] = rest.startsWith("|") ? block.join("\n") : block.join(" ").replace(/\s+/g, " ").trim();
      continue;
    }
    if (/^[[{&*!]/.test(rest))
      throw new Error(`line ${lineNumber}: flow collections, anchors and tags are not supported`);
    result[key] = unquote(rest, lineNumber);
  }
  return result;
}

/** Checks a skill name against the spec's rules; returns the broken rules (empty when valid). */
export function validateSkillName(name: string): string[] {
  const reasons: string[] = [];
  if (name.length === 0 || name.length > MAX_SKILL_NAME_LENGTH) {
    reasons.push(`name must be 1-${MAX_SKILL_NAME_LENGTH} characters (got ${name.length})`);
  }
  if (!/^[a-z0-9-]*$/.test(name)) {
    reasons.push(`name "${name}" may only contain lowercase letters a-z, digits 0-9 and hyphens`);
  }
  if (name.startsWith("-") || name.endsWith("-"))
    reasons.push(`name "${name}" must not start or end with a hyphen`);
  if (name.includes("--")) reasons.push(`name "${name}" must not contain consecutive hyphens`);
  return reasons;
}

function checkFilePath(path: string): string | undefined {
  if (path === "" || path.startsWith("/") || path.includes("\\") || path.includes("\0")) {
    return `file path "${path}" must be relative, "/"-separated and without NUL bytes`;
  }
  if (path.split("/").some((part) => part === "" || part === "." || part === "..")) {
    return `file path "${path}" must not contain empty, "." or ".." segments`;
  }
  return undefined;
}

/**
 * Validates a skill folder's files. `directoryName`, when given, must equal the `name` field (the spec
 * requires it to match the parent directory). Never throws: problems come back as `reasons`.
 */
export function parseSkill(
  files: readonly SkillFile[],
  options: { directoryName?: string } = {},
): ParseSkillResult {
  const reasons: string[] = [];
  for (const file of files) {
    const problem = checkFilePath(file.path);
    if (problem !== undefined) reasons.push(problem);
  }
  const skillFile = files.find((file) => file.path === SKILL_FILE_NAME);
  if (skillFile === undefined)
    return { isValid: false, reasons: [...reasons, `the folder has no ${SKILL_FILE_NAME}`] };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(skillFile.content);
  } catch {
    return { isValid: false, reasons: [...reasons, `${SKILL_FILE_NAME} is not valid UTF-8`] };
  }
  const split = splitFrontmatter(text);
  if (split === undefined) {
    return {
      isValid: false,
      reasons: [...reasons, `${SKILL_FILE_NAME} must start with YAML frontmatter between "---" lines`],
    };
  }
  let fields: Record<string, FrontmatterValue>;
  try {
    fields = parseFrontmatter(split.yaml);
  } catch (error) {
    return { isValid: false, reasons: [...reasons, `frontmatter: ${(error as Error).message}`] };
  }
  const stringField = (key: string): string | undefined => {
    const value = fields[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string") {
      reasons.push(`${key} must be a string`);
      return undefined;
    }
    return value;
  };
  for (const key of Object.keys(fields)) {
    if (!KNOWN_FIELDS.has(key)) reasons.push(`unknown frontmatter field "${key}"`);
  }
  const name = stringField("name");
  if (name === undefined) reasons.push("name is required");
  else {
    reasons.push(...validateSkillName(name));
    if (options.directoryName !== undefined && options.directoryName !== name) {
      reasons.push(`name "${name}" must match the folder name "${options.directoryName}"`);
    }
  }
  const description = stringField("description");
  if (description === undefined) reasons.push("description is required");
  else if (description.trim().length === 0) reasons.push("description must not be empty");
  else if (description.length > MAX_SKILL_DESCRIPTION_LENGTH) {
    reasons.push(
      `description must be at most ${MAX_SKILL_DESCRIPTION_LENGTH} characters (got ${description.length})`,
    );
  }
  const license = stringField("license");
  const compatibility = stringField("compatibility");
  if (
    compatibility !== undefined &&
    (compatibility.length === 0 || compatibility.length > MAX_SKILL_COMPATIBILITY_LENGTH)
  ) {
    reasons.push(
      `compatibility must be 1-${MAX_SKILL_COMPATIBILITY_LENGTH} characters (got ${compatibility.length})`,
    );
  }
  const metadata = fields.metadata;
  if (metadata !== undefined && typeof metadata === "string" && metadata !== "") {
    reasons.push("metadata must be a map from string keys to string values");
  }
  const allowedTools = stringField("allowed-tools");
  if (reasons.length > 0 || name === undefined || description === undefined)
    return { isValid: false, reasons };
  return {
    isValid: true,
    skill: {
      name,
      description,
      ...(license === undefined ? {} : { license }),
      ...(compatibility === undefined ? {} : { compatibility }),
      ...(metadata !== undefined && typeof metadata !== "string" ? { metadata } : {}),
      ...(allowedTools === undefined
        ? {}
        : { allowedTools: allowedTools.split(/\s+/).filter((tool) => tool !== "") }),
      body: split.body,
      files,
    },
  };
}
