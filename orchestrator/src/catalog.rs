//! The catalogs of native modules (spec §8.3) and libraries (spec §9): what a template may name.

/// A native module a template can expose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModuleInfo {
    pub(crate) id: &'static str,
    pub(crate) description: &'static str,
    pub(crate) functions: &'static [&'static str],
    pub(crate) requires_capability: Option<&'static str>,
}

/// Sorted by id.
pub(crate) const MODULES: &[ModuleInfo] = &[
    ModuleInfo {
        id: "database",
        description: "SQLite database: an in-memory database or a file in the worktree, one connection per session",
        functions: &["configure", "query", "exec", "close"],
        requires_capability: None,
    },
    ModuleInfo {
        id: "exec",
        description: "run allowlisted commands in the worktree without a shell",
        functions: &["run"],
        requires_capability: Some("module:exec"),
    },
    ModuleInfo {
        id: "fs",
        description: "read and write files inside the session worktree",
        functions: &["readFileSync", "writeFileSync", "existsSync", "readdirSync"],
        requires_capability: Some("fs"),
    },
];

/// Names that are JavaScript built-ins and can never be added as modules (spec §4.6).
pub(crate) const BUILTIN_MODULES: &[&str] = &[
    "console", "math", "json", "date", "array", "string", "object", "promise",
];

pub(crate) fn module(id: &str) -> Option<&'static ModuleInfo> {
    MODULES.iter().find(|m| m.id == id)
}

/// A library of the catalog, at its pinned version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LibraryInfo {
    pub(crate) id: &'static str,
    pub(crate) version: &'static str,
    pub(crate) global: &'static str,
    pub(crate) package: &'static str,
    /// Path of the bundle inside the package tarball, without the `package/` prefix.
    pub(crate) bundle: &'static str,
}

/// Sorted by id.
pub(crate) const LIBRARIES: &[LibraryInfo] = &[
    LibraryInfo {
        id: "dayjs",
        version: "1.11.10",
        global: "dayjs",
        package: "dayjs",
        bundle: "dayjs.min.js",
    },
    LibraryInfo {
        id: "lodash",
        version: "4.17.21",
        global: "_",
        package: "lodash",
        bundle: "lodash.min.js",
    },
    LibraryInfo {
        id: "moment",
        version: "2.29.4",
        global: "moment",
        package: "moment",
        bundle: "min/moment.min.js",
    },
    LibraryInfo {
        id: "ramda",
        version: "0.29.0",
        global: "R",
        package: "ramda",
        bundle: "dist/ramda.min.js",
    },
];

pub(crate) fn library(id: &str) -> Option<&'static LibraryInfo> {
    LIBRARIES.iter().find(|l| l.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_are_sorted_by_id() {
        assert!(MODULES.windows(2).all(|w| w[0].id < w[1].id));
        assert!(LIBRARIES.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(library("lodash").map(|l| l.global), Some("_"));
        assert!(module("fs").is_some() && module("console").is_none());
    }
}
