/**
 * Moves a FileError from one path namespace to another: a backend names the path it was given
 * (`/conventions.md`), the model must see the path it used (`/memories/org/conventions.md`).
 */
import { FileError } from "../sandbox/sandbox-errors.js";

/** `path` under `fromRoot`, re-rooted at `toRoot`; undefined when it is not under `fromRoot`. */
export function rebasePath(path: string, fromRoot: string, toRoot: string): string | undefined {
  let relative: string;
  if (fromRoot === "/") relative = path === "/" ? "" : path;
  else if (path === fromRoot) relative = "";
  else if (path.startsWith(`${fromRoot}/`)) relative = path.slice(fromRoot.length);
  else return undefined;
  if (toRoot === "/") return relative === "" ? "/" : relative;
  return `${toRoot}${relative}`;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The same error with its path (and that path where the message names it) moved from `fromRoot` to
 * `toRoot`. Anything that is not a FileError, or names a path outside `fromRoot`, is returned as is.
 */
export function rebaseFileError(error: unknown, fromRoot: string, toRoot: string): unknown {
  if (!(error instanceof FileError) || fromRoot === toRoot) return error;
  const path = rebasePath(error.path, fromRoot, toRoot);
  if (path === undefined) return error;
  // The path as a whole word: not a prefix of a longer path, not a piece of one.
  const pattern = new RegExp(
    `(^|[\\s'"\`(])${escapeRegExp(error.path)}(?=$|[\\s'"\`),:;]|\\.(?:$|\\s))`,
    "g",
  );
  const message = error.message.replace(pattern, (_match, before: string) => `${before}${path}`);
  return new FileError(error.code, path, message, { cause: error });
}
