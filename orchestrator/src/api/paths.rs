//! The lexical path rules of spec §8.4 (rules 1–3): a pure, dependency-free check and cleaner.
//!
//! This file is deliberately self-contained (only `core`/`std`) so the worker can reuse it verbatim
//! for `fs` and `database` paths.

/// Why a path was refused: the `INVALID_PATH` reason tokens of spec §2.
///
/// [`clean_relative_path`] only ever returns the lexical ones (`Invalid`, `Empty`, `Absolute`,
/// `Traversal`); the others come from resolving the path beneath a worktree (§8.4 rules 4–6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PathReason {
    /// The path contains NUL.
    Invalid,
    /// The path is blank, or `.` after cleaning.
    Empty,
    /// The path begins with `/`.
    Absolute,
    /// The cleaned path is `..` or begins with `../`.
    Traversal,
    /// Resolution would leave the worktree (absolute symlink, `..` through a symlink, ...).
    EscapesWorktree,
    /// The target exists but is not a regular file.
    NotAFile,
    /// The file is larger than the daemon reads.
    TooLarge,
}

impl PathReason {
    /// The wire token, as used in `details.reason`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Empty => "empty",
            Self::Absolute => "absolute",
            Self::Traversal => "traversal",
            Self::EscapesWorktree => "escapes_worktree",
            Self::NotAFile => "not_a_file",
            Self::TooLarge => "too_large",
        }
    }
}

impl std::fmt::Display for PathReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Applies §8.4 rules 1–3 and returns the cleaned relative path.
///
/// In order: a NUL anywhere is `Invalid`; a blank path (empty after trimming whitespace) is
/// `Empty`; a leading `/` is `Absolute`; then `//` collapses, `.` segments go and `x/..` resolves;
/// a result of `..` or `../…` is `Traversal` and a result of nothing (`.`, `a/..`) is `Empty`.
/// A backslash is an ordinary character.
pub(crate) fn clean_relative_path(raw: &str) -> Result<String, PathReason> {
    if raw.contains('\0') {
        return Err(PathReason::Invalid);
    }
    if raw.trim().is_empty() {
        return Err(PathReason::Empty);
    }
    if raw.starts_with('/') {
        return Err(PathReason::Absolute);
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => match kept.last() {
                Some(&last) if last != ".." => {
                    kept.pop();
                }
                _ => kept.push(".."),
            },
            other => kept.push(other),
        }
    }
    match kept.first() {
        None => Err(PathReason::Empty),
        Some(&"..") => Err(PathReason::Traversal),
        Some(_) => Ok(kept.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::{PathReason, clean_relative_path};

    fn check(input: &str, expected: Result<&str, PathReason>) {
        let got = clean_relative_path(input);
        assert_eq!(got.as_deref().map_err(|r| *r), expected, "input {input:?}");
    }

    #[test]
    fn cleans_and_classifies() {
        use PathReason::*;
        let table: &[(&str, Result<&str, PathReason>)] = &[
            ("a.js", Ok("a.js")),
            ("./a.js", Ok("a.js")),
            ("lib/../b.js", Ok("b.js")),
            ("a//b/./c.js", Ok("a/b/c.js")),
            ("a/b/", Ok("a/b")),
            ("a/../b", Ok("b")),
            ("a/b/../../c", Ok("c")),
            ("a\\b", Ok("a\\b")),
            ("..\\x", Ok("..\\x")),
            (" a.js ", Ok(" a.js ")),
            ("...", Ok("...")),
            ("a/..b", Ok("a/..b")),
            ("é/ü.js", Ok("é/ü.js")),
            ("a/../../x", Err(Traversal)),
            ("..", Err(Traversal)),
            ("../x", Err(Traversal)),
            ("./../x", Err(Traversal)),
            ("a/../..", Err(Traversal)),
            ("/x", Err(Absolute)),
            ("/", Err(Absolute)),
            ("//x", Err(Absolute)),
            (".", Err(Empty)),
            ("./", Err(Empty)),
            ("a/..", Err(Empty)),
            ("./.", Err(Empty)),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("\t\n", Err(Empty)),
            ("a\0b", Err(Invalid)),
            ("/\0", Err(Invalid)),
            ("\0", Err(Invalid)),
            (" /x", Ok(" /x")),
        ];
        for (input, expected) in table {
            check(input, *expected);
        }
    }

    #[test]
    fn reason_tokens() {
        let table = [
            (PathReason::Invalid, "invalid"),
            (PathReason::Empty, "empty"),
            (PathReason::Absolute, "absolute"),
            (PathReason::Traversal, "traversal"),
            (PathReason::EscapesWorktree, "escapes_worktree"),
            (PathReason::NotAFile, "not_a_file"),
            (PathReason::TooLarge, "too_large"),
        ];
        for (reason, token) in table {
            assert_eq!(reason.as_str(), token);
            assert_eq!(reason.to_string(), token);
        }
    }
}
