import { describe, expect, it } from "vitest";
import { globToRegExp, matchesGlob, staticPrefix } from "./glob-pattern.js";

describe("matchesGlob", () => {
  it.each([
    ["*.txt", "a.txt", true],
    ["*.txt", "dir/a.txt", false],
    ["*.txt", ".hidden.txt", true],
    ["**/*.txt", "a.txt", true],
    ["**/*.txt", "dir/sub/a.txt", true],
    ["**/*.txt", "dir/sub/a.md", false],
    ["src/**", "src/a/b/c.ts", true],
    ["src/**", "other/a.ts", false],
    ["src/**/test.ts", "src/test.ts", true],
    ["src/**/test.ts", "src/a/b/test.ts", true],
    ["src/**/test.ts", "srcx/test.ts", false],
    ["a**b", "axxb", true],
    ["a**b", "ax/xb", false],
    ["?.md", "a.md", true],
    ["?.md", "ab.md", false],
    ["?.md", "/.md", false],
    ["*.{js,ts}", "x.ts", true],
    ["*.{js,ts}", "x.js", true],
    ["*.{js,ts}", "x.jsx", false],
    ["{src,lib}/**/*.{js,{m,c}ts}", "lib/a/b.mts", true],
    ["{src,lib}/**/*.{js,{m,c}ts}", "lib/a/b.ts", false],
    ["[abc].txt", "b.txt", true],
    ["[abc].txt", "d.txt", false],
    ["[a-c]x", "bx", true],
    ["[!a-c]x", "dx", true],
    ["[!a-c]x", "ax", false],
    ["[^a-c]x", "ax", false],
    ["[!a]x", "/x", false],
    ["[]]x", "]x", true],
    ["\\*.txt", "*.txt", true],
    ["\\*.txt", "a.txt", false],
    ["a.b", "axb", false],
    ["(x)+|y", "(x)+|y", true],
    ["[unclosed", "[unclosed", true],
    ["{unclosed", "{unclosed", true],
    ["file$.txt", "file$.txt", true],
  ])("%s against %s is %s", (pattern, path, expected) => {
    expect(matchesGlob(pattern, path)).toBe(expected);
  });

  it("compiles to an anchored expression and can ignore case", () => {
    expect(globToRegExp("*.TXT", { caseInsensitive: true }).test("a.txt")).toBe(true);
    expect(globToRegExp("*.TXT").test("a.txt")).toBe(false);
    expect(globToRegExp("a").test("ba")).toBe(false);
  });

  it("never throws on odd patterns", () => {
    for (const pattern of ["[z-a]", "\\", "{", "}", "[", "**/**/**", "{a,{b}", "[\\]"]) {
      expect(() => globToRegExp(pattern)).not.toThrow();
    }
    expect(matchesGlob("[z-a]", "[z-a]")).toBe(true);
  });
});

describe("staticPrefix", () => {
  it.each([
    ["/workspace/src/**/*.ts", "/workspace/src"],
    ["/workspace/a.txt", "/workspace"],
    ["/*.txt", ""],
    ["*.txt", ""],
    ["/a/{b,c}/d", "/a"],
  ])("of %s is %s", (pattern, expected) => {
    expect(staticPrefix(pattern)).toBe(expected);
  });
});
