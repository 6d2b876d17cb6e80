//! `oasis new`: an app crate that builds with `oasis build` and runs with
//! `oasis run` at once.
//!
//! The crate depends on the SDK (crate `oasis`) by path, so it has to know
//! where an SDK is: `--sdk DIR`, else `$OASIS_SDK`, else the copy installed
//! with this binary (`PREFIX/share/oasis/sdk` next to `PREFIX/bin/oasis`,
//! which `cargo xtask install` lays out), else the source tree this binary
//! was built from, while it still exists.
//!
//! The files come from templates in `new/`, filled in with `{{key}}`
//! placeholders; everything is rendered before anything is written.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

/// Where an install prefix keeps the SDK, relative to the prefix
/// (`cargo xtask install` writes the same layout).
pub const INSTALLED_SDK: &str = "share/oasis/sdk";

/// The environment variable that names the SDK when `--sdk` does not.
pub const SDK_VAR: &str = "OASIS_SDK";

/// `oasis new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The directory to create (new, or empty); its last component names the
    /// app: a-z, 0-9, `-` and `_`, starting with a letter.
    pub path: PathBuf,
    /// What kind of app to start from.
    #[arg(long, value_enum, default_value_t = Kind::Reactor)]
    pub kind: Kind,
    /// The SDK the crate depends on: a directory holding the `oasis` crate
    /// (default: $OASIS_SDK, else the SDK installed with this oasis).
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// Why `oasis new` made no crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path has no last component to name the app after.
    #[error("{}: cannot name an app after this path; give a directory name such as `myapp`", path.display())]
    Unnameable {
        /// The path.
        path: PathBuf,
    },
    /// The path's last component is not UTF-8.
    #[error("{}: the app's name must be UTF-8; choose a name of a-z, 0-9, `-` and `_`", path.display())]
    NameNotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// The name is not one Cargo and a manifest both accept.
    #[error(
        "`{0}` cannot be an app's name: use 1-64 characters of a-z, 0-9, `-` and `_`, starting with a letter (the name is the crate's, the package's and the directory's)"
    )]
    BadName(String),
    /// The name is Rust's, Cargo's or the SDK's.
    #[error("`{0}` cannot be an app's name: Rust, Cargo or the SDK already use it; choose another, such as `{0}-app`")]
    ReservedName(String),
    /// The path is a file.
    #[error("{} already exists and is not a directory: choose another name", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory has files in it.
    #[error("{} already exists and is not empty: choose a new directory name, or empty this one first", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// No SDK was named and none is installed.
    #[error(
        "no Oasis SDK found (crate `oasis`): install oasis with its SDK (`cargo xtask install --prefix DIR` in the Oasis repository), or pass --sdk DIR or set {SDK_VAR} to a copy of the repository's guest-api"
    )]
    NoSdk,
    /// The directory named as the SDK is not one.
    #[error(
        "{named_by} {}: not the Oasis SDK (no Cargo.toml of crate `oasis` there); name the directory holding it, e.g. PREFIX/{INSTALLED_SDK} or the repository's guest-api",
        dir.display()
    )]
    NotSdk {
        /// Who named it.
        named_by: SdkChoice,
        /// The directory.
        dir: PathBuf,
    },
    /// The SDK's path cannot go into Cargo.toml.
    #[error("{}: the SDK's path must be UTF-8 to go into Cargo.toml", sdk.display())]
    SdkNotUtf8 {
        /// The SDK.
        sdk: PathBuf,
    },
    /// A file or directory cannot be read, resolved or written.
    #[error("{}{}: {source}", named_by.map(|n| format!("{n} ")).unwrap_or_default(), path.display())]
    Io {
        /// Who named the path, if the user did not give it to `oasis new` itself.
        named_by: Option<SdkChoice>,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Who named the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkChoice {
    /// `--sdk`.
    Flag,
    /// [`SDK_VAR`].
    Env,
}

impl std::fmt::Display for SdkChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SdkChoice::Flag => "--sdk",
            SdkChoice::Env => SDK_VAR,
        })
    }
}

/// An I/O error about `path`, which the user gave.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { named_by: None, path: path.to_path_buf(), source }
}

/// The templates `oasis new` starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `#[oasis::main] async fn main` with a timer, logging to a console stream.
    Reactor,
    /// A plain `fn main` that runs to completion.
    Command,
    /// An HTTP/1.1 server on app port 8080.
    Http,
}

/// What differs between the kinds.
struct Template {
    main_rs: &'static str,
    capabilities: &'static str,
    why: &'static str,
    memory: &'static str,
    /// Whether the `[net]` table is filled in rather than commented out.
    net: bool,
    description: &'static str,
    run_flags: &'static str,
    /// What to try once it runs, in another terminal.
    then: Option<&'static str>,
}

impl Kind {
    fn template(self) -> Template {
        match self {
            Kind::Reactor => Template {
                main_rs: include_str!("new/reactor.rs"),
                capabilities: r#"["console"]"#,
                why: "its `tick` log stream",
                memory: "16MiB",
                net: false,
                description: "a reactor (`#[oasis::main] async fn main`) that ticks three times on a timer.",
                run_flags: "",
                then: None,
            },
            Kind::Command => Template {
                main_rs: include_str!("new/command.rs"),
                capabilities: r#"["console"]"#,
                why: "its `app` log stream",
                memory: "16MiB",
                net: false,
                description: "a command (a plain `fn main`) that greets its first argument.",
                run_flags: " -- Ada",
                then: None,
            },
            Kind::Http => Template {
                main_rs: include_str!("new/http.rs"),
                capabilities: r#"["net"]"#,
                why: "the listener on app port 8080",
                memory: "32MiB",
                net: true,
                description: "an HTTP/1.1 server on app port 8080.",
                run_flags: " -p 8080:8080",
                then: Some("curl localhost:8080/"),
            },
        }
    }
}

/// `oasis new PATH [--kind KIND] [--sdk DIR]`.
pub fn execute(args: NewArgs) -> Result<(), Error> {
    let name = app_name(&args.path)?;
    check_target(&args.path)?;
    let sdk = find_sdk(args.sdk.as_deref(), std::env::var_os(SDK_VAR).filter(|v| !v.is_empty()).map(PathBuf::from))?;
    let files = render(&name, args.kind, &sdk)?;
    write_files(&args.path, &files)?;

    let dir = args.path.display();
    let template = args.kind.template();
    println!("created {} app `{name}` in {dir} (SDK: {})", kind_name(args.kind), sdk.display());
    println!(
        "next: cd {dir} && oasis build && oasis run target/wasm32-wasip1/release/{name}.oasis{}{}",
        template.run_flags,
        template.then.map(|then| format!(", then in another terminal: {then}")).unwrap_or_default()
    );
    Ok(())
}

/// The kind as `--kind` spells it.
fn kind_name(kind: Kind) -> String {
    kind.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string())
}

/// Names Cargo or Rust would refuse for a package or binary, or that would
/// clash with the SDK itself (a crate `oasis` depending on `oasis`).
const RESERVED: &[&str] = &[
    "oasis",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "proc-macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// The app's name: the last component of `path`, checked against what a
/// Cargo package and an Oasis manifest both accept.
fn app_name(path: &Path) -> Result<String, Error> {
    // `oasis new .` (or `..`) names the app after the directory itself.
    let named = match path.file_name() {
        Some(name) => Some(name.to_owned()),
        None => std::fs::canonicalize(path).ok().and_then(|p| p.file_name().map(|n| n.to_owned())),
    };
    let Some(name) = named else {
        return Err(Error::Unnameable { path: path.to_path_buf() });
    };
    let Some(name) = name.to_str() else {
        return Err(Error::NameNotUtf8 { path: path.to_path_buf() });
    };
    let well_formed = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(Error::BadName(name.to_string()));
    }
    if RESERVED.contains(&name) {
        return Err(Error::ReservedName(name.to_string()));
    }
    Ok(name.to_string())
}

/// Refuses anything but a new path or an empty directory: `oasis new` never
/// overwrites or mixes into someone's files.
fn check_target(path: &Path) -> Result<(), Error> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(Error::NotADirectory { path: path.to_path_buf() });
    }
    let mut entries = std::fs::read_dir(path).map_err(io(path))?;
    if entries.next().is_some() {
        return Err(Error::NotEmpty { path: path.to_path_buf() });
    }
    Ok(())
}

/// Finds the SDK: `flag` (`--sdk`), else `env` (`$OASIS_SDK`), else the one
/// installed with this binary, else the source tree it was built from.
fn find_sdk(flag: Option<&Path>, env: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(dir) = flag {
        return checked_sdk(dir, SdkChoice::Flag);
    }
    if let Some(dir) = env {
        return checked_sdk(&dir, SdkChoice::Env);
    }
    let installed = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.join(INSTALLED_SDK)));
    // Built in a checkout (`cargo xtask build`): guest-api at the root, above crates/.
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map(|root| root.join("guest-api"));
    for dir in installed.into_iter().chain(source_tree) {
        if is_sdk(&dir) {
            return Ok(plain_path(std::fs::canonicalize(&dir).unwrap_or(dir)));
        }
    }
    Err(Error::NoSdk)
}

/// `dir` as the SDK, or an error that says who named it and what to name instead.
fn checked_sdk(dir: &Path, named_by: SdkChoice) -> Result<PathBuf, Error> {
    if !is_sdk(dir) {
        return Err(Error::NotSdk { named_by, dir: dir.to_path_buf() });
    }
    let dir = std::fs::canonicalize(dir).map_err(|source| Error::Io {
        named_by: Some(named_by),
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(plain_path(dir))
}

/// Whether `dir` holds the SDK crate's manifest.
fn is_sdk(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
        return false;
    };
    manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) == Some("oasis")
}

/// Windows' canonical paths are verbatim (`\\?\C:\…`); a drive path says the
/// same and reads better in a Cargo.toml.
fn plain_path(path: PathBuf) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_prefix(r"\\?\")) {
        Some(rest) if rest.as_bytes().get(1) == Some(&b':') => PathBuf::from(rest),
        _ => path,
    }
}

/// The files of the new crate, by path relative to its directory.
fn render(name: &str, kind: Kind, sdk: &Path) -> Result<Vec<(&'static str, String)>, Error> {
    let sdk_text = sdk.to_str().ok_or_else(|| Error::SdkNotUtf8 { sdk: sdk.to_path_buf() })?;
    let t = kind.template();
    let run = format!("oasis run target/wasm32-wasip1/release/{name}.oasis{}", t.run_flags);
    let sdk_readme = sdk.join("README.md");
    let then = t.then.map(|then| format!("Then, in another terminal: `{then}`\n\n")).unwrap_or_default();
    let fill_in = |text: &str| {
        fill(
            text,
            &[
                ("name", name),
                // A TOML string, quoted and escaped (Windows paths have backslashes).
                ("sdk", &toml::Value::String(sdk_text.to_string()).to_string()),
                ("capabilities", t.capabilities),
                ("why", t.why),
                ("memory", t.memory),
                ("net", if t.net { "" } else { "# " }),
                ("description", t.description),
                ("run", &run),
                ("then", &then),
                ("sdk_readme", &sdk_readme.display().to_string()),
            ],
        )
    };
    Ok(vec![
        ("Cargo.toml", fill_in(include_str!("new/Cargo.toml.in"))),
        ("oasis.toml", fill_in(include_str!("new/oasis.toml.in"))),
        ("README.md", fill_in(include_str!("new/README.md.in"))),
        (".gitignore", include_str!("new/gitignore").to_string()),
        ("src/main.rs", t.main_rs.to_string()),
    ])
}

/// Replaces each `{{key}}` in `text`.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// Writes `files` below `dir`; on failure removes what it wrote, so a retry
/// does not meet a half-made crate (and the "not empty" refusal).
fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), Error> {
    let created_dir = !dir.exists();
    let result = files.iter().try_for_each(|(rel, text)| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))
    });
    if result.is_err() {
        if created_dir {
            let _ = std::fs::remove_dir_all(dir);
        } else {
            for (rel, _) in files {
                let _ = std::fs::remove_file(dir.join(rel));
            }
            let _ = std::fs::remove_dir(dir.join("src"));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo_and_the_manifest() {
        assert_eq!(app_name(Path::new("some/where/my-app_2")).unwrap(), "my-app_2");
        for bad in ["MyApp", "2fast", "my app", "-x", "é"] {
            let err = app_name(&Path::new("dir").join(bad)).unwrap_err();
            assert!(matches!(&err, Error::BadName(name) if name == bad), "{bad}: {err:?}");
            assert!(err.to_string().contains("cannot be an app's name"), "{bad}: {err}");
        }
        assert!(matches!(app_name(Path::new(&"a".repeat(65))), Err(Error::BadName(_))));
        for reserved in ["oasis", "test", "fn", "std"] {
            let err = app_name(Path::new(reserved)).unwrap_err();
            assert!(matches!(&err, Error::ReservedName(name) if name == reserved), "{reserved}: {err:?}");
            assert!(err.to_string().contains("already use it"), "{reserved}: {err}");
        }
    }

    #[test]
    fn every_placeholder_is_filled_and_manifests_parse() {
        let sdk = Path::new(r"C:\Users\ada\oasis sdk");
        for kind in [Kind::Reactor, Kind::Command, Kind::Http] {
            let files = render("my-app", kind, sdk).unwrap();
            for (rel, text) in &files {
                assert!(!text.contains("{{") && !text.contains("}}"), "{kind:?} {rel}: {text}");
            }
            let file = |rel: &str| &files.iter().find(|(r, _)| *r == rel).unwrap().1;
            let cargo: toml::Table = toml::from_str(file("Cargo.toml")).unwrap();
            assert_eq!(cargo["package"]["name"].as_str(), Some("my-app"));
            assert_eq!(cargo["dependencies"]["oasis"]["path"].as_str(), sdk.to_str(), "the backslashes survive");
            assert_eq!(cargo["profile"]["release"]["panic"].as_str(), Some("abort"));
            let manifest = oasis_format::manifest::ManifestFile::parse(file("oasis.toml")).unwrap();
            let caps = manifest.capabilities.clone().unwrap();
            assert_eq!(manifest.net.listen.is_empty(), kind != Kind::Http, "{kind:?}");
            assert_eq!(caps.iter().any(|c| c == "net"), kind == Kind::Http, "{kind:?}");
            // What `oasis build` does with it: a valid manifest once name and version are known.
            let defaults = oasis_format::manifest::ManifestFile {
                name: Some("my-app".into()),
                version: Some("0.1.0".into()),
                abi: Some(oasis_abi::ABI_VERSION),
                ..Default::default()
            };
            manifest.or(defaults).validate().unwrap();
            assert!(file("README.md").contains("oasis run target/wasm32-wasip1/release/my-app.oasis"));
        }
    }

    #[test]
    fn the_sdk_is_found_in_order_and_bad_choices_are_named() {
        let dir = std::env::temp_dir().join(format!("oasis-new-sdk-{}", std::process::id()));
        let sdk = dir.join("sdk");
        std::fs::create_dir_all(&sdk).unwrap();
        std::fs::write(sdk.join("Cargo.toml"), "[package]\nname = \"oasis\"\nversion = \"0.1.0\"\n").unwrap();
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("Cargo.toml"), "[package]\nname = \"serde\"\n").unwrap();

        let canonical = std::fs::canonicalize(&sdk).unwrap();
        assert_eq!(find_sdk(Some(&sdk), Some(other.clone())).unwrap(), canonical, "--sdk comes first");
        assert_eq!(find_sdk(None, Some(sdk.clone())).unwrap(), canonical);
        let err = find_sdk(None, Some(other.clone())).unwrap_err();
        assert!(matches!(&err, Error::NotSdk { named_by: SdkChoice::Env, dir } if *dir == other), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("OASIS_SDK ") && err.contains("not the Oasis SDK"), "{err}");
        let err = find_sdk(Some(&dir.join("missing")), None).unwrap_err();
        assert!(matches!(err, Error::NotSdk { named_by: SdkChoice::Flag, .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("--sdk ") && err.contains("missing"), "{err}");
        // Built in this checkout, the unit test binary finds guest-api.
        let found = find_sdk(None, None).unwrap();
        assert!(found.ends_with("guest-api"), "{}", found.display());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_new_or_empty_directories_are_used() {
        let dir = std::env::temp_dir().join(format!("oasis-new-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        check_target(&dir.join("fresh")).unwrap();
        check_target(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(matches!(check_target(&dir), Err(Error::NotEmpty { path }) if path == dir));
        let notes = dir.join("notes.txt");
        assert!(matches!(check_target(&notes), Err(Error::NotADirectory { path }) if path == notes));
        assert!(check_target(&dir).unwrap_err().to_string().contains("is not empty"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
