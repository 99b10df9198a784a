/** The ported domain rules agree with Python's semantics (strip, len, paths, git URLs). */
import { describe, expect, test } from "vitest";
import { validateGitUrl } from "../convex/lib/commandRules";
import { codePoints, normalizeRelativePath, pyStrip, validatePermissionEdit } from "../convex/lib/rules";

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as { data: { message: string } }).data.message;
  }
  throw new Error("not refused");
}

describe("Python string semantics", () => {
  test("pyStrip removes what str.strip() removes, and nothing else", () => {
    expect(pyStrip("\x1c\t a b \u3000\x85")).toBe("a b");
    expect(pyStrip("\ufeffx")).toBe("\ufeffx"); // not whitespace to Python
  });

  test("codePoints counts like len()", () => {
    expect(codePoints("abc")).toBe(3);
    expect(codePoints("😀x")).toBe(2);
    expect(codePoints("\ud800")).toBe(1); // a lone surrogate is one code point
  });
});

describe("normalizeRelativePath", () => {
  test.each([
    ["./src//app/", "src/app"],
    ["", ""],
    [".", ""],
    ["a\\b", "a/b"],
  ])("%j becomes %j", (path, clean) => {
    expect(normalizeRelativePath(path)).toBe(clean);
  });

  test.each([
    ["../etc", "The path must not contain '..'."],
    ["/etc", "Use a path relative to the machine's root, not an absolute one."],
    ["C:/x", "Use a path relative to the machine's root, not an absolute one."],
    ["😀:", "Use a path relative to the machine's root, not an absolute one."],
    ["./C:/x", "Use a path relative to the machine's root, not an absolute one."],
    ["a\0b", "The path must not contain NUL bytes."],
    ["a".repeat(256), "Each folder name must be at most 255 characters."],
  ])("%j is refused", (path, sentence) => {
    expect(refusal(() => normalizeRelativePath(path))).toBe(sentence);
  });
});

describe("validateGitUrl", () => {
  test.each([
    ["HTTPS://github.com/acme/app.git", "https://github.com/acme/app.git"],
    ["git@github.com:acme/app.git", "git@github.com:acme/app.git"],
    ["ssh://git@[::1]:2222/srv/app", "ssh://git@[::1]:2222/srv/app"],
    ["git://example.com/app", "git://example.com/app"],
  ])("%j is allowed", (url, normalized) => {
    expect(validateGitUrl(url)).toBe(normalized);
  });

  test.each([
    ["ext::sh -c touch% /tmp/pwned", /spaces or control characters/],
    ["ext::sh", /^The ext:: transport is not allowed/],
    ["file:///srv/repo", /^Cloning from local files/],
    ["ftp://host/repo", /^The ftp:\/\/ scheme is not allowed/],
    ["-uhttps://x/y", /would read as an option/],
    ["/srv/repo", /^Local paths cannot be cloned/],
    ["https://host:0/x", /port/],
    ["https://-bad/x", /valid host/],
    ["https://host/", /include the path/],
    ["a@b", /^Local paths cannot be cloned/],
    ["https://alice:s3cret@github.com/acme/app.git", /must not carry a password or token/],
    ["https://ghp_token@github.com/acme/app.git", /must not carry a password or token/],
    ["ssh://git:pw@example.com/app", /must not carry a password or token/],
  ])("%j is refused", (url, sentence) => {
    expect(refusal(() => validateGitUrl(url))).toMatch(sentence);
  });
});

describe("validatePermissionEdit", () => {
  test("counts the diff in UTF-8 bytes, as Python does", () => {
    const diff = "é".repeat(30_000); // 60,000 bytes: at the bound
    expect(validatePermissionEdit("a.py", diff, 70_000)).toEqual({ file: "a.py", diff, diffSize: 70_000 });
    expect(refusal(() => validatePermissionEdit("a.py", `${diff}x`, 70_000))).toBe(
      "The diff must be at most 60000 bytes; send its start and its full size.",
    );
  });

  test("refuses a size that does not count the diff, or is not a whole number", () => {
    for (const size of [1, 2.5, -1, Number.MAX_SAFE_INTEGER + 2]) {
      expect(refusal(() => validatePermissionEdit("a.py", "+xy", size))).toBe(
        "The diff size must count the bytes of the whole diff.",
      );
    }
  });
});
