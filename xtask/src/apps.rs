//! The example apps: which members of the `apps/` workspace are binaries.
//!
//! A full TOML parser would be xtask's biggest dependency by far; the few
//! keys needed here (`members`, `name`, `[[bin]]`) are read by a small
//! line-based reader that understands exactly what Cargo.toml files in this
//! repository use: `key = "string"` and (multi-line) arrays of strings.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// An app to package.
#[derive(Debug, PartialEq)]
pub struct App {
    /// Its directory, relative to the repository root (`apps/hello`).
    pub dir: PathBuf,
    /// Its binary's name: `NAME.wasm`, `NAME.oasis`.
    pub name: String,
}

/// Every binary member of `<root>/apps/Cargo.toml`, in the order listed.
pub fn list(root: &Path) -> Result<Vec<App>> {
    let manifest = root.join("apps").join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}: the apps workspace lists the example apps", manifest.display()))?;
    let members = string_array(&section(&text, "workspace"), "members")
        .with_context(|| format!("{} has no `[workspace] members = [...]`", manifest.display()))?;
    let mut apps = Vec::new();
    for member in members {
        for dir in expand(&root.join("apps"), &member)? {
            if let Some(app) = app_in(root, &dir)? {
                apps.push(app);
            }
        }
    }
    if apps.is_empty() {
        bail!("{} lists no app with a binary (src/main.rs or [[bin]])", manifest.display());
    }
    Ok(apps)
}

/// A member path, with a trailing `*` component expanded to subdirectories
/// (the only glob form Cargo workspaces commonly use).
fn expand(base: &Path, member: &str) -> Result<Vec<PathBuf>> {
    let Some(parent) = member.strip_suffix("/*").or(if member == "*" { Some("") } else { None }) else {
        return Ok(vec![base.join(member)]);
    };
    let parent = base.join(parent);
    let mut dirs: Vec<PathBuf> = fs::read_dir(&parent)
        .with_context(|| format!("listing {}", parent.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The app in `dir`, or `None` if that member is a library.
fn app_in(root: &Path, dir: &Path) -> Result<Option<App>> {
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let bin_name = bin_sections(&text).into_iter().find_map(|bin| string_value(&bin, "name"));
    let name = match bin_name {
        Some(name) => name,
        None if dir.join("src").join("main.rs").is_file() => string_value(&section(&text, "package"), "name")
            .with_context(|| format!("{} has no [package] name", manifest.display()))?,
        None => return Ok(None),
    };
    let dir = dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
    Ok(Some(App { dir, name }))
}

/// The body of the `[name]` table (empty if absent).
fn section(text: &str, name: &str) -> String {
    tables(text).into_iter().filter(|(header, _)| header == &format!("[{name}]")).map(|(_, body)| body).collect()
}

/// The bodies of every `[[bin]]` table.
fn bin_sections(text: &str) -> Vec<String> {
    tables(text).into_iter().filter(|(header, _)| header == "[[bin]]").map(|(_, body)| body).collect()
}

/// `(header, body)` for each table; the text before the first header has header "".
fn tables(text: &str) -> Vec<(String, String)> {
    let mut tables = vec![(String::new(), String::new())];
    for line in text.lines() {
        let trimmed = strip_comment(line).trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') && !trimmed.contains('=') {
            tables.push((trimmed.replace(' ', ""), String::new()));
        } else if let Some((_, body)) = tables.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    tables
}

/// `key = "value"` in a table body.
fn string_value(body: &str, key: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let (k, v) = strip_comment(line).split_once('=')?;
        if k.trim() != key {
            return None;
        }
        strings(v).into_iter().next()
    })
}

/// `key = ["a", "b", ...]` in a table body, possibly over several lines.
fn string_array(body: &str, key: &str) -> Option<Vec<String>> {
    let mut lines = body.lines().map(strip_comment);
    let first = lines.find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.to_string())
    })?;
    let mut value = first;
    while !value.contains(']') {
        value.push_str(lines.next()?);
    }
    Some(strings(&value))
}

/// The quoted strings ('…' or "…", no escapes) in a piece of TOML.
fn strings(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            found.push(chars.by_ref().take_while(|&d| d != c).collect());
        }
    }
    found
}

/// A line without its `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = r#"
# The example apps.
[workspace]
resolver = "2"
members = [
    "hello",   # prints a greeting
    'clock',
    "libs/*",
]

[workspace.dependencies]
oasis = { path = "../guest-api" }
"#;

    #[test]
    fn reads_multi_line_member_arrays() {
        let members = string_array(&section(WORKSPACE, "workspace"), "members").unwrap();
        assert_eq!(members, ["hello", "clock", "libs/*"]);
    }

    #[test]
    fn reads_package_and_bin_names() {
        let manifest = "[package]\nname = \"hello\" # the app\nversion = \"0.1.0\"\n\n[[bin]]\nname = \"greeter\"\npath = \"src/main.rs\"\n";
        assert_eq!(string_value(&section(manifest, "package"), "name").as_deref(), Some("hello"));
        let bins = bin_sections(manifest);
        assert_eq!(bins.len(), 1);
        assert_eq!(string_value(&bins[0], "name").as_deref(), Some("greeter"));
    }

    #[test]
    fn comments_inside_strings_survive() {
        assert_eq!(strip_comment(r#"name = "a#b" # c"#), r#"name = "a#b" "#);
    }

    #[test]
    fn lists_binary_members_only() {
        let root = std::env::temp_dir().join(format!("xtask-apps-test-{}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("apps/Cargo.toml", WORKSPACE);
        write("apps/hello/Cargo.toml", "[package]\nname = \"hello\"\n");
        write("apps/hello/src/main.rs", "fn main() {}\n");
        write("apps/clock/Cargo.toml", "[package]\nname = \"clock-app\"\n[[bin]]\nname = \"clock\"\n");
        write("apps/libs/util/Cargo.toml", "[package]\nname = \"util\"\n");
        write("apps/libs/util/src/lib.rs", "\n");
        let apps = list(&root);
        fs::remove_dir_all(&root).unwrap();
        let names: Vec<String> = apps.unwrap().into_iter().map(|app| app.name).collect();
        assert_eq!(names, ["hello", "clock"]);
    }
}
